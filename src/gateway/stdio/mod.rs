//! Stdio upstreams: MCP servers the gateway starts as child processes, one
//! per MCP session, bridged to Streamable HTTP at the same endpoint and
//! behind the same authorization as HTTP upstreams.

pub(crate) mod child;
mod exchange;
pub(crate) mod framing;
mod http_answer;
mod limits;
mod registry;
pub(crate) mod route;
pub(crate) mod session;

pub use limits::Limits;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;

use super::Authorized;
use super::answer::{Forwarded, UpstreamFailure};
use crate::proto::address::AddressKey;
use crate::proto::httpsig::HttpRequest;
use crate::proto::mcp::jsonrpc::Message;
use crate::upstream::server::{StdioCommand, Upstream};
use exchange::{Answer, exchange, failure, filter, to_child};
use http_answer::{SESSION_HEADER, accepts_sse, empty, header, json_answer, sse, to_forwarded};
use registry::{Registry, SlotTaken};
use session::{Owner, Session};

/// The stdio side of the gateway: every live session and its child.
pub(crate) struct Bridge {
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

impl Bridge {
    /// Stdio sessions live, and their bytes (session id and owner; the
    /// child process's own memory is not the gateway's).
    pub(crate) fn size(&self) -> crate::store::TableSize {
        let mut size = crate::store::TableSize::default();
        if let Ok(sessions) = self.registry.sessions.lock() {
            for (id, session) in sessions.iter() {
                let owner = session.owner.upstream.len()
                    + session.owner.thumbprint.len()
                    + session.owner.credential_set.as_ref().map_or(0, String::len);
                size.add(id.len(), owner);
            }
        }
        size
    }

    /// A bridge with these limits.
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            registry: Arc::new(Registry::new(limits)),
        }
    }

    /// Children running (or being stopped) now.
    pub(crate) fn children(&self) -> usize {
        self.registry.children.load(Ordering::SeqCst)
    }

    /// The bridge's counters, in the Prometheus text format.
    pub(crate) fn render(&self, out: &mut String) {
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
    pub(crate) fn drain(&self) {
        self.registry.draining.store(true, Ordering::SeqCst);
        for session in self.registry.sessions().values() {
            session.close_stream();
        }
    }

    /// Stops the children of upstream `name` (it was removed): their
    /// sessions end now and their tasks stop the processes. How many.
    pub(crate) fn stop_upstream(&self, name: &str) -> usize {
        let sessions: Vec<Arc<Session>> = self
            .registry
            .sessions()
            .values()
            .filter(|session| session.owner.upstream == name)
            .cloned()
            .collect();
        for session in &sessions {
            session.stop();
        }
        sessions.len()
    }

    /// Stops every child and waits (bounded) for them to go.
    pub(crate) async fn shutdown(&self) {
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
    pub(crate) async fn handle(
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
            thumbprint: authorized.owner(),
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
                    // No child for a call without a session: an older stdio
                    // server needs the handshake, and one per call would
                    // cost a process start; SDKs re-initialize on this 400.
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
                // A session the gateway stopped meanwhile (its upstream
                // removed, the gateway shutting down) is not started again.
                Err(UpstreamFailure::Exited) if !retried && !session.was_stopped() => {
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

/// 128 random bits, base64url: a session id no one can guess.
fn session_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    crate::random::fill(&mut bytes).ok()?;
    Some(crate::proto::b64::encode_url(&bytes))
}
