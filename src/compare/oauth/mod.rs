//! The OAuth driver of `gnapd compare`: the five OAuth variants
//! (authorization code + PKCE by DCR or CIMD, Bearer or DPoP; and
//! `client_credentials` with `private_key_jwt`) run each scenario as a
//! conforming MCP client (2026-07-28 authorization) does, against gnapd's
//! OAuth face, every exchange through the lead's meter.
//!
//! - [`session`]: one agent (keys, client ID, tokens) and its steps;
//!   [`scenarios`]: the scenarios cut into the contract's steps.
//! - One file per protocol step: [`discovery`] (probe, RFC 9728, RFC 8414)
//!   with [`challenge`] (the `WWW-Authenticate` reader), [`register`]
//!   (RFC 7591, and the metadata a CIMD document holds; the document's
//!   https host is [`crate::compare::documents`]), [`pkce`], [`authorize`],
//!   [`token`], [`revoke`], [`dpop`] (RFC 9449 proofs), [`assertion`]
//!   (RFC 7523 client assertions).

pub mod assertion;
pub mod authorize;
pub mod challenge;
pub mod discovery;
pub mod dpop;
pub mod pkce;
pub mod register;
pub mod revoke;
pub mod scenarios;
pub mod session;
pub mod token;

pub use scenarios::{not_applicable, run};
pub use session::Session;
