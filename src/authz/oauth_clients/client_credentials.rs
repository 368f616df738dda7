//! Headless agents: the `client_credentials` grant (RFC 6749 §4.4) with
//! `private_key_jwt` (RFC 7523 §2.2), as MCP's client-credentials
//! extension (SEP-1046) uses it. The OAuth counterpart of a GNAP key-only
//! agent, decided by the same allow rules: an `[[allow]]` rule whose
//! `thumbprint` is the thumbprint of the key that signed the client
//! assertion approves the rights it covers; `--dev` approves everything;
//! `require_interaction` refuses (nobody can be asked). There is no person
//! and no refresh token (§4.4.3: "A refresh token SHOULD NOT be included").
//!
//! The token endpoint (`crate::authz::oauth`) calls
//! [`OAuthClients::client_credentials`] for `grant_type=client_credentials`
//! with the resolved client and the form's members, and mints what
//! [`ClientCredentialsGrant`] says.

use crate::authz::AuthServer;
use crate::authz::policy::patterns_cover;
use crate::proto::gnap::AccessRight;
use crate::proto::httpsig::nonce::Seen;
use crate::proto::oauth::client::{ClientInfo, TokenEndpointAuth};
use crate::proto::oauth::client_assertion::{
    JWT_BEARER_ASSERTION, MAX_LIFETIME, SKEW, VerifiedAssertion, verify,
};
use crate::proto::oauth::scope::{to_access, upstreams};
use crate::store::{KeyBinding, ReplayBudget};

use super::OAuthClients;
use super::reply::error;
use crate::authz::Reply;

/// Path of the token endpoint below the public URL (the AS face's): a
/// client assertion may name it as its audience (RFC 7523 §3 item 3).
pub const TOKEN_PATH: &str = "/oauth/token";

/// The members of a `client_credentials` token request this reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientCredentialsRequest<'a> {
    /// `client_assertion_type`.
    pub client_assertion_type: Option<&'a str>,
    /// `client_assertion`.
    pub client_assertion: Option<&'a str>,
    /// `scope`.
    pub scope: Option<&'a str>,
    /// The upstream the request's `resource` names, already normalized by
    /// the token endpoint (RFC 8707); `None` when no `resource` was sent.
    pub resource_upstream: Option<&'a str>,
}

/// What to mint: an access token for `client_id` with `rights` at
/// `upstream` (its audience is that upstream's MCP URL), bound for the
/// record to the assertion's `key`; no refresh token.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientCredentialsGrant {
    /// The client.
    pub client_id: String,
    /// The approved rights (what the allow rule covers of those asked).
    pub rights: Vec<AccessRight>,
    /// The one upstream they are at.
    pub upstream: String,
    /// The key that signed the client assertion.
    pub key: KeyBinding,
}

/// A refused request: an RFC 6749 §5.2 error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status (400, or 401 for `invalid_client`).
    pub status: u16,
    /// The error code.
    pub code: &'static str,
    /// `error_description`.
    pub description: String,
}

impl Refusal {
    fn new(code: &'static str, description: &str) -> Self {
        let status = match code {
            "invalid_client" => 401,
            "temporarily_unavailable" => 503,
            _ => 400,
        };
        Self {
            status,
            code,
            description: description.to_owned(),
        }
    }

    /// The answer to the client.
    pub fn into_reply(self) -> Reply {
        error(self.status, self.code, &self.description)
    }
}

impl OAuthClients {
    /// Decides a `client_credentials` request of `client` under `auth`'s
    /// policy.
    pub fn client_credentials(
        &self,
        auth: &AuthServer,
        client: &ClientInfo,
        request: &ClientCredentialsRequest<'_>,
    ) -> Result<ClientCredentialsGrant, Refusal> {
        if !client.grant_types.iter().any(|g| g == "client_credentials") {
            return Err(Refusal::new(
                "unauthorized_client",
                "this client is not registered for the client_credentials grant",
            ));
        }
        if client.token_endpoint_auth != TokenEndpointAuth::PrivateKeyJwt {
            return Err(Refusal::new(
                "unauthorized_client",
                "the client_credentials grant needs a client that authenticates with private_key_jwt",
            ));
        }
        let verified = self.authenticate_private_key_jwt(
            client,
            request.client_assertion_type,
            request.client_assertion,
        )?;
        let (rights, upstream) = requested(request)?;
        let approved = decide(auth, verified.thumbprint.as_str(), rights)?;
        if let Err(e) = self.note_used(&client.client_id) {
            tracing::warn!(error = %e, "could not extend a client's registration");
        }
        tracing::info!(client_id = %client.client_id, key = %verified.thumbprint, upstream = %upstream, "client_credentials approved");
        Ok(ClientCredentialsGrant {
            client_id: client.client_id.clone(),
            rights: approved,
            upstream,
            key: KeyBinding {
                thumbprint: verified.thumbprint.as_str().to_owned(),
                jwk: verified.jwk,
                method: crate::proto::gnap::ProofKind::HttpSig,
            },
        })
    }

    /// RFC 7523 §2.2 client authentication, for any grant at the token
    /// endpoint: `client` must use `private_key_jwt` with keys, the
    /// assertion type must be the JWT one, and the assertion must hold
    /// ([`verify`]) and be new (its `jti`, once, in the store's replay
    /// memory under the signing key's thumbprint).
    pub fn authenticate_private_key_jwt(
        &self,
        client: &ClientInfo,
        client_assertion_type: Option<&str>,
        client_assertion: Option<&str>,
    ) -> Result<VerifiedAssertion, Refusal> {
        let jwks = match (&client.token_endpoint_auth, &client.jwks) {
            (TokenEndpointAuth::PrivateKeyJwt, Some(jwks)) => jwks,
            _ => {
                return Err(Refusal::new(
                    "invalid_client",
                    "this client does not authenticate with private_key_jwt",
                ));
            }
        };
        if client_assertion_type != Some(JWT_BEARER_ASSERTION) {
            return Err(Refusal::new(
                "invalid_client",
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
        }
        let assertion = client_assertion
            .ok_or_else(|| Refusal::new("invalid_client", "client_assertion is required"))?;
        let now = self.now();
        let token_endpoint = format!("{}{TOKEN_PATH}", self.issuer);
        let verified = verify(
            assertion,
            &client.client_id,
            jwks,
            &[token_endpoint.as_str(), self.issuer.as_str()],
            now,
        )
        .map_err(|e| Refusal::new("invalid_client", &e.to_string()))?;
        // RFC 7523 §3 item 7: a jti is used once. The replay memory is in
        // memory; an assertion that may predate it could have been used
        // before a restart, so it is refused.
        let replay = self.store.replay(ReplayBudget::Bound);
        let earliest = verified
            .issued_at
            .unwrap_or(verified.expires_at - MAX_LIFETIME - 2 * SKEW);
        if earliest < replay.horizon() {
            return Err(Refusal::new(
                "invalid_client",
                "the client assertion was made before this server started; make a fresh one",
            ));
        }
        let mut value = b"oauth-client-assertion\0".to_vec();
        value.extend_from_slice(client.client_id.as_bytes());
        value.push(0);
        value.extend_from_slice(verified.jti.as_bytes());
        match replay.remember(&verified.thumbprint, &value, verified.expires_at, now) {
            Ok(Seen::Fresh) => {}
            Ok(Seen::Replayed) => {
                return Err(Refusal::new(
                    "invalid_client",
                    "the client assertion was already used (its jti is single use)",
                ));
            }
            Err(_) => {
                return Err(Refusal::new(
                    "temporarily_unavailable",
                    "the server cannot check the assertion for reuse now; retry later",
                ));
            }
        }
        Ok(verified)
    }
}

/// The rights asked for and the one upstream they are at: from `scope`,
/// else the whole upstream `resource` names (RFC 6749 §3.3 lets the AS
/// apply a default). Rights at several upstreams, or at another upstream
/// than `resource`, are `invalid_target` (RFC 8707 §2: a token is for one
/// resource here).
fn requested(
    request: &ClientCredentialsRequest<'_>,
) -> Result<(Vec<AccessRight>, String), Refusal> {
    let rights = match (
        request.scope.filter(|s| !s.trim().is_empty()),
        request.resource_upstream,
    ) {
        (Some(scope), _) => {
            to_access(scope).map_err(|e| Refusal::new("invalid_scope", &e.to_string()))?
        }
        (None, Some(upstream)) => vec![AccessRight::Reference(format!("mcp:{upstream}"))],
        (None, None) => {
            return Err(Refusal::new(
                "invalid_scope",
                "ask for a scope, or name the resource the token is for",
            ));
        }
    };
    let named = upstreams(&rights);
    match (named.as_slice(), request.resource_upstream) {
        ([one], None) => Ok((rights, one.clone())),
        ([one], Some(resource)) if one == resource => Ok((rights, one.clone())),
        ([], _) => Err(Refusal::new("invalid_scope", "the scope asks for nothing")),
        _ => Err(Refusal::new(
            "invalid_target",
            "the scopes must all be at the one upstream the resource names",
        )),
    }
}

/// The allow rules of GNAP keys, for the assertion key's `thumbprint`.
fn decide(
    auth: &AuthServer,
    thumbprint: &str,
    rights: Vec<AccessRight>,
) -> Result<Vec<AccessRight>, Refusal> {
    let policy = &auth.policy;
    if policy.require_interaction {
        return Err(Refusal::new(
            "unauthorized_client",
            "every grant here waits for a person, and client_credentials has none",
        ));
    }
    if policy.dev {
        return Ok(rights);
    }
    let Some(rule) = policy
        .allow
        .iter()
        .find(|r| r.thumbprint.as_deref() == Some(thumbprint))
    else {
        return Err(Refusal::new(
            "unauthorized_client",
            "no allow rule names the key this client signed with",
        ));
    };
    let approved: Vec<AccessRight> = rights
        .into_iter()
        .filter(|r| patterns_cover(&rule.access, r))
        .collect();
    if approved.is_empty() {
        return Err(Refusal::new(
            "invalid_scope",
            "the allow rule for this client's key covers none of the rights asked for",
        ));
    }
    Ok(approved)
}
