//! Hooks for the fuzz targets in `fuzz/`. Not part of the API.
//!
//! Each `pub fn` here takes the fuzzer's raw bytes, drives one part of the
//! protocol core with them and checks properties that must hold for every
//! input. The targets in `fuzz/fuzz_targets/` are one-line calls into these
//! functions, so the hooks build (and are linted) with the crate itself and
//! can be replayed from a plain test or debugger without `cargo fuzz`.
//!
//! A hook never panics on hostile input; the only panics are the `assert!`s
//! below, each of which states a property of the crate. A violated property
//! must abort the fuzzer so that libFuzzer records the input, which is why
//! this module (and only this module) allows `panic`, `unwrap` and `expect`.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

mod admin;
mod content_digest;
mod decoders;
mod grant_machine;
mod grant_model;
mod grant_record;
mod grant_request;
mod jsonrpc;
mod jwk;
mod jws_proof;
mod oauth_params;
mod signature_fields;
mod sse;
mod verify_request;

pub use admin::admin_socket;
pub use content_digest::content_digest;
pub use grant_machine::grant_machine;
pub use grant_record::grant_record;
pub use grant_request::grant_request;
pub use jsonrpc::jsonrpc;
pub use jwk::jwk;
pub use jws_proof::jws_proof;
pub use oauth_params::oauth_params;
pub use signature_fields::signature_fields;
pub use sse::sse_filter;
#[cfg(test)]
use verify_request::canonical_line;
pub use verify_request::{signed_seed_requests, verify_request};

use serde_json::Value;

use crate::proto::b64;
use crate::proto::digest::{self, DigestAlgorithm, verify_content_digest};
use crate::proto::httpsig::component::ComponentName;
use crate::proto::httpsig::input::{MAX_SIGNATURES, SignatureInput, signature_inputs, signatures};
use crate::proto::httpsig::message::{HttpResponse, parse_raw_request};
use crate::proto::httpsig::sign::sign_request;
use crate::proto::httpsig::verify::verify_signature;
use crate::proto::httpsig::{
    Algorithm, ComponentId, Fields, GnapProfile, HttpRequest, MemoryNonceStore, Message, Metadata,
    Rejection, SignOptions, SignatureParams, sign_gnap, signature_base,
};
use crate::proto::jwk::{MAX_JWK_LEN, SigningKey, VerifyingKey};

/// The fixed "current time" every verification runs at (Unix seconds).
pub const NOW: i64 = 1_790_000_000;

/// The fixed signing key: RFC 9421 Appendix B.1.4 `test-key-ed25519`, a
/// published test key, so that seed requests signed with it at [`NOW`] stay
/// valid from run to run and the fuzzer reaches the signature check itself.
pub const TEST_KEY_ED25519: &str = r#"{"kty":"OKP","crv":"Ed25519","kid":"test-key-ed25519","d":"n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU","x":"JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"}"#;

/// The fixed key, parsed once.
pub fn test_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let jwk: Value = serde_json::from_str(TEST_KEY_ED25519).expect("test key JSON");
        SigningKey::from_private_jwk(&jwk, None).expect("test key parses")
    })
}

/// A second fixed Ed25519 key (seed bytes `0x42`): the new key of the
/// rotation seeds, and the key a proof by [`test_key`] must not verify with.
fn second_key() -> SigningKey {
    let seed = [0x42u8; 32];
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let jwk = serde_json::json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "d": b64::encode_url(&seed),
        "x": b64::encode_url(key.verifying_key().as_bytes()),
    });
    SigningKey::from_private_jwk(&jwk, None).expect("second test key parses")
}

/// Splits `data` at the first `sep`: (before, after). No `sep`: (all, empty).
fn split_once(data: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == sep) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_accept_trivial_inputs() {
        for data in [&b""[..], b"\n", b"a=(\"@method\");created=1\na=:AA==:"] {
            signature_fields(data);
            content_digest(data);
            jwk(data);
            oauth_params(data);
            verify_request(data);
            jws_proof(data);
        }
        for kind in 0..10u8 {
            for opts in 0..16u8 {
                verify_request(&[kind, opts, 0, 0, 0]);
                verify_request(&[kind, opts]);
            }
        }
    }

    type Hook = fn(&[u8]);

    /// Every target and its hook.
    const HOOKS: [(&str, Hook); 12] = [
        ("signature_fields", signature_fields),
        ("verify_request", verify_request),
        ("content_digest", content_digest),
        ("jwk", jwk),
        ("grant_request", grant_request),
        ("jsonrpc", jsonrpc),
        ("sse_filter", sse_filter),
        ("grant_machine", grant_machine),
        ("admin_socket", admin_socket),
        ("oauth_params", oauth_params),
        ("jws_proof", jws_proof),
        ("grant_record", grant_record),
    ];

    /// Runs every file under `fuzz/<dir>/<target>/` whose name starts with
    /// `prefix` through the target's hook.
    fn replay(dir: &str, prefix: &str) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz")
            .join(dir);
        for (target, hook) in HOOKS {
            let Ok(dir) = std::fs::read_dir(root.join(target)) else {
                continue;
            };
            for entry in dir {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy();
                if name.starts_with(prefix) {
                    eprintln!("{target}: {name}");
                    hook(&std::fs::read(&path).unwrap());
                }
            }
        }
    }

    /// Replays every input saved under `fuzz/regressions/<target>/` through
    /// its hook: each reproduced a fuzzer finding before its fix.
    #[test]
    fn regressions_replay() {
        replay("regressions", "");
    }

    /// The committed seeds keep every property (a seed that breaks one is a
    /// finding before the fuzzer starts).
    #[test]
    fn seeds_keep_every_property() {
        replay("corpus", "seed-");
    }

    /// Every signed seed verifies through the raw-text path, and is written
    /// to `fuzz/corpus/verify_request/` when `GNAPD_WRITE_SEEDS` is set.
    #[test]
    fn signed_seeds_verify() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/verify_request");
        for (name, raw) in signed_seed_requests() {
            let req = parse_raw_request(&raw, "https").unwrap();
            let verified = GnapProfile::default().verify(
                &req,
                test_key().verifying_key(),
                NOW,
                &MemoryNonceStore::with_capacity(4),
            );
            assert!(verified.is_ok(), "{name}: {verified:?}");
            if std::env::var_os("GNAPD_WRITE_SEEDS").is_some() {
                std::fs::write(dir.join(name), &raw).unwrap();
            }
        }
    }

    #[test]
    fn canonical_line_unfolds_and_trims() {
        assert_eq!(canonical_line(b"  a\r\n  b "), b"a b");
        assert_eq!(canonical_line(b"a\r\nb"), b"a\r\nb");
    }
}
