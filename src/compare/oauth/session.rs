//! One OAuth agent: its HTTP stack (and its person's browser), its keys,
//! its client ID, its tokens. The scenarios drive it a protocol step at a
//! time (each method is one step's exchanges); the attack suite builds
//! its calls and renews its tokens ([`Session::headless`] and the
//! contract's methods).

use serde_json::{Value, json};

use super::authorize::{self, AuthorizationRequest, Started};
use super::discovery::{self, Discovered};
use super::pkce::Pkce;
use super::register::{self, REDIRECT_URI};
use super::token::{self, Tokens};
use super::{assertion, dpop, revoke};
use crate::compare::documents;
use crate::compare::driver::{self, DriverError, unexpected};
use crate::compare::external::person;
use crate::compare::harness::Instance;
use crate::compare::meter::{Meter, Request, Response, Tap};
use crate::compare::variant::{Binding, Identification, Variant};
use crate::proto::jwk::SigningKey;

/// An authorization request under way: what the client keeps for the
/// redirect back.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) pkce: Pkce,
    pub(crate) state: String,
}

/// One OAuth agent.
#[derive(Debug)]
pub struct Session {
    variant: Variant,
    meter: Meter,
    browser: Meter,
    discovered: Option<Discovered>,
    client_id: Option<String>,
    dpop_key: Option<SigningKey>,
    assertion_key: Option<SigningKey>,
    pending: Option<Pending>,
    tokens: Option<Tokens>,
    previous: Option<Tokens>,
    mcp_session: Option<String>,
    next_id: u64,
}

impl Session {
    /// A brand-new agent of `variant`: its keys made now (the first
    /// measured step's work), and for CIMD its document published (hosted
    /// before the agent runs, like a client's web site).
    pub(crate) fn new(variant: Variant, tap: &Tap) -> Result<Self, DriverError> {
        let dpop_key = match variant.binding() {
            Binding::DpopEs256 => Some(dpop::new_key()?),
            _ => None,
        };
        let assertion_key = match variant {
            Variant::OAuthClientCredentials => Some(dpop::new_key()?),
            _ => None,
        };
        let client_id = match variant.identification() {
            Identification::Cimd => {
                let host = documents::shared().ok_or_else(|| {
                    DriverError::Protocol("no metadata-document host was started".into())
                })?;
                Some(
                    host.publish(&register::code_client())
                        .map_err(DriverError::Protocol)?,
                )
            }
            _ => None,
        };
        Ok(Self {
            variant,
            meter: Meter::agent(tap),
            browser: Meter::browser(tap),
            discovered: None,
            client_id,
            dpop_key,
            assertion_key,
            pending: None,
            tokens: None,
            previous: None,
            mcp_session: None,
            next_id: 1,
        })
    }

    /// A brand-new agent with a token for `upstream` (all tools if
    /// `tools` is None) at `instance` (auto-approving), the steps a
    /// headless agent takes (discovery included).
    pub async fn headless(
        instance: &Instance,
        variant: Variant,
        upstream: &str,
        tools: Option<&[&str]>,
        tap: &Tap,
    ) -> Result<Session, DriverError> {
        let mut session = Session::new(variant, tap)?;
        session.discover(&instance.gateway(upstream)).await?;
        session.register().await?;
        let scope = tools.map(|tools| tool_scope(upstream, tools));
        session.obtain(scope.as_deref()).await?;
        Ok(session)
    }

    /// The token without a person: client credentials, or an
    /// authorization the AS approves at once.
    pub(crate) async fn obtain(&mut self, scope: Option<&str>) -> Result<(), DriverError> {
        if self.variant == Variant::OAuthClientCredentials {
            return self.client_credentials(scope).await;
        }
        match self.authorize(scope).await? {
            Started::Callback(callback) => self.redeem(&callback).await,
            // node-oidc-provider asks a person whatever its policy: the
            // person's forms, made as in scenario 2.
            Started::Consent(page) if self.variant.is_external() => {
                let callback = person::walk(&mut self.browser, &page, REDIRECT_URI).await?;
                self.redeem(&callback).await
            }
            Started::Consent(page) => Err(DriverError::Protocol(format!(
                "the AS asks a person ({page}); this instance is not auto-approving"
            ))),
        }
    }

    /// Discovery from the MCP URL `gateway` (probe, RFC 9728, RFC 8414).
    pub(crate) async fn discover(&mut self, gateway: &str) -> Result<(), DriverError> {
        let choice = if self.variant.is_external() {
            discovery::Choice::External
        } else {
            discovery::Choice::First
        };
        self.discovered = Some(discovery::discover(&mut self.meter, gateway, choice).await?);
        Ok(())
    }

    /// Registers (RFC 7591) unless the client is known by its document;
    /// true if it registered.
    pub(crate) async fn register(&mut self) -> Result<bool, DriverError> {
        if self.variant.identification() == Identification::Cimd {
            return Ok(false);
        }
        let metadata = match &self.assertion_key {
            Some(key) => register::assertion_client(public_jwk(key)?),
            None => register::code_client(),
        };
        let endpoint = self
            .found()?
            .metadata
            .registration_endpoint
            .clone()
            .ok_or_else(|| DriverError::Protocol("the AS has no registration endpoint".into()))?;
        let client_id = register::register(&mut self.meter, &endpoint, &metadata).await?;
        self.client_id = Some(client_id);
        Ok(true)
    }

    /// The browser's authorization request for `scope` (the challenge's
    /// when `None`), with fresh PKCE and `state`.
    pub(crate) async fn authorize(&mut self, scope: Option<&str>) -> Result<Started, DriverError> {
        let pending = Pending {
            pkce: Pkce::new()?,
            state: crate::random::text()
                .map_err(|_| DriverError::Protocol("no randomness for state".into()))?,
        };
        let found = self.found()?;
        let scope = scope.map(str::to_owned).or_else(|| found.scope.clone());
        let jkt = self
            .dpop_key
            .as_ref()
            .map(|k| k.verifying_key().thumbprint().as_str().to_owned());
        let url = AuthorizationRequest {
            endpoint: &found.metadata.authorization_endpoint,
            client_id: self.client_id()?,
            redirect_uri: REDIRECT_URI,
            pkce: &pending.pkce,
            state: &pending.state,
            resource: &found.resource,
            scope: scope.as_deref(),
            dpop_jkt: jkt.as_deref(),
        }
        .url();
        self.pending = Some(pending);
        authorize::start(&mut self.browser, &url, REDIRECT_URI).await
    }

    /// Reads the redirect back and redeems its code (with a DPoP proof
    /// when bound).
    pub(crate) async fn redeem(&mut self, callback: &str) -> Result<(), DriverError> {
        let pending = self
            .pending
            .take()
            .ok_or_else(|| DriverError::Protocol("no authorization under way".into()))?;
        let found = self.found()?.clone();
        let code = authorize::read_callback(callback, &pending.state, &found.metadata.issuer)?;
        let endpoint = &found.metadata.token_endpoint;
        let proof = self.token_proof(endpoint)?;
        let fields = token::code_fields(
            self.client_id()?,
            &code,
            REDIRECT_URI,
            &pending.pkce.verifier,
            &found.resource,
        );
        let request = token::request(endpoint, &fields, proof.as_deref());
        let tokens = token::exchange(&mut self.meter, request).await?;
        self.keep(tokens);
        Ok(())
    }

    /// `client_credentials` with a fresh assertion, for `scope`.
    pub(crate) async fn client_credentials(
        &mut self,
        scope: Option<&str>,
    ) -> Result<(), DriverError> {
        let found = self.found()?.clone();
        let scope = scope.map(str::to_owned).or_else(|| found.scope.clone());
        let key = self
            .assertion_key
            .as_ref()
            .ok_or_else(|| DriverError::Protocol("no assertion key".into()))?;
        let endpoint = &found.metadata.token_endpoint;
        let jwt = assertion::sign(key, self.client_id()?, endpoint)?;
        let fields = token::client_credentials_fields(&jwt, scope.as_deref(), &found.resource);
        let request = token::request(endpoint, &fields, None);
        let tokens = token::exchange(&mut self.meter, request).await?;
        self.keep(tokens);
        Ok(())
    }

    /// Renews the token: a refresh (rotating; a DPoP proof when bound), or
    /// for client credentials (no refresh token, RFC 6749 §4.4.3) a new
    /// assertion for the same scope.
    pub async fn renew(&mut self) -> Result<(), DriverError> {
        let current = self
            .tokens
            .clone()
            .ok_or_else(|| DriverError::Protocol("no token to renew".into()))?;
        let Some(refresh_token) = current.refresh.clone() else {
            return self.client_credentials(current.scope.as_deref()).await;
        };
        let answer = self.refresh_with(&refresh_token).await?;
        let tokens = token::read(&answer)?;
        self.keep(tokens);
        Ok(())
    }

    /// RFC 7009 revocation of the access token (gnapd takes its refresh
    /// token with it). A `private_key_jwt` client authenticates with a
    /// fresh assertion, as at the token endpoint (§2.1); its audience is
    /// the token endpoint, which identifies the AS (RFC 7523 §3).
    pub(crate) async fn revoke(&mut self) -> Result<(), DriverError> {
        let metadata = &self.found()?.metadata;
        let endpoint = metadata
            .revocation_endpoint
            .clone()
            .ok_or_else(|| DriverError::Protocol("the AS has no revocation endpoint".into()))?;
        let assertion = match &self.assertion_key {
            Some(key) => Some(assertion::sign(
                key,
                self.client_id()?,
                &metadata.token_endpoint,
            )?),
            None => None,
        };
        let request = revoke::request(
            &endpoint,
            self.client_id()?,
            self.access_token(),
            "access_token",
            assertion.as_deref(),
        );
        revoke::revoke(&mut self.meter, request).await
    }

    /// MCP `initialize` and `notifications/initialized` at `gateway`.
    pub(crate) async fn initialize(&mut self, gateway: &str) -> Result<(), DriverError> {
        let request = driver::initialize(gateway, self.mcp_session.as_deref());
        let answer = self.send(self.authorized(request)?).await?;
        driver::mcp_result(&answer)?;
        if let Some(id) = answer.header("mcp-session-id") {
            self.mcp_session = Some(id.to_owned());
        }
        let note = driver::mcp_request(
            gateway,
            None,
            "notifications/initialized",
            json!({}),
            self.mcp_session.as_deref(),
        );
        let answer = self.send(self.authorized(note)?).await?;
        if !(200..300).contains(&answer.status) {
            return Err(unexpected("notifications/initialized", &answer));
        }
        Ok(())
    }

    /// A `tools/call` of `tool` at `gateway`, sent; the answer as it came.
    pub(crate) async fn call_at(
        &mut self,
        gateway: &str,
        tool: &str,
    ) -> Result<Response, DriverError> {
        let request = self.call_request(gateway, tool)?;
        self.send(request).await
    }

    /// A tools/call of `tool` at `instance`'s gateway for `upstream`,
    /// complete (token, DPoP proof) but not sent.
    pub fn call(
        &mut self,
        instance: &Instance,
        upstream: &str,
        tool: &str,
    ) -> Result<Request, DriverError> {
        self.call_request(&instance.gateway(upstream), tool)
    }

    /// [`Self::call`] presenting `token` instead of the current one (a
    /// rotated-away or revoked token), proved with the session's own key.
    pub fn call_with(
        &mut self,
        instance: &Instance,
        upstream: &str,
        tool: &str,
        token: &str,
    ) -> Result<Request, DriverError> {
        let request = self.unsigned_call(&instance.gateway(upstream), tool);
        self.with_token(request, token)
    }

    fn call_request(&mut self, gateway: &str, tool: &str) -> Result<Request, DriverError> {
        let request = self.unsigned_call(gateway, tool);
        self.authorized(request)
    }

    fn unsigned_call(&mut self, gateway: &str, tool: &str) -> Request {
        let id = self.next_id;
        self.next_id += 1;
        driver::tool_call(gateway, id, tool, self.mcp_session.as_deref())
    }

    /// A refresh request with `refresh_token` (any: the attack suite sends
    /// a spent one), proved with the session's DPoP key when it has one;
    /// the answer as it came, the session's tokens untouched.
    pub async fn refresh_with(&mut self, refresh_token: &str) -> Result<Response, DriverError> {
        let endpoint = self.found()?.metadata.token_endpoint.clone();
        let proof = self.token_proof(&endpoint)?;
        let fields = token::refresh_fields(self.client_id()?, refresh_token);
        let request = token::request(&endpoint, &fields, proof.as_deref());
        self.send(request).await
    }

    /// Sends a request through the agent's own meter.
    pub async fn send(&mut self, request: Request) -> Result<Response, DriverError> {
        Ok(self.meter.send(request).await?)
    }

    /// `request` with the token (`Bearer`, or `DPoP` and a fresh proof).
    pub(crate) fn authorized(&self, request: Request) -> Result<Request, DriverError> {
        let tokens = self
            .tokens
            .as_ref()
            .ok_or_else(|| DriverError::Protocol("no token yet".into()))?;
        self.with_token(request, &tokens.access)
    }

    /// `request` presenting `token` as this session's scheme says.
    fn with_token(&self, request: Request, token: &str) -> Result<Request, DriverError> {
        match &self.dpop_key {
            Some(key) => {
                let proof = dpop::proof(key, &request.method, &request.url, Some(token))?;
                Ok(request
                    .header("Authorization", format!("DPoP {token}"))
                    .header("DPoP", proof))
            }
            None => Ok(request.header("Authorization", format!("Bearer {token}"))),
        }
    }

    /// The current access token value.
    pub fn access_token(&self) -> &str {
        self.tokens.as_ref().map_or("", |t| t.access.as_str())
    }

    /// The access token before the last renewal.
    pub fn previous_access_token(&self) -> Option<&str> {
        self.previous.as_ref().map(|t| t.access.as_str())
    }

    /// The current refresh token.
    pub fn refresh_token(&self) -> Option<&str> {
        self.tokens.as_ref().and_then(|t| t.refresh.as_deref())
    }

    /// The refresh token spent by the last renewal.
    pub fn previous_refresh_token(&self) -> Option<&str> {
        self.previous.as_ref().and_then(|t| t.refresh.as_deref())
    }

    /// The scope the current token carries, as the AS said.
    pub fn scope(&self) -> Option<&str> {
        self.tokens.as_ref().and_then(|t| t.scope.as_deref())
    }

    /// The client ID (registered, or the document's URL).
    pub fn client_id(&self) -> Result<&str, DriverError> {
        self.client_id
            .as_deref()
            .ok_or_else(|| DriverError::Protocol("no client ID yet".into()))
    }

    /// What discovery found.
    pub fn found(&self) -> Result<&Discovered, DriverError> {
        self.discovered
            .as_ref()
            .ok_or_else(|| DriverError::Protocol("discovery has not run".into()))
    }

    /// The DPoP key, if the tokens are bound.
    pub fn dpop_key(&self) -> Option<&SigningKey> {
        self.dpop_key.as_ref()
    }

    /// The agent's meter (for a raw exchange of the attack suite).
    pub fn meter(&mut self) -> &mut Meter {
        &mut self.meter
    }

    /// The person's browser.
    pub fn browser(&mut self) -> &mut Meter {
        &mut self.browser
    }

    /// Closes the agent's connections: the next request connects afresh.
    pub fn disconnect(&mut self) {
        self.meter.disconnect();
        self.browser.disconnect();
    }

    fn keep(&mut self, tokens: Tokens) {
        self.previous = self.tokens.replace(tokens);
    }

    fn token_proof(&self, endpoint: &str) -> Result<Option<String>, DriverError> {
        self.dpop_key
            .as_ref()
            .map(|key| dpop::proof(key, "POST", endpoint, None))
            .transpose()
    }
}

/// The scope of some tools of `upstream` (gnapd's `mcp:NAME:tool:T`).
pub fn tool_scope(upstream: &str, tools: &[&str]) -> String {
    tools
        .iter()
        .map(|tool| format!("mcp:{upstream}:tool:{tool}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn public_jwk(key: &SigningKey) -> Result<&Value, DriverError> {
    key.verifying_key()
        .public_jwk()
        .ok_or_else(|| DriverError::Protocol("a key without a public JWK".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_scopes_are_gnapds_per_tool_scope_tokens() {
        assert_eq!(
            tool_scope("alpha", &["echo", "add"]),
            "mcp:alpha:tool:echo mcp:alpha:tool:add"
        );
        let access = crate::proto::oauth::scope::to_access(&tool_scope("alpha", &["echo"]));
        assert!(access.is_ok(), "{access:?}");
    }
}
