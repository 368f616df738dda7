//! Reading a compact JWS and checking its JOSE header against the request
//! (RFC 9635 §7.3.3, §7.3.4; RFC 7515 §4.1).
//!
//! The header is read into [`ProofHeader`] before any check, and every check
//! here needs neither cryptography nor the replay cache, so a mis-aimed proof
//! costs no signature verification.

use serde_json::{Map, Value};
use subtle::ConstantTimeEq as _;

use super::JwsRejection;
use crate::proto::alg::Algorithm;
use crate::proto::b64;
use crate::proto::httpsig::{GnapProfile, HttpRequest};
use crate::proto::jwk::VerifyingKey;

/// Largest compact JWS read from a `Detached-JWS` field, in bytes. A key
/// rotation nests one JWS in another: an RSA-4096 inner proof (its header,
/// a digest and a 512-byte signature) base64url-encoded again stays near
/// 3 KiB; anything much larger is not a proof gnapd could have asked for.
pub const MAX_DETACHED_LEN: usize = 8 * 1024;

/// Largest JOSE header accepted, in decoded bytes. The members the proof
/// needs fit in a few hundred; the bound keeps a hostile header from
/// costing a large JSON parse before any check.
pub const MAX_HEADER_LEN: usize = 2 * 1024;

/// The `typ` values of the two methods and of their rotation proofs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typ {
    /// `gnap-binding-jwsd` (§7.3.3).
    Jwsd,
    /// `gnap-binding-jws` (§7.3.4).
    Jws,
    /// `gnap-binding-rotation-jwsd`: the old key's proof in a rotation.
    RotationJwsd,
    /// `gnap-binding-rotation-jws`: the old key's proof in a rotation.
    RotationJws,
}

impl Typ {
    /// The value as RFC 9635's text writes it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Jwsd => "gnap-binding-jwsd",
            Self::Jws => "gnap-binding-jws",
            Self::RotationJwsd => "gnap-binding-rotation-jwsd",
            Self::RotationJws => "gnap-binding-rotation-jws",
        }
    }

    /// RFC 7515 §4.1.9: `typ` is a media type, compared case-insensitively,
    /// and may be written with or without its `application/` prefix. The
    /// `+` spelling of the RFC's example is not the registered name and is
    /// refused (spec-notes/rfc9635.md).
    pub(super) fn matches(self, sent: &str) -> bool {
        let bare = match sent.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &sent[12..],
            _ => sent,
        };
        bare.eq_ignore_ascii_case(self.name())
    }
}

/// The members of a GNAP proof's JOSE header, read but not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofHeader {
    /// `alg`: the JWS algorithm.
    pub alg: String,
    /// `kid`: the key's identifier.
    pub kid: Option<String>,
    /// `typ`, as sent.
    pub typ: String,
    /// `htm`: the request method.
    pub htm: String,
    /// `uri`: the absolute request URI.
    pub uri: String,
    /// `created`: Unix seconds.
    pub created: i64,
    /// `ath`: base64url SHA-256 of the presented access token.
    pub ath: Option<String>,
}

/// The header members this module processes: the only ones a `crit` list
/// may name (RFC 7515 §4.1.11: a recipient that does not understand a
/// critical member must refuse the JWS).
const UNDERSTOOD: [&str; 4] = ["htm", "uri", "created", "ath"];

/// A compact JWS split into its parts, its header read.
#[derive(Debug, Clone)]
pub(super) struct Compact<'a> {
    pub header_b64: &'a str,
    pub payload_b64: &'a str,
    pub signature: Vec<u8>,
    pub header: ProofHeader,
}

impl<'a> Compact<'a> {
    /// Splits `text` into exactly three segments and reads the header.
    pub fn parse(text: &'a str) -> Result<Self, JwsRejection> {
        let mut parts = text.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(JwsRejection::Malformed);
        };
        if parts.next().is_some() {
            return Err(JwsRejection::ExtraSegments);
        }
        if header_b64.len() > MAX_HEADER_LEN.div_ceil(3) * 4 {
            return Err(JwsRejection::HeaderTooLarge);
        }
        let header = b64::decode_url(header_b64).ok_or(JwsRejection::Malformed)?;
        let header = match serde_json::from_slice(&header) {
            Ok(Value::Object(map)) => read_header(&map)?,
            _ => return Err(JwsRejection::Malformed),
        };
        let signature = b64::decode_url(signature_b64).ok_or(JwsRejection::Malformed)?;
        Ok(Self {
            header_b64,
            payload_b64,
            signature,
            header,
        })
    }

    /// The JWS signing input with `payload_b64` as its payload segment.
    pub fn signing_input(&self, payload_b64: &str) -> Vec<u8> {
        let mut input = Vec::with_capacity(self.header_b64.len() + 1 + payload_b64.len());
        input.extend_from_slice(self.header_b64.as_bytes());
        input.push(b'.');
        input.extend_from_slice(payload_b64.as_bytes());
        input
    }
}

fn read_header(map: &Map<String, Value>) -> Result<ProofHeader, JwsRejection> {
    let text = |name: &'static str| match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JwsRejection::Member(name)),
    };
    let required = |name: &'static str| text(name)?.ok_or(JwsRejection::Missing(name));
    if let Some(crit) = map.get("crit") {
        let names = crit.as_array().ok_or(JwsRejection::Member("crit"))?;
        if names.is_empty() {
            return Err(JwsRejection::Member("crit"));
        }
        for name in names {
            match name.as_str() {
                Some(n) if UNDERSTOOD.contains(&n) && map.contains_key(n) => {}
                _ => return Err(JwsRejection::UnknownCritical),
            }
        }
    }
    // RFC 7797: `b64: false` would sign the payload unencoded, another
    // signing input than the one rebuilt here.
    if map.get("b64").is_some_and(|b| b != &Value::Bool(true)) {
        return Err(JwsRejection::UnknownCritical);
    }
    let created = match map.get("created") {
        None => return Err(JwsRejection::Missing("created")),
        Some(Value::Number(n)) => n.as_i64().ok_or(JwsRejection::Member("created"))?,
        Some(_) => return Err(JwsRejection::Member("created")),
    };
    Ok(ProofHeader {
        alg: required("alg")?,
        kid: text("kid")?,
        typ: required("typ")?,
        htm: required("htm")?,
        uri: required("uri")?,
        created,
        ath: text("ath")?,
    })
}

impl ProofHeader {
    /// Every rule of §7.3.3/§7.3.4 for this header: `typ`, `alg` against the
    /// key, `kid`, `htm`, `uri`, `created` in the window, `ath` against the
    /// presented token. Returns `created`.
    pub(super) fn check(
        &self,
        typ: Typ,
        key: &VerifyingKey,
        request: &HttpRequest,
        profile: &GnapProfile,
        now: i64,
    ) -> Result<i64, JwsRejection> {
        if !typ.matches(&self.typ) {
            return Err(JwsRejection::Typ(typ.name()));
        }
        check_alg(&self.alg, key)?;
        if self.kid.as_deref() != key.kid() {
            return Err(JwsRejection::KidMismatch);
        }
        if self.htm != request.method {
            return Err(JwsRejection::Htm);
        }
        check_uri(&self.uri, &request.target_uri)?;
        let ahead = self.created.saturating_sub(now);
        if ahead > profile.max_skew {
            return Err(JwsRejection::CreatedInFuture(ahead));
        }
        let age = now.saturating_sub(self.created);
        if age > profile.max_age {
            return Err(JwsRejection::TooOld(age));
        }
        check_ath(self.ath.as_deref(), request)?;
        Ok(self.created)
    }
}

/// `alg` "MUST NOT be `none`", "MUST be appropriate to the key" and, for a
/// JWK with an `alg` member, "MUST be equal to" it.
fn check_alg(alg: &str, key: &VerifyingKey) -> Result<(), JwsRejection> {
    if alg.eq_ignore_ascii_case("none") {
        return Err(JwsRejection::AlgNone);
    }
    let jwk_alg = key
        .public_jwk()
        .and_then(|jwk| jwk.get("alg"))
        .and_then(Value::as_str);
    let fits = match jwk_alg {
        Some(named) => alg == named,
        None => Algorithm::from_jws_signature_name(alg) == Some(key.algorithm()),
    };
    if fits {
        Ok(())
    } else {
        Err(JwsRejection::AlgMismatch)
    }
}

/// `uri`: "an absolute URI … no fragment component", equal to the URI the
/// request was sent to (the edge rebuilds it from the public URL).
fn check_uri(uri: &str, target_uri: &str) -> Result<(), JwsRejection> {
    if uri.contains('#') {
        return Err(JwsRejection::UriFragment);
    }
    if uri != target_uri {
        return Err(JwsRejection::Uri);
    }
    Ok(())
}

/// `ath` is required when the request presents an access token and must
/// hash that token; without a token it has nothing to bind and is refused.
/// An `Authorization` field that is not one `GNAP <token>` cannot be
/// covered at all.
fn check_ath(ath: Option<&str>, request: &HttpRequest) -> Result<(), JwsRejection> {
    let token = crate::proto::gnap::token::presented(request);
    if token.is_none() && request.fields.contains("authorization") {
        return Err(JwsRejection::Authorization);
    }
    match (token, ath) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(JwsRejection::UnexpectedAth),
        (Some(_), None) => Err(JwsRejection::Missing("ath")),
        (Some(token), Some(ath)) => {
            let expected = b64::encode_url(&crate::proto::hash::sha256(token.as_bytes()));
            if bool::from(expected.as_bytes().ct_eq(ath.as_bytes())) {
                Ok(())
            } else {
                Err(JwsRejection::Ath)
            }
        }
    }
}
