//! `gnapd connect` end to end: the official Python MCP SDK's stdio client
//! (tests/interop/mcp_stdio_client.py) launches `gnapd connect URL`, which
//! negotiates a grant with a fresh key and relays to
//! `gnapd serve --dev --upstream github=…` in front of the real Python MCP
//! upstream (tests/interop/mcp_upstream.py) holding an upstream bearer
//! credential. Also: token rotation and revocation in a live session, and
//! the scripted `gnapd agent` steps.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gnapd::proto::httpsig::HttpRequest;
use serde_json::{Value, json};

use crate::common::{python, root, run_json_lines};
use crate::gateway_sdk::{SECRET, assert_upstream_clean};
use crate::http_client::send;
use crate::mcp_upstream::Upstream;
use crate::server::Server;

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
    let log = fixture.dir.path().join("connect-stderr.log");
    let _ = std::fs::remove_file(&log);
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
    let finished = run_json_lines(command, CLIENT_DEADLINE, "mcp_stdio_client.py");
    Run {
        code: finished.code,
        lines: finished.lines,
        output: finished.output,
        connector_stderr: std::fs::read_to_string(&log).unwrap_or_default(),
    }
}

#[test]
fn connect_sdk_stdio_client_lists_and_calls_through_the_gateway() {
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
fn connect_tool_flag_narrows_the_grant_to_that_tool() {
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
fn connect_session_survives_token_rotation() {
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
fn connect_renegotiates_when_the_token_is_revoked() {
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

/// Runs `gnapd agent ARGS`; returns (exit code, the JSON it printed).
fn agent(args: &[&str]) -> (Option<i32>, Value) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gnapd"));
    command.arg("agent").args(args);
    let finished = run_json_lines(command, Duration::from_secs(30), "gnapd agent");
    assert_eq!(finished.lines.len(), 1, "{}", finished.output);
    (finished.code, finished.lines[0].clone())
}

#[test]
fn agent_cli_request_call_rotate_revoke() {
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
    let token = grant["access_token"]["value"].as_str().unwrap().to_owned();
    let manage_uri = grant["access_token"]["manage"]["uri"].as_str().unwrap();
    let manage = grant["access_token"]["manage"]["access_token"]["value"]
        .as_str()
        .unwrap();
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
    let new_token = rotated["access_token"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
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
    let challenge = refused["headers"]["www-authenticate"][0].as_str().unwrap();
    assert!(challenge.starts_with("GNAP as_uri="), "{challenge}");
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
/// as written, for the interaction paths the real AS does not offer yet.
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
    use gnapd::client::{Agent, AgentOptions, Wire, http::Http};
    let key =
        gnapd::proto::jwk::SigningKey::generate(gnapd::proto::httpsig::Algorithm::Ed25519).unwrap();
    let wire = Wire::new(
        Http::new(false).unwrap(),
        key,
        Arc::new(gnapd::clock::SystemClock),
    );
    Agent::new(
        wire,
        format!("{}/mcp/x", mock.base()),
        AgentOptions {
            approval_timeout: 30,
            ..AgentOptions::default()
        },
        recorder,
    )
}

use std::sync::Arc;

#[test]
fn connect_interaction_prompts_then_polls_honouring_wait_and_too_fast() {
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

#[test]
fn connect_interaction_denied_is_a_clear_error_and_mcp_error() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let denied = (
            403,
            vec![],
            r#"{"error": {"code": "user_denied", "description": "the person said no"}}"#.to_owned(),
        );
        let mock = mock::start(interaction_script(vec![denied])).await;
        // The library reports the denial.
        let recorder = Arc::new(Recorder::default());
        let agent = mock_agent(&mock, recorder.clone());
        let error = agent.token().await.unwrap_err().to_string();
        assert!(
            error.contains("denied") && error.contains("user_denied"),
            "{error}"
        );
        assert_eq!(recorder.0.lock().unwrap().len(), 1);
        // Through the relay, the MCP client gets it as the answer to its
        // request, on stdout, as one JSON-RPC line.
        let agent = Arc::new(mock_agent(&mock, Arc::new(Recorder::default())));
        let (mut client_in, relay_in) = tokio::io::duplex(64 * 1024);
        let (relay_out, client_out) = tokio::io::duplex(64 * 1024);
        let relay = tokio::spawn(gnapd::client::relay::run(
            agent,
            relay_in,
            relay_out,
            gnapd::client::relay::RelayOptions::default(),
        ));
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
        client_in
            .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"initialize\",\"params\":{}}\n")
            .await
            .unwrap();
        let mut lines = tokio::io::BufReader::new(client_out).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let message: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(message["id"], 7, "{message}");
        let text = message["error"]["message"].as_str().unwrap();
        assert!(text.contains("denied"), "{text}");
        drop(client_in);
        tokio::time::timeout(Duration::from_secs(30), relay)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        // Nothing reached the gateway with a token.
        assert!(
            mock.seen()
                .iter()
                .all(|s| s.header("authorization").is_none() || !s.path.starts_with("/mcp"))
        );
    });
}

/// The AS nonce of the finish tests (RFC 9635 §4.2.3's example value).
const AS_NONCE: &str = "MBDOFXG4Y5CVJCX821LH";
const INTERACT_REF: &str = "4IFWWIKYB2PQ6U56NL1";

/// A mock AS offering a redirect finish; the continuation approves only
/// with the right `interact_ref`, and asks for long polling waits, so the
/// grant can only finish through the redirect in time.
fn finish_script() -> Arc<mock::Script> {
    Arc::new(|req, _earlier, base| {
        match (req.method.as_str(), req.path.as_str()) {
        ("OPTIONS", "/gnap") => (
            200,
            vec![],
            json!({
                "grant_request_endpoint": format!("{base}/gnap"),
                "interaction_start_modes_supported": ["redirect"],
                "interaction_finish_methods_supported": ["redirect", "push"],
            })
            .to_string(),
        ),
        ("POST", "/gnap") => (
            200,
            vec![],
            json!({
                "interact": {"redirect": format!("{base}/interact/1"), "finish": AS_NONCE},
                "continue": {"access_token": {"value": "CONT"}, "uri": format!("{base}/continue/1"), "wait": 20}
            })
            .to_string(),
        ),
        ("POST", "/continue/1") => {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            if body["interact_ref"] == INTERACT_REF {
                (200, vec![], r#"{"access_token": {"value": "FINISHED-TOKEN"}}"#.into())
            } else {
                (400, vec![], r#"{"error": "invalid_request"}"#.into())
            }
        }
        _ => (404, vec![], "{}".into()),
    }
    })
}

/// Plays the person's browser: when the agent shows the interaction, it
/// reads the agent's finish URI and nonce from the grant request the mock
/// received, and follows the AS's redirect there with `hash` (right or
/// wrong) and `interact_ref`.
struct Browser {
    seen: Arc<std::sync::Mutex<Vec<mock::Seen>>>,
    base: String,
    tamper: bool,
}

impl gnapd::client::Prompter for Browser {
    fn interaction(&self, _: &gnapd::client::grant::Interaction) {
        let seen = self.seen.lock().unwrap().clone();
        let grant = seen
            .iter()
            .find(|s| s.path == "/gnap" && s.method == "POST")
            .unwrap();
        let body: Value = serde_json::from_slice(&grant.body).unwrap();
        let finish = &body["interact"]["finish"];
        assert_eq!(finish["method"], "redirect");
        let uri = finish["uri"].as_str().unwrap().to_owned();
        let nonce = finish["nonce"].as_str().unwrap();
        let grant_endpoint = format!("{}/gnap", self.base);
        let mut hash =
            gnapd::client::finish::interaction_hash(nonce, AS_NONCE, INTERACT_REF, &grant_endpoint);
        if self.tamper {
            hash = gnapd::client::finish::interaction_hash(
                nonce,
                AS_NONCE,
                INTERACT_REF,
                "https://other.example/gnap",
            );
        }
        std::thread::spawn(move || {
            use std::io::{Read as _, Write as _};
            let rest = uri.strip_prefix("http://").unwrap();
            let (host, path) = rest.split_once('/').unwrap();
            let mut stream = std::net::TcpStream::connect(host).unwrap();
            write!(
                stream,
                "GET /{path}?hash={hash}&interact_ref={INTERACT_REF} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        });
    }
}

fn finish_agent(mock: &mock::Mock, tamper: bool) -> gnapd::client::Agent {
    use gnapd::client::{Agent, AgentOptions, Wire, http::Http};
    let key =
        gnapd::proto::jwk::SigningKey::generate(gnapd::proto::httpsig::Algorithm::Ed25519).unwrap();
    Agent::new(
        Wire::new(
            Http::new(false).unwrap(),
            key,
            Arc::new(gnapd::clock::SystemClock),
        ),
        format!("{}/mcp/x", mock.base()),
        AgentOptions {
            as_uri: Some(format!("{}/gnap", mock.base())),
            access: Some(gnapd::client::AccessSpec::Reference("mcp:x".into())),
            approval_timeout: 60,
            ..AgentOptions::default()
        },
        Arc::new(Browser {
            seen: mock.seen.clone(),
            base: mock.base(),
            tamper,
        }),
    )
}

#[test]
fn connect_interaction_finish_redirect_to_loopback_checks_the_hash() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mock = mock::start(finish_script()).await;
        let agent = finish_agent(&mock, false);
        let presented = tokio::time::timeout(Duration::from_secs(15), agent.token())
            .await
            .expect("the redirect, not the 20 s poll, finished the grant")
            .unwrap();
        assert_eq!(presented.token, "FINISHED-TOKEN");
        let seen = mock.seen();
        let continues: Vec<_> = seen.iter().filter(|s| s.path == "/continue/1").collect();
        assert_eq!(continues.len(), 1);
        let body: Value = serde_json::from_slice(&continues[0].body).unwrap();
        assert_eq!(body, json!({"interact_ref": INTERACT_REF}));
        assert!(continues[0].header("content-digest").is_some());
        // A redirect whose hash was made for another grant endpoint is
        // refused and never used.
        let mock = mock::start(finish_script()).await;
        let agent = finish_agent(&mock, true);
        let error = tokio::time::timeout(Duration::from_secs(15), agent.token())
            .await
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(error.contains("hash"), "{error}");
        assert!(mock.seen().iter().all(|s| s.path != "/continue/1"));
    });
}
