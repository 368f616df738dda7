//! What one request may carry and what the AS keeps of it (issue 14):
//! nesting depth, and no logo or assertion in the stored grant. The real
//! binary on loopback, grants waiting for a person.

use std::path::Path;

use gnapd::clock::{Clock as _, SystemClock};
use serde_json::{Value, json};

use crate::support::agent::Agent;
use crate::support::http_client::{Answer, send};
use crate::support::server::Server;

fn start(dir: &Path, config: &str) -> Server {
    let file = dir.join("gnapd.toml");
    std::fs::write(&file, config).unwrap();
    Server::start(
        &dir.join("data"),
        &["--require-interaction", "--config", file.to_str().unwrap()],
    )
}

fn post(server: &Server, agent: &Agent, body: &Value) -> Answer {
    server.grant(agent, body)
}

/// A grant request waiting for a person whose body nests `levels` deep
/// (levels 1–4: the body, `access_token`, `access`, the right).
fn nested(agent: &Agent, levels: usize) -> Value {
    let mut shape = json!([]);
    for _ in 5..levels {
        shape = json!([shape]);
    }
    let mut body = agent.grant_body(json!([{"type": "photo-api", "shape": shape}]));
    body["interact"] = json!({"start": ["user_code"]});
    body
}

fn poll(server: &Server, agent: &Agent, grant: &Value) -> Answer {
    let uri = grant["continue"]["uri"].as_str().unwrap();
    let token = grant["continue"]["access_token"]["value"].as_str().unwrap();
    send(
        server.addr,
        &agent.signed("POST", uri, Some(token), None, SystemClock.now()),
    )
}

#[test]
fn a_request_nested_deeper_than_its_stored_record_could_be_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "poll_wait = 1\n");
    // serde_json reads 127 levels; inside the grant record that is 129, and
    // the record could never be read back: every poll would fail.
    let agent = Agent::new();
    let answer = post(&server, &agent, &nested(&agent, 127));
    assert_eq!(answer.status, 400, "{}", answer.text());
    let error = &answer.json()["error"];
    assert_eq!(error["code"], "invalid_request");
    assert_eq!(error["description"], "nested deeper than 32 levels");
    let metrics = send(
        server.addr,
        &gnapd::proto::httpsig::HttpRequest::new("GET", format!("{}/metrics", server.base())),
    )
    .text();
    assert!(
        metrics
            .lines()
            .any(|l| l == "gnapd_limited_total{limit=\"request_depth\"} 1"),
        "{metrics}"
    );

    // The deepest request accepted is stored and read back.
    let agent = Agent::new();
    let answer = post(&server, &agent, &nested(&agent, 32));
    assert_eq!(answer.status, 200, "{}", answer.text());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let polled = poll(&server, &agent, &answer.json());
    assert_eq!(polled.status, 200, "{}", polled.text());
    assert!(polled.json()["continue"]["uri"].is_string());
}
