//! Every key proofing method the AS lists beside `httpsig` (RFC 9635
//! §7.3.2 `mtls`, §7.3.3 `jwsd`, §7.3.4 `jws`): for each, the flow a
//! client lives through with a key by value (grant, continuation, token
//! rotation, revocation, key rotation) and the proofs the AS must refuse.
//!
//! The ids belong to the groups they check (`grant-proof-jwsd`,
//! `negative-jwsd-tampered`, `token-key-rotation-mtls-refused`…) and name
//! their method; one file a kind of check: [`flow`], [`jws_refusals`],
//! [`mtls_refusals`], [`key_rotation`]. A method the AS does not list makes
//! its checks `not_applicable`.

use std::sync::Arc;

use super::Session;
use crate::conformance::check::{Check, Level, Verdict};
use crate::conformance::proof::{CertForm, JwsKey, Mtls, ProofSigner, SIGNED_METHODS};
use crate::proto::jws_proof::JwsMethod;

mod flow;
mod jws_refusals;
mod key_rotation;
mod mtls_refusals;

/// The checks of the JWS and mTLS methods, in run order.
pub const CHECKS: &[Check] = &[
    Check {
        id: "grant-proof-jwsd",
        section: "RFC 9635 §7.3.3, §2.3",
        level: Level::Must,
        title: "a grant request proven with jwsd (key by value), when the AS lists jwsd, gets a grant response",
    },
    Check {
        id: "continue-proof-jwsd",
        section: "RFC 9635 §5, §7.3.3",
        level: Level::Must,
        title: "a continuation call proven with jwsd, its ath naming the continuation token, gets a grant response",
    },
    Check {
        id: "token-rotate-proof-jwsd",
        section: "RFC 9635 §6.1, §7.3.3",
        level: Level::Must,
        title: "a token bound to a jwsd key is rotated by a jwsd-proven call to its management URI",
    },
    Check {
        id: "token-revoke-proof-jwsd",
        section: "RFC 9635 §6.2, §7.3.3",
        level: Level::Must,
        title: "a token bound to a jwsd key is revoked (204) by a jwsd-proven DELETE",
    },
    Check {
        id: "token-key-rotation-jwsd",
        section: "RFC 9635 §6.1.1, §7.3.3.1",
        level: Level::Must,
        title: "a jwsd key rotation (the old key's gnap-binding-rotation-jwsd proof nested in the new key's) succeeds, and the new key then manages the token",
    },
    Check {
        id: "negative-jwsd-tampered",
        section: "RFC 9635 §7.3.3",
        level: Level::Must,
        title: "content changed after a jwsd proof (its digest no longer matches) gets invalid_client",
    },
    Check {
        id: "negative-jwsd-replayed",
        section: "RFC 9635 §7.3.3, §11.10",
        level: Level::Should,
        title: "the same jwsd-proven request sent twice is refused the second time with invalid_client",
    },
    Check {
        id: "negative-jwsd-wrong-key",
        section: "RFC 9635 §7.3.3",
        level: Level::Must,
        title: "a jwsd proof by a key other than the one the request presents gets invalid_client",
    },
    Check {
        id: "negative-jwsd-stale-created",
        section: "RFC 9635 §7.3.3, §11.10",
        level: Level::Should,
        title: "a jwsd proof created a day ago gets invalid_client",
    },
    Check {
        id: "negative-jwsd-missing-ath",
        section: "RFC 9635 §7.3.3",
        level: Level::Must,
        title: "a jwsd proof of a call presenting an access token but without ath gets invalid_client",
    },
    Check {
        id: "grant-proof-jws",
        section: "RFC 9635 §7.3.4, §2.3",
        level: Level::Must,
        title: "a grant request sent as an attached JWS (application/jose, key by value), when the AS lists jws, gets a grant response",
    },
    Check {
        id: "continue-proof-jws",
        section: "RFC 9635 §5, §7.3.4",
        level: Level::Must,
        title: "a continuation call without content, proven with a jws-typed Detached-JWS, gets a grant response",
    },
    Check {
        id: "token-rotate-proof-jws",
        section: "RFC 9635 §6.1, §7.3.4",
        level: Level::Must,
        title: "a token bound to a jws key is rotated by a jws-proven call to its management URI",
    },
    Check {
        id: "token-revoke-proof-jws",
        section: "RFC 9635 §6.2, §7.3.4",
        level: Level::Must,
        title: "a token bound to a jws key is revoked (204) by a jws-proven DELETE",
    },
    Check {
        id: "token-key-rotation-jws",
        section: "RFC 9635 §6.1.1, §7.3.4.1",
        level: Level::Must,
        title: "a jws key rotation (the body: the old key's gnap-binding-rotation-jws proof signed by the new key) succeeds, and the new key then manages the token",
    },
    Check {
        id: "negative-jws-tampered",
        section: "RFC 9635 §7.3.4",
        level: Level::Must,
        title: "an attached JWS whose payload was changed after signing gets invalid_client",
    },
    Check {
        id: "negative-jws-replayed",
        section: "RFC 9635 §7.3.4, §11.10",
        level: Level::Should,
        title: "the same attached JWS sent twice is refused the second time with invalid_client",
    },
    Check {
        id: "negative-jws-wrong-key",
        section: "RFC 9635 §7.3.4",
        level: Level::Must,
        title: "an attached JWS by a key other than the one its payload presents gets invalid_client",
    },
    Check {
        id: "negative-jws-stale-created",
        section: "RFC 9635 §7.3.4, §11.10",
        level: Level::Should,
        title: "an attached JWS created a day ago gets invalid_client",
    },
    Check {
        id: "negative-jws-missing-ath",
        section: "RFC 9635 §7.3.4",
        level: Level::Must,
        title: "a jws proof of a call presenting an access token but without ath gets invalid_client",
    },
    Check {
        id: "grant-proof-mtls",
        section: "RFC 9635 §7.3.2, §7.1",
        level: Level::Must,
        title: "a grant request over TLS with the client certificate its key names (`cert`), when the AS lists mtls, gets a grant response",
    },
    Check {
        id: "grant-proof-mtls-thumbprint",
        section: "RFC 9635 §7.3.2, §7.1",
        level: Level::Should,
        title: "a grant request whose mtls key is the certificate's thumbprint (`cert#S256`) gets a grant response",
    },
    Check {
        id: "continue-proof-mtls",
        section: "RFC 9635 §5, §7.3.2",
        level: Level::Must,
        title: "a continuation call over the key's certificate gets a grant response",
    },
    Check {
        id: "token-rotate-proof-mtls",
        section: "RFC 9635 §6.1, §7.3.2",
        level: Level::Must,
        title: "a token bound to a certificate is rotated by a call over that certificate",
    },
    Check {
        id: "token-revoke-proof-mtls",
        section: "RFC 9635 §6.2, §7.3.2",
        level: Level::Must,
        title: "a token bound to a certificate is revoked (204) by a DELETE over that certificate",
    },
    Check {
        id: "token-key-rotation-mtls-refused",
        section: "RFC 9635 §6.1.1, §7.3.2.1",
        level: Level::Must,
        title: "rotating an mtls key to another certificate is refused with key_rotation_not_supported or invalid_rotation",
    },
    Check {
        id: "negative-mtls-no-cert",
        section: "RFC 9635 §7.3.2, §3.6",
        level: Level::Must,
        title: "a request presenting an mtls key over a connection without a client certificate gets invalid_client",
    },
    Check {
        id: "negative-mtls-other-cert",
        section: "RFC 9635 §7.3.2, §3.6",
        level: Level::Must,
        title: "a request presenting an mtls key over a connection with another client certificate gets invalid_client",
    },
];

/// A proofing method these checks cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `jwsd` or `jws`.
    Jws(JwsMethod),
    /// `mtls`.
    Mtls,
}

impl Method {
    /// The registry name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jws(JwsMethod::Detached) => "jwsd",
            Self::Jws(JwsMethod::Attached) => "jws",
            Self::Mtls => "mtls",
        }
    }

    /// The method `id` names and the id without it: `negative-jwsd-tampered`
    /// is `jwsd` and `negative-tampered`.
    fn of(id: &str) -> Option<(Self, String)> {
        let parts: Vec<&str> = id.split('-').collect();
        let (method, at) = [
            Self::Jws(JwsMethod::Detached),
            Self::Jws(JwsMethod::Attached),
            Self::Mtls,
        ]
        .into_iter()
        .find_map(|m| parts.iter().position(|p| *p == m.name()).map(|at| (m, at)))?;
        let rest: Vec<&str> = parts
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != at)
            .map(|(_, p)| *p)
            .collect();
        Some((method, rest.join("-")))
    }
}

/// Whether `id` is one of these checks.
pub fn handles(id: &str) -> bool {
    CHECKS.iter().any(|check| check.id == id)
}

/// Runs the check `id`.
pub async fn run(id: &str, session: &mut Session) -> Verdict {
    let Some((method, kind)) = Method::of(id) else {
        return super::unknown(id);
    };
    if !SIGNED_METHODS.contains(&method.name()) {
        return Verdict::error(format!("the suite cannot sign {}", method.name()));
    }
    if session.lists("key_proofs_supported", method.name()).await != Some(true) {
        return Verdict::not_applicable(format!("the AS does not list {}", method.name()));
    }
    let verdict = match (method, kind.as_str()) {
        (_, "grant-proof") => flow::grant(session, signer(session, method)).await,
        (Method::Mtls, "grant-proof-thumbprint") => {
            let signer = Mtls::generate(
                "conformance-mtls",
                CertForm::Thumbprint,
                session.target.roots(),
            )
            .map(|s| Arc::new(s) as Arc<dyn ProofSigner>);
            flow::grant(session, signer).await
        }
        (_, "continue-proof") => flow::continuation(session, signer(session, method)).await,
        (_, "token-rotate-proof") => flow::rotate(session, signer(session, method)).await,
        (_, "token-revoke-proof") => flow::revoke(session, signer(session, method)).await,
        (Method::Jws(m), "token-key-rotation") => key_rotation::jws(session, m).await,
        (Method::Mtls, "token-key-rotation-refused") => key_rotation::mtls(session).await,
        (Method::Jws(m), negative) => jws_refusals::run(session, m, negative).await,
        (Method::Mtls, negative) => mtls_refusals::run(session, negative).await,
    };
    verdict.unwrap_or_else(|v| v)
}

/// A fresh signer for `method`.
fn signer(session: &Session, method: Method) -> Result<Arc<dyn ProofSigner>, String> {
    Ok(match method {
        Method::Jws(m) => Arc::new(JwsKey::generate(m, "conformance-jws")?),
        Method::Mtls => Arc::new(Mtls::generate(
            "conformance-mtls",
            CertForm::Cert,
            session.target.roots(),
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_proof_check_names_its_method_and_a_known_kind() {
        for check in CHECKS {
            let (method, kind) = Method::of(check.id).unwrap();
            assert!(check.id.contains(method.name()), "{}", check.id);
            assert!(!kind.split('-').any(|p| p == method.name()), "{}", check.id);
        }
        assert_eq!(
            Method::of("negative-jwsd-tampered"),
            Some((Method::Jws(JwsMethod::Detached), "negative-tampered".into()))
        );
        assert_eq!(
            Method::of("token-key-rotation-mtls-refused"),
            Some((Method::Mtls, "token-key-rotation-refused".into()))
        );
    }
}
