//! The MCP gateway over real HTTP: `gnapd serve --dev --upstream …` in front
//! of a real MCP server built on the official Python SDK
//! (tests/interop/mcp_upstream.py), driven with signed JSON-RPC calls that
//! follow the Streamable HTTP handshake. The upstream logs the headers of
//! every request it receives, so the tests see what crossed the gateway.
//!
//! The upstream runs from the virtualenv `scripts/test.sh` creates; a missing
//! Python or `mcp` package is a failure, never a skip.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gnapd::clock::{Clock as _, SystemClock};
use gnapd::proto::httpsig::{HttpRequest, SignOptions, sign_gnap};
use serde_json::{Value, json};

use crate::support::agent::{Agent, access_token, management};
use crate::support::http_client::{Answer, send};
use crate::support::mcp_upstream::Upstream;
use crate::support::server::{Serve, Server, start_logged};

const SECRET: &str = "UPSTREAM-SECRET";
pub(crate) const VERSION: &str = "2025-11-25";

struct Fixture {
    upstream: Upstream,
    server: Server,
    /// gnapd's stderr, at `debug` level.
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// Neither the upstream secret nor any of `tokens` is in gnapd's log.
    fn assert_log_clean(&self, tokens: &[&str]) {
        let log = std::fs::read_to_string(&self.log).unwrap();
        assert!(log.contains("upstream"), "gnapd logged nothing: {log}");
        assert!(!log.contains(SECRET), "the upstream secret was logged");
        for token in tokens {
            assert!(!log.contains(token), "an access token was logged");
        }
    }
}

fn fixture(json_response: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    // A short upstream timeout, so the 504 test is quick.
    let config = dir.path().join("gnapd.toml");
    std::fs::write(&config, "upstream_timeout = 2\n").unwrap();
    let config = config.display().to_string();
    let upstream = Upstream::start(dir.path(), json_response);
    let github = format!("github={}", upstream.url());
    let credential = format!("github=bearer:{SECRET}");
    let failing = format!("failing={}?fail=1", upstream.url());
    let data = dir.path().join("data");
    let log = dir.path().join("gnapd.log");
    let server = start_logged(
        &data,
        &log,
        &[
            "--config",
            &config,
            "--dev",
            "--upstream",
            &github,
            "--upstream-credential",
            &credential,
            // Nothing listens on port 1: connection refused.
            "--upstream",
            "dead=http://127.0.0.1:1/mcp",
            // Answers 500.
            "--upstream",
            &failing,
        ],
    );
    Fixture {
        upstream,
        server,
        log,
        _dir: dir,
    }
}

pub(crate) fn now() -> i64 {
    SystemClock.now()
}

/// A token for `access` from the dev-mode AS.
pub(crate) fn token(server: &Server, agent: &Agent, access: Value) -> String {
    let req = agent.signed(
        "POST",
        &server.grant_endpoint,
        None,
        Some(&agent.grant_body(access)),
        now(),
    );
    let answer = send(server.addr, &req);
    assert_eq!(answer.status, 200, "{}", answer.text());
    access_token(&answer.json()).to_owned()
}

/// An MCP client session through the gateway: signs every request.
pub(crate) struct Session<'a> {
    pub(crate) server: &'a Server,
    pub(crate) agent: &'a Agent,
    pub(crate) token: Option<String>,
    pub(crate) upstream: &'a str,
    pub(crate) session_id: Option<String>,
    pub(crate) next_id: i64,
}

impl<'a> Session<'a> {
    pub(crate) fn new(
        server: &'a Server,
        agent: &'a Agent,
        token: Option<String>,
        upstream: &'a str,
    ) -> Self {
        Self {
            server,
            agent,
            token,
            upstream,
            session_id: None,
            next_id: 1,
        }
    }

    pub(crate) fn uri(&self) -> String {
        format!("{}/mcp/{}", self.server.base(), self.upstream)
    }

    /// A signed request, not yet sent.
    pub(crate) fn request(
        &self,
        method: &str,
        body: Option<&Value>,
        extra: &[(&str, &str)],
    ) -> HttpRequest {
        let mut req = HttpRequest::new(method, self.uri());
        req.fields
            .append("Accept", "application/json, text/event-stream");
        if let Some(body) = body {
            req.body = serde_json::to_vec(body).unwrap();
            req.fields.append("Content-Type", "application/json");
        }
        if let Some(session) = &self.session_id {
            req.fields.append("Mcp-Session-Id", session.as_str());
            req.fields.append("MCP-Protocol-Version", VERSION);
        }
        for (name, value) in extra {
            req.fields.append(*name, *value);
        }
        if let Some(token) = &self.token {
            req.fields.append("Authorization", format!("GNAP {token}"));
            sign_gnap(&mut req, &self.agent.key, now(), &SignOptions::default()).unwrap();
        }
        req
    }

    pub(crate) fn send(&self, req: &HttpRequest) -> Answer {
        send(self.server.addr, req)
    }

    pub(crate) fn call(&mut self, method: &str, params: Value) -> Answer {
        let body =
            json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params});
        self.next_id += 1;
        let req = self.request("POST", Some(&body), &[]);
        self.send(&req)
    }

    pub(crate) fn notify(&self, method: &str) -> Answer {
        let body = json!({"jsonrpc": "2.0", "method": method});
        self.send(&self.request("POST", Some(&body), &[]))
    }

    pub(crate) fn initialize(&mut self) -> Value {
        let answer = self.call(
            "initialize",
            json!({"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "gnapd-test", "version": "0"}}),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        self.session_id = answer.header("mcp-session-id").map(str::to_owned);
        assert!(self.session_id.is_some(), "the upstream minted no session");
        let message = rpc(&answer);
        let initialized = self.notify("notifications/initialized");
        assert_eq!(initialized.status, 202, "{}", initialized.text());
        message
    }
}

/// The JSON-RPC response in an answer, JSON or SSE (the last `data:` event
/// that carries an `id`).
pub(crate) fn rpc(answer: &Answer) -> Value {
    let content_type = answer.header("content-type").unwrap_or("");
    if content_type.starts_with("text/event-stream") {
        let text = answer.text().replace("\r\n", "\n");
        text.split("\n\n")
            .filter_map(|event| {
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                serde_json::from_str::<Value>(&data.join("\n")).ok()
            })
            .filter(|v| v.get("id").is_some())
            .last()
            .unwrap_or(Value::Null)
    } else {
        answer.json()
    }
}

pub(crate) fn tool_names(list: &Value) -> Vec<String> {
    list["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {list}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

fn search_only() -> Value {
    json!([{"type": "mcp", "identifier": "github", "actions": ["tools/list", "tools/call"], "tools": ["search_issues"]}])
}

/// The upstream saw the gateway's credential on every request and never
/// anything of the agent's.
fn assert_clean(upstream: &Upstream, agent_token: &str) {
    let requests = upstream.requests();
    assert!(!requests.is_empty());
    for (method, headers) in &requests {
        let get = |name: &str| {
            headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            get("authorization"),
            [format!("Bearer {SECRET}").as_str()],
            "{method}: {headers:?}"
        );
        for name in [
            "signature",
            "signature-input",
            "content-digest",
            "cookie",
            "forwarded",
            "x-forwarded-for",
        ] {
            assert!(
                get(name).is_empty(),
                "{method}: {name} reached the upstream"
            );
        }
        assert!(
            headers.iter().all(|(_, v)| !v.contains(agent_token)),
            "{method}: the agent's token reached the upstream"
        );
    }
}

#[test]
fn a_session_over_sse_is_filtered_and_its_credentials_swapped() {
    let f = fixture(false);
    let agent = Agent::new();
    let token = token(&f.server, &agent, search_only());
    let mut s = Session::new(&f.server, &agent, Some(token.clone()), "github");

    let init = s.initialize();
    assert_eq!(init["result"]["protocolVersion"], VERSION);

    let list = s.call("tools/list", json!({}));
    assert_eq!(list.status, 200);
    assert!(
        list.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(tool_names(&rpc(&list)), ["search_issues"]);

    let call = s.call(
        "tools/call",
        json!({"name": "search_issues", "arguments": {"query": "gnap"}}),
    );
    assert_eq!(call.status, 200, "{}", call.text());
    let result = rpc(&call);
    assert_eq!(
        result["result"]["content"][0]["text"], "found 1 issue for gnap",
        "{result}"
    );

    // An ungranted tool: refused at the gateway, never sent upstream.
    let before = f.upstream.requests().len();
    let denied = s.call(
        "tools/call",
        json!({"name": "delete_repo", "arguments": {"name": "gnapd"}}),
    );
    assert_eq!(denied.status, 403);
    let error = denied.json();
    assert_eq!(error["id"], s.next_id - 1);
    assert_eq!(error["error"]["code"], -32003);
    assert_eq!(f.upstream.requests().len(), before);

    // Smuggled headers go nowhere.
    let body = json!({"jsonrpc": "2.0", "id": 99, "method": "ping"});
    let smuggled = s.request(
        "POST",
        Some(&body),
        &[
            ("Cookie", "session=agent"),
            ("Forwarded", "for=1.2.3.4"),
            ("X-Forwarded-For", "1.2.3.4"),
        ],
    );
    assert_eq!(s.send(&smuggled).status, 200);

    // DELETE ends the session, upstream.
    let end = s.send(&s.request("DELETE", None, &[]));
    assert!(end.status < 300, "DELETE: {}", end.status);
    assert!(f.upstream.requests().iter().any(|(m, _)| m == "DELETE"));

    assert_clean(&f.upstream, &token);
    f.assert_log_clean(&[&token]);
}

#[test]
fn a_session_serves_only_the_key_that_opened_it() {
    let f = fixture(true);
    let alice = Agent::new();
    let mallory = Agent::new();
    let alice_token = token(&f.server, &alice, search_only());
    let mallory_token = token(&f.server, &mallory, search_only());
    let mut a = Session::new(&f.server, &alice, Some(alice_token), "github");
    a.initialize();
    let stolen = a.session_id.clone().unwrap();

    // Mallory holds a valid token and Alice's session id: the gateway
    // answers as if the session did not exist, and the upstream sees nothing.
    let mut m = Session::new(&f.server, &mallory, Some(mallory_token), "github");
    m.session_id = Some(stolen.clone());
    let before = f.upstream.requests().len();
    let hijack = m.call("tools/list", json!({}));
    assert_eq!(hijack.status, 404, "{}", hijack.text());
    assert_eq!(hijack.json()["error"]["code"], -32001);
    assert_eq!(m.send(&m.request("DELETE", None, &[])).status, 404);
    assert_eq!(f.upstream.requests().len(), before);

    // A session id the gateway never saw opened is refused the same way.
    a.session_id = Some("made-up-session".into());
    assert_eq!(a.call("tools/list", json!({})).status, 404);

    // Alice's own session works, and once she ends it, it is gone.
    a.session_id = Some(stolen);
    assert_eq!(a.call("tools/list", json!({})).status, 200);
    assert!(a.send(&a.request("DELETE", None, &[])).status < 300);
    assert_eq!(a.call("tools/list", json!({})).status, 404);
}

/// Sends `request` on a new connection to `addr`; the answer's body is left
/// to read as it arrives.
async fn exchange_open(
    addr: std::net::SocketAddr,
    request: &HttpRequest,
) -> hyper::Response<hyper::body::Incoming> {
    use http_body_util::Full;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let uri = gnapd::proto::httpsig::message::TargetUri::parse(&request.target_uri).unwrap();
    let mut builder = hyper::Request::builder()
        .method(request.method.as_str())
        .uri(uri.normalized_path().to_owned())
        .header("host", uri.authority);
    for (name, value) in request.fields.iter() {
        builder = builder.header(name, value);
    }
    sender
        .send_request(
            builder
                .body(Full::new(bytes::Bytes::from(request.body.clone())))
                .unwrap(),
        )
        .await
        .unwrap()
}

/// Sends `request` and reads the whole answer: the status, and each body
/// chunk with when it came.
pub(crate) fn send_streaming(
    addr: std::net::SocketAddr,
    request: &HttpRequest,
) -> (u16, Vec<(Duration, String)>) {
    use http_body_util::BodyExt as _;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let started = Instant::now();
        let response = exchange_open(addr, request).await;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut chunks = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                chunks.push((
                    started.elapsed(),
                    String::from_utf8_lossy(&data).into_owned(),
                ));
            }
        }
        (status, chunks)
    })
}

/// Sends `request` on a thread and gives each body chunk as it arrives
/// (the status first, as `"status N"`).
pub(crate) fn stream(
    addr: std::net::SocketAddr,
    request: HttpRequest,
) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use http_body_util::BodyExt as _;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let response = exchange_open(addr, &request).await;
            let _ = tx.send(format!("status {}", response.status().as_u16()));
            let mut body = response.into_body();
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    let _ = tx.send(String::from_utf8_lossy(&data).into_owned());
                }
            }
        });
    });
    rx
}

/// The text of the event stream answering `tools/list` (request `id`) in
/// session `s`.
fn tools_list_stream(s: &Session<'_>, id: Value) -> String {
    let list = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"});
    let (status, chunks) = send_streaming(s.server.addr, &s.request("POST", Some(&list), &[]));
    assert_eq!(status, 200);
    chunks.iter().map(|(_, c)| c.as_str()).collect()
}

/// gnapd in dev mode in front of `url` as upstream `github`, presenting the
/// bearer credential there.
pub(crate) fn dev_gateway_for_github(dir: &Path, url: &str) -> Server {
    let github = format!("github={url}");
    let credential = format!("github=bearer:{SECRET}");
    start_logged(
        &dir.join("data"),
        &dir.join("gnapd.log"),
        &[
            "--dev",
            "--upstream",
            &github,
            "--upstream-credential",
            &credential,
        ],
    )
}

#[test]
fn a_resumed_stream_replays_tool_lists_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start_resumable(dir.path());
    let server = dev_gateway_for_github(dir.path(), &upstream.url());
    let agent = Agent::new();
    let token = token(&server, &agent, search_only());
    let mut s = Session::new(&server, &agent, Some(token), "github");
    s.initialize();

    // tools/list answered on an SSE stream whose events carry ids: the
    // answer is filtered.
    let text = tools_list_stream(&s, json!(40));
    assert!(
        text.contains("search_issues") && !text.contains("delete_repo"),
        "{text}"
    );
    let first = text
        .lines()
        .find_map(|l| l.strip_prefix("id:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no event id in {text}"))
        .to_owned();

    // Resuming that stream from its first event: the upstream replays the
    // answer on a GET, where the gateway filters it as well.
    let replay = stream(
        server.addr,
        s.request("GET", None, &[("Last-Event-ID", &first)]),
    );
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains("\"tools\"") && Instant::now() < deadline {
        if let Ok(chunk) = replay.recv_timeout(Duration::from_millis(200)) {
            seen.push_str(&chunk);
        }
    }
    assert!(seen.starts_with("status 200"), "{seen}");
    assert!(seen.contains("search_issues"), "no replayed answer: {seen}");
    assert!(!seen.contains("delete_repo"), "{seen}");
    assert_clean(&upstream, s.token.as_deref().unwrap());
}

#[test]
fn a_get_or_delete_with_a_body_is_refused_so_no_body_can_unfilter_a_replayed_stream() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start_resumable(dir.path());
    let server = dev_gateway_for_github(dir.path(), &upstream.url());
    let agent = Agent::new();
    let token = token(&server, &agent, search_only());
    let mut s = Session::new(&server, &agent, Some(token), "github");
    s.initialize();
    let text = tools_list_stream(&s, json!(40));
    let first = text
        .lines()
        .find_map(|l| l.strip_prefix("id:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no event id in {text}"))
        .to_owned();
    let before = upstream.requests().len();

    // A resumption whose body names another method than tools/list: a
    // gateway that took its filtering from the body would replay the
    // tool list whole.
    let ping = json!({"jsonrpc": "2.0", "id": 41, "method": "ping"});
    let replay = stream(
        server.addr,
        s.request("GET", Some(&ping), &[("Last-Event-ID", &first)]),
    );
    let mut seen = replay
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_default();
    while let Ok(chunk) = replay.recv_timeout(Duration::from_millis(500)) {
        seen.push_str(&chunk);
    }
    assert!(seen.starts_with("status 400"), "{seen}");
    assert!(!seen.contains("delete_repo"), "{seen}");
    assert!(seen.contains("-32600"), "{seen}");

    // A DELETE with a body: refused, the session lives on.
    let end = s.send(&s.request("DELETE", Some(&ping), &[]));
    assert_eq!(end.status, 400, "{}", end.text());
    assert_eq!(end.json()["error"]["code"], -32600);
    // A POST carries one message: without a body it is no JSON (-32700).
    let empty = s.send(&s.request("POST", None, &[]));
    assert_eq!(empty.status, 400, "{}", empty.text());
    assert_eq!(empty.json()["error"]["code"], -32700);
    assert_eq!(
        upstream.requests().len(),
        before,
        "a request reached the upstream"
    );
    assert_eq!(s.call("ping", json!({})).status, 200);
}

/// The reference TypeScript server (`@modelcontextprotocol/server-everything`
/// over Streamable HTTP) on a free port; killed when dropped.
struct EverythingHttp {
    child: Child,
    port: u16,
}

impl EverythingHttp {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("node")
            .arg(crate::gateway_stdio::everything_script())
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "server-everything did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }
}

impl Drop for EverythingHttp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn typescript_server_tool_lists_are_filtered_whatever_spelling_of_the_id_comes_back() {
    let everything = EverythingHttp::start();
    let dir = tempfile::tempdir().unwrap();
    let upstream = format!("everything=http://127.0.0.1:{}/mcp", everything.port);
    let server = start_logged(
        &dir.path().join("data"),
        &dir.path().join("gnapd.log"),
        &["--dev", "--upstream", &upstream],
    );
    let agent = Agent::new();
    let echo_only = json!([{"type": "mcp", "identifier": "everything",
        "actions": ["tools/list", "tools/call"], "tools": ["echo"]}]);
    let token = token(&server, &agent, echo_only);
    let mut s = Session::new(&server, &agent, Some(token), "everything");
    s.initialize();
    // An id of 5.0 comes back from a JavaScript server as 5, the same
    // number spelled otherwise; the answer is filtered all the same.
    let text = tools_list_stream(&s, json!(5.0));
    let answer = crate::gateway_stdio::sse_messages(&text)
        .into_iter()
        .find(|m| m.get("result").is_some())
        .unwrap_or_else(|| panic!("no answer in {text}"));
    assert_eq!(
        answer["id"],
        json!(5),
        "the case this test is about: {answer}"
    );
    assert_eq!(tool_names(&answer), ["echo"]);
}

#[test]
fn sse_is_streamed_event_by_event() {
    let f = fixture(false);
    let agent = Agent::new();
    let token = token(&f.server, &agent, json!(["mcp:github"]));
    let mut s = Session::new(&f.server, &agent, Some(token.clone()), "github");
    s.initialize();
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "countdown", "arguments": {"steps": 3, "delay": 0.4},
        "_meta": {"progressToken": "p1"}}});
    let (status, chunks) = send_streaming(f.server.addr, &s.request("POST", Some(&body), &[]));
    assert_eq!(status, 200);
    let first_progress = chunks
        .iter()
        .find(|(_, c)| c.contains("notifications/progress"))
        .unwrap_or_else(|| panic!("no progress event in {chunks:?}"))
        .0;
    let result = chunks
        .iter()
        .find(|(_, c)| c.contains("liftoff"))
        .unwrap_or_else(|| panic!("no result in {chunks:?}"))
        .0;
    let progress_events: usize = chunks
        .iter()
        .map(|(_, c)| c.matches("notifications/progress").count())
        .sum();
    assert_eq!(progress_events, 3, "{chunks:?}");
    // The upstream spaces its events 0.4 s apart: a gateway that buffered
    // the stream would deliver them all at once, with the result.
    assert!(
        result.saturating_sub(first_progress) >= Duration::from_millis(800),
        "events arrived together: first progress at {first_progress:?}, result at {result:?}"
    );
    assert_clean(&f.upstream, &token);
}

#[test]
fn the_upstream_is_told_the_body_is_json_whatever_charset_the_agent_named() {
    let f = fixture(true);
    let agent = Agent::new();
    let token = token(&f.server, &agent, json!(["mcp:github"]));
    // Built unsigned, the charset named, then signed.
    let s = Session::new(&f.server, &agent, None, "github");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    let mut request = s.request("POST", Some(&init), &[]);
    request
        .fields
        .set("Content-Type", "application/json; charset=iso-8859-1");
    request
        .fields
        .append("Authorization", format!("GNAP {token}"));
    sign_gnap(&mut request, &agent.key, now(), &SignOptions::default()).unwrap();
    assert_eq!(s.send(&request).status, 200);
    let (_, headers) = f.upstream.requests().pop().unwrap();
    let types: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n == "content-type")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(types, ["application/json"]);
}

#[test]
fn an_upstream_redirect_is_not_passed_on() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), true);
    // The Python SDK serves `/mcp`; `/mcp/` is answered with a redirect to it.
    let server = dev_gateway_for_github(dir.path(), &format!("{}/", upstream.url()));
    let agent = Agent::new();
    let token = token(&server, &agent, json!(["mcp:github"]));
    let s = Session::new(&server, &agent, Some(token), "github");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    let answer = s.send(&s.request("POST", Some(&init), &[]));
    assert_eq!(
        upstream.requests().len(),
        1,
        "the upstream was asked once and redirected"
    );
    assert_eq!(answer.status, 502, "{}", answer.text());
    assert_eq!(answer.header("location"), None);
    assert_eq!(answer.json()["error"]["code"], -32002);
}

#[test]
fn a_json_tools_list_is_filtered() {
    let f = fixture(true);
    let agent = Agent::new();
    let token = token(&f.server, &agent, search_only());
    let mut s = Session::new(&f.server, &agent, Some(token.clone()), "github");
    s.initialize();
    let list = s.call("tools/list", json!({}));
    assert_eq!(list.status, 200);
    assert!(
        list.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(tool_names(&list.json()), ["search_issues"]);
    // The upstream's own headers stay at the gateway (uvicorn names itself
    // in `Server`).
    assert_eq!(list.header("server"), None);

    // A full-access token sees every tool.
    let full = self::token(&f.server, &agent, json!(["mcp:github"]));
    let mut all = Session::new(&f.server, &agent, Some(full.clone()), "github");
    all.initialize();
    let mut names = tool_names(&all.call("tools/list", json!({})).json());
    names.sort();
    assert_eq!(names, ["countdown", "delete_repo", "search_issues"]);
    assert_clean(&f.upstream, &token);
    assert_clean(&f.upstream, &full);
    f.assert_log_clean(&[&token, &full]);
}

#[test]
fn bad_tokens_signatures_and_upstreams_get_the_gateways_refusals() {
    let f = fixture(true);
    let agent = Agent::new();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});

    // No token: 401 with the GNAP challenge (RFC 9635 §9.1), beside the
    // OAuth ones (issue 16).
    let anonymous = Session::new(&f.server, &agent, None, "github");
    let answer = anonymous.send(&anonymous.request("POST", Some(&init), &[]));
    assert_eq!(answer.status, 401);
    let gnap = format!(
        "GNAP as_uri=\"{}\", access=\"mcp:github\"",
        f.server.grant_endpoint
    );
    assert!(
        answer.header_lines("www-authenticate").any(|c| c == gnap),
        "{:?}",
        answer.headers
    );
    assert_eq!(answer.json()["error"]["code"], -32001);
    assert_eq!(answer.json()["id"], 1);

    // A made-up token: 401 too.
    let forged = Session::new(&f.server, &agent, Some("not-a-token".into()), "github");
    assert_eq!(
        forged
            .send(&forged.request("POST", Some(&init), &[]))
            .status,
        401
    );

    // A token for another upstream: 403.
    let slack = token(&f.server, &agent, json!(["mcp:slack"]));
    let other = Session::new(&f.server, &agent, Some(slack), "github");
    let answer = other.send(&other.request("POST", Some(&init), &[]));
    assert_eq!(answer.status, 403, "{}", answer.text());

    let github = token(&f.server, &agent, search_only());
    let s = Session::new(&f.server, &agent, Some(github.clone()), "github");

    // A replayed signed request: 401.
    let once = s.request("POST", Some(&init), &[]);
    assert_eq!(s.send(&once).status, 200);
    assert_eq!(s.send(&once).status, 401);

    // Signed by another key: 401.
    let thief = Agent::new();
    let stolen = Session::new(&f.server, &thief, Some(github.clone()), "github");
    assert_eq!(
        stolen
            .send(&stolen.request("POST", Some(&init), &[]))
            .status,
        401
    );

    // A body changed after signing: 401.
    let mut tampered = s.request("POST", Some(&init), &[]);
    tampered.body = serde_json::to_vec(
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "delete_repo"}}),
    )
    .unwrap();
    assert_eq!(s.send(&tampered).status, 401);

    // A revoked token: 401.
    let grant = agent.signed(
        "POST",
        &f.server.grant_endpoint,
        None,
        Some(&agent.grant_body(json!(["mcp:github"]))),
        now(),
    );
    let granted = send(f.server.addr, &grant).json();
    let (manage_uri, manage) = management(&granted);
    let revoked_token = access_token(&granted).to_owned();
    let revoke = send(
        f.server.addr,
        &agent.signed("DELETE", manage_uri, Some(manage), None, now()),
    );
    assert_eq!(revoke.status, 204);
    let revoked = Session::new(&f.server, &agent, Some(revoked_token), "github");
    assert_eq!(
        revoked
            .send(&revoked.request("POST", Some(&init), &[]))
            .status,
        401
    );

    // A body that is not JSON-RPC: 400.
    let mut junk = HttpRequest::new("POST", s.uri());
    junk.fields.append("Content-Type", "application/json");
    junk.fields
        .append("Authorization", format!("GNAP {github}"));
    junk.body = b"[1, 2]".to_vec();
    sign_gnap(&mut junk, &agent.key, now(), &SignOptions::default()).unwrap();
    assert_eq!(s.send(&junk).status, 400);

    // The tool named twice, granted one first or second (which of two equal
    // keys counts differs between parsers, so the upstream might run the
    // other): 400, and nothing is forwarded.
    for body in [
        r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"search_issues","name":"delete_repo"}}"#,
        r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"delete_repo","name":"search_issues"}}"#,
    ] {
        let mut twice = HttpRequest::new("POST", s.uri());
        twice.fields.append("Content-Type", "application/json");
        twice
            .fields
            .append("Authorization", format!("GNAP {github}"));
        twice.body = body.as_bytes().to_vec();
        sign_gnap(&mut twice, &agent.key, now(), &SignOptions::default()).unwrap();
        let answer = s.send(&twice);
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(answer.json()["error"]["code"], -32600, "{body}");
    }

    // Mcp-Method disagreeing with the body: 400, HeaderMismatch.
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "search_issues", "arguments": {"query": "x"}}});
    let mismatch = s.send(&s.request("POST", Some(&call), &[("Mcp-Method", "tools/list")]));
    assert_eq!(mismatch.status, 400);
    assert_eq!(mismatch.json()["error"]["code"], -32020);
    assert_eq!(mismatch.json()["id"], 5);

    // An ungranted tool called without an id (a notification to JSON-RPC,
    // which some servers would still run): 403, not forwarded.
    let sneaky = s.send(&s.request(
        "POST",
        Some(&json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "delete_repo"}})),
        &[],
    ));
    assert_eq!(sneaky.status, 403);

    // An MCP header given twice (the gateway would check one value, the
    // upstream might read the other): 400, nothing forwarded.
    for header in ["Mcp-Session-Id", "Mcp-Method", "MCP-Protocol-Version"] {
        let twice = s.send(&s.request("POST", Some(&call), &[(header, "a"), (header, "b")]));
        assert_eq!(twice.status, 400, "{header}");
        assert_eq!(twice.json()["error"]["code"], -32600, "{header}");
    }

    // A session id outside visible ASCII (which an upstream might still
    // normalize into one it knows): 400, not "no session".
    let odd = s.send(&s.request("POST", Some(&call), &[("Mcp-Session-Id", "abc\u{80}")]));
    assert_eq!(odd.status, 400);
    assert_eq!(odd.json()["error"]["code"], -32600);

    // A query string (which would reach the upstream past the gateway's
    // rules, e.g. a key or configuration the server reads from its URL),
    // even signed: 400, nothing forwarded.
    let mut with_query = HttpRequest::new("POST", format!("{}?api_key=mine", s.uri()));
    with_query.fields.append("Content-Type", "application/json");
    with_query
        .fields
        .append("Authorization", format!("GNAP {github}"));
    with_query.body = serde_json::to_vec(&call).unwrap();
    sign_gnap(&mut with_query, &agent.key, now(), &SignOptions::default()).unwrap();
    let answer = s.send(&with_query);
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["code"], -32600);

    // An unknown upstream: 404; an unreachable one: 502.
    let nowhere = Session::new(&f.server, &agent, Some(github.clone()), "nowhere");
    assert_eq!(
        nowhere
            .send(&nowhere.request("POST", Some(&init), &[]))
            .status,
        404
    );
    let dead_token = token(&f.server, &agent, json!(["mcp:dead"]));
    let dead = Session::new(&f.server, &agent, Some(dead_token), "dead");
    let answer = dead.send(&dead.request("POST", Some(&init), &[]));
    assert_eq!(answer.status, 502);
    assert_eq!(answer.json()["id"], 1);

    // Every refusal stayed at the gateway: only the one good initialize
    // reached the upstream.
    assert_eq!(f.upstream.requests().len(), 1);

    // GET (the server's stream) is authorized before it is forwarded: an
    // unsigned one stops here, a signed one reaches the upstream, whose
    // answer (no session: an error) comes back as it is.
    let get = anonymous.send(&anonymous.request("GET", None, &[]));
    assert_eq!(get.status, 401);
    assert_eq!(f.upstream.requests().len(), 1);
    let get = s.send(&s.request("GET", None, &[]));
    assert!(
        ![401, 403, 404, 502, 504].contains(&get.status) && get.status >= 400,
        "GET without a session: {}",
        get.status
    );
    assert_eq!(f.upstream.requests().last().unwrap().0, "GET");
    assert_clean(&f.upstream, &github);

    // An upstream that fails: 502, not its 500.
    let failing_token = token(&f.server, &agent, json!(["mcp:failing"]));
    let failing = Session::new(&f.server, &agent, Some(failing_token), "failing");
    let answer = failing.send(&failing.request("POST", Some(&init), &[]));
    assert_eq!(answer.status, 502);
    assert_eq!(answer.json()["error"]["code"], -32002);

    // An upstream slower than the timeout: 504, promptly. (In JSON mode
    // the upstream sends nothing until the tool is done.)
    let full = token(&f.server, &agent, json!(["mcp:github"]));
    let mut slow = Session::new(&f.server, &agent, Some(full), "github");
    slow.initialize();
    let started = Instant::now();
    let answer = slow.call(
        "tools/call",
        json!({"name": "countdown", "arguments": {"steps": 1, "delay": 4}}),
    );
    assert_eq!(answer.status, 504, "{}", answer.text());
    assert_eq!(answer.json()["id"], slow.next_id - 1);
    assert!(started.elapsed() < Duration::from_millis(3500));
}

#[test]
fn header_and_basic_credentials_are_injected() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), true);
    let (hdr, basic) = (
        format!("hdr={}", upstream.url()),
        format!("basic={}", upstream.url()),
    );
    let server = start_logged(
        &dir.path().join("data"),
        &dir.path().join("gnapd.log"),
        &[
            "--dev",
            "--upstream",
            &hdr,
            "--upstream-credential",
            "hdr=header:X-Api-Key:KEY-SECRET",
            "--upstream",
            &basic,
            "--upstream-credential",
            "basic=basic:alice:PASS-SECRET",
        ],
    );
    let agent = Agent::new();
    let token = token(&server, &agent, json!(["mcp:hdr", "mcp:basic"]));
    for name in ["hdr", "basic"] {
        let mut s = Session::new(&server, &agent, Some(token.clone()), name);
        s.initialize();
    }
    let requests = upstream.requests();
    assert_eq!(requests.len(), 4);
    let values = |headers: &Vec<(String, String)>, name: &str| {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    for (_, headers) in &requests[..2] {
        assert_eq!(values(headers, "x-api-key"), ["KEY-SECRET"]);
        assert!(values(headers, "authorization").is_empty());
    }
    for (_, headers) in &requests[2..] {
        // base64("alice:PASS-SECRET")
        assert_eq!(
            values(headers, "authorization"),
            ["Basic YWxpY2U6UEFTUy1TRUNSRVQ="]
        );
        assert!(values(headers, "x-api-key").is_empty());
    }
    let log = std::fs::read_to_string(dir.path().join("gnapd.log")).unwrap();
    assert!(!log.contains("KEY-SECRET") && !log.contains("PASS-SECRET") && !log.contains(&token));
}

/// Every file under `dir` except the master key, with its bytes.
pub(crate) fn data_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name() != Some("master.key".as_ref()) {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A grant for `access`: (access token, management token, continuation
/// token) values.
fn grant_values(server: &Server, agent: &Agent, access: Value) -> (String, String, String) {
    let answer = server.grant(agent, &agent.grant_body(access));
    assert_eq!(answer.status, 200);
    let granted = answer.json();
    let value = |v: &Value| v.as_str().unwrap().to_owned();
    (
        value(&granted["access_token"]["value"]),
        value(&granted["access_token"]["manage"]["access_token"]["value"]),
        value(&granted["continue"]["access_token"]["value"]),
    )
}

#[test]
fn a_data_dir_read_without_the_master_key_reveals_no_secret_or_token() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), true);
    let data = dir.path().join("data");
    let log = dir.path().join("gnapd.log");
    let github = format!("github={}", upstream.url());
    let credential = format!("github=bearer:{SECRET}");
    let args = [
        "--dev",
        "--upstream",
        &github,
        "--upstream-credential",
        &credential,
    ];
    let server = start_logged(&data, &log, &args);
    let agent = Agent::new();
    let (token, manage, continuation) = grant_values(&server, &agent, json!(["mcp:github"]));
    let call_once = |server: &Server| {
        let mut s = Session::new(server, &agent, Some(token.clone()), "github");
        s.initialize();
        let call = s.call(
            "tools/call",
            json!({"name": "search_issues", "arguments": {"query": "gnap"}}),
        );
        assert_eq!(call.status, 200, "{}", call.text());
    };
    call_once(&server);
    // The sealed set was opened and injected.
    assert_clean(&upstream, &token);
    assert_eq!(server.stop(), Some(0));

    // Dev mode generated the master key, 0600, in the data dir.
    let key = data.join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let files = data_files(&data);
    assert!(
        files.iter().map(|(_, b)| b.len()).sum::<usize>() > 0,
        "the store wrote nothing: {files:?}"
    );
    // The search reads the records as written: the sealed set is there.
    assert!(
        files.iter().any(|(_, b)| contains(b, b"enterprise:github")),
        "no credential set record in the data dir"
    );
    for (path, bytes) in &files {
        for (what, value) in [
            ("the upstream secret", SECRET),
            ("the access token", token.as_str()),
            ("the management token", manage.as_str()),
            ("the continuation token", continuation.as_str()),
        ] {
            assert!(
                !contains(bytes, value.as_bytes()),
                "{what} is in {}",
                path.display()
            );
        }
    }

    // A restart reuses the dev master key: the token still works there.
    let before = upstream.requests().len();
    let server = start_logged(&data, &log, &args);
    call_once(&server);
    assert!(upstream.requests().len() > before);
    assert_clean(&upstream, &token);
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn a_token_without_a_credential_set_for_the_upstream_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), true);
    let data = dir.path().join("data");
    let log = dir.path().join("gnapd.log");
    let github = format!("github={}", upstream.url());
    // First without a credential: the token is mapped to no set.
    let server = start_logged(&data, &log, &["--dev", "--upstream", &github]);
    let agent = Agent::new();
    let (old, _, _) = grant_values(&server, &agent, json!(["mcp:github"]));
    assert_eq!(server.stop(), Some(0));

    let credential = format!("github=bearer:{SECRET}");
    let server = start_logged(
        &data,
        &log,
        &[
            "--dev",
            "--upstream",
            &github,
            "--upstream-credential",
            &credential,
        ],
    );
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    let s = Session::new(&server, &agent, Some(old), "github");
    let answer = s.send(&s.request("POST", Some(&init), &[]));
    assert_eq!(answer.status, 403);
    assert_eq!(answer.json()["error"]["code"], -32003);
    assert_eq!(answer.json()["id"], 1);
    assert!(
        answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("credential set"),
        "{}",
        answer.json()
    );
    assert!(upstream.requests().is_empty());

    // A token approved now is mapped to the upstream's set.
    let (fresh, _, _) = grant_values(&server, &agent, json!(["mcp:github"]));
    let mut s = Session::new(&server, &agent, Some(fresh.clone()), "github");
    s.initialize();
    assert_clean(&upstream, &fresh);
}

#[test]
fn credentials_need_a_master_key_outside_dev() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |extra: &[&str], env: Option<&str>| {
        let mut command = Serve::new(&dir.path().join("data")).command();
        command
            .args([
                "--upstream",
                "gh=http://127.0.0.1:1/mcp",
                "--upstream-credential",
                "gh=bearer:NO-KEY-SECRET",
            ])
            .args(extra)
            .env_remove("GNAPD_MASTER_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(key) = env {
            command.env("GNAPD_MASTER_KEY", key);
        }
        command.spawn().unwrap()
    };
    let refused = |child: Child| {
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!err.contains("NO-KEY-SECRET"), "{err}");
        err
    };

    let err = refused(serve(&[], None));
    assert!(
        err.contains("no master key") && err.contains("--master-key-file"),
        "{err}"
    );
    assert!(!dir.path().join("data/master.key").exists());

    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, gnapd::proto::b64::encode_url(&[9u8; 32])).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = refused(serve(
            &["--master-key-file", key_file.to_str().unwrap()],
            None,
        ));
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let err = refused(serve(&[], Some("not-a-key")));
    assert!(err.contains("GNAPD_MASTER_KEY"), "{err}");

    // A key from the file or the environment: the server starts.
    let env_key = gnapd::proto::b64::encode_url(&[5u8; 32]);
    for (extra, env) in [
        (vec!["--master-key-file", key_file.to_str().unwrap()], None),
        (vec![], Some(env_key.as_str())),
    ] {
        let mut child = serve(&extra, env);
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(line.starts_with("gnapd listening on "), "{line:?}");
    }
}

#[test]
fn a_replaced_credential_is_used_by_existing_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), true);
    let data = dir.path().join("data");
    let log = dir.path().join("gnapd.log");
    let github = format!("github={}", upstream.url());
    let start = |secret: &str| {
        let credential = format!("github=bearer:{secret}");
        start_logged(
            &data,
            &log,
            &[
                "--dev",
                "--upstream",
                &github,
                "--upstream-credential",
                &credential,
            ],
        )
    };
    let server = start("OLD-SECRET");
    let agent = Agent::new();
    let (token, _, _) = grant_values(&server, &agent, json!(["mcp:github"]));
    assert_eq!(server.stop(), Some(0));

    // The upstream's enterprise-held set is replaced at the next start; the
    // token keeps its mapping and presents the new secret.
    let server = start("NEW-SECRET");
    let mut s = Session::new(&server, &agent, Some(token), "github");
    s.initialize();
    let requests = upstream.requests();
    assert!(!requests.is_empty());
    for (_, headers) in &requests {
        let auth: Vec<_> = headers
            .iter()
            .filter(|(n, _)| n == "authorization")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(auth, ["Bearer NEW-SECRET"]);
    }
}

/// Runs `gnapd ARGS… --data-dir DATA [--json]` with `stdin`; gives the exit
/// status, stdout and stderr.
pub(crate) fn gnapd_admin(data: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let args = [args, &["--data-dir", data.to_str().unwrap()]].concat();
    let out = crate::support::run::gnapd(&args, stdin.as_bytes());
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `Authorization` values the upstream saw since request `from`.
pub(crate) fn upstream_auth_since(upstream: &Upstream, from: usize) -> Vec<String> {
    upstream.requests()[from..]
        .iter()
        .flat_map(|(_, headers)| {
            headers
                .iter()
                .filter(|(n, _)| n == "authorization")
                .map(|(_, v)| v.clone())
        })
        .collect()
}

#[test]
fn gateway_admin_commands_change_upstreams_and_credentials_of_the_running_server() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), true);
    let data = dir.path().join("data");
    let log = dir.path().join("gnapd.log");
    let configured = format!("fixed={}", upstream.url());
    let args = [
        "--dev",
        "--upstream",
        &configured,
        "--upstream-credential",
        "fixed=bearer:CONFIGURED-SECRET",
    ];

    // No server yet: a clear error, nothing opened.
    let (ok, _, err) = gnapd_admin(&data, &["upstream", "list"], "");
    assert!(!ok);
    assert!(err.contains("no gnapd is serving"), "{err}");

    let server = start_logged(&data, &log, &args);
    let socket = data.join("admin.sock");
    assert_eq!(
        std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700
    );

    let (ok, out, err) = gnapd_admin(&data, &["upstream", "add", "github", &upstream.url()], "");
    assert!(ok, "{err}");
    assert!(out.contains("github"), "{out}");
    let (ok, _, err) = gnapd_admin(&data, &["upstream", "add", "github", &upstream.url()], "");
    assert!(!ok && err.contains("exists"), "{err}");
    // A stdio upstream is added the same way; its arguments are never shown.
    let (ok, _, err) = gnapd_admin(
        &data,
        &["upstream", "add", "local", "stdio:python3 -c pass"],
        "",
    );
    assert!(ok, "{err}");
    let (ok, out, _) = gnapd_admin(&data, &["upstream", "list", "--json"], "");
    assert!(ok);
    let listed: Value = serde_json::from_str(&out).unwrap();
    let local = listed["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "local")
        .unwrap()
        .clone();
    assert_eq!(local["url"], "stdio:python3");
    let (ok, _, err) = gnapd_admin(&data, &["credentials", "add", "local"], "bearer:x\n");
    assert!(!ok && err.contains("stdio"), "{err}");
    let (ok, _, err) = gnapd_admin(&data, &["upstream", "remove", "local"], "");
    assert!(ok, "{err}");
    let (ok, _, err) = gnapd_admin(&data, &["upstream", "add", "bad/name", "http://x/"], "");
    assert!(!ok && err.contains("name"), "{err}");

    // The secret comes on stdin; it is never printed back.
    let (ok, out, err) = gnapd_admin(
        &data,
        &["credentials", "add", "github"],
        "bearer:ADMIN-SECRET-1\n",
    );
    assert!(ok, "{err}");
    assert!(!out.contains("ADMIN-SECRET"), "{out}");
    let (ok, out, _) = gnapd_admin(&data, &["credentials", "list", "--json"], "");
    assert!(ok);
    assert!(
        !out.contains("ADMIN-SECRET") && !out.contains("CONFIGURED-SECRET"),
        "{out}"
    );
    let sets: Value = serde_json::from_str(&out).unwrap();
    let github = sets["credential_sets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["upstream"] == "github")
        .unwrap();
    assert_eq!(github["id"], "enterprise:github");
    assert_eq!(github["kind"], "bearer");
    assert_eq!(github["assigned"], true);

    // The file's upstream and credential are the file's.
    let (ok, _, err) = gnapd_admin(&data, &["upstream", "remove", "fixed"], "");
    assert!(!ok && err.contains("config"), "{err}");
    let (ok, _, err) = gnapd_admin(&data, &["credentials", "add", "fixed"], "bearer:x\n");
    assert!(!ok && err.contains("config"), "{err}");
    let (ok, _, err) = gnapd_admin(&data, &["credentials", "add", "github"], "oauth:x\n");
    assert!(!ok, "{err}");
    assert!(!err.contains("oauth:x"), "{err}");

    // A token approved now is mapped to the set and the upstream gets it.
    let agent = Agent::new();
    let agent_token = token(&server, &agent, json!(["mcp:github"]));
    let mut s = Session::new(&server, &agent, Some(agent_token.clone()), "github");
    let before = upstream.requests().len();
    s.initialize();
    assert!(!tool_names(&rpc(&s.call("tools/list", json!({})))).is_empty());
    let seen = upstream_auth_since(&upstream, before);
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|v| v == "Bearer ADMIN-SECRET-1"),
        "{seen:?}"
    );

    // Rotating the upstream secret keeps the token working with the new one.
    let (ok, _, err) = gnapd_admin(
        &data,
        &["credentials", "add", "github"],
        "bearer:ADMIN-SECRET-2",
    );
    assert!(ok, "{err}");
    let before = upstream.requests().len();
    assert_eq!(s.call("tools/list", json!({})).status, 200);
    assert_eq!(
        upstream_auth_since(&upstream, before),
        ["Bearer ADMIN-SECRET-2"]
    );

    // Both survive a restart.
    assert_eq!(server.stop(), Some(0));
    assert!(!socket.exists(), "the admin socket outlived the server");
    let server = start_logged(&data, &log, &args);
    let (ok, out, _) = gnapd_admin(&data, &["upstream", "list", "--json"], "");
    assert!(ok);
    let listed: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<(&str, &str)> = listed["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["name"].as_str().unwrap(), u["source"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("fixed", "config"), ("github", "admin")]);
    let mut s = Session::new(&server, &agent, Some(agent_token.clone()), "github");
    let before = upstream.requests().len();
    s.initialize();
    assert!(
        upstream_auth_since(&upstream, before)
            .iter()
            .all(|v| v == "Bearer ADMIN-SECRET-2")
    );

    // Removing the set revokes the tokens mapped to it.
    let (ok, _, err) = gnapd_admin(&data, &["credentials", "remove", "github"], "");
    assert!(ok, "{err}");
    assert_eq!(s.call("tools/list", json!({})).status, 401);

    // Removing the upstream: its path is gone.
    let (ok, _, err) = gnapd_admin(&data, &["upstream", "remove", "github"], "");
    assert!(ok, "{err}");
    let other = Agent::new();
    let fresh = token(&server, &other, json!(["mcp:fixed"]));
    let s = Session::new(&server, &other, Some(fresh.clone()), "github");
    let gone = s.send(&s.request(
        "POST",
        Some(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})),
        &[],
    ));
    assert_eq!(gone.status, 404);
    let (ok, out, _) = gnapd_admin(&data, &["upstream", "list"], "");
    assert!(ok && !out.contains("github"), "{out}");

    drop(server);

    // Sealed sets in the store and no master key: a clear error at start.
    let (status, stderr) = Serve::new(&data)
        .env_remove("GNAPD_MASTER_KEY")
        .refused(Duration::from_secs(20));
    assert!(!status.success());
    assert!(stderr.contains("no master key"), "{stderr}");

    let log = std::fs::read_to_string(&log).unwrap();
    for secret in ["ADMIN-SECRET", "CONFIGURED-SECRET", &agent_token, &fresh] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
}

#[test]
fn an_https_upstream_is_verified_against_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::support::pki::test_pki(dir.path());
    let upstream = Upstream::start_tls(dir.path(), true, &pki.cert, &pki.key);
    assert!(upstream.url().starts_with("https://"));
    let github = format!("github={}", upstream.url());
    let credential = format!("github=bearer:{SECRET}");
    let log = dir.path().join("gnapd.log");

    // Trusting the test CA: the call goes through over TLS with the
    // injected credential.
    let server = start_logged(
        &dir.path().join("data"),
        &log,
        &[
            "--dev",
            "--upstream",
            &github,
            "--upstream-credential",
            &credential,
            "--upstream-ca",
            pki.ca.to_str().unwrap(),
        ],
    );
    let agent = Agent::new();
    let agent_token = token(&server, &agent, json!(["mcp:github"]));
    let mut s = Session::new(&server, &agent, Some(agent_token.clone()), "github");
    s.initialize();
    let call = s.call(
        "tools/call",
        json!({"name": "search_issues", "arguments": {"query": "tls"}}),
    );
    assert_eq!(call.status, 200, "{}", call.text());
    assert_eq!(
        rpc(&call)["result"]["content"][0]["text"],
        "found 1 issue for tls"
    );
    assert_clean(&upstream, &agent_token);
    drop(server);

    // Without the CA the upstream's certificate is not trusted: 502, and
    // the request never reaches it.
    let before = upstream.requests().len();
    let server = start_logged(
        &dir.path().join("data2"),
        &log,
        &[
            "--dev",
            "--upstream",
            &github,
            "--upstream-credential",
            &credential,
        ],
    );
    let agent_token = token(&server, &agent, json!(["mcp:github"]));
    let mut s = Session::new(&server, &agent, Some(agent_token), "github");
    let init = s.call(
        "initialize",
        json!({"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}),
    );
    assert_eq!(init.status, 502, "{}", init.text());
    assert_eq!(upstream.requests().len(), before);
}

/// How many refresh requests the upstream's token endpoint received.
pub(crate) fn refreshes(upstream: &Upstream) -> usize {
    upstream
        .requests()
        .iter()
        .filter(|(method, headers)| {
            method == "POST"
                && headers
                    .iter()
                    .any(|(n, v)| n == "content-type" && v == "application/x-www-form-urlencoded")
        })
        .count()
}

#[test]
fn gateway_oauth2_upstream_tokens_are_refreshed_single_flight_and_kept_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start_oauth(dir.path(), 3600);
    let config = dir.path().join("gnapd.toml");
    // A stale access token, expired long ago, and the first refresh token.
    std::fs::write(
        &config,
        format!(
            "[[upstream]]\nname = \"github\"\nurl = \"{}\"\ncredential = {{ kind = \"oauth2\", access_token = \"at-stale\", refresh_token = \"rt-0\", expires_at = 1, token_endpoint = \"{}\", client_id = \"gnapd-gw\", client_secret = \"gw-secret\" }}\n",
            upstream.url(),
            upstream.token_endpoint()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("gnapd.log");
    let args = ["--dev", "--config", config.to_str().unwrap()];
    let server = start_logged(&data, &log, &args);

    // Eight agents at once, all behind the expired token: one refresh (the
    // AS rotates refresh tokens, so a second would fail), every call works,
    // and the stale token is never presented.
    let agents: Vec<Agent> = (0..8).map(|_| Agent::new()).collect();
    let tokens: Vec<String> = agents
        .iter()
        .map(|a| token(&server, a, json!(["mcp:github"])))
        .collect();
    std::thread::scope(|scope| {
        for (agent, agent_token) in agents.iter().zip(&tokens) {
            let server = &server;
            scope.spawn(move || {
                let mut s = Session::new(server, agent, Some(agent_token.clone()), "github");
                s.initialize();
                let call = s.call(
                    "tools/call",
                    json!({"name": "search_issues", "arguments": {"query": "oauth"}}),
                );
                assert_eq!(call.status, 200, "{}", call.text());
            });
        }
    });
    assert_eq!(refreshes(&upstream), 1);
    let presented = upstream_auth_since(&upstream, 0);
    assert!(
        !presented.iter().any(|v| v == "Bearer at-stale"),
        "{presented:?}"
    );
    assert!(presented.iter().any(|v| v == "Bearer at-1"));

    // The upstream kills its access tokens before their expiry: the gateway
    // gets a 401, refreshes once and retries; the agent sees nothing.
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", upstream.port).parse().unwrap();
    let revoke = HttpRequest::new(
        "POST",
        format!("http://127.0.0.1:{}/revoke-access", upstream.port),
    );
    assert_eq!(send(addr, &revoke).status, 200);
    let mut s = Session::new(&server, &agents[0], Some(tokens[0].clone()), "github");
    s.initialize();
    assert_eq!(refreshes(&upstream), 2);
    let after = upstream.requests().len();

    // The refreshed pair is stored (sealed): after a restart with the same
    // config the gateway presents at-2 at once, without a refresh.
    assert_eq!(server.stop(), Some(0));
    let log2 = dir.path().join("gnapd-2.log");
    let server = start_logged(&data, &log2, &args);
    let mut s = Session::new(&server, &agents[1], Some(tokens[1].clone()), "github");
    s.initialize();
    assert_eq!(refreshes(&upstream), 2);
    assert!(
        upstream_auth_since(&upstream, after)
            .iter()
            .all(|v| v == "Bearer at-2")
    );
    drop(server);

    let log = std::fs::read_to_string(&log).unwrap() + &std::fs::read_to_string(&log2).unwrap();
    assert!(log.contains("upstream credential refreshed"));
    for secret in [
        "at-stale",
        "at-1",
        "at-2",
        "rt-0",
        "rt-1",
        "rt-2",
        "gw-secret",
    ] {
        assert!(!log.contains(secret), "{secret} reached the log");
    }
}
