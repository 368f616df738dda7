//! Producing RFC 9421 signatures: the generic signer under the GNAP profile's
//! signer.

use super::base::signature_base;
use super::component::ValueError;
use super::message::{HttpRequest, HttpResponse, Message};
use super::params::SignatureParams;
use crate::proto::b64;
use crate::proto::jwk::{KeyError, SigningKey};

/// Why a message could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The label is not a valid dictionary key (lowercase, `a-z0-9_-.*`).
    #[error("`{0}` is not a valid signature label")]
    BadLabel(String),
    /// The message already carries a signature with this label.
    #[error("the message already has a signature labelled `{0}`")]
    LabelTaken(String),
    /// A covered component has no value in the message.
    #[error(transparent)]
    Component(#[from] ValueError),
    /// The signature parameters are invalid.
    #[error("invalid signature parameters")]
    Params,
    /// The key failed to sign.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Signs `request` under `params` with `key`, appending `Signature-Input`
/// and `Signature` members named `label`. Returns the signature base.
pub fn sign_request(
    request: &mut HttpRequest,
    label: &str,
    params: &SignatureParams,
    key: &SigningKey,
) -> Result<Vec<u8>, SignError> {
    check_label(label, request.fields.lines("signature-input"))?;
    let base = signature_base(Message::Request(request), params)?;
    let signature = key.sign(&base)?;
    append(&mut request.fields, label, params, &signature);
    Ok(base)
}

/// Signs `response` (with the request it answers, for `;req` components).
pub fn sign_response(
    response: &mut HttpResponse,
    request: Option<&HttpRequest>,
    label: &str,
    params: &SignatureParams,
    key: &SigningKey,
) -> Result<Vec<u8>, SignError> {
    check_label(label, response.fields.lines("signature-input"))?;
    let base = signature_base(Message::Response(response, request), params)?;
    let signature = key.sign(&base)?;
    append(&mut response.fields, label, params, &signature);
    Ok(base)
}

fn check_label<'a>(
    label: &str,
    mut existing: impl Iterator<Item = &'a [u8]>,
) -> Result<(), SignError> {
    if sfv::KeyRef::from_str(label).is_err() {
        return Err(SignError::BadLabel(label.to_owned()));
    }
    let taken = existing.any(|line| {
        sfv::Parser::new(line)
            .parse::<sfv::Dictionary>()
            .is_ok_and(|d| d.contains_key(label))
    });
    if taken {
        return Err(SignError::LabelTaken(label.to_owned()));
    }
    Ok(())
}

fn append(
    fields: &mut super::message::Fields,
    label: &str,
    params: &SignatureParams,
    signature: &[u8],
) {
    fields.append(
        "Signature-Input",
        format!("{label}={}", params.serialized()).into_bytes(),
    );
    fields.append(
        "Signature",
        format!("{label}=:{}:", b64::encode_std(signature)).into_bytes(),
    );
}
