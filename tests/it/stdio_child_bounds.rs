//! Stdio children are bounded per client address too (issue 14): keys are
//! free, so an attacker minting a key per call would otherwise take every
//! child slot from one address. Against the reference MCP server from npm,
//! through `gnapd serve`, with calls from several loopback addresses.

use std::net::IpAddr;

use serde_json::json;

use crate::gateway_http::{Session, VERSION, token};
use crate::gateway_stdio::everything_script;
use crate::support::agent::Agent;
use crate::support::http_client::{Answer, send_from};
use crate::support::server::start_logged;

/// An `initialize` of a new session for `agent`, sent from `from`.
fn initialize_from(s: &Session<'_>, from: IpAddr) -> Answer {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": VERSION, "capabilities": {},
                   "clientInfo": {"name": "t", "version": "0"}}});
    send_from(from, s.server.addr, &s.request("POST", Some(&body), &[]))
}

#[test]
fn one_address_minting_keys_takes_at_most_its_share_of_stdio_children() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gnapd.toml");
    // 4 children: 2 per key, 3 per address.
    std::fs::write(&config, "[stdio]\nmax_children = 4\n").unwrap();
    let everything = format!(
        "everything=stdio:node {} stdio",
        everything_script().display()
    );
    let server = start_logged(
        &dir.path().join("data"),
        &dir.path().join("gnapd.log"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--dev",
            "--upstream",
            &everything,
        ],
    );
    let attacker: IpAddr = "127.0.4.1".parse().unwrap();
    let agents: Vec<Agent> = (0..3).map(|_| Agent::new()).collect();
    let sessions: Vec<Session<'_>> = agents
        .iter()
        .map(|a| {
            let t = token(&server, a, json!(["mcp:everything"]));
            Session::new(&server, a, Some(t), "everything")
        })
        .collect();
    // Three fresh keys from one address: the third is refused though it
    // holds no child and the gateway has a slot left.
    assert_eq!(initialize_from(&sessions[0], attacker).status, 200);
    assert_eq!(initialize_from(&sessions[1], attacker).status, 200);
    assert_eq!(initialize_from(&sessions[1], attacker).status, 200);
    let refused = initialize_from(&sessions[2], attacker);
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.header("retry-after"), Some("5"));
    // The same key from another address gets the last one.
    let elsewhere: IpAddr = "127.0.4.2".parse().unwrap();
    let answer = initialize_from(&sessions[2], elsewhere);
    assert_eq!(answer.status, 200, "{}", answer.text());

    let metrics = send_from(
        elsewhere,
        server.addr,
        &gnapd::proto::httpsig::HttpRequest::new("GET", format!("{}/metrics", server.base())),
    )
    .text();
    for line in [
        "gnapd_gateway_stdio_children 4",
        "gnapd_gateway_stdio_children_refused_total{bound=\"address\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in {metrics}"
        );
    }
}
