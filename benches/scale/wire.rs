//! HTTP/1.1 to gnapd on loopback: kept-alive connections for the load, and
//! the start-up poller, which asks every millisecond until gnapd answers.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use super::Res;

/// One kept-alive connection, one request in flight.
pub struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Res<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Self { sender })
    }

    /// Sends `request` and reads the whole answer: status and body.
    pub async fn send(&mut self, request: hyper::Request<Full<Bytes>>) -> Res<(u16, Bytes)> {
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

/// At most 300 bytes of a body, for error messages.
pub fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
}

/// The path the start-up poller asks for: gnapd's RS discovery document
/// (RFC 9767 §3.1), a cheap GET that only a serving gnapd answers 200.
pub const PROBE_PATH: &str = "/.well-known/gnap-as-rs";

/// Tries `GET PROBE_PATH` at `addr` every millisecond (a refused
/// connection means nobody listens yet) until one is answered 200: the
/// time from `since` to that answer. Gives up at `give_up` after `since`,
/// or when `stop` is set.
pub fn first_answer(
    addr: SocketAddr,
    since: Instant,
    give_up: Duration,
    stop: Arc<AtomicBool>,
) -> Res<Duration> {
    let request = format!("GET {PROBE_PATH} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    loop {
        if since.elapsed() > give_up || stop.load(Ordering::Relaxed) {
            return Err(format!("no answer from {addr} within {give_up:?}").into());
        }
        if let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            // Accepted into the backlog means bound, not yet serving: the
            // answer comes when gnapd serves, which is what is timed.
            let _ = stream.set_read_timeout(Some(give_up));
            let _ = stream.set_nodelay(true);
            if stream.write_all(request.as_bytes()).is_ok() {
                let mut head = [0u8; 12];
                if stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200") {
                    return Ok(since.elapsed());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
