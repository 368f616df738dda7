//! Guessing user codes at `{public}/gnap/device` (RFC 9635 §3.3.3, §11):
//! real `gnapd serve` on loopback, the guesses sent from several loopback
//! addresses (127.0.0.0/8 is all ours) or, behind a configured proxy, with
//! the addresses the proxy would write.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use serde_json::json;

use crate::support::agent::Agent;
use crate::support::server::Server;

/// `--dev --require-interaction` with `extra` config lines.
fn start(dir: &Path, extra: &str) -> Server {
    let config = dir.join("gnapd.toml");
    std::fs::write(&config, extra).unwrap();
    Server::start(
        &dir.join("data"),
        &[
            "--dev",
            "--require-interaction",
            "--config",
            config.to_str().unwrap(),
        ],
    )
}

/// A pending grant's user code.
pub(crate) fn pending_code(server: &Server) -> String {
    let agent = Agent::new();
    let mut body = agent.grant_body(json!(["mcp:github"]));
    body["interact"] = json!({"start": ["user_code"]});
    let answer = server.grant(&agent, &body);
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["interact"]["user_code"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A code of the alphabet that is no pending grant's (one chance in 31⁸
/// of being one).
pub(crate) const WRONG: &str = "2222-3333";

/// POSTs `code` to the device page from the local address `from`, with
/// `headers`; returns the status.
pub(crate) fn enter_code(
    server: &Server,
    from: IpAddr,
    code: &str,
    headers: &[(&str, &str)],
) -> u16 {
    let mut stream = bound_stream(from, server.addr);
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let body = format!("code={code}");
    let mut request = format!(
        "POST /gnap/device HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n",
        server.addr,
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

/// A connection to `to` from the local address `from`.
fn bound_stream(from: IpAddr, to: SocketAddr) -> std::net::TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).unwrap();
        let stream = socket.connect(to).await.unwrap().into_std().unwrap();
        // tokio hands it over non-blocking.
        stream.set_nonblocking(false).unwrap();
        stream
    })
}

pub(crate) fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Per source: 10 failures per 10 minutes (`usercode::MAX_FAILURES_PER_SOURCE`).
const PER_SOURCE: usize = 10;

#[test]
fn many_addresses_together_hit_the_global_failure_budget() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "user_code_failure_budget = 30\n");
    let code = pending_code(&server);
    // Three addresses, each within its own limit, spend the budget.
    for source in 2..5 {
        for _ in 0..PER_SOURCE {
            assert_eq!(enter_code(&server, loopback(source), WRONG, &[]), 400);
        }
    }
    // A fourth address, even with the right code, must wait.
    assert_eq!(enter_code(&server, loopback(9), &code, &[]), 429);
    // The admin socket is not held to the network's budget.
    let (ok, out) =
        crate::support::run::gnapd_cli(&dir.path().join("data"), &["grants", "approve", &code]);
    assert!(ok, "{out}");
}

#[test]
fn a_forged_x_forwarded_for_is_ignored_without_a_trusted_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "");
    let code = pending_code(&server);
    // A new claimed address per guess: all counted against the real peer.
    for i in 0..PER_SOURCE {
        let forged = format!("198.51.100.{i}");
        assert_eq!(
            enter_code(&server, loopback(2), WRONG, &[("X-Forwarded-For", &forged)]),
            400
        );
    }
    let forged = [("X-Forwarded-For", "203.0.113.77")];
    assert_eq!(enter_code(&server, loopback(2), &code, &forged), 429);
    assert_eq!(enter_code(&server, loopback(3), &code, &forged), 200);
}

const PROXY: &str = "trusted_proxy = { header = \"X-Forwarded-For\", hops = 1 }\n";

#[test]
fn x_forwarded_for_from_a_configured_trusted_proxy_names_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), PROXY);
    let code = pending_code(&server);
    // One client behind the proxy (127.0.0.1), prepending a new address of
    // its own choosing to every guess: the proxy's entry is what counts.
    for i in 0..PER_SOURCE {
        let header = format!("198.51.100.{i}, 203.0.113.7");
        assert_eq!(
            enter_code(&server, loopback(1), WRONG, &[("X-Forwarded-For", &header)]),
            400
        );
    }
    let same = [("X-Forwarded-For", "6.6.6.6, 203.0.113.7")];
    assert_eq!(enter_code(&server, loopback(1), &code, &same), 429);
    // Another client behind the same proxy is not limited by the first.
    let other = [("X-Forwarded-For", "203.0.113.7, 192.0.2.44")];
    assert_eq!(enter_code(&server, loopback(1), &code, &other), 200);
}

#[test]
fn rotating_through_addresses_of_one_ipv6_64_hits_the_per_source_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), PROXY);
    let code = pending_code(&server);
    // A new address of 2001:db8:1:2::/64 for every guess.
    for i in 0..PER_SOURCE {
        let address = format!("2001:db8:1:2:{:x}::{:x}", i * 977 + 1, i + 5);
        assert_eq!(
            enter_code(
                &server,
                loopback(1),
                WRONG,
                &[("X-Forwarded-For", &address)]
            ),
            400
        );
    }
    let next = [("X-Forwarded-For", "[2001:db8:1:2:ffff:1:2:3]:5555")];
    assert_eq!(enter_code(&server, loopback(1), &code, &next), 429);
    let neighbour = [("X-Forwarded-For", "2001:db8:1:3::1")];
    assert_eq!(enter_code(&server, loopback(1), &code, &neighbour), 200);
}
