//! How records are laid out on disk.
//!
//! A record is stored as the JSON of its Rust type; the envelope's tag is the
//! record's own `v` member ([`RECORD_VERSION`]), so a reader learns the
//! format from the bytes alone. Decoding refuses any other version with
//! [`StoreError::Version`], whether or not the bytes happen to fit today's
//! type: a newer writer may have changed what a field means without changing
//! its shape. Encoding refuses records that do not carry
//! [`RECORD_VERSION`], so this build never writes what it could not read back.
//!
//! Index values (a grant identifier, a token hash, a nonce expiry) are raw
//! bytes without a tag: they are fixed by the tree they live in.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    CredentialSetRecord, GrantRecord, InstanceRecord, InteractionRecord, RECORD_VERSION,
    ResourceSetRecord, SpentRefresh, StoreError, TokenRecord, UpstreamRecord,
};

/// A record that carries its format version.
pub(crate) trait Versioned: Serialize + DeserializeOwned {
    /// What kind of record this is, for error messages.
    const KIND: &'static str;

    /// The record's `v` member.
    fn version(&self) -> u32;
}

impl Versioned for GrantRecord {
    const KIND: &'static str = "grant";

    fn version(&self) -> u32 {
        self.v
    }
}

impl Versioned for SpentRefresh {
    const KIND: &'static str = "spent refresh token";

    fn version(&self) -> u32 {
        self.v
    }
}

impl Versioned for TokenRecord {
    const KIND: &'static str = "token";

    fn version(&self) -> u32 {
        self.v
    }
}

impl Versioned for InstanceRecord {
    const KIND: &'static str = "instance";

    fn version(&self) -> u32 {
        self.v
    }
}

impl Versioned for UpstreamRecord {
    const KIND: &'static str = "upstream";

    fn version(&self) -> u32 {
        self.v
    }
}

impl Versioned for CredentialSetRecord {
    const KIND: &'static str = "credential set";

    fn version(&self) -> u32 {
        self.v
    }
}

impl Versioned for ResourceSetRecord {
    const KIND: &'static str = "resource set";

    fn version(&self) -> u32 {
        self.v
    }
}

impl Versioned for super::OAuthClientRecord {
    const KIND: &'static str = "oauth client";

    fn version(&self) -> u32 {
        self.v
    }
}

impl Versioned for InteractionRecord {
    const KIND: &'static str = "interaction";

    fn version(&self) -> u32 {
        self.v
    }
}

/// Just the tag, read when a record does not decode as today's type.
#[derive(serde::Deserialize)]
struct Tag {
    v: u32,
}

/// The bytes stored for `record`.
pub(crate) fn encode<T: Versioned>(record: &T) -> Result<Vec<u8>, StoreError> {
    if record.version() != RECORD_VERSION {
        return Err(StoreError::Version(record.version()));
    }
    serde_json::to_vec(record)
        .map_err(|e| StoreError::Backend(format!("encoding a {} record: {e}", T::KIND)))
}

/// The record stored as `bytes`.
pub(crate) fn decode<T: Versioned>(bytes: &[u8]) -> Result<T, StoreError> {
    match serde_json::from_slice::<T>(bytes) {
        Ok(record) if record.version() == RECORD_VERSION => Ok(record),
        Ok(record) => Err(StoreError::Version(record.version())),
        // Bytes that are not today's type: a later format says so in its
        // tag; anything else is damage.
        Err(e) => match serde_json::from_slice::<Tag>(bytes) {
            Ok(tag) if tag.v != RECORD_VERSION => Err(StoreError::Version(tag.v)),
            _ => Err(StoreError::Backend(format!(
                "undecodable {} record: {e}",
                T::KIND
            ))),
        },
    }
}

/// The tag and expiry of a grant or token record, read without decoding
/// the rest: what a sweep's scan needs.
#[derive(serde::Deserialize)]
struct Expiry {
    v: u32,
    expires_at: i64,
}

/// When the grant or token record stored as `bytes` expires.
pub(crate) fn expires_at(bytes: &[u8]) -> Result<i64, StoreError> {
    match serde_json::from_slice::<Expiry>(bytes) {
        Ok(e) if e.v == RECORD_VERSION => Ok(e.expires_at),
        Ok(e) => Err(StoreError::Version(e.v)),
        Err(e) => match serde_json::from_slice::<Tag>(bytes) {
            Ok(tag) if tag.v != RECORD_VERSION => Err(StoreError::Version(tag.v)),
            _ => Err(StoreError::Backend(format!(
                "record without an expiry: {e}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyBinding;

    fn instance(v: u32) -> InstanceRecord {
        InstanceRecord {
            v,
            key: KeyBinding {
                thumbprint: "tp".into(),
                jwk: serde_json::json!({"kty": "OKP"}),
                method: crate::proto::gnap::ProofKind::HttpSig,
            },
            created_at: 7,
            expires_at: Some(1_000),
        }
    }

    #[test]
    fn an_instance_written_before_instances_expired_goes_thirty_days_after_it_was_made() {
        let old = br#"{"v":1,"key":{"thumbprint":"tp","jwk":{"kty":"OKP"}},"created_at":7}"#;
        let mut instance: InstanceRecord = decode(old).unwrap();
        assert_eq!(instance.expires_at, None);
        assert_eq!(
            instance.expiry(),
            7 + crate::store::LEGACY_INSTANCE_LIFETIME
        );
        // A later grant keeps it longer, never shorter.
        assert!(!instance.keep_until(100));
        assert!(instance.keep_until(i64::MAX));
        assert_eq!(instance.expiry(), i64::MAX);
    }

    /// A grant record holding a request whose access right carries a
    /// member nested so that the body is `levels` deep.
    fn deep_grant(levels: usize) -> Result<GrantRecord, crate::proto::gnap::RequestError> {
        // Levels 1–4: the body, access_token, access, the right object.
        let deep = format!("{}{}", "[".repeat(levels - 4), "]".repeat(levels - 4));
        let body = format!(
            r#"{{"access_token":{{"access":[{{"type":"photo-api","shape":{deep}}}]}},"client":"inst"}}"#
        );
        let request = crate::proto::gnap::parse_grant_request(body.as_bytes())?;
        Ok(GrantRecord {
            v: RECORD_VERSION,
            id: crate::store::GrantId("g".into()),
            state: crate::store::GrantState::Pending,
            client: KeyBinding {
                thumbprint: "tp".into(),
                jwk: serde_json::json!({"kty": "OKP"}),
                method: crate::proto::gnap::ProofKind::HttpSig,
            },
            instance_id: None,
            request,
            tokens: Vec::new(),
            continuation: None,
            created_at: 1,
            expires_at: 2,
            oauth: None,
        })
    }

    #[test]
    fn every_request_the_reader_accepts_reads_back_from_its_record() {
        use crate::proto::gnap::limits::MAX_DEPTH;
        let deepest = deep_grant(MAX_DEPTH).unwrap();
        let bytes = encode(&deepest).unwrap();
        assert_eq!(decode::<GrantRecord>(&bytes).unwrap(), deepest);
        // One level more is refused when the request comes, so no record
        // can hold a request nested where serde_json (128 levels) would
        // refuse to read the record back.
        assert!(deep_grant(MAX_DEPTH + 1).is_err());
    }

    #[test]
    fn a_key_binding_written_before_jws_proofs_reads_as_httpsig_and_a_jws_one_keeps_its_method() {
        use crate::proto::gnap::ProofKind;
        let old = br#"{"v":1,"key":{"thumbprint":"tp","jwk":{"kty":"OKP"}},"created_at":7,"expires_at":1000}"#;
        let read: InstanceRecord = decode(old).unwrap();
        assert_eq!(read.key.method, ProofKind::HttpSig);
        // An httpsig binding is written exactly as before.
        assert_eq!(encode(&read).unwrap(), old.to_vec());
        let mut jws = instance(RECORD_VERSION);
        jws.key.method = ProofKind::Jws;
        let bytes = encode(&jws).unwrap();
        assert!(String::from_utf8_lossy(&bytes).contains(r#""method":"jws""#));
        assert_eq!(decode::<InstanceRecord>(&bytes).unwrap(), jws);
    }

    #[test]
    fn store_codec_round_trips_a_current_record() {
        let bytes = encode(&instance(RECORD_VERSION)).unwrap();
        assert_eq!(
            decode::<InstanceRecord>(&bytes).unwrap(),
            instance(RECORD_VERSION)
        );
    }

    #[test]
    fn store_codec_refuses_an_unknown_version_even_if_the_shape_fits() {
        let bytes = serde_json::to_vec(&instance(99)).unwrap();
        assert_eq!(
            decode::<InstanceRecord>(&bytes),
            Err(StoreError::Version(99))
        );
    }

    #[test]
    fn store_codec_reports_the_version_of_a_record_of_another_shape() {
        let bytes = br#"{"v":2,"entirely":"different"}"#;
        assert_eq!(decode::<InstanceRecord>(bytes), Err(StoreError::Version(2)));
    }

    #[test]
    fn store_codec_calls_damaged_bytes_a_backend_failure() {
        assert!(matches!(
            decode::<InstanceRecord>(b"\x00garbage"),
            Err(StoreError::Backend(_))
        ));
        let current_tag_wrong_shape = br#"{"v":1,"key":3}"#;
        assert!(matches!(
            decode::<InstanceRecord>(current_tag_wrong_shape),
            Err(StoreError::Backend(_))
        ));
    }

    #[test]
    fn store_codec_reads_the_expiry_alone_and_checks_the_tag() {
        assert_eq!(
            expires_at(br#"{"v":1,"expires_at":42,"rest":[1,2]}"#),
            Ok(42)
        );
        assert_eq!(
            expires_at(br#"{"v":7,"expires_at":42}"#),
            Err(StoreError::Version(7))
        );
        assert_eq!(expires_at(br#"{"v":7}"#), Err(StoreError::Version(7)));
        assert!(matches!(
            expires_at(br#"{"v":1}"#),
            Err(StoreError::Backend(_))
        ));
    }

    #[test]
    fn store_codec_never_writes_a_version_it_cannot_read() {
        assert_eq!(encode(&instance(99)), Err(StoreError::Version(99)));
    }
}
