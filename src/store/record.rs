//! The records the store keeps, as their fields say, and the hash by
//! which tokens are found without being stored.

use super::*;
use crate::proto::gnap::ProofKind;

/// The current record format. Stored with every record so the format can
/// evolve; a reader refuses versions it does not know.
pub const RECORD_VERSION: u32 = 1;

/// SHA-256 of a token value: how tokens are found without being stored.
/// Serialized as base64url text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash(pub [u8; 32]);

impl Serialize for TokenHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&crate::proto::b64::encode_url(&self.0))
    }
}

impl<'de> Deserialize<'de> for TokenHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        crate::proto::b64::decode_url(&text)
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .map(Self)
            .ok_or_else(|| serde::de::Error::custom("a token hash is 32 bytes of base64url"))
    }
}

impl TokenHash {
    /// Hashes a token value. A value that names its grant
    /// ([`located_value`]: base64url of a 16-byte grant locator and 32
    /// secret bytes) keeps the locator in the clear and 128 bits of the
    /// value's SHA-256 after it, so a store can go straight to the grant's
    /// record; any other value is its whole SHA-256. Either way the value
    /// cannot be recovered from the hash, and a forged value that names a
    /// real grant still has to match 128 bits of hash.
    pub fn of(value: &str) -> Self {
        let digest = crate::proto::hash::sha256(value.as_bytes());
        let Some(locator) = value_locator(value) else {
            return Self(digest);
        };
        let mut hash = [0u8; 32];
        hash[..LOCATOR_LEN].copy_from_slice(&locator);
        hash[LOCATOR_LEN..].copy_from_slice(&digest[..32 - LOCATOR_LEN]);
        Self(hash)
    }

    /// The grant locator this hash may carry: its first 16 bytes. A store
    /// looks there first and compares the whole hash with what it keeps;
    /// for a hash that carries none the bytes are random and lead nowhere.
    pub fn locator(&self) -> [u8; LOCATOR_LEN] {
        let mut locator = [0u8; LOCATOR_LEN];
        locator.copy_from_slice(&self.0[..LOCATOR_LEN]);
        locator
    }

    /// Equality without a timing side channel: a hash of a secret is
    /// compared so wherever the store compares it itself.
    pub fn same_as(&self, other: &TokenHash) -> bool {
        use subtle::ConstantTimeEq as _;
        self.0.ct_eq(&other.0).into()
    }
}

/// Bytes of a grant locator: a grant identifier's 16 UUID bytes.
pub const LOCATOR_LEN: usize = 16;

/// Secret bytes of a token value.
const SECRET_LEN: usize = 32;

/// The length of a located value's text: base64url of 48 bytes.
const LOCATED_TEXT_LEN: usize = (LOCATOR_LEN + SECRET_LEN) * 4 / 3;

/// A token value that names its grant: base64url of `locator ‖ secret`
/// (64 characters).
pub fn located_value(locator: &[u8; LOCATOR_LEN], secret: &[u8; SECRET_LEN]) -> String {
    let mut bytes = [0u8; LOCATOR_LEN + SECRET_LEN];
    bytes[..LOCATOR_LEN].copy_from_slice(locator);
    bytes[LOCATOR_LEN..].copy_from_slice(secret);
    crate::proto::b64::encode_url(&bytes)
}

/// The locator of a value made by [`located_value`], if it is one.
fn value_locator(value: &str) -> Option<[u8; LOCATOR_LEN]> {
    if value.len() != LOCATED_TEXT_LEN {
        return None;
    }
    let bytes = crate::proto::b64::decode_url(value)?;
    bytes.get(..LOCATOR_LEN)?.try_into().ok()
}

impl GrantId {
    /// The locator of this grant: its UUID's 16 bytes, when the identifier
    /// is a UUID in its canonical (lowercase, hyphenated) text. Other
    /// identifiers (none that gnapd mints) have none: their tokens are
    /// found through an index.
    pub fn locator(&self) -> Option<[u8; LOCATOR_LEN]> {
        let uuid = uuid::Uuid::try_parse(&self.0).ok()?;
        (uuid.hyphenated().to_string() == self.0).then(|| *uuid.as_bytes())
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to correlate log lines; the hash is not secret
        // but the full value is noise.
        write!(
            f,
            "TokenHash({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// A grant's identifier: a UUID v7 (v4 before issue 19), also the last
/// path segment of its continuation URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GrantId(pub String);

/// The key a grant, token or instance is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBinding {
    /// RFC 7638 thumbprint of the key.
    pub thumbprint: String,
    /// The public JWK, as the AS accepted it.
    pub jwk: serde_json::Value,
    /// The proofing method the key was bound with (RFC 9635 §7.3): every
    /// later request must be proved with it. Left out for `httpsig`, so
    /// records written before JWS proofs existed read unchanged.
    #[serde(default, skip_serializing_if = "ProofKind::is_httpsig")]
    pub method: ProofKind,
}

impl KeyBinding {
    /// True if this binding is for the key with `thumbprint`.
    pub fn is(&self, thumbprint: &Thumbprint) -> bool {
        self.thumbprint == thumbprint.as_str()
    }
}

/// Where a grant stands (RFC 9635 §1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantState {
    /// Waiting for a decision (interaction, or an approver).
    Pending,
    /// Approved: tokens issued; the client may continue to manage the grant.
    Approved,
    /// Denied by policy or a person: nothing more can happen.
    Denied,
}

/// The continuation side of a grant (§3.1, §5): which token continues it, and
/// the pacing the client must respect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Continuation {
    /// Hash of the current continuation access token.
    pub token: TokenHash,
    /// Seconds the client must wait between calls (§5: `too_fast`).
    pub wait: u64,
    /// When the current token was issued (Unix seconds): the client may not
    /// call before `issued_at + wait`.
    pub issued_at: i64,
}

/// A grant request and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantRecord {
    /// Record format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The grant's identifier.
    pub id: GrantId,
    /// Where the grant stands.
    pub state: GrantState,
    /// The client instance's key (the grant's owner).
    pub client: KeyBinding,
    /// The instance identifier handed out for the key, if any.
    pub instance_id: Option<String>,
    /// The request as last accepted (after any PATCH).
    pub request: GrantRequest,
    /// Hashes of the access tokens issued under this grant (for revocation).
    pub tokens: Vec<TokenHash>,
    /// The continuation, while the grant can be continued.
    pub continuation: Option<Continuation>,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// The grant and everything under it is swept after this time.
    pub expires_at: i64,
    /// For a grant made through the OAuth face, the authorization request
    /// it answers; `None` for a GNAP grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthAuthorization>,
}

/// An OAuth 2.1 authorization request served as a grant: what the token
/// endpoint must find again when the code comes back (RFC 6749 §4.1.3,
/// RFC 7636 §4.6, RFC 8707 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthAuthorization {
    /// The client the code was issued to.
    pub client_id: String,
    /// The `redirect_uri` of the authorization request, exactly as sent:
    /// the token request must repeat it.
    pub redirect_uri: String,
    /// The PKCE `code_challenge` (S256 only).
    pub code_challenge: String,
    /// The resource (RFC 8707) the tokens are for: the MCP URL of one
    /// upstream, normalized.
    pub resource: String,
    /// The client's `state`, returned with the code.
    pub state: Option<String>,
    /// RFC 9449 §10: the thumbprint of the DPoP key the code is bound to,
    /// when the authorization request named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
    /// The client's `client_name` when it asked: the consent page shows it
    /// as the client's claim, never as a fact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Where the AS learned of the client (shown on the consent page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_source: Option<crate::proto::oauth::client::ClientSource>,
    /// Hash of the code once it was redeemed: the same code presented
    /// again revokes the tokens issued from it (RFC 6749 §4.1.2), and a
    /// code merely naming the grant does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeemed: Option<TokenHash>,
}

/// A refresh token that was used (rotated away), remembered until the
/// grant it belonged to expires: presented again, it means the token
/// leaked, and the grant's whole family of tokens is revoked (OAuth 2.1
/// §4.3.1, refresh token rotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpentRefresh {
    /// Record format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The grant the refresh token belonged to.
    pub grant: GrantId,
    /// Forgotten after this time (Unix seconds): the grant is gone then.
    pub expires_at: i64,
}

/// What makes a token record an OAuth access token: whom it was issued to,
/// where it may be used, and how it is proven.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthToken {
    /// The client it was issued to.
    pub client_id: String,
    /// The resource (RFC 8707) it is for: the gateway refuses it elsewhere.
    pub audience: String,
    /// RFC 9449: bound to the DPoP key in the record's `key`; each use needs
    /// a proof signed with it. Otherwise a bearer token (RFC 6750).
    pub dpop: bool,
}

/// An issued access token, found by the hash of its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Record format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The grant the token was issued under.
    pub grant: GrantId,
    /// The label the client asked for, if any.
    pub label: Option<String>,
    /// The rights the token carries.
    pub access: Vec<AccessRight>,
    /// The key the token is bound to (changes on key rotation).
    pub key: KeyBinding,
    /// Hash of the token management access token (§6).
    pub manage: TokenHash,
    /// A bearer token (§2.1.1 `bearer` flag, allowed by policy): a resource
    /// server accepts it without a signature. Management stays key-bound.
    #[serde(default)]
    pub bearer: bool,
    /// Issue time (Unix seconds).
    pub issued_at: i64,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
    /// The credential set the gateway uses at each upstream the token
    /// reaches: `(upstream, credential set id)`, recorded at approval.
    /// Removing a set revokes the tokens mapped to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credential_sets: Vec<(String, String)>,
    /// For a token issued through the OAuth face, its client, audience and
    /// proof; `None` for a GNAP token. Its `manage` hash is then the hash of
    /// its refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthToken>,
}

impl TokenRecord {
    /// The credential set this token uses at `upstream`, if any.
    pub fn credential_set(&self, upstream: &str) -> Option<&str> {
        self.credential_sets
            .iter()
            .find(|(u, _)| u == upstream)
            .map(|(_, id)| id.as_str())
    }

    /// True if this token is mapped to the credential set `id`.
    pub fn uses_credential_set(&self, id: &str) -> bool {
        self.credential_sets.iter().any(|(_, s)| s == id)
    }
}

/// How a credential set is presented at its upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialKind {
    /// `Authorization: Bearer SECRET`.
    Bearer,
    /// `HEADER-NAME: SECRET`.
    Header,
    /// `Authorization: Basic base64(SECRET)`, the secret being `USER:PASS`.
    Basic,
    /// `Authorization: Bearer` with an access token the gateway refreshes;
    /// the secret is the JSON of `upstream::oauth2::OAuth2Credential`.
    #[serde(rename = "oauth2")]
    OAuth2,
    /// Environment variables of a stdio upstream's process, the secret
    /// being a JSON object of names to values.
    Env,
}

/// One concrete set of upstream secrets, sealed under the master key
/// (`crate::upstream::vault`) with `id` as associated data. `Debug` shows
/// no part of the sealed bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialSetRecord {
    /// Record format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The set's identifier (the associated data of `sealed`).
    pub id: String,
    /// The upstream it authenticates at.
    pub upstream: String,
    /// How it is presented.
    pub kind: CredentialKind,
    /// The header name, for [`CredentialKind::Header`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_name: Option<String>,
    /// `vault.seal(id, secret)`: nonce ‖ ciphertext ‖ tag.
    #[serde(with = "sealed_b64")]
    pub sealed: Vec<u8>,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// Who connected it, for a person-connected set approved by a
    /// signed-in person (`crate::upstream::earlier::owner_of`): their later
    /// pages offer it again. Absent on enterprise-held sets and on sets
    /// connected with no login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl fmt::Debug for CredentialSetRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialSetRecord")
            .field("v", &self.v)
            .field("id", &self.id)
            .field("upstream", &self.upstream)
            .field("kind", &self.kind)
            .field("header_name", &self.header_name)
            .field("owner", &self.owner)
            .field(
                "sealed",
                &format_args!("{} bytes (redacted)", self.sealed.len()),
            )
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Sealed bytes as base64url text (compact in the JSON record).
mod sealed_b64 {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::proto::b64::encode_url(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        crate::proto::b64::decode_url(&text)
            .ok_or_else(|| serde::de::Error::custom("sealed bytes are base64url"))
    }
}

/// An upstream added at run time (`gnapd upstream add`). Upstreams from the
/// config file are not stored: the file stays their one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamRecord {
    /// Record format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The upstream's name.
    pub name: String,
    /// How the gateway reaches it.
    pub transport: UpstreamTransport,
    /// When it was added (Unix seconds).
    pub created_at: i64,
}

/// How the gateway reaches a stored upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum UpstreamTransport {
    /// Streamable HTTP at `url`.
    Http {
        /// The endpoint.
        url: String,
    },
    /// A process the gateway spawns per MCP session.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        #[serde(default)]
        args: Vec<String>,
    },
}

/// A client instance the AS knows by identifier (§3.5).
///
/// It lives as long as the longest-lived grant made with it: the store
/// moves `expires_at` forward whenever it writes a grant naming the
/// instance with a later expiry, and the sweep removes it after. So an
/// instance minted for a grant nobody approved goes with that grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// Record format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The instance's key.
    pub key: KeyBinding,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// Swept after this time (Unix seconds). Absent in records written
    /// before instances expired: those go [`LEGACY_INSTANCE_LIFETIME`]
    /// after their creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// How long an instance record written before instances expired lives:
/// the default grant lifetime, 30 days.
pub const LEGACY_INSTANCE_LIFETIME: i64 = 30 * 24 * 3600;

impl InstanceRecord {
    /// When the sweep may remove it.
    pub fn expiry(&self) -> i64 {
        self.expires_at
            .unwrap_or_else(|| self.created_at.saturating_add(LEGACY_INSTANCE_LIFETIME))
    }

    /// Keeps it at least until `until` (a grant made with it expires then);
    /// true if that changed it.
    pub fn keep_until(&mut self, until: i64) -> bool {
        if self.expiry() >= until {
            return false;
        }
        self.expires_at = Some(until);
        true
    }
}

/// A resource set an RS registered (RFC 9767 §3.4), found by its
/// `resource_reference`. Never expires: an RS hands the reference out in
/// challenges and documentation, so it must keep meaning the same rights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceSetRecord {
    /// Record format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The rights the reference stands for.
    pub access: Vec<AccessRight>,
    /// RFC 7638 thumbprint of the key of the RS that registered the set.
    pub resource_server: String,
    /// The RS said it will introspect tokens for these rights.
    #[serde(default)]
    pub token_introspection_required: bool,
    /// Registration time (Unix seconds).
    pub created_at: i64,
}

/// How the client learns that the interaction finished (§2.5.2, §4.2), as
/// the AS accepted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionFinish {
    /// `redirect` or `push`.
    pub method: FinishKind,
    /// The client's callback URI.
    pub uri: String,
    /// The client's `nonce` (first line of the hash base).
    pub client_nonce: String,
    /// The AS's `finish` nonce (second line of the hash base).
    pub as_nonce: String,
    /// The hash method in force.
    pub hash_method: HashMethod,
}

/// The finish methods gnapd carries out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishKind {
    /// The RO's browser is sent to the URI with `hash` and `interact_ref`.
    Redirect,
    /// The AS POSTs `hash` and `interact_ref` to the URI.
    Push,
    /// OAuth 2.1 (RFC 6749 §4.1.2, RFC 9207): the browser is sent to the
    /// URI with `code`, `state` and `iss`; the grant's
    /// [`OAuthAuthorization`] holds what the token endpoint checks.
    OAuthCode,
}

/// Where an interaction stands. Moves only forward: `Pending` to
/// `Approved` or `Denied` (a person's decision), `Approved` to `Finished`
/// (the client took the result, once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum InteractionStatus {
    /// Waiting for a person.
    Pending,
    /// A person approved `access` (per requested token, as policy's
    /// `Approve`). With a finish method, the client must present the
    /// interaction reference whose hash is `interact_ref`.
    Approved {
        /// The approved rights, per requested token.
        access: Vec<Vec<AccessRight>>,
        /// Hash of the interaction reference, when a finish method is used.
        interact_ref: Option<TokenHash>,
        /// When (Unix seconds).
        decided_at: i64,
        /// Credential sets the person connected while deciding, as
        /// `(upstream, set id)`: the tokens issued map to them at those
        /// upstreams, in place of the enterprise-held ones.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        credential_sets: Vec<(String, String)>,
        /// The subject of the person who decided, signed in at the
        /// configured login (`crate::authz::login`); absent when no login
        /// is configured or the admin decided.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// A person denied the request.
    Denied {
        /// Hash of the interaction reference, when a finish method is used.
        interact_ref: Option<TokenHash>,
        /// When (Unix seconds).
        decided_at: i64,
        /// The subject of the person who decided, signed in at the
        /// configured login (`crate::authz::login`); absent when no login
        /// is configured or the admin decided.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// The client received its tokens: the interaction reference is spent.
    Finished {
        /// When (Unix seconds).
        at: i64,
        /// Who approved, carried over from [`InteractionStatus::Approved`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
}

impl InteractionStatus {
    /// The status once the client received its tokens at `at`: who
    /// approved stays recorded.
    pub fn finished(&self, at: i64) -> Self {
        let by = match self {
            Self::Approved { by, .. } | Self::Denied { by, .. } | Self::Finished { by, .. } => {
                by.clone()
            }
            Self::Pending => None,
        };
        Self::Finished { at, by }
    }
}

/// A grant's interaction (RFC 9635 §4): how it can start and finish and
/// where it stands. Kept beside the grant, keyed by its id, so that a
/// person's decision never races a write of the grant record itself.
/// Secrets (user code, interaction reference) are kept as hashes only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InteractionRecord {
    /// Record format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The grant.
    pub grant: GrantId,
    /// Hash of the normalized user code, when one was issued.
    pub user_code: Option<TokenHash>,
    /// The finish method, when the client asked for one gnapd carries out.
    pub finish: Option<InteractionFinish>,
    /// Hash of the secret part of the interaction page's URI (the
    /// `redirect` start mode, §3.3.1), when one was handed out. Absent in
    /// records written before the pages existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<TokenHash>,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// The start modes stop working after this time (Unix seconds).
    pub expires_at: i64,
    /// Where it stands.
    #[serde(flatten)]
    pub status: InteractionStatus,
}
