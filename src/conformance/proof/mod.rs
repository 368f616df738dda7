//! How the suite proves possession of its key (RFC 9635 §7.3), behind the
//! small [`ProofSigner`] trait so that no check knows how a method signs:
//! `httpsig` ([`HttpSig`]), `jwsd` and `jws` ([`JwsKey`]) and `mtls`
//! ([`Mtls`], whose proof is the TLS handshake of its own HTTP client).
//!
//! Each signer also makes the deliberately broken proofs of the
//! `negative-*` checks for its method: those are specific to the method,
//! so they live on the type, not on the trait.

use serde_json::Value;

use crate::client::http::Http;
use crate::proto::httpsig::HttpRequest;

mod httpsig;
mod jws;
mod mtls;

pub use httpsig::{Breakage, HttpSig};
pub use jws::{JwsBreakage, JwsKey};
pub use mtls::{CertForm, Mtls};

/// A key proofing method the suite can sign with.
pub trait ProofSigner: Send + Sync {
    /// The method's name as `proof` and `key_proofs_supported` spell it.
    fn method(&self) -> &'static str;
    /// The `key` object a grant request presents (§7.1).
    fn key_object(&self) -> Value;
    /// Adds the proof to `request`, made at `now` (Unix seconds).
    fn sign(&self, request: &mut HttpRequest, now: i64) -> Result<(), String>;
    /// The HTTP client requests proven by this signer must go through:
    /// `mtls` proves in the TLS handshake, so its client presents the
    /// certificate. `None`: any client will do.
    fn transport(&self) -> Option<&Http> {
        None
    }
}

/// Every proofing method the suite can sign with, by registry name.
pub const SIGNED_METHODS: [&str; 4] = ["httpsig", "jwsd", "jws", "mtls"];
