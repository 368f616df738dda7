//! An upstream's event stream on its way to the agent, rewritten event by
//! event: each event passes as soon as it is complete; its `id` is sealed
//! to the call's binding (`proto::mcp::event_id`), so the agent can resume
//! only streams it received; and, for a token whose tools are limited, an
//! answer carrying a tool list is filtered. Nothing is held beyond one
//! event.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http_body_util::BodyDataStream;
use hyper::body::Incoming;
use serde_json::Value;

use super::answer::BoxError;
use crate::proto::mcp::access::{UpstreamGrant, carries_tool_list};
use crate::proto::mcp::event_id::{Binding, EventIds};

/// Largest JSON `tools/list` result the gateway reads to filter, and largest
/// single SSE event it holds while filtering one.
pub(crate) const MAX_FILTERED: usize = 8 * 1024 * 1024;

/// The chunks of a body as they arrive.
pub(crate) type Chunks = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send + Sync>>;

/// Seals the event ids of one stream for the call that receives it.
#[derive(Debug, Clone)]
pub(crate) struct IdSealer {
    /// The gateway's key.
    pub ids: Arc<EventIds>,
    /// Who receives the stream, from which upstream, in which session.
    pub binding: Binding,
}

/// UTF-8 of U+FEFF, the byte order mark.
const BOM: &[u8] = "\u{feff}".as_bytes();

/// The rewriting stream.
pub(crate) struct SseRewriter {
    body: Chunks,
    grant: Option<UpstreamGrant>,
    ids: IdSealer,
    pending: BytesMut,
    done: bool,
    /// Whether the start of the stream was looked at for a byte order mark.
    started: bool,
    /// Whether anything was passed on yet.
    sent: bool,
}

impl SseRewriter {
    /// Rewrites `body`; `grant` filters tool lists when the token's tools
    /// are limited.
    pub(crate) fn new(body: Incoming, grant: Option<UpstreamGrant>, ids: IdSealer) -> Self {
        use futures_util::TryStreamExt as _;
        Self::over(
            Box::pin(BodyDataStream::new(body).map_err(BoxError::from)),
            grant,
            ids,
        )
    }

    /// Rewrites a stream of chunks (the fuzz hook's way in).
    pub(crate) fn over(body: Chunks, grant: Option<UpstreamGrant>, ids: IdSealer) -> Self {
        Self {
            body,
            grant,
            ids,
            pending: BytesMut::new(),
            done: false,
            started: false,
            sent: false,
        }
    }

    /// The complete events at the head of `pending`, rewritten.
    fn drain_events(&mut self) -> Option<Bytes> {
        let mut out = BytesMut::new();
        while let Some(end) = event_end(&self.pending) {
            let event = self.pending.split_to(end);
            out.extend_from_slice(&rewrite_event(&event, self.grant.as_ref(), &self.ids));
        }
        if out.is_empty() {
            return None;
        }
        // The agent's client drops a BOM at the start of what it gets. One
        // the upstream's client read as text (a second one, or one after a
        // dropped event) must stay text: `\u{feff}data` was not rewritten
        // (found by the `sse_filter` fuzz target).
        if !std::mem::replace(&mut self.sent, true) && out.starts_with(BOM) {
            let mut first = BytesMut::from(BOM);
            first.extend_from_slice(&out);
            out = first;
        }
        Some(out.freeze())
    }
}

/// Where the first complete SSE event in `buf` ends (after its blank line).
fn event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        let line_end = match buf[i] {
            b'\n' => i + 1,
            b'\r' if buf.get(i + 1) == Some(&b'\n') => i + 2,
            b'\r' if i + 1 < buf.len() => i + 1,
            // A lone CR at the end may be half of CRLF: wait.
            b'\r' => return None,
            _ => {
                i += 1;
                continue;
            }
        };
        // A line that starts right at a line end is empty: the event ends.
        let empty = i == 0 || matches!(buf.get(i - 1), Some(b'\n' | b'\r'));
        if empty {
            return Some(line_end);
        }
        i = line_end;
    }
    None
}

/// A line's field name and value, as an SSE client reads them (WHATWG
/// HTML, "Interpreting an event stream"): up to the first colon, the value
/// without one leading space; a line without a colon is a field with an
/// empty value. `None` for a comment.
fn field(line: &str) -> Option<(&str, &str)> {
    if line.starts_with(':') {
        return None;
    }
    Some(match line.split_once(':') {
        Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
        None => (line, ""),
    })
}

/// One SSE event (with its terminating blank line), its id sealed and, with
/// a `grant`, its tool list filtered.
///
/// An event that is not UTF-8 is dropped (an event stream is UTF-8, and
/// its id could not be read to seal it); with a `grant`, so is one whose
/// data is not JSON (every MCP message is, and one that cannot be read
/// cannot be filtered).
fn rewrite_event(event: &[u8], grant: Option<&UpstreamGrant>, ids: &IdSealer) -> Bytes {
    let Ok(text) = std::str::from_utf8(event) else {
        return Bytes::new();
    };
    let lines: Vec<&str> = text.split(['\n', '\r']).filter(|l| !l.is_empty()).collect();
    let has_id = lines.iter().any(|l| matches!(field(l), Some(("id", _))));
    let data = match grant.map(|grant| filtered_data(&lines, grant)) {
        None => None,
        Some(None) => return Bytes::new(),
        Some(Some(data)) => data,
    };
    if !has_id && data.is_none() {
        return Bytes::copy_from_slice(event);
    }
    let mut out = String::with_capacity(event.len() + 64);
    let mut wrote_data = false;
    for line in lines {
        match field(line) {
            Some(("id", value)) => {
                // A NUL makes a client ignore the id; an empty one resets
                // the client's last id, and names no stream to resume.
                if value.contains('\0') {
                    continue;
                }
                out.push_str("id:");
                if !value.is_empty() {
                    out.push(' ');
                    out.push_str(&ids.ids.seal(&ids.binding, value));
                }
            }
            Some(("data", _)) if data.is_some() => {
                if wrote_data {
                    continue;
                }
                wrote_data = true;
                out.push_str("data: ");
                out.push_str(data.as_deref().unwrap_or_default());
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// The data of an event, rewritten when it carries a tool list:
/// `Ok(None)` when it can pass as it is (no data, a priming event, no tool
/// list), `Ok(Some(json))` filtered, `None` when it cannot be read (the
/// event is dropped).
fn filtered_data(lines: &[&str], grant: &UpstreamGrant) -> Option<Option<String>> {
    let data: Vec<&str> = lines
        .iter()
        .filter_map(|l| match field(l) {
            Some(("data", value)) => Some(value),
            _ => None,
        })
        .collect();
    let data = data.join("\n");
    if data.trim().is_empty() {
        // No message (an id alone, a keep-alive): nothing to filter.
        return Some(None);
    }
    // Read without building values first: most events carry no tool list.
    // One that does is written anew from its parsed value, so a `result`
    // given twice cannot show a first-wins client the unfiltered one.
    if !carries_tool_list(data.as_bytes())? {
        return Some(None);
    }
    let mut value: Value = serde_json::from_str(&data).ok()?;
    grant.filter_tools_list(&mut value);
    Some(Some(value.to_string()))
}

impl Stream for SseRewriter {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.done {
                // A last event without its blank line is dropped: an SSE
                // client discards it (WHATWG HTML, "Interpreting an event
                // stream"), and passed on unrewritten it could still show
                // a lenient one an unsealed id or a withheld tool.
                self.pending.clear();
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.body).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => self.done = true,
                Poll::Ready(Some(Err(e))) => {
                    self.done = true;
                    self.pending.clear();
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(chunk))) => {
                    self.pending.extend_from_slice(&chunk);
                    if !self.started {
                        // A client ignores one BOM before the first line
                        // (WHATWG HTML): read as part of a field name here,
                        // it would hide the first event's `data` and `id`
                        // from the rewriting. Dropped, as a client would.
                        if self.pending.len() < BOM.len() && BOM.starts_with(&self.pending) {
                            continue;
                        }
                        if self.pending.starts_with(BOM) {
                            let _ = self.pending.split_to(BOM.len());
                        }
                        self.started = true;
                    }
                    if let Some(out) = self.drain_events() {
                        return Poll::Ready(Some(Ok(out)));
                    }
                    if self.pending.len() > MAX_FILTERED {
                        self.done = true;
                        self.pending.clear();
                        return Poll::Ready(Some(Err("an SSE event is too large".into())));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grant() -> UpstreamGrant {
        let rights: Vec<crate::proto::gnap::AccessRight> = serde_json::from_value(
            json!([{"type": "mcp", "identifier": "gh", "tools": ["search_issues"]}]),
        )
        .unwrap();
        UpstreamGrant::for_upstream(&rights, "gh").unwrap()
    }

    fn sealer() -> IdSealer {
        IdSealer {
            ids: Arc::new(EventIds::new([3; 32])),
            binding: Binding {
                thumbprint: "k".into(),
                credential_set: None,
                upstream: "gh".into(),
                session: Some("s".into()),
            },
        }
    }

    fn sealed(id: &str) -> String {
        let s = sealer();
        s.ids.seal(&s.binding, id)
    }

    #[test]
    fn sse_events_are_split_at_blank_lines() {
        assert_eq!(event_end(b"data: x\n\nrest"), Some(9));
        assert_eq!(event_end(b"data: x\r\n\r\nrest"), Some(11));
        assert_eq!(event_end(b"data: x\r\rmore"), Some(9));
        // A CR at the end may be the first half of a CRLF: wait for more.
        assert_eq!(event_end(b"data: x\r\r"), None);
        assert_eq!(event_end(b"data: x\r"), None);
        assert_eq!(event_end(b"data: x\n"), None);
        assert_eq!(event_end(b"\n"), Some(1));
    }

    #[test]
    fn every_answer_with_a_tool_list_is_filtered_and_other_events_pass_untouched() {
        // Whatever its id: an upstream may answer `1.0` with `1`, and on a
        // resumed stream the answer is to an earlier request.
        for id in [json!(2), json!(2.0), json!("x")] {
            let result = json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [{"name": "search_issues"}, {"name": "delete_repo"}]}});
            let event = format!("event: message\r\nid: e-3\r\ndata: {result}\r\n\r\n");
            let out = rewrite_event(event.as_bytes(), Some(&grant()), &sealer());
            let text = String::from_utf8(out.to_vec()).unwrap();
            let head = format!("event: message\nid: {}\ndata: ", sealed("e-3"));
            assert!(text.starts_with(&head), "{text}");
            assert!(text.ends_with("\n\n"));
            assert!(text.contains("search_issues") && !text.contains("delete_repo"));
        }
        // A `result` given twice: the list is filtered wherever it is.
        let twice = "data: {\"id\":1,\"result\":{\"tools\":[{\"name\":\"delete_repo\"}]},\"result\":{}}\n\n";
        let out = rewrite_event(twice.as_bytes(), Some(&grant()), &sealer());
        assert!(!String::from_utf8_lossy(&out).contains("delete_repo"));

        // Another answer, a notification, a comment, an event without an
        // id: byte for byte, filtered or not.
        for other in [
            "data: {\"jsonrpc\":\"2.0\",\"id\":8,\"result\":{\"content\":[]}}\n\n",
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n",
            ": keep-alive\n\n",
            "retry: 100\n\n",
        ] {
            for grant in [None, Some(grant())] {
                let out = rewrite_event(other.as_bytes(), grant.as_ref(), &sealer());
                assert_eq!(out, other.as_bytes());
            }
        }

        // What cannot be read cannot be filtered: dropped.
        for unreadable in [
            &b"data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"delete_repo\"}]}, 1e999}\n\n"[..],
            b"data: {\"result\":{\"tools\":[{\"name\":\"delete_repo\xff\"}]}}\n\n",
        ] {
            assert!(rewrite_event(unreadable, Some(&grant()), &sealer()).is_empty());
        }
    }

    #[test]
    fn every_event_id_going_to_the_agent_is_sealed() {
        for (event, id) in [
            ("id: e-1\ndata: \n\n", "e-1"),
            (
                "id:e-1\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
                "e-1",
            ),
            ("data: {}\r\nid: stream_7 \r\n\r\n", "stream_7 "),
        ] {
            for grant in [None, Some(grant())] {
                let out = rewrite_event(event.as_bytes(), grant.as_ref(), &sealer());
                let text = String::from_utf8(out.to_vec()).unwrap();
                let ids: Vec<&str> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("id: "))
                    .collect();
                assert_eq!(ids, [sealed(id)], "{text}");
                assert!(!text.contains(&format!("id: {id}\n")), "{text}");
            }
        }
        // An empty id resets the client's and stays empty; one with a NUL,
        // which a client ignores, goes; a non-UTF-8 event goes whole.
        let out = rewrite_event(b"id\ndata: \n\n", None, &sealer());
        assert_eq!(out, &b"id:\ndata: \n\n"[..]);
        let out = rewrite_event(b"id: a\0b\ndata: \n\n", None, &sealer());
        assert_eq!(out, &b"data: \n\n"[..]);
        assert!(rewrite_event(b"id: \xff\n\n", None, &sealer()).is_empty());
    }

    /// Runs the rewriter over `chunks` and returns what the agent gets.
    fn rewritten(chunks: Vec<Vec<u8>>, grant: Option<UpstreamGrant>) -> String {
        let chunks: Vec<Result<Bytes, BoxError>> =
            chunks.into_iter().map(|c| Ok(Bytes::from(c))).collect();
        let rewriter = SseRewriter::over(
            Box::pin(futures_util::stream::iter(chunks)),
            grant,
            sealer(),
        );
        let out: Vec<Bytes> = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(futures_util::StreamExt::collect::<Vec<_>>(rewriter))
            .into_iter()
            .map(Result::unwrap)
            .collect();
        out.iter().map(|b| String::from_utf8_lossy(b)).collect()
    }

    #[test]
    fn a_byte_order_mark_before_the_first_event_hides_neither_its_data_nor_its_id() {
        // Found by the `sse_filter` fuzz target: a client drops one BOM at
        // the start of the stream, the rewriter read it as part of the
        // first field's name, so `\u{feff}data:` passed unfiltered and
        // `\u{feff}id:` unsealed.
        let result = json!({"jsonrpc": "2.0", "id": 2, "result": {"tools": [{"name": "search_issues"}, {"name": "delete_repo"}]}});
        let stream = format!("\u{feff}id: e-1\ndata: {result}\n\n").into_bytes();
        for cut in 0..=stream.len() {
            let chunks = vec![stream[..cut].to_vec(), stream[cut..].to_vec()];
            let text = rewritten(chunks.clone(), Some(grant()));
            assert!(!text.starts_with('\u{feff}'), "{cut}: {text}");
            assert!(
                text.contains("search_issues") && !text.contains("delete_repo"),
                "{cut}: {text}"
            );
            assert!(
                text.starts_with(&format!("id: {}\n", sealed("e-1"))),
                "{cut}: {text}"
            );
            let text = rewritten(chunks, None);
            assert!(
                text.starts_with(&format!("id: {}\n", sealed("e-1"))),
                "{cut}: {text}"
            );
        }
        // Only the first one: a BOM later in the stream is text.
        let text = rewritten(vec![b"data: a\n\n\xef\xbb\xbfdata: b\n\n".to_vec()], None);
        assert_eq!(text, "data: a\n\n\u{feff}data: b\n\n");
    }

    #[test]
    fn a_byte_order_mark_the_upstreams_client_reads_as_text_stays_text() {
        // Found by the `sse_filter` fuzz target: the upstream's client reads
        // `\u{feff}data` as another field; passed on first, the agent's
        // client dropped the BOM and read an unfiltered tool list.
        let result = json!({"jsonrpc": "2.0", "id": 2, "result": {"tools": [{"name": "search_issues"}, {"name": "delete_repo"}]}});
        for stream in [
            format!("\u{feff}\u{feff}data: {result}\n\n").into_bytes(),
            [
                &b"data: \xff\n\n\xef\xbb\xbf"[..],
                format!("data: {result}\n\n").as_bytes(),
            ]
            .concat(),
        ] {
            let text = rewritten(vec![stream], Some(grant()));
            let seen = text.strip_prefix('\u{feff}').unwrap_or(&text);
            assert!(
                !seen
                    .lines()
                    .any(|l| l.starts_with("data") && l.contains("delete_repo")),
                "{text}"
            );
        }
    }

    #[test]
    fn an_unfinished_last_event_is_dropped_not_passed_unfiltered() {
        let result = json!({"jsonrpc": "2.0", "id": 2, "result": {"tools": [{"name": "search_issues"}, {"name": "delete_repo"}]}});
        let chunks: Vec<Result<Bytes, BoxError>> = vec![
            Ok(Bytes::from(
                "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n",
            )),
            // The answer split over two chunks, its blank line never sent.
            Ok(Bytes::from(format!("id: e-9\ndata: {result}"))),
            Ok(Bytes::from("\n")),
        ];
        let rewriter = SseRewriter::over(
            Box::pin(futures_util::stream::iter(chunks)),
            Some(grant()),
            sealer(),
        );
        let out: Vec<Bytes> = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(futures_util::StreamExt::collect::<Vec<_>>(rewriter))
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let text: String = out.iter().map(|b| String::from_utf8_lossy(b)).collect();
        assert!(text.contains("notifications/progress"), "{text}");
        assert!(
            !text.contains("delete_repo") && !text.contains("tools") && !text.contains("e-9"),
            "{text}"
        );
    }
}
