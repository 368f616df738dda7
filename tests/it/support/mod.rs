//! The shared test kit: what the tests in `it` (and, through `#[path]`, the
//! benches) build on, so that a server, an agent or a peer is started one
//! way everywhere. Tests live in the files beside this folder, never here.

pub mod agent;
pub mod core;
pub mod held_disk;
pub mod held_server;
pub mod hostile;
pub mod http_client;
pub mod mcp_upstream;
pub mod paths;
pub mod pg_nodes;
pub mod pki;
pub mod postgres;
pub mod process;
pub mod raw_http;
pub mod reencode;
pub mod rng;
pub mod run;
pub mod server;
pub mod store_fixture;
