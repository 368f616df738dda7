//! A raw HTTP/1.1 client for the campaigns (`crash_cycles`,
//! `malformed_input`): it writes whatever bytes it is given — folded or
//! repeated headers, lying lengths, invalid UTF-8 — reads one response,
//! keeps the connection while the server does, and reports every failure
//! (a refused connection, a reset, a silence past the timeout) as a value,
//! never a panic: a server killed mid-request is what the crash campaign
//! expects.

use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::OnceLock;
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
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of the field `name`, one per field line.
    pub fn header_lines<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

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
    /// An event stream's body is not read (see [`Conn::cutting_streams`]).
    cut_streams: bool,
    /// The local address connections come from (see [`Conn::coming_from`]).
    source: Option<IpAddr>,
}

impl Conn {
    pub fn new(addr: SocketAddr, timeout: Duration) -> Self {
        Self {
            addr,
            timeout,
            stream: None,
            cut_streams: false,
            source: None,
        }
    }

    /// Connections come from `source` (any of 127.0.0.0/8 on loopback), so
    /// that what gnapd bounds per address counts this client apart.
    pub fn coming_from(mut self, source: IpAddr) -> Self {
        self.source = Some(source);
        self
    }

    /// A 2xx `text/event-stream` answer is returned with its head only, and
    /// its connection dropped: a GET's stream stays open for as long as the
    /// session lives.
    pub fn cutting_streams(mut self) -> Self {
        self.cut_streams = true;
        self
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
        let (response, keep) = read_response(&mut stream, self.cut_streams)?;
        if keep {
            self.stream = Some(stream);
        }
        Ok(response)
    }

    /// As [`Conn::exchange`], but a kept connection that ends before its
    /// answer is taken as one the server closed while it sat idle (hyper
    /// does so without `Connection: close` after a response whose request
    /// body it did not read), and the request goes once more on a new one,
    /// as clients do (RFC 9112 §9.3.1). Only for requests whose repetition
    /// changes nothing the caller counts on.
    pub fn exchange_again_if_stale(&mut self, bytes: &[u8]) -> io::Result<Response> {
        let kept = self.stream.is_some();
        match self.exchange(bytes) {
            Err(e)
                if kept
                    && matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::BrokenPipe
                    ) =>
            {
                self.exchange(bytes)
            }
            other => other,
        }
    }

    /// Sends `bytes` on a connection of their own and reads one response;
    /// with `close`, the writing half is closed after them (the server sees
    /// the end of a request whose framing promised more).
    pub fn exchange_alone(&mut self, bytes: &[u8], close: bool) -> io::Result<Response> {
        let mut stream = self
            .connect()
            .map_err(|e| io::Error::new(io::ErrorKind::NotConnected, e))?;
        // A server may answer (413, 431) and close before reading it all:
        // its answer is still read after a failed write.
        let wrote = stream.write_all(bytes);
        if close && wrote.is_ok() {
            stream.shutdown(std::net::Shutdown::Write)?;
        }
        match read_response(&mut stream, self.cut_streams) {
            Ok((response, _)) => Ok(response),
            Err(e) => wrote.and(Err(e)),
        }
    }

    fn connect(&self) -> io::Result<TcpStream> {
        let stream = match self.source {
            None => TcpStream::connect_timeout(&self.addr, self.timeout)?,
            Some(source) => connect_from(source, self.addr, self.timeout)?,
        };
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// A connection to `to` from the local address `from` (std cannot bind
/// before connecting; tokio's socket can).
fn connect_from(from: IpAddr, to: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    });
    let stream = runtime.block_on(async {
        let socket = if from.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.bind(SocketAddr::new(from, 0))?;
        tokio::time::timeout(timeout, socket.connect(to))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
    })?;
    let stream = stream.into_std()?;
    // tokio hands it over non-blocking.
    stream.set_nonblocking(false)?;
    Ok(stream)
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
fn read_response(stream: &mut TcpStream, cut_streams: bool) -> io::Result<(Response, bool)> {
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
    let streamed = get("content-type").is_some_and(|c| c.starts_with("text/event-stream"));
    let body = if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if cut_streams && streamed && (200..300).contains(&status) {
        keep = false;
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
