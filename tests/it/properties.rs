//! Property tests: any signed request round-trips; any single-byte change to
//! a covered component breaks it.

use gnapd::proto::httpsig::{
    Algorithm, GnapProfile, HttpRequest, MemoryNonceStore, SignOptions, sign_gnap,
};
use gnapd::proto::jwk::SigningKey;
use proptest::prelude::*;
use std::sync::OnceLock;

const NOW: i64 = 1_790_000_000;

fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate(Algorithm::Ed25519).unwrap())
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,40}"
}

prop_compose! {
    fn arb_request()(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "post"]),
        host in "[a-z]{1,12}(\\.[a-z]{2,6}){1,2}",
        port in prop::option::of(1u16..65535),
        path in "(/[A-Za-z0-9._~%!$&'()*+,;=:@-]{0,12}){0,4}",
        query in prop::option::of("[A-Za-z0-9=&%+._~-]{0,30}"),
        auth in prop::option::of(token()),
        extra in prop::collection::vec(("x-[a-z]{1,8}", "[ -~]{0,40}"), 0..4),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) -> HttpRequest {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let query = query.map(|q| format!("?{q}")).unwrap_or_default();
        let mut req = HttpRequest::new(method, format!("https://{host}{port}{path}{query}")).with_body(body);
        if let Some(t) = auth {
            req.fields.append("Authorization", format!("GNAP {t}"));
        }
        for (n, v) in extra {
            req.fields.append(n, v.trim().to_owned());
        }
        req
    }
}

fn sign(mut req: HttpRequest) -> HttpRequest {
    sign_gnap(&mut req, key(), NOW, &SignOptions::default()).unwrap();
    req
}

fn verifies(req: &HttpRequest) -> bool {
    GnapProfile::default()
        .verify(
            req,
            key().verifying_key(),
            NOW,
            &MemoryNonceStore::default(),
        )
        .is_ok()
}

/// Changes the byte at `index` (modulo length) of `bytes` to a different
/// visible ASCII byte, keeping the text a valid field value.
fn flip(bytes: &mut Vec<u8>, index: usize) {
    if bytes.is_empty() {
        bytes.push(b'a');
        return;
    }
    let i = index % bytes.len();
    bytes[i] = if bytes[i] == b'Z' { b'Y' } else { b'Z' };
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_signed_request_verifies(req in arb_request()) {
        prop_assert!(verifies(&sign(req)));
    }

    #[test]
    fn any_single_byte_change_to_a_covered_component_fails(
        req in arb_request(),
        which in 0usize..4,
        index in any::<usize>(),
    ) {
        let mut req = sign(req);
        match which {
            0 => {
                let mut m = req.method.clone().into_bytes();
                flip(&mut m, index);
                req.method = String::from_utf8(m).unwrap();
            }
            1 => {
                let mut u = req.target_uri.clone().into_bytes();
                // Keep the scheme intact so the URI stays absolute.
                let start = "https://".len();
                let i = start + index % (u.len() - start);
                u[i] = if u[i] == b'Z' { b'Y' } else { b'Z' };
                req.target_uri = String::from_utf8(u).unwrap();
            }
            2 => {
                let mut b = req.body.clone();
                flip(&mut b, index);
                req.body = b;
            }
            _ => {
                let mut auth = req
                    .fields
                    .lines("authorization")
                    .next()
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default();
                flip(&mut auth, index);
                req.fields.set("Authorization", auth);
            }
        }
        prop_assert!(!verifies(&req));
    }
}

/// The JSON-RPC reading the gateway authorizes by, built the plain way: the
/// whole body as a `serde_json::Value`. The fast reader must agree with it
/// on every message without duplicate members (and without `params`
/// members that fold to `name`, `uri`, `arguments` or `_meta`, which the
/// generator does not make).
fn reference_parse(
    body: &[u8],
) -> Result<gnapd::proto::mcp::jsonrpc::Message, gnapd::proto::mcp::jsonrpc::ParseError> {
    use gnapd::proto::mcp::jsonrpc::{Message, ParseError};
    use serde_json::Value;
    let value: Value = serde_json::from_slice(body).map_err(|_| ParseError::NotJson)?;
    let object = value.as_object().ok_or(ParseError::NotMessage)?;
    const DEFINED: [&str; 6] = ["jsonrpc", "id", "method", "params", "result", "error"];
    if object.keys().any(|k| !DEFINED.contains(&k.as_str())) {
        return Err(ParseError::NotMessage);
    }
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(ParseError::NotMessage);
    }
    let has_id = object
        .get("id")
        .is_some_and(|id| id.is_string() || id.is_number());
    match object.get("method") {
        Some(Value::String(method)) if has_id => Ok(Message::Request {
            method: method.clone(),
            target: object
                .get("params")
                .and_then(|p| {
                    let (first, second) = if method.starts_with("resources/") {
                        ("uri", "name")
                    } else {
                        ("name", "uri")
                    };
                    p.get(first).or_else(|| p.get(second))
                })
                .and_then(Value::as_str)
                .map(str::to_owned),
        }),
        Some(Value::String(_)) if object.contains_key("id") => Err(ParseError::NotMessage),
        Some(Value::String(method)) => Ok(Message::Notification {
            method: method.clone(),
        }),
        Some(_) => Err(ParseError::NotMessage),
        None if has_id && (object.contains_key("result") || object.contains_key("error")) => {
            Ok(Message::Response)
        }
        None => Err(ParseError::NotMessage),
    }
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        "[a-z/_\"\\\\é ]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

prop_compose! {
    /// Messages mixing the members authorization reads (with values of
    /// every type) and others.
    fn arb_message()(
        jsonrpc in prop::option::weighted(0.9, prop_oneof![
            4 => Just(serde_json::json!("2.0")),
            1 => arb_json(),
        ]),
        id in prop::option::weighted(0.8, prop_oneof![
            2 => any::<i64>().prop_map(serde_json::Value::from),
            2 => "[a-z0-9]{0,4}".prop_map(serde_json::Value::from),
            1 => arb_json(),
        ]),
        method in prop::option::weighted(0.8, prop_oneof![
            3 => prop::sample::select(vec!["tools/call", "resources/read", "ping", "notifications/initialized"]).prop_map(serde_json::Value::from),
            1 => arb_json(),
        ]),
        name in prop::option::of(prop_oneof![
            3 => "[a-z_]{0,6}".prop_map(serde_json::Value::from),
            1 => arb_json(),
        ]),
        uri in prop::option::of(prop_oneof![
            3 => "file:///[a-z]{0,6}".prop_map(serde_json::Value::from),
            1 => arb_json(),
        ]),
        params_other in prop::option::of(arb_json()),
        result in prop::option::of(arb_json()),
        error in prop::option::of(arb_json()),
        extra in prop::option::of(arb_json()),
    ) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        let fields = [("jsonrpc", jsonrpc), ("id", id), ("method", method)];
        for (k, v) in fields {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        }
        let mut params = serde_json::Map::new();
        if let Some(n) = name {
            params.insert("name".into(), n);
        }
        if let Some(u) = uri {
            params.insert("uri".into(), u);
        }
        match params_other {
            Some(serde_json::Value::Object(o)) => {
                params.extend(o.into_iter().filter(|(k, _)| k != "name" && k != "uri"));
            }
            Some(other) if params.is_empty() => {
                m.insert("params".into(), other);
            }
            _ => {}
        }
        if !params.is_empty() && !m.contains_key("params") {
            m.insert("params".into(), serde_json::Value::Object(params));
        }
        let tail = [("result", result), ("error", error), ("arguments", extra)];
        for (k, v) in tail {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        }
        serde_json::Value::Object(m)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_fast_json_rpc_reader_agrees_with_reading_the_whole_value(message in arb_message()) {
        let body = serde_json::to_vec(&message).unwrap();
        prop_assert_eq!(
            gnapd::proto::mcp::jsonrpc::parse(&body),
            reference_parse(&body),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
}
