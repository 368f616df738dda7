//! The AS's rate limits (issue 14) over real HTTP: per source address at
//! the grant endpoint (IPv6 per /64), per key, on continuation URIs and on
//! the pages. Clients are told apart as a configured trusted proxy names
//! them (`X-Forwarded-For`), so one loopback test plays many addresses.

use std::path::Path;

use gnapd::clock::{Clock as _, SystemClock};
use gnapd::proto::httpsig::HttpRequest;
use serde_json::{Value, json};

use crate::support::agent::Agent;
use crate::support::http_client::{Answer, send};
use crate::support::server::Server;

const PROXY: &str = "trusted_proxy = { header = \"X-Forwarded-For\", hops = 1 }\n";

fn start(dir: &Path, args: &[&str], config: &str) -> Server {
    let file = dir.join("gnapd.toml");
    std::fs::write(&file, format!("{PROXY}{config}")).unwrap();
    let mut all = vec!["--config", file.to_str().unwrap()];
    all.extend_from_slice(args);
    Server::start(&dir.join("data"), &all)
}

/// `request` as if the proxy had received it from `client`.
fn from(mut request: HttpRequest, client: &str) -> HttpRequest {
    request.fields.append("X-Forwarded-For", client);
    request
}

fn grant_request(server: &Server, agent: &Agent, body: &Value) -> HttpRequest {
    agent.signed(
        "POST",
        &server.grant_endpoint,
        None,
        Some(body),
        SystemClock.now(),
    )
}

fn grant_from(server: &Server, agent: &Agent, client: &str) -> Answer {
    let body = agent.grant_body(json!(["mcp:github"]));
    send(
        server.addr,
        &from(grant_request(server, agent, &body), client),
    )
}

/// A 429 with `Retry-After` and the GNAP error `code`.
fn assert_limited(answer: &Answer, code: &str) {
    assert_eq!(answer.status, 429, "{}", answer.text());
    let retry_after: u64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(answer.json()["error"]["code"], code, "{}", answer.text());
}

fn limited_total(server: &Server, limit: &str) -> u64 {
    let text = send(
        server.addr,
        &HttpRequest::new("GET", format!("{}/metrics", server.base())),
    )
    .text();
    let series = format!("gnapd_limited_total{{limit=\"{limit}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .map_or(0, |n| n.parse().unwrap())
}

#[test]
fn grant_requests_past_the_per_address_limit_get_429_unread_and_an_ipv6_64_counts_as_one_address() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &["--dev"],
        "grant_rate_per_address = { burst = 5, per_minute = 1 }\n",
    );
    // Five new keys from five addresses of one /64: one address's burst.
    for i in 0..5 {
        let client = format!("2001:db8:1:2:{:x}::{:x}", i * 977 + 1, i + 5);
        let answer = grant_from(&server, &Agent::new(), &client);
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let answer = grant_from(&server, &Agent::new(), "[2001:db8:1:2:ffff::9]:443");
    assert_limited(&answer, "request_denied");
    // Refused before its body is read: one past the body limit gets 429,
    // not 413.
    let mut oversized = HttpRequest::new("POST", server.grant_endpoint.clone());
    oversized.body = vec![b' '; 70 * 1024];
    oversized.fields.append("Content-Type", "application/json");
    let answer = send(server.addr, &from(oversized, "2001:db8:1:2::77"));
    assert_limited(&answer, "request_denied");
    // The neighbouring /64 and an IPv4 client have their own.
    for client in ["2001:db8:1:3::1", "192.0.2.7"] {
        assert_eq!(grant_from(&server, &Agent::new(), client).status, 200);
    }
    assert_eq!(limited_total(&server, "grant_per_address"), 2);
}

#[test]
fn one_key_past_its_grant_rate_gets_429_from_any_address_and_forgeries_spend_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &["--dev"],
        "grant_rate_per_key = { burst = 3, per_minute = 1 }\n",
    );
    let agent = Agent::new();
    // Requests presenting the agent's key, signed by another: refused as
    // bad signatures, they spend nothing of the agent's share.
    let forger = Agent::new();
    for i in 0..10 {
        let body = agent.grant_body(json!(["mcp:github"]));
        let forged = from(
            grant_request(&server, &forger, &body),
            &format!("198.51.100.{i}"),
        );
        assert_eq!(send(server.addr, &forged).status, 401);
    }
    for i in 0..3 {
        let answer = grant_from(&server, &agent, &format!("192.0.2.{i}"));
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    // A new address does not help a key past its rate.
    assert_limited(
        &grant_from(&server, &agent, "203.0.113.50"),
        "request_denied",
    );
    assert_eq!(
        grant_from(&server, &Agent::new(), "203.0.113.50").status,
        200
    );
    assert_eq!(limited_total(&server, "grant_per_key"), 1);
}

#[test]
fn continuation_calls_past_the_per_address_limit_are_too_fast() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &["--require-interaction"],
        "poll_wait = 0\ncontinue_rate_per_address = { burst = 3, per_minute = 1 }\n",
    );
    let agent = Agent::new();
    let mut body = agent.grant_body(json!(["mcp:github"]));
    body["interact"] = json!({"start": ["user_code"]});
    let answer = send(
        server.addr,
        &from(grant_request(&server, &agent, &body), "192.0.2.1"),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let mut grant = answer.json();
    let poll = |grant: &Value, client: &str| {
        let uri = grant["continue"]["uri"].as_str().unwrap();
        let token = grant["continue"]["access_token"]["value"].as_str().unwrap();
        send(
            server.addr,
            &from(
                agent.signed("POST", uri, Some(token), None, SystemClock.now()),
                client,
            ),
        )
    };
    // The grant waits for a person; its client may poll at once (`wait`
    // 0), but one address gets three calls, then `too_fast`.
    for _ in 0..3 {
        let answer = poll(&grant, "192.0.2.1");
        assert_eq!(answer.status, 200, "{}", answer.text());
        grant = answer.json();
    }
    let answer = poll(&grant, "192.0.2.1");
    assert_limited(&answer, "too_fast");
    // Refused before anything was read: the continuation token still works.
    let answer = poll(&grant, "192.0.2.2");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(limited_total(&server, "continue_per_address"), 1);
}

/// GET or POST (the user code form) to a page, from `client`.
fn page(server: &Server, method: &str, path: &str, client: &str) -> Answer {
    let mut request = HttpRequest::new(method, format!("{}{path}", server.base()));
    if method == "POST" {
        request.body = b"code=2222-3333".to_vec();
        request
            .fields
            .append("Content-Type", "application/x-www-form-urlencoded");
    }
    send(server.addr, &from(request, client))
}

#[test]
fn page_requests_past_the_per_address_limit_get_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &["--require-interaction"],
        "page_rate_per_address = { burst = 4, per_minute = 1 }\n",
    );
    // The user code page, then wrong codes typed into its form.
    assert_eq!(
        page(&server, "GET", "/gnap/device", "192.0.2.1").status,
        200
    );
    for _ in 0..3 {
        assert_eq!(
            page(&server, "POST", "/gnap/device", "192.0.2.1").status,
            400
        );
    }
    for (method, path) in [
        ("GET", "/gnap/device"),
        ("POST", "/gnap/device"),
        ("GET", "/gnap/interact/no-such-grant/secret"),
    ] {
        let answer = page(&server, method, path, "192.0.2.1");
        assert_eq!(answer.status, 429, "{method} {path}: {}", answer.text());
        assert!(answer.header("retry-after").is_some());
        assert!(
            answer
                .header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
        assert!(answer.header("content-security-policy").is_some());
    }
    assert_eq!(
        page(&server, "GET", "/gnap/device", "192.0.2.2").status,
        200
    );
    assert_eq!(limited_total(&server, "pages_per_address"), 3);
}
