//! What the gateway answers in place of an upstream.

use serde_json::Value;

/// The `id` of a JSON-RPC body, or `null`.
pub fn request_id(body: &[u8]) -> Value {
    #[derive(serde::Deserialize)]
    struct Id {
        #[serde(default)]
        id: Value,
    }
    serde_json::from_slice::<Id>(body)
        .map(|i| i.id)
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_ids_are_read_from_the_body() {
        assert_eq!(
            request_id(br#"{"jsonrpc":"2.0","id":"a","method":"x"}"#),
            json!("a")
        );
        assert_eq!(
            request_id(br#"{"jsonrpc":"2.0","method":"x"}"#),
            Value::Null
        );
        assert_eq!(request_id(b"nope"), Value::Null);
    }
}
