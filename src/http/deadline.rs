//! Deadlines on a request body, and the bookkeeping that tells the accept
//! loop whether a connection is waiting on its client or being served.
//!
//! A body must keep coming (no pause longer than `body_timeout`) and be
//! whole within `request_timeout` of its head; past either, reading it
//! fails and the accept loop answers 408 instead of whatever the handler
//! made of the unreadable body. The timer is armed only when the body
//! makes a reader wait, so a body that came with its head (an agent's
//! call, usually) costs no timer. Nothing bounds a response: a gateway
//! SSE stream may run for hours.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::admission::{Conn, InFlight, Missed};
use crate::gateway::answer::BoxError;

/// The body a handler gets: the client's, under the deadlines.
pub type RequestBody = TimedBody<hyper::body::Incoming>;

/// Which deadline a request body missed, if any; shared by the body and
/// the accept loop's service, which answers 408 when one was.
#[derive(Debug, Default)]
pub struct Expiry(AtomicU8);

impl Expiry {
    /// The deadline missed, if one was.
    pub fn missed(&self) -> Option<Missed> {
        match self.0.load(Ordering::Acquire) {
            1 => Some(Missed::Body),
            2 => Some(Missed::Request),
            _ => None,
        }
    }

    fn set(&self, what: Missed) {
        let code = if what == Missed::Request { 2 } else { 1 };
        self.0.store(code, Ordering::Release);
    }
}

/// The body was not received in time.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body was not received in time")]
pub struct TooSlow;

/// A request body under the deadlines; counted as "still being received"
/// on its connection until it ends, fails or is dropped.
#[derive(Debug)]
pub struct TimedBody<B> {
    inner: B,
    /// Set while the body counts as being received on its connection.
    conn: Option<Arc<Conn>>,
    pause: Duration,
    whole_by: Instant,
    last_progress: Instant,
    timer: Option<Pin<Box<Sleep>>>,
    expiry: Option<Arc<Expiry>>,
}

impl<B: Body> TimedBody<B> {
    /// `inner` with no pause over `pause` and whole within `whole` from
    /// now; counted on `conn` until done. Returns the shared [`Expiry`]
    /// when the body is not already complete.
    pub fn new(
        inner: B,
        conn: &Arc<Conn>,
        pause: Duration,
        whole: Duration,
    ) -> (Self, Option<Arc<Expiry>>) {
        let now = Instant::now();
        let pending = !inner.is_end_stream();
        let expiry = pending.then(Arc::default);
        if pending {
            conn.reading(true);
        }
        let body = Self {
            inner,
            conn: pending.then(|| conn.clone()),
            pause,
            whole_by: now + whole,
            last_progress: now,
            timer: None,
            expiry: expiry.clone(),
        };
        (body, expiry)
    }

    /// The body missed `what`: it fails from now on.
    fn expire(&mut self, what: Missed) -> BoxError {
        if let Some(expiry) = &self.expiry {
            expiry.set(what);
        }
        self.finish();
        Box::new(TooSlow)
    }

    /// The body no longer counts as being received.
    fn finish(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.reading(false);
        }
        self.timer = None;
    }
}

impl<B> Drop for TimedBody<B> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.reading(false);
        }
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.expiry.as_ref().is_some_and(|e| e.missed().is_some()) {
            return Poll::Ready(Some(Err(Box::new(TooSlow))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if this.inner.is_end_stream() {
                    this.finish();
                } else if this.conn.is_some() {
                    this.last_progress = Instant::now();
                    // A trickle that never makes the reader wait still
                    // has to end in time.
                    if this.last_progress >= this.whole_by {
                        return Poll::Ready(Some(Err(this.expire(Missed::Request))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish();
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.finish();
                Poll::Ready(None)
            }
            Poll::Pending => {
                let paused_by = this.last_progress + this.pause;
                let (deadline, what) = if paused_by < this.whole_by {
                    (paused_by, Missed::Body)
                } else {
                    (this.whole_by, Missed::Request)
                };
                let timer = match &mut this.timer {
                    Some(timer) => {
                        if timer.deadline() != deadline {
                            timer.as_mut().reset(deadline);
                        }
                        timer
                    }
                    None => this
                        .timer
                        .insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                ready!(timer.as_mut().poll(cx));
                Poll::Ready(Some(Err(this.expire(what))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request in flight until it is dropped
/// (sent whole, or the connection closed), so that a connection streaming
/// an answer never counts as idle.
#[derive(Debug)]
pub struct Tracked<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> Tracked<B> {
    /// `inner`, holding `in_flight`.
    pub fn new(inner: B, in_flight: InFlight) -> Self {
        Self {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
