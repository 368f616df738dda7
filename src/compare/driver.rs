//! What the scenario drivers ([`super::gnap`], [`super::oauth`]) share:
//! their error, and the MCP requests both send through the gateway (the
//! same bytes but for the credentials each protocol adds).

use serde_json::{Value, json};

use super::meter::{MeterError, Request, Response};
use super::recorder::ProbeError;
use super::upstream::PROTOCOL_VERSION;

/// Why a run of a scenario failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// An exchange failed.
    #[error(transparent)]
    Meter(#[from] MeterError),
    /// Measuring failed.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// An answer was not what the protocol says (status, field).
    #[error("{0}")]
    Protocol(String),
}

/// A protocol error with the exchange that showed it.
pub fn unexpected(what: &str, response: &Response) -> DriverError {
    let body = response.text();
    let body = body.chars().take(300).collect::<String>();
    DriverError::Protocol(format!("{what}: HTTP {} {body}", response.status))
}

/// An MCP request to the gateway URL `url`: JSON-RPC `method` with
/// `params` (id `id`; `None`: a notification), with the Streamable HTTP
/// headers a 2026-07-28 client sends (`Mcp-Method`, `Mcp-Name` for a
/// tool call) and the session id, if any. The caller adds its credentials
/// (and signs, for GNAP) last.
pub fn mcp_request(
    url: &str,
    id: Option<u64>,
    method: &str,
    params: Value,
    session: Option<&str>,
) -> Request {
    let mut body = json!({"jsonrpc": "2.0", "method": method, "params": params});
    if let Some(id) = id {
        body["id"] = json!(id);
    }
    let mut request = Request::new("POST", url)
        .json(&body)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", PROTOCOL_VERSION)
        .header("Mcp-Method", method);
    if method == "tools/call"
        && let Some(name) = body["params"]["name"].as_str()
    {
        request = request.header("Mcp-Name", name);
    }
    if let Some(session) = session {
        request = request.header("Mcp-Session-Id", session);
    }
    request
}

/// `initialize`, as a client opening a session sends it.
pub fn initialize(url: &str, session: Option<&str>) -> Request {
    mcp_request(
        url,
        Some(0),
        "initialize",
        json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "gnapd-compare", "version": env!("CARGO_PKG_VERSION")},
        }),
        session,
    )
}

/// `tools/call` of `tool` (`echo` says `text` back; `add` adds 2 and 3).
pub fn tool_call(url: &str, id: u64, tool: &str, session: Option<&str>) -> Request {
    let arguments = match tool {
        "add" => json!({"a": 2, "b": 3}),
        _ => json!({"text": "hello from gnapd compare"}),
    };
    mcp_request(
        url,
        Some(id),
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
        session,
    )
}

/// The JSON-RPC result of a 200 answer (JSON, or the first `data:` event
/// of an SSE stream), or why there is none.
pub fn mcp_result(response: &Response) -> Result<Value, DriverError> {
    if response.status != 200 {
        return Err(unexpected("MCP call", response));
    }
    let text = response.text();
    let message: Value = if response
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/event-stream"))
    {
        text.lines()
            .find_map(|line| line.strip_prefix("data:"))
            .and_then(|data| serde_json::from_str(data.trim()).ok())
            .unwrap_or(Value::Null)
    } else {
        response.json()
    };
    match message.get("result") {
        Some(result) => Ok(result.clone()),
        None => Err(unexpected("MCP call without a result", response)),
    }
}
