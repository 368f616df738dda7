//! gnapd: a GNAP (RFC 9635) authorization server for AI agents, and the MCP
//! gateway behind it.
//!
//! The library is what a Rust agent or an embedder needs: the sans-I/O
//! protocol core ([`proto`]: RFC 9421 signatures, RFC 9530 digests, JWKs,
//! GNAP and MCP messages; time comes in as an argument) and the agent side
//! ([`client`]). The server's own layers sit above them and import only
//! downward; ARCHITECTURE.md draws the map.
//!
//! # Signing a request as an agent, and checking it as gnapd does
//!
//! ```
//! use gnapd::proto::httpsig::{
//!     Algorithm, GnapProfile, HttpRequest, MemoryNonceStore, SignOptions, sign_gnap,
//! };
//! use gnapd::proto::jwk::SigningKey;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::generate(Algorithm::Ed25519)?; // an ephemeral agent key
//! let now = 1_790_000_000;
//! let mut request = HttpRequest::new("POST", "https://as.example/gnap")
//!     .with_field("Content-Type", "application/json")
//!     .with_body(br#"{"access_token":{"access":["mcp:github"]}}"#.to_vec());
//! // Adds Content-Digest, Signature-Input and Signature (tag="gnap").
//! sign_gnap(&mut request, &key, now, &SignOptions::default())?;
//!
//! let replay = MemoryNonceStore::default();
//! let profile = GnapProfile::default();
//! assert!(profile.verify(&request, key.verifying_key(), now, &replay).is_ok());
//! // The same signature twice is a replay.
//! assert!(profile.verify(&request, key.verifying_key(), now, &replay).is_err());
//! # Ok(())
//! # }
//! ```
//!
//! # A grant request with no pre-registration: the key is the client
//!
//! ```
//! use gnapd::client::AccessSpec;
//! use gnapd::client::grant::grant_request;
//! use gnapd::proto::httpsig::Algorithm;
//! use gnapd::proto::jwk::SigningKey;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::generate(Algorithm::Ed25519)?;
//! let access = AccessSpec::Tools {
//!     upstream: "github".into(),
//!     tools: vec!["create_issue".into()],
//! };
//! let body = grant_request(&key, "my agent", &access, &["redirect"], None);
//! assert_eq!(body["client"]["key"]["proof"], "httpsig");
//! assert_eq!(body["access_token"]["access"][0]["tools"][0], "create_issue");
//! assert_eq!(body["interact"]["start"][0], "redirect");
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod authz;
pub mod client;
pub mod clock;
pub mod gateway;
pub mod proto;
pub mod random;
pub mod store;

// The server's assembly and edges: public only so that the integration
// tests, the benches and the fuzz targets can drive them in process.
#[doc(hidden)]
pub mod admin;
#[doc(hidden)]
pub mod compare;
#[doc(hidden)]
pub mod conformance;
#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod http;
#[doc(hidden)]
pub mod upstream;

mod cli;
mod config;
mod http_client;

/// The `gnapd` command line; `src/main.rs` is only this call.
#[doc(hidden)]
pub use cli::main;
