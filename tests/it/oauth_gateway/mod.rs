//! OAuth access tokens at the gateway (issue 16, the resource side): the
//! decision with the in-memory store ([`core`]) and over real HTTP against
//! the Python SDK upstream ([`http`]). The AS's token endpoint is built
//! elsewhere, so the tokens here are minted straight into the store as the
//! records it will write: `TokenRecord::oauth` set, the rights from a
//! `scope`, the audience the upstream's MCP URL.

mod core;
mod external;
mod http;

use gnapd::proto::jwk::SigningKey;
use gnapd::proto::oauth::scope;
use gnapd::store::{GrantRecord, KeyBinding, OAuthToken, TokenHash, TokenRecord};

use crate::support::store_fixture::Fixture;

/// An OAuth token's value and the records that hold it.
pub(crate) struct Minted {
    pub value: String,
    /// The token management hash (its refresh token's, for OAuth).
    pub manage: TokenHash,
    pub grant: GrantRecord,
    pub tokens: Vec<(TokenHash, TokenRecord)>,
}

/// A token for `scope` at `audience`, bound to `dpop`'s key when given
/// (else a bearer token), valid until `expires_at`.
pub(crate) fn mint(
    scope: &str,
    audience: &str,
    dpop: Option<&SigningKey>,
    expires_at: i64,
) -> Minted {
    let mut fixture = Fixture::new();
    if let Some(key) = dpop {
        let verifying = key.verifying_key();
        fixture.key = KeyBinding {
            thumbprint: verifying.thumbprint().as_str().to_owned(),
            jwk: verifying.public_jwk().unwrap().clone(),
            method: gnapd::proto::gnap::ProofKind::HttpSig,
        };
    }
    let (mut grant, mut tokens) = fixture.grant(1, expires_at);
    let value = format!("oauth-{}", uuid::Uuid::new_v4().simple());
    let hash = TokenHash::of(&value);
    tokens[0].0 = hash;
    grant.tokens = vec![hash];
    let record = &mut tokens[0].1;
    record.access = scope::to_access(scope).unwrap();
    record.bearer = dpop.is_none();
    record.oauth = Some(OAuthToken {
        client_id: "https://client.example/metadata.json".into(),
        audience: audience.into(),
        dpop: dpop.is_some(),
    });
    Minted {
        value,
        manage: record.manage,
        grant,
        tokens,
    }
}
