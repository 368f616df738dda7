//! A child's messages as Streamable HTTP answers: JSON, an empty status,
//! or an SSE stream that ends at the request's response.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use hyper::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::exchange::Answer;
use super::session::Out;
use crate::gateway::answer::{BoxError, Forwarded, ForwardedBody, UpstreamFailure};
use crate::proto::httpsig::HttpRequest;

/// The session header.
pub(super) const SESSION_HEADER: &str = "mcp-session-id";

pub(super) fn header(request: &HttpRequest, name: &str) -> Option<String> {
    request
        .fields
        .lines(name)
        .next()
        .map(|v| String::from_utf8_lossy(v).trim().to_owned())
}

pub(super) fn accepts_sse(request: &HttpRequest) -> bool {
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

pub(super) fn to_forwarded(answer: Answer, agent_id: Value, session: &str) -> Forwarded {
    match answer {
        Answer::Json(response) => json_answer(&response, Some(session)),
        Answer::Stream(first, rx) => sse(Some(first), rx, Some(agent_id), session),
    }
}

pub(super) fn json_answer(response: &Value, session: Option<&str>) -> Forwarded {
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

pub(super) fn empty(status: u16, session: Option<&str>) -> Forwarded {
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
pub(super) fn sse(
    first: Option<Out>,
    rx: mpsc::Receiver<Out>,
    id: Option<Value>,
    session: &str,
) -> Forwarded {
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
fn sse_event(message: &Value) -> Bytes {
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
                    // Once streaming, the status is sent: the failure
                    // becomes the stream's last event.
                    let failure = UpstreamFailure::Exited.reply();
                    let error = json!({"jsonrpc": "2.0", "id": id, "error": {
                        "code": failure.code, "message": failure.message}});
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
