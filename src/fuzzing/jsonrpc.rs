//! The gateway's JSON-RPC reader (`proto::mcp::jsonrpc`) against other
//! decoders: a message it accepts must read the same to every one of them.

use serde_json::Value;

use super::decoders::{Doc, FOLDS, pick};
use crate::proto::mcp::fold::reads_as;
use crate::proto::mcp::jsonrpc::{Message, PARAMS_READ, ParseError, parse};

fn exactly_one<'d>(members: &'d [(String, Doc)], known: &str) -> Option<&'d Doc> {
    let mut matching = members.iter().filter(|(name, _)| name == known);
    let first = matching.next().map(|(_, v)| v);
    assert!(matching.next().is_none(), "`{known}` accepted twice");
    first
}

/// The JSON-RPC reader and the case-folding rule.
///
/// Input: a request body. Checks:
/// - `NotJson` (JSON-RPC's -32700) only for text that is not JSON,
///   `NotMessage` (-32600) only for JSON;
/// - an accepted message has each top-level member once, each of
///   `PARAMS_READ` at most once in `params`, and for every decoder model
///   ([`Fold`], first or last of equal names wins) the method, id and
///   every member of `PARAMS_READ` read the same as the gateway read them,
///   so the target the gateway authorized is the one the upstream runs;
/// - the message the gateway read, written anew, reads back the same;
/// - `fold::reads_as` holds for every name some model folds to a name in
///   `PARAMS_READ` (the input's lines, tried as member names).
pub fn jsonrpc(data: &[u8]) {
    // JSON by its grammar, and JSON serde reads as a value (which also
    // refuses a number beyond `f64`, as RFC 8259 §9 allows).
    let grammar = serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok();
    let is_json = serde_json::from_slice::<Value>(data).is_ok();
    let message = match parse(data) {
        Err(ParseError::NotJson) => return assert!(!is_json, "JSON refused as not JSON"),
        Err(ParseError::NotMessage) => return assert!(grammar, "not JSON, yet NotMessage"),
        Ok(message) => message,
    };
    assert!(is_json, "accepted text that is not JSON");
    let doc: Doc = serde_json::from_slice(data).expect("accepted JSON reads");
    let Doc::Object(top) = &doc else {
        panic!("accepted a message that is not an object");
    };
    for known in ["jsonrpc", "id", "method", "params", "result", "error"] {
        exactly_one(top, known);
    }
    let method = exactly_one(top, "method");
    let params = exactly_one(top, "params");
    if let Some(Doc::Object(params)) = params {
        for known in PARAMS_READ {
            exactly_one(params, known);
        }
    }
    for fold in FOLDS {
        for last in [false, true] {
            for known in ["jsonrpc", "id", "method", "params"] {
                assert_eq!(
                    pick(top, known, fold, last),
                    exactly_one(top, known),
                    "{fold:?} (last wins: {last}) reads another `{known}`"
                );
            }
            if let Some(Doc::Object(params)) = params {
                for known in PARAMS_READ {
                    assert_eq!(
                        pick(params, known, fold, last),
                        exactly_one(params, known),
                        "{fold:?} (last wins: {last}) reads another params.{known}"
                    );
                }
            }
        }
    }
    if let Message::Request { method: m, .. } | Message::Notification { method: m } = &message {
        assert_eq!(method, Some(&Doc::Scalar(Value::from(m.as_str()))));
    }
    rewritten_reads_back(&message);
    for name in data.split(|b| *b == b'\n') {
        let name = String::from_utf8_lossy(name);
        for known in PARAMS_READ {
            if name != known && FOLDS.iter().any(|f| f.apply(&name) == known) {
                assert!(reads_as(&name, known), "{name:?} folds to {known}");
            }
        }
    }
}

/// The message as the gateway read it, written anew, reads the same.
fn rewritten_reads_back(message: &Message) {
    let body = match message {
        Message::Request { method, target } => {
            let member = if method.starts_with("resources/") {
                "uri"
            } else {
                "name"
            };
            let mut params = serde_json::Map::new();
            if let Some(target) = target {
                params.insert(member.into(), target.clone().into());
            }
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        }
        Message::Notification { method } => {
            serde_json::json!({"jsonrpc": "2.0", "method": method})
        }
        Message::Response => serde_json::json!({"jsonrpc": "2.0", "id": 1, "result": {}}),
    };
    let again = parse(&serde_json::to_vec(&body).expect("serializes"));
    assert_eq!(again.as_ref(), Ok(message), "rewritten: {body}");
}
