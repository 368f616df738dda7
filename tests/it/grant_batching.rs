//! The grant endpoint checks the signatures of brand-new agents that arrive
//! together with one batch equation (`authz::batched_grant`), and every
//! request still gets the decision a single check gives it: forged
//! requests in the same batch are refused with `invalid_client`, the
//! others approved.

use gnapd::clock::{Clock as _, SystemClock};
use serde_json::json;

use crate::support::agent::{Agent, access_token};
use crate::support::http_client::{Answer, send};
use crate::support::server::Server;

/// One counter's value from `/metrics`.
fn counter(server: &Server, name: &str) -> u64 {
    let metrics = send(
        server.addr,
        &gnapd::proto::httpsig::HttpRequest::new("GET", format!("{}/metrics", server.base())),
    );
    let text = String::from_utf8(metrics.body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[test]
fn grant_requests_checked_in_one_batch_get_the_decisions_they_would_get_alone() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gnapd.toml");
    std::fs::write(
        &config,
        "grant_rate_per_address = { burst = 100000, per_minute = 100000000 }\n",
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--dev", "--config", config.to_str().unwrap()],
    );
    // Waves of 12 requests sent at the same moment, a quarter of them
    // forged (the body names one agent's key, another agent signed), until
    // the counters show a batch that failed: forged and honest requests
    // met in one equation.
    for _wave in 0..40 {
        let now = SystemClock.now();
        let requests: Vec<(bool, gnapd::proto::httpsig::HttpRequest)> = (0..12)
            .map(|i| {
                let agent = Agent::new();
                let body = agent.grant_body(json!(["mcp:github"]));
                let forged = i % 4 == 3;
                let signer = if forged { Agent::new() } else { agent };
                let req = signer.signed("POST", &server.grant_endpoint, None, Some(&body), now);
                (forged, req)
            })
            .collect();
        let start = std::sync::Barrier::new(requests.len());
        let answers: Vec<(bool, Answer)> = std::thread::scope(|s| {
            let handles: Vec<_> = requests
                .iter()
                .map(|(forged, req)| {
                    let start = &start;
                    let addr = server.addr;
                    s.spawn(move || {
                        start.wait();
                        (*forged, send(addr, req))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (forged, answer) in &answers {
            if *forged {
                assert_eq!(answer.status, 401, "{}", answer.text());
                assert_eq!(answer.json()["error"]["code"], "invalid_client");
            } else {
                assert_eq!(answer.status, 200, "{}", answer.text());
                assert!(!access_token(&answer.json()).is_empty());
            }
        }
        if counter(&server, "gnapd_gateway_signature_batches_failed_total") > 0 {
            assert!(counter(&server, "gnapd_gateway_signatures_batched_total") >= 3);
            return;
        }
    }
    panic!("in 40 waves of 12 simultaneous grant requests no batch was formed");
}
