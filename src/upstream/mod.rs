//! Upstream MCP servers and the credentials the gateway uses there.

pub mod connect;
pub mod earlier;
pub mod vault;
