//! `gnapd connect`: a stdio MCP server that relays to a gateway's
//! Streamable HTTP endpoint, signing every request with the agent's key.
//!
//! stdin and stdout carry newline-delimited JSON-RPC messages (MCP's stdio
//! transport) and nothing else; logs and prompts go to stderr. Each message
//! from stdin is POSTed in order; a request's answer is awaited on its own
//! task (so a slow tool call does not hold up the next message), except
//! `initialize`, finished before the next line is read since what follows
//! needs the session it opens; the answer is relayed whether it comes as JSON or as an
//! SSE stream (every event's message, requests and notifications from the
//! server included). The relay keeps `Mcp-Session-Id` (learnt from the
//! answer to `initialize`) and `MCP-Protocol-Version` (from its result),
//! sets `Mcp-Method`/`Mcp-Name` from the body, opens the GET stream for
//! server-initiated messages once the session is initialised (a 405 means
//! the server offers none), and DELETEs the session at exit.
//!
//! Authorization lives in [`Agent`]: a 401 from the gateway with a token
//! that was valid makes it negotiate again (the token was revoked) and the
//! message is sent once more; if that fails, a request gets a JSON-RPC
//! error saying why, so the MCP client shows the reason.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::sync::mpsc;

use super::ClientError;
use super::agent::Agent;
use super::sse::SseReader;
use crate::proto::httpsig::HttpRequest;
use crate::proto::mcp::jsonrpc;
use crate::proto::text::escape;

/// How long the gateway gets to send a response head.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(300);
/// Largest JSON answer or SSE event relayed, in bytes.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// How long in-flight messages get to finish once stdin closes.
pub const DRAIN: Duration = Duration::from_secs(10);

/// JSON-RPC code for a call the agent could not authorize (gnapd's 401).
pub const UNAUTHORIZED: i64 = -32001;
/// JSON-RPC code for a call that could not reach the gateway.
pub const UNREACHABLE: i64 = -32603;

/// Why a signed request got no answer, as the MCP client is told.
#[derive(Debug, thiserror::Error)]
enum SendError {
    /// No token to sign with.
    #[error("gnapd connect could not get a token: {}", .0.for_cli())]
    Token(ClientError),
    /// The exchange failed.
    #[error("the gateway could not be reached: {}", .0.for_cli())]
    Unreachable(ClientError),
    /// The token was refused and no new grant came.
    #[error("the gateway refused the token and a new grant failed: {}", .0.for_cli())]
    Regrant(ClientError),
}

/// How the relay behaves.
#[derive(Debug, Clone, Default)]
pub struct RelayOptions {
    /// Revoke the token and delete the grant at exit.
    pub revoke_on_exit: bool,
}

#[derive(Debug, Default)]
struct Session {
    id: Option<String>,
    version: Option<String>,
    stream_started: bool,
}

struct Relay {
    agent: Arc<Agent>,
    session: Mutex<Session>,
    out: mpsc::UnboundedSender<Value>,
    /// The GET stream's task, stopped at exit.
    stream: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Why the negotiation at start failed, until a request is answered
    /// with it: the person's denial (or a timeout) answers the MCP client's
    /// first request instead of starting a second negotiation and prompt.
    start_failure: Mutex<Option<String>>,
}

/// Runs the relay until `input` closes (or a termination signal), then
/// ends the session.
pub async fn run<R, W>(
    agent: Arc<Agent>,
    input: R,
    output: W,
    options: RelayOptions,
) -> Result<(), ClientError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_lines(rx, output));
    let relay = Arc::new(Relay {
        agent: agent.clone(),
        session: Mutex::new(Session::default()),
        out,
        stream: Mutex::new(None),
        start_failure: Mutex::new(None),
    });
    let mut lines = BufReader::new(input).lines();
    let stop = shutdown_signal();
    tokio::pin!(stop);
    // Negotiate at once, so an interaction prompt comes before the MCP
    // client's first message times out. A failure answers the first
    // request; each later one tries again. Meanwhile stdin is read (and
    // kept): an MCP client that goes away while a person is awaited ends
    // this process instead of leaving it waiting.
    let Some(early) = negotiate_at_start(&agent, &relay, &mut lines, &mut stop).await else {
        drop(relay);
        let _ = writer.await;
        return Ok(());
    };
    let mut early = early.into_iter();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let line = match early.next() {
            Some(line) => line,
            None => tokio::select! {
                line = lines.next_line() => line,
                () = &mut stop => break,
            },
        };
        let line = match line {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                eprintln!("gnapd connect: stdin: {e}");
                break;
            }
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(message) if message.is_object() => {
                let relay = relay.clone();
                let method = message.get("method").and_then(Value::as_str);
                let request = method.is_some() && message.get("id").is_some();
                if !request || method == Some("initialize") {
                    // Notifications and responses are answered at once
                    // (202) and keep their order; nothing can follow
                    // `initialize` before its answer brings the session id.
                    relay.post(message).await;
                } else {
                    tasks.spawn(relay.post(message));
                }
            }
            _ => {
                let _ = relay.out.send(json!({
                    "jsonrpc": "2.0", "id": null,
                    "error": {"code": -32700, "message": "not a JSON-RPC message"}
                }));
            }
        }
        // Reap finished tasks as we go.
        while tasks.try_join_next().is_some() {}
    }
    // Let answers in flight arrive (bounded, and a signal cuts it short).
    let drain = tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} });
    tokio::select! {
        _ = drain => {}
        () = shutdown_signal() => {}
    }
    tasks.abort_all();
    if let Some(stream) = relay.stream.lock().ok().and_then(|mut s| s.take()) {
        stream.abort();
    }
    let finish = async {
        relay.end_session().await;
        if options.revoke_on_exit
            && let Err(e) = agent.revoke().await
        {
            eprintln!(
                "gnapd connect: revoking the grant failed: {}",
                escape(&e.for_cli())
            );
        }
    };
    // A termination signal now means "stop at once".
    tokio::select! {
        () = finish => {}
        () = shutdown_signal() => {}
    }
    drop(relay);
    let _ = writer.await;
    Ok(())
}

/// A line read from stdin: `Ok(None)` at its end.
type Line = std::io::Result<Option<String>>;

/// The first negotiation, with stdin read meanwhile: the lines read (the
/// last being its end or an error, if it came), or `None` when the
/// connector should stop — stdin closed while a person is awaited, or a
/// termination signal.
async fn negotiate_at_start<R: AsyncRead + Unpin>(
    agent: &Agent,
    relay: &Relay,
    lines: &mut tokio::io::Lines<BufReader<R>>,
    stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> Option<Vec<Line>> {
    let mut waiting = agent.waiting_for_person();
    let mut read: Vec<Line> = Vec::new();
    let mut closed = false;
    let negotiation = agent.token();
    tokio::pin!(negotiation);
    loop {
        tokio::select! {
            result = &mut negotiation => {
                if let Err(e) = result {
                    eprintln!("gnapd connect: {}", escape(&e.for_cli()));
                    if let Ok(mut failure) = relay.start_failure.lock() {
                        *failure = Some(SendError::Token(e).to_string());
                    }
                }
                return Some(read);
            }
            // `next_line` is cancel safe: a line is either returned or
            // left for the next call.
            line = lines.next_line(), if !closed => {
                closed = !matches!(line, Ok(Some(_)));
                read.push(line);
            }
            Ok(()) = waiting.changed() => {}
            () = stop.as_mut() => return None,
        }
        if closed && *waiting.borrow() {
            eprintln!("gnapd connect: stdin closed while waiting for approval; exiting");
            return None;
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn write_lines<W: AsyncWrite + Unpin>(mut rx: mpsc::UnboundedReceiver<Value>, mut output: W) {
    while let Some(message) = rx.recv().await {
        let Ok(mut line) = serde_json::to_vec(&message) else {
            continue;
        };
        line.push(b'\n');
        if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
            break;
        }
    }
}

fn error_response(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// What kind of message went out.
struct Sent {
    /// The request id, for a request.
    id: Option<Value>,
    method: Option<String>,
}

impl Relay {
    fn base_request(&self, method: &str) -> HttpRequest {
        let mut request = HttpRequest::new(method, self.agent.resource());
        let (id, version) = match self.session.lock() {
            Ok(s) => (s.id.clone(), s.version.clone()),
            Err(_) => (None, None),
        };
        if let Some(id) = id {
            request.fields.append("Mcp-Session-Id", id);
        }
        if let Some(version) = version {
            request.fields.append("MCP-Protocol-Version", version);
        }
        request
    }

    /// Signs and sends `build()`; on a 401, negotiates once more and
    /// resends.
    async fn send_signed(
        &self,
        build: impl Fn() -> HttpRequest,
        timeout: Duration,
    ) -> Result<hyper::Response<hyper::body::Incoming>, SendError> {
        let mut retried = false;
        loop {
            let mut request = build();
            let generation = self
                .agent
                .sign_for_resource(&mut request)
                .await
                .map_err(SendError::Token)?;
            let response = self
                .agent
                .signing_client()
                .http()
                .send(&request, timeout)
                .await
                .map_err(SendError::Unreachable)?;
            if response.status() != 401 || retried {
                return Ok(response);
            }
            retried = true;
            self.agent
                .refused(generation)
                .await
                .map_err(SendError::Regrant)?;
        }
    }

    async fn post(self: Arc<Self>, message: Value) {
        let sent = Sent {
            id: message.get("method").and(message.get("id")).cloned(),
            method: message
                .get("method")
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        if sent.id.is_some()
            && let Some(failure) = self.start_failure.lock().ok().and_then(|mut f| f.take())
        {
            self.fail(&sent, UNAUTHORIZED, &failure);
            return;
        }
        let body = match serde_json::to_vec(&message) {
            Ok(b) => b,
            Err(_) => return,
        };
        let (mcp_method, mcp_name) = match jsonrpc::parse(&body) {
            Ok(jsonrpc::Message::Request { method, target }) => (Some(method), target),
            Ok(jsonrpc::Message::Notification { method }) => (Some(method), None),
            _ => (None, None),
        };
        // MCP 2026-07-28: a stateless request names its own protocol version
        // in `_meta`; the header carries that one, whatever an earlier
        // `initialize` said.
        let own_version = message
            .pointer("/params/_meta/io.modelcontextprotocol~1protocolVersion")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let build = || {
            let mut request = self.base_request("POST");
            if let Some(version) = &own_version {
                request.fields.remove("mcp-protocol-version");
                request
                    .fields
                    .append("MCP-Protocol-Version", version.as_str());
            }
            request.fields.append("Content-Type", "application/json");
            request
                .fields
                .append("Accept", "application/json, text/event-stream");
            if let Some(m) = &mcp_method {
                request.fields.append("Mcp-Method", m.as_str());
            }
            if let Some(n) = &mcp_name {
                request.fields.append("Mcp-Name", n.as_str());
            }
            request.body = body.clone();
            request
        };
        let sent_session = self.session.lock().ok().and_then(|s| s.id.clone());
        let response = match self.send_signed(build, RESPONSE_TIMEOUT).await {
            Ok(r) => r,
            Err(e) => {
                self.fail(&sent, UNAUTHORIZED, &e.to_string());
                return;
            }
        };
        let status = response.status().as_u16();
        if let Some(id) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            && let Ok(mut s) = self.session.lock()
        {
            s.id = Some(id.to_owned());
        }
        if status == 404
            && sent_session.is_some()
            && let Ok(mut s) = self.session.lock()
            && s.id == sent_session
        {
            // The session is gone; the client has to initialize again.
            s.id = None;
            s.stream_started = false;
        }
        let is_sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        let session_gone = status == 404 && sent_session.is_some();
        let answered = if is_sse && (200..300).contains(&status) {
            self.relay_sse(response.into_body(), &sent, &mut None).await
        } else {
            self.relay_json(status, response.into_body(), &sent, session_gone)
                .await
        };
        if !answered && sent.id.is_some() {
            self.fail(
                &sent,
                UNREACHABLE,
                &format!("the gateway answered HTTP {status} without a response to this request"),
            );
        }
        if (200..300).contains(&status)
            && sent.method.as_deref() == Some("notifications/initialized")
        {
            self.start_stream();
        }
    }

    fn fail(&self, sent: &Sent, code: i64, message: &str) {
        match &sent.id {
            Some(id) => {
                let _ = self.out.send(error_response(id, code, message));
            }
            None => eprintln!("gnapd connect: {}", escape(message)),
        }
    }

    /// Relays one message from the gateway; true if it answers `sent`.
    fn deliver(&self, mut message: Value, sent: &Sent) -> bool {
        let answers = sent.id.is_some()
            && message.get("method").is_none()
            && message.get("id") == sent.id.as_ref();
        if answers
            && sent.method.as_deref() == Some("initialize")
            && let Some(version) = message
                .pointer("/result/protocolVersion")
                .and_then(Value::as_str)
            && let Ok(mut s) = self.session.lock()
        {
            s.version = Some(version.to_owned());
        }
        // A gateway error without the request's id (e.g. a refusal before
        // the body was read) still answers this request.
        if !answers
            && sent.id.is_some()
            && message.get("error").is_some()
            && message.get("id").is_some_and(Value::is_null)
            && let (Some(slot), Some(id)) = (message.get_mut("id"), sent.id.clone())
        {
            *slot = id;
            let _ = self.out.send(message);
            return true;
        }
        let _ = self.out.send(message);
        answers
    }

    async fn relay_json(
        &self,
        status: u16,
        body: hyper::body::Incoming,
        sent: &Sent,
        session_gone: bool,
    ) -> bool {
        let limited = http_body_util::Limited::new(body, MAX_MESSAGE);
        let bytes = match limited.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                eprintln!("gnapd connect: reading the gateway's answer: {e}");
                return false;
            }
        };
        if bytes.is_empty() {
            return false;
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(mut message) if message.get("jsonrpc").is_some() => {
                if session_gone
                    && let Some(text) = message.pointer_mut("/error/message")
                    && let Some(original) = text.as_str()
                {
                    // Say what it means for the person at the MCP client.
                    *text = Value::String(format!(
                        "{original}: the gateway no longer accepts this MCP session for this \
                         agent's grant (it ended, or the grant or its upstream credential \
                         changed); reconnect to start a new session"
                    ));
                }
                self.deliver(message, sent)
            }
            _ => {
                let text = String::from_utf8_lossy(&bytes);
                let text: String = text.chars().take(200).collect();
                self.fail(
                    sent,
                    UNREACHABLE,
                    &format!("the gateway answered HTTP {status}: {text}"),
                );
                true
            }
        }
    }

    /// Relays an SSE body; `last_id` tracks the last event id seen.
    async fn relay_sse(
        &self,
        mut body: hyper::body::Incoming,
        sent: &Sent,
        last_id: &mut Option<String>,
    ) -> bool {
        let mut reader = SseReader::new(MAX_MESSAGE);
        let mut answered = false;
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("gnapd connect: the gateway's stream broke: {e}");
                    break;
                }
            };
            let Some(data) = frame.data_ref() else {
                continue;
            };
            let events = match reader.feed(data) {
                Ok(events) => events,
                Err(e) => {
                    eprintln!("gnapd connect: {e}");
                    break;
                }
            };
            if reader.last_id.is_some() {
                last_id.clone_from(&reader.last_id);
            }
            for event in events {
                if event.data.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(&event.data) {
                    Ok(message) => answered |= self.deliver(message, sent),
                    Err(_) => eprintln!("gnapd connect: an SSE event is not JSON; skipped"),
                }
            }
            if answered {
                // The response ends the stream (MCP: the server SHOULD close
                // it after the response); stop reading either way.
                break;
            }
        }
        answered
    }

    /// Opens the GET stream for server-initiated messages, once per session.
    fn start_stream(self: &Arc<Self>) {
        let Ok(mut s) = self.session.lock() else {
            return;
        };
        if s.stream_started || s.id.is_none() {
            return;
        }
        s.stream_started = true;
        let session = s.id.clone();
        drop(s);
        let relay = self.clone();
        let task = tokio::spawn(async move { relay.listen(session).await });
        if let Ok(mut slot) = self.stream.lock()
            && let Some(old) = slot.replace(task)
        {
            old.abort();
        }
    }

    /// Relays the GET stream of `session` while it lasts, reopening it
    /// (with `Last-Event-ID`) a few times if it drops.
    async fn listen(&self, session: Option<String>) {
        const REOPENS: u64 = 5;
        let mut last_id: Option<String> = None;
        for attempt in 0..=REOPENS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(attempt)).await;
            }
            if self.session.lock().ok().map(|s| s.id.clone()) != Some(session.clone()) {
                return;
            }
            let build = || {
                let mut request = self.base_request("GET");
                request.fields.append("Accept", "text/event-stream");
                if let Some(id) = &last_id {
                    request.fields.append("Last-Event-ID", id.as_str());
                }
                request
            };
            let response = match self.send_signed(build, RESPONSE_TIMEOUT).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("gnapd connect: the server stream could not open: {e}");
                    continue;
                }
            };
            let status = response.status().as_u16();
            if status != 200 {
                // 405: the server offers no stream; anything else: give up.
                tracing::debug!(status, "no server stream");
                return;
            }
            let none = Sent {
                id: None,
                method: None,
            };
            self.relay_sse(response.into_body(), &none, &mut last_id)
                .await;
        }
    }

    /// DELETEs the session, if there is one.
    async fn end_session(&self) {
        let has = self.session.lock().ok().is_some_and(|s| s.id.is_some());
        if !has {
            return;
        }
        let build = || self.base_request("DELETE");
        match self.send_signed(build, Duration::from_secs(10)).await {
            Ok(r) => tracing::debug!(status = r.status().as_u16(), "session ended"),
            Err(e) => eprintln!("gnapd connect: ending the session: {e}"),
        }
    }
}
