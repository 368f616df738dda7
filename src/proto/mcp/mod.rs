//! MCP as the gateway sees it: JSON-RPC messages, and whether a token's
//! `mcp` access rights allow one (sans I/O; the gateway edge comes later).

pub mod access;
pub mod event_id;
pub mod fold;
pub mod jsonrpc;
