//! Verifying one RFC 9421 signature (§3.2) once a profile has chosen it.

use super::base::signature_base;
use super::component::ValueError;
use super::message::Message;
use super::params::SignatureParams;
use crate::proto::jwk::VerifyingKey;

/// Why one signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The `alg` parameter names another algorithm than the key's (§3.2
    /// step 6: the algorithm must be appropriate for the key).
    #[error("the alg parameter does not match the key's algorithm")]
    AlgorithmMismatch,
    /// A covered component could not be derived from the message.
    #[error(transparent)]
    Component(#[from] ValueError),
    /// The cryptographic check failed.
    #[error("the signature does not verify")]
    BadSignature,
}

/// Rebuilds the signature base for `params` over `message` and checks
/// `signature` with `key`. Returns the base on success.
pub fn verify_signature(
    message: Message<'_>,
    params: &SignatureParams,
    signature: &[u8],
    key: &VerifyingKey,
) -> Result<Vec<u8>, VerifyError> {
    if params
        .alg
        .as_deref()
        .is_some_and(|alg| alg != key.algorithm().name())
    {
        return Err(VerifyError::AlgorithmMismatch);
    }
    let base = signature_base(message, params)?;
    key.verify(&base, signature)
        .map_err(|_| VerifyError::BadSignature)?;
    Ok(base)
}
