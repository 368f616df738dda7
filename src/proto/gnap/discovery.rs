//! The discovery document (RFC 9635 §9), answered to `OPTIONS` on the grant
//! endpoint with `Content-Type: application/json`.
//!
//! Every member but `grant_request_endpoint` is OPTIONAL and omitted when
//! absent. `key_rotation_supported` is sent only when true: "The absence of
//! this field or a boolean `false` value indicates that this feature is not
//! supported", so the two are the same statement and gnapd makes it by
//! omission.
//!
//! The document is "for optimization purposes only": listing a capability
//! does not promise any request using it will be granted.

use serde::{Deserialize, Serialize};

use super::interact::{FinishMethod, StartMode};

/// The §9 discovery document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// `grant_request_endpoint`: an absolute `https` URL equal to the one the
    /// client used for the discovery request. REQUIRED.
    pub grant_request_endpoint: String,
    /// `interaction_start_modes_supported`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interaction_start_modes_supported: Vec<StartMode>,
    /// `interaction_finish_methods_supported`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interaction_finish_methods_supported: Vec<FinishMethod>,
    /// `key_proofs_supported`: values of the key's `proof` (§7.3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_proofs_supported: Vec<String>,
    /// `sub_id_formats_supported`: RFC 9493 subject identifier formats.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_id_formats_supported: Vec<String>,
    /// `assertion_formats_supported`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assertion_formats_supported: Vec<String>,
    /// `key_rotation_supported` (§6.1.1); sent only when true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub key_rotation_supported: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// The proofing methods gnapd verifies (§7.3): `mtls` is not one of them.
pub const KEY_PROOFS: [&str; 3] = ["httpsig", "jwsd", "jws"];

impl Discovery {
    /// What gnapd supports: `httpsig`, `jwsd` and `jws` keys and key rotation, the start
    /// modes `redirect`, `user_code` and `user_code_uri` (not `app`), the
    /// finish methods `redirect` and `push`.
    pub fn gnapd(grant_request_endpoint: impl Into<String>) -> Self {
        Self {
            grant_request_endpoint: grant_request_endpoint.into(),
            interaction_start_modes_supported: vec![
                StartMode::Redirect,
                StartMode::UserCode,
                StartMode::UserCodeUri,
            ],
            interaction_finish_methods_supported: vec![FinishMethod::Redirect, FinishMethod::Push],
            key_proofs_supported: KEY_PROOFS.iter().map(|p| (*p).to_owned()).collect(),
            sub_id_formats_supported: Vec::new(),
            assertion_formats_supported: Vec::new(),
            key_rotation_supported: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gnapd_document_lists_interaction_modes_three_proof_methods_and_key_rotation() {
        assert_eq!(
            serde_json::to_value(Discovery::gnapd("https://as.example/gnap")).unwrap(),
            json!({
                "grant_request_endpoint": "https://as.example/gnap",
                "interaction_start_modes_supported": ["redirect", "user_code", "user_code_uri"],
                "interaction_finish_methods_supported": ["redirect", "push"],
                "key_proofs_supported": ["httpsig", "jwsd", "jws"],
                "key_rotation_supported": true
            })
        );
    }

    #[test]
    fn every_section_9_member_round_trips() {
        let wire = json!({
            "grant_request_endpoint": "https://server.example.com/tx",
            "interaction_start_modes_supported": ["redirect", "user_code", "user_code_uri"],
            "interaction_finish_methods_supported": ["redirect", "push"],
            "key_proofs_supported": ["httpsig"],
            "sub_id_formats_supported": ["opaque", "iss_sub"],
            "assertion_formats_supported": ["id_token"],
            "key_rotation_supported": true
        });
        let doc: Discovery = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(
            doc.interaction_start_modes_supported[1],
            StartMode::UserCode
        );
        assert_eq!(
            doc.interaction_finish_methods_supported[1],
            FinishMethod::Push
        );
        assert_eq!(serde_json::to_value(&doc).unwrap(), wire);
    }

    #[test]
    fn false_and_absent_key_rotation_are_the_same_statement() {
        let doc: Discovery = serde_json::from_value(json!({
            "grant_request_endpoint": "https://server.example.com/tx",
            "key_rotation_supported": false
        }))
        .unwrap();
        assert!(!doc.key_rotation_supported);
        assert_eq!(
            serde_json::to_value(&doc).unwrap(),
            json!({"grant_request_endpoint": "https://server.example.com/tx"})
        );
    }
}
