//! The `Signature-Input` and `Signature` fields (RFC 9421 §4.1, §4.2): two
//! RFC 8941 Dictionaries keyed by signature label.

use std::borrow::Cow;

use super::message::Fields;
use super::params::{ParamsError, SignatureParams};
use crate::proto::structured;

/// Largest combined `Signature-Input` or `Signature` field accepted, in bytes.
pub const MAX_FIELD_LEN: usize = 16 * 1024;

/// Most signatures one message may carry.
pub const MAX_SIGNATURES: usize = 8;

/// Why the signature fields could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// No `Signature-Input` field.
    #[error("the request has no Signature-Input field")]
    MissingSignatureInput,
    /// No `Signature` field.
    #[error("the request has no Signature field")]
    MissingSignature,
    /// A field is longer than [`MAX_FIELD_LEN`].
    #[error("the {0} field is too long")]
    TooLong(&'static str),
    /// A field is not a valid RFC 8941 Dictionary.
    #[error("the {0} field is not a valid structured dictionary")]
    NotADictionary(&'static str),
    /// A label occurs twice. RFC 8941 would keep the last; gnapd refuses the
    /// ambiguity (an intermediary might keep the first).
    #[error("the label `{1}` occurs twice in {0}")]
    DuplicateLabel(&'static str, String),
    /// More than [`MAX_SIGNATURES`] signatures.
    #[error("too many signatures")]
    TooManySignatures,
    /// A `Signature` member is not a byte sequence.
    #[error("the signature `{0}` is not a byte sequence")]
    NotByteSequence(String),
    /// A `Signature-Input` member is not valid.
    #[error("signature input `{0}`: {1}")]
    Params(String, ParamsError),
}

/// One labelled entry of `Signature-Input`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureInput {
    /// The label (the dictionary key).
    pub label: String,
    /// The parsed parameters.
    pub params: SignatureParams,
}

/// Joins every line of a field with `, ` (RFC 9110 §5.3), bounded. One line,
/// the usual case, is borrowed as it is.
fn combined<'a>(
    fields: &'a Fields,
    name: &'static str,
) -> Result<Option<Cow<'a, [u8]>>, InputError> {
    let mut out: Option<Cow<'a, [u8]>> = None;
    for line in fields.lines(name) {
        out = Some(match out {
            None => Cow::Borrowed(line),
            Some(previous) => {
                let mut buf = previous.into_owned();
                buf.extend_from_slice(b", ");
                buf.extend_from_slice(line);
                Cow::Owned(buf)
            }
        });
        if out.as_ref().is_some_and(|b| b.len() > MAX_FIELD_LEN) {
            return Err(InputError::TooLong(name));
        }
    }
    Ok(out)
}

fn dictionary<'a>(
    text: &'a [u8],
    name: &'static str,
) -> Result<structured::Dictionary<'a>, InputError> {
    let dict = structured::dictionary(text).map_err(|_| InputError::NotADictionary(name))?;
    if let Some(label) = dict.duplicate {
        return Err(InputError::DuplicateLabel(name, label.as_str().to_owned()));
    }
    if dict.members.len() > MAX_SIGNATURES {
        return Err(InputError::TooManySignatures);
    }
    Ok(dict)
}

/// Reads every entry of `Signature-Input`, in order.
pub fn signature_inputs(fields: &Fields) -> Result<Vec<SignatureInput>, InputError> {
    const NAME: &str = "Signature-Input";
    let text = combined(fields, "signature-input")?.ok_or(InputError::MissingSignatureInput)?;
    let dict = dictionary(&text, NAME)?;
    dict.members
        .iter()
        .map(|(label, member)| {
            let label = label.as_str().to_owned();
            let structured::Member::InnerList(items, params) = member else {
                return Err(InputError::Params(label, ParamsError::NotInnerList));
            };
            match SignatureParams::from_member(items, params) {
                Ok(params) => Ok(SignatureInput { label, params }),
                Err(e) => Err(InputError::Params(label, e)),
            }
        })
        .collect()
}

/// Reads every entry of `Signature`, in order, as `(label, signature bytes)`.
pub fn signatures(fields: &Fields) -> Result<Vec<(String, Vec<u8>)>, InputError> {
    const NAME: &str = "Signature";
    let text = combined(fields, "signature")?.ok_or(InputError::MissingSignature)?;
    let dict = dictionary(&text, NAME)?;
    dict.members
        .into_iter()
        .map(|(label, member)| {
            let label = label.as_str().to_owned();
            match member {
                structured::Member::Item(structured::Item {
                    bare: sfv::BareItemFromInput::ByteSequence(bytes),
                    ..
                }) => Ok((label, bytes)),
                _ => Err(InputError::NotByteSequence(label)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(name: &str, value: &str) -> Fields {
        [(name, value)].into_iter().collect()
    }

    #[test]
    fn duplicate_labels_are_refused() {
        let f = fields("Signature", "a=:AA==:, a=:AQ==:");
        assert_eq!(
            signatures(&f),
            Err(InputError::DuplicateLabel("Signature", "a".into()))
        );
    }

    #[test]
    fn an_unterminated_string_is_not_a_dictionary() {
        let f = fields("Signature-Input", r#"a=("@method);created=1"#);
        assert_eq!(
            signature_inputs(&f),
            Err(InputError::NotADictionary("Signature-Input"))
        );
    }

    #[test]
    fn bad_base64_is_not_a_dictionary() {
        let f = fields("Signature", "a=:not base64!:");
        assert_eq!(signatures(&f), Err(InputError::NotADictionary("Signature")));
    }

    #[test]
    fn a_token_signature_is_not_a_byte_sequence() {
        let f = fields("Signature", "a=abc");
        assert_eq!(signatures(&f), Err(InputError::NotByteSequence("a".into())));
    }

    #[test]
    fn a_huge_field_is_refused_before_parsing() {
        let f = fields("Signature", &"a".repeat(MAX_FIELD_LEN + 1));
        assert_eq!(signatures(&f), Err(InputError::TooLong("signature")));
    }

    #[test]
    fn created_must_be_an_integer() {
        let f = fields("Signature-Input", r#"a=("@method");created="1""#);
        assert_eq!(
            signature_inputs(&f),
            Err(InputError::Params(
                "a".into(),
                ParamsError::ParameterType("created")
            ))
        );
    }

    #[test]
    fn the_serialization_is_canonical_and_keeps_parameter_order() {
        let f = fields(
            "Signature-Input",
            r#"s=("@method"   "@path");keyid="k";created=1;foo=bar"#,
        );
        let inputs = signature_inputs(&f).unwrap();
        assert_eq!(
            inputs[0].params.serialized(),
            r#"("@method" "@path");keyid="k";created=1;foo=bar"#
        );
    }
}
