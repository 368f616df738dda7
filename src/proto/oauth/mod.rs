//! OAuth 2.1 as the MCP authorization specification uses it, sans I/O: the
//! wire formats and checks of gnapd's OAuth face (issue 16), beside GNAP.
//!
//! gnapd answers an OAuth client with the same grants, policy, consent and
//! credential sets as a GNAP client: an authorization request becomes a
//! grant whose rights come from its `scope` and `resource` ([`scope`]),
//! and the tokens it gets are the store's token records marked as OAuth
//! (audience, client, DPoP key). What is here only reads and checks;
//! `crate::authz::oauth` decides and `crate::http` serves.

pub mod challenge;
pub mod cimd;
pub mod client;
pub mod client_assertion;
pub mod client_uri;
pub mod dpop;
pub mod error;
pub mod form;
pub mod metadata;
pub mod pkce;
pub mod redirect;
pub mod registration;
pub mod resource;
pub mod resource_metadata;
pub mod scope;
