//! What nodes on one PostgreSQL schema must do once for the deployment,
//! not once each, on real `gnapd serve` processes: refresh an upstream's
//! OAuth token (an upstream AS that rotates refresh tokens revokes the
//! family when one is presented twice), and count user-code guesses
//! against one per-source limit and one budget.

use std::sync::Barrier;
use std::time::Duration;

use serde_json::json;

use crate::gateway_http::{Session, refreshes, token, upstream_auth_since};
use crate::support::agent::Agent;
use crate::support::mcp_upstream::Upstream;
use crate::support::pg_nodes::Nodes;
use crate::support::server::Server;
use crate::user_code_guessing::{WRONG, enter_code, loopback, pending_code};

/// One `tools/call` through `server`'s gateway, in a session
/// initialized once every caller of `start` is ready; its status.
fn tool_call_at(server: &Server, agent: &Agent, agent_token: &str, start: &Barrier) -> u16 {
    let mut session = Session::new(server, agent, Some(agent_token.to_owned()), "github");
    start.wait();
    session.initialize();
    let call = session.call(
        "tools/call",
        json!({"name": "search_issues", "arguments": {"query": "oauth"}}),
    );
    assert_eq!(call.status, 200, "{}", call.text());
    call.status
}

#[test]
fn three_postgres_nodes_refresh_an_expired_upstream_token_once_and_later_nodes_keep_it() {
    let dir = tempfile::tempdir().unwrap();
    // Half a second per refresh: nodes refreshing on their own would
    // overlap there and present the rotated-away token.
    let upstream = Upstream::start_oauth_slow(dir.path(), 3600, Duration::from_millis(500));
    // A token expired long ago and the first refresh token: every node
    // finds it stale at its first call.
    let config = format!(
        "[[upstream]]\nname = \"github\"\nurl = \"{}\"\ncredential = {{ kind = \"oauth2\", access_token = \"at-stale\", refresh_token = \"rt-0\", expires_at = 1, token_endpoint = \"{}\", client_id = \"gnapd-gw\", client_secret = \"gw-secret\" }}\n",
        upstream.url(),
        upstream.token_endpoint()
    );
    let nodes = Nodes::dev(dir.path(), Some(&config), &[]);
    let (a, b, c) = (nodes.node("a"), nodes.node("b"), nodes.node("c"));
    let agents: Vec<Agent> = (0..12).map(|_| Agent::new()).collect();
    // Granted on A, used on every node: the grant is the cluster's.
    let tokens: Vec<String> = agents
        .iter()
        .map(|agent| token(&a, agent, json!(["mcp:github"])))
        .collect();
    let servers = [&a, &b, &c];
    let start = Barrier::new(agents.len());
    std::thread::scope(|scope| {
        for (i, (agent, agent_token)) in agents.iter().zip(&tokens).enumerate() {
            let server = servers[i % 3];
            let start = &start;
            scope.spawn(move || tool_call_at(server, agent, agent_token, start));
        }
    });
    assert_eq!(refreshes(&upstream), 1, "one refresh for the cluster");
    let presented = upstream_auth_since(&upstream, 0);
    assert!(
        !presented.iter().any(|v| v == "Bearer at-stale"),
        "{presented:?}"
    );
    let after = upstream.requests().len();

    // A node started after the refresh, and one restarted, keep the
    // refreshed set rather than seal the configured (rotated-away)
    // tokens again: their calls present at-1 without a refresh.
    let d = nodes.node("d");
    assert_eq!(b.stop(), Some(0));
    let b = nodes.node("b");
    for (i, server) in [&d, &b, &c].into_iter().enumerate() {
        tool_call_at(server, &agents[i], &tokens[i], &Barrier::new(1));
    }
    assert_eq!(refreshes(&upstream), 1, "no refresh at a node's start");
    let since = upstream_auth_since(&upstream, after);
    assert!(!since.is_empty());
    assert!(since.iter().all(|v| v == "Bearer at-1"), "{since:?}");
    for node in [a, b, c, d] {
        assert_eq!(node.stop(), Some(0));
    }
}

/// Per source: `usercode::MAX_FAILURES_PER_SOURCE`.
const PER_SOURCE: usize = 10;

#[test]
fn user_code_guesses_spread_over_three_postgres_nodes_meet_one_source_limit_and_one_budget() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = Nodes::dev(
        dir.path(),
        Some("user_code_failure_budget = 30\n"),
        &["--require-interaction"],
    );
    let nodes = [nodes.node("a"), nodes.node("b"), nodes.node("c")];
    let code = pending_code(&nodes[0]);
    // One address, its guesses dealt round the nodes: no node alone sees
    // ten, the cluster does, and the right code from it is refused on
    // every node.
    for guess in 0..PER_SOURCE {
        assert_eq!(enter_code(&nodes[guess % 3], loopback(2), WRONG, &[]), 400);
    }
    for node in &nodes {
        assert_eq!(enter_code(node, loopback(2), &code, &[]), 429);
    }
    // Two more addresses spend the budget of 30 the same way (ten on
    // each node): a fourth address, with the right code, waits on every
    // node.
    for source in 3..5 {
        for guess in 0..PER_SOURCE {
            assert_eq!(
                enter_code(&nodes[guess % 3], loopback(source), WRONG, &[]),
                400
            );
        }
    }
    for node in &nodes {
        assert_eq!(enter_code(node, loopback(9), &code, &[]), 429);
    }
    for node in nodes {
        assert_eq!(node.stop(), Some(0));
    }
}
