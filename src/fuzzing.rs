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
mod decoders;
mod grant_machine;
mod grant_model;
mod grant_request;
mod jsonrpc;
mod sse;

pub use admin::admin_socket;
pub use grant_machine::grant_machine;
pub use grant_request::grant_request;
pub use jsonrpc::jsonrpc;
pub use sse::sse_filter;

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

// ---------------------------------------------------------------------------
// signature_fields
// ---------------------------------------------------------------------------

/// The request signature bases are computed over in [`signature_fields`]:
/// every derived component and the usual fields have a value.
fn base_request(extra: &Fields) -> HttpRequest {
    let mut req = HttpRequest::new("POST", "https://example.com/foo?param=Value&Pet=dog")
        .with_field("Host", "example.com")
        .with_field("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
        .with_field("Content-Type", "application/json")
        .with_field(
            "Content-Digest",
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
        )
        .with_field("Content-Length", "18")
        .with_field("Authorization", "GNAP 80UPRY5NM33OMUKMKSKU")
        .with_field("Example-Dict", "  a=1,    b=2;x=1;y=2,   c=(a   b   c)")
        .with_field("mcp-session-id", "\"s-1\"")
        .with_body(&br#"{"hello": "world"}"#[..]);
    for (name, value) in extra.iter() {
        req.fields.append(name, value);
    }
    req
}

/// Checks that `base` is exactly one line per covered component, each
/// starting with the component's identifier, then the `@signature-params`
/// line: no component value can forge or hide a line.
fn assert_base_shape(base: &[u8], params: &SignatureParams) {
    let lines: Vec<&[u8]> = base.split(|b| *b == b'\n').collect();
    assert_eq!(
        lines.len(),
        params.covered().len() + 1,
        "signature base has {} lines for {} components",
        lines.len(),
        params.covered().len()
    );
    for (line, id) in lines.iter().zip(params.covered()) {
        let prefix = format!("{}: ", id.as_str());
        assert!(
            line.starts_with(prefix.as_bytes()),
            "base line does not start with {prefix:?}"
        );
        assert!(!line.contains(&b'\r') && !line.contains(&0), "control byte");
    }
    let last = format!("\"@signature-params\": {}", params.serialized());
    assert_eq!(lines.last().copied(), Some(last.as_bytes()));
}

/// Re-reads one `Signature-Input` entry from its own serialization.
fn reparse_input(input: &SignatureInput) -> SignatureInput {
    let line = format!("{}={}", input.label, input.params.serialized());
    let fields: Fields = [("Signature-Input", line.clone())].into_iter().collect();
    let mut again = signature_inputs(&fields)
        .unwrap_or_else(|e| panic!("serialization {line:?} does not re-parse: {e}"));
    assert_eq!(
        again.len(),
        1,
        "{line:?} re-parsed to {} entries",
        again.len()
    );
    again.remove(0)
}

/// `Signature-Input` / `Signature` parsing and the signature base.
///
/// Input: lines separated by LF; even lines are `Signature-Input` field lines,
/// odd lines `Signature` field lines. Properties:
///
/// - parse → serialize → parse is a fixed point for every entry, for the
///   whole field, and for each covered component identifier;
/// - [`SignatureParams::new`] rebuilds the same covered list and metadata;
/// - `Signature` byte sequences survive re-serialization;
/// - a signature base has one line per component plus `@signature-params`;
/// - for any params whose base can be built, signing with the fixed key and
///   verifying with the same params succeeds, and with other bytes fails.
pub fn signature_fields(data: &[u8]) {
    let mut fields = Fields::new();
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        let name = if i % 2 == 0 {
            "Signature-Input"
        } else {
            "Signature"
        };
        fields.append(name, line);
    }

    if let Ok(sigs) = signatures(&fields) {
        let line = sigs
            .iter()
            .map(|(label, bytes)| format!("{label}=:{}:", b64::encode_std(bytes)))
            .collect::<Vec<_>>()
            .join(", ");
        let again: Fields = [("Signature", line)].into_iter().collect();
        assert_eq!(
            signatures(&again).as_ref(),
            Ok(&sigs),
            "Signature round trip"
        );
    }

    let Ok(inputs) = signature_inputs(&fields) else {
        return;
    };
    // The whole field, re-serialized, reads back to the same entries.
    let whole = inputs
        .iter()
        .map(|i| format!("{}={}", i.label, i.params.serialized()))
        .collect::<Vec<_>>()
        .join(", ");
    let again: Fields = [("Signature-Input", whole)].into_iter().collect();
    assert_eq!(
        signature_inputs(&again).as_ref(),
        Ok(&inputs),
        "Signature-Input round trip"
    );

    let request = base_request(&fields);
    let response = HttpResponse {
        status: 200,
        fields: [
            ("Content-Type", "application/json"),
            ("Signature", "x=:AA==:"),
        ]
        .into_iter()
        .collect(),
        body: Vec::new(),
    };
    let signer = test_key();
    for input in &inputs {
        let again = reparse_input(input);
        assert_eq!(&again, input, "entry round trip");
        assert_eq!(again.params.serialized(), input.params.serialized());

        for id in input.params.covered() {
            let parsed = ComponentId::parse(id.as_str())
                .unwrap_or_else(|e| panic!("component {:?} does not re-parse: {e}", id.as_str()));
            assert_eq!(&parsed, id, "component round trip");
        }

        let p = &input.params;
        let rebuilt = SignatureParams::new(
            p.covered().to_vec(),
            Metadata {
                created: p.created,
                expires: p.expires,
                keyid: p.keyid.clone(),
                nonce: p.nonce.clone(),
                alg: p.alg.clone(),
                tag: p.tag.clone(),
            },
        )
        .unwrap_or_else(|e| panic!("SignatureParams::new refuses parsed params: {e}"));
        assert_eq!(rebuilt.covered(), p.covered());
        assert_eq!(
            (&rebuilt.created, &rebuilt.expires, &rebuilt.keyid),
            (&p.created, &p.expires, &p.keyid)
        );
        assert_eq!(
            (&rebuilt.nonce, &rebuilt.alg, &rebuilt.tag),
            (&p.nonce, &p.alg, &p.tag)
        );
        // The rebuilt (canonical order) serialization is itself a fixed point.
        let rebuilt_input = SignatureInput {
            label: input.label.clone(),
            params: rebuilt,
        };
        assert_eq!(reparse_input(&rebuilt_input), rebuilt_input);

        if let Ok(base) = signature_base(Message::Request(&request), p) {
            assert_base_shape(&base, p);
        }
        if let Ok(base) = signature_base(Message::Response(&response, Some(&request)), p) {
            assert_base_shape(&base, p);
        }

        // Sign/verify round trip over the arbitrary params. Components naming
        // the signature fields change when the signature is appended, so
        // they are left out of this check.
        let self_referential = p.covered().iter().any(|c| {
            matches!(c.name(), ComponentName::Field(f) if f == "signature" || f == "signature-input")
        });
        if self_referential {
            continue;
        }
        let mut signed = base_request(&Fields::new());
        if let Ok(base) = sign_request(&mut signed, "fz", p, signer) {
            assert_base_shape(&base, p);
            let (_, sig) = signatures(&signed.fields)
                .expect("signed request has a Signature field")
                .into_iter()
                .find(|(l, _)| l == "fz")
                .expect("signed request has the fz signature");
            let verified =
                verify_signature(Message::Request(&signed), p, &sig, signer.verifying_key());
            match &p.alg {
                Some(alg) if alg != "ed25519" => assert!(verified.is_err()),
                _ => assert_eq!(
                    verified.as_ref(),
                    Ok(&base),
                    "own signature does not verify"
                ),
            }
            let mut forged = sig.clone();
            forged[0] ^= 1;
            assert!(
                verify_signature(
                    Message::Request(&signed),
                    p,
                    &forged,
                    signer.verifying_key()
                )
                .is_err(),
                "a changed signature verifies"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// content_digest
// ---------------------------------------------------------------------------

const DIGEST_ALGS: [DigestAlgorithm; 2] = [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512];

/// RFC 9530 `Content-Digest`.
///
/// Input: the field value, LF, then the content. Properties:
///
/// - if `(field, content)` verifies, every returned algorithm is one of the
///   field's keys, and `content_digest(content, [alg])` verifies too;
/// - a verifying field stops verifying when the content changes, and when a
///   wrong `sha-512` member is appended;
/// - a field produced by [`digest::content_digest`] for any content and any
///   algorithm list verifies, with exactly those algorithms.
pub fn content_digest(data: &[u8]) {
    let (field, content) = split_once(data, b'\n');

    if let Ok(algs) = verify_content_digest(field, content) {
        assert!(!algs.is_empty(), "verified with no algorithm");
        for alg in &algs {
            let key = format!("{}=", alg.key());
            assert!(
                field.windows(key.len()).any(|w| w == key.as_bytes()),
                "verified {} which the field does not name",
                alg.key()
            );
            let ours = digest::content_digest(content, &[*alg]);
            assert_eq!(
                verify_content_digest(ours.as_bytes(), content),
                Ok(vec![*alg])
            );
        }
        let mut other = content.to_vec();
        other.push(0);
        assert!(
            verify_content_digest(field, &other).is_err(),
            "one field verifies two contents"
        );
        let mut with_wrong = field.to_vec();
        with_wrong.extend_from_slice(b", ");
        with_wrong.extend_from_slice(
            digest::content_digest(&other, &[DigestAlgorithm::Sha512]).as_bytes(),
        );
        assert!(
            verify_content_digest(&with_wrong, content).is_err(),
            "a wrong sha-512 member beside verifying ones is ignored"
        );
    }

    let selector = content.first().copied().unwrap_or(0);
    let mut chosen: Vec<DigestAlgorithm> = Vec::new();
    for (bit, alg) in DIGEST_ALGS.iter().enumerate() {
        if selector & (1 << bit) != 0 {
            chosen.push(*alg);
        }
    }
    if selector & 4 != 0 {
        chosen.reverse();
    }
    for algs in [&DIGEST_ALGS[..1], &DIGEST_ALGS[1..], &chosen[..]] {
        let ours = digest::content_digest(content, algs);
        let result = verify_content_digest(ours.as_bytes(), content);
        if algs.is_empty() {
            assert!(result.is_err(), "an empty field verifies");
        } else {
            assert_eq!(result.as_deref(), Ok(algs), "our own field does not verify");
        }
    }
}

// ---------------------------------------------------------------------------
// jwk
// ---------------------------------------------------------------------------

/// JWK parsing, thumbprints and the key primitives.
///
/// Input: JWK text. Properties:
///
/// - a presented key that parses has a public JWK without private members,
///   which re-parses (as a value and as bytes) to the same algorithm, kid and
///   thumbprint, and is itself a fixed point;
/// - the thumbprint is 43 base64url characters (a SHA-256);
/// - parsing with the key's own algorithm as the wanted one agrees;
/// - a private JWK that parses signs, and its verifying key accepts that
///   signature and refuses it over another message (a private JWK whose
///   halves disagree must not load: `fuzz/regressions/jwk/`).
pub fn jwk(data: &[u8]) {
    if data.len() > MAX_JWK_LEN {
        assert!(VerifyingKey::from_presented_jwk_bytes(data).is_err());
        return;
    }
    if let Ok(key) = VerifyingKey::from_presented_jwk_bytes(data) {
        check_public_key(&key);
        // Arbitrary bytes as a signature: must not panic, whatever the key.
        let _ = key.verify(b"gnapd fuzz", data);
        let _ = key.verify(data, &data[..data.len().min(64)]);
    }

    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for alg in Algorithm::ALL {
        if let Ok(key) = VerifyingKey::from_public_jwk(&value, Some(alg)) {
            assert_eq!(key.algorithm(), alg, "wanted algorithm not used");
            let own = VerifyingKey::from_presented_jwk(&value);
            if let Ok(own) = own
                && own.algorithm() == alg
            {
                assert_eq!(own.thumbprint(), key.thumbprint());
            }
        }
    }
    if let Ok(key) = VerifyingKey::from_shared_secret_jwk(&value) {
        assert_eq!(key.algorithm(), Algorithm::HmacSha256);
        assert!(
            key.public_jwk().is_none(),
            "a shared secret has a public JWK"
        );
    }
    if let Ok(signer) = SigningKey::from_private_jwk(&value, None) {
        let message = b"gnapd fuzz message";
        if let Ok(sig) = signer.sign(message) {
            let verifier = signer.verifying_key();
            assert!(
                verifier.verify(message, &sig).is_ok(),
                "a {} private key's own signature does not verify",
                signer.algorithm()
            );
            assert!(
                verifier.verify(b"gnapd fuzz messagE", &sig).is_err(),
                "a signature verifies another message"
            );
            if let Some(public) = verifier.public_jwk() {
                check_public_key(verifier);
                let again = VerifyingKey::from_presented_jwk(public)
                    .expect("a private key's public half is a presentable key");
                assert_eq!(again.thumbprint(), verifier.thumbprint());
            }
        }
    }
}

fn check_public_key(key: &VerifyingKey) {
    let tp = key.thumbprint().as_str();
    assert_eq!(tp.len(), 43, "thumbprint {tp:?} is not a SHA-256");
    assert!(
        tp.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "thumbprint {tp:?} is not base64url"
    );
    let public = key.public_jwk().expect("a presented key has a public JWK");
    let map = public.as_object().expect("the public JWK is an object");
    for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        assert!(!map.contains_key(private), "public JWK carries {private}");
    }
    let again = VerifyingKey::from_presented_jwk(public)
        .unwrap_or_else(|e| panic!("public JWK does not re-parse: {e}"));
    assert_eq!(again.thumbprint(), key.thumbprint(), "thumbprint changed");
    assert_eq!(again.algorithm(), key.algorithm(), "algorithm changed");
    assert_eq!(again.kid(), key.kid(), "kid changed");
    assert_eq!(
        again.public_jwk(),
        Some(public),
        "public JWK not a fixed point"
    );
    let bytes = serde_json::to_vec(public).expect("a Value serializes");
    let from_bytes = VerifyingKey::from_presented_jwk_bytes(&bytes)
        .unwrap_or_else(|e| panic!("public JWK text does not re-parse: {e}"));
    assert_eq!(from_bytes.thumbprint(), key.thumbprint());
    if let Ok(pinned) = VerifyingKey::from_public_jwk(public, Some(key.algorithm())) {
        assert_eq!(pinned.thumbprint(), key.thumbprint());
    } else {
        panic!("the key does not parse with its own algorithm pinned");
    }
}

// ---------------------------------------------------------------------------
// verify_request
// ---------------------------------------------------------------------------

/// Builds a request from arbitrary bytes when they are not HTTP/1.1 text:
/// `name:value` lines up to an empty line (lines without a colon are
/// skipped), then the body.
fn lenient_request(data: &[u8]) -> HttpRequest {
    let mut req = HttpRequest::new("POST", "https://as.example/gnap/tx");
    let mut rest = data;
    while !rest.is_empty() {
        let (line, tail) = split_once(rest, b'\n');
        rest = tail;
        if line.is_empty() {
            break;
        }
        let (name, value) = split_once(line, b':');
        if name.len() < line.len() {
            req.fields.append(lossy(name), value);
        }
    }
    req.body = rest.to_vec();
    req
}

/// Verifies an arbitrary request and checks what an `Ok` promises.
fn verify_arbitrary(request: &HttpRequest) {
    let key = test_key().verifying_key();
    let profile = GnapProfile::default();
    let store = MemoryNonceStore::with_capacity(64);
    // A request verifies at most once against the same store: the signature
    // that verified is remembered (its nonce, else its signature base), and
    // its replay ends the examination before any later signature.
    let mut labels: Vec<String> = Vec::new();
    for _ in 0..=MAX_SIGNATURES {
        let Ok(v) = profile.verify(request, key, NOW, &store) else {
            break;
        };
        assert!(
            labels.is_empty(),
            "a request verified twice ({labels:?}, then {})",
            v.label
        );
        assert_eq!(&v.thumbprint, key.thumbprint());
        assert!(
            v.created <= NOW + profile.max_skew && v.created >= NOW - profile.max_age,
            "created {} accepted outside the window",
            v.created
        );
        assert!(v.covered.iter().any(|c| c.as_str() == "\"@method\""));
        assert!(v.covered.iter().any(|c| c.as_str() == "\"@target-uri\""));
        if !request.body.is_empty() {
            assert!(v.covered.iter().any(|c| c.as_str() == "\"content-digest\""));
            let field = request
                .fields
                .lines("content-digest")
                .next()
                .expect("content with no Content-Digest verified");
            assert!(verify_content_digest(field, &request.body).is_ok());
        }
        if request.fields.contains("authorization") {
            assert!(v.covered.iter().any(|c| c.as_str() == "\"authorization\""));
        }
        let input = signature_inputs(&request.fields)
            .expect("verified request has readable Signature-Input")
            .into_iter()
            .find(|i| i.label == v.label)
            .expect("verified label is in Signature-Input");
        assert_eq!(input.params.tag.as_deref(), Some("gnap"));
        assert!(input.params.alg.is_none());
        labels.push(v.label);
    }
    // The rotation path: same key as old and new must not panic.
    let _ = profile.verify_rotation(request, key, key, NOW, &MemoryNonceStore::with_capacity(64));
}

/// Options bits of a signed base request, see [`signed_request`].
const OPT_AUTH: u8 = 1;
const OPT_MCP: u8 = 2;
const OPT_BODY: u8 = 4;
const OPT_NONCE: u8 = 8;

/// The unsigned request behind [`signed_request`]: an uncovered header
/// (`x-unsigned`, `content-type`) always, covered ones by `opts`.
fn unsigned_request(opts: u8) -> HttpRequest {
    let mut req = HttpRequest::new("POST", "https://as.example/gnap/tx?x=1")
        .with_field("Content-Type", "application/json")
        .with_field("X-Unsigned", "free");
    if opts & OPT_AUTH != 0 {
        req.fields
            .append("Authorization", "GNAP 80UPRY5NM33OMUKMKSKU");
    }
    if opts & OPT_MCP != 0 {
        req.fields.append("Mcp-Session-Id", "s-1");
        req.fields.append("Mcp-Method", "tools/call");
    }
    if opts & OPT_BODY != 0 {
        req.body =
            br#"{"access_token":{"access":["foo"]},"client":"7C7C4AZ9KHRS6X63AJAO"}"#.to_vec();
    }
    req
}

/// The 16 signed variants, signed once with [`test_key`] at [`NOW`]. Each
/// is checked to verify as signed.
fn signed_request(opts: u8) -> &'static HttpRequest {
    static SIGNED: OnceLock<Vec<HttpRequest>> = OnceLock::new();
    let all = SIGNED.get_or_init(|| {
        (0..16u8)
            .map(|opts| {
                let mut req = unsigned_request(opts);
                let options = SignOptions {
                    nonce: opts & OPT_NONCE != 0,
                    ..SignOptions::default()
                };
                sign_gnap(&mut req, test_key(), NOW, &options).expect("sign_gnap");
                let verified = GnapProfile::default().verify(
                    &req,
                    test_key().verifying_key(),
                    NOW,
                    &MemoryNonceStore::with_capacity(4),
                );
                assert!(
                    verified.is_ok(),
                    "a freshly signed request fails: {verified:?}"
                );
                req
            })
            .collect()
    });
    &all[usize::from(opts & 15)]
}

/// RFC 9421 §2.1 canonical value of one field line: surrounding whitespace
/// stripped, each obsolete line fold (a run of whitespace holding a line
/// break and a space or tab) replaced by one space.
fn canonical_line(value: &[u8]) -> Vec<u8> {
    let value = value.trim_ascii();
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let run = value[i..]
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .count();
        if run == 0 {
            out.push(value[i]);
            i += 1;
            continue;
        }
        let ws = &value[i..i + run];
        let has_break = ws.iter().any(|b| matches!(b, b'\r' | b'\n'));
        let has_space = ws.iter().any(|b| matches!(b, b' ' | b'\t'));
        if has_break && has_space {
            out.push(b' ');
        } else {
            out.extend_from_slice(ws);
        }
        i += run;
    }
    out
}

/// What a mutation did, for the assertion.
enum Expect {
    /// The mutation may have changed nothing the signature covers; if
    /// verification succeeds, `no_op` must be true.
    OkOnlyIf { no_op: bool, what: &'static str },
    /// Nothing covered changed: verification must still succeed.
    StillOk(&'static str),
    /// Verification must succeed exactly when this is true.
    OkIff(bool, &'static str),
    /// Nothing to check.
    Anything,
}

/// Mutates one component of a signed request as `data` says and checks that
/// the signature binds it. `data[0]` picks the mutation, `data[1]` the
/// signed variant (see `OPT_*`), the rest is the new value.
fn verify_mutated(data: &[u8]) {
    let [kind, opts, payload @ ..] = data else {
        return;
    };
    let original = signed_request(*opts);
    let mut req = original.clone();
    let mut now = NOW;
    let covered: Vec<String> = signature_inputs(&original.fields)
        .expect("signed request has Signature-Input")
        .remove(0)
        .params
        .covered()
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    let is_covered = |name: &str| covered.iter().any(|c| *c == format!("\"{name}\""));
    // Fields present other than the signature's own, lowercase, in order.
    let mut names: Vec<String> = original
        .fields
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| n != "signature" && n != "signature-input")
        .collect();
    names.dedup();
    let pick = payload.first().map_or(0, |b| usize::from(*b)) % names.len();
    let field = names[pick].clone();
    let tail = payload.get(1..).unwrap_or_default();

    let expect = match kind % 10 {
        0 => {
            req.method = lossy(payload);
            Expect::OkOnlyIf {
                no_op: req.method == original.method,
                what: "method",
            }
        }
        1 => {
            req.target_uri = lossy(payload);
            Expect::OkOnlyIf {
                no_op: req.target_uri == original.target_uri,
                what: "target URI",
            }
        }
        2 => {
            let before: Vec<u8> = original
                .fields
                .lines(&field)
                .next()
                .unwrap_or_default()
                .to_vec();
            req.fields.set(&field, tail);
            if is_covered(&field) {
                Expect::OkOnlyIf {
                    no_op: canonical_line(tail) == canonical_line(&before),
                    what: "covered field value",
                }
            } else {
                Expect::StillOk("uncovered field value")
            }
        }
        3 => {
            req.fields.remove(&field);
            if is_covered(&field) {
                Expect::OkOnlyIf {
                    no_op: false,
                    what: "covered field removed",
                }
            } else if field == "content-digest" || field == "authorization" {
                Expect::Anything
            } else {
                Expect::StillOk("uncovered field removed")
            }
        }
        4 => {
            req.fields.append(field.to_ascii_uppercase(), tail);
            if is_covered(&field) {
                Expect::OkOnlyIf {
                    no_op: false,
                    what: "line appended to covered field",
                }
            } else {
                Expect::StillOk("line appended to uncovered field")
            }
        }
        5 => {
            req.body = payload.to_vec();
            Expect::OkOnlyIf {
                no_op: req.body == original.body,
                what: "body",
            }
        }
        6 => {
            let delta = i64::from(i16::from_le_bytes([
                payload.first().copied().unwrap_or(0),
                payload.get(1).copied().unwrap_or(0),
            ]));
            now = NOW + delta;
            let profile = GnapProfile::default();
            Expect::OkIff(
                delta >= -profile.max_skew && delta <= profile.max_age,
                "clock",
            )
        }
        7 => {
            let (label, signed_sig) = signatures(&original.fields)
                .expect("signed request has Signature")
                .remove(0);
            let mut sig = signed_sig.clone();
            let at = payload.first().map_or(0, |b| usize::from(*b));
            let xor = payload.get(1).copied().unwrap_or(1);
            match payload.get(2).copied().unwrap_or(0) % 3 {
                0 => {
                    let i = at % sig.len();
                    sig[i] ^= xor;
                }
                1 => sig.truncate(at % sig.len()),
                _ => sig.extend_from_slice(payload),
            }
            let no_op = sig == signed_sig;
            req.fields
                .set("Signature", format!("{label}=:{}:", b64::encode_std(&sig)));
            Expect::OkOnlyIf {
                no_op,
                what: "signature bytes",
            }
        }
        8 => {
            req.fields.set("Signature-Input", payload);
            let signed =
                &signature_inputs(&original.fields).expect("signed request has Signature-Input")[0];
            let no_op = signature_inputs(&req.fields).is_ok_and(|inputs| {
                inputs.iter().any(|i| {
                    i.label == signed.label && i.params.serialized() == signed.params.serialized()
                })
            });
            Expect::OkOnlyIf {
                no_op,
                what: "Signature-Input",
            }
        }
        _ => {
            // Rename a field: case changes are no-ops (names are
            // case-insensitive), anything else removes a covered field.
            let new_name = lossy(tail);
            let renamed: Fields = req
                .fields
                .iter()
                .map(|(n, v)| {
                    if n.eq_ignore_ascii_case(&field) {
                        (new_name.clone(), v.to_vec())
                    } else {
                        (n.to_owned(), v.to_vec())
                    }
                })
                .collect();
            req.fields = renamed;
            if is_covered(&field) {
                Expect::OkOnlyIf {
                    no_op: new_name.eq_ignore_ascii_case(&field),
                    what: "covered field renamed",
                }
            } else {
                Expect::Anything
            }
        }
    };

    let result = GnapProfile::default().verify(
        &req,
        test_key().verifying_key(),
        now,
        &MemoryNonceStore::with_capacity(4),
    );
    match expect {
        Expect::OkOnlyIf { no_op, what } => assert!(
            result.is_err() || no_op,
            "a changed {what} still verifies (field {field:?})"
        ),
        Expect::StillOk(what) => assert!(
            result.is_ok(),
            "{what} ({field:?}) broke verification: {result:?}"
        ),
        Expect::OkIff(ok, what) => assert_eq!(
            result.is_ok(),
            ok,
            "{what}: now={now}, created={NOW}: {result:?}"
        ),
        Expect::Anything => {}
    }
    // Whatever happened, the reason has a metrics name.
    if let Err(e) = &result {
        let _: &'static str = Rejection::reason(e);
    }
}

/// The GNAP profile verifier.
///
/// Input: HTTP/1.1 request text (else `name:value` lines, a blank line and
/// the body, for a fixed method and URI). Two checks run on every input:
///
/// - the request is verified with the fixed key at [`NOW`]: no panic, and an
///   `Ok` keeps every promise of the profile (window, required components,
///   digest, no replay of the same label);
/// - a request signed with `sign_gnap` has one covered component (method,
///   target URI, a field value or line, the body, the clock, the signature
///   bytes, `Signature-Input`) changed as the input says: verification must
///   fail unless the change was a no-op, and must keep succeeding when only
///   uncovered fields change.
pub fn verify_request(data: &[u8]) {
    match parse_raw_request(data, "https") {
        Ok(request) => verify_arbitrary(&request),
        Err(_) => verify_arbitrary(&lenient_request(data)),
    }
    verify_mutated(data);
}

/// A second fixed Ed25519 key (seed bytes `0x42`), the new key of the
/// rotation seed.
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

/// Writes `request` as HTTP/1.1 text with an absolute-form target, the form
/// [`parse_raw_request`] reads back.
fn raw_request(req: &HttpRequest) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\n", req.method, req.target_uri).into_bytes();
    for (name, value) in req.fields.iter() {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(&req.body);
    out
}

/// The signed seed requests of the `verify_request` target, as
/// `(file name, HTTP/1.1 text)`: requests signed by `sign_gnap` with
/// [`test_key`] at [`NOW`], which verify as they are. Nonces are random, so
/// files with one differ from run to run.
pub fn signed_seed_requests() -> Vec<(&'static str, Vec<u8>)> {
    let key = test_key();
    let no_nonce = SignOptions {
        nonce: false,
        ..SignOptions::default()
    };
    let mut out = Vec::new();
    let mut get = HttpRequest::new("GET", "https://as.example/gnap/tx/7C7C4AZ9");
    sign_gnap(&mut get, key, NOW, &no_nonce).expect("sign");
    out.push(("seed-signed-get.http", raw_request(&get)));
    let mut post = HttpRequest::new("POST", "https://as.example/gnap/tx?x=1")
        .with_field("Content-Type", "application/json")
        .with_field("Authorization", "GNAP 80UPRY5NM33OMUKMKSKU")
        .with_field("Mcp-Session-Id", "s-1")
        .with_body(&br#"{"access_token":{"access":["foo"]}}"#[..]);
    sign_gnap(&mut post, key, NOW, &no_nonce).expect("sign");
    out.push(("seed-signed-post.http", raw_request(&post)));
    let mut expires =
        HttpRequest::new("PATCH", "https://as.example/gnap/tx/1").with_body(&b"x"[..]);
    let options = SignOptions {
        expires_in: Some(60),
        ..SignOptions::default()
    };
    sign_gnap(&mut expires, key, NOW, &options).expect("sign");
    out.push(("seed-signed-nonce-expires.http", raw_request(&expires)));
    let mut two = HttpRequest::new("POST", "https://as.example/gnap/tx");
    sign_gnap(&mut two, key, NOW, &no_nonce).expect("sign");
    let second = SignOptions {
        label: "sig2".into(),
        ..SignOptions::default()
    };
    sign_gnap(&mut two, key, NOW, &second).expect("sign");
    out.push(("seed-signed-two-labels.http", raw_request(&two)));
    let mut rotation =
        HttpRequest::new("POST", "https://as.example/gnap/continue/1").with_body(&b"{}"[..]);
    crate::proto::httpsig::sign_gnap_rotation(&mut rotation, key, &second_key(), NOW)
        .expect("sign rotation");
    out.push(("seed-signed-rotation.http", raw_request(&rotation)));
    out
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
            verify_request(data);
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
    const HOOKS: [(&str, Hook); 9] = [
        ("signature_fields", signature_fields),
        ("verify_request", verify_request),
        ("content_digest", content_digest),
        ("jwk", jwk),
        ("grant_request", grant_request),
        ("jsonrpc", jsonrpc),
        ("sse_filter", sse_filter),
        ("grant_machine", grant_machine),
        ("admin_socket", admin_socket),
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
