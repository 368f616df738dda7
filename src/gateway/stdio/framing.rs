//! The MCP stdio transport's framing, sans I/O: one JSON-RPC message per
//! line, lines ended by `\n` (a `\r` before it is dropped too), no embedded
//! newlines. A line longer than the limit is reported once and its bytes
//! are discarded up to the next newline, so a runaway child cannot make the
//! gateway buffer without bound.

use serde_json::Value;

/// Longest line accepted from a child's stdout (one JSON-RPC message).
pub(crate) const MAX_LINE: usize = 8 * 1024 * 1024;
/// Longest stderr line logged whole; longer ones are dropped with a note.
pub(crate) const MAX_LOG_LINE: usize = 16 * 1024;

/// What the framer found in the bytes it was fed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A complete, non-empty line, without its terminator.
    Line(Vec<u8>),
    /// A line went past the limit; it is being discarded.
    TooLong,
}

/// Splits a byte stream into lines of at most `max` bytes.
#[derive(Debug)]
pub(crate) struct LineFramer {
    buf: Vec<u8>,
    max: usize,
    discarding: bool,
}

impl LineFramer {
    /// A framer for lines of at most `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            max,
            discarding: false,
        }
    }

    /// Feeds `chunk`, appending what it completes to `out`.
    pub(crate) fn push(&mut self, mut chunk: &[u8], out: &mut Vec<Frame>) {
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            let piece = &chunk[..end];
            chunk = &chunk[end + 1..];
            if self.discarding {
                self.discarding = false;
                continue;
            }
            if self.buf.len() + piece.len() > self.max {
                self.buf.clear();
                out.push(Frame::TooLong);
                continue;
            }
            self.buf.extend_from_slice(piece);
            self.emit(out);
        }
        if self.discarding || chunk.is_empty() {
            return;
        }
        if self.buf.len() + chunk.len() > self.max {
            self.buf.clear();
            self.discarding = true;
            out.push(Frame::TooLong);
        } else {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// At end of stream: an unterminated last line, if any.
    pub(crate) fn finish(&mut self) -> Option<Frame> {
        let mut out = Vec::new();
        if !self.discarding {
            self.emit(&mut out);
        }
        self.buf.clear();
        self.discarding = false;
        out.pop()
    }

    fn emit(&mut self, out: &mut Vec<Frame>) {
        let mut line = std::mem::take(&mut self.buf);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if !line.is_empty() {
            out.push(Frame::Line(line));
        }
    }
}

/// One message as a line for a child's stdin: compact JSON (which escapes
/// every newline inside strings) and `\n`.
pub(crate) fn encode(message: &Value) -> Vec<u8> {
    // Serializing a `Value` cannot fail (its keys are strings).
    let mut line = serde_json::to_vec(message).unwrap_or_default();
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(framer: &mut LineFramer, chunks: &[&[u8]]) -> Vec<Frame> {
        let mut out = Vec::new();
        for chunk in chunks {
            framer.push(chunk, &mut out);
        }
        out
    }

    fn line(text: &str) -> Frame {
        Frame::Line(text.as_bytes().to_vec())
    }

    #[test]
    fn lines_are_split_across_chunks_and_crlf_and_blank_lines_are_handled() {
        let mut f = LineFramer::new(100);
        let out = feed(
            &mut f,
            &[b"{\"a\":", b"1}\n{\"b\"", b":2}\r\n\n\r\n{\"c\":3}"],
        );
        assert_eq!(out, [line("{\"a\":1}"), line("{\"b\":2}")]);
        assert_eq!(f.finish(), Some(line("{\"c\":3}")));
        assert_eq!(f.finish(), None);
    }

    #[test]
    fn an_overlong_line_is_reported_once_and_skipped_to_the_next_newline() {
        let mut f = LineFramer::new(8);
        let out = feed(&mut f, &[b"0123456", b"789abc", b"def\nok\n"]);
        assert_eq!(out, [Frame::TooLong, line("ok")]);
        // Too long within one chunk, with the newline in it.
        let out = feed(&mut f, &[b"0123456789\nfine\n"]);
        assert_eq!(out, [Frame::TooLong, line("fine")]);
        // Exactly the limit passes.
        let out = feed(&mut f, &[b"01234567\n"]);
        assert_eq!(out, [line("01234567")]);
        // Discarding at the end of the stream yields nothing more.
        let out = feed(&mut f, &[b"0123456789"]);
        assert_eq!(out, [Frame::TooLong]);
        assert_eq!(f.finish(), None);
    }

    #[test]
    fn encoded_messages_are_one_line() {
        let message = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"text": "a\nb\r\nc"}});
        let bytes = encode(&message);
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(bytes.last(), Some(&b'\n'));
        let mut f = LineFramer::new(MAX_LINE);
        let out = feed(&mut f, &[&bytes]);
        let [Frame::Line(l)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(serde_json::from_slice::<Value>(l).unwrap(), message);
    }
}
