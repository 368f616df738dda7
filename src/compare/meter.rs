//! The metered HTTP client every driver sends through: HTTP/1.1 over a
//! TCP stream that counts the bytes it writes and reads, so the report's
//! byte counts are what crossed the wire, not what a library says it sent.
//!
//! One [`Meter`] is one party's HTTP stack: an agent (back channel) or the
//! person's browser (front channel, with a cookie jar). Each keeps one
//! keep-alive connection per origin, opened on first use and counted. Every
//! exchange goes to the shared [`Tap`], which the recorder drains at step
//! boundaries.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How long one exchange may take before the run calls it failed.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// A request to send: method, absolute `http://` URL, headers, body.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The method.
    pub method: String,
    /// The absolute URL.
    pub url: String,
    /// Header fields in order (names as given).
    pub headers: Vec<(String, String)>,
    /// The body (empty: none).
    pub body: Vec<u8>,
}

impl Request {
    /// A request without headers or body.
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.to_owned(),
            url: url.to_owned(),
            ..Self::default()
        }
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// A JSON body, with its `Content-Type`.
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.body = body.to_string().into_bytes();
        self.header("Content-Type", "application/json")
    }

    /// A form body (`application/x-www-form-urlencoded`).
    pub fn form(mut self, fields: &[(&str, &str)]) -> Self {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            form.append_pair(name, value);
        }
        self.body = form.finish().into_bytes();
        self.header("Content-Type", "application/x-www-form-urlencoded")
    }
}

/// A response read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status.
    pub status: u16,
    /// The header fields (lower-case names), in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Which side of a flow sent the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The agent itself.
    Back,
    /// The person's browser.
    Front,
}

/// One exchange as it crossed the wire.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The method.
    pub method: String,
    /// The URL.
    pub url: String,
    /// The status.
    pub status: u16,
    /// Who sent it.
    pub channel: Channel,
    /// Request line and headers, bytes written.
    pub request_headers: u64,
    /// Request body bytes written.
    pub request_body: u64,
    /// Status line and headers, bytes read.
    pub response_headers: u64,
    /// Response body bytes read (with any chunk framing).
    pub response_body: u64,
    /// Time from the first byte written to the last byte read.
    pub elapsed: Duration,
    /// Whether this exchange opened its TCP connection.
    pub connected: bool,
}

/// What the drivers report besides exchanges.
#[derive(Debug, Default)]
pub struct Tally {
    /// The exchanges, in order.
    pub exchanges: Vec<Exchange>,
    /// Times a person acted (a click on the consent page, a code typed).
    pub person_interactions: u32,
    /// Redirects the browser followed.
    pub browser_redirects: u32,
    /// Where each of those redirects sent the browser: the last one (the
    /// client's callback, with its code or interact_ref) is not fetched,
    /// yet what its URL carries crossed the front channel.
    pub redirect_locations: Vec<String>,
}

/// Where every meter of a run reports: shared, drained per step.
#[derive(Debug, Clone, Default)]
pub struct Tap(Arc<Mutex<Tally>>);

impl Tap {
    /// A fresh tap.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Tally) -> R) -> R {
        // A poisoned lock only means a driver panicked mid-record; the
        // counts are still whole numbers worth reporting.
        let mut tally = match self.0.lock() {
            Ok(tally) => tally,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut tally)
    }

    /// Records that a person acted once.
    pub fn person(&self) {
        self.with(|t| t.person_interactions += 1);
    }

    /// Takes everything recorded since the last drain.
    pub fn drain(&self) -> Tally {
        self.with(std::mem::take)
    }

    fn exchange(&self, exchange: Exchange) {
        self.with(|t| t.exchanges.push(exchange));
    }

    fn redirect(&self, location: &str) {
        self.with(|t| {
            t.browser_redirects += 1;
            t.redirect_locations.push(location.to_owned());
        });
    }
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum MeterError {
    /// The URL is not an absolute `http://host:port/...` URL.
    #[error("not an http URL: {0}")]
    Url(String),
    /// Connecting, writing, reading or parsing failed.
    #[error("{url}: {message}")]
    Io {
        /// The URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// No answer in [`EXCHANGE_TIMEOUT`].
    #[error("{0}: no answer in time")]
    Timeout(String),
    /// Too many redirects in a row.
    #[error("{0}: more than 10 redirects")]
    Redirects(String),
}

struct Connection {
    sender: SendRequest<Full<Bytes>>,
    counts: Arc<Counts>,
}

/// One party's HTTP stack.
pub struct Meter {
    tap: Tap,
    channel: Channel,
    connections: BTreeMap<String, Connection>,
    /// The browser's cookies (name → value), front channel only.
    cookies: BTreeMap<String, String>,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("channel", &self.channel)
            .field("connections", &self.connections.len())
            .finish_non_exhaustive()
    }
}

impl Meter {
    /// An agent's HTTP stack (back channel).
    pub fn agent(tap: &Tap) -> Self {
        Self::new(tap, Channel::Back)
    }

    /// A person's browser (front channel, keeps cookies).
    pub fn browser(tap: &Tap) -> Self {
        Self::new(tap, Channel::Front)
    }

    fn new(tap: &Tap, channel: Channel) -> Self {
        Self {
            tap: tap.clone(),
            channel,
            connections: BTreeMap::new(),
            cookies: BTreeMap::new(),
        }
    }

    /// The tap this meter reports to.
    pub fn tap(&self) -> &Tap {
        &self.tap
    }

    /// Closes every connection: the next request connects afresh (a new
    /// process, the next day).
    pub fn disconnect(&mut self) {
        self.connections.clear();
    }

    /// Sends `request` and reads the whole answer; a browser also sends
    /// and keeps cookies.
    pub async fn send(&mut self, mut request: Request) -> Result<Response, MeterError> {
        let (origin, authority, target) = split_url(&request.url)?;
        if self.channel == Channel::Front && !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            request.headers.push(("Cookie".to_owned(), jar.join("; ")));
        }
        let url = request.url.clone();
        let timed = tokio::time::timeout(
            EXCHANGE_TIMEOUT,
            self.exchange(origin, authority, target, request),
        )
        .await;
        let (response, exchange) = timed.map_err(|_| MeterError::Timeout(url))??;
        if self.channel == Channel::Front {
            for set in response.headers_named("set-cookie") {
                keep_cookie(&mut self.cookies, set);
            }
        }
        self.tap.exchange(exchange);
        Ok(response)
    }

    /// A browser GET that follows redirects (303/302/301/307 as GET) within
    /// `stop_at`'s origin-less prefix: the first redirect to a URL starting
    /// with `stop_at` is returned unfollowed (the client's callback).
    pub async fn browse(&mut self, url: &str, stop_at: &str) -> Result<Browsed, MeterError> {
        self.follow(Request::new("GET", url), stop_at).await
    }

    /// [`Self::browse`] from any first request (a form POST): its
    /// redirects are followed as GETs, up to `stop_at`.
    pub async fn follow(&mut self, first: Request, stop_at: &str) -> Result<Browsed, MeterError> {
        self.follow_until(first, &[stop_at]).await
    }

    /// [`Self::browse`] stopping at the first redirect to a URL starting
    /// with any of `stops` (a callback, or an AS's next interaction page).
    pub async fn browse_until(&mut self, url: &str, stops: &[&str]) -> Result<Browsed, MeterError> {
        self.follow_until(Request::new("GET", url), stops).await
    }

    /// [`Self::follow`] with several stops. A relative `Location` (as
    /// node-oidc-provider sends) is resolved against the request's URL,
    /// as a browser does.
    pub async fn follow_until(
        &mut self,
        first: Request,
        stops: &[&str],
    ) -> Result<Browsed, MeterError> {
        let url = first.url.clone();
        let mut next = first;
        for _ in 0..10 {
            let from = next.url.clone();
            let response = self.send(next).await?;
            let Some(location) = redirect_target(&response) else {
                return Ok(Browsed::Page(response));
            };
            let location = resolve(&from, &location);
            self.tap.redirect(&location);
            if stops.iter().any(|stop| location.starts_with(stop)) {
                return Ok(Browsed::Callback(location));
            }
            next = Request::new("GET", &location);
        }
        Err(MeterError::Redirects(url))
    }

    async fn exchange(
        &mut self,
        origin: String,
        authority: String,
        target: String,
        request: Request,
    ) -> Result<(Response, Exchange), MeterError> {
        let io = |message: String| MeterError::Io {
            url: request.url.clone(),
            message,
        };
        let connected = self
            .connections
            .get(&origin)
            .is_none_or(|c| c.sender.is_closed());
        if connected {
            let stream = TcpStream::connect(&authority)
                .await
                .map_err(|e| io(e.to_string()))?;
            let _ = stream.set_nodelay(true);
            let counts = Arc::new(Counts::default());
            let counted = Counted {
                inner: stream,
                counts: counts.clone(),
            };
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(counted))
                .await
                .map_err(|e| io(e.to_string()))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.connections
                .insert(origin.clone(), Connection { sender, counts });
        }
        let connection = self
            .connections
            .get_mut(&origin)
            .ok_or_else(|| io("no connection".to_owned()))?;
        let mut builder = hyper::Request::builder()
            .method(request.method.as_str())
            .uri(target)
            .header("Host", authority.as_str());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request_body = request.body.len() as u64;
        let hyper_request = builder
            .body(Full::new(Bytes::from(request.body)))
            .map_err(|e| io(e.to_string()))?;
        let (written_before, read_before) = connection.counts.now();
        let started = Instant::now();
        connection
            .sender
            .ready()
            .await
            .map_err(|e| io(e.to_string()))?;
        let answer = connection
            .sender
            .send_request(hyper_request)
            .await
            .map_err(|e| io(e.to_string()))?;
        let (parts, body) = answer.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| io(e.to_string()))?
            .to_bytes();
        let elapsed = started.elapsed();
        let (written_after, read_after) = connection.counts.now();
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let response_headers = header_section_len(parts.status, &headers);
        let read = read_after.saturating_sub(read_before);
        let written = written_after.saturating_sub(written_before);
        let exchange = Exchange {
            method: request.method,
            url: request.url,
            status: parts.status.as_u16(),
            channel: self.channel,
            request_headers: written.saturating_sub(request_body),
            request_body,
            response_headers,
            response_body: read.saturating_sub(response_headers),
            elapsed,
            connected,
        };
        let response = Response {
            status: parts.status.as_u16(),
            headers,
            body: body.to_vec(),
        };
        Ok((response, exchange))
    }
}

/// What a browser GET ended on.
#[derive(Debug)]
pub enum Browsed {
    /// A page (no redirect).
    Page(Response),
    /// A redirect to the client's callback, not followed.
    Callback(String),
}

/// The `Location` of a redirect response.
fn redirect_target(response: &Response) -> Option<String> {
    if !matches!(response.status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    response.header("location").map(str::to_owned)
}

/// `location` made absolute against `base` (RFC 3986 §5.2 for the forms
/// servers send: absolute, absolute-path, or relative to the directory).
pub fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let origin_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let origin = &base[..origin_end];
    if location.starts_with('/') {
        return format!("{origin}{location}");
    }
    let path = base[origin_end..].split(['?', '#']).next().unwrap_or("");
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    format!("{origin}{dir}{location}")
}

/// `name=value; attrs` → the jar (an empty value or `Max-Age=0` removes).
fn keep_cookie(jar: &mut BTreeMap<String, String>, set_cookie: &str) {
    let mut parts = set_cookie.split(';');
    let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
        return;
    };
    let expired = parts.any(|attr| attr.trim().eq_ignore_ascii_case("max-age=0"));
    if expired || value.is_empty() {
        jar.remove(name.trim());
    } else {
        jar.insert(name.trim().to_owned(), value.trim().to_owned());
    }
}

/// `http://host:port/path?q` → (origin, `host:port`, `/path?q`).
fn split_url(url: &str) -> Result<(String, String, String), MeterError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| MeterError::Url(url.to_owned()))?;
    let (authority, target) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_owned()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_owned()),
    };
    if authority.is_empty() || !authority.contains(':') {
        return Err(MeterError::Url(url.to_owned()));
    }
    Ok((format!("http://{authority}"), authority.to_owned(), target))
}

/// The length of `HTTP/1.1 NNN Reason\r\n` + `name: value\r\n`… + `\r\n`,
/// as hyper's server (and so gnapd's) writes it.
fn header_section_len(status: hyper::StatusCode, headers: &[(String, String)]) -> u64 {
    let reason = status.canonical_reason().unwrap_or("");
    let status_line = "HTTP/1.1 000 \r\n".len() + reason.len();
    let fields: usize = headers.iter().map(|(n, v)| n.len() + 2 + v.len() + 2).sum();
    (status_line + fields + 2) as u64
}

#[derive(Debug, Default)]
struct Counts {
    written: AtomicU64,
    read: AtomicU64,
}

impl Counts {
    fn now(&self) -> (u64, u64) {
        (
            self.written.load(Ordering::Relaxed),
            self.read.load(Ordering::Relaxed),
        )
    }
}

/// A TCP stream that counts what goes through it.
struct Counted {
    inner: TcpStream,
    counts: Arc<Counts>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before) as u64;
        self.counts.read.fetch_add(read, Ordering::Relaxed);
        poll
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &poll {
            self.counts.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &poll {
            self.counts.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_origin_authority_and_target() {
        let (origin, authority, target) = split_url("http://127.0.0.1:80/a?b=c").unwrap();
        assert_eq!(origin, "http://127.0.0.1:80");
        assert_eq!(authority, "127.0.0.1:80");
        assert_eq!(target, "/a?b=c");
        assert_eq!(split_url("http://127.0.0.1:80").unwrap().2, "/");
        assert_eq!(split_url("http://127.0.0.1:80?x").unwrap().2, "/?x");
        assert!(split_url("https://127.0.0.1:80/").is_err());
        assert!(split_url("http:///x").is_err());
    }

    #[test]
    fn relative_locations_resolve_as_a_browser_resolves_them() {
        let base = "http://127.0.0.1:5/auth/u1?x=/y";
        assert_eq!(
            resolve(base, "/interaction/u2"),
            "http://127.0.0.1:5/interaction/u2"
        );
        assert_eq!(resolve(base, "u3"), "http://127.0.0.1:5/auth/u3");
        assert_eq!(resolve(base, "http://a:1/cb?c=1"), "http://a:1/cb?c=1");
        assert_eq!(resolve("http://127.0.0.1:5", "x"), "http://127.0.0.1:5/x");
    }

    #[test]
    fn the_cookie_jar_keeps_replaces_and_expires() {
        let mut jar = BTreeMap::new();
        keep_cookie(&mut jar, "a=1; Path=/; HttpOnly");
        keep_cookie(&mut jar, "b=2");
        keep_cookie(&mut jar, "a=3");
        assert_eq!(jar.get("a").map(String::as_str), Some("3"));
        keep_cookie(&mut jar, "b=x; Max-Age=0");
        assert!(!jar.contains_key("b"));
    }

    #[test]
    fn the_header_section_length_counts_what_hyper_writes() {
        let headers = vec![("content-length".to_owned(), "2".to_owned())];
        // "HTTP/1.1 200 OK\r\n" (17) + "content-length: 2\r\n" (19) + "\r\n" (2)
        assert_eq!(header_section_len(hyper::StatusCode::OK, &headers), 38);
    }
}
