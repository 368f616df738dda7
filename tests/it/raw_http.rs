//! A raw HTTP/1.1 client for the campaigns (`crash_cycles`,
//! `malformed_input`): it writes whatever bytes it is given — folded or
//! repeated headers, lying lengths, invalid UTF-8 — reads one response,
//! keeps the connection while the server does, and reports every failure
//! (a refused connection, a reset, a silence past the timeout) as a value,
//! never a panic: a server killed mid-request is what the crash campaign
//! expects.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use gnapd::proto::httpsig::HttpRequest;
use serde_json::Value;

/// Largest response head read.
const MAX_HEAD: usize = 64 * 1024;

/// A response as read off the wire.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Names lowercased.
    #[allow(dead_code)]
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON (`Null` if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The wire bytes of `request`: request line, `Host`, its fields in order,
/// `Content-Length` when it has a body (unless it sets one), the body.
pub fn encode(request: &HttpRequest) -> Vec<u8> {
    let uri = gnapd::proto::httpsig::message::TargetUri::parse(&request.target_uri)
        .unwrap_or_else(|e| panic!("not a target URI: {} ({e:?})", request.target_uri));
    let mut path = uri.normalized_path().to_owned();
    if let Some(q) = uri.query {
        path.push('?');
        path.push_str(q);
    }
    let mut out = format!(
        "{} {path} HTTP/1.1\r\nHost: {}\r\n",
        request.method, uri.authority
    )
    .into_bytes();
    let mut has_length = false;
    for (name, value) in request.fields.iter() {
        has_length |= name.eq_ignore_ascii_case("content-length");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !request.body.is_empty() && !has_length {
        out.extend_from_slice(format!("Content-Length: {}\r\n", request.body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&request.body);
    out
}

/// One keep-alive connection to `addr`, opened on demand.
pub struct Conn {
    addr: SocketAddr,
    timeout: Duration,
    stream: Option<TcpStream>,
}

impl Conn {
    pub fn new(addr: SocketAddr, timeout: Duration) -> Self {
        Self {
            addr,
            timeout,
            stream: None,
        }
    }

    /// Sends one whole request and reads its response, on the kept
    /// connection unless the server has closed it. Failing to connect is
    /// `ErrorKind::NotConnected` (nothing was sent); any other error came
    /// after the request was on its way, which is never retried: the
    /// server may have acted on it.
    pub fn exchange(&mut self, bytes: &[u8]) -> io::Result<Response> {
        if self.stream.as_ref().is_some_and(closed_by_peer) {
            self.stream = None;
        }
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => self
                .connect()
                .map_err(|e| io::Error::new(io::ErrorKind::NotConnected, e))?,
        };
        stream.write_all(bytes)?;
        let (response, keep) = read_response(&mut stream)?;
        if keep {
            self.stream = Some(stream);
        }
        Ok(response)
    }

    fn connect(&self) -> io::Result<TcpStream> {
        let stream = TcpStream::connect_timeout(&self.addr, self.timeout)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// An idle kept connection the server has closed (or reset): reading it
/// without waiting finds the end, not "nothing yet".
fn closed_by_peer(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let closed = !matches!(stream.peek(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
    closed || stream.set_nonblocking(false).is_err()
}

/// Reads one response; `true` if the connection stays usable.
fn read_response(stream: &mut TcpStream) -> io::Result<(Response, bool)> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("response head too large"));
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut rest = buf[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line in {head:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let mut keep = !get("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
    let body = if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        read_chunked(stream, &mut rest)?
    } else if let Some(length) = get("content-length").and_then(|l| l.parse::<usize>().ok()) {
        fill(stream, &mut rest, length)?;
        rest.truncate(length);
        rest
    } else {
        keep = false;
        stream.read_to_end(&mut rest)?;
        rest
    };
    Ok((
        Response {
            status,
            headers,
            body,
        },
        keep,
    ))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads until `buf` holds at least `n` bytes.
fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> io::Result<()> {
    while buf.len() < n {
        let mut chunk = [0u8; 8192];
        let got = stream.read(&mut chunk)?;
        if got == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..got]);
    }
    Ok(())
}

fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = find(buf, b"\r\n") {
                break i;
            }
            let len = buf.len() + 1;
            fill(stream, buf, len)?;
        };
        let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| io::Error::other(format!("bad chunk size {size_text:?}")))?;
        buf.drain(..line_end + 2);
        if size == 0 {
            // The last chunk; no trailers expected from gnapd.
            fill(stream, buf, 2)?;
            buf.drain(..2);
            return Ok(body);
        }
        fill(stream, buf, size + 2)?;
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}
