//! What comes back from an upstream, whichever transport carried it: the
//! status, the headers that may pass, the body as a stream, or why
//! forwarding failed. The HTTP forwarder and the stdio bridge both answer
//! in these terms, and the HTTP edge renders them.

use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;

use super::reply::{ErrorReply, RETRY_SOON};

/// A boxed error for the response stream.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The upstream's response body, as chunks, never buffered whole (a
/// `tools/list` JSON result excepted, to filter it).
pub(crate) type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send + Sync>>;

/// What came back from the upstream.
pub(crate) struct Forwarded {
    /// The upstream's status.
    pub status: u16,
    /// Its headers, less hop-by-hop and gateway-private ones.
    pub headers: HeaderMap,
    /// Its body.
    pub body: ForwardedBody,
}

/// A forwarded body, in the cheapest form that serves it.
pub(crate) enum ForwardedBody {
    /// The upstream's body as it arrives: its length (when declared) is
    /// kept, so the answer is written with its head in one go.
    Upstream(Incoming),
    /// A body the gateway rewrites or produces event by event (SSE).
    Stream(BodyStream),
    /// A body the gateway holds whole (a filtered JSON result, its own
    /// answers).
    Full(Bytes),
}

impl ForwardedBody {
    /// The body as an `http_body::Body` for the server.
    pub(crate) fn into_http_body(
        self,
    ) -> http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError> {
        match self {
            Self::Upstream(body) => body.map_err(BoxError::from).boxed_unsync(),
            Self::Stream(stream) => {
                http_body_util::StreamBody::new(futures_util::StreamExt::map(stream, |chunk| {
                    chunk.map(hyper::body::Frame::data)
                }))
                .boxed_unsync()
            }
            Self::Full(bytes) => Full::new(bytes)
                .map_err(|never| match never {})
                .boxed_unsync(),
        }
    }
}

/// Why forwarding failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamFailure {
    /// No connection, or the exchange broke: 502.
    #[error("the upstream could not be reached")]
    Unreachable,
    /// No response head in time: 504.
    #[error("the upstream did not answer in time")]
    Timeout,
    /// The upstream refused the gateway's credential (401): 502.
    #[error("the upstream refused the gateway's credential")]
    CredentialRefused,
    /// The upstream failed (a 5xx of its own) or redirected (a 3xx, which
    /// would point the client around the gateway): 502, so that a failure
    /// upstream never reads as the gateway's.
    #[error("the upstream failed (HTTP {0})")]
    Failed(u16),
    /// A `tools/list` result that cannot be read to filter it: 502.
    #[error("the upstream's tools/list result could not be filtered")]
    Unfilterable,
    /// Stdio: the child exited (or was stopped) before answering: 502.
    #[error("the upstream process exited")]
    Exited,
    /// Stdio: no live session with this id for this caller: 404 (MCP
    /// clients then start a new session).
    #[error("no such session")]
    SessionNotFound,
    /// Stdio: the message needs a session (send `initialize` first): 400.
    #[error("this upstream needs a session: send initialize first")]
    SessionRequired,
    /// Stdio: a request with this id is already in flight in the session:
    /// 400.
    #[error("a request with this id is already in flight")]
    InFlight,
    /// Stdio: every child slot is taken (or the gateway is stopping): 503
    /// with `Retry-After`.
    #[error("the gateway runs as many upstream processes as it may; retry later")]
    Busy,
    /// An `initialize` while the session table is full of other agents'
    /// live sessions (`super::sessions`): 503 with `Retry-After`.
    #[error("the gateway holds as many MCP sessions as it may; retry later")]
    SessionsFull,
}

impl UpstreamFailure {
    /// The answer the agent gets in place of the upstream's.
    pub(crate) fn reply(&self) -> ErrorReply {
        let (status, code) = match self {
            Self::Timeout => (504, -32002),
            Self::SessionNotFound => (404, -32600),
            Self::SessionRequired | Self::InFlight => (400, -32600),
            Self::Busy | Self::SessionsFull => {
                return ErrorReply::new(503, -32002, self.to_string()).retry_after(RETRY_SOON);
            }
            Self::Unreachable
            | Self::CredentialRefused
            | Self::Failed(_)
            | Self::Unfilterable
            | Self::Exited => (502, -32002),
        };
        ErrorReply::new(status, code, self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_upstream_failure_says_its_status_and_code() {
        let cases = [
            (UpstreamFailure::Unreachable, 502, -32002),
            (UpstreamFailure::Timeout, 504, -32002),
            (UpstreamFailure::CredentialRefused, 502, -32002),
            (UpstreamFailure::Failed(500), 502, -32002),
            (UpstreamFailure::Unfilterable, 502, -32002),
            (UpstreamFailure::Exited, 502, -32002),
            (UpstreamFailure::SessionNotFound, 404, -32600),
            (UpstreamFailure::SessionRequired, 400, -32600),
            (UpstreamFailure::InFlight, 400, -32600),
            (UpstreamFailure::Busy, 503, -32002),
            (UpstreamFailure::SessionsFull, 503, -32002),
        ];
        for (failure, status, code) in cases {
            let reply = failure.reply();
            assert_eq!((reply.status, reply.code), (status, code), "{failure:?}");
            assert_eq!(reply.message, failure.to_string());
            assert!(!reply.challenge);
            assert_eq!(reply.retry_after.is_some(), status == 503, "{failure:?}");
            assert_eq!(reply.retry_after.unwrap_or(RETRY_SOON), RETRY_SOON);
        }
        assert_eq!(
            UpstreamFailure::Failed(503).reply().message,
            "the upstream failed (HTTP 503)"
        );
    }
}
