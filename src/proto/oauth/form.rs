//! OAuth parameters from a query string or an
//! `application/x-www-form-urlencoded` body, bounded, each at most once.
//!
//! RFC 6749 §3.1 and §3.2: "Request and response parameters MUST NOT be
//! included more than once". A repeated parameter is refused rather than
//! read as its first or last value, because parsers in front of gnapd may
//! pick the other one (parameter pollution).

use std::collections::BTreeMap;

/// Most parameters read from one request.
pub const MAX_PARAMS: usize = 32;
/// Longest parameter value, in bytes (a redirect URI, a client_id URL or a
/// client assertion fit).
pub const MAX_VALUE: usize = 8 * 1024;

/// Why parameters could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// A parameter appears twice.
    #[error("the parameter `{0}` appears more than once")]
    Repeated(String),
    /// Too many parameters, or a value too long.
    #[error("too many parameters, or a parameter too long")]
    TooLarge,
    /// Not UTF-8 after decoding.
    #[error("the parameters are not UTF-8")]
    Encoding,
}

/// The parameters, by name. An empty value counts as absent (RFC 6749
/// §3.1: "Parameters sent without a value MUST be treated as if they were
/// omitted").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Reads `bytes` (a query without `?`, or a form body).
    pub fn parse(bytes: &[u8]) -> Result<Self, FormError> {
        if std::str::from_utf8(bytes).is_err() {
            return Err(FormError::Encoding);
        }
        let mut map = BTreeMap::new();
        for (count, (name, value)) in form_urlencoded::parse(bytes).enumerate() {
            if count >= MAX_PARAMS || value.len() > MAX_VALUE || name.len() > 64 {
                return Err(FormError::TooLarge);
            }
            if name.contains('\u{FFFD}') || value.contains('\u{FFFD}') {
                return Err(FormError::Encoding);
            }
            if map.contains_key(name.as_ref()) {
                return Err(FormError::Repeated(name.into_owned()));
            }
            map.insert(name.into_owned(), value.into_owned());
        }
        map.retain(|_, v| !v.is_empty());
        Ok(Self(map))
    }

    /// The value of `name`, if sent with one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Every parameter, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// From pairs (tests, and the edge merging nothing).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_read_once_each_and_empty_ones_are_absent() {
        let p = Params::parse(b"a=1&b=&c=x%20y+z").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y z"));
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        assert_eq!(
            Params::parse(b"code=1&code=2"),
            Err(FormError::Repeated("code".into()))
        );
        // Even when one of them is empty.
        assert!(Params::parse(b"state=&state=x").is_err());
    }

    #[test]
    fn bounds_and_encoding_are_checked() {
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=1")).collect();
        assert_eq!(
            Params::parse(many.join("&").as_bytes()),
            Err(FormError::TooLarge)
        );
        let long = format!("a={}", "x".repeat(MAX_VALUE + 1));
        assert_eq!(Params::parse(long.as_bytes()), Err(FormError::TooLarge));
        assert_eq!(Params::parse(b"a=%FF"), Err(FormError::Encoding));
        assert_eq!(Params::parse(&[b'a', b'=', 0xff]), Err(FormError::Encoding));
    }
}
