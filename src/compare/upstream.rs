//! The upstream MCP server the comparison ships: Streamable HTTP with JSON
//! answers, two endpoints (`/alpha`, `/beta`), each demanding its own
//! bearer credential (the one gnapd injects), with two tools (`echo`,
//! `add`). It counts every request it answers ([`Outbound`] `upstream`)
//! and keeps every `Authorization`-like value it was sent, so an attack
//! can show what reached the upstream.
//!
//! It runs in the tool's process on a thread and runtime of its own, so
//! its CPU is never the client's (the client's CPU is its own thread's).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::probe::Outbound;

/// The upstreams, by name, with the credential each demands.
pub const UPSTREAMS: [(&str, &str); 2] = [
    ("alpha", "upstream-alpha-credential"),
    ("beta", "upstream-beta-credential"),
];

/// The protocol version the server answers `initialize` with.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// Largest request body read.
const MAX_BODY: usize = 64 * 1024;

/// A running upstream server.
#[derive(Debug, Clone)]
pub struct UpstreamServer {
    /// Where it listens.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl UpstreamServer {
    /// Starts the server on a thread of its own, counting into `outbound`.
    pub fn start(outbound: Outbound) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let server = Self {
            addr,
            seen: seen.clone(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("compare-upstream".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    serve(listener, outbound, seen).await;
                });
            })?;
        Ok(server)
    }

    /// The `[[upstream]]` tables for gnapd's config file.
    pub fn config(&self) -> String {
        UPSTREAMS
            .iter()
            .map(|(name, credential)| {
                format!(
                    "[[upstream]]\nname = \"{name}\"\nurl = \"http://{}/{name}\"\ncredential = {{ kind = \"bearer\", token = \"{credential}\" }}\n",
                    self.addr
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every credential-bearing header value the server received
    /// (`Authorization`, `DPoP`, `Signature`), in order.
    pub fn seen(&self) -> Vec<String> {
        match self.seen.lock() {
            Ok(seen) => seen.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    outbound: Outbound,
    seen: Arc<Mutex<Vec<String>>>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (outbound, seen) = (outbound.clone(), seen.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (outbound, seen) = (outbound.clone(), seen.clone());
                async move { Ok::<_, Infallible>(answer(request, &outbound, &seen).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    request: Request<Incoming>,
    outbound: &Outbound,
    seen: &Mutex<Vec<String>>,
) -> Response<Full<Bytes>> {
    outbound.count("upstream");
    let name = request.uri().path().trim_start_matches('/').to_owned();
    let credential = UPSTREAMS.iter().find(|(n, _)| *n == name).map(|(_, c)| *c);
    {
        let mut seen = match seen.lock() {
            Ok(seen) => seen,
            Err(poisoned) => poisoned.into_inner(),
        };
        for header in ["authorization", "dpop", "signature", "signature-input"] {
            for value in request.headers().get_all(header) {
                seen.push(format!(
                    "{header}: {}",
                    String::from_utf8_lossy(value.as_bytes())
                ));
            }
        }
    }
    let Some(credential) = credential else {
        return reply(StatusCode::NOT_FOUND, None);
    };
    let expected = format!("Bearer {credential}");
    let authorized = request
        .headers()
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == expected.as_bytes());
    if !authorized {
        return reply(StatusCode::UNAUTHORIZED, None);
    }
    if request.method() != hyper::Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, None);
    }
    let body = match http_body_util::Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => return reply(StatusCode::PAYLOAD_TOO_LARGE, None),
    };
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return reply(StatusCode::BAD_REQUEST, None);
    };
    match rpc(&message) {
        Some(result) => reply(StatusCode::OK, Some(result)),
        None => reply(StatusCode::ACCEPTED, None),
    }
}

/// The JSON-RPC answer to `message`, or `None` for a notification.
fn rpc(message: &Value) -> Option<Value> {
    let id = message.get("id")?.clone();
    let method = message["method"].as_str().unwrap_or_default();
    let result = match method {
        "initialize" => json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "gnapd-compare-upstream", "version": env!("CARGO_PKG_VERSION")},
        }),
        "tools/list" => json!({"tools": [
            {"name": "echo", "description": "Says its text back.",
             "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
            {"name": "add", "description": "Adds two numbers.",
             "inputSchema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}},
        ]}),
        "tools/call" => {
            let arguments = &message["params"]["arguments"];
            let text = match message["params"]["name"].as_str() {
                Some("echo") => arguments["text"].as_str().unwrap_or_default().to_owned(),
                Some("add") => {
                    let sum = arguments["a"].as_f64().unwrap_or(0.0)
                        + arguments["b"].as_f64().unwrap_or(0.0);
                    sum.to_string()
                }
                _ => {
                    return Some(json!({"jsonrpc": "2.0", "id": id,
                        "error": {"code": -32602, "message": "unknown tool"}}));
                }
            };
            json!({"content": [{"type": "text", "text": text}], "isError": false})
        }
        "ping" => json!({}),
        _ => {
            return Some(json!({"jsonrpc": "2.0", "id": id,
                "error": {"code": -32601, "message": "method not found"}}));
        }
    };
    Some(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

fn reply(status: StatusCode, body: Option<Value>) -> Response<Full<Bytes>> {
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    if status == StatusCode::OK {
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_answer_and_notifications_get_nothing() {
        let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": 2, "b": 3}}});
        assert_eq!(rpc(&call).unwrap()["result"]["content"][0]["text"], "5");
        let unknown =
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "rm"}});
        assert_eq!(rpc(&unknown).unwrap()["error"]["code"], -32602);
        assert!(rpc(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).is_none());
    }
}
