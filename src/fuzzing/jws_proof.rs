//! The `jws_proof` hook: the JWS key proofs (RFC 9635 §7.3.3 `jwsd`,
//! §7.3.4 `jws`, and their rotations) on arbitrary requests, and proofs
//! gnapd makes over the input's body.

use super::*;
use crate::proto::jws_proof::{
    APPLICATION_JOSE, DETACHED_JWS, JwsMethod, JwsRejection, ProofTarget, Typ, sign_attached,
    sign_detached, sign_rotation, unverified_content, unverified_rotation_content, verify,
    verify_rotation,
};

#[cfg(test)]
mod seeds;

// Where every request of this hook goes.
const METHOD: &str = "POST";
const URI: &str = "https://as.example/gnap/tx";
/// The access token a request presents when [`TOKEN`] is set.
const ACCESS_TOKEN: &str = "80UPRY5NM33OMUKMKSKU";

// Flag bits, the input's first byte.

/// The request's content is `application/jose` (else `application/json`).
const JOSE: u8 = 1;
/// The request presents [`ACCESS_TOKEN`] (`Authorization: GNAP …`).
const TOKEN: u8 = 2;
/// The request has no `Detached-JWS` field.
const NO_FIELD: u8 = 4;
/// The detached proofs gnapd makes keep the digest as their payload
/// segment (else it is left empty, RFC 7515 Appendix F).
const ATTACH_DIGEST: u8 = 8;

const METHODS: [JwsMethod; 2] = [JwsMethod::Detached, JwsMethod::Attached];

/// The fuzzer's bytes, split.
struct Input<'a> {
    flags: u8,
    /// Which byte of a signed body the round trips flip.
    flip_at: u8,
    field: &'a [u8],
    body: &'a [u8],
}

impl<'a> Input<'a> {
    /// `[flags, flip_at]`, then the `Detached-JWS` value up to the first
    /// LF, then the body (missing bytes read as zero or empty).
    fn read(data: &'a [u8]) -> Self {
        let (head, rest) = data.split_at(data.len().min(2));
        let (field, body) = split_once(rest, b'\n');
        Self {
            flags: head.first().copied().unwrap_or(0),
            flip_at: head.get(1).copied().unwrap_or(0),
            field,
            body,
        }
    }
}

impl Input<'_> {
    /// The request the input describes.
    fn request(&self) -> HttpRequest {
        let content_type = if self.flags & JOSE != 0 {
            APPLICATION_JOSE
        } else {
            "application/json"
        };
        let field = (self.flags & NO_FIELD == 0).then_some(self.field);
        build_request(
            Some(content_type),
            field,
            self.flags & TOKEN != 0,
            self.body,
        )
    }
}

/// The two fixed keys: [`test_key`], and [`second_key`] under the same
/// `kid`, so that every header check treats them alike and only the
/// signature can tell which one signed.
fn keys() -> [&'static SigningKey; 2] {
    static OTHER: OnceLock<SigningKey> = OnceLock::new();
    let other = OTHER.get_or_init(|| {
        let kid = test_key()
            .verifying_key()
            .kid()
            .expect("the test key has a kid");
        second_key().with_kid(kid).expect("a kid can be set")
    });
    [test_key(), other]
}

/// The fixed key that is not `key`.
fn stranger(key: &SigningKey) -> &'static SigningKey {
    let [test, other] = keys();
    if key.verifying_key().thumbprint() == test.verifying_key().thumbprint() {
        other
    } else {
        test
    }
}

/// A replay cache remembering nothing yet.
fn fresh_store() -> MemoryNonceStore {
    MemoryNonceStore::with_capacity(64)
}

/// A `POST` to [`URI`] with `body`, the given `Content-Type`, the
/// `Detached-JWS` value and, if `token`, the access token.
fn build_request(
    content_type: Option<&str>,
    field: Option<&[u8]>,
    token: bool,
    body: &[u8],
) -> HttpRequest {
    let mut req = HttpRequest::new(METHOD, URI).with_body(body.to_vec());
    if let Some(content_type) = content_type {
        req.fields.append("Content-Type", content_type);
    }
    if let Some(field) = field {
        req.fields.append(DETACHED_JWS, field);
    }
    if token {
        req.fields
            .append("Authorization", format!("GNAP {ACCESS_TOKEN}"));
    }
    req
}

/// The JWS proofs on arbitrary and freshly signed requests.
///
/// Input: a flags byte (`JOSE`, `TOKEN`, `NO_FIELD`, `ATTACH_DIGEST`), a
/// byte picking which body byte to flip, the `Detached-JWS` value, LF, the
/// body. Properties, for both methods, with the two fixed Ed25519 keys at
/// [`NOW`]:
///
/// - `verify`, `verify_rotation`, `unverified_content` and
///   `unverified_rotation_content` never panic;
/// - a request that verifies was signed by that key: it fails with
///   `BadSignature` under the other key (same `kid`, same algorithm); a
///   rotation that verifies fails when either key is swapped;
/// - what verifies is refused as `Replayed` the second time against the
///   same replay cache;
/// - an accepted proof is inside the `created` window and returns the
///   content `unverified_content` / `unverified_rotation_content` read;
/// - a `jwsd`, `jws` or rotation proof gnapd signs over the input's body
///   verifies with the fixed key, and no longer after one byte of the body
///   is flipped.
pub fn jws_proof(data: &[u8]) {
    let input = Input::read(data);
    let arbitrary = input.request();
    check_unverified(&arbitrary.body);
    for method in METHODS {
        let _ = verified_by(method, &arbitrary);
        let _ = rotation_verified_by(method, &arbitrary);
    }
    round_trips(&input);
}

/// The unverified readers agree with each other.
fn check_unverified(body: &[u8]) {
    let content = unverified_content(body);
    let rotation = unverified_rotation_content(body);
    match (&content, &rotation) {
        (Err(e), _) => assert_eq!(rotation, Err(e.clone()), "the readers disagree"),
        (Ok(content), Ok((inner, false))) => assert_eq!(content, inner, "not nested, yet changed"),
        _ => {}
    }
}

/// The fixed key `request` verifies with under `method`, if any, after
/// checking what that promises.
fn verified_by(method: JwsMethod, request: &HttpRequest) -> Option<&'static SigningKey> {
    let profile = GnapProfile::default();
    let mut signer = None;
    for key in keys() {
        let store = fresh_store();
        let Ok(verified) = verify(method, request, key.verifying_key(), &profile, NOW, &store)
        else {
            continue;
        };
        assert!(signer.is_none(), "{method:?}: verified with both keys");
        assert_eq!(&verified.thumbprint, key.verifying_key().thumbprint());
        assert!(
            verified.created <= NOW + profile.max_skew && verified.created >= NOW - profile.max_age,
            "created {} accepted outside the window",
            verified.created
        );
        let content = match method {
            JwsMethod::Attached if !request.body.is_empty() => {
                Some(unverified_content(&request.body).expect("a verified body is a JWS"))
            }
            _ => None,
        };
        assert_eq!(verified.content, content, "{method:?}: content");
        let other = stranger(key).verifying_key();
        assert_eq!(
            verify(method, request, other, &profile, NOW, &fresh_store()),
            Err(JwsRejection::BadSignature),
            "{method:?}: a proof verified under another key's header checks"
        );
        assert_eq!(
            verify(method, request, key.verifying_key(), &profile, NOW, &store),
            Err(JwsRejection::Replayed),
            "{method:?}: the same proof accepted twice"
        );
        signer = Some(key);
    }
    signer
}

/// The (old, new) fixed keys a rotation `request` verifies with under
/// `method`, if any, after checking what that promises.
fn rotation_verified_by(
    method: JwsMethod,
    request: &HttpRequest,
) -> Option<(&'static SigningKey, &'static SigningKey)> {
    let profile = GnapProfile::default();
    let rotate = |old: &SigningKey, new: &SigningKey, store: &MemoryNonceStore| {
        verify_rotation(
            method,
            request,
            old.verifying_key(),
            new.verifying_key(),
            &profile,
            NOW,
            store,
        )
    };
    let mut signers = None;
    for old in keys() {
        for new in keys() {
            let store = fresh_store();
            let Ok(verified) = rotate(old, new, &store) else {
                continue;
            };
            assert!(signers.is_none(), "{method:?}: a rotation verified twice");
            assert_eq!(&verified.old, old.verifying_key().thumbprint());
            assert_eq!(&verified.new, new.verifying_key().thumbprint());
            match method {
                JwsMethod::Detached => assert_eq!(verified.content, None),
                JwsMethod::Attached => {
                    let content = verified.content.clone().expect("jws rotation content");
                    assert_eq!(
                        unverified_rotation_content(&request.body),
                        Ok((content, true)),
                        "the unverified rotation reader read other content"
                    );
                }
            }
            for (swapped, what) in [
                (rotate(stranger(old), new, &fresh_store()), "old"),
                (rotate(old, stranger(new), &fresh_store()), "new"),
            ] {
                assert_eq!(
                    swapped,
                    Err(JwsRejection::BadSignature),
                    "{method:?}: a rotation verified with another {what} key"
                );
            }
            assert_eq!(
                rotate(old, new, &store),
                Err(JwsRejection::Replayed),
                "{method:?}: the same rotation accepted twice"
            );
            signers = Some((old, new));
        }
    }
    signers
}

/// `request` with the byte `at` (modulo the length) of its body flipped;
/// `None` without a body.
fn flipped(request: &HttpRequest, at: u8) -> Option<HttpRequest> {
    if request.body.is_empty() {
        return None;
    }
    let mut changed = request.clone();
    let i = usize::from(at) % changed.body.len();
    changed.body[i] ^= 1;
    Some(changed)
}

/// Proofs made over the input's body verify, bind the body, and are the
/// proofs of the fixed key only.
fn round_trips(input: &Input<'_>) {
    let token = input.flags & TOKEN != 0;
    let target = ProofTarget {
        method: METHOD,
        uri: URI,
        created: NOW,
        access_token: token.then_some(ACCESS_TOKEN),
    };
    let attach_digest = input.flags & ATTACH_DIGEST != 0;
    let body = input.body;
    let [key, new_key] = keys();
    let json = Some("application/json");
    let jose = Some(APPLICATION_JOSE);

    let jwsd = sign_detached(key, Typ::Jwsd, &target, body, attach_digest).expect("jwsd signs");
    let jwsd = build_request(json, Some(jwsd.as_bytes()), token, body);
    // jws with content: the body is the proof; without, a detached proof.
    let jws = if body.is_empty() {
        let proof = sign_detached(key, Typ::Jws, &target, body, attach_digest).expect("jws signs");
        build_request(None, Some(proof.as_bytes()), token, body)
    } else {
        let proof = sign_attached(key, &target, body).expect("jws signs");
        assert_eq!(unverified_content(proof.as_bytes()).as_deref(), Ok(body));
        build_request(jose, None, token, proof.as_bytes())
    };
    for (method, signed) in [(JwsMethod::Detached, &jwsd), (JwsMethod::Attached, &jws)] {
        let signer = verified_by(method, signed).map(|k| k.verifying_key().thumbprint());
        assert_eq!(
            signer,
            Some(key.verifying_key().thumbprint()),
            "{method:?}: a proof gnapd made does not verify"
        );
        if let Some(changed) = flipped(signed, input.flip_at) {
            assert!(
                verified_by(method, &changed).is_none(),
                "{method:?}: a proof verifies after a body byte was flipped"
            );
        }
    }

    for method in METHODS {
        let proof = sign_rotation(method, key, new_key, &target, body).expect("rotation signs");
        let signed = match method {
            JwsMethod::Detached => build_request(json, Some(proof.as_bytes()), token, body),
            JwsMethod::Attached => build_request(jose, None, token, proof.as_bytes()),
        };
        let signers = rotation_verified_by(method, &signed).map(|(old, new)| {
            (
                old.verifying_key().thumbprint(),
                new.verifying_key().thumbprint(),
            )
        });
        assert_eq!(
            signers,
            Some((
                key.verifying_key().thumbprint(),
                new_key.verifying_key().thumbprint()
            )),
            "{method:?}: a rotation gnapd made does not verify"
        );
        if method == JwsMethod::Attached {
            assert_eq!(
                unverified_rotation_content(&signed.body),
                Ok((body.to_vec(), true))
            );
        }
        if let Some(changed) = flipped(&signed, input.flip_at) {
            assert!(
                rotation_verified_by(method, &changed).is_none(),
                "{method:?}: a rotation verifies after a body byte was flipped"
            );
        }
    }
}
