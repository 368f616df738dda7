//! The admin command `store_stats` over a running `gnapd serve`: what a
//! grant request leaves on the server, table by table, as `gnapd compare`
//! reads it.

use std::collections::BTreeMap;

use gnapd::clock::{Clock as _, SystemClock};
use gnapd::compare::probe::state::{self, Size};
use serde_json::json;

use crate::support::agent::{Agent, access_token};
use crate::support::http_client::send;
use crate::support::server::Server;

fn grew(
    before: &BTreeMap<String, Size>,
    after: &BTreeMap<String, Size>,
    table: &str,
) -> (u64, u64) {
    let b = before.get(table).copied().unwrap_or_default();
    let a = after.get(table).copied().unwrap_or_default();
    (a.records - b.records, a.bytes - b.bytes)
}

#[test]
fn store_stats_show_what_one_grant_request_leaves_on_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--dev"]);
    let before = state::server(dir.path()).unwrap();
    for table in gnapd::store::TABLES {
        assert!(before.contains_key(table), "{table} missing: {before:?}");
    }
    for table in [
        "memory:replay_unapproved",
        "memory:replay_bound",
        "memory:rate_limits",
        "memory:mcp_sessions",
        "memory:client_connections",
        "memory:client_metadata_documents",
    ] {
        assert!(before.contains_key(table), "{table} missing: {before:?}");
    }
    let agent = Agent::new();
    let request = agent.signed(
        "POST",
        &server.grant_endpoint,
        None,
        Some(&agent.grant_body(json!(["mcp:github"]))),
        SystemClock.now(),
    );
    let answer = send(server.addr, &request);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let after = state::server(dir.path()).unwrap();
    // One record: the grant with its token. Its continuation, token and
    // management token locate it by their hashes: no index entry.
    let (records, bytes) = grew(&before, &after, "grants");
    assert_eq!(records, 1);
    assert!(bytes > 100, "a grant record is JSON of some size: {bytes}");
    assert_eq!(grew(&before, &after, "token_index"), (0, 0));
    // The instance minted for the new key is named after the grant and
    // kept in its record.
    assert_eq!(grew(&before, &after, "instances"), (0, 0));
    // The signature is remembered in the budget of keys nobody approved,
    // and the address and key have rate-limit buckets.
    let (remembered, remembered_bytes) = grew(&before, &after, "memory:replay_unapproved");
    assert_eq!(remembered, 1);
    assert!(remembered_bytes >= 32);
    assert!(grew(&before, &after, "memory:rate_limits").0 >= 2);
    // The answer is names and numbers: no token, key or record leaks
    // through it to whoever reads the socket's answers.
    let raw = gnapd::admin::socket::call(dir.path(), &json!({"op": "store_stats"})).unwrap();
    let text = raw.to_string();
    assert!(!text.contains(access_token(&answer.json())));
    assert!(!text.contains(agent.key.verifying_key().thumbprint().as_str()));
    for (name, size) in raw["tables"].as_object().unwrap() {
        assert!(
            gnapd::store::TABLES.contains(&name.as_str()) || name.starts_with("memory:"),
            "{name}"
        );
        let size = size.as_object().unwrap();
        assert_eq!(size.len(), 2, "{name}: {size:?}");
        assert!(size["records"].is_u64() && size["bytes"].is_u64(), "{name}");
    }
    // Nothing the grant request has no business touching.
    assert_eq!(grew(&before, &after, "oauth_clients"), (0, 0));
    assert_eq!(grew(&before, &after, "interactions"), (0, 0));
}
