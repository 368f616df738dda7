//! One MCP session: one child process, the requests in flight in it, its
//! GET stream, and the task that reads the child's stdout and ends the
//! session when the child exits, misbehaves, idles, or is told to stop.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{Notify, mpsc};

use super::framing::{Frame, LineFramer, MAX_LINE, encode};
use super::route::{Delivery, InFlight, Router, Sink};
use crate::proto::mcp::access::UpstreamGrant;

/// Messages buffered per HTTP exchange before the child's output waits for
/// the client to read.
const CHANNEL: usize = 32;
/// How long a child gets to exit once its stdin is closed, before SIGTERM.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(2);
/// How long it then gets after SIGTERM, before SIGKILL.
pub(crate) const TERM_GRACE: Duration = Duration::from_secs(1);
/// How long the output of a child that exited is still read.
const EXIT_DRAIN: Duration = Duration::from_millis(500);

/// One message from the child for an HTTP exchange.
#[derive(Debug)]
pub(crate) struct Out {
    /// The message.
    pub message: Value,
    /// Whether it is the response that ends the exchange.
    pub last: bool,
}

/// An HTTP exchange's end of the channel, with the filter its messages
/// need (when the token's tools are limited).
#[derive(Debug, Clone)]
pub(crate) struct Tx {
    tx: mpsc::Sender<Out>,
    filter: Option<UpstreamGrant>,
}

impl Sink for Tx {
    fn is_open(&self) -> bool {
        !self.tx.is_closed()
    }
}

/// Who may use a session: the session id alone is not enough, so a leaked
/// id is useless to another key, another credential set or another upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    /// The upstream.
    pub upstream: String,
    /// The agent key's JWK thumbprint.
    pub thumbprint: String,
    /// The credential set the child was started with.
    pub credential_set: Option<String>,
}

/// Why a session cannot take a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionError {
    /// The child is gone (exited, killed, or its stdin closed).
    Ended,
    /// A request with this id is in flight.
    InFlight,
    /// The child did not read its stdin in time.
    WriteTimeout,
}

struct State {
    router: Router<Tx>,
    last_activity: Instant,
    ended: bool,
}

/// A session and its child.
pub(crate) struct Session {
    /// The session id (`Mcp-Session-Id`).
    pub id: String,
    /// Who may use it.
    pub owner: Owner,
    /// The child's process id, for the log.
    pub pid: Option<u32>,
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    state: Mutex<State>,
    stop: Notify,
    /// Set by [`Session::stop`]: the gateway ended it, the child did not
    /// just exit (so nobody starts it once more).
    stopped: std::sync::atomic::AtomicBool,
    /// Set once the child is gone and its slot is free.
    finished: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("upstream", &self.owner.upstream)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

/// Why a session ended.
#[derive(Debug)]
pub(crate) enum End {
    /// The child exited (status if known).
    Exited(Option<std::process::ExitStatus>),
    /// The child closed its stdout.
    Closed,
    /// The child wrote a line over [`MAX_LINE`].
    TooLong,
    /// No traffic for the idle timeout.
    Idle,
    /// DELETE, a failed initialize, or gateway shutdown.
    Stopped,
}

impl Session {
    /// A session over a started child's stdin.
    pub(crate) fn new(id: String, owner: Owner, stdin: ChildStdin, pid: Option<u32>) -> Self {
        Self {
            id,
            owner,
            pid,
            stdin: tokio::sync::Mutex::new(Some(stdin)),
            state: Mutex::new(State {
                router: Router::default(),
                last_activity: Instant::now(),
                ended: false,
            }),
            stop: Notify::new(),
            stopped: std::sync::atomic::AtomicBool::new(false),
            finished: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Whether the gateway stopped the session ([`Session::stop`]).
    pub(crate) fn was_stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Marks the child gone and its slot free.
    pub(crate) fn mark_finished(&self) {
        self.finished.send_replace(true);
    }

    /// Completes once the child is gone and its slot is free.
    pub(crate) async fn finished(&self) {
        let mut rx = self.finished.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the session is over (its id then answers 404).
    pub(crate) fn ended(&self) -> bool {
        self.state().ended
    }

    /// Registers a client request the agent sent with id `agent_id` and
    /// gives the bridge id to send it to the child with (see
    /// [`super::route`]) and the channel its answer comes on, which gets
    /// the response with `agent_id` again. `filter` is applied to every
    /// message the channel carries.
    pub(crate) fn register(
        &self,
        agent_id: Value,
        sse: bool,
        progress_token: Option<Value>,
        filter: Option<UpstreamGrant>,
    ) -> Result<(u64, mpsc::Receiver<Out>), SessionError> {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let mut state = self.state();
        if state.ended {
            return Err(SessionError::Ended);
        }
        state.last_activity = Instant::now();
        let id = state
            .router
            .add(agent_id, Tx { tx, filter }, sse, progress_token)
            .map_err(|InFlight| SessionError::InFlight)?;
        Ok((id, rx))
    }

    /// Forgets a client request (timed out, or its write failed).
    pub(crate) fn unregister(&self, bridge_id: u64) {
        self.state().router.remove(bridge_id);
    }

    /// The bridge id of the agent's request in flight with `agent_id`.
    pub(crate) fn bridge_id_of(&self, agent_id: &Value) -> Option<u64> {
        self.state().router.bridge_id_of(agent_id)
    }

    /// Opens the GET stream (ending an earlier one); `filter` is applied
    /// to every message it carries.
    pub(crate) fn open_stream(
        &self,
        filter: Option<UpstreamGrant>,
    ) -> Result<mpsc::Receiver<Out>, SessionError> {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let mut state = self.state();
        if state.ended {
            return Err(SessionError::Ended);
        }
        state.last_activity = Instant::now();
        state.router.set_stream(Tx { tx, filter });
        Ok(rx)
    }

    /// Ends the GET stream, if open (at gateway shutdown: it would never end
    /// by itself).
    pub(crate) fn close_stream(&self) {
        self.state().router.clear_stream();
    }

    /// Writes one message to the child's stdin within `timeout`.
    pub(crate) async fn send(
        &self,
        message: &Value,
        timeout: Duration,
    ) -> Result<(), SessionError> {
        {
            let mut state = self.state();
            if state.ended {
                return Err(SessionError::Ended);
            }
            state.last_activity = Instant::now();
        }
        let line = encode(message);
        let write = async {
            let mut stdin = self.stdin.lock().await;
            let pipe = stdin.as_mut().ok_or(SessionError::Ended)?;
            pipe.write_all(&line)
                .await
                .map_err(|_| SessionError::Ended)?;
            pipe.flush().await.map_err(|_| SessionError::Ended)
        };
        tokio::time::timeout(timeout, write)
            .await
            .unwrap_or(Err(SessionError::WriteTimeout))
    }

    /// Ends the session now and has its task stop the child.
    pub(crate) fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.end();
        self.stop.notify_one();
    }

    /// Marks the session over and drops every exchange's channel, so the
    /// requests in flight learn at once that no answer will come.
    fn end(&self) {
        let mut state = self.state();
        state.ended = true;
        state.router = Router::default();
    }

    fn is_idle(&self, idle: Duration) -> bool {
        let state = self.state();
        !state.ended && state.router.in_flight() == 0 && state.last_activity.elapsed() >= idle
    }

    /// Routes one stdout line to the exchange it belongs to. A slow client
    /// holds the child's output for at most `send_timeout`, then loses its
    /// exchange.
    async fn deliver(&self, line: &[u8], send_timeout: Duration) {
        let mut message = match serde_json::from_slice::<Value>(line) {
            Ok(m) if m.is_object() => m,
            _ => {
                tracing::debug!(upstream = %self.owner.upstream, "a stdout line that is not a JSON-RPC message was skipped");
                return;
            }
        };
        let (delivery, tx) = {
            let mut state = self.state();
            state.last_activity = Instant::now();
            let delivery = state.router.route(&message);
            let tx = match &delivery {
                Delivery::Final(id) => state.router.remove(*id).map(|p| {
                    // The response goes back under the agent's own id.
                    if let Some(slot) = message.get_mut("id") {
                        *slot = p.agent_id;
                    }
                    p.sink
                }),
                Delivery::Interim(id) => state.router.get(*id).map(|p| p.sink.clone()),
                Delivery::Stream => state.router.stream().cloned(),
                Delivery::Drop => None,
            };
            (delivery, tx)
        };
        let Some(tx) = tx else {
            tracing::debug!(upstream = %self.owner.upstream, "a message from the stdio upstream has no listener; dropped");
            return;
        };
        let last = matches!(delivery, Delivery::Final(_));
        if let Some(grant) = &tx.filter {
            grant.filter_tools_list(&mut message);
        }
        let sent = tokio::select! {
            sent = tokio::time::timeout(send_timeout, tx.tx.send(Out { message, last })) => {
                matches!(sent, Ok(Ok(())))
            }
            () = self.stop.notified() => {
                // Stopping wins over a slow client; keep the signal for
                // the supervisor.
                self.stop.notify_one();
                return;
            }
        };
        if sent {
            return;
        }
        // Its client left or stopped reading: let the exchange go.
        let mut state = self.state();
        match delivery {
            Delivery::Interim(id) => {
                if state
                    .router
                    .get(id)
                    .is_some_and(|p| p.sink.tx.same_channel(&tx.tx))
                {
                    state.router.remove(id);
                }
            }
            Delivery::Stream => {
                if state
                    .router
                    .stream()
                    .is_some_and(|s| s.tx.same_channel(&tx.tx))
                {
                    state.router.clear_stream();
                }
            }
            Delivery::Final(_) | Delivery::Drop => {}
        }
    }

    fn close_stdin(&self) {
        // A writer stuck on a full pipe holds the lock until its timeout;
        // the kill after the grace period covers that case.
        if let Ok(mut stdin) = self.stdin.try_lock() {
            stdin.take();
        }
    }
}

/// How often to look for idleness.
fn idle_check(idle: Duration) -> Duration {
    (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5))
}

/// Sends `signal` to the child's process group (it leads its own, see
/// `child::spawn`), so that grandchildren — `npx` and `uvx` start the real
/// server as one — go too. Only called while the child is not yet reaped:
/// until then its pid, which is the group's id, cannot be reused.
#[cfg(unix)]
fn signal_group(child: &Child, signal: rustix::process::Signal) {
    let group = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(group) = group {
        let _ = rustix::process::kill_process_group(group, signal);
    }
}

/// Stops a child that has not exited by itself, as MCP's stdio transport
/// describes: stdin closed (done by the caller), then SIGTERM, then SIGKILL.
async fn stop_child(child: &mut Child, grace: Duration) -> Option<std::process::ExitStatus> {
    if let Ok(Ok(status)) = tokio::time::timeout(grace, child.wait()).await {
        return Some(status);
    }
    #[cfg(unix)]
    {
        signal_group(child, rustix::process::Signal::TERM);
        if let Ok(Ok(status)) = tokio::time::timeout(TERM_GRACE, child.wait()).await {
            return Some(status);
        }
        signal_group(child, rustix::process::Signal::KILL);
    }
    let _ = child.start_kill();
    tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .ok()
        .and_then(Result::ok)
}

/// Runs a session until it ends, then stops its child: stdin is closed
/// (MCP's stdio shutdown: the server should exit), then after
/// [`STOP_GRACE`] SIGTERM, after [`TERM_GRACE`] SIGKILL. Returns why the
/// session ended.
pub(crate) async fn supervise(
    session: &Session,
    mut child: Child,
    mut stdout: ChildStdout,
    idle: Duration,
    send_timeout: Duration,
) -> (End, Option<std::process::ExitStatus>) {
    let mut framer = LineFramer::new(MAX_LINE);
    let mut buf = vec![0u8; 64 * 1024];
    let mut frames = Vec::new();
    let mut tick = tokio::time::interval(idle_check(idle));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = 'run: loop {
        tokio::select! {
            read = stdout.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break 'run End::Closed,
                    Ok(n) => n,
                };
                framer.push(&buf[..n], &mut frames);
                for frame in std::mem::take(&mut frames) {
                    match frame {
                        Frame::Line(line) => session.deliver(&line, send_timeout).await,
                        Frame::TooLong => break 'run End::TooLong,
                    }
                }
            }
            status = child.wait() => break 'run End::Exited(status.ok()),
            () = session.stop.notified() => break 'run End::Stopped,
            _ = tick.tick() => {
                if session.is_idle(idle) {
                    break 'run End::Idle;
                }
            }
        }
    };
    if matches!(end, End::Exited(_)) {
        // What it wrote just before exiting is still in the pipe: deliver
        // it (briefly: a grandchild may hold the pipe open).
        let drain = async {
            loop {
                match stdout.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => framer.push(&buf[..n], &mut frames),
                }
                for frame in std::mem::take(&mut frames) {
                    match frame {
                        Frame::Line(line) => session.deliver(&line, send_timeout).await,
                        Frame::TooLong => return,
                    }
                }
            }
        };
        let _ = tokio::time::timeout(EXIT_DRAIN, drain).await;
    }
    session.end();
    session.close_stdin();
    let status = match &end {
        End::Exited(status) => *status,
        // A child that floods its stdout gets no grace.
        End::TooLong => stop_child(&mut child, Duration::ZERO).await,
        End::Closed | End::Idle | End::Stopped => stop_child(&mut child, STOP_GRACE).await,
    };
    (end, status)
}
