//! A server-sent events reader (HTML Living Standard §9.2.6), sans I/O: feed
//! it the bytes of a `text/event-stream` body as they arrive, take the
//! complete events out. Lines end in CRLF, LF or CR; `data` lines of one
//! event join with LF; comments and unknown fields are skipped.

/// One event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// `event`: the type, if named.
    pub kind: Option<String>,
    /// `data`, its lines joined with LF.
    pub data: String,
    /// `id`, if the event set one.
    pub id: Option<String>,
}

/// The incremental reader.
#[derive(Debug, Default)]
pub struct SseReader {
    buf: Vec<u8>,
    /// A CR ended the last line: a following LF belongs to it.
    after_cr: bool,
    current: Event,
    has_data: bool,
    /// The most recent event id (for `Last-Event-ID`).
    pub last_id: Option<String>,
    limit: usize,
}

/// An event grew past the reader's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a server-sent event is too large")]
pub struct TooLarge;

impl SseReader {
    /// A reader holding at most `limit` bytes of one event.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Feeds `bytes`, returning the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Event>, TooLarge> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.buf);
                    if let Some(event) = self.line(&line) {
                        out.push(event);
                    }
                }
                _ => {
                    if self.buf.len() + self.current.data.len() >= self.limit {
                        return Err(TooLarge);
                    }
                    self.buf.push(b);
                }
            }
        }
        Ok(out)
    }

    fn line(&mut self, line: &[u8]) -> Option<Event> {
        if line.is_empty() {
            let event = std::mem::take(&mut self.current);
            let had = std::mem::replace(&mut self.has_data, false);
            return had.then_some(event);
        }
        if line.first() == Some(&b':') {
            return None;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (text.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.current.kind = Some(value.to_owned()),
            "id" if !value.contains('\0') => {
                self.current.id = Some(value.to_owned());
                self.last_id = Some(value.to_owned());
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_split_across_chunks_and_line_endings() {
        let mut r = SseReader::new(1024);
        let mut events = Vec::new();
        for chunk in [
            &b"event: message\r\nid: 1\r\ndata: {\"a\":"[..],
            b"1}\r\n\r",
            b"\n: comment\n\ndata: x\rdata: y\r\r",
            b"retry: 10\n\n",
        ] {
            events.extend(r.feed(chunk).unwrap());
        }
        assert_eq!(
            events,
            [
                Event {
                    kind: Some("message".into()),
                    data: "{\"a\":1}".into(),
                    id: Some("1".into())
                },
                Event {
                    kind: None,
                    data: "x\ny".into(),
                    id: None
                },
            ]
        );
        assert_eq!(r.last_id.as_deref(), Some("1"));
    }

    #[test]
    fn sse_event_over_the_limit_is_refused() {
        let mut r = SseReader::new(8);
        assert_eq!(r.feed(b"data: 0123456789\n"), Err(TooLarge));
    }
}
