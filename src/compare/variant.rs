//! The protocol variants `gnapd compare` runs, the scenarios each runs and
//! the attacks each is tried against: the closed lists the report covers,
//! every one of them for every variant.

use super::report::VariantInfo;

/// How the client proves possession (or does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// RFC 9421 signatures with an Ed25519 key (GNAP `httpsig`).
    HttpSigEd25519,
    /// RFC 9421 signatures with a P-256 key (ECDSA).
    HttpSigP256,
    /// RFC 6750 Bearer: whoever holds the token.
    Bearer,
    /// RFC 9449 DPoP proofs signed with a P-256 key (ES256).
    DpopEs256,
}

/// How an OAuth client is known to the AS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identification {
    /// GNAP: the key is the client.
    Key,
    /// RFC 7591 dynamic registration.
    Dcr,
    /// A client ID metadata document at an https URL.
    Cimd,
}

/// One protocol variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// GNAP, key-only client, Ed25519 signatures.
    GnapEd25519,
    /// GNAP, key-only client, P-256 signatures.
    GnapP256,
    /// OAuth authorization code + PKCE, registered by DCR, Bearer tokens.
    OAuthBearerDcr,
    /// OAuth authorization code + PKCE, identified by CIMD, Bearer tokens.
    OAuthBearerCimd,
    /// OAuth authorization code + PKCE, registered by DCR, DPoP tokens.
    OAuthDpopDcr,
    /// OAuth authorization code + PKCE, identified by CIMD, DPoP tokens.
    OAuthDpopCimd,
    /// OAuth `client_credentials` with `private_key_jwt` (registered by DCR
    /// with its JWKS), Bearer tokens: no person, no browser.
    OAuthClientCredentials,
    /// OAuth authorization code + PKCE at node-oidc-provider (an external
    /// AS the gateway introspects), registered by DCR, DPoP tokens.
    OidcProviderDpopDcr,
    /// The same at node-oidc-provider with Bearer tokens.
    OidcProviderBearerDcr,
}

impl Variant {
    /// Every variant against gnapd, in report order.
    pub const GNAPD: [Variant; 7] = [
        Variant::GnapEd25519,
        Variant::GnapP256,
        Variant::OAuthBearerDcr,
        Variant::OAuthBearerCimd,
        Variant::OAuthDpopDcr,
        Variant::OAuthDpopCimd,
        Variant::OAuthClientCredentials,
    ];

    /// The variants whose AS is node-oidc-provider (`--with-oidc-provider`),
    /// in report order, after [`Self::GNAPD`].
    pub const EXTERNAL: [Variant; 2] =
        [Variant::OidcProviderDpopDcr, Variant::OidcProviderBearerDcr];

    /// The variants of a comparison: gnapd's, and the external AS's when
    /// one runs.
    pub fn list(with_external: bool) -> Vec<Variant> {
        let mut all = Self::GNAPD.to_vec();
        if with_external {
            all.extend(Self::EXTERNAL);
        }
        all
    }

    /// Whether the AS is the external one (node-oidc-provider), the
    /// gateway trusting it by introspection.
    pub fn is_external(self) -> bool {
        matches!(
            self,
            Self::OidcProviderDpopDcr | Self::OidcProviderBearerDcr
        )
    }

    /// The stable id the report uses.
    pub fn id(self) -> &'static str {
        match self {
            Self::GnapEd25519 => "gnap-ed25519",
            Self::GnapP256 => "gnap-p256",
            Self::OAuthBearerDcr => "oauth-bearer-dcr",
            Self::OAuthBearerCimd => "oauth-bearer-cimd",
            Self::OAuthDpopDcr => "oauth-dpop-dcr",
            Self::OAuthDpopCimd => "oauth-dpop-cimd",
            Self::OAuthClientCredentials => "oauth-client-credentials",
            Self::OidcProviderDpopDcr => "oidc-provider-dpop-dcr",
            Self::OidcProviderBearerDcr => "oidc-provider-bearer-dcr",
        }
    }

    /// Whether this is a GNAP variant.
    pub fn is_gnap(self) -> bool {
        matches!(self, Self::GnapEd25519 | Self::GnapP256)
    }

    /// How the token is bound.
    pub fn binding(self) -> Binding {
        match self {
            Self::GnapEd25519 => Binding::HttpSigEd25519,
            Self::GnapP256 => Binding::HttpSigP256,
            Self::OAuthBearerDcr
            | Self::OAuthBearerCimd
            | Self::OAuthClientCredentials
            | Self::OidcProviderBearerDcr => Binding::Bearer,
            Self::OAuthDpopDcr | Self::OAuthDpopCimd | Self::OidcProviderDpopDcr => {
                Binding::DpopEs256
            }
        }
    }

    /// How the client is identified.
    pub fn identification(self) -> Identification {
        match self {
            Self::GnapEd25519 | Self::GnapP256 => Identification::Key,
            Self::OAuthBearerCimd | Self::OAuthDpopCimd => Identification::Cimd,
            Self::OAuthBearerDcr
            | Self::OAuthDpopDcr
            | Self::OAuthClientCredentials
            | Self::OidcProviderDpopDcr
            | Self::OidcProviderBearerDcr => Identification::Dcr,
        }
    }

    /// The report's description of this variant.
    pub fn info(self) -> VariantInfo {
        let (token_binding, description) = match self {
            Self::GnapEd25519 => (
                "httpsig-ed25519",
                "GNAP grant by a fresh Ed25519 key (no registration); every request signed (RFC 9421) with Content-Digest",
            ),
            Self::GnapP256 => (
                "httpsig-ecdsa-p256",
                "GNAP grant by a fresh P-256 key (no registration); every request signed (RFC 9421, ecdsa-p256-sha256) with Content-Digest",
            ),
            Self::OAuthBearerDcr => (
                "bearer",
                "OAuth 2.1 as MCP uses it: RFC 9728/8414 discovery, RFC 7591 registration, authorization code + PKCE, Bearer token",
            ),
            Self::OAuthBearerCimd => (
                "bearer",
                "OAuth 2.1 as MCP uses it: discovery, client ID metadata document (fetched by the AS), authorization code + PKCE, Bearer token",
            ),
            Self::OAuthDpopDcr => (
                "dpop-es256",
                "OAuth 2.1 with RFC 9449 DPoP (ES256, no server nonce): discovery, RFC 7591 registration, authorization code + PKCE",
            ),
            Self::OAuthDpopCimd => (
                "dpop-es256",
                "OAuth 2.1 with RFC 9449 DPoP (ES256, no server nonce): discovery, client ID metadata document, authorization code + PKCE",
            ),
            Self::OAuthClientCredentials => (
                "bearer",
                "OAuth client_credentials with private_key_jwt (RFC 7523, ES256), registered by RFC 7591 with its JWKS: no person",
            ),
            Self::OidcProviderDpopDcr => (
                "dpop-es256",
                "node-oidc-provider as the AS (RFC 7591 registration, authorization code + PKCE, DPoP ES256, no server nonce; sign-in and consent on its devInteractions forms) in front of the same gateway, which introspects each token (RFC 7662)",
            ),
            Self::OidcProviderBearerDcr => (
                "bearer",
                "node-oidc-provider as the AS (RFC 7591 registration, authorization code + PKCE, Bearer token; sign-in and consent on its devInteractions forms) in front of the same gateway, which introspects each token (RFC 7662)",
            ),
        };
        let identification = match self.identification() {
            Identification::Key => "key",
            Identification::Dcr => "dcr",
            Identification::Cimd => "cimd",
        };
        VariantInfo {
            id: self.id().to_owned(),
            protocol: if self.is_gnap() { "gnap" } else { "oauth" }.to_owned(),
            authorization_server: if self.is_external() {
                "oidc-provider"
            } else {
                "gnapd"
            }
            .to_owned(),
            client_identification: identification.to_owned(),
            token_binding: token_binding.to_owned(),
            description: description.to_owned(),
        }
    }
}

/// The scenarios, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// A brand-new agent to its first successful `tools/call`, no person.
    HeadlessFirstCall,
    /// A person approves on the consent page (automated by the tool).
    PersonApproves,
    /// N `tools/call`s with a token in hand.
    SteadyState,
    /// GNAP token rotation against OAuth refresh with rotation.
    Renewal,
    /// Revoke, then the time until the gateway refuses.
    Revocation,
    /// The agent needs one more tool.
    StepUp,
    /// The same agent the next day.
    ReturningAgent,
}

impl Scenario {
    /// Every scenario, in report order.
    pub const ALL: [Scenario; 7] = [
        Scenario::HeadlessFirstCall,
        Scenario::PersonApproves,
        Scenario::SteadyState,
        Scenario::Renewal,
        Scenario::Revocation,
        Scenario::StepUp,
        Scenario::ReturningAgent,
    ];

    /// Stable id.
    pub fn id(self) -> &'static str {
        match self {
            Self::HeadlessFirstCall => "headless-first-call",
            Self::PersonApproves => "person-approves",
            Self::SteadyState => "steady-state",
            Self::Renewal => "renewal",
            Self::Revocation => "revocation",
            Self::StepUp => "step-up",
            Self::ReturningAgent => "returning-agent",
        }
    }

    /// Title for the tables.
    pub fn title(self) -> &'static str {
        match self {
            Self::HeadlessFirstCall => {
                "1. Headless first call: a brand-new agent to its first tools/call"
            }
            Self::PersonApproves => "2. A person approves on the consent page",
            Self::SteadyState => "3. Steady state: tools/call with a token in hand",
            Self::Renewal => "4. Renewal: GNAP token rotation vs OAuth refresh (rotating)",
            Self::Revocation => "5. Revocation: revoke, then until the gateway refuses",
            Self::StepUp => "6. Step-up: the agent needs one more tool",
            Self::ReturningAgent => "7. Returning agent: the same agent the next day",
        }
    }
}

/// The attacks, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// A captured gateway call sent again.
    Replay,
    /// A stolen access token used without its key.
    StolenToken,
    /// A proxy in the path changes the body.
    BodyTampering,
    /// A proxy changes `Mcp-Method` / `Mcp-Name`.
    RoutingHeaderTampering,
    /// A token for upstream A presented at upstream B.
    Audience,
    /// A code or `interact_ref` from another flow injected.
    CodeInjection,
    /// A client talked into sending its code or token to the wrong AS.
    MixUp,
    /// A spent refresh token (or a rotated-away token) used again.
    RefreshReuse,
    /// A token one AS issued replayed at another AS's resource.
    CuckooToken,
    /// Unauthenticated requests that make the server keep state.
    RegistrationFlooding,
}

impl Attack {
    /// Every attack, in report order.
    pub const ALL: [Attack; 10] = [
        Attack::Replay,
        Attack::StolenToken,
        Attack::BodyTampering,
        Attack::RoutingHeaderTampering,
        Attack::Audience,
        Attack::CodeInjection,
        Attack::MixUp,
        Attack::RefreshReuse,
        Attack::CuckooToken,
        Attack::RegistrationFlooding,
    ];

    /// Stable id.
    pub fn id(self) -> &'static str {
        match self {
            Self::Replay => "replay",
            Self::StolenToken => "stolen-token",
            Self::BodyTampering => "body-tampering",
            Self::RoutingHeaderTampering => "routing-header-tampering",
            Self::Audience => "audience",
            Self::CodeInjection => "code-injection",
            Self::MixUp => "mix-up",
            Self::RefreshReuse => "refresh-reuse",
            Self::CuckooToken => "cuckoo-token",
            Self::RegistrationFlooding => "registration-flooding",
        }
    }

    /// Title for the tables.
    pub fn title(self) -> &'static str {
        match self {
            Self::Replay => "Replay of a captured gateway call",
            Self::StolenToken => "Stolen access token used without its key",
            Self::BodyTampering => "Body changed by a proxy in the path",
            Self::RoutingHeaderTampering => "Mcp-Method / Mcp-Name changed by a proxy",
            Self::Audience => "Token for upstream A used at upstream B",
            Self::CodeInjection => "Authorization code / interact_ref injection",
            Self::MixUp => "AS mix-up",
            Self::RefreshReuse => "Refresh token (or rotated token) reuse",
            Self::CuckooToken => "Token replayed at another AS's resource (cuckoo's token)",
            Self::RegistrationFlooding => "Flooding: state created per unauthenticated request",
        }
    }
}
