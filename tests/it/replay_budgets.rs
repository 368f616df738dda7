//! Replay memory under a flood (issue 14): the grant endpoint and the
//! gateway remember signatures in separate budgets, and one key cannot take
//! a whole budget. The real binary, real sled, the real Python MCP SDK
//! upstream; outside dev mode, so policy denies every key but the allowed
//! agents'.

use std::path::Path;

use serde_json::{Value, json};

use crate::gateway_http::{Session, rpc};
use crate::support::agent::{Agent, access_token};
use crate::support::http_client::{Answer, send};
use crate::support::mcp_upstream::Upstream;
use crate::support::server::Server;

/// Rate limits out of the way: these tests are about the replay budgets.
const NO_RATE_LIMITS: &str = "grant_rate_per_address = { burst = 1000000, per_minute = 1000000 }\n\
grant_rate_per_key = { burst = 1000000, per_minute = 1000000 }\n";

fn allow(agent: &Agent) -> String {
    format!(
        "[[allow]]\nthumbprint = \"{}\"\naccess = [\"mcp:github\"]\n",
        agent.key.verifying_key().thumbprint().as_str()
    )
}

/// `gnapd serve` (not dev) with `config`, in front of `upstream` as
/// `github`.
fn start(dir: &Path, upstream: &Upstream, config: &str) -> Server {
    let file = dir.join("gnapd.toml");
    std::fs::write(&file, config).unwrap();
    Server::start(
        &dir.join("data"),
        &[
            "--config",
            file.to_str().unwrap(),
            "--upstream",
            &format!("github={}", upstream.url()),
        ],
    )
}

fn grant(server: &Server, agent: &Agent) -> Answer {
    let body = agent.grant_body(json!(["mcp:github"]));
    server.grant(agent, &body)
}

fn metrics(server: &Server) -> String {
    let answer = send(
        server.addr,
        &gnapd::proto::httpsig::HttpRequest::new("GET", format!("{}/metrics", server.base())),
    );
    answer.text()
}

fn ping(session: &mut Session<'_>) -> Answer {
    session.call("ping", json!({}))
}

#[test]
fn a_flood_of_signed_grant_requests_from_a_denied_key_leaves_the_gateway_working() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), true);
    let agent = Agent::new();
    // The gateway's budget holds 300 signatures; the grant endpoint's 200.
    // Shared, as they were, 600 signed grant requests would fill it.
    let config = format!(
        "replay_capacity = 300\nreplay_capacity_unapproved = 200\n{NO_RATE_LIMITS}{}",
        allow(&agent)
    );
    let server = start(dir.path(), &upstream, &config);
    let answer = grant(&server, &agent);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let token = access_token(&answer.json()).to_owned();

    // One key nobody approved signs 600 grant requests; policy denies each
    // until the grant endpoint's budget is full, then it is at capacity.
    let attacker = Agent::new();
    let mut denied = 0;
    let mut busy = 0;
    for _ in 0..600 {
        let answer = grant(&server, &attacker);
        let body: Value = answer.json();
        match answer.status {
            403 => {
                assert_eq!(body["error"]["code"], "request_denied", "{body}");
                denied += 1;
            }
            503 => {
                assert_eq!(answer.header("retry-after"), Some("60"));
                assert_eq!(body["error"]["code"], "request_denied", "{body}");
                busy += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }

    // The approved agent's calls are remembered in the gateway's budget,
    // which the flood never touched.
    let mut session = Session::new(&server, &agent, Some(token), "github");
    session.initialize();
    for _ in 0..20 {
        let answer = ping(&mut session);
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert!(rpc(&answer).get("result").is_some(), "{}", answer.text());
    }
    // 200 signatures (16 shards of 13) were taken, the rest refused.
    assert!(denied <= 208 && busy >= 390, "denied {denied}, busy {busy}");
    assert!(
        metrics(&server).contains("gnapd_limited_total{limit=\"replay_unapproved\"}"),
        "the full budget is counted"
    );
}

#[test]
fn one_approved_key_cannot_take_the_gateways_replay_budget_from_another() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), true);
    let (greedy, polite) = (Agent::new(), Agent::new());
    // 2,000 signatures in the gateway's budget, at most ~200 per key.
    let config = format!(
        "replay_capacity = 2000\nreplay_key_quota = 200\n{}{}",
        allow(&greedy),
        allow(&polite)
    );
    let server = start(dir.path(), &upstream, &config);
    let token = |agent: &Agent| {
        let answer = grant(&server, agent);
        assert_eq!(answer.status, 200, "{}", answer.text());
        access_token(&answer.json()).to_owned()
    };
    let (greedy_token, polite_token) = (token(&greedy), token(&polite));

    let mut flood = Session::new(&server, &greedy, Some(greedy_token), "github");
    flood.initialize();
    let mut refused = None;
    for sent in 0..400 {
        let answer = ping(&mut flood);
        if answer.status == 503 {
            refused = Some((sent, answer));
            break;
        }
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let (sent, answer) = refused.expect("a key past its quota is refused");
    assert!(sent <= 208, "refused after {sent} calls");
    assert_eq!(answer.header("retry-after"), Some("60"));
    assert_eq!(answer.json()["error"]["code"], -32603);

    // Another key still has the rest of the budget.
    let mut other = Session::new(&server, &polite, Some(polite_token), "github");
    other.initialize();
    for _ in 0..50 {
        let answer = ping(&mut other);
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
}
