//! The gateway's SSE rewriter (`gateway::sse`) against an event stream
//! client as WHATWG HTML specifies it ("Interpreting an event stream").

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{FutureExt as _, StreamExt as _};
use serde_json::json;

use super::decoders::{Doc, FOLDS, pick};
use crate::gateway::answer::BoxError;
use crate::gateway::sse::{IdSealer, SseRewriter};
use crate::proto::gnap::AccessRight;
use crate::proto::mcp::access::{UpstreamGrant, carries_tool_list};
use crate::proto::mcp::event_id::{Binding, EventIds};

/// The one tool the fuzzed grant allows.
const ALLOWED: &str = "search_issues";

/// What a client holds after each blank line: its last event id, and the
/// event dispatched (type, data), if any.
#[derive(Debug, Clone, PartialEq)]
struct Dispatch {
    id: String,
    event: Option<(String, String)>,
}

/// An event stream client: decodes UTF-8 (replacing what is not), drops
/// one leading BOM, splits lines at CRLF, LF or CR and dispatches at each
/// blank line; a last line without its end is discarded.
fn client_reads(stream: &[u8]) -> Vec<Dispatch> {
    let text = String::from_utf8_lossy(stream);
    let mut rest = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut out = Vec::new();
    let (mut data, mut kind, mut id) = (String::new(), String::new(), String::new());
    while let Some(end) = rest.find(['\r', '\n']) {
        let line = &rest[..end];
        let after = if rest[end..].starts_with("\r\n") {
            end + 2
        } else {
            end + 1
        };
        rest = &rest[after..];
        if line.is_empty() {
            let event = (!data.is_empty()).then(|| {
                data.pop();
                let kind = if kind.is_empty() { "message" } else { &kind };
                (kind.to_owned(), std::mem::take(&mut data))
            });
            out.push(Dispatch {
                id: id.clone(),
                event,
            });
            data.clear();
            kind.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match name {
            "event" => value.clone_into(&mut kind),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => value.clone_into(&mut id),
            _ => {}
        }
    }
    out
}

fn sealer() -> IdSealer {
    IdSealer {
        ids: Arc::new(EventIds::new([7; 32])),
        binding: Binding {
            thumbprint: "k".into(),
            credential_set: None,
            upstream: "gh".into(),
            session: Some("s".into()),
        },
    }
}

fn grant() -> UpstreamGrant {
    let rights: Vec<AccessRight> =
        serde_json::from_value(json!([{"type": "mcp", "identifier": "gh", "tools": [ALLOWED]}]))
            .expect("rights");
    UpstreamGrant::for_upstream(&rights, "gh").expect("a grant at gh")
}

/// Runs the rewriter over `stream` cut into chunks of the sizes `cuts`
/// gives in turn; `None` when it ended in an error.
fn rewrite(stream: &[u8], cuts: &[usize], grant: Option<UpstreamGrant>) -> Option<Vec<u8>> {
    let mut chunks: Vec<Result<Bytes, BoxError>> = Vec::new();
    let mut at = 0;
    for cut in cuts.iter().cycle() {
        if at >= stream.len() {
            break;
        }
        let end = (at + cut).min(stream.len());
        chunks.push(Ok(Bytes::copy_from_slice(&stream[at..end])));
        at = end;
    }
    let mut rewriter = SseRewriter::over(
        Box::pin(futures_util::stream::iter(chunks)),
        grant,
        sealer(),
    );
    let mut out = Vec::new();
    // The chunks are all there: the rewriter never waits.
    while let Some(item) = rewriter.next().now_or_never().expect("never pending") {
        out.extend_from_slice(&item.ok()?);
    }
    Some(out)
}

/// The tool names some decoder reads in a JSON answer (or batch) as the
/// `result.tools[].name` a client shows.
fn listed_tools(data: &str) -> Vec<String> {
    let Ok(doc) = serde_json::from_str::<Doc>(data) else {
        return Vec::new();
    };
    let answers = match doc {
        Doc::Array(items) => items,
        one => vec![one],
    };
    let mut names = Vec::new();
    for answer in &answers {
        let Doc::Object(answer) = answer else {
            continue;
        };
        for fold in FOLDS {
            for last in [false, true] {
                let Some(Doc::Object(result)) = pick(answer, "result", fold, last) else {
                    continue;
                };
                let Some(Doc::Array(tools)) = pick(result, "tools", fold, last) else {
                    continue;
                };
                for tool in tools {
                    if let Doc::Object(tool) = tool
                        && let Some(Doc::Scalar(serde_json::Value::String(name))) =
                            pick(tool, "name", fold, last)
                    {
                        names.push(name.clone());
                    }
                }
            }
        }
    }
    names
}

/// The SSE rewriter.
///
/// Input: two bytes that pick chunk sizes, then the upstream's stream.
/// Run without and with a grant limited to one tool, the rewriter's output,
/// read by a WHATWG client, must:
/// - be UTF-8, and the same whatever the chunking;
/// - give the client only event ids sealed for the call (or empty);
/// - show no tool list naming another tool, to any decoder model;
/// - dispatch a subsequence of the events the upstream's stream dispatches
///   to the same client (untouched without a grant; with one, a tool list
///   may have been filtered).
pub fn sse_filter(data: &[u8]) {
    let [a, b, stream @ ..] = data else {
        return;
    };
    let cuts = [usize::from(*a % 8) + 1, usize::from(*b % 64) + 1];
    let sealer = sealer();
    let upstream = client_reads(stream);
    for grant in [None, Some(grant())] {
        let filtering = grant.is_some();
        let Some(out) = rewrite(stream, &cuts, grant.clone()) else {
            continue;
        };
        assert_eq!(
            rewrite(stream, &[stream.len().max(1)], grant),
            Some(out.clone()),
            "the output depends on the chunking"
        );
        assert!(std::str::from_utf8(&out).is_ok(), "output is not UTF-8");
        let seen = client_reads(&out);
        for dispatch in &seen {
            assert!(
                dispatch.id.is_empty() || sealer.ids.open(&sealer.binding, &dispatch.id).is_some(),
                "the client holds an unsealed id {:?}",
                dispatch.id
            );
        }
        let events: Vec<&(String, String)> = seen.iter().filter_map(|d| d.event.as_ref()).collect();
        if filtering {
            for (_, data) in &events {
                for name in listed_tools(data) {
                    assert_eq!(name, ALLOWED, "a withheld tool reaches the client");
                }
            }
        }
        let mut sent = upstream.iter().filter_map(|d| d.event.as_ref());
        for event in &events {
            let found = sent.any(|original| {
                original == *event
                    || (filtering
                        && original.0 == event.0
                        && carries_tool_list(original.1.as_bytes()) == Some(true))
            });
            assert!(
                found,
                "the client sees an event the upstream did not send: {event:?}"
            );
        }
    }
}
