//! Upstream MCP servers and the credentials the gateway uses there: the
//! server model and its config entries, credential sets and how they are
//! sealed at rest, and gnapd as an OAuth client (shared by connecting an
//! upstream and by the login of the person deciding).

pub mod connect;
pub mod credential;
pub mod earlier;
pub mod oauth2;
pub mod oauth_client;
pub mod refresh_lease;
pub mod sealed_handoffs;
pub mod secret;
pub mod server;
pub mod vault;

pub use secret::Secret;
