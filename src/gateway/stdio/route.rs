//! Routing a child's messages to the HTTP exchanges waiting for them, sans
//! I/O. A response ends the request with its id. A server message goes to
//! the request its progress token names, else to the oldest request in
//! flight whose client takes SSE (stdio does not say which request caused
//! it), else to the GET stream, else nowhere; session-wide notifications
//! skip the requests. The child sees bridge ids, never the agent's: safe
//! integers, so a child that reads numbers as doubles cannot mistake two
//! agent ids for one and swap their answers.

use std::collections::HashMap;

use serde_json::Value;

/// Largest bridge id: 2^53 − 1, the last integer a double holds exactly.
pub(crate) const MAX_BRIDGE_ID: u64 = (1 << 53) - 1;

/// A JSON-RPC id as a map key: `1`, `1.0` and `"1"` are told apart by type,
/// and a whole float equals its integer (a JavaScript client or child
/// writes `1.0` as `1`). `None` for an id that is not a string or a number.
pub(crate) fn id_key(id: &Value) -> Option<String> {
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

/// The bridge id a child's response names, if it can be one (a whole
/// number from 1 to [`MAX_BRIDGE_ID`], written as an integer or, by a
/// child that writes every number as a float, `5.0`).
fn bridge_id(id: &Value) -> Option<u64> {
    let n = id.as_number()?;
    let id = match n.as_u64() {
        Some(u) => u,
        None => {
            let f = n.as_f64()?;
            if f.fract() != 0.0 || !(1.0..=MAX_BRIDGE_ID as f64).contains(&f) {
                return None;
            }
            f as u64
        }
    };
    (1..=MAX_BRIDGE_ID).contains(&id).then_some(id)
}

/// Where a sink (an HTTP exchange's channel) still leads somewhere.
pub(crate) trait Sink {
    /// Whether the exchange is still listening.
    fn is_open(&self) -> bool;
}

/// A client request waiting for its response.
#[derive(Debug)]
pub(crate) struct Pending<S> {
    /// Where its messages go.
    pub sink: S,
    /// Whether its client accepts an SSE answer (and so interim messages).
    pub sse: bool,
    /// `params._meta.progressToken`, if it asked for progress.
    pub progress_token: Option<Value>,
    /// The id the agent gave it, which its response carries back.
    pub agent_id: Value,
    /// [`id_key`] of `agent_id`: one request per agent id at a time.
    agent_key: String,
}

/// Where one message from the child goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// To the request with this bridge id, as its response (the exchange
    /// ends).
    Final(u64),
    /// To the request with this bridge id, before its response.
    Interim(u64),
    /// To the session's GET stream.
    Stream,
    /// Nowhere.
    Drop,
}

/// A request id already in flight in the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InFlight;

/// The requests in flight in one session (by bridge id), and its GET
/// stream.
#[derive(Debug)]
pub(crate) struct Router<S> {
    pending: HashMap<u64, Pending<S>>,
    stream: Option<S>,
    next_id: u64,
}

impl<S> Default for Router<S> {
    fn default() -> Self {
        Self {
            pending: HashMap::new(),
            stream: None,
            next_id: 1,
        }
    }
}

impl<S: Sink> Router<S> {
    /// Registers a request the agent sent with id `agent_id` (a string or
    /// a number) and gives the bridge id it goes to the child with.
    pub(crate) fn add(
        &mut self,
        agent_id: Value,
        sink: S,
        sse: bool,
        progress_token: Option<Value>,
    ) -> Result<u64, InFlight> {
        let agent_key = id_key(&agent_id).ok_or(InFlight)?;
        // Requests whose client left wait for nothing: forget them, so a
        // child that never answers them cannot grow the table.
        self.pending.retain(|_, p| p.sink.is_open());
        // The agent's id stays unique among its requests in flight, so its
        // `notifications/cancelled` names one of them.
        if self.pending.values().any(|p| p.agent_key == agent_key) {
            return Err(InFlight);
        }
        let id = self.next_id;
        // 2^53 requests in one session do not happen; wrapping keeps the
        // ids safe integers if they ever did.
        self.next_id = if id >= MAX_BRIDGE_ID { 1 } else { id + 1 };
        if self.pending.contains_key(&id) {
            return Err(InFlight);
        }
        self.pending.insert(
            id,
            Pending {
                sink,
                sse,
                progress_token,
                agent_id,
                agent_key,
            },
        );
        Ok(id)
    }

    /// Forgets a request (answered, timed out, or its client left).
    pub(crate) fn remove(&mut self, id: u64) -> Option<Pending<S>> {
        self.pending.remove(&id)
    }

    /// The request with bridge id `id`.
    pub(crate) fn get(&self, id: u64) -> Option<&Pending<S>> {
        self.pending.get(&id)
    }

    /// The bridge id of the agent's request in flight with id `agent_id`
    /// (for its `notifications/cancelled`).
    pub(crate) fn bridge_id_of(&self, agent_id: &Value) -> Option<u64> {
        let key = id_key(agent_id)?;
        self.pending
            .iter()
            .find(|(_, p)| p.agent_key == key && p.sink.is_open())
            .map(|(id, _)| *id)
    }

    /// Opens the GET stream, replacing (and so ending) an earlier one.
    pub(crate) fn set_stream(&mut self, sink: S) -> Option<S> {
        self.stream.replace(sink)
    }

    /// The GET stream, if one is open.
    pub(crate) fn stream(&self) -> Option<&S> {
        self.stream.as_ref().filter(|s| s.is_open())
    }

    /// Closes the GET stream.
    pub(crate) fn clear_stream(&mut self) -> Option<S> {
        self.stream.take()
    }

    /// Requests in flight whose client still listens.
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.values().filter(|p| p.sink.is_open()).count()
    }

    /// Where `message` (from the child) goes.
    pub(crate) fn route(&self, message: &Value) -> Delivery {
        let method = message.get("method").and_then(Value::as_str);
        let Some(method) = method else {
            // A response (or garbage): only by the bridge id.
            let id = message.get("id").and_then(bridge_id);
            return match id {
                Some(id)
                    if self.pending.contains_key(&id)
                        && (message.get("result").is_some() || message.get("error").is_some()) =>
                {
                    Delivery::Final(id)
                }
                _ => Delivery::Drop,
            };
        };
        let listening = |p: &Pending<S>| p.sse && p.sink.is_open();
        if method == "notifications/progress"
            && let Some(token) = message.pointer("/params/progressToken")
            && let Some((id, p)) = self
                .pending
                .iter()
                .find(|(_, p)| p.progress_token.as_ref() == Some(token))
        {
            // Progress for a request that cannot take it goes nowhere else.
            return if listening(p) {
                Delivery::Interim(*id)
            } else {
                Delivery::Drop
            };
        }
        // Bridge ids grow with each request: the smallest is the oldest.
        if !session_wide(method)
            && let Some(id) = self
                .pending
                .iter()
                .filter(|(_, p)| listening(p))
                .map(|(id, _)| *id)
                .min()
        {
            return Delivery::Interim(id);
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

    fn answer(id: u64) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "result": {}})
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
    fn responses_go_to_their_request_by_bridge_id_and_others_are_dropped() {
        let mut r = Router::default();
        let one = r.add(json!(1), TestSink(true), false, None).unwrap();
        let a = r.add(json!("a"), TestSink(true), true, None).unwrap();
        assert_eq!(r.route(&answer(one)), Delivery::Final(one));
        // A child that writes every number as a float.
        assert_eq!(
            r.route(
                &json!({"jsonrpc": "2.0", "id": a as f64, "error": {"code": 1, "message": "x"}})
            ),
            Delivery::Final(a)
        );
        assert_eq!(r.get(a).unwrap().agent_id, json!("a"));
        for stray in [
            answer(99),
            json!({"jsonrpc": "2.0", "id": "a", "result": {}}),
            json!({"jsonrpc": "2.0", "id": one.to_string(), "result": {}}),
            json!({"jsonrpc": "2.0", "id": one}),
            json!({"jsonrpc": "2.0", "id": 0, "result": {}}),
            json!({"jsonrpc": "2.0", "id": -1, "result": {}}),
            json!({"jsonrpc": "2.0", "id": 1.5, "result": {}}),
            json!({"jsonrpc": "2.0"}),
        ] {
            assert_eq!(r.route(&stray), Delivery::Drop, "{stray}");
        }
        // A duplicate agent id while the first is in flight is refused.
        assert_eq!(
            r.add(json!(1.0), TestSink(true), false, None),
            Err(InFlight)
        );
        assert_eq!(r.bridge_id_of(&json!(1)), Some(one));
        assert_eq!(r.bridge_id_of(&json!("1")), None);
        // Once its client is gone, the id may be reused; requests whose
        // client left are forgotten.
        let seven = r.add(json!(7), TestSink(false), false, None).unwrap();
        let eight = r.add(json!(8), TestSink(false), false, None).unwrap();
        let again = r.add(json!(7), TestSink(true), false, None).unwrap();
        assert_ne!(again, seven);
        assert!(r.get(eight).is_none());
        assert_eq!(r.in_flight(), 3);
    }

    #[test]
    fn agent_ids_a_double_cannot_tell_apart_get_bridge_ids_of_their_own() {
        // 2^53 and 2^53 + 1 are one number to a child that parses doubles.
        let mut r = Router::default();
        let big = json!(9_007_199_254_740_992u64);
        let bigger = json!(9_007_199_254_740_993u64);
        let first = r.add(big.clone(), TestSink(true), false, None).unwrap();
        let second = r.add(bigger.clone(), TestSink(true), false, None).unwrap();
        assert_ne!(first, second);
        assert!(first <= MAX_BRIDGE_ID && second <= MAX_BRIDGE_ID);
        // The child answers under the bridge ids; each answer finds its own
        // request, which carries the agent's exact id back.
        assert_eq!(r.route(&answer(second)), Delivery::Final(second));
        assert_eq!(r.remove(second).unwrap().agent_id, bigger);
        assert_eq!(r.remove(first).unwrap().agent_id, big);
        // Answers under the agent's ids match nothing.
        let mut r = Router::default();
        r.add(big.clone(), TestSink(true), false, None).unwrap();
        for id in [&big, &bigger] {
            let echoed = json!({"jsonrpc": "2.0", "id": id, "result": {}});
            assert_eq!(r.route(&echoed), Delivery::Drop);
        }
    }

    #[test]
    fn bridge_ids_stay_safe_integers() {
        let mut r: Router<TestSink> = Router {
            next_id: MAX_BRIDGE_ID,
            ..Router::default()
        };
        assert_eq!(
            r.add(json!(1), TestSink(true), false, None),
            Ok(MAX_BRIDGE_ID)
        );
        assert_eq!(r.add(json!(2), TestSink(true), false, None), Ok(1));
        assert_eq!(
            r.route(&answer(MAX_BRIDGE_ID)),
            Delivery::Final(MAX_BRIDGE_ID)
        );
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
        r.add(json!(1), TestSink(true), false, Some(json!("p1")))
            .unwrap();
        assert_eq!(r.route(&sampling), Delivery::Stream);
        let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "p1", "progress": 1}});
        assert_eq!(r.route(&progress), Delivery::Drop);

        let two = r.add(json!(2), TestSink(true), true, None).unwrap();
        let three = r
            .add(json!(3), TestSink(true), true, Some(json!(3)))
            .unwrap();
        assert_eq!(r.route(&sampling), Delivery::Interim(two));
        assert_eq!(r.route(&log), Delivery::Interim(two));
        let progress3 = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 3}});
        assert_eq!(r.route(&progress3), Delivery::Interim(three));
        // Unknown progress tokens follow the general rule.
        let progress9 = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 9}});
        assert_eq!(r.route(&progress9), Delivery::Interim(two));

        // Session-wide notifications never take over a call.
        let changed = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
        assert_eq!(r.route(&changed), Delivery::Stream);

        r.remove(two);
        assert_eq!(r.route(&log), Delivery::Interim(three));
        r.remove(three);
        assert_eq!(r.route(&log), Delivery::Stream);
        assert_eq!(r.in_flight(), 1);
        r.clear_stream();
        assert_eq!(r.route(&log), Delivery::Drop);
        // A closed stream is no stream.
        r.set_stream(TestSink(false));
        assert_eq!(r.route(&log), Delivery::Drop);
    }
}
