//! Stdio upstreams behind the MCP gateway: `gnapd serve --dev --upstream
//! 'everything=stdio:node …/server-everything/dist/index.js stdio'` in front
//! of the reference MCP server from npm (`@modelcontextprotocol/server-everything`,
//! pinned in tests/interop/npm/package-lock.json), driven with signed
//! Streamable HTTP calls; and a stdio server on the official Python SDK
//! (tests/interop/mcp_stdio_upstream.py) for the `env` credential.
//!
//! `scripts/test.sh` installs the npm package (`npm ci`) and the Python
//! virtualenv; a missing one is a failure, never a skip.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::Digest as _;

use crate::gateway_http::{Session, VERSION, rpc, send_streaming, stream, token, tool_names};
use crate::support::agent::Agent;
use crate::support::http_client::Answer;
use crate::support::paths::{python, root};
use crate::support::server::{Server, start_logged_with};

/// The everything server's entry point, installed by `npm ci`.
pub(crate) fn everything_script() -> PathBuf {
    let script = root().join(
        "tests/interop/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
    );
    assert!(
        script.exists(),
        "{} is missing: run scripts/test.sh (it runs `npm ci` in tests/interop/npm)",
        script.display()
    );
    script
}

/// gnapd in front of the everything server, with `toml` as its config file.
struct Fixture {
    server: Server,
    log: PathBuf,
    dir: tempfile::TempDir,
    /// The agent of [`Fixture::session`].
    agent: Agent,
}

impl Fixture {
    fn start(toml: &str) -> Self {
        Self::start_with(toml, &[], &[])
    }

    fn start_with(toml: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("gnapd.toml");
        std::fs::write(&config, toml).unwrap();
        let everything = format!(
            "everything=stdio:node {} stdio",
            everything_script().display()
        );
        let log = dir.path().join("gnapd.log");
        let mut all = vec![
            "--config",
            config.to_str().unwrap(),
            "--dev",
            "--upstream",
            &everything,
        ];
        all.extend_from_slice(args);
        let server = start_logged_with(&dir.path().join("data"), &log, &all, env);
        Self {
            server,
            log,
            dir,
            agent: Agent::new(),
        }
    }

    /// A session at `upstream` for the fixture's agent, whose token carries
    /// `mcp:{upstream}`.
    fn session(&self, upstream: &'static str) -> Session<'_> {
        let rights = json!([format!("mcp:{upstream}")]);
        let token = token(&self.server, &self.agent, rights);
        Session::new(&self.server, &self.agent, Some(token), upstream)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// The live children of gnapd whose command line contains `needle`.
    fn children(&self, needle: &str) -> Vec<u32> {
        child_pids(self.server.pid(), needle)
    }

    /// The one everything server running.
    fn everything_pid(&self) -> u32 {
        let pids = self.children("server-everything");
        assert_eq!(pids.len(), 1, "everything children: {pids:?}");
        pids[0]
    }
}

/// Live (not zombie) processes whose parent is `parent` and whose command
/// line contains `needle`, from /proc.
pub(crate) fn child_pids(parent: u32, needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Some((state, ppid)) = stat(pid) else {
            continue;
        };
        if ppid != parent || state == "Z" {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

/// (state, parent pid) of a process.
fn stat(pid: u32) -> Option<(String, u32)> {
    stat_fields(pid).map(|(state, ppid, _)| (state, ppid))
}

/// (state, parent pid, process group) of a process.
fn stat_fields(pid: u32) -> Option<(String, u32, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.to_owned();
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, ppid, pgrp))
}

/// Live processes in process group `group`.
fn group_members(group: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|&pid| {
            stat_fields(pid).is_some_and(|(state, _, pgrp)| pgrp == group && state != "Z")
        })
        .collect()
}

fn running(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != "Z")
}

/// Waits up to `limit` for `done`.
fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

/// The text of a tool result's first content item.
fn text(answer: &Answer) -> String {
    let message = rpc(answer);
    message["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text result in {message}"))
        .to_owned()
}

fn echo_and_env() -> Value {
    json!([{"type": "mcp", "identifier": "everything", "actions": ["tools/list", "tools/call"],
            "tools": ["echo", "get-env"]}])
}

#[test]
fn a_stdio_session_filters_tools_and_calls_echo_through_the_signed_gateway() {
    let f = Fixture::start_with("", &[], &[("GNAPD_TEST_CANARY", "canary-value")]);
    let agent = Agent::new();
    let token = token(&f.server, &agent, echo_and_env());
    let mut s = Session::new(&f.server, &agent, Some(token.clone()), "everything");
    let init = s.initialize();
    assert_eq!(
        init["result"]["serverInfo"]["name"], "mcp-servers/everything",
        "{init}"
    );
    let session_id = s.session_id.clone().unwrap();
    assert!(
        session_id.len() >= 22 && !session_id.contains(['+', '/', '=']),
        "{session_id}"
    );

    // Only the granted tools are listed.
    let list = s.call("tools/list", json!({}));
    assert_eq!(list.status, 200, "{}", list.text());
    let mut names = tool_names(&rpc(&list));
    names.sort();
    assert_eq!(names, ["echo", "get-env"]);

    // A call answered with nothing before it comes back as JSON.
    let echo = s.call(
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "hello gateway"}}),
    );
    assert_eq!(echo.status, 200, "{}", echo.text());
    assert!(
        echo.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(echo.header("mcp-session-id"), Some(session_id.as_str()));
    assert_eq!(text(&echo), "Echo: hello gateway");

    // An ungranted tool is refused at the gateway.
    let denied = s.call(
        "tools/call",
        json!({"name": "get-sum", "arguments": {"a": 1, "b": 2}}),
    );
    assert_eq!(denied.status, 403, "{}", denied.text());
    assert_eq!(denied.json()["error"]["code"], -32003);
    assert_eq!(denied.json()["id"], s.next_id - 1);

    // The child's environment is PATH, HOME and LANG at most: nothing else
    // of the gateway's, and never the agent's token.
    let env = s.call("tools/call", json!({"name": "get-env", "arguments": {}}));
    assert_eq!(env.status, 200, "{}", env.text());
    let env: Value = serde_json::from_str(&text(&env)).unwrap();
    let env = env.as_object().unwrap();
    for (name, value) in env {
        assert!(
            ["PATH", "HOME", "LANG"].contains(&name.as_str()),
            "the child got {name}"
        );
        assert!(!value.as_str().unwrap_or("").contains(&token));
    }
    assert!(env.contains_key("PATH"));

    let log = f.log();
    assert!(log.contains("stdio session started"), "{log}");
    assert!(!log.contains(&token), "the token was logged");
    assert!(!log.contains(&session_id), "the session id was logged");
}

#[test]
fn the_official_sdk_client_falls_back_to_a_session_and_is_filtered() {
    let f = Fixture::start("");
    let gateway = format!("{}/mcp/everything", f.server.base());
    let access = json!([{"type": "mcp", "identifier": "everything", "tools": ["echo"]}]);
    let mut command = Command::new(python());
    command
        .arg(root().join("tests/interop/mcp_client.py"))
        .args(["--as-uri", &f.server.grant_endpoint])
        .args(["--gateway", &gateway])
        .args(["--access", &access.to_string()])
        .args([
            "--tool",
            "echo",
            "--tool-args",
            r#"{"message": "from the sdk"}"#,
        ])
        .args([
            "--denied-tool",
            "get-sum",
            "--denied-args",
            r#"{"a": 1, "b": 2}"#,
        ])
        .args(["--expect-tools", r#"["echo"]"#])
        // Probe server/discover first: the bridge answers 400 without a
        // session, and the SDK falls back to the handshake.
        .args(["--mode", "auto"]);
    let run =
        crate::support::run::run_json_lines(command, Duration::from_secs(90), "mcp_client.py");
    assert_eq!(run.code, Some(0), "{}", run.output);
    let step = |name: &str| {
        run.lines
            .iter()
            .find(|l| l["step"] == name)
            .unwrap_or_else(|| panic!("no {name} step:\n{}", run.output))
            .clone()
    };
    let connect = step("connect");
    assert_eq!(connect["server"], "mcp-servers/everything", "{connect}");
    assert_eq!(connect["protocol_version"], VERSION, "{connect}");
    assert_eq!(step("call_tool")["text"], json!(["Echo: from the sdk"]));
    assert_eq!(step("denied_tool")["code"], -32003);
    // Leaving, the SDK sent DELETE: the child goes.
    assert!(
        eventually(Duration::from_secs(8), || f
            .children("server-everything")
            .is_empty()),
        "the session's child outlived the client"
    );
}

#[test]
fn stdio_sessions_are_bound_to_their_key_and_unknown_ones_are_404() {
    let f = Fixture::start("");
    let agent = Agent::new();
    let token = token(&f.server, &agent, json!(["mcp:everything"]));
    let mut s = Session::new(&f.server, &agent, Some(token.clone()), "everything");
    s.initialize();
    let session_id = s.session_id.clone().unwrap();

    // Another key, with a valid token of its own for the same upstream,
    // presenting the session id: 404, as if the session did not exist.
    let thief = Agent::new();
    let thief_token = self::token(&f.server, &thief, json!(["mcp:everything"]));
    let mut stolen = Session::new(&f.server, &thief, Some(thief_token.clone()), "everything");
    stolen.session_id = Some(session_id.clone());
    let answer = stolen.call("tools/list", json!({}));
    assert_eq!(answer.status, 404, "{}", answer.text());
    assert_eq!(answer.json()["id"], 1);
    for method in ["GET", "DELETE"] {
        let answer = stolen.send(&stolen.request(method, None, &[]));
        assert_eq!(answer.status, 404, "{method}: {}", answer.text());
    }
    // The owner's session is untouched.
    assert_eq!(s.call("ping", json!({})).status, 200);

    // An unknown session id: 404.
    let mut unknown = Session::new(&f.server, &agent, Some(token.clone()), "everything");
    unknown.session_id = Some("AAAAAAAAAAAAAAAAAAAAAA".into());
    assert_eq!(unknown.call("tools/list", json!({})).status, 404);

    // No session: only initialize starts one; anything else is 400.
    let mut none = Session::new(&f.server, &agent, Some(token.clone()), "everything");
    let answer = none.call("tools/list", json!({}));
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()["error"]["code"], -32600);
    assert_eq!(none.send(&none.request("GET", None, &[])).status, 400);
    assert_eq!(none.notify("notifications/initialized").status, 400);

    // The authorization path is the HTTP upstreams': unsigned is 401 before
    // anything reaches a child.
    let mut anonymous = Session::new(&f.server, &agent, None, "everything");
    anonymous.session_id = Some(session_id.clone());
    let answer = anonymous.call("tools/list", json!({}));
    assert_eq!(answer.status, 401);
    assert!(answer.header("www-authenticate").is_some());
    // A token for another upstream: 403.
    let other = self::token(&f.server, &agent, json!(["mcp:github"]));
    let mut elsewhere = Session::new(&f.server, &agent, Some(other), "everything");
    elsewhere.session_id = Some(session_id);
    assert_eq!(elsewhere.call("tools/list", json!({})).status, 403);
    assert_eq!(f.children("server-everything").len(), 1);
}

#[test]
fn delete_ends_the_session_and_stops_its_child() {
    let f = Fixture::start("");
    let mut s = f.session("everything");
    s.initialize();
    let pid = f.everything_pid();
    let end = s.send(&s.request("DELETE", None, &[]));
    assert_eq!(end.status, 204, "{}", end.text());
    let after = s.call("tools/list", json!({}));
    assert_eq!(after.status, 404, "{}", after.text());
    assert!(
        eventually(Duration::from_secs(5), || !running(pid)),
        "the child outlived its session"
    );
    // A new session starts a new child.
    s.session_id = None;
    s.initialize();
    assert_ne!(f.everything_pid(), pid);
}

#[test]
fn progress_is_streamed_as_sse_before_the_response() {
    let f = Fixture::start("");
    let mut s = f.session("everything");
    s.initialize();
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "trigger-long-running-operation", "arguments": {"duration": 2, "steps": 4},
        "_meta": {"progressToken": "p1"}}});
    let (status, chunks) = send_streaming(f.server.addr, &s.request("POST", Some(&call), &[]));
    assert_eq!(status, 200);
    let progress: usize = chunks
        .iter()
        .map(|(_, c)| c.matches("notifications/progress").count())
        .sum();
    assert_eq!(progress, 4, "{chunks:?}");
    let first = chunks
        .iter()
        .find(|(_, c)| c.contains("notifications/progress"))
        .unwrap()
        .0;
    let (done, last) = chunks
        .iter()
        .find(|(_, c)| c.contains("Long running operation completed"))
        .unwrap_or_else(|| panic!("no result in {chunks:?}"));
    assert!(last.contains("\"id\":7"), "{last}");
    // Events 0.5 s apart arrive as they come, not all at the end.
    assert!(
        done.saturating_sub(first) >= Duration::from_millis(1000),
        "buffered: first progress at {first:?}, result at {done:?}"
    );
}

/// The JSON-RPC messages in SSE text.
pub(crate) fn sse_messages(text: &str) -> Vec<Value> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            serde_json::from_str(&data.join("\n")).ok()
        })
        .collect()
}

#[test]
fn server_requests_reach_the_client_and_its_answer_reaches_the_child() {
    let f = Fixture::start("");
    let mut s = f.session("everything");
    // A client that can sample: the server then offers its sampling tool.
    let init = s.call(
        "initialize",
        json!({"protocolVersion": VERSION, "capabilities": {"sampling": {}},
               "clientInfo": {"name": "gnapd-test", "version": "0"}}),
    );
    assert_eq!(init.status, 200, "{}", init.text());
    s.session_id = init.header("mcp-session-id").map(str::to_owned);
    assert_eq!(s.notify("notifications/initialized").status, 202);
    assert!(
        eventually(Duration::from_secs(5), || {
            tool_names(&rpc(&s.call("tools/list", json!({}))))
                .contains(&"trigger-sampling-request".to_owned())
        }),
        "no sampling tool"
    );

    let call = json!({"jsonrpc": "2.0", "id": "call-1", "method": "tools/call", "params": {
        "name": "trigger-sampling-request", "arguments": {"prompt": "hi", "maxTokens": 5}}});
    let events = stream(f.server.addr, s.request("POST", Some(&call), &[]));
    assert_eq!(
        events.recv_timeout(Duration::from_secs(10)).unwrap(),
        "status 200"
    );
    // The server's sampling request arrives on the call's stream...
    let mut seen = String::new();
    let request = loop {
        let chunk = events
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no sampling request in {seen:?}"));
        seen.push_str(&chunk);
        if let Some(m) = sse_messages(&seen)
            .into_iter()
            .find(|m| m["method"] == "sampling/createMessage")
        {
            break m;
        }
    };
    // ...the client's answer goes back as a POST (202)...
    let answer = json!({"jsonrpc": "2.0", "id": request["id"], "result": {
        "role": "assistant", "content": {"type": "text", "text": "sampled-by-the-test"},
        "model": "test-model", "stopReason": "endTurn"}});
    let posted = s.send(&s.request("POST", Some(&answer), &[]));
    assert_eq!(posted.status, 202, "{}", posted.text());
    assert!(posted.body.is_empty());
    // ...and the tool's result, built from it, ends the stream.
    let mut rest = String::new();
    while let Ok(chunk) = events.recv_timeout(Duration::from_secs(10)) {
        rest.push_str(&chunk);
    }
    let messages = sse_messages(&rest);
    let result = messages
        .iter()
        .find(|m| m["id"] == "call-1")
        .unwrap_or_else(|| panic!("no result in {rest:?}"));
    let text = result["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("sampled-by-the-test"), "{text}");
}

#[test]
fn server_messages_outside_requests_arrive_on_the_get_stream() {
    let f = Fixture::start("");
    let mut s = f.session("everything");
    s.initialize();
    let events = stream(f.server.addr, s.request("GET", None, &[]));
    assert_eq!(
        events.recv_timeout(Duration::from_secs(10)).unwrap(),
        "status 200"
    );
    // The server now logs every 5 s, with no request in flight.
    let toggle = s.call(
        "tools/call",
        json!({"name": "toggle-simulated-logging", "arguments": {}}),
    );
    assert_eq!(toggle.status, 200, "{}", toggle.text());
    let mut seen = String::new();
    let until = Instant::now() + Duration::from_secs(15);
    while !sse_messages(&seen)
        .iter()
        .any(|m| m["method"] == "notifications/message")
    {
        let left = until.saturating_duration_since(Instant::now());
        let chunk = events
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no log message on the GET stream: {seen:?}"));
        seen.push_str(&chunk);
    }
    // A second GET takes over; the first ends.
    let second = stream(f.server.addr, s.request("GET", None, &[]));
    assert_eq!(
        second.recv_timeout(Duration::from_secs(10)).unwrap(),
        "status 200"
    );
    let ended = (0..200).any(|_| {
        matches!(
            events.recv_timeout(Duration::from_millis(50)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        )
    });
    assert!(ended, "the first GET stream is still open");
}

#[test]
fn a_killed_child_fails_its_requests_cleanly_and_a_new_session_works() {
    let f = Fixture::start("");
    let mut s = f.session("everything");
    s.initialize();
    let pid = f.everything_pid();

    // Two calls in flight when the child is killed: one waiting for its
    // JSON answer (no progress asked), one already streaming progress.
    let slow = json!({"jsonrpc": "2.0", "id": 42, "method": "tools/call", "params": {
        "name": "trigger-long-running-operation", "arguments": {"duration": 20, "steps": 2}}});
    let request = s.request("POST", Some(&slow), &[]);
    let addr = f.server.addr;
    let started = Instant::now();
    let pending = std::thread::spawn(move || crate::support::http_client::send(addr, &request));
    std::thread::sleep(Duration::from_millis(300));
    let streaming = json!({"jsonrpc": "2.0", "id": 43, "method": "tools/call", "params": {
        "name": "trigger-long-running-operation", "arguments": {"duration": 20, "steps": 80},
        "_meta": {"progressToken": "k"}}});
    let events = stream(addr, s.request("POST", Some(&streaming), &[]));
    assert_eq!(
        events.recv_timeout(Duration::from_secs(10)).unwrap(),
        "status 200"
    );
    let mut seen = events.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(seen.contains("notifications/progress"), "{seen}");
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    let answer = pending.join().unwrap();
    // The everything server may send a notification (e.g. list_changed)
    // while the call waits; the gateway then relays it on that call's SSE
    // stream, whose status is already 200. Either way the call ends with a
    // JSON-RPC error for its id.
    let failure = if answer.status == 200 {
        let text = answer.text();
        assert!(
            answer
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/event-stream")),
            "{text}"
        );
        sse_messages(&text).pop().unwrap()
    } else {
        assert_eq!(answer.status, 502, "{}", answer.text());
        answer.json()
    };
    assert_eq!(failure["id"], 42, "{failure}");
    assert_eq!(failure["error"]["code"], -32002, "{failure}");
    // The stream ends with a JSON-RPC error for its request.
    while let Ok(chunk) = events.recv_timeout(Duration::from_secs(10)) {
        seen.push_str(&chunk);
    }
    let last = sse_messages(&seen).pop().unwrap();
    assert_eq!(last["id"], 43, "{seen}");
    assert_eq!(last["error"]["code"], -32002, "{seen}");
    assert!(started.elapsed() < Duration::from_secs(15));

    // The session died with its child: 404, so the client re-initializes.
    let after = s.call("tools/list", json!({}));
    assert_eq!(after.status, 404, "{}", after.text());
    s.session_id = None;
    s.initialize();
    let echo = s.call(
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "again"}}),
    );
    assert_eq!(text(&echo), "Echo: again");
    assert_ne!(f.everything_pid(), pid);
    let log = f.log();
    assert!(log.contains("stdio session over"), "{log}");
}

#[test]
fn a_child_that_crashes_during_initialize_is_retried_once() {
    let work = tempfile::tempdir().unwrap();
    // `flaky` crashes on its first start only; `broken` on every start.
    // Each start appends a line to a file, so the test can count them.
    let flaky = format!(
        "echo start >> flaky-starts; if [ -e crashed ]; then exec node {} stdio; fi; touch crashed; exit 3",
        everything_script().display()
    );
    let broken = "echo start >> broken-starts; exit 3";
    let config = format!(
        "[[upstream]]\nname = \"flaky\"\ncommand = \"sh\"\nargs = [\"-c\", {flaky:?}]\ncwd = {cwd:?}\n\n\
         [[upstream]]\nname = \"broken\"\ncommand = \"sh\"\nargs = [\"-c\", {broken:?}]\ncwd = {cwd:?}\n",
        cwd = work.path().display().to_string(),
    );
    let f = Fixture::start(&config);
    let agent = Agent::new();
    let token = token(&f.server, &agent, json!(["mcp:flaky", "mcp:broken"]));
    let starts = |name: &str| {
        std::fs::read_to_string(work.path().join(format!("{name}-starts")))
            .unwrap_or_default()
            .lines()
            .count()
    };

    let mut s = Session::new(&f.server, &agent, Some(token.clone()), "flaky");
    let init = s.initialize();
    assert_eq!(
        init["result"]["serverInfo"]["name"],
        "mcp-servers/everything"
    );
    assert_eq!(starts("flaky"), 2);
    assert_eq!(
        text(&s.call(
            "tools/call",
            json!({"name": "echo", "arguments": {"message": "ok"}})
        )),
        "Echo: ok"
    );

    let mut b = Session::new(&f.server, &agent, Some(token), "broken");
    let answer = b.call(
        "initialize",
        json!({"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}),
    );
    assert_eq!(answer.status, 502, "{}", answer.text());
    assert_eq!(answer.json()["error"]["code"], -32002);
    assert!(answer.header("mcp-session-id").is_none());
    assert_eq!(starts("broken"), 2, "retried once, not more");
    assert!(f.log().contains("exited during initialize"));
}

#[test]
fn a_stopped_session_takes_its_whole_process_group() {
    // A wrapper (like `npx`) that outlives the server's exit and ignores
    // SIGTERM, as does the grandchild it leaves behind.
    let wrapper = format!(
        "trap '' TERM; node {} stdio; sleep 600",
        everything_script().display()
    );
    let config = format!(
        "[[upstream]]\nname = \"wrapped\"\ncommand = \"sh\"\nargs = [\"-c\", {wrapper:?}]\n"
    );
    let f = Fixture::start(&config);
    let mut s = f.session("wrapped");
    s.initialize();
    let shells = f.children("trap");
    assert_eq!(shells.len(), 1, "{shells:?}");
    let group = shells[0];
    assert!(
        group_members(group).len() >= 2,
        "the wrapper started no server"
    );
    assert_eq!(s.send(&s.request("DELETE", None, &[])).status, 204);
    // stdin closed, 2 s, SIGTERM (ignored), 1 s, SIGKILL to the group.
    assert!(
        eventually(Duration::from_secs(10), || group_members(group).is_empty()),
        "left behind: {:?}",
        group_members(group)
    );
}

#[test]
fn an_overlong_line_kills_the_child() {
    // 9 MiB without a newline, then silence: over the 8 MiB line limit.
    let flood = "head -c 9437184 /dev/zero | tr '\\0' a; sleep 600";
    let config =
        format!("[[upstream]]\nname = \"flood\"\ncommand = \"sh\"\nargs = [\"-c\", {flood:?}]\n");
    let f = Fixture::start(&config);
    let mut s = f.session("flood");
    let started = Instant::now();
    let answer = s.call(
        "initialize",
        json!({"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}),
    );
    // Killed (at once, no grace), retried once, killed again: 502.
    assert_eq!(answer.status, 502, "{}", answer.text());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        eventually(Duration::from_secs(5), || f.children("head -c").is_empty()
            && f.children("sleep").is_empty()),
        "the flooding child is still running"
    );
    assert!(f.log().contains("TooLong"), "{}", f.log());
}

#[test]
fn a_child_that_answers_then_exits_is_heard_and_its_session_ends() {
    // Answers initialize, then exits at once.
    let one_shot = r#"read line; printf '%s\n' '{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"one-shot","version":"0"}}}'; exit 0"#;
    let config = format!(
        "[[upstream]]\nname = \"oneshot\"\ncommand = \"sh\"\nargs = [\"-c\", {one_shot:?}]\n"
    );
    let f = Fixture::start(&config);
    let mut s = f.session("oneshot");
    let answer = s.call(
        "initialize",
        json!({"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(rpc(&answer)["result"]["serverInfo"]["name"], "one-shot");
    s.session_id = answer.header("mcp-session-id").map(str::to_owned);
    // Then the session is over with its child.
    assert!(eventually(Duration::from_secs(5), || {
        s.call("ping", json!({})).status == 404
    }));
}

#[test]
fn a_slow_answer_times_out_with_504_and_the_session_lives_on() {
    let f = Fixture::start("upstream_timeout = 3\n");
    let mut s = f.session("everything");
    s.initialize();
    let started = Instant::now();
    let slow = s.call(
        "tools/call",
        json!({"name": "trigger-long-running-operation", "arguments": {"duration": 8, "steps": 1}}),
    );
    assert_eq!(slow.status, 504, "{}", slow.text());
    assert_eq!(slow.json()["id"], s.next_id - 1);
    let waited = started.elapsed();
    assert!(
        // Not the 8 s the tool takes: the gateway gave up at its timeout.
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    // The child was told to cancel; the session goes on.
    let echo = s.call(
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "still here"}}),
    );
    assert_eq!(text(&echo), "Echo: still here");
}

#[test]
fn idle_stdio_sessions_are_stopped() {
    let f = Fixture::start("[stdio]\nidle_timeout = 3\n");
    let mut s = f.session("everything");
    s.initialize();
    let pid = f.everything_pid();
    // Traffic keeps it alive.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(700));
        assert_eq!(s.call("ping", json!({})).status, 200);
    }
    assert!(running(pid));
    // Silence ends it.
    assert!(
        eventually(Duration::from_secs(10), || !running(pid)),
        "the idle child is still running"
    );
    let after = s.call("ping", json!({}));
    assert_eq!(after.status, 404, "{}", after.text());
}

#[test]
fn children_are_bounded_with_503_and_retry_after() {
    let f = Fixture::start("[stdio]\nmax_children = 1\n");
    let agent = Agent::new();
    let token = token(&f.server, &agent, json!(["mcp:everything"]));
    let mut first = Session::new(&f.server, &agent, Some(token.clone()), "everything");
    first.initialize();
    let mut second = Session::new(&f.server, &agent, Some(token.clone()), "everything");
    let init = json!({"protocolVersion": VERSION, "capabilities": {},
                      "clientInfo": {"name": "t", "version": "0"}});
    let full = second.call("initialize", init.clone());
    assert_eq!(full.status, 503, "{}", full.text());
    assert_eq!(full.header("retry-after"), Some("5"));
    assert_eq!(full.json()["id"], 1);
    assert_eq!(f.children("server-everything").len(), 1);

    // Once the first session ends, its slot is free again.
    assert_eq!(first.send(&first.request("DELETE", None, &[])).status, 204);
    assert!(
        eventually(Duration::from_secs(8), || {
            second.call("initialize", init.clone()).status == 200
        }),
        "the slot was not freed"
    );
}

#[test]
fn one_agent_key_holds_at_most_half_the_children() {
    let f = Fixture::start("[stdio]\nmax_children = 4\n");
    let init = json!({"protocolVersion": VERSION, "capabilities": {},
                      "clientInfo": {"name": "t", "version": "0"}});
    let mut mine = Vec::new();
    for _ in 0..2 {
        let mut s = f.session("everything");
        s.initialize();
        mine.push(s);
    }
    // A third child for the same key: 503, though the gateway has room.
    let mut third = f.session("everything");
    let refused = third.call("initialize", init.clone());
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.header("retry-after"), Some("5"));
    // Another agent still gets one.
    let other = Agent::new();
    let token = token(&f.server, &other, json!(["mcp:everything"]));
    let mut theirs = Session::new(&f.server, &other, Some(token), "everything");
    theirs.initialize();
    assert_eq!(f.children("server-everything").len(), 3);
}

#[test]
fn children_stop_with_the_gateway() {
    let f = Fixture::start("");
    let mut s = f.session("everything");
    s.initialize();
    let pid = f.everything_pid();
    // A GET stream open at shutdown must not hold the drain.
    let events = stream(f.server.addr, s.request("GET", None, &[]));
    assert_eq!(
        events.recv_timeout(Duration::from_secs(10)).unwrap(),
        "status 200"
    );
    let Fixture { server, dir, .. } = f;
    let started = Instant::now();
    assert_eq!(server.stop(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(
        eventually(Duration::from_secs(3), || !running(pid)),
        "the child outlived the gateway"
    );
    drop(dir);
}

#[test]
fn an_env_credential_reaches_the_child_and_never_the_log() {
    const SECRET: &str = "STDIO-ENV-SECRET-value";
    const SECOND: &str = "STDIO-SECOND-SECRET-value";
    let script = root().join("tests/interop/mcp_stdio_upstream.py");
    let config = format!(
        "[[upstream]]\nname = \"py\"\ncommand = {:?}\nargs = [{:?}]\nenv = {{ PLAIN_SETTING = \"visible\" }}\n",
        python().display().to_string(),
        script.display().to_string(),
    );
    let first = format!("py=env:API_KEY={SECRET}");
    let second = format!("py=env:SECOND_KEY={SECOND}");
    let f = Fixture::start_with(
        &config,
        &[
            "--upstream-credential",
            &first,
            "--upstream-credential",
            &second,
        ],
        &[("GNAPD_TEST_CANARY", "canary-value")],
    );
    let agent = Agent::new();
    let token = token(&f.server, &agent, json!(["mcp:py"]));
    let mut s = Session::new(&f.server, &agent, Some(token.clone()), "py");
    s.initialize();
    let answer = s.call(
        "tools/call",
        json!({"name": "environment", "arguments": {}}),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let env: Value = serde_json::from_str(&text(&answer)).unwrap();
    let env = env.as_object().unwrap();
    let sha = |v: &str| {
        sha2::Sha256::digest(v.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(env["API_KEY"], sha(SECRET));
    assert_eq!(env["SECOND_KEY"], sha(SECOND));
    assert_eq!(env["PLAIN_SETTING"], sha("visible"));
    // Nothing else of the gateway's environment; never the agent's token.
    let allowed = [
        "API_KEY",
        "SECOND_KEY",
        "PLAIN_SETTING",
        "PATH",
        "HOME",
        "LANG",
        // Python's own C-locale coercion may add it.
        "LC_CTYPE",
    ];
    for (name, hash) in env {
        assert!(allowed.contains(&name.as_str()), "the child got {name}");
        assert_ne!(hash, &json!(sha(&token)));
    }

    // The child's stderr is logged; no secret and no token is.
    let log = f.log();
    assert!(log.contains("gnapd-test-stdio-upstream: ready"), "{log}");
    for (what, value) in [
        ("secret", SECRET),
        ("second secret", SECOND),
        ("token", token.as_str()),
    ] {
        assert!(!log.contains(value), "the {what} was logged");
    }
    // Sealed at rest: the store holds no plaintext.
    let mut pending = vec![f.dir.path().join("data")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                    "the secret is in {}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn credential_kinds_must_fit_the_transport() {
    let dir = tempfile::tempdir().unwrap();
    for (spec, credential, says) in [
        ("x=stdio:node server.js", "x=bearer:MISFIT-SECRET", "stdio"),
        (
            "x=http://127.0.0.1:1/mcp",
            "x=env:API_KEY=MISFIT-SECRET",
            "http",
        ),
        ("x=stdio:", "x=none", "command"),
    ] {
        let (status, err) = crate::support::server::Serve::new(&dir.path().join("data"))
            .dev()
            .args(&["--upstream", spec, "--upstream-credential", credential])
            .refused(Duration::from_secs(20));
        assert!(!status.success(), "{spec} {credential}");
        assert!(err.contains(says), "{err}");
        assert!(!err.contains("MISFIT-SECRET"), "{err}");
    }
}

#[test]
fn agent_ids_a_child_reads_as_one_double_keep_their_own_answers() {
    // The reference server runs on Node: it reads 2^53 and 2^53 + 1 as the
    // same number, and would answer both requests under one id.
    let f = Fixture::start("upstream_timeout = 5\n");
    let agent = Agent::new();
    let rights = json!([{"type": "mcp", "identifier": "everything",
        "actions": ["tools/list", "tools/call"], "tools": ["trigger-long-running-operation"]}]);
    let token = token(&f.server, &agent, rights);
    let mut s = Session::new(&f.server, &agent, Some(token), "everything");
    s.initialize();
    let big = json!(9_007_199_254_740_992u64);
    let bigger = json!(9_007_199_254_740_993u64);

    // A slow call under one id, streaming its progress...
    let call = json!({"jsonrpc": "2.0", "id": big, "method": "tools/call", "params": {
        "name": "trigger-long-running-operation", "arguments": {"duration": 2, "steps": 2},
        "_meta": {"progressToken": "slow"}}});
    let events = stream(f.server.addr, s.request("POST", Some(&call), &[]));
    assert_eq!(
        events.recv_timeout(Duration::from_secs(10)).unwrap(),
        "status 200"
    );
    // ...and, while it runs, a tool list under the other.
    let list = json!({"jsonrpc": "2.0", "id": bigger, "method": "tools/list"});
    let listed = s.send(&s.request("POST", Some(&list), &[]));
    assert_eq!(listed.status, 200, "{}", listed.text());
    let listed = rpc(&listed);
    assert_eq!(listed["id"], bigger, "{listed}");
    assert_eq!(tool_names(&listed), ["trigger-long-running-operation"]);

    // The call's stream ends with the call's own answer, under its id, and
    // carries no tool list.
    let mut text = String::new();
    while let Ok(chunk) = events.recv_timeout(Duration::from_secs(10)) {
        text.push_str(&chunk);
    }
    let messages = sse_messages(&text);
    let answer = messages
        .iter()
        .find(|m| m.get("result").is_some() || m.get("error").is_some())
        .unwrap_or_else(|| panic!("no answer in {text}"));
    assert_eq!(answer["id"], big, "{answer}");
    let result = answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("");
    assert!(
        result.contains("Long running operation completed"),
        "{answer}"
    );
    assert!(!text.contains("\"tools\""), "{text}");
}

#[test]
fn agent_ids_a_child_rounds_alike_cannot_swap_answers_or_leak_a_tool_list() {
    // A child that reads numbers as doubles and answers whatever id it
    // read: to it, 2^53 and 2^53 + 1 are one request id.
    let script = root().join("tests/interop/mcp_doubles_stdio_upstream.py");
    let config = format!(
        "upstream_timeout = 5\n[[upstream]]\nname = \"doubles\"\ncommand = {:?}\nargs = [{:?}]\n",
        python().display().to_string(),
        script.display().to_string(),
    );
    let f = Fixture::start(&config);
    let agent = Agent::new();
    let rights = json!([{"type": "mcp", "identifier": "doubles",
        "actions": ["tools/list", "tools/call"], "tools": ["search_issues", "wait"]}]);
    let token = token(&f.server, &agent, rights);
    let mut s = Session::new(&f.server, &agent, Some(token), "doubles");
    s.initialize();
    let big = json!(9_007_199_254_740_992u64);
    let bigger = json!(9_007_199_254_740_993u64);

    // A call in flight under one id...
    let call = json!({"jsonrpc": "2.0", "id": big, "method": "tools/call",
        "params": {"name": "wait", "arguments": {"seconds": 1}}});
    let waiting = stream(f.server.addr, s.request("POST", Some(&call), &[]));
    std::thread::sleep(Duration::from_millis(300));
    // ...while a tool list is asked for under the other: its answer is its
    // own, filtered, and the call's stream gets the call's answer.
    let list = json!({"jsonrpc": "2.0", "id": bigger, "method": "tools/list"});
    let listed = s.send(&s.request("POST", Some(&list), &[]));
    assert_eq!(listed.status, 200, "{}", listed.text());
    let listed = rpc(&listed);
    assert_eq!(listed["id"], bigger, "{listed}");
    let mut names = tool_names(&listed);
    names.sort();
    assert_eq!(names, ["search_issues", "wait"]);

    let mut text = String::new();
    while let Ok(chunk) = waiting.recv_timeout(Duration::from_secs(10)) {
        text.push_str(&chunk);
    }
    assert!(!text.contains("delete_repo"), "a tool list leaked: {text}");
    let body = text
        .strip_prefix("status 200")
        .unwrap_or_else(|| panic!("{text}"));
    let answer: Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("no JSON answer in {text}"));
    assert_eq!(answer["id"], big, "{answer}");
    assert_eq!(
        answer["result"]["content"][0]["text"], "ran wait",
        "{answer}"
    );
}
