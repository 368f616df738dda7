//! What grant requests nobody approved may leave in the store (issue 14):
//! pending grants capped per key, per source address and in all, across a
//! restart; what each one keeps bounded in bytes. The real binary on
//! loopback with sled; addresses as a trusted proxy names them.

use std::path::Path;

use gnapd::clock::{Clock as _, SystemClock};
use serde_json::{Value, json};

use crate::support::agent::Agent;
use crate::support::http_client::{Answer, send};
use crate::support::server::Server;

const PROXY: &str = "trusted_proxy = { header = \"X-Forwarded-For\", hops = 1 }\n";

fn start(dir: &Path, config: &str) -> Server {
    let file = dir.join("gnapd.toml");
    std::fs::write(&file, format!("{PROXY}{config}")).unwrap();
    Server::start(
        &dir.join("data"),
        &["--require-interaction", "--config", file.to_str().unwrap()],
    )
}

/// A grant request that waits for a person, from `client`.
fn ask(server: &Server, agent: &Agent, body: &Value, client: &str) -> Answer {
    let mut request = agent.signed(
        "POST",
        &server.grant_endpoint,
        None,
        Some(body),
        SystemClock.now(),
    );
    request.fields.append("X-Forwarded-For", client);
    send(server.addr, &request)
}

fn pending_body(agent: &Agent) -> Value {
    let mut body = agent.grant_body(json!(["mcp:github"]));
    body["interact"] = json!({"start": ["user_code"]});
    body
}

fn pending(server: &Server, agent: &Agent, client: &str) -> Answer {
    ask(server, agent, &pending_body(agent), client)
}

fn metric(server: &Server, series: &str) -> u64 {
    let text = send(
        server.addr,
        &gnapd::proto::httpsig::HttpRequest::new("GET", format!("{}/metrics", server.base())),
    )
    .text();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0, |n| n.parse().unwrap())
}

/// Refused with `status`, `request_denied` and a `Retry-After`.
fn assert_refused(answer: &Answer, status: u16) {
    assert_eq!(answer.status, status, "{}", answer.text());
    assert!(
        answer
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert_eq!(answer.json()["error"]["code"], "request_denied");
}

#[test]
fn pending_grants_are_capped_per_key_per_address_and_in_all_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // `poll_wait = 0`: the client may withdraw its request at once.
    let config = "poll_wait = 0\npending_per_key = 2\npending_per_address = 3\npending_total = 7\n";
    let server = start(dir.path(), config);
    let a = Agent::new();
    let first = pending(&server, &a, "192.0.2.1");
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(pending(&server, &a, "192.0.2.1").status, 200);
    // The key has its two, whatever address it comes from.
    assert_refused(&pending(&server, &a, "198.51.100.9"), 429);
    // The address has its three, whatever key comes from it.
    assert_eq!(pending(&server, &Agent::new(), "192.0.2.1").status, 200);
    assert_refused(&pending(&server, &Agent::new(), "192.0.2.1"), 429);
    // For IPv6 an address is a /64, as the rate limits count.
    for client in ["2001:db8:7:7::1", "2001:db8:7:7:ffff::2", "2001:db8:7:7::3"] {
        assert_eq!(pending(&server, &Agent::new(), client).status, 200);
    }
    assert_refused(&pending(&server, &Agent::new(), "2001:db8:7:7::4"), 429);
    assert_eq!(
        pending(&server, &Agent::new(), "2001:db8:7:8::1").status,
        200
    );
    // Seven wait in all: the server is full for everyone.
    assert_refused(&pending(&server, &Agent::new(), "203.0.113.1"), 503);
    assert_eq!(metric(&server, "gnapd_pending_grants"), 7);
    for (limit, n) in [
        ("pending_per_key", 1),
        ("pending_per_address", 2),
        ("pending_total", 1),
    ] {
        let series = format!("gnapd_limited_total{{limit=\"{limit}\"}}");
        assert_eq!(metric(&server, &series), n, "{limit}");
    }

    // The client withdrawing its request (§5.4) frees its slot.
    let grant = first.json();
    let uri = grant["continue"]["uri"].as_str().unwrap();
    let token = grant["continue"]["access_token"]["value"].as_str().unwrap();
    let deleted = send(
        server.addr,
        &a.signed("DELETE", uri, Some(token), None, SystemClock.now()),
    );
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    assert_eq!(pending(&server, &Agent::new(), "203.0.113.1").status, 200);

    // A restart does not hand out the slots again: the grants waiting in
    // the store still hold them.
    assert_eq!(server.stop(), Some(0));
    let server = start(dir.path(), config);
    assert_eq!(metric(&server, "gnapd_pending_grants"), 7);
    assert_refused(&pending(&server, &Agent::new(), "203.0.113.2"), 503);
}

/// Bytes of the files under `dir`.
fn size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                size(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

#[test]
fn a_pending_grant_keeps_no_logo_and_at_most_its_byte_bound_of_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "pending_request_max_bytes = 4096\n");
    // Forty requests carrying a 30 KB data-URL logo each (1.2 MB of logos)
    // from forty addresses: the data dir grows by what the decision needs,
    // a few KB each, not by the logos.
    let data = dir.path().join("data");
    let before = size(&data);
    let logo = format!("data:image/png;base64,{}", "A".repeat(30 * 1024));
    for i in 0..40 {
        let agent = Agent::new();
        let mut body = pending_body(&agent);
        body["client"]["display"]["logo_uri"] = json!(logo);
        let answer = ask(&server, &agent, &body, &format!("198.51.100.{i}"));
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let grown = size(&data).saturating_sub(before);
    assert!(grown < 600_000, "the data dir grew by {grown} bytes");

    // A request that keeps about 6 KiB (three 1,900-byte strings in an
    // access right of an RS-defined type) is too large to wait for a
    // person; the same with one string fits.
    let sized = |agent: &Agent, strings: usize| {
        let mut right = json!({"type": "photo-api"});
        for i in 0..strings {
            right[format!("f{i}")] = json!("x".repeat(1900));
        }
        let mut body = agent.grant_body(json!([right]));
        body["interact"] = json!({"start": ["user_code"]});
        body
    };
    let agent = Agent::new();
    let answer = ask(&server, &agent, &sized(&agent, 3), "192.0.2.1");
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()["error"]["code"], "invalid_request");
    let series = "gnapd_limited_total{limit=\"pending_request_bytes\"}";
    assert_eq!(metric(&server, series), 1);
    let agent = Agent::new();
    assert_eq!(
        ask(&server, &agent, &sized(&agent, 1), "192.0.2.1").status,
        200
    );
}
