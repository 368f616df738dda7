//! What the fuzz targets found, performed against `gnapd serve`: an
//! upstream whose answers try to show an agent the tools its token
//! withholds, and agents whose bodies are not JSON where the gateway does
//! not look. The upstream is a raw HTTP server on loopback that answers
//! `tools/list` with the bytes under test.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use gnapd::proto::httpsig::{HttpRequest, SignOptions, sign_gnap};

use crate::gateway_http::{Session, dev_gateway_for_github, now, send_streaming, token};
use crate::support::agent::Agent;
use crate::support::http_client::send;

/// A token for `search_issues` only, at upstream `github`.
fn search_only() -> Value {
    json!([{"type": "mcp", "identifier": "github",
        "actions": ["tools/list", "tools/call"], "tools": ["search_issues"]}])
}

const TOOLS: &str =
    r#"[{"name":"search_issues","inputSchema":{}},{"name":"delete_repo","inputSchema":{}}]"#;

/// An upstream MCP server that answers `initialize` and notifications as
/// any does, and `tools/list` with `(content type, body)`; every body it
/// received is kept.
struct RawUpstream {
    port: u16,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl RawUpstream {
    fn start(content_type: &'static str, tools_list: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (log, tools_list) = (log.clone(), tools_list.clone());
                std::thread::spawn(move || serve(stream, content_type, &tools_list, &log));
            }
        });
        Self { port, received }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    fn received(&self) -> Vec<Vec<u8>> {
        self.received.lock().unwrap().clone()
    }
}

/// One request per connection: reads it, answers, closes.
fn serve(stream: TcpStream, content_type: &str, tools_list: &[u8], log: &Mutex<Vec<Vec<u8>>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    log.lock().unwrap().push(body.clone());
    let message: Value = serde_json::from_slice(&body).unwrap_or_default();
    let (status, content_type, answer) = match message["method"].as_str() {
        Some("initialize") => (
            "200 OK",
            "application/json",
            json!({"jsonrpc": "2.0", "id": message["id"], "result": {
                "protocolVersion": crate::gateway_http::VERSION, "capabilities": {"tools": {}},
                "serverInfo": {"name": "raw", "version": "0"}}})
            .to_string()
            .into_bytes(),
        ),
        Some("tools/list") => ("200 OK", content_type, tools_list.to_vec()),
        _ => ("202 Accepted", "application/json", Vec::new()),
    };
    let mut out = stream;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nMcp-Session-Id: s-1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer.len()
    );
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(&answer);
}

/// The agent's `tools/list` through the gateway, as the raw answer text.
fn tools_list_through_gateway(upstream: &RawUpstream) -> String {
    let dir = tempfile::tempdir().unwrap();
    let server = dev_gateway_for_github(dir.path(), &upstream.url());
    let agent = Agent::new();
    let token = token(&server, &agent, search_only());
    let mut s = Session::new(&server, &agent, Some(token), "github");
    s.initialize();
    let list = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"});
    let (status, chunks) = send_streaming(server.addr, &s.request("POST", Some(&list), &[]));
    assert_eq!(status, 200);
    chunks.into_iter().map(|(_, c)| c).collect()
}

#[test]
fn a_byte_order_mark_before_the_first_event_does_not_unfilter_a_tool_list_or_unseal_its_id() {
    // An event stream may start with a BOM, which every client drops; the
    // gateway used to read `\u{feff}id` and `\u{feff}data` as other fields
    // and pass the event on untouched.
    let result = format!(r#"{{"jsonrpc":"2.0","id":9,"result":{{"tools":{TOOLS}}}}}"#);
    for first in [
        format!("data: {result}\n"),
        format!("id: e-1\ndata: {result}\n"),
    ] {
        let list = format!("\u{feff}{first}\n");
        let upstream = RawUpstream::start("text/event-stream", list.into_bytes());
        let text = tools_list_through_gateway(&upstream);
        assert!(text.contains("search_issues"), "{text}");
        assert!(
            !text.contains("delete_repo"),
            "a withheld tool reached the agent: {text}"
        );
        assert!(!text.contains("e-1"), "an unsealed event id: {text}");
    }
}

#[test]
fn a_byte_order_mark_the_upstreams_client_reads_as_text_does_not_unfilter_a_tool_list() {
    // The upstream's client drops the first BOM and reads `\u{feff}data` as
    // another field; the agent's client, given that line first, dropped
    // the second BOM and read the unfiltered list.
    let result = format!(r#"{{"jsonrpc":"2.0","id":9,"result":{{"tools":{TOOLS}}}}}"#);
    let list = format!("\u{feff}\u{feff}data: {result}\n\n");
    let upstream = RawUpstream::start("text/event-stream", list.into_bytes());
    let text = tools_list_through_gateway(&upstream);
    let seen = text.strip_prefix('\u{feff}').unwrap_or(&text);
    assert!(
        !seen
            .lines()
            .any(|l| l.starts_with("data") && l.contains("delete_repo")),
        "a withheld tool reached the agent: {text}"
    );
}

#[test]
fn a_tool_list_under_a_name_a_case_blind_client_reads_does_not_reach_it_unfiltered() {
    // Go's encoding/json (the Go MCP SDK's decoder) reads `Result` as
    // `result` and a later `Name` over `name`.
    for answer in [
        format!(r#"{{"jsonrpc":"2.0","id":9,"Result":{{"tools":{TOOLS}}}}}"#),
        format!(r#"{{"jsonrpc":"2.0","id":9,"result":{{"tools":[]}},"RESULT":{{"tools":{TOOLS}}}}}"#),
        r#"{"jsonrpc":"2.0","id":9,"result":{"tools":[{"name":"search_issues","Name":"delete_repo"}]}}"#
            .to_owned(),
    ] {
        for (content_type, body) in [
            ("application/json", answer.clone()),
            ("text/event-stream", format!("data: {answer}\n\n")),
        ] {
            let upstream = RawUpstream::start(content_type, body.into_bytes());
            let text = tools_list_through_gateway(&upstream);
            assert!(
                !text.to_ascii_lowercase().contains("delete_repo"),
                "{content_type}: a withheld tool reached the agent: {text}"
            );
        }
    }
}

#[test]
fn a_body_that_is_not_json_is_a_parse_error_and_never_reaches_the_upstream() {
    let upstream = RawUpstream::start("application/json", Vec::new());
    let dir = tempfile::tempdir().unwrap();
    let server = dev_gateway_for_github(dir.path(), &upstream.url());
    let agent = Agent::new();
    let token = token(&server, &agent, search_only());
    let mut s = Session::new(&server, &agent, Some(token.clone()), "github");
    s.initialize();
    let before = upstream.received().len();
    for body in [
        // Not UTF-8 inside the arguments, which the gateway does not read.
        &b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"search_issues\",\"arguments\":{\"q\\xff\":\"x\"}}}"[..],
        // A member no message has, then text that is not JSON.
        b"{\"jsonrpc\":\"2.0\",\"Method\":\"tools/call\",",
        // A number no double holds, in the arguments: decoders refuse it,
        // read infinity or keep it exact.
        br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"search_issues","arguments":{"q":"x","n":1e999}}}"#,
    ] {
        let mut req = HttpRequest::new("POST", s.uri())
            .with_field("Accept", "application/json, text/event-stream")
            .with_field("Content-Type", "application/json")
            .with_field("Mcp-Session-Id", s.session_id.clone().unwrap())
            .with_field("MCP-Protocol-Version", crate::gateway_http::VERSION)
            .with_field("Authorization", format!("GNAP {token}"))
            .with_body(body.to_vec());
        sign_gnap(&mut req, &agent.key, now(), &SignOptions::default()).unwrap();
        let answer = send(server.addr, &req);
        assert_eq!(answer.status, 400, "{}", answer.text());
        assert_eq!(answer.json()["error"]["code"], -32700, "{}", answer.text());
    }
    assert_eq!(
        upstream.received().len(),
        before,
        "a body reached the upstream"
    );
}
