//! The server's counts on /metrics, over loopback against `gnapd serve`.

use std::collections::BTreeMap;

use gnapd::clock::{Clock as _, SystemClock};
use gnapd::compare::probe::crypto::from_exposition;
use gnapd::proto::httpsig::HttpRequest;
use serde_json::json;

use crate::support::agent::{Agent, access_token};
use crate::support::http_client::send;
use crate::support::server::Server;

fn counts(server: &Server) -> BTreeMap<String, u64> {
    let page = send(
        server.addr,
        &HttpRequest::new("GET", format!("{}/metrics", server.base())),
    );
    assert_eq!(page.status, 200);
    let text = page.text();
    assert!(text.contains("# TYPE gnapd_crypto_operations_total counter\n"));
    from_exposition(&text)
}

fn moved(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, key: &str) -> u64 {
    after.get(key).copied().unwrap_or(0) - before.get(key).copied().unwrap_or(0)
}

#[test]
fn a_grant_request_raises_verify_ed25519_by_one_on_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--dev"]);
    let agent = Agent::new();
    let before = counts(&server);
    let request = agent.signed(
        "POST",
        &server.grant_endpoint,
        None,
        Some(&agent.grant_body(json!(["mcp:github"]))),
        SystemClock.now(),
    );
    let answer = send(server.addr, &request);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(!access_token(&answer.json()).is_empty());
    let after = counts(&server);
    assert_eq!(moved(&before, &after, "verify:ed25519"), 1, "{after:?}");
    // The server signs nothing for an agent, and it hashed at least the
    // body's Content-Digest, the key's thumbprint and the tokens it stored.
    assert_eq!(moved(&before, &after, "sign:ed25519"), 0);
    assert!(moved(&before, &after, "hash:sha-256") >= 3, "{after:?}");
}
