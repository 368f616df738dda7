//! gnapd: a GNAP (RFC 9635) authorization server for AI agents, and the MCP
//! gateway behind it.
//!
//! The crate is layered so that protocol logic never touches I/O: [`proto`]
//! holds the pure RFC 9421 / RFC 9530 / JWK core, which takes time as an
//! argument and owns no sockets, files or threads. Edges (HTTP, storage, CLI)
//! sit on top and only translate.
#![forbid(unsafe_code)]

pub mod admin;
pub mod authz;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod gateway;
pub mod http;
pub mod http_client;
pub mod proto;
pub mod random;
pub mod store;
pub mod upstream;

#[doc(hidden)]
pub mod fuzzing;
