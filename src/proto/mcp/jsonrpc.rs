//! JSON-RPC 2.0 messages as MCP carries them: one message per HTTP POST.
//!
//! Only what authorization needs is read: the kind of message, the method,
//! and (for the methods that name a target) `params.name` or `params.uri`.
//! The message itself is forwarded untouched.

use serde_json::Value;

/// What a message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request: has `id` and `method`.
    Request {
        /// The method.
        method: String,
        /// `params.name` (tools/call, prompts/get) or `params.uri`
        /// (resources/read), when present.
        target: Option<String>,
    },
    /// A notification: `method` without `id`.
    Notification {
        /// The method.
        method: String,
    },
    /// A response or error from the client to a server request.
    Response,
}

/// Why a body is not one JSON-RPC message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON.
    #[error("the body is not JSON")]
    NotJson,
    /// JSON, but not a JSON-RPC 2.0 message object (arrays included: MCP
    /// 2025-06-18 removed batching).
    #[error("the body is not a JSON-RPC 2.0 message")]
    NotMessage,
}

/// Reads one message.
pub fn parse(body: &[u8]) -> Result<Message, ParseError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| ParseError::NotJson)?;
    let object = value.as_object().ok_or(ParseError::NotMessage)?;
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(ParseError::NotMessage);
    }
    let has_id = object
        .get("id")
        .is_some_and(|id| id.is_string() || id.is_number());
    match object.get("method") {
        Some(Value::String(method)) => {
            if has_id {
                let params = object.get("params");
                let target = params
                    .and_then(|p| p.get("name").or_else(|| p.get("uri")))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                Ok(Message::Request {
                    method: method.clone(),
                    target,
                })
            } else if object.contains_key("id") {
                // An `id` that is neither a string nor a number (null is
                // reserved for errors) cannot be a request.
                Err(ParseError::NotMessage)
            } else {
                Ok(Message::Notification {
                    method: method.clone(),
                })
            }
        }
        Some(_) => Err(ParseError::NotMessage),
        None if has_id && (object.contains_key("result") || object.contains_key("error")) => {
            Ok(Message::Response)
        }
        None => Err(ParseError::NotMessage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{}}}"#),
            Ok(Message::Request {
                method: "tools/call".into(),
                target: Some("search".into())
            })
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"file:///x"}}"#),
            Ok(Message::Request {
                method: "resources/read".into(),
                target: Some("file:///x".into())
            })
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(Message::Notification {
                method: "notifications/initialized".into()
            })
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":7,"result":{}}"#),
            Ok(Message::Response)
        );
    }

    #[test]
    fn batches_and_malformed_messages_are_refused() {
        assert_eq!(parse(b"[]"), Err(ParseError::NotMessage));
        assert_eq!(parse(b"{"), Err(ParseError::NotJson));
        assert_eq!(
            parse(br#"{"id":1,"method":"x"}"#),
            Err(ParseError::NotMessage)
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":null,"method":"x"}"#),
            Err(ParseError::NotMessage)
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":5}"#),
            Err(ParseError::NotMessage)
        );
    }
}
