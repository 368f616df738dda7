//! The signature base (RFC 9421 §2.5): the exact bytes that are signed.

use super::component::ValueError;
use super::message::Message;
use super::params::SignatureParams;

/// Builds the signature base for `params` over `message`.
///
/// One line per covered component, `"<identifier>": <value>`, then the
/// `"@signature-params"` line; lines are joined by LF with none after the
/// last. A component whose value cannot be derived fails the whole base.
pub fn signature_base(
    message: Message<'_>,
    params: &SignatureParams,
) -> Result<Vec<u8>, ValueError> {
    let mut out = Vec::with_capacity(256 + params.serialized().len());
    for component in params.covered() {
        out.extend_from_slice(component.as_str().as_bytes());
        out.extend_from_slice(b": ");
        component.write_value(message, &mut out)?;
        out.push(b'\n');
    }
    out.extend_from_slice(b"\"@signature-params\": ");
    out.extend_from_slice(params.serialized().as_bytes());
    Ok(out)
}
