//! `gnapd compare`'s measuring parts against a real instance: the byte
//! counts are what crossed the wire (a counting TCP relay in between
//! agrees to the byte), and the world's instances answer.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gnapd::compare::driver::{initialize, tool_call};
use gnapd::compare::meter::{Meter, Request, Tap};
use gnapd::compare::world::World;

use crate::support::process::GNAPD;

/// A TCP relay to `target` that counts the bytes each way.
fn counting_relay(target: std::net::SocketAddr) -> (u16, Arc<AtomicU64>, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (up, down) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (u, d) = (up.clone(), down.clone());
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let server = TcpStream::connect(target).unwrap();
            pump(
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                u.clone(),
            );
            pump(server, client, d.clone());
        }
    });
    (port, up, down)
}

fn pump(mut from: TcpStream, mut to: TcpStream, count: Arc<AtomicU64>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown(Shutdown::Write);
                    return;
                }
                Ok(n) => {
                    count.fetch_add(n as u64, Ordering::SeqCst);
                    if to.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

#[tokio::test(flavor = "current_thread")]
async fn the_meter_counts_every_byte_that_crosses_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::start(Path::new(GNAPD), dir.path()).unwrap();
    let addr = world
        .auto
        .base
        .strip_prefix("http://")
        .unwrap()
        .parse()
        .unwrap();
    let (port, up, down) = counting_relay(addr);
    let base = format!("http://127.0.0.1:{port}");

    let tap = Tap::new();
    let mut agent = Meter::agent(&tap);
    // A JSON answer with Content-Length, a 401 with a challenge, a POST
    // with a body: three shapes of exchange on one connection.
    let metadata = agent
        .send(Request::new(
            "GET",
            &format!("{base}/.well-known/oauth-authorization-server"),
        ))
        .await
        .unwrap();
    assert_eq!(metadata.status, 200);
    let unauthorized = agent
        .send(initialize(&format!("{base}/mcp/alpha"), None))
        .await
        .unwrap();
    assert_eq!(unauthorized.status, 401);
    assert!(unauthorized.header("www-authenticate").is_some());
    let call = agent
        .send(tool_call(&format!("{base}/mcp/alpha"), 1, "echo", None))
        .await
        .unwrap();
    assert_eq!(call.status, 401);

    let tally = tap.drain();
    assert_eq!(tally.exchanges.len(), 3);
    assert_eq!(tally.exchanges.iter().filter(|e| e.connected).count(), 1);
    let written: u64 = tally
        .exchanges
        .iter()
        .map(|e| e.request_headers + e.request_body)
        .sum();
    let read: u64 = tally
        .exchanges
        .iter()
        .map(|e| e.response_headers + e.response_body)
        .sum();
    // The relay saw everything by the time the last answer was read.
    assert_eq!(written, up.load(Ordering::SeqCst));
    assert_eq!(read, down.load(Ordering::SeqCst));
    // Bodies as sent and received; headers the rest.
    assert_eq!(tally.exchanges[0].response_body, metadata.body.len() as u64);
    assert!(tally.exchanges[1].request_body > 0);
    assert!(
        tally
            .exchanges
            .iter()
            .all(|e| e.request_headers > 0 && e.response_headers > 0)
    );
}

#[test]
fn the_world_starts_four_instances_in_front_of_one_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::start(Path::new(GNAPD), dir.path()).unwrap();
    let bases = [&world.auto, &world.interactive, &world.short, &world.other]
        .map(|instance| instance.base.clone());
    for (i, base) in bases.iter().enumerate() {
        assert!(bases[i + 1..].iter().all(|other| other != base));
        assert!(base.starts_with("http://127.0.0.1:"));
    }
    for instance in [&world.auto, &world.interactive, &world.short, &world.other] {
        assert!(instance.data_dir.starts_with(dir.path()));
        let metrics = std::net::TcpStream::connect(
            instance
                .metrics_url
                .trim_start_matches("http://")
                .trim_end_matches("/metrics"),
        );
        assert!(metrics.is_ok(), "{} metrics listener", instance.name);
    }
}
