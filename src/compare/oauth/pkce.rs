//! PKCE (RFC 7636) as the client makes it: a fresh 256-bit verifier per
//! authorization request and its `S256` challenge (gnapd's own
//! [`crate::proto::oauth::pkce::s256`], so its hash is counted there).

use crate::compare::driver::DriverError;
use crate::proto::oauth::pkce;

/// One authorization request's verifier and challenge.
#[derive(Debug, Clone)]
pub struct Pkce {
    /// `code_verifier`: kept by the client for the token request.
    pub verifier: String,
    /// `code_challenge` (`S256`).
    pub challenge: String,
}

impl Pkce {
    /// A fresh pair.
    pub fn new() -> Result<Self, DriverError> {
        let verifier = crate::random::text()
            .map_err(|_| DriverError::Protocol("no randomness for PKCE".into()))?;
        Ok(Self::from_verifier(verifier))
    }

    /// The pair of `verifier`.
    pub fn from_verifier(verifier: String) -> Self {
        let challenge = pkce::s256(&verifier);
        Self {
            verifier,
            challenge,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_verifier_is_well_formed_and_its_challenge_verifies() {
        let a = Pkce::new().unwrap();
        let b = Pkce::new().unwrap();
        assert!(pkce::is_verifier(&a.verifier));
        assert!(pkce::verify(&a.verifier, &a.challenge));
        assert_ne!(a.verifier, b.verifier);
        // RFC 7636 appendix B.
        let known = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        assert_eq!(
            known.challenge,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
