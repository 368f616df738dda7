//! Signature parameters (RFC 9421 §2.3): the covered components and the
//! metadata of one signature, and their `@signature-params` serialization.

use std::borrow::Cow;

use sfv::{BareItemFromInput, Integer, KeyRef, StringRef};

use super::component::{ComponentId, IdentifierError};
use crate::proto::structured;

/// Most components one signature may cover. GNAP needs at most eight; the
/// bound keeps a hostile `Signature-Input` from costing more than a request.
pub const MAX_COMPONENTS: usize = 64;

/// Why a signature's parameters are not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// A member of `Signature-Input` is an item, not an inner list.
    #[error("the signature input is not an inner list")]
    NotInnerList,
    /// A covered component identifier is invalid.
    #[error(transparent)]
    Identifier(#[from] IdentifierError),
    /// The same component identifier appears twice (§2.5: MUST fail).
    #[error("component {0} is covered twice")]
    DuplicateComponent(String),
    /// More than [`MAX_COMPONENTS`] components.
    #[error("too many covered components")]
    TooManyComponents,
    /// A defined parameter has the wrong type (`created` not an integer, ...).
    #[error("signature parameter `{0}` has the wrong type")]
    ParameterType(&'static str),
}

const CREATED: &KeyRef = KeyRef::constant("created");
const EXPIRES: &KeyRef = KeyRef::constant("expires");
const KEYID: &KeyRef = KeyRef::constant("keyid");
const NONCE: &KeyRef = KeyRef::constant("nonce");
const ALG: &KeyRef = KeyRef::constant("alg");
const TAG: &KeyRef = KeyRef::constant("tag");

/// The `'static` name of one of the constants above, for error values.
fn static_name(key: &KeyRef) -> &'static str {
    [CREATED, EXPIRES, KEYID, NONCE, ALG, TAG]
        .into_iter()
        .find(|k| *k == key)
        .map_or("parameter", KeyRef::as_str)
}

/// One signature's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParams {
    covered: Vec<ComponentId>,
    /// `created`: creation time, Unix seconds.
    pub created: Option<i64>,
    /// `expires`: expiry time, Unix seconds.
    pub expires: Option<i64>,
    /// `nonce`: a unique value from the signer.
    pub nonce: Option<String>,
    /// `alg`: an explicit algorithm (refused by the GNAP profile).
    pub alg: Option<String>,
    /// `keyid`: names the key.
    pub keyid: Option<String>,
    /// `tag`: the application the signature is for (`gnap`, `gnap-rotate`).
    pub tag: Option<String>,
    /// The canonical serialization, the value of `@signature-params`.
    serialized: String,
}

/// The metadata a signer chooses; see [`SignatureParams::new`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// `created`
    pub created: Option<i64>,
    /// `expires`
    pub expires: Option<i64>,
    /// `keyid`
    pub keyid: Option<String>,
    /// `nonce`
    pub nonce: Option<String>,
    /// `alg`
    pub alg: Option<String>,
    /// `tag`
    pub tag: Option<String>,
}

impl SignatureParams {
    /// Parameters for a new signature. Values that cannot be serialized
    /// (a non-ASCII nonce, an out-of-range time) are refused.
    pub fn new(covered: Vec<ComponentId>, meta: Metadata) -> Result<Self, ParamsError> {
        let mut params: structured::Params<'_> = Vec::with_capacity(6);
        for (name, v) in [(CREATED, meta.created), (EXPIRES, meta.expires)] {
            if let Some(v) = v {
                let v = Integer::try_from(v)
                    .map_err(|_| ParamsError::ParameterType(static_name(name)))?;
                params.push((name, BareItemFromInput::Integer(v)));
            }
        }
        for (name, v) in [
            (KEYID, &meta.keyid),
            (NONCE, &meta.nonce),
            (ALG, &meta.alg),
            (TAG, &meta.tag),
        ] {
            if let Some(v) = v {
                let s = StringRef::from_str(v)
                    .map_err(|_| ParamsError::ParameterType(static_name(name)))?;
                params.push((name, BareItemFromInput::String(Cow::Borrowed(s))));
            }
        }
        let items = covered
            .iter()
            .map(|c| structured::item(c.as_str().as_bytes()).map_err(|_| ParamsError::NotInnerList))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_member(&items, &params)
    }

    /// Reads one `Signature-Input` member: its covered components and its
    /// parameters.
    pub fn from_member(
        items: &[structured::Item<'_>],
        list_params: &structured::Params<'_>,
    ) -> Result<Self, ParamsError> {
        if items.len() > MAX_COMPONENTS {
            return Err(ParamsError::TooManyComponents);
        }
        let mut covered: Vec<ComponentId> = Vec::with_capacity(items.len());
        for item in items {
            let id = ComponentId::from_item(item)?;
            if covered.iter().any(|c| c.as_str() == id.as_str()) {
                return Err(ParamsError::DuplicateComponent(id.as_str().to_owned()));
            }
            covered.push(id);
        }
        let mut out = Self {
            covered,
            created: None,
            expires: None,
            nonce: None,
            alg: None,
            keyid: None,
            tag: None,
            serialized: String::new(),
        };
        for (name, value) in list_params {
            match name.as_str() {
                "created" => out.created = Some(int(value, "created")?),
                "expires" => out.expires = Some(int(value, "expires")?),
                "nonce" => out.nonce = Some(string(value, "nonce")?),
                "alg" => out.alg = Some(string(value, "alg")?),
                "keyid" => out.keyid = Some(string(value, "keyid")?),
                "tag" => out.tag = Some(string(value, "tag")?),
                // Parameters from a later registry entry stay in the
                // serialization (so the signature still covers them) but
                // carry no meaning here.
                _ => {}
            }
        }
        // Each identifier is already in canonical form; the list is those
        // forms joined by single spaces (RFC 9651 §4.1.1.1), then the params.
        let mut serialized = String::with_capacity(128);
        serialized.push('(');
        for (i, id) in out.covered.iter().enumerate() {
            if i > 0 {
                serialized.push(' ');
            }
            serialized.push_str(id.as_str());
        }
        serialized.push(')');
        structured::serialize_params(list_params, &mut serialized);
        out.serialized = serialized;
        Ok(out)
    }

    /// The covered components, in order.
    pub fn covered(&self) -> &[ComponentId] {
        &self.covered
    }

    /// Takes the covered components out (for a verified request's record).
    pub fn into_covered(self) -> Vec<ComponentId> {
        self.covered
    }

    /// The value of `@signature-params` (§2.3).
    pub fn serialized(&self) -> &str {
        &self.serialized
    }
}

fn int(value: &BareItemFromInput<'_>, name: &'static str) -> Result<i64, ParamsError> {
    value
        .as_integer()
        .map(i64::from)
        .ok_or(ParamsError::ParameterType(name))
}

fn string(value: &BareItemFromInput<'_>, name: &'static str) -> Result<String, ParamsError> {
    value
        .as_string()
        .map(|s| s.as_str().to_owned())
        .ok_or(ParamsError::ParameterType(name))
}
