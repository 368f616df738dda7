//! `/metrics` off the public listener (`metrics_listen`): what the counters
//! tell (and the upstream names they may carry) is not for whoever reaches
//! the AS and the gateway. Real `gnapd serve` on loopback.

use std::net::SocketAddr;
use std::time::Duration;

use gnapd::proto::httpsig::HttpRequest;

use crate::support::http_client::send;
use crate::support::server::{Serve, Server};

/// `gnapd serve --dev` with `args`, and the metrics address it printed on
/// its second line when it has a listener for them.
fn start(data: &std::path::Path, args: &[&str]) -> (Server, Option<SocketAddr>) {
    let (server, lines) = Serve::new(data).dev().args(args).spawn();
    let metrics = lines
        .recv_timeout(Duration::from_millis(500))
        .ok()
        .and_then(|l| l.strip_prefix("gnapd metrics on ")?.parse().ok());
    (server, metrics)
}

fn get(addr: SocketAddr, base: &str, path: &str) -> crate::support::http_client::Answer {
    send(addr, &HttpRequest::new("GET", format!("{base}{path}")))
}

#[test]
fn metrics_on_a_listener_of_their_own_are_not_served_on_the_public_one() {
    let dir = tempfile::tempdir().unwrap();
    let (server, metrics) = start(
        dir.path(),
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--upstream",
            "internal-billing=http://127.0.0.1:1/mcp",
        ],
    );
    let metrics = metrics.expect("a second stdout line names the metrics address");
    let base = server.base();
    let public = get(server.addr, &base, "/metrics");
    assert_eq!(public.status, 404, "{}", public.text());
    assert!(!public.text().contains("gnapd_"), "{}", public.text());
    let scraped = get(metrics, &format!("http://{metrics}"), "/metrics");
    assert_eq!(scraped.status, 200);
    assert!(
        scraped.text().contains("gnapd_grants_total"),
        "{}",
        scraped.text()
    );
    // The metrics listener serves nothing else: no AS, no gateway there.
    for path in ["/gnap/.well-known/gnap-as-rs", "/mcp/internal-billing", "/"] {
        let answer = get(metrics, &format!("http://{metrics}"), path);
        assert_eq!(answer.status, 404, "{path}");
    }
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn metrics_turned_off_are_served_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gnapd.toml");
    std::fs::write(&config, "metrics_listen = \"off\"\n").unwrap();
    let (server, metrics) = start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    assert_eq!(metrics, None);
    let answer = get(server.addr, &server.base(), "/metrics");
    assert_eq!(answer.status, 404, "{}", answer.text());
}

#[test]
fn metrics_stay_on_the_main_listener_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let (server, metrics) = start(dir.path(), &[]);
    assert_eq!(metrics, None);
    let answer = get(server.addr, &server.base(), "/metrics");
    assert_eq!(answer.status, 200);
    assert!(answer.text().contains("gnapd_grants_total"));
}
