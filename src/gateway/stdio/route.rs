//! Routing a child's messages to the HTTP exchanges waiting for them, sans
//! I/O.
//!
//! A stdio child writes one stream of messages; Streamable HTTP has one
//! exchange per client request plus an optional GET stream. A response goes
//! to the request with its id (and ends that exchange). A server request or
//! notification goes, in this order, to:
//!
//! 1. the request whose `progressToken` a `notifications/progress` names;
//! 2. the oldest request in flight whose client takes SSE: stdio carries no
//!    link between a server message and the client request that caused it,
//!    and MCP says such messages on a POST stream SHOULD relate to it — a
//!    tool's sampling request or log lines arrive while its call is in
//!    flight, so the oldest open call is the best guess;
//! 3. the session's GET stream;
//! 4. nowhere (dropped), as an HTTP server with no stream open would.
//!
//! Notifications about the session as a whole (`…/list_changed`,
//! `notifications/resources/updated`) relate to no request, so they skip
//! step 2: a call in flight is never turned into a stream by them.
//!
//! One child serves one session, so client and server ids never mix and no
//! id is rewritten.

use std::collections::HashMap;

use serde_json::Value;

/// A JSON-RPC id as a map key: `1`, `1.0` and `"1"` are told apart by type,
/// and a whole float equals its integer (a JavaScript child echoes `1.0` as
/// `1`). `None` for an id that is not a string or a number.
pub fn id_key(id: &Value) -> Option<String> {
    match id {
        Value::String(s) => Some(format!("s:{s}")),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Some(format!("n:{i}"));
            }
            if let Some(u) = n.as_u64() {
                return Some(format!("n:{u}"));
            }
            let f = n.as_f64()?;
            // Whole floats within i64 range read as their integer.
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                Some(format!("n:{}", f as i64))
            } else {
                Some(format!("n:{f}"))
            }
        }
        _ => None,
    }
}

/// Where a sink (an HTTP exchange's channel) still leads somewhere.
pub trait Sink {
    /// Whether the exchange is still listening.
    fn is_open(&self) -> bool;
}

/// A client request waiting for its response.
#[derive(Debug)]
pub struct Pending<S> {
    /// Where its messages go.
    pub sink: S,
    /// Whether its client accepts an SSE answer (and so interim messages).
    pub sse: bool,
    /// `params._meta.progressToken`, if it asked for progress.
    pub progress_token: Option<Value>,
    seq: u64,
}

/// Where one message from the child goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// To the request with this key, as its response (the exchange ends).
    Final(String),
    /// To the request with this key, before its response.
    Interim(String),
    /// To the session's GET stream.
    Stream,
    /// Nowhere.
    Drop,
}

/// A request id already in flight in the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight;

/// The requests in flight in one session, and its GET stream.
#[derive(Debug)]
pub struct Router<S> {
    pending: HashMap<String, Pending<S>>,
    stream: Option<S>,
    next_seq: u64,
}

impl<S> Default for Router<S> {
    fn default() -> Self {
        Self {
            pending: HashMap::new(),
            stream: None,
            next_seq: 0,
        }
    }
}

impl<S: Sink> Router<S> {
    /// Registers a request with key `key` (see [`id_key`]).
    pub fn add(
        &mut self,
        key: String,
        sink: S,
        sse: bool,
        progress_token: Option<Value>,
    ) -> Result<(), InFlight> {
        if self.pending.get(&key).is_some_and(|p| p.sink.is_open()) {
            return Err(InFlight);
        }
        // Requests whose client left wait for nothing: forget them, so a
        // child that never answers them cannot grow the table.
        self.pending.retain(|_, p| p.sink.is_open());
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.insert(
            key,
            Pending {
                sink,
                sse,
                progress_token,
                seq,
            },
        );
        Ok(())
    }

    /// Forgets a request (answered, timed out, or its client left).
    pub fn remove(&mut self, key: &str) -> Option<Pending<S>> {
        self.pending.remove(key)
    }

    /// The request with `key`.
    pub fn get(&self, key: &str) -> Option<&Pending<S>> {
        self.pending.get(key)
    }

    /// Opens the GET stream, replacing (and so ending) an earlier one.
    pub fn set_stream(&mut self, sink: S) -> Option<S> {
        self.stream.replace(sink)
    }

    /// The GET stream, if one is open.
    pub fn stream(&self) -> Option<&S> {
        self.stream.as_ref().filter(|s| s.is_open())
    }

    /// Closes the GET stream.
    pub fn clear_stream(&mut self) -> Option<S> {
        self.stream.take()
    }

    /// Requests in flight whose client still listens.
    pub fn in_flight(&self) -> usize {
        self.pending.values().filter(|p| p.sink.is_open()).count()
    }

    /// Where `message` (from the child) goes.
    pub fn route(&self, message: &Value) -> Delivery {
        let method = message.get("method").and_then(Value::as_str);
        let Some(method) = method else {
            // A response (or garbage): only by id.
            let key = message.get("id").and_then(id_key);
            return match key {
                Some(key)
                    if self.pending.contains_key(&key)
                        && (message.get("result").is_some() || message.get("error").is_some()) =>
                {
                    Delivery::Final(key)
                }
                _ => Delivery::Drop,
            };
        };
        let listening = |p: &Pending<S>| p.sse && p.sink.is_open();
        if method == "notifications/progress"
            && let Some(token) = message.pointer("/params/progressToken")
            && let Some((key, p)) = self
                .pending
                .iter()
                .find(|(_, p)| p.progress_token.as_ref() == Some(token))
        {
            // Progress for a request that cannot take it goes nowhere else.
            return if listening(p) {
                Delivery::Interim(key.clone())
            } else {
                Delivery::Drop
            };
        }
        if !session_wide(method)
            && let Some((key, _)) = self
                .pending
                .iter()
                .filter(|(_, p)| listening(p))
                .min_by_key(|(_, p)| p.seq)
        {
            return Delivery::Interim(key.clone());
        }
        if self.stream().is_some() {
            return Delivery::Stream;
        }
        Delivery::Drop
    }
}

/// Whether a notification is about the session as a whole, not any request.
fn session_wide(method: &str) -> bool {
    method.ends_with("/list_changed") || method == "notifications/resources/updated"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Clone)]
    struct TestSink(bool);
    impl Sink for TestSink {
        fn is_open(&self) -> bool {
            self.0
        }
    }

    fn key(id: Value) -> String {
        id_key(&id).unwrap()
    }

    #[test]
    fn ids_are_keyed_by_type_and_value() {
        assert_eq!(id_key(&json!(1)), id_key(&json!(1.0)));
        assert_ne!(id_key(&json!(1)), id_key(&json!("1")));
        assert_ne!(id_key(&json!(1)), id_key(&json!(1.5)));
        assert_eq!(id_key(&json!(u64::MAX)), Some(format!("n:{}", u64::MAX)));
        assert_eq!(id_key(&json!(null)), None);
        assert_eq!(id_key(&json!({"a": 1})), None);
    }

    #[test]
    fn responses_go_to_their_request_by_id_and_others_are_dropped() {
        let mut r = Router::default();
        r.add(key(json!(1)), TestSink(true), false, None).unwrap();
        r.add(key(json!("a")), TestSink(true), true, None).unwrap();
        assert_eq!(
            r.route(&json!({"jsonrpc": "2.0", "id": 1, "result": {}})),
            Delivery::Final(key(json!(1)))
        );
        assert_eq!(
            r.route(&json!({"jsonrpc": "2.0", "id": "a", "error": {"code": 1, "message": "x"}})),
            Delivery::Final(key(json!("a")))
        );
        for stray in [
            json!({"jsonrpc": "2.0", "id": 2, "result": {}}),
            json!({"jsonrpc": "2.0", "id": "1", "result": {}}),
            json!({"jsonrpc": "2.0", "id": 1}),
            json!({"jsonrpc": "2.0"}),
        ] {
            assert_eq!(r.route(&stray), Delivery::Drop, "{stray}");
        }
        // A duplicate id while the first is in flight is refused.
        assert_eq!(
            r.add(key(json!(1)), TestSink(true), false, None),
            Err(InFlight)
        );
        // Once its client is gone, the id may be reused; requests whose
        // client left are forgotten.
        r.add(key(json!(7)), TestSink(false), false, None).unwrap();
        r.add(key(json!(8)), TestSink(false), false, None).unwrap();
        r.add(key(json!(7)), TestSink(true), false, None).unwrap();
        assert!(r.get(&key(json!(8))).is_none());
        assert_eq!(r.in_flight(), 3);
    }

    #[test]
    fn server_messages_go_to_progress_owner_then_oldest_sse_request_then_stream() {
        let mut r: Router<TestSink> = Router::default();
        let log = json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {}});
        let sampling = json!({"jsonrpc": "2.0", "id": 0, "method": "sampling/createMessage"});
        // Nobody listens: dropped.
        assert_eq!(r.route(&log), Delivery::Drop);
        r.set_stream(TestSink(true));
        assert_eq!(r.route(&log), Delivery::Stream);

        // A JSON-only request cannot take interim messages.
        r.add(key(json!(1)), TestSink(true), false, Some(json!("p1")))
            .unwrap();
        assert_eq!(r.route(&sampling), Delivery::Stream);
        let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "p1", "progress": 1}});
        assert_eq!(r.route(&progress), Delivery::Drop);

        r.add(key(json!(2)), TestSink(true), true, None).unwrap();
        r.add(key(json!(3)), TestSink(true), true, Some(json!(3)))
            .unwrap();
        assert_eq!(r.route(&sampling), Delivery::Interim(key(json!(2))));
        assert_eq!(r.route(&log), Delivery::Interim(key(json!(2))));
        let progress3 = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 3}});
        assert_eq!(r.route(&progress3), Delivery::Interim(key(json!(3))));
        // Unknown progress tokens follow the general rule.
        let progress9 = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 9}});
        assert_eq!(r.route(&progress9), Delivery::Interim(key(json!(2))));

        // Session-wide notifications never take over a call.
        let changed = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
        assert_eq!(r.route(&changed), Delivery::Stream);

        r.remove(&key(json!(2)));
        assert_eq!(r.route(&log), Delivery::Interim(key(json!(3))));
        r.remove(&key(json!(3)));
        assert_eq!(r.route(&log), Delivery::Stream);
        assert_eq!(r.in_flight(), 1);
        r.clear_stream();
        assert_eq!(r.route(&log), Delivery::Drop);
        // A closed stream is no stream.
        r.set_stream(TestSink(false));
        assert_eq!(r.route(&log), Delivery::Drop);
    }
}
