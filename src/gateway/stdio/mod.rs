//! Stdio upstreams: MCP servers the gateway starts as child processes and
//! bridges to Streamable HTTP at the same endpoint, `{public}/mcp/{name}`,
//! behind the same authorization (`Gateway::check`: signature, token,
//! rights; tool lists filtered). The child never sees the agent's request
//! ids, only the bridge's own (see [`route`]).
//!
//! # Design: one child per MCP session
//!
//! A stdio MCP server holds one connection's state (its initialize
//! handshake, subscriptions, log level), so each session gets its own
//! process:
//!
//! - `POST initialize` without `Mcp-Session-Id` starts a child (at most
//!   [`Limits::max_children`] at once, half of them (rounded up) for one
//!   agent key, three quarters (rounded up) for one client address (an
//!   IPv6 /64; `max_children_per_address`) — keys are free, addresses
//!   less so — else 503 with `Retry-After`), sends it
//!   the message, and on success answers with a fresh random session id
//!   (128 bits, base64url) in `Mcp-Session-Id`. A child that exits before
//!   answering `initialize` is started once more; an `initialize` error
//!   stops the child and mints no session.
//! - Later POSTs name the session. A request is answered when the child
//!   writes the response with its id: `application/json` if nothing came
//!   first, else (when the client accepts it) `text/event-stream` carrying
//!   the child's interim messages, then the response (see [`route`] for
//!   which request an interim message goes to). Notifications and responses
//!   are written to the child and answered 202.
//! - `GET` opens the session's stream of server messages that no request in
//!   flight takes. `DELETE` stops the child (204).
//! - A session is bound to the agent key's thumbprint, the credential set
//!   its child was started with, and the upstream: any other use of its id —
//!   like an unknown or ended id — is 404, upon which MCP clients
//!   re-initialize.
//! - A request without a session that is not `initialize` (the 2026-07-28
//!   stateless mode, `server/discover`, or a client that lost its session)
//!   gets 400: no short-lived child is started for it. A stdio server that
//!   predates 2026-07-28 needs the handshake, and synthesizing one per call
//!   would misstate the client's version and pay a process start (seconds
//!   for `npx`) each time. The official SDKs fall back to `initialize` on
//!   that error.
//!
//! Children never see the agent's token, signature or headers: only the
//! message bodies, and the environment [`child::environment`] builds (the
//! token's credential set for the upstream, opened per call like an HTTP
//! upstream's header). Limits: a request gets the gateway's response timeout
//! for its first answer (504, and the child is told `notifications/cancelled`);
//! an SSE answer then runs until the response, like an HTTP upstream's stream.
//! A session idle for [`Limits::idle_timeout`] (no traffic, no request in
//! flight; an open GET stream does not count) is stopped. A child that exits
//! ends its session: requests in flight get 502 (or, once streaming, a
//! JSON-RPC error event), the id 404. A stdout line over 8 MiB kills the
//! child. Stopping follows MCP's stdio shutdown — stdin closed, then SIGTERM
//! after two seconds, SIGKILL a second later — sent to the child's process
//! group, so the real server `npx`/`uvx` started goes too; children are
//! also killed when dropped, so none outlives the gateway.

pub mod child;
pub mod framing;
pub mod route;
pub mod session;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use hyper::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Authorized;
use super::answer::{BoxError, Forwarded, ForwardedBody, UpstreamFailure};
use crate::proto::address::AddressKey;
use crate::proto::httpsig::HttpRequest;
use crate::proto::mcp::jsonrpc::Message;
use crate::upstream::server::{StdioCommand, Upstream};
use route::id_key;
use session::{Out, Owner, Session, SessionError};

/// Limits on stdio children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most children (sessions) at once; one agent key holds at most half
    /// of them (rounded up).
    pub max_children: usize,
    /// Most children started for calls from one client address; `None`:
    /// three quarters of `max_children` (rounded up).
    pub max_children_per_address: Option<usize>,
    /// A session without traffic for this long is stopped.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_children: 16,
            max_children_per_address: None,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

impl Limits {
    /// Most children one agent key may hold: half the slots (rounded up),
    /// so that one agent can never take every child while others wait.
    pub fn per_key(&self) -> usize {
        self.max_children.div_ceil(2)
    }

    /// Most children calls from one address may hold: by default three
    /// quarters, so that a quarter is always left to other addresses, and
    /// agents on one host (all on 127.0.0.1) may still take more than one
    /// key's half.
    pub fn per_address(&self) -> usize {
        self.max_children_per_address
            .unwrap_or_else(|| (self.max_children * 3).div_ceil(4))
    }
}

/// `Retry-After` when every child slot is taken, in seconds.
pub const RETRY_AFTER: u64 = 5;

/// The session header.
const SESSION_HEADER: &str = "mcp-session-id";

struct Registry {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    children: AtomicUsize,
    /// Children per agent key thumbprint.
    per_key: Mutex<HashMap<String, usize>>,
    /// Children per client address.
    per_address: Mutex<HashMap<AddressKey, usize>>,
    draining: AtomicBool,
    limits: Limits,
    /// New children refused, by the bound that was reached (gateway, key,
    /// address).
    refused: [AtomicU64; 3],
}

impl Registry {
    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a child slot for `thumbprint` calling from `from`, if the
    /// key, the address and the gateway all have one left.
    fn take_slot(&self, thumbprint: &str, from: AddressKey) -> Result<(), SlotTaken> {
        let max = self.limits.max_children;
        if self
            .children
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .is_err()
        {
            self.refused[SlotTaken::Gateway as usize].fetch_add(1, Ordering::Relaxed);
            return Err(SlotTaken::Gateway);
        }
        // Both counts under the key map's lock (always taken first), so
        // that a slot is taken from both or from neither.
        let mut held = self.per_key.lock().unwrap_or_else(|e| e.into_inner());
        let mut addresses = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        let refused = if held.get(thumbprint).copied().unwrap_or(0) >= self.limits.per_key() {
            Some(SlotTaken::Key)
        } else if addresses.get(&from).copied().unwrap_or(0) >= self.limits.per_address() {
            Some(SlotTaken::Address)
        } else {
            None
        };
        if let Some(refused) = refused {
            drop((held, addresses));
            self.refused[refused as usize].fetch_add(1, Ordering::Relaxed);
            self.children.fetch_sub(1, Ordering::SeqCst);
            return Err(refused);
        }
        *held.entry(thumbprint.to_owned()).or_default() += 1;
        *addresses.entry(from).or_default() += 1;
        Ok(())
    }

    /// Gives back a slot [`Registry::take_slot`] took.
    fn release_slot(&self, thumbprint: &str, from: AddressKey) {
        self.children.fetch_sub(1, Ordering::SeqCst);
        let mut held = self.per_key.lock().unwrap_or_else(|e| e.into_inner());
        let mut addresses = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        release(&mut held, thumbprint);
        release(&mut addresses, &from);
    }
}

/// One fewer held under `key`; a key holding nothing is not remembered.
fn release<K, Q>(held: &mut HashMap<K, usize>, key: &Q)
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    if let Some(count) = held.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            held.remove(key);
        }
    }
}

/// Whose child slots are all taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotTaken {
    /// The gateway's ([`Limits::max_children`]).
    Gateway,
    /// This agent key's (half of them).
    Key,
    /// This client address's.
    Address,
}

/// The stdio side of the gateway: every live session and its child.
pub struct Bridge {
    registry: Arc<Registry>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("limits", &self.registry.limits)
            .field("children", &self.children())
            .finish()
    }
}

/// What the child answered a request with, before it becomes HTTP.
enum Answer {
    /// The response came first.
    Json(Value),
    /// Interim messages came first: stream them, then the response.
    Stream(Out, mpsc::Receiver<Out>),
}

impl Bridge {
    /// A bridge with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            registry: Arc::new(Registry {
                sessions: Mutex::new(HashMap::new()),
                children: AtomicUsize::new(0),
                per_key: Mutex::new(HashMap::new()),
                per_address: Mutex::new(HashMap::new()),
                draining: AtomicBool::new(false),
                limits,
                refused: Default::default(),
            }),
        }
    }

    /// Children running (or being stopped) now.
    pub fn children(&self) -> usize {
        self.registry.children.load(Ordering::SeqCst)
    }

    /// The bridge's counters, in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let refused =
            |bound: SlotTaken| self.registry.refused[bound as usize].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP gnapd_gateway_stdio_children stdio upstream processes running.\n# TYPE gnapd_gateway_stdio_children gauge\ngnapd_gateway_stdio_children {}",
            self.children()
        );
        let _ = writeln!(
            out,
            "# HELP gnapd_gateway_stdio_children_refused_total New stdio processes refused (503), by the bound reached: the gateway's, one agent key's, one client address's.\n# TYPE gnapd_gateway_stdio_children_refused_total counter\ngnapd_gateway_stdio_children_refused_total{{bound=\"gateway\"}} {}\ngnapd_gateway_stdio_children_refused_total{{bound=\"key\"}} {}\ngnapd_gateway_stdio_children_refused_total{{bound=\"address\"}} {}",
            refused(SlotTaken::Gateway),
            refused(SlotTaken::Key),
            refused(SlotTaken::Address)
        );
    }

    /// The gateway is shutting down: no new sessions, and GET streams end
    /// (they would hold the drain); requests in flight may finish.
    pub fn drain(&self) {
        self.registry.draining.store(true, Ordering::SeqCst);
        for session in self.registry.sessions().values() {
            session.close_stream();
        }
    }

    /// Stops every child and waits (bounded) for them to go.
    pub async fn shutdown(&self) {
        self.registry.draining.store(true, Ordering::SeqCst);
        let sessions: Vec<Arc<Session>> = self.registry.sessions().values().cloned().collect();
        for session in sessions {
            session.stop();
        }
        let deadline = tokio::time::Instant::now()
            + session::STOP_GRACE
            + session::TERM_GRACE
            + Duration::from_secs(1);
        while self.children() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Serves an authorized request for stdio upstream `upstream`, made
    /// from client address `from`.
    pub async fn handle(
        &self,
        upstream: &Upstream,
        command: &StdioCommand,
        request: &HttpRequest,
        authorized: &Authorized,
        timeout: Duration,
        from: AddressKey,
    ) -> Result<Forwarded, UpstreamFailure> {
        let owner = Owner {
            upstream: upstream.name.clone(),
            thumbprint: authorized.token.key.thumbprint.clone(),
            credential_set: authorized
                .token
                .credential_set(&upstream.name)
                .map(str::to_owned),
        };
        let session = match header(request, SESSION_HEADER) {
            Some(id) => Some(self.find(&id, &owner)?),
            None => None,
        };
        match request.method.as_str() {
            "DELETE" => {
                let session = session.ok_or(UpstreamFailure::SessionRequired)?;
                session.stop();
                tracing::debug!(upstream = %upstream.name, pid = ?session.pid, "stdio session ended by the client");
                Ok(empty(204, None))
            }
            "GET" => {
                let session = session.ok_or(UpstreamFailure::SessionRequired)?;
                let rx = session.open_stream(filter(authorized)).map_err(failure)?;
                Ok(sse(None, rx, None, &session.id))
            }
            "POST" => {
                let message: Value = serde_json::from_slice(&request.body)
                    .map_err(|_| UpstreamFailure::SessionRequired)?;
                let agent_id = message.get("id").cloned().unwrap_or(Value::Null);
                let sse = accepts_sse(request);
                match (&authorized.message, session) {
                    (Some(Message::Request { .. }), Some(session)) => {
                        let answer =
                            exchange(&session, message, sse, filter(authorized), timeout).await?;
                        Ok(to_forwarded(answer, agent_id, &session.id))
                    }
                    (Some(Message::Request { method, .. }), None) if method == "initialize" => {
                        self.initialize(
                            upstream, command, authorized, owner, &message, sse, timeout, from,
                        )
                        .await
                    }
                    (Some(Message::Notification { .. } | Message::Response), Some(session)) => {
                        if let Some(message) = to_child(&session, message) {
                            session.send(&message, timeout).await.map_err(failure)?;
                        }
                        Ok(empty(202, Some(&session.id)))
                    }
                    _ => Err(UpstreamFailure::SessionRequired),
                }
            }
            _ => Err(UpstreamFailure::SessionRequired),
        }
    }

    /// The live session `id`, if `owner` may use it.
    fn find(&self, id: &str, owner: &Owner) -> Result<Arc<Session>, UpstreamFailure> {
        let session = self
            .registry
            .sessions()
            .get(id)
            .cloned()
            .filter(|s| !s.ended())
            .ok_or(UpstreamFailure::SessionNotFound)?;
        if session.owner != *owner {
            tracing::warn!(upstream = %owner.upstream, "a stdio session id was presented by another key, credential set or upstream");
            return Err(UpstreamFailure::SessionNotFound);
        }
        Ok(session)
    }

    /// Starts a child for a new session and runs `initialize` on it; a child
    /// that exits first is started once more.
    #[allow(clippy::too_many_arguments)]
    async fn initialize(
        &self,
        upstream: &Upstream,
        command: &StdioCommand,
        authorized: &Authorized,
        owner: Owner,
        message: &Value,
        sse: bool,
        timeout: Duration,
        from: AddressKey,
    ) -> Result<Forwarded, UpstreamFailure> {
        let mut retried = false;
        loop {
            let session =
                self.start(upstream, command, authorized, owner.clone(), timeout, from)?;
            let attempt = exchange(&session, message.clone(), sse, filter(authorized), timeout);
            match attempt.await {
                Err(UpstreamFailure::Exited) if !retried => {
                    tracing::warn!(upstream = %upstream.name, "the stdio upstream exited during initialize; starting it once more");
                    retried = true;
                    // Its slot frees once it is reaped (at once: it exited).
                    let _ = tokio::time::timeout(
                        session::STOP_GRACE + session::TERM_GRACE + Duration::from_secs(1),
                        session.finished(),
                    )
                    .await;
                }
                Err(e) => {
                    session.stop();
                    return Err(e);
                }
                Ok(Answer::Json(response)) if response.get("error").is_some() => {
                    // No session without a handshake.
                    session.stop();
                    return Ok(json_answer(&response, None));
                }
                Ok(answer) => {
                    tracing::info!(upstream = %upstream.name, pid = ?session.pid, "stdio session started");
                    let agent_id = message.get("id").cloned().unwrap_or(Value::Null);
                    return Ok(to_forwarded(answer, agent_id, &session.id));
                }
            }
        }
    }

    /// Starts a child and registers its session.
    fn start(
        &self,
        upstream: &Upstream,
        command: &StdioCommand,
        authorized: &Authorized,
        owner: Owner,
        timeout: Duration,
        from: AddressKey,
    ) -> Result<Arc<Session>, UpstreamFailure> {
        let registry = &self.registry;
        if registry.draining.load(Ordering::SeqCst) {
            return Err(UpstreamFailure::Busy);
        }
        let thumbprint = owner.thumbprint.clone();
        match registry.take_slot(&thumbprint, from) {
            Ok(()) => {}
            Err(SlotTaken::Gateway) => {
                let max = registry.limits.max_children;
                tracing::warn!(upstream = %upstream.name, max, "every stdio child slot is taken");
                return Err(UpstreamFailure::Busy);
            }
            Err(SlotTaken::Key) => {
                let max = registry.limits.per_key();
                tracing::warn!(upstream = %upstream.name, max, "an agent key holds as many stdio children as one key may");
                return Err(UpstreamFailure::Busy);
            }
            Err(SlotTaken::Address) => {
                let max = registry.limits.per_address();
                tracing::warn!(upstream = %upstream.name, max, "calls from one client address hold as many stdio children as one address may");
                return Err(UpstreamFailure::Busy);
            }
        }
        let release = || registry.release_slot(&thumbprint, from);
        let Some(id) = session_id() else {
            release();
            return Err(UpstreamFailure::Unreachable);
        };
        let spawned = match child::spawn(command, &authorized.credential) {
            Ok(spawned) => spawned,
            Err(e) => {
                release();
                tracing::warn!(upstream = %upstream.name, command = %command.command, error = %e, "cannot start the stdio upstream");
                return Err(UpstreamFailure::Unreachable);
            }
        };
        let pid = spawned.child.id();
        let session = Arc::new(Session::new(id.clone(), owner, spawned.stdin, pid));
        registry.sessions().insert(id, session.clone());
        tokio::spawn(child::log_stderr(upstream.name.clone(), spawned.stderr));
        let registry = self.registry.clone();
        let name = upstream.name.clone();
        let task_session = session.clone();
        tokio::spawn(async move {
            let session = task_session;
            let (end, status) = session::supervise(
                &session,
                spawned.child,
                spawned.stdout,
                registry.limits.idle_timeout,
                timeout,
            )
            .await;
            registry.sessions().remove(&session.id);
            registry.release_slot(&session.owner.thumbprint, from);
            session.mark_finished();
            match end {
                session::End::Idle | session::End::Stopped => {
                    tracing::info!(upstream = %name, pid = ?session.pid, ?end, ?status, "stdio session over");
                }
                session::End::Exited(_) | session::End::Closed | session::End::TooLong => {
                    tracing::warn!(upstream = %name, pid = ?session.pid, ?end, ?status, "stdio session over: the upstream process ended it");
                }
            }
        });
        Ok(session)
    }
}

/// What the child gets of each exchange's messages, when the token's tools
/// are limited: every message filtered, whatever the request (a child that
/// answered with a tool list where none was asked for shows no more).
fn filter(authorized: &Authorized) -> Option<crate::proto::mcp::access::UpstreamGrant> {
    authorized
        .grant
        .limits_tools()
        .then(|| authorized.grant.clone())
}

/// A client notification or response as the child gets it: a
/// `notifications/cancelled` names the request by the bridge id the child
/// knows it by, and is dropped when it names no request in flight (the
/// bridge id it would carry might be another request's).
fn to_child(session: &Session, mut message: Value) -> Option<Value> {
    if message.get("method").and_then(Value::as_str) != Some("notifications/cancelled") {
        return Some(message);
    }
    let slot = message.pointer_mut("/params/requestId")?;
    *slot = Value::from(session.bridge_id_of(slot)?);
    Some(message)
}

/// Sends a client request to `session` under a bridge id of its own (see
/// [`route`]) and waits (up to `timeout`) for the first message the child
/// writes for it.
async fn exchange(
    session: &Session,
    mut message: Value,
    sse: bool,
    filter: Option<crate::proto::mcp::access::UpstreamGrant>,
    timeout: Duration,
) -> Result<Answer, UpstreamFailure> {
    let agent_id = message.get("id").cloned().unwrap_or(Value::Null);
    if id_key(&agent_id).is_none() {
        return Err(UpstreamFailure::SessionRequired);
    }
    let progress_token = message.pointer("/params/_meta/progressToken").cloned();
    let (id, mut rx) = session
        .register(agent_id, sse, progress_token, filter)
        .map_err(failure)?;
    if let Some(slot) = message.get_mut("id") {
        *slot = Value::from(id);
    }
    if let Err(e) = session.send(&message, timeout).await {
        session.unregister(id);
        return Err(failure(e));
    }
    match tokio::time::timeout(timeout, rx.recv()).await {
        Ok(Some(out)) if out.last => Ok(Answer::Json(out.message)),
        Ok(Some(out)) => Ok(Answer::Stream(out, rx)),
        Ok(None) => Err(UpstreamFailure::Exited),
        Err(_) => {
            session.unregister(id);
            if message.get("method").and_then(Value::as_str) != Some("initialize") {
                let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                    "params": {"requestId": id, "reason": "the gateway timed out"}});
                // Best effort, and no longer than a moment.
                let _ = session.send(&cancel, Duration::from_secs(1)).await;
            }
            Err(UpstreamFailure::Timeout)
        }
    }
}

fn failure(e: SessionError) -> UpstreamFailure {
    match e {
        SessionError::Ended => UpstreamFailure::Exited,
        SessionError::InFlight => UpstreamFailure::InFlight,
        SessionError::WriteTimeout => UpstreamFailure::Timeout,
    }
}

/// 128 random bits, base64url: a session id no one can guess.
fn session_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(crate::proto::b64::encode_url(&bytes))
}

fn header(request: &HttpRequest, name: &str) -> Option<String> {
    request
        .fields
        .lines(name)
        .next()
        .map(|v| String::from_utf8_lossy(v).trim().to_owned())
}

fn accepts_sse(request: &HttpRequest) -> bool {
    request.fields.lines("accept").any(|v| {
        String::from_utf8_lossy(v)
            .to_ascii_lowercase()
            .contains("text/event-stream")
    })
}

fn session_headers(headers: &mut HeaderMap, session: Option<&str>) {
    if let Some(value) = session.and_then(|s| HeaderValue::from_str(s).ok()) {
        headers.insert(SESSION_HEADER, value);
    }
}

fn to_forwarded(answer: Answer, agent_id: Value, session: &str) -> Forwarded {
    match answer {
        Answer::Json(response) => json_answer(&response, Some(session)),
        Answer::Stream(first, rx) => sse(Some(first), rx, Some(agent_id), session),
    }
}

fn json_answer(response: &Value, session: Option<&str>) -> Forwarded {
    let body = Bytes::from(serde_json::to_vec(response).unwrap_or_default());
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    session_headers(&mut headers, session);
    Forwarded {
        status: 200,
        headers,
        body: ForwardedBody::Full(body),
    }
}

fn empty(status: u16, session: Option<&str>) -> Forwarded {
    let mut headers = HeaderMap::new();
    if status != 204 {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(0));
    }
    session_headers(&mut headers, session);
    Forwarded {
        status,
        headers,
        body: ForwardedBody::Full(Bytes::new()),
    }
}

/// An SSE answer: `first` (if any), then what comes on `rx`; with a request
/// `id`, it ends at the response, or with a JSON-RPC error event for that id
/// if the session ends first.
fn sse(first: Option<Out>, rx: mpsc::Receiver<Out>, id: Option<Value>, session: &str) -> Forwarded {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    session_headers(&mut headers, Some(session));
    Forwarded {
        status: 200,
        headers,
        body: ForwardedBody::Stream(Box::pin(SseBody {
            first,
            rx,
            id,
            done: false,
        })),
    }
}

/// One SSE event carrying `message`.
pub fn sse_event(message: &Value) -> Bytes {
    // Compact JSON has no newline, so one `data:` line carries it.
    let mut event = b"event: message\ndata: ".to_vec();
    event.extend_from_slice(&serde_json::to_vec(message).unwrap_or_default());
    event.extend_from_slice(b"\n\n");
    Bytes::from(event)
}

struct SseBody {
    first: Option<Out>,
    rx: mpsc::Receiver<Out>,
    id: Option<Value>,
    done: bool,
}

impl Stream for SseBody {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let out = match self.first.take() {
            Some(out) => out,
            None => match self.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(out)) => out,
                Poll::Ready(None) => {
                    self.done = true;
                    let Some(id) = self.id.take() else {
                        return Poll::Ready(None);
                    };
                    let error = json!({"jsonrpc": "2.0", "id": id, "error": {
                        "code": -32002, "message": "the upstream process exited"}});
                    return Poll::Ready(Some(Ok(sse_event(&error))));
                }
            },
        };
        if out.last {
            self.done = true;
        }
        Poll::Ready(Some(Ok(sse_event(&out.message))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(max_children: usize) -> Registry {
        Registry {
            sessions: Mutex::new(HashMap::new()),
            children: AtomicUsize::new(0),
            per_key: Mutex::new(HashMap::new()),
            per_address: Mutex::new(HashMap::new()),
            draining: AtomicBool::new(false),
            limits: Limits {
                max_children,
                ..Limits::default()
            },
            refused: Default::default(),
        }
    }

    const HERE: AddressKey = AddressKey::V4(1);

    #[test]
    fn one_key_takes_at_most_half_the_child_slots_and_gives_them_back() {
        let r = registry(4);
        assert_eq!(r.take_slot("A", HERE), Ok(()));
        assert_eq!(r.take_slot("A", HERE), Ok(()));
        assert_eq!(r.take_slot("A", HERE), Err(SlotTaken::Key));
        assert_eq!(r.take_slot("B", AddressKey::V4(2)), Ok(()));
        assert_eq!(r.take_slot("C", AddressKey::V4(3)), Ok(()));
        assert_eq!(r.take_slot("D", AddressKey::V4(4)), Err(SlotTaken::Gateway));
        assert_eq!(r.children.load(Ordering::SeqCst), 4);
        r.release_slot("A", HERE);
        assert_eq!(r.take_slot("A", HERE), Ok(()));
        r.release_slot("B", AddressKey::V4(2));
        // A key that holds nothing is not remembered.
        assert!(!r.per_key.lock().unwrap().contains_key("B"));
        assert_eq!(r.children.load(Ordering::SeqCst), 3);
        // One slot: a lone key may hold it.
        let one = registry(1);
        assert_eq!(one.take_slot("A", HERE), Ok(()));
        assert_eq!(
            one.take_slot("B", AddressKey::V4(2)),
            Err(SlotTaken::Gateway)
        );
    }

    #[test]
    fn one_address_takes_at_most_its_share_of_child_slots_whatever_its_keys() {
        let r = registry(4);
        assert_eq!(r.limits.per_address(), 3);
        for key in ["A", "B", "C"] {
            assert_eq!(r.take_slot(key, HERE), Ok(()));
        }
        // A fresh key from the same address gets nothing...
        assert_eq!(r.take_slot("D", HERE), Err(SlotTaken::Address));
        assert_eq!(r.children.load(Ordering::SeqCst), 3);
        assert_eq!(registry(16).limits.per_address(), 12);
        // ...another address does, and a slot given back is free again.
        assert_eq!(r.take_slot("D", AddressKey::V4(2)), Ok(()));
        r.release_slot("A", HERE);
        assert_eq!(r.take_slot("E", HERE), Ok(()));
        assert!(!r.per_key.lock().unwrap().contains_key("A"));
        let set = Limits {
            max_children: 6,
            max_children_per_address: Some(1),
            ..Limits::default()
        };
        assert_eq!(set.per_address(), 1);
    }

    #[test]
    fn refused_children_are_counted_by_the_bound_reached() {
        let bridge = Bridge::new(Limits {
            max_children: 4,
            ..Limits::default()
        });
        let r = &bridge.registry;
        for key in ["A", "A", "B"] {
            assert_eq!(r.take_slot(key, HERE), Ok(()));
        }
        assert_eq!(r.take_slot("A", AddressKey::V4(2)), Err(SlotTaken::Key));
        assert_eq!(r.take_slot("C", HERE), Err(SlotTaken::Address));
        assert_eq!(r.take_slot("C", AddressKey::V4(2)), Ok(()));
        assert_eq!(r.take_slot("D", AddressKey::V4(3)), Err(SlotTaken::Gateway));
        let mut out = String::new();
        bridge.render(&mut out);
        for line in [
            "gnapd_gateway_stdio_children 4",
            "gnapd_gateway_stdio_children_refused_total{bound=\"gateway\"} 1",
            "gnapd_gateway_stdio_children_refused_total{bound=\"key\"} 1",
            "gnapd_gateway_stdio_children_refused_total{bound=\"address\"} 1",
        ] {
            assert!(out.lines().any(|l| l == line), "no `{line}` in {out}");
        }
    }
}
