//! The authorization server over real HTTP on loopback, with real sled on a
//! temporary directory: the `gnapd serve` binary as users run it.

use std::sync::{Arc, Mutex};

use gnapd::clock::{Clock as _, SystemClock};
use serde_json::{Value, json};

use crate::support::agent::{Agent, access_token, management};
use crate::support::http_client::{Answer, send};
use crate::support::server::Server;

fn now() -> i64 {
    SystemClock.now()
}

fn grant(server: &Server, agent: &Agent, access: Value) -> Answer {
    let req = agent.signed(
        "POST",
        &server.grant_endpoint,
        None,
        Some(&agent.grant_body(access)),
        now(),
    );
    send(server.addr, &req)
}

/// Rewrites a URI the AS handed out onto `server` (after a restart on
/// another port the public URL changes; the path and tokens do not).
fn on(server: &Server, uri: &str) -> String {
    let path = &uri[uri.find("/gnap").unwrap()..];
    format!("{}{path}", server.base())
}

#[test]
fn http_dev_grant_rotate_revoke_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--dev"]);
    let agent = Agent::new();
    let answer = grant(&server, &agent, json!(["mcp:github"]));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let body = answer.json();
    let (manage_uri, manage) = management(&body);
    assert!(manage_uri.starts_with(&server.base()));

    let rotated = send(
        server.addr,
        &agent.signed("POST", manage_uri, Some(manage), None, now()),
    );
    assert_eq!(rotated.status, 200);
    let rotated = rotated.json();
    let manage2 = rotated["access_token"]["manage"]["access_token"]["value"]
        .as_str()
        .unwrap();
    let revoked = send(
        server.addr,
        &agent.signed("DELETE", manage_uri, Some(manage2), None, now()),
    );
    assert_eq!(revoked.status, 204);
    assert!(revoked.body.is_empty());
    assert_eq!(
        server.stop(),
        Some(0),
        "SIGTERM must end the server cleanly"
    );
}

#[test]
fn http_discovery_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--dev"]);
    let options = send(
        server.addr,
        &gnapd::proto::httpsig::HttpRequest::new("OPTIONS", &server.grant_endpoint),
    );
    assert_eq!(options.status, 200);
    assert_eq!(
        options.json()["grant_request_endpoint"],
        server.grant_endpoint.as_str()
    );
    let well_known = send(
        server.addr,
        &gnapd::proto::httpsig::HttpRequest::new(
            "GET",
            format!("{}/.well-known/gnap-as-rs", server.base()),
        ),
    );
    assert_eq!(well_known.status, 200);
    assert_eq!(
        well_known.json()["grant_request_endpoint"],
        server.grant_endpoint.as_str()
    );
    assert_eq!(
        well_known.json()["key_proofs_supported"],
        json!(["httpsig", "jwsd", "jws"])
    );

    let agent = Agent::new();
    assert_eq!(grant(&server, &agent, json!(["mcp:x"])).status, 200);
    let thief = Agent::new();
    let stolen = thief.signed(
        "POST",
        &server.grant_endpoint,
        None,
        Some(&agent.grant_body(json!(["mcp:x"]))),
        now(),
    );
    assert_eq!(send(server.addr, &stolen).status, 401);
    let metrics = send(
        server.addr,
        &gnapd::proto::httpsig::HttpRequest::new("GET", format!("{}/metrics", server.base())),
    );
    let text = String::from_utf8(metrics.body).unwrap();
    assert!(
        text.contains("gnapd_grants_total{outcome=\"approved\"} 1"),
        "{text}"
    );
    assert!(text.contains("gnapd_tokens_issued_total 1"), "{text}");
    assert!(
        text.contains("gnapd_signature_failures_total{reason=\"bad_signature\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("gnapd_request_duration_seconds_count{endpoint=\"grant\"}"),
        "{text}"
    );
}

#[test]
fn http_bad_input_gets_gnap_errors_never_a_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--dev"]);
    let agent = Agent::new();
    let endpoint = server.grant_endpoint.clone();
    let raw = |method: &str, content_type: Option<&str>, body: Vec<u8>| {
        let mut req = gnapd::proto::httpsig::HttpRequest::new(method, &endpoint).with_body(body);
        if let Some(ct) = content_type {
            req.fields.append("Content-Type", ct);
        }
        gnapd::proto::httpsig::sign_gnap(&mut req, &agent.key, now(), &Default::default()).unwrap();
        send(server.addr, &req)
    };
    let cases: Vec<(&str, Answer, u16, &str)> = vec![
        ("oversized body", raw("POST", Some("application/json"), vec![b' '; 70 * 1024]), 413, "invalid_request"),
        ("not JSON", raw("POST", Some("application/json"), b"{\"access_token\":".to_vec()), 400, "invalid_request"),
        ("JSON array", raw("POST", Some("application/json"), b"[]".to_vec()), 400, "invalid_request"),
        ("wrong content type", raw("POST", Some("text/plain"), b"{}".to_vec()), 415, "invalid_request"),
        ("no content type", raw("POST", None, b"{}".to_vec()), 415, "invalid_request"),
        ("wrong method", raw("PUT", None, Vec::new()), 405, "invalid_request"),
        (
            "malformed JWK",
            raw(
                "POST",
                Some("application/json"),
                serde_json::to_vec(&json!({"access_token": {"access": ["x"]}, "client": {"key": {"proof": "httpsig", "jwk": {"kty": "OKP"}}}})).unwrap(),
            ),
            401,
            "invalid_client",
        ),
        (
            "no client",
            raw("POST", Some("application/json"), serde_json::to_vec(&json!({"access_token": {"access": ["x"]}})).unwrap()),
            400,
            "invalid_request",
        ),
    ];
    for (name, answer, status, code) in cases {
        let body = answer.json();
        assert_eq!(
            (answer.status, body["error"]["code"].as_str().unwrap_or("")),
            (status, code),
            "{name}: {body}"
        );
        assert_eq!(
            answer.header("content-type"),
            Some("application/json"),
            "{name}"
        );
    }
    let missing = send(
        server.addr,
        &gnapd::proto::httpsig::HttpRequest::new("GET", format!("{}/nope", server.base())),
    );
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["code"], "invalid_request");
    // Unsigned and badly signed requests.
    let unsigned = gnapd::proto::httpsig::HttpRequest::new("POST", &endpoint)
        .with_field("Content-Type", "application/json")
        .with_body(serde_json::to_vec(&agent.grant_body(json!(["x"]))).unwrap());
    let answer = send(server.addr, &unsigned);
    assert_eq!(
        (answer.status, answer.json()["error"]["code"].clone()),
        (401, json!("invalid_client"))
    );
    assert!(
        answer
            .header("www-authenticate")
            .unwrap()
            .starts_with("GNAP as_uri=")
    );
}

#[test]
fn http_grants_and_tokens_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--dev"]);
    let agent = Agent::new();
    let body = grant(&server, &agent, json!(["mcp:github"])).json();
    let instance = body["instance_id"].as_str().unwrap().to_owned();
    assert_eq!(server.stop(), Some(0));

    let server = Server::start(dir.path(), &["--dev"]);
    // The token survived: its management API still rotates it.
    let manage_uri = on(
        &server,
        body["access_token"]["manage"]["uri"].as_str().unwrap(),
    );
    let manage = body["access_token"]["manage"]["access_token"]["value"]
        .as_str()
        .unwrap();
    let rotated = send(
        server.addr,
        &agent.signed("POST", &manage_uri, Some(manage), None, now()),
    );
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    // The instance identifier survived.
    let by_reference = json!({"access_token": {"access": ["mcp:github"]}, "client": instance});
    let again = agent.signed(
        "POST",
        &server.grant_endpoint,
        None,
        Some(&by_reference),
        now(),
    );
    assert_eq!(send(server.addr, &again).status, 200);
    // The continuation survived (wait 5 s is measured from issue time).
    std::thread::sleep(std::time::Duration::from_secs(5));
    let cont_uri = on(&server, body["continue"]["uri"].as_str().unwrap());
    let cont = body["continue"]["access_token"]["value"].as_str().unwrap();
    let deleted = send(
        server.addr,
        &agent.signed("DELETE", &cont_uri, Some(cont), None, now()),
    );
    assert_eq!(deleted.status, 204, "{}", deleted.text());
}

#[test]
fn http_every_token_answered_survives_sigkill_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--dev"]);
    let issued: Arc<Mutex<Vec<(Agent, Value)>>> = Arc::default();
    let addr = server.addr;
    let endpoint = server.grant_endpoint.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let issued = issued.clone();
            let endpoint = endpoint.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                while !stop.load(std::sync::atomic::Ordering::SeqCst)
                    && std::time::Instant::now() < deadline
                {
                    let agent = Agent::new();
                    let req = agent.signed(
                        "POST",
                        &endpoint,
                        None,
                        Some(&agent.grant_body(json!(["mcp:github"]))),
                        now(),
                    );
                    let Ok(answer) = std::panic::catch_unwind(|| send(addr, &req)) else {
                        break;
                    };
                    if answer.status == 200 {
                        issued.lock().unwrap().push((agent, answer.json()));
                    }
                }
            })
        })
        .collect();
    while issued.lock().unwrap().len() < 200 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server.kill();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in workers {
        let _ = w.join();
    }
    let issued = std::mem::take(&mut *issued.lock().unwrap());
    assert!(issued.len() >= 200);
    let server = Server::start(dir.path(), &["--dev"]);
    for (agent, body) in &issued {
        let manage_uri = on(
            &server,
            body["access_token"]["manage"]["uri"].as_str().unwrap(),
        );
        let manage = body["access_token"]["manage"]["access_token"]["value"]
            .as_str()
            .unwrap();
        let rotated = send(
            server.addr,
            &agent.signed("POST", &manage_uri, Some(manage), None, now()),
        );
        assert_eq!(
            rotated.status,
            200,
            "a token the AS answered with was lost: {}",
            rotated.text()
        );
    }
}

#[test]
fn https_with_tls_cert_and_key_serves_grants() {
    let dir = tempfile::tempdir().unwrap();
    let crate::support::pki::TestPki { ca, cert, key } = crate::support::pki::test_pki(dir.path());
    let data = dir.path().join("data");
    let server = Server::start(
        &data,
        &[
            "--dev",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(
        server.grant_endpoint.starts_with("https://127.0.0.1:"),
        "{}",
        server.grant_endpoint
    );
    let agent = Agent::new();
    let req = agent.signed(
        "POST",
        &server.grant_endpoint,
        None,
        Some(&agent.grant_body(json!(["mcp:github"]))),
        now(),
    );
    let answer = crate::support::http_client::send_tls(server.addr, &ca, &req);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        answer.json()["access_token"]["manage"]["uri"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    // Plain HTTP to the TLS port gets no grant.
    let plain = std::panic::catch_unwind(|| send(server.addr, &req));
    assert!(plain.map(|a| a.status != 200).unwrap_or(true));
}

#[test]
fn http_a_full_replay_cache_answers_503_with_retry_after_at_the_as_and_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gnapd.toml");
    // 16 signatures in each budget (the grant endpoint's and the
    // gateway's): one per shard.
    std::fs::write(
        &config,
        "replay_capacity = 16\nreplay_capacity_unapproved = 16\n",
    )
    .unwrap();
    // No upstream listens there: a call that passes the checks gets 502.
    let server = Server::start(
        &dir.path().join("data"),
        &[
            "--dev",
            "--config",
            config.to_str().unwrap(),
            "--upstream",
            "up=http://127.0.0.1:9/mcp",
        ],
    );
    // 16 signatures fit in all, so past the first few most requests are
    // refused, and a request that is let in fills its shard.
    let mut first: Option<(Agent, String)> = None;
    let mut statuses = Vec::new();
    for _ in 0..200 {
        let agent = Agent::new();
        let answer = grant(&server, &agent, json!(["mcp:up"]));
        if answer.status == 200 {
            if first.is_none() {
                let token = access_token(&answer.json()).to_owned();
                first = Some((agent, token));
            }
        } else {
            // The key is not at fault: no `invalid_client`, a retry later.
            assert_eq!(answer.status, 503, "{}", answer.text());
            assert_eq!(answer.header("retry-after"), Some("60"));
            assert_eq!(answer.json()["error"]["code"], "request_denied");
        }
        statuses.push(answer.status);
    }
    let granted = statuses.iter().filter(|s| **s == 200).count();
    assert!((1..=16).contains(&granted), "{statuses:?}");
    let (agent, token) = first.unwrap();
    let session = crate::gateway_http::Session::new(&server, &agent, Some(token), "up");
    // At most 16 calls more can be let in (each then fails upstream, 502);
    // the 17th is refused whatever shards the earlier ones filled.
    let mut busy = None;
    for _ in 0..17 {
        let answer = session.send(&session.request(
            "POST",
            Some(&json!({"jsonrpc": "2.0", "id": 7, "method": "ping"})),
            &[],
        ));
        if answer.status == 503 {
            busy = Some(answer);
            break;
        }
        assert_eq!(answer.status, 502, "{}", answer.text());
    }
    let busy = busy.expect("a full cache refuses the call");
    assert_eq!(busy.header("retry-after"), Some("60"));
    let body = busy.json();
    assert_eq!(body["error"]["code"], -32603, "{body}");
    assert_eq!(body["id"], 7);
}
