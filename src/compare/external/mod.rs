//! The third column (`gnapd compare --with-oidc-provider NODE_BIN`):
//! node-oidc-provider as an external OAuth AS in front of the same
//! gateway, which trusts its tokens by RFC 7662 introspection.
//!
//! - [`locate`]: the Node binary and the `oidc-provider` package it runs,
//!   and their versions (the report's `environment.peers`).
//! - [`process`]: the AS itself (`tests/interop/oidc/external_as.mjs`,
//!   embedded), started in the work dir and stopped with the world.
//! - [`relay`]: a counting relay in front of its introspection endpoint,
//!   so each introspection the gateway makes is a server-made request.
//! - [`person`]: the person's steps on oidc-provider's own sign-in and
//!   consent forms (devInteractions).

pub mod locate;
pub mod person;
pub mod process;
pub mod relay;

pub use locate::OidcProvider;
pub use process::ExternalAs;
