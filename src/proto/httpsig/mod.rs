//! HTTP Message Signatures (RFC 9421) and their GNAP profile (RFC 9635 §7.3.1).
//!
//! Layered from the bottom up: [`message`] (the HTTP message as plain data),
//! [`component`] (identifiers and the values they name), [`params`] and
//! [`input`] (the `Signature-Input`/`Signature` fields), [`base`] (the bytes
//! that are signed), [`sign`] and [`verify`] (one signature), and [`profile`]
//! (the GNAP rules on top, the only entry point servers use).

pub mod base;
pub mod batch;
pub mod component;
pub mod input;
pub mod message;
pub mod nonce;
pub mod params;
pub mod profile;
pub mod sign;
pub mod verify;

#[cfg(test)]
mod counted;

pub use super::alg::Algorithm;
pub use base::signature_base;
pub use component::{ComponentId, Derived};
pub use message::{Fields, HttpRequest, HttpResponse, Message};
pub use nonce::{MemoryNonceStore, NonceStore};
pub use params::{Metadata, SignatureParams};
pub use profile::{
    GnapProfile, Rejection, SignOptions, VerifiedRequest, VerifiedRotation, sign_gnap,
    sign_gnap_rotation,
};
