//! The gateway's session table is bounded, and one agent key filling it
//! never pushes out another agent's live session (issue 14): a key past
//! the bound only replaces its own oldest sessions, and a key with none
//! is refused (503, `Retry-After`) until a session goes idle, rather than
//! handed a place taken from an agent still at work. Against the real
//! Python MCP SDK upstream, through `gnapd serve`.

use gnapd::proto::httpsig::HttpRequest;
use serde_json::{Value, json};

use crate::gateway_http::{Session, token};
use crate::support::agent::Agent;
use crate::support::http_client::send;
use crate::support::mcp_upstream::Upstream;
use crate::support::server::start_logged;

fn tools() -> Value {
    json!([{"type": "mcp", "identifier": "github", "actions": ["tools/list"]}])
}

#[test]
fn one_key_filling_the_session_table_does_not_push_out_another_keys_live_session() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gnapd.toml");
    std::fs::write(&config, "[sessions]\nmax = 4\n").unwrap();
    let upstream = Upstream::start(dir.path(), true);
    let github = format!("github={}", upstream.url());
    let server = start_logged(
        &dir.path().join("data"),
        &dir.path().join("gnapd.log"),
        &[
            "--config",
            &config.display().to_string(),
            "--dev",
            "--upstream",
            &github,
        ],
    );

    // Alice's session, in use.
    let alice = Agent::new();
    let mut a = Session::new(
        &server,
        &alice,
        Some(token(&server, &alice, tools())),
        "github",
    );
    a.initialize();
    assert_eq!(a.call("tools/list", json!({})).status, 200);

    // Mallory fills the table, then keeps opening sessions: each new one
    // takes the place of her own oldest.
    let mallory = Agent::new();
    let mallory_token = token(&server, &mallory, tools());
    let mut held = Vec::new();
    for _ in 0..12 {
        let mut m = Session::new(&server, &mallory, Some(mallory_token.clone()), "github");
        m.initialize();
        held.push(m.session_id.clone());
    }
    let mut newest = Session::new(&server, &mallory, Some(mallory_token), "github");
    newest.session_id = held.pop().flatten();
    assert_eq!(newest.call("tools/list", json!({})).status, 200);
    newest.session_id = held.first().cloned().flatten();
    assert_eq!(newest.call("tools/list", json!({})).status, 404);

    // Alice's session lives on.
    let answer = a.call("tools/list", json!({}));
    assert_eq!(answer.status, 200, "{}", answer.text());

    // A key that holds no session is refused while the table is full of
    // live ones, and told when to come back.
    let carol = Agent::new();
    let mut c = Session::new(
        &server,
        &carol,
        Some(token(&server, &carol, tools())),
        "github",
    );
    let refused = c.call(
        "initialize",
        json!({"protocolVersion": crate::gateway_http::VERSION, "capabilities": {}, "clientInfo": {"name": "gnapd-test", "version": "0"}}),
    );
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.header("retry-after").is_some());
    assert_eq!(refused.json()["error"]["code"], -32002);
    assert_eq!(a.call("tools/list", json!({})).status, 200);

    let metrics = send(
        server.addr,
        &HttpRequest::new("GET", format!("{}/metrics", server.base())),
    )
    .text();
    for line in [
        "gnapd_gateway_sessions 4",
        "gnapd_gateway_sessions_refused_total 1",
        "gnapd_gateway_sessions_forgotten_total{why=\"own\"} 9",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in {metrics}"
        );
    }
}
