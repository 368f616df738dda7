//! Records for one client key, shared by the store contract tests and the
//! store benchmark (`benches/store.rs` includes this file).

use gnapd::proto::gnap::{GrantRequest, parse_grant_request};
use gnapd::proto::httpsig::Algorithm;
use gnapd::proto::jwk::{SigningKey, Thumbprint};
use gnapd::store::{
    Continuation, GrantId, GrantRecord, GrantState, KeyBinding, RECORD_VERSION, TokenHash,
    TokenRecord,
};
use serde_json::json;

/// Far enough in the future that nothing expires in a test.
pub const FOREVER: i64 = 4_000_000_000;

/// Builds records for one client key.
pub struct Fixture {
    pub key: KeyBinding,
    pub thumbprint: Thumbprint,
    pub request: GrantRequest,
}

/// A fresh random token hash that locates no grant (a value gnapd does
/// not mint): a store finds it through its index.
pub fn fresh_hash() -> TokenHash {
    TokenHash::of(&uuid::Uuid::new_v4().to_string())
}

/// The hash of a fresh value minted as gnapd mints them for `grant`: it
/// locates the grant's record by itself.
pub fn hash_for(grant: &GrantId) -> TokenHash {
    let locator = grant.locator().expect("a fixture grant id is a UUID");
    let mut secret = [0u8; 32];
    secret[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    secret[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    TokenHash::of(&gnapd::store::located_value(&locator, &secret))
}

impl Fixture {
    pub fn new() -> Self {
        let signing = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let verifying = signing.verifying_key();
        let jwk = verifying.public_jwk().unwrap().clone();
        let body = json!({
            "access_token": {"access": ["mcp:github"]},
            "client": {"key": {"proof": "httpsig", "jwk": jwk}},
        });
        let request = parse_grant_request(&serde_json::to_vec(&body).unwrap()).unwrap();
        Self {
            key: KeyBinding {
                thumbprint: verifying.thumbprint().as_str().to_owned(),
                jwk,
                method: gnapd::proto::gnap::ProofKind::HttpSig,
            },
            thumbprint: verifying.thumbprint().clone(),
            request,
        }
    }

    /// The key's thumbprint: a nonce scope.
    pub fn scope(&self) -> &Thumbprint {
        &self.thumbprint
    }

    /// A token issued under `grant`, with a random value and management token.
    pub fn token(&self, grant: &GrantId, expires_at: i64) -> (TokenHash, TokenRecord) {
        let access = match &self.request.access_token {
            Some(requests) => requests
                .as_slice()
                .iter()
                .flat_map(|t| t.access.clone())
                .collect(),
            None => Vec::new(),
        };
        let record = TokenRecord {
            v: RECORD_VERSION,
            grant: grant.clone(),
            label: None,
            access,
            key: self.key.clone(),
            manage: hash_for(grant),
            bearer: false,
            issued_at: 1_000,
            expires_at,
            credential_sets: Vec::new(),
            oauth: None,
        };
        (hash_for(grant), record)
    }

    /// An approved grant with a continuation token and `tokens` tokens.
    pub fn grant(
        &self,
        tokens: usize,
        expires_at: i64,
    ) -> (GrantRecord, Vec<(TokenHash, TokenRecord)>) {
        let id = GrantId(uuid::Uuid::new_v4().to_string());
        let tokens: Vec<_> = (0..tokens).map(|_| self.token(&id, expires_at)).collect();
        let continuation = hash_for(&id);
        let grant = GrantRecord {
            v: RECORD_VERSION,
            id,
            state: GrantState::Approved,
            client: self.key.clone(),
            instance_id: None,
            request: self.request.clone(),
            tokens: tokens.iter().map(|(h, _)| *h).collect(),
            continuation: Some(Continuation {
                token: continuation,
                wait: 5,
                issued_at: 1_000,
            }),
            created_at: 1_000,
            expires_at,
            oauth: None,
        };
        (grant, tokens)
    }
}
