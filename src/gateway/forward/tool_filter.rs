//! Reading an upstream's JSON answer whole to filter its tool lists.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use serde_json::Value;

use crate::gateway::answer::UpstreamFailure;
use crate::gateway::sse::MAX_FILTERED;
use crate::proto::mcp::access::{UpstreamGrant, carries_tool_list};

/// An upstream's body, whole (at most [`MAX_FILTERED`] bytes). Read until
/// the body says it is complete (its declared length reached), not until
/// its channel closes: hyper's client closes it only on a later turn of
/// its connection task, and waiting for that costs every filtered answer a
/// round trip between tasks. A body in one frame (a small answer) is kept
/// as that frame, uncopied.
pub(super) async fn collect(
    mut body: Incoming,
    timeout: Duration,
) -> Result<Bytes, UpstreamFailure> {
    use hyper::body::Body as _;
    let read = async move {
        let mut first: Option<Bytes> = None;
        let mut more = BytesMut::new();
        while !body.is_end_stream() {
            let Some(frame) = body.frame().await else {
                break;
            };
            let Ok(data) = frame
                .map_err(|_| UpstreamFailure::Unfilterable)?
                .into_data()
            else {
                // Trailers: nothing of the answer.
                continue;
            };
            match first.take() {
                None if more.is_empty() => first = Some(data),
                held => {
                    more.extend_from_slice(&held.unwrap_or_default());
                    more.extend_from_slice(&data);
                }
            }
            if first.as_ref().map_or(0, Bytes::len) + more.len() > MAX_FILTERED {
                return Err(UpstreamFailure::Unfilterable);
            }
        }
        Ok(first.unwrap_or_else(|| more.freeze()))
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| UpstreamFailure::Timeout)?
}

/// A JSON answer with its tool lists filtered. One that carries none (most
/// do not) goes back as it came; an empty one (a 202) too; one that is not
/// JSON cannot be filtered.
pub(super) async fn filter_json(
    body: Incoming,
    grant: &UpstreamGrant,
    timeout: Duration,
) -> Result<Bytes, UpstreamFailure> {
    let collected = collect(body, timeout).await?;
    if collected.is_empty() {
        return Ok(collected);
    }
    match carries_tool_list(&collected) {
        None => return Err(UpstreamFailure::Unfilterable),
        Some(false) => return Ok(collected),
        Some(true) => {}
    }
    let mut value: Value =
        serde_json::from_slice(&collected).map_err(|_| UpstreamFailure::Unfilterable)?;
    grant.filter_tools_list(&mut value);
    serde_json::to_vec(&value)
        .map(Bytes::from)
        .map_err(|_| UpstreamFailure::Unfilterable)
}
