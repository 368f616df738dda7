//! `gnapd connect` end to end: the official Python MCP SDK's stdio client
//! (tests/interop/mcp_stdio_client.py) launches `gnapd connect URL`, which
//! negotiates a grant with a fresh key and relays to
//! `gnapd serve --dev --upstream github=…` in front of the real Python MCP
//! upstream (tests/interop/mcp_upstream.py) holding an upstream bearer
//! credential. With `--require-interaction`, a person approves (or denies)
//! on the AS's real pages, read and submitted as a browser would, from what
//! `gnapd connect` printed on stderr. Also: token rotation and revocation in
//! a live session, and the scripted `gnapd agent` steps.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gnapd::proto::httpsig::HttpRequest;
use serde_json::{Value, json};

use crate::gateway_sdk::{SECRET, assert_upstream_clean};
use crate::interaction_pages::{consent_form, cookie_set, get, html, post_form};
use crate::support::agent::{access_token, management};
use crate::support::http_client::{Answer, send};
use crate::support::mcp_upstream::Upstream;
use crate::support::paths::{python, root};
use crate::support::run::run_json_lines;
use crate::support::server::Server;

/// Longest one SDK client run may take.
const CLIENT_DEADLINE: Duration = Duration::from_secs(120);
const ALL_TOOLS: [&str; 3] = ["search_issues", "delete_repo", "countdown"];

struct Fixture {
    upstream: Upstream,
    server: Server,
    dir: tempfile::TempDir,
}

/// The upstream and gnapd in front of it; `flag_credential` gives the
/// upstream's bearer credential by flag (else the test adds one through
/// the admin socket); `config` is extra TOML.
fn fixture(flag_credential: bool, config: &str) -> Fixture {
    fixture_with(flag_credential, config, &[])
}

/// [`fixture`] whose AS makes every grant wait for a person, and asks for a
/// 1 s `wait` between continuation calls.
fn interactive_fixture() -> Fixture {
    fixture_with(true, "poll_wait = 1\n", &["--require-interaction"])
}

fn fixture_with(flag_credential: bool, config: &str, extra: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), false);
    let config_path = dir.path().join("gnapd.toml");
    std::fs::write(&config_path, config).unwrap();
    let github = format!("github={}", upstream.url());
    let credential = format!("github=bearer:{SECRET}");
    let mut args = vec![
        "--dev",
        "--config",
        config_path.to_str().unwrap(),
        "--upstream",
        &github,
    ];
    if flag_credential {
        args.extend(["--upstream-credential", &credential]);
    }
    args.extend(extra);
    let server = Server::start(&dir.path().join("data"), &args);
    Fixture {
        upstream,
        server,
        dir,
    }
}

impl Fixture {
    fn gateway(&self) -> String {
        format!("{}/mcp/github", self.server.base())
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").to_str().unwrap().to_owned()
    }

    /// `gnapd credentials …` against this server, as argv.
    fn credentials(&self, args: &[&str]) -> Vec<String> {
        let mut argv = vec![env!("CARGO_BIN_EXE_gnapd").to_owned(), "credentials".into()];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        argv.extend(["--data-dir".to_owned(), self.data_dir()]);
        argv
    }

    fn metric(&self, name: &str) -> u64 {
        let answer = send(
            self.server.addr,
            &HttpRequest::new("GET", format!("{}/metrics", self.server.base())),
        );
        let text = String::from_utf8(answer.body).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
    }
}

/// What one stdio client run did.
struct Run {
    code: Option<i32>,
    lines: Vec<Value>,
    output: String,
    connector_stderr: String,
}

impl Run {
    fn assert_ok(&self) {
        assert_eq!(
            self.code,
            Some(0),
            "the stdio client failed:\n{}\n--- gnapd connect stderr\n{}",
            self.output,
            self.connector_stderr
        );
        for line in &self.lines {
            assert_eq!(line["ok"], true, "{line}\n{}", self.output);
        }
    }
}

/// The SDK stdio client launching `gnapd connect GATEWAY extra…` and running
/// `script` (see mcp_stdio_client.py).
fn run_stdio(fixture: &Fixture, extra: &[&str], script: &Value) -> Run {
    run_stdio_with(fixture, extra, script, |_| {})
}

/// [`run_stdio`], with `person` running meanwhile on another thread, given
/// the file where `gnapd connect`'s stderr goes.
fn run_stdio_with(
    fixture: &Fixture,
    extra: &[&str],
    script: &Value,
    person: impl FnOnce(&Path) + Send,
) -> Run {
    let log = fixture.dir.path().join("connect-stderr.log");
    let _ = std::fs::remove_file(&log);
    std::fs::write(&log, "").unwrap();
    let mut command = Command::new(python());
    command
        .arg(root().join("tests/interop/mcp_stdio_client.py"))
        .args(["--command", env!("CARGO_BIN_EXE_gnapd")])
        .args(["--arg", "connect", "--arg", &fixture.gateway()]);
    for arg in extra {
        // `--arg=…`: argparse would read `--arg --tool` as two options.
        command.arg(format!("--arg={arg}"));
    }
    command
        .arg("--stderr-log")
        .arg(&log)
        .args(["--script", &script.to_string()]);
    let (finished, person) = std::thread::scope(|scope| {
        let person = scope.spawn(|| person(&log));
        let finished = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_json_lines(command, CLIENT_DEADLINE, "mcp_stdio_client.py")
        }));
        (finished, person.join())
    });
    let finished = finished.unwrap_or_else(|panic| {
        let connector = std::fs::read_to_string(&log).unwrap_or_default();
        eprintln!("--- gnapd connect stderr\n{connector}");
        std::panic::resume_unwind(panic)
    });
    let run = Run {
        code: finished.code,
        lines: finished.lines,
        output: finished.output,
        connector_stderr: std::fs::read_to_string(&log).unwrap_or_default(),
    };
    if let Err(panic) = person {
        eprintln!(
            "the person failed; the stdio client:\n{}\n--- gnapd connect stderr\n{}",
            run.output, run.connector_stderr
        );
        std::panic::resume_unwind(panic);
    }
    run
}

/// What `gnapd connect` told the person on stderr (RFC 9635 §3.3).
#[derive(Debug)]
struct Prompt {
    /// The consent page (start mode `redirect`).
    redirect: String,
    /// The user-code page and the code (start mode `user_code_uri`).
    code_page: Option<(String, String)>,
    /// The code alone (start mode `user_code`).
    user_code: Option<String>,
}

/// Waits until `gnapd connect` has shown the interaction on stderr (`log`),
/// and reads it as a person would.
fn read_prompt(log: &Path) -> Prompt {
    let until = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("Waiting for approval") {
            let after = |marker: &str| {
                text.lines()
                    .find_map(|l| Some(l.split_once(marker)?.1.trim().to_owned()))
            };
            let code_page = after("Or go to ").map(|rest| {
                let (uri, code) = rest.split_once(" and enter the code: ").unwrap();
                (uri.to_owned(), code.to_owned())
            });
            return Prompt {
                redirect: after("Open this URL to approve: ")
                    .unwrap_or_else(|| panic!("no URL in:\n{text}")),
                code_page,
                user_code: after("code at the authorization server's code page: "),
            };
        }
        assert!(
            std::time::Instant::now() < until,
            "gnapd connect showed no interaction:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The browser following a 303 from the AS to the connector's loopback
/// listener (a plain GET of the `Location`).
fn follow(location: &str) -> Answer {
    let rest = location
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not a loopback redirect: {location}"));
    let host = rest.split('/').next().unwrap();
    assert!(host.starts_with("127.0.0.1:"), "{location}");
    send(host.parse().unwrap(), &HttpRequest::new("GET", location))
}

/// The person opens the consent page `gnapd connect` printed, submits
/// `decision` with the boxes `keep` accepts, and gets the AS's 303 to the
/// connector's loopback listener; returns its `Location`.
fn decide_on_consent_page(
    fixture: &Fixture,
    log: &Path,
    decision: &str,
    keep: impl Fn(&str, &str) -> bool,
) -> String {
    let prompt = read_prompt(log);
    assert!(
        prompt
            .redirect
            .starts_with(&format!("{}/gnap/interact/", fixture.server.base())),
        "{prompt:?}"
    );
    let page = get(&fixture.server, &prompt.redirect);
    assert_eq!(page.status, 200, "{}", html(&page));
    // The first browser on the page is the one the finish goes to.
    let browser = cookie_set(&page, "gnapd_browser").expect("the browser is named");
    let text = html(&page);
    assert!(text.contains("gnapd connect"), "{text}");
    let form = consent_form(&fixture.server, &text);
    let answer = form.submit_with_cookie(&fixture.server, decision, keep, Some(&browser));
    assert_eq!(answer.status, 303, "{}", html(&answer));
    let location = answer.header("location").unwrap().to_owned();
    assert!(location.contains("/gnap-finish/"), "{location}");
    location
}

#[test]
fn an_sdk_stdio_client_lists_and_calls_through_the_gateway() {
    let fixture = fixture(true, "");
    let run = run_stdio(
        &fixture,
        &["--revoke-on-exit"],
        &json!([
            {"list": ALL_TOOLS},
            {"call": "search_issues", "args": {"query": "bug"}},
            // A streamed (SSE) answer with progress notifications first.
            {"call": "countdown", "args": {"steps": 3, "delay": 0.1}},
        ]),
    );
    run.assert_ok();
    assert_eq!(run.lines[0]["protocol_version"], "2025-11-25");
    assert_eq!(run.lines[0]["server"], "gnapd-test-upstream");
    assert_eq!(run.lines[2]["text"], "found 1 issue for bug");
    assert_eq!(run.lines[3]["text"], "liftoff");
    // The upstream saw its own credential only, on every request of the
    // session: POSTs, the GET stream and the closing DELETE.
    assert_upstream_clean(&fixture.upstream, &[]);
    let methods: Vec<String> = fixture
        .upstream
        .requests()
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert!(methods.iter().any(|m| m == "GET"), "{methods:?}");
    wait_for(|| {
        fixture
            .upstream
            .requests()
            .iter()
            .any(|(m, _)| m == "DELETE")
    });
    // One grant, approved at once (dev mode), its token revoked at exit.
    assert_eq!(
        fixture.metric("gnapd_grants_total{outcome=\"approved\"}"),
        1
    );
    wait_for(|| fixture.metric("gnapd_tokens_revoked_total") == 1);
}

#[test]
fn the_tool_flag_narrows_the_grant_to_that_tool() {
    let fixture = fixture(true, "");
    let run = run_stdio(
        &fixture,
        &["--tool", "search_issues", "--name", "narrow test"],
        &json!([
            {"list": ["search_issues"]},
            {"call": "search_issues", "args": {"query": "bug"}},
            {"call": "delete_repo", "args": {"name": "x"}, "error": "not granted"},
        ]),
    );
    run.assert_ok();
    assert!(
        fixture
            .upstream
            .requests()
            .iter()
            .all(|(_, h)| !h.iter().any(|(_, v)| v.contains("delete_repo"))),
        "an ungranted call reached the upstream"
    );
}

#[test]
fn a_relayed_session_survives_token_rotation() {
    // Tokens live 6 s: the connector rotates once 4 s of a token's life
    // are spent (the clock has whole seconds, so 4.5 s of sleep is 4 or 5),
    // and negotiates again once one has expired while idle.
    let fixture = fixture(true, "token_lifetime = 6\n");
    let call = json!({"call": "search_issues", "args": {"query": "bug"}});
    let run = run_stdio(
        &fixture,
        &[],
        &json!([
            call, {"sleep": 4.5}, call, {"sleep": 4.5}, call,
            {"sleep": 7}, call,
        ]),
    );
    run.assert_ok();
    assert!(
        fixture.metric("gnapd_tokens_rotated_total") >= 2,
        "{}",
        run.connector_stderr
    );
    assert!(
        run.connector_stderr.contains("access token rotated"),
        "{}",
        run.connector_stderr
    );
    // The expired token was replaced by a new grant, not a failure.
    assert_eq!(
        fixture.metric("gnapd_grants_total{outcome=\"approved\"}"),
        2
    );
    assert_upstream_clean(&fixture.upstream, &[]);
}

#[test]
fn a_revoked_token_is_renegotiated() {
    let fixture = fixture(false, "");
    let add = fixture.credentials(&["add", "github", &format!("bearer:{SECRET}")]);
    let remove = fixture.credentials(&["remove", "github"]);
    let status = Command::new(&add[0]).args(&add[1..]).status().unwrap();
    assert!(status.success());
    let call = json!({"call": "search_issues", "args": {"query": "bug"}});
    let run = run_stdio(
        &fixture,
        &[],
        &json!([
            call,
            // Removing the credential set revokes every token mapped to it;
            // with a set back in place, the connector's next call meets a
            // 401, negotiates a new grant and goes on in the same session.
            {"run": remove}, {"run": add},
            call,
            // Without a set, the new grant cannot reach the upstream, nor
            // the session opened under the old set: the MCP client gets a
            // clear error.
            {"run": remove},
            {"call": "search_issues", "args": {"query": "bug"}, "error": "reconnect"},
        ]),
    );
    run.assert_ok();
    assert!(
        run.connector_stderr.contains("negotiating a new grant"),
        "{}",
        run.connector_stderr
    );
    assert_eq!(
        fixture.metric("gnapd_grants_total{outcome=\"approved\"}"),
        3
    );
    assert_upstream_clean(&fixture.upstream, &[]);
}

#[test]
fn consent_page_approval_redirects_to_the_loopback_listener_and_narrows_the_tools() {
    let fixture = interactive_fixture();
    let run = run_stdio_with(
        &fixture,
        &[
            "--finish",
            "--tool",
            "search_issues",
            "--tool",
            "delete_repo",
        ],
        &json!([
            {"list": ["search_issues"]},
            {"call": "search_issues", "args": {"query": "bug"}},
            {"call": "delete_repo", "args": {"name": "x"}, "error": "not granted"},
        ]),
        |log| {
            // The tools are ticked in the order asked for: the person
            // unticks the second, `delete_repo`, and approves.
            let location = decide_on_consent_page(&fixture, log, "approve", |name, value| {
                !(name == "tool" && value.ends_with(".1"))
            });
            let landed = follow(&location);
            assert_eq!(landed.status, 200);
            assert!(html(&landed).contains("close this window"));
        },
    );
    run.assert_ok();
    assert_eq!(run.lines[2]["text"], "found 1 issue for bug");
    assert!(
        run.connector_stderr.contains("gnapd connect: approved"),
        "{}",
        run.connector_stderr
    );
    // The AS holds a finished grant back until its `interact_ref` is
    // presented: the token came through the redirect, not by polling.
    assert_eq!(fixture.metric("gnapd_grants_total{outcome=\"pending\"}"), 1);
    assert_eq!(fixture.metric("gnapd_tokens_issued_total"), 1);
    assert_upstream_clean(&fixture.upstream, &[]);
    assert!(
        fixture
            .upstream
            .requests()
            .iter()
            .all(|(_, h)| !h.iter().any(|(_, v)| v.contains("delete_repo"))),
        "an unticked tool reached the upstream"
    );
}

#[test]
fn without_a_finish_a_user_code_approval_is_picked_up_by_polling() {
    let fixture = interactive_fixture();
    let run = run_stdio_with(
        &fixture,
        &["--no-finish"],
        &json!([
            {"list": ALL_TOOLS},
            {"call": "search_issues", "args": {"query": "bug"}},
            {"call": "countdown", "args": {"steps": 2, "delay": 0.1}},
        ]),
        |log| {
            // On another device, say: the code page and the code.
            let prompt = read_prompt(log);
            let (uri, code) = prompt.code_page.expect("a user-code page and code");
            assert_eq!(uri, format!("{}/gnap/device", fixture.server.base()));
            assert_eq!(prompt.user_code.as_deref(), Some(code.as_str()));
            assert_eq!(get(&fixture.server, &uri).status, 200);
            let consent = post_form(&fixture.server, &uri, &[("code", &code)]);
            assert_eq!(consent.status, 200, "{}", html(&consent));
            let form = consent_form(&fixture.server, &html(&consent));
            // No finish was offered: the page says done, no redirect.
            let done = form.submit(&fixture.server, "approve", |_, _| true);
            assert_eq!(done.status, 200);
            assert!(html(&done).contains("Access approved"));
        },
    );
    run.assert_ok();
    assert_eq!(run.lines[2]["text"], "found 1 issue for bug");
    assert_eq!(run.lines[3]["text"], "liftoff");
    assert_eq!(fixture.metric("gnapd_tokens_issued_total"), 1);
    assert_upstream_clean(&fixture.upstream, &[]);
}

/// Runs the SDK client whose `initialize` must fail while `person` acts;
/// returns the JSON-RPC error's message.
/// The connector offers a redirect finish (`--finish`).
fn initialize_error(fixture: &Fixture, person: impl FnOnce(&Path) + Send) -> String {
    let run = run_stdio_with(fixture, &["--finish"], &json!([]), person);
    assert_eq!(run.code, Some(1), "{}", run.output);
    let line = &run.lines[0];
    assert_eq!(
        (&line["step"], &line["ok"]),
        (&json!("connect"), &json!(false)),
        "{}",
        run.output
    );
    // gnapd connect's error for a request it could not get a token for.
    assert_eq!(line["code"], gnapd::client::relay::UNAUTHORIZED, "{line}");
    // No token: nothing was issued, nothing reached the upstream.
    assert_eq!(fixture.metric("gnapd_tokens_issued_total"), 0);
    assert!(fixture.upstream.requests().is_empty());
    line["error"].as_str().unwrap().to_owned()
}

#[test]
fn consent_page_denial_is_a_jsonrpc_error_saying_access_was_denied() {
    let fixture = interactive_fixture();
    let message = initialize_error(&fixture, |log| {
        let location = decide_on_consent_page(&fixture, log, "deny", |_, _| true);
        assert_eq!(follow(&location).status, 200);
    });
    assert!(
        message.contains("the person denied the request") && message.contains("user_denied"),
        "{message}"
    );
}

#[test]
fn a_finish_redirect_with_a_forged_hash_is_refused_and_no_token_issued() {
    let fixture = interactive_fixture();
    let message = initialize_error(&fixture, |log| {
        // Approved, but the redirect the loopback listener receives
        // carries another hash: not made for this grant.
        let location = decide_on_consent_page(&fixture, log, "approve", |_, _| true);
        let (before, after) = location.split_once("hash=").unwrap();
        let rest = after.split_once('&').map_or("", |(_, rest)| rest);
        let forged = format!("{before}hash=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&{rest}");
        assert!(forged.contains("interact_ref="), "{forged}");
        assert_eq!(follow(&forged).status, 200);
    });
    assert!(message.contains("hash does not match"), "{message}");
}

/// Runs `gnapd agent ARGS`; returns (exit code, the JSON it printed).
fn agent(args: &[&str]) -> (Option<i32>, Value) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gnapd"));
    command.arg("agent").args(args);
    let finished = run_json_lines(command, Duration::from_secs(30), "gnapd agent");
    assert_eq!(finished.lines.len(), 1, "{}", finished.output);
    (finished.code, finished.lines[0].clone())
}

#[test]
fn the_agent_command_requests_calls_rotates_and_revokes() {
    let fixture = fixture(true, "");
    let key = fixture.dir.path().join("agent.jwk");
    let key = key.to_str().unwrap();
    let gateway = fixture.gateway();
    let (code, grant) = agent(&[
        "request",
        &gateway,
        "--key-file",
        key,
        "--tool",
        "search_issues",
    ]);
    assert_eq!(code, Some(0), "{grant}");
    assert_eq!(
        grant["access_token"]["access"],
        json!([{"type": "mcp", "identifier": "github", "tools": ["search_issues"]}])
    );
    let token = access_token(&grant).to_owned();
    let (manage_uri, manage) = management(&grant);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "agent-cli", "version": "1"}}})
    .to_string();
    let call = |token: &str| {
        agent(&[
            "call",
            &gateway,
            "--token",
            token,
            "--key-file",
            key,
            "--data",
            &init,
        ])
    };
    let (code, answer) = call(&token);
    assert_eq!(code, Some(0), "{answer}");
    assert_eq!(answer["status"], 200);
    // Another key cannot use the token.
    let other = fixture.dir.path().join("other.jwk");
    let (code, answer) = agent(&[
        "call",
        &gateway,
        "--token",
        &token,
        "--key-file",
        other.to_str().unwrap(),
        "--data",
        &init,
    ]);
    assert_eq!(
        (code, &answer["status"]),
        (Some(1), &json!(401)),
        "{answer}"
    );
    // Rotation: the old value dies at once, the new one works.
    let (code, rotated) = agent(&["rotate", manage_uri, "--token", manage, "--key-file", key]);
    assert_eq!(code, Some(0), "{rotated}");
    let new_token = access_token(&rotated).to_owned();
    let new_manage = rotated["access_token"]["manage"]["access_token"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(call(&token).1["status"], 401);
    assert_eq!(call(&new_token).1["status"], 200);
    // Revocation.
    let (code, revoked) = agent(&[
        "revoke",
        manage_uri,
        "--token",
        &new_manage,
        "--key-file",
        key,
    ]);
    assert_eq!(
        (code, &revoked["status"]),
        (Some(0), &json!(204)),
        "{revoked}"
    );
    let (code, refused) = call(&new_token);
    assert_eq!((code, &refused["status"]), (Some(1), &json!(401)));
    // The GNAP challenge among the gateway's (OAuth's come first, issue 16).
    let challenges = &refused["headers"]["www-authenticate"];
    assert!(
        challenges
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().starts_with("GNAP as_uri=")),
        "{challenges}"
    );
    // The key file was created private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(Path::new(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

fn wait_for(mut condition: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            std::time::Instant::now() < until,
            "condition not met in time"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A scripted AS and gateway on loopback, speaking RFC 9635 §3.3 and §9.1
/// as written, for what gnapd's AS never does to an agent that follows the
/// rules, or only by the luck of timing: `too_fast` with `Retry-After`, a
/// new continuation token on every answer, start modes the agent lacks
/// (`app`).
mod mock {
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Full};
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;

    /// One request as the mock saw it.
    #[derive(Debug, Clone)]
    pub struct Seen {
        pub method: String,
        pub path: String,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
        pub at: std::time::Instant,
    }

    impl Seen {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// The answer: status, headers, JSON body.
    pub type Answer = (u16, Vec<(&'static str, String)>, String);
    pub type Script = dyn Fn(&Seen, &[Seen], &str) -> Answer + Send + Sync;

    pub struct Mock {
        pub addr: SocketAddr,
        pub seen: Arc<Mutex<Vec<Seen>>>,
    }

    impl Mock {
        pub fn base(&self) -> String {
            format!("http://{}", self.addr)
        }
        pub fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    /// Serves `script(request, earlier requests, base URL)` on a free port.
    pub async fn start(script: Arc<Script>) -> Mock {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let script = script.clone();
                let log = log.clone();
                let base = format!("http://{addr}");
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let script = script.clone();
                        let log = log.clone();
                        let base = base.clone();
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.unwrap().to_bytes().to_vec();
                            let seen = Seen {
                                method: parts.method.as_str().to_owned(),
                                path: parts.uri.path().to_owned(),
                                headers: parts
                                    .headers
                                    .iter()
                                    .map(|(n, v)| {
                                        (n.as_str().to_owned(), v.to_str().unwrap().to_owned())
                                    })
                                    .collect(),
                                body,
                                at: std::time::Instant::now(),
                            };
                            let earlier = log.lock().unwrap().clone();
                            let (status, headers, body) = script(&seen, &earlier, &base);
                            log.lock().unwrap().push(seen);
                            let mut response = Response::builder()
                                .status(status)
                                .header("content-type", "application/json");
                            for (name, value) in headers {
                                response = response.header(name, value);
                            }
                            Ok::<_, Infallible>(
                                response.body(Full::new(Bytes::from(body))).unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Mock { addr, seen }
    }
}

/// The mock: a gateway challenge at /mcp/x, discovery listing `redirect`
/// and `user_code`, a grant that needs interaction, then continuation
/// answers from `continuations` in turn (the last one repeats).
fn interaction_script(continuations: Vec<mock::Answer>) -> Arc<mock::Script> {
    Arc::new(
        move |req, earlier, base| match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/mcp/x") | ("POST", "/mcp/x") if req.header("authorization").is_none() => (
                401,
                vec![(
                    "www-authenticate",
                    format!("GNAP as_uri=\"{base}/gnap\", access=\"mcp:x\""),
                )],
                r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"token required"}}"#
                    .into(),
            ),
            ("OPTIONS", "/gnap") => (
                200,
                vec![],
                json!({
                    "grant_request_endpoint": format!("{base}/gnap"),
                    "interaction_start_modes_supported": ["redirect", "user_code", "app"],
                    "key_proofs_supported": ["httpsig"]
                })
                .to_string(),
            ),
            ("POST", "/gnap") => (
                200,
                vec![],
                json!({
                    "interact": {
                        "redirect": format!("{base}/interact/4CF492MLVMSW9MKMXKHQ"),
                        "user_code": "A1BC3DFF",
                        "expires_in": 60
                    },
                    "continue": {
                        "access_token": {"value": "80UPRY5NM33OMUKMKSKU"},
                        "uri": format!("{base}/continue/1"),
                        "wait": 1
                    }
                })
                .to_string(),
            ),
            ("POST", "/continue/1") => {
                let n = earlier.iter().filter(|s| s.path == "/continue/1").count();
                let (status, headers, body) = continuations[n.min(continuations.len() - 1)].clone();
                (status, headers, body.replace("BASE", base))
            }
            _ => (404, vec![], "{}".into()),
        },
    )
}

/// Records what the agent shows the person.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<gnapd::client::grant::Interaction>>);

impl gnapd::client::Prompter for Recorder {
    fn interaction(&self, interaction: &gnapd::client::grant::Interaction) {
        self.0.lock().unwrap().push(interaction.clone());
    }
}

fn mock_agent(mock: &mock::Mock, recorder: Arc<Recorder>) -> gnapd::client::Agent {
    use gnapd::client::{Agent, AgentOptions, SigningClient, http::Http};
    let key =
        gnapd::proto::jwk::SigningKey::generate(gnapd::proto::httpsig::Algorithm::Ed25519).unwrap();
    let wire = SigningClient::new(
        Http::new(false).unwrap(),
        key,
        Arc::new(gnapd::clock::SystemClock),
    );
    Agent::new(
        wire,
        format!("{}/mcp/x", mock.base()),
        AgentOptions {
            approval_timeout: 30,
            finish_redirect: true,
            ..AgentOptions::default()
        },
        recorder,
    )
}

use std::sync::Arc;

#[test]
fn polling_honours_wait_too_fast_and_each_new_continuation_token() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mock = mock::start(interaction_script(vec![
            (
                429,
                vec![("retry-after", "1".into())],
                r#"{"error": {"code": "too_fast"}}"#.into(),
            ),
            (
                200,
                vec![],
                r#"{"continue": {"access_token": {"value": "NEXT-CONTINUATION"}, "uri": "BASE/continue/1", "wait": 1}}"#.into(),
            ),
            (
                200,
                vec![],
                r#"{"access_token": {"value": "OS9M2PMHKUR64TB8N6BW7OZB8CDFONP219RP1LT0", "expires_in": 60, "access": ["mcp:x"]}}"#.into(),
            ),
        ]))
        .await;
        let recorder = Arc::new(Recorder::default());
        let agent = mock_agent(&mock, recorder.clone());
        let presented = agent.token().await.unwrap();
        assert_eq!(presented.token, "OS9M2PMHKUR64TB8N6BW7OZB8CDFONP219RP1LT0");
        // What the person was shown: the redirect URI and the user code.
        let shown = recorder.0.lock().unwrap().clone();
        assert_eq!(shown.len(), 1);
        assert_eq!(
            shown[0].redirect.as_deref(),
            Some(format!("{}/interact/4CF492MLVMSW9MKMXKHQ", mock.base()).as_str())
        );
        assert_eq!(shown[0].user_code.as_deref(), Some("A1BC3DFF"));
        let seen = mock.seen();
        let grant = seen.iter().find(|s| s.path == "/gnap" && s.method == "POST").unwrap();
        let body: Value = serde_json::from_slice(&grant.body).unwrap();
        // Offered: the modes both sides support, in the agent's order.
        assert_eq!(body["interact"], json!({"start": ["redirect", "user_code"]}));
        assert_eq!(body["access_token"]["access"], json!(["mcp:x"]));
        assert_eq!(grant.header("referer"), Some(format!("{}/mcp/x", mock.base()).as_str()));
        let continues: Vec<&mock::Seen> =
            seen.iter().filter(|s| s.path == "/continue/1").collect();
        assert_eq!(continues.len(), 3);
        // The token after too_fast is the same (the AS did not swap it);
        // after a pending answer it is the new one.
        let auth: Vec<_> = continues.iter().map(|s| s.header("authorization").unwrap()).collect();
        assert_eq!(
            auth,
            ["GNAP 80UPRY5NM33OMUKMKSKU", "GNAP 80UPRY5NM33OMUKMKSKU", "GNAP NEXT-CONTINUATION"]
        );
        // Every request to the AS is signed under the GNAP profile, the
        // polls without a body.
        for request in seen.iter().filter(|s| s.method == "POST") {
            let input = request.header("signature-input").unwrap();
            assert!(input.contains("tag=\"gnap\"") && input.contains("created=") && input.contains("nonce="), "{input}");
        }
        assert!(continues.iter().all(|s| s.body.is_empty()));
        // `wait` (1 s) and Retry-After (1 s) were honoured; whole-second
        // clocks allow the gap to be a little short of a second.
        let first = seen.iter().find(|s| s.path == "/gnap" && s.method == "POST").unwrap();
        let mut previous = first.at;
        for request in &continues {
            assert!(
                request.at.duration_since(previous) >= Duration::from_millis(900),
                "polled after {:?}",
                request.at.duration_since(previous)
            );
            previous = request.at;
        }
    });
}

/// The AS's `finish` nonce and the `interact_ref` of the scripted redirect
/// finish (RFC 9635 §4.2.3's example values).
const AS_NONCE: &str = "MBDOFXG4Y5CVJCX821LH";
const INTERACT_REF: &str = "4IFWWIKYB2PQ6U56NL1";

/// Plays the person's browser for the scripted AS: as soon as the agent
/// shows the interaction, it follows the AS's redirect to the agent's
/// finish URI (read from the grant request) with the right `hash`.
struct RedirectingBrowser {
    seen: Arc<std::sync::Mutex<Vec<mock::Seen>>>,
    base: String,
}

impl gnapd::client::Prompter for RedirectingBrowser {
    fn interaction(&self, _: &gnapd::client::grant::Interaction) {
        let seen = self.seen.lock().unwrap().clone();
        let grant = seen
            .iter()
            .find(|s| s.path == "/gnap" && s.method == "POST")
            .unwrap();
        let body: Value = serde_json::from_slice(&grant.body).unwrap();
        let finish = &body["interact"]["finish"];
        let uri = finish["uri"].as_str().unwrap().to_owned();
        let hash = gnapd::client::finish::interaction_hash(
            finish["nonce"].as_str().unwrap(),
            AS_NONCE,
            INTERACT_REF,
            &format!("{}/gnap", self.base),
        );
        std::thread::spawn(move || {
            let landed = follow(&format!("{uri}?hash={hash}&interact_ref={INTERACT_REF}"));
            assert_eq!(landed.status, 200);
        });
    }
}

#[test]
fn a_finish_redirect_waits_out_wait_and_keeps_interact_ref_after_too_fast() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // The first continuation with the `interact_ref` meets `too_fast`;
        // only a continuation with it gets the token; a poll stays pending.
        let script: Arc<mock::Script> = Arc::new(|req, earlier, base| {
            match (req.method.as_str(), req.path.as_str()) {
                ("OPTIONS", "/gnap") => (
                    200,
                    vec![],
                    json!({
                        "grant_request_endpoint": format!("{base}/gnap"),
                        "interaction_start_modes_supported": ["redirect"],
                        "interaction_finish_methods_supported": ["redirect"],
                    })
                    .to_string(),
                ),
                ("POST", "/gnap") => (
                    200,
                    vec![],
                    json!({
                        "interact": {"redirect": format!("{base}/interact/1"), "finish": AS_NONCE},
                        "continue": {"access_token": {"value": "CONT"}, "uri": format!("{base}/continue/1"), "wait": 1}
                    })
                    .to_string(),
                ),
                ("POST", "/continue/1") if !req.body.is_empty() => {
                    let body: Value = serde_json::from_slice(&req.body).unwrap();
                    assert_eq!(body, json!({"interact_ref": INTERACT_REF}));
                    if earlier.iter().any(|s| s.path == "/continue/1" && !s.body.is_empty()) {
                        (200, vec![], r#"{"access_token": {"value": "FINISHED-TOKEN"}}"#.into())
                    } else {
                        (
                            429,
                            vec![("retry-after", "1".into())],
                            r#"{"error": {"code": "too_fast"}}"#.into(),
                        )
                    }
                }
                ("POST", "/continue/1") => (
                    200,
                    vec![],
                    json!({"continue": {"access_token": {"value": "CONT"}, "uri": format!("{base}/continue/1"), "wait": 1}})
                        .to_string(),
                ),
                _ => (404, vec![], "{}".into()),
            }
        });
        let mock = mock::start(script).await;
        use gnapd::client::{Agent, AgentOptions, SigningClient, http::Http};
        let key = gnapd::proto::jwk::SigningKey::generate(
            gnapd::proto::httpsig::Algorithm::Ed25519,
        )
        .unwrap();
        let agent = Agent::new(
            SigningClient::new(Http::new(false).unwrap(), key, Arc::new(gnapd::clock::SystemClock)),
            format!("{}/mcp/x", mock.base()),
            AgentOptions {
                as_uri: Some(format!("{}/gnap", mock.base())),
                access: Some(gnapd::client::AccessSpec::Reference("mcp:x".into())),
                approval_timeout: 30,
                finish_redirect: true,
                ..AgentOptions::default()
            },
            Arc::new(RedirectingBrowser {
                seen: mock.seen.clone(),
                base: mock.base(),
            }),
        );
        let presented = tokio::time::timeout(Duration::from_secs(20), agent.token())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(presented.token, "FINISHED-TOKEN");
        let seen = mock.seen();
        let granted = seen.iter().find(|s| s.path == "/gnap" && s.method == "POST").unwrap();
        let with_ref: Vec<_> = seen
            .iter()
            .filter(|s| s.path == "/continue/1" && !s.body.is_empty())
            .collect();
        assert_eq!(with_ref.len(), 2, "{seen:?}");
        // Even with the redirect back at once, the continuation came no
        // sooner than `wait` (1 s; whole-second clocks may shave a little),
        // and the retry after `too_fast` honoured its Retry-After.
        for (earlier, later) in [(granted.at, with_ref[0].at), (with_ref[0].at, with_ref[1].at)] {
            let gap = later.duration_since(earlier);
            assert!(gap >= Duration::from_millis(900), "continued after {gap:?}");
        }
    });
}

#[test]
fn a_stateless_request_carries_its_own_protocol_version_header() {
    // MCP 2026-07-28: no `initialize`; each request names its protocol
    // version in `_meta`. The relay sends that version in
    // `MCP-Protocol-Version` (signed, like every MCP header).
    use std::io::{BufRead as _, Write as _};
    let f = fixture(true, "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gnapd"))
        .args(["connect", &f.gateway()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let request = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}}}});
    writeln!(stdin, "{request}").unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Whatever the (handshake-era) upstream answers, the answer is for id 7.
    let line = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("an answer on stdout");
    let answer: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(answer["id"], 7, "{answer}");
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let seen: Vec<String> = f
        .upstream
        .requests()
        .iter()
        .filter(|(method, _)| method == "POST")
        .flat_map(|(_, headers)| {
            headers
                .iter()
                .filter(|(n, _)| n == "mcp-protocol-version")
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(seen, ["2026-07-28"], "{:?}", f.upstream.requests());
}

#[test]
fn a_default_connect_completes_when_the_admin_approves_with_gnapd_grants_approve() {
    let fixture = interactive_fixture();
    let run = run_stdio_with(
        &fixture,
        &[],
        &json!([
            {"list": ALL_TOOLS},
            {"call": "search_issues", "args": {"query": "bug"}},
        ]),
        |log| {
            // No browser comes: the admin approves on the server, by the
            // code the connector printed.
            let prompt = read_prompt(log);
            let code = prompt.user_code.expect("a user code");
            let data = Path::new(&fixture.data_dir()).to_owned();
            let (ok, out) = crate::support::run::gnapd_cli(&data, &["grants", "approve", &code]);
            assert!(ok, "{out}");
        },
    );
    run.assert_ok();
    assert_eq!(run.lines[2]["text"], "found 1 issue for bug");
    // No finish was offered, so polling picked the approval up.
    assert!(
        !run.connector_stderr.contains("gnap-finish"),
        "{}",
        run.connector_stderr
    );
    assert_eq!(fixture.metric("gnapd_tokens_issued_total"), 1);
}

#[test]
fn the_relay_exits_when_its_stdin_closes_while_it_waits_for_approval() {
    let fixture = interactive_fixture();
    let log = fixture.dir.path().join("connect-stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gnapd"))
        .args(["connect", &fixture.gateway()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _ = read_prompt(&log);
    // The MCP client goes away while the person is still awaited.
    drop(child.stdin.take());
    let until = std::time::Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > until {
            let _ = child.kill();
            panic!(
                "gnapd connect still waits after stdin closed:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        stderr.contains("stdin closed while waiting for approval"),
        "{stderr}"
    );
}
