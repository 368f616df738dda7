//! The sans-I/O protocol core: bytes and typed values in, typed values out.
//!
//! Nothing under this module opens a socket, reads a file, spawns a thread or
//! reads the clock; time arrives as an argument.

pub mod address;
pub mod alg;
pub mod b64;
pub mod client_cert;
pub mod crypto_ops;
pub mod digest;
pub mod exposition;
pub mod gnap;
pub mod hash;
pub mod hmac;
pub mod httpsig;
pub mod jwk;
pub mod jws_proof;
pub mod mcp;
pub mod oauth;
pub mod structured;
pub mod text;
