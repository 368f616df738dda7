//! What a client that sends slowly, or nothing at all, can hold of gnapd
//! (issue 14): each connection phase has a deadline, connections are
//! bounded per address and in all, and past a low descriptor limit slow
//! clients are pushed out for a legitimate agent. Every test opens raw
//! sockets against the real `gnapd serve` and fails if the slow client
//! keeps its hold; long gateway streams must outlive every deadline.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;

use std::time::{Duration, Instant};

use serde_json::json;

use crate::gateway_http::{Session, send_streaming, stream, token};
use crate::support::agent::Agent;
use crate::support::http_client::send;
use crate::support::mcp_upstream::Upstream;
use crate::support::server::{Serve, Server, start_logged};

/// `gnapd serve --dev` with `[connections]` set to `table` (and any
/// `extra` flags).
fn server_with(dir: &Path, table: &str, extra: &[&str]) -> Server {
    let config = dir.join("gnapd.toml");
    std::fs::write(&config, format!("[connections]\n{table}")).unwrap();
    let mut args = vec!["--dev", "--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::start(&dir.join("data"), &args)
}

/// Short deadlines, so that each test waits a few seconds at most.
const SHORT: &str = "header_timeout = 1\nidle_timeout = 2\nbody_timeout = 1\nrequest_timeout = 3\n";

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads until the server closes `stream` or `limit` passes: when it
/// closed (from now) and what it sent, or `None` if it is still open.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<(Duration, Vec<u8>)> {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            return None;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Some((started.elapsed(), received)),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some((started.elapsed(), received)),
        }
    }
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An HTTP/2 frame: length, type, flags, stream id, payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = vec![len[1], len[2], len[3], kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

#[test]
fn silent_sockets_silent_http2_prefaces_and_dribbled_heads_are_closed_at_the_header_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with(dir.path(), SHORT, &[]);
    let mut silent = connect(server.addr);
    let mut preface_only = connect(server.addr);
    preface_only.write_all(H2_PREFACE).unwrap();
    let mut settings_then_silent = connect(server.addr);
    settings_then_silent.write_all(H2_PREFACE).unwrap();
    settings_then_silent
        .write_all(&h2_frame(0x4, 0, 0, &[]))
        .unwrap();
    let mut half_head = connect(server.addr);
    half_head
        .write_all(b"GET /gnap HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    for (what, stream) in [
        ("a silent socket", &mut silent),
        ("an HTTP/2 preface and nothing else", &mut preface_only),
        ("an HTTP/2 preface and SETTINGS", &mut settings_then_silent),
        ("half a request head", &mut half_head),
    ] {
        // 1 s, plus a second's goodbye, plus room for a loaded machine.
        let closed = closed_within(stream, Duration::from_secs(8));
        assert!(closed.is_some(), "{what} still holds its connection");
    }
    let metrics = send(
        server.addr,
        &gnapd::proto::httpsig::HttpRequest::new("GET", format!("{}/metrics", server.base())),
    );
    assert!(
        metrics
            .text()
            .contains("gnapd_connections_timed_out_total{deadline=\"header\"} 4"),
        "{}",
        metrics.text()
    );
}

#[test]
fn a_dribbled_body_is_answered_408_with_the_endpoints_error_and_its_connection_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with(
        dir.path(),
        SHORT,
        &["--upstream", "u=http://127.0.0.1:1/mcp"],
    );
    for (path, gateway) in [("/gnap", false), ("/mcp/u", true)] {
        let mut client = connect(server.addr);
        client
            .write_all(
                format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"a\":")
                    .as_bytes(),
            )
            .unwrap();
        let (after, answer) = closed_within(&mut client, Duration::from_secs(8))
            .unwrap_or_else(|| panic!("{path}: a dribbled body still holds its connection"));
        assert!(after >= Duration::from_millis(800), "{path}: closed early");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        let body: serde_json::Value =
            serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        if gateway {
            assert_eq!(body["error"]["code"], -32600, "{body}");
            assert_eq!(body["jsonrpc"], "2.0");
        } else {
            assert_eq!(body["error"]["code"], "invalid_request", "{body}");
        }
    }
}

#[test]
fn a_body_trickled_without_long_pauses_still_ends_at_the_whole_request_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with(dir.path(), SHORT, &[]);
    let mut client = connect(server.addr);
    client
        .write_all(b"POST /gnap HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        .unwrap();
    // A byte every 0.3 s: never a pause of 1 s (body_timeout), so only
    // request_timeout (3 s) can end it.
    let started = Instant::now();
    let mut answer = Vec::new();
    client
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(10) {
        if client.write_all(b" ").is_err() {
            break;
        }
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    let after = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        after >= Duration::from_millis(2_500) && after < Duration::from_secs(8),
        "ended after {after:?}"
    );
}

#[test]
fn an_idle_http2_connection_is_closed_at_the_idle_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with(dir.path(), SHORT, &[]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let lasted = runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .unwrap();
        let connection = tokio::spawn(connection);
        let request = hyper::Request::get(format!("{}/.well-known/gnap-as-rs", server.base()))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let answered = sender.send_request(request).await.unwrap();
        assert_eq!(answered.status(), 200);
        drop(answered);
        let idle_from = Instant::now();
        tokio::time::timeout(Duration::from_secs(10), connection)
            .await
            .expect("an idle HTTP/2 connection is still open")
            .unwrap()
            .ok();
        idle_from.elapsed()
    });
    assert!(
        lasted >= Duration::from_millis(1_500),
        "closed after {lasted:?}"
    );
}

#[test]
fn an_http2_peer_that_stops_answering_pings_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    // Every other deadline far away: only the keep-alive can end it.
    let server = server_with(
        dir.path(),
        "header_timeout = 60\nidle_timeout = 60\nbody_timeout = 60\nrequest_timeout = 120\nh2_keepalive_interval = 1\nh2_keepalive_timeout = 1\n",
        &[],
    );
    let mut client = connect(server.addr);
    client.write_all(H2_PREFACE).unwrap();
    client.write_all(&h2_frame(0x4, 0, 0, &[])).unwrap();
    // HEADERS (END_HEADERS, no END_STREAM): POST /gnap with its body to
    // come, in HPACK with static-table names.
    let mut block = vec![0x83, 0x86, 0x04, 5];
    block.extend_from_slice(b"/gnap");
    block.extend_from_slice(&[0x01, 1, b'x']);
    client.write_all(&h2_frame(0x1, 0x4, 1, &block)).unwrap();
    let (after, received) = closed_within(&mut client, Duration::from_secs(10))
        .expect("a peer that never answers a PING still holds its connection");
    // Frames: 9-byte headers; a PING is type 6 without the ACK flag.
    let mut pings = 0;
    let mut at = 0;
    while at + 9 <= received.len() {
        let len = usize::from(received[at]) << 16
            | usize::from(received[at + 1]) << 8
            | usize::from(received[at + 2]);
        if received[at + 3] == 0x6 && received[at + 4] & 0x1 == 0 {
            pings += 1;
        }
        at += 9 + len;
    }
    assert!(pings >= 1, "closed after {after:?} without a PING");
}

#[test]
fn long_gateway_streams_outlive_every_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), false);
    let config = dir.path().join("gnapd.toml");
    std::fs::write(
        &config,
        format!("[connections]\n{SHORT}h2_keepalive_interval = 1\nh2_keepalive_timeout = 1\n"),
    )
    .unwrap();
    let github = format!("github={}", upstream.url());
    let server = start_logged(
        &dir.path().join("data"),
        &dir.path().join("gnapd.log"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--dev",
            "--upstream",
            &github,
        ],
    );
    let agent = Agent::new();
    let token = token(&server, &agent, json!(["mcp:github"]));
    let mut s = Session::new(&server, &agent, Some(token), "github");
    s.initialize();
    // The server's stream (GET), quiet for longer than every deadline...
    let events = stream(server.addr, s.request("GET", None, &[]));
    assert_eq!(
        events.recv_timeout(Duration::from_secs(10)).unwrap(),
        "status 200"
    );
    // ...and an answer streamed over 4 s, an event a second.
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
        "name": "countdown", "arguments": {"steps": 4, "delay": 1.0},
        "_meta": {"progressToken": "p"}}});
    let (status, chunks) = send_streaming(server.addr, &s.request("POST", Some(&call), &[]));
    assert_eq!(status, 200);
    assert!(
        chunks.iter().any(|(_, c)| c.contains("liftoff")),
        "the streamed answer was cut: {chunks:?}"
    );
    assert!(chunks.last().unwrap().0 >= Duration::from_secs(4));
    // The GET stream is still open: nothing ended it.
    assert!(
        !matches!(
            events.recv_timeout(Duration::from_millis(200)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        ),
        "the GET stream was closed"
    );
}

/// Opens a connection to `to` from the loopback address `from`
/// (127.0.0.0/8 is all local on Linux).
async fn connect_from(from: IpAddr, to: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether the server closes `stream` within `limit`.
async fn closes(stream: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt as _;
    let mut buf = [0u8; 1024];
    let until = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(until, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[test]
fn one_address_holds_at_most_per_address_connections_and_pushes_out_only_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with(
        dir.path(),
        "per_address = 3\nheader_timeout = 60\nidle_timeout = 60\n",
        &[],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let crowd: IpAddr = "127.0.0.2".parse().unwrap();
        let other: IpAddr = "127.0.0.3".parse().unwrap();
        let mut neighbour = connect_from(other, server.addr).await;
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(connect_from(crowd, server.addr).await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A fourth from the crowd's address: its oldest is pushed out.
        let mut fourth = connect_from(crowd, server.addr).await;
        assert!(
            closes(&mut held[0], Duration::from_secs(5)).await,
            "the address holds more than 3 connections"
        );
        for stream in held.iter_mut().skip(1).chain([&mut fourth]) {
            assert!(!closes(stream, Duration::from_millis(300)).await);
        }
        assert!(
            !closes(&mut neighbour, Duration::from_millis(300)).await,
            "another address's connection was pushed out"
        );
    });
}

#[test]
fn slow_clients_past_a_low_descriptor_limit_do_not_keep_out_a_legitimate_agent() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gnapd.toml");
    // Deadlines far away: only pushing slow clients out can make room.
    std::fs::write(
        &config,
        "[connections]\nheader_timeout = 120\nidle_timeout = 120\nbody_timeout = 120\nrequest_timeout = 240\n",
    )
    .unwrap();
    // 128 descriptors, soft and hard: gnapd takes 3/4 of them (96) for
    // client connections.
    let server = Serve::new(&dir.path().join("data"))
        .dev()
        .config(&config)
        .after_shell("ulimit -n 128")
        .start();
    let mut slow = Vec::new();
    for i in 0..200 {
        let Ok(mut stream) = TcpStream::connect_timeout(&server.addr, Duration::from_secs(5))
        else {
            continue;
        };
        let _ = match i % 3 {
            0 => Ok(()),
            1 => stream.write_all(b"POST /gnap HTTP/1.1\r\nHost: x\r\n"),
            _ => {
                stream.write_all(b"POST /gnap HTTP/1.1\r\nHost: x\r\nContent-Length: 999\r\n\r\n{")
            }
        };
        slow.push(stream);
    }
    // The agent's grant request, answered within 10 s (the slow clients
    // would hold their descriptors for minutes).
    let agent = Agent::new();
    let request = agent.signed(
        "POST",
        &server.grant_endpoint,
        None,
        Some(&agent.grant_body(json!(["mcp:anything"]))),
        crate::gateway_http::now(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let addr = server.addr;
    std::thread::spawn(move || {
        let _ = tx.send(send(addr, &request));
    });
    let answer = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the agent was kept out by slow clients");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let metrics = send(
        server.addr,
        &gnapd::proto::httpsig::HttpRequest::new("GET", format!("{}/metrics", server.base())),
    );
    let text = metrics.text();
    assert!(
        text.contains("gnapd_connections_limit{scope=\"all\"} 96"),
        "{text}"
    );
    assert!(
        !text.contains("gnapd_connections_evicted_total{bound=\"all\"} 0"),
        "{text}"
    );
    drop(slow);
}

#[test]
fn the_open_file_limit_is_raised_to_its_hard_limit_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::new(&dir.path().join("data"))
        .dev()
        .after_shell("ulimit -S -n 256")
        .start();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    // "Max open files  SOFT  HARD  files"
    assert_eq!(fields[3], fields[4], "{line}");
    assert_ne!(fields[3], "256", "{line}");
}
