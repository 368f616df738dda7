//! One GNAP agent: its own meter (its HTTP stack), its key, the grant it
//! holds and the MCP session it opened. The scenarios walk it step by
//! step; the attack suite starts one with [`Session::headless`] and
//! replays, alters or re-signs what it sends.

use serde_json::{Value, json};

use super::super::driver::{self, DriverError, mcp_result, unexpected};
use super::super::harness::Instance;
use super::super::meter::{Meter, Request, Response, Tap};
use super::super::variant::Variant;
use super::grant::{self, Granted};
use super::interaction::{self, Started};
use super::{continuation, discovery, manage, wire};
use crate::client::grant::{AccessSpec, Issued};
use crate::proto::gnap::{Continue, Manage};
use crate::proto::httpsig::Algorithm;
use crate::proto::jwk::SigningKey;

/// The signature algorithm of a GNAP variant's key.
pub fn algorithm(variant: Variant) -> Option<Algorithm> {
    match variant {
        Variant::GnapEd25519 => Some(Algorithm::Ed25519),
        Variant::GnapP256 => Some(Algorithm::EcdsaP256Sha256),
        _ => None,
    }
}

/// A GNAP agent and what it holds.
pub struct Session {
    meter: Meter,
    key: SigningKey,
    /// The gateway URL the agent was given.
    resource: String,
    /// The grant endpoint and the access to ask for, once discovered.
    as_uri: String,
    access: AccessSpec,
    token: Option<Issued>,
    previous: Option<Issued>,
    continue_: Option<Continue>,
    instance_id: Option<String>,
    mcp_session: Option<String>,
    next_id: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("resource", &self.resource)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A brand-new agent that knows only `resource` (a gateway URL), with a
    /// fresh key for `variant`, sending through a meter of its own on `tap`.
    pub fn new(variant: Variant, resource: &str, tap: &Tap) -> Result<Self, DriverError> {
        let algorithm = algorithm(variant)
            .ok_or_else(|| DriverError::Protocol(format!("{} is not GNAP", variant.id())))?;
        let key = SigningKey::generate(algorithm)
            .map_err(|e| DriverError::Protocol(format!("key generation: {e}")))?;
        Ok(Self {
            meter: Meter::agent(tap),
            key,
            resource: resource.to_owned(),
            as_uri: String::new(),
            access: AccessSpec::Reference(String::new()),
            token: None,
            previous: None,
            continue_: None,
            instance_id: None,
            mcp_session: None,
            next_id: 1,
        })
    }

    /// A brand-new agent with a token for `upstream` (all tools if `tools`
    /// is None) at `instance` (an auto-approving instance): discovery and a
    /// headless grant, the steps of scenario 1 before `initialize`.
    pub async fn headless(
        instance: &Instance,
        variant: Variant,
        upstream: &str,
        tools: Option<&[&str]>,
        tap: &Tap,
    ) -> Result<Session, DriverError> {
        let mut session = Self::new(variant, &instance.gateway(upstream), tap)?;
        session.discover(tools).await?;
        session.grant().await?;
        Ok(session)
    }

    /// Discovery from the gateway's challenge; `tools` narrows the access
    /// to those tools of the challenge's upstream.
    pub async fn discover(&mut self, tools: Option<&[&str]>) -> Result<(), DriverError> {
        let challenge = discovery::probe(&mut self.meter, &self.resource).await?;
        let reference = challenge.access.ok_or_else(|| {
            DriverError::Protocol("the gateway's challenge names no access".into())
        })?;
        self.access = match tools {
            None => AccessSpec::Reference(reference),
            Some(tools) => AccessSpec::Tools {
                upstream: crate::client::grant::upstream_of_reference(&reference)
                    .ok_or_else(|| {
                        DriverError::Protocol(format!("not an upstream reference: {reference}"))
                    })?
                    .to_owned(),
                tools: tools.iter().map(|t| (*t).to_owned()).collect(),
            },
        };
        self.as_uri = challenge.as_uri;
        Ok(())
    }

    /// A headless grant request (presenting the instance identifier once
    /// the AS gave one).
    pub async fn grant(&mut self) -> Result<(), DriverError> {
        let granted = grant::headless(
            &mut self.meter,
            &self.key,
            &self.as_uri,
            &self.access,
            self.instance_id.as_deref(),
            &self.resource,
        )
        .await?;
        self.take(granted);
        Ok(())
    }

    /// A grant request that asks for a person (redirect, redirect finish).
    pub async fn start_interaction(&mut self) -> Result<Started, DriverError> {
        interaction::start(
            &mut self.meter,
            &self.key,
            &self.as_uri,
            &self.access,
            &self.resource,
        )
        .await
    }

    /// Back from the browser at `callback`: checks the hash and continues
    /// with the `interact_ref`.
    pub async fn finish_interaction(
        &mut self,
        started: &Started,
        callback: &str,
    ) -> Result<(), DriverError> {
        let interact_ref = interaction::finish(started, callback, &self.as_uri)?;
        let granted = continuation::after_interaction(
            &mut self.meter,
            &self.key,
            &started.continue_,
            &interact_ref,
        )
        .await?;
        self.take(granted);
        Ok(())
    }

    /// §5.3: the same grant, now for `tools` of the same upstream; the new
    /// token replaces the current one.
    pub async fn more_access(&mut self, tools: &[&str]) -> Result<(), DriverError> {
        let upstream = match &self.access {
            AccessSpec::Tools { upstream, .. } => upstream.clone(),
            _ => return Err(DriverError::Protocol("no tool list to extend".into())),
        };
        let cont = self.continue_.clone().ok_or_else(|| {
            DriverError::Protocol("the AS left the grant without a continuation".into())
        })?;
        let access = AccessSpec::Tools {
            upstream,
            tools: tools.iter().map(|t| (*t).to_owned()).collect(),
        };
        let granted = continuation::modify(&mut self.meter, &self.key, &cont, &access).await?;
        self.access = access;
        self.take(granted);
        Ok(())
    }

    fn take(&mut self, granted: Granted) {
        if let Some(old) = self.token.replace(granted.issued) {
            self.previous = Some(old);
        }
        if granted.continue_.is_some() {
            self.continue_ = granted.continue_;
        }
        if granted.instance_id.is_some() {
            self.instance_id = granted.instance_id;
        }
    }

    fn issued(&self) -> Result<&Issued, DriverError> {
        self.token
            .as_ref()
            .ok_or_else(|| DriverError::Protocol("no token yet".into()))
    }

    /// The management API of the current token.
    pub fn management(&self) -> Option<&Manage> {
        self.token.as_ref().and_then(|t| t.manage.as_ref())
    }

    /// The management URI and token the previous token came with (before
    /// the last [`Self::renew`]).
    pub fn previous_management(&self) -> Option<(&str, &str)> {
        self.previous
            .as_ref()
            .and_then(|t| t.manage.as_ref())
            .map(|m| (m.uri.as_str(), m.access_token.value.expose()))
    }

    /// The grant's continuation, if the AS left one.
    pub fn continuation(&self) -> Option<&Continue> {
        self.continue_.as_ref()
    }

    /// The agent's key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The grant endpoint it discovered.
    pub fn as_uri(&self) -> &str {
        &self.as_uri
    }

    /// The access it asks for.
    pub fn access(&self) -> &AccessSpec {
        &self.access
    }

    /// The instance identifier the AS gave, if any.
    pub fn instance_id(&self) -> Option<&str> {
        self.instance_id.as_deref()
    }

    /// The agent's own HTTP stack.
    pub fn meter(&mut self) -> &mut Meter {
        &mut self.meter
    }

    /// The current access token value ("" before the grant).
    pub fn access_token(&self) -> &str {
        self.token.as_ref().map_or("", |t| t.token.expose())
    }

    /// Seconds the current token lives, if the AS said.
    pub fn expires_in(&self) -> Option<u64> {
        self.token.as_ref().and_then(|t| t.expires_in)
    }

    /// The access token before the last renewal or new grant.
    pub fn previous_access_token(&self) -> Option<&str> {
        self.previous.as_ref().map(|t| t.token.expose())
    }

    /// §6.1: rotates the current token; the previous one (and its
    /// management token) stay readable.
    pub async fn renew(&mut self) -> Result<(), DriverError> {
        let manage = self
            .issued()?
            .manage
            .clone()
            .ok_or_else(|| DriverError::Protocol("the token has no management URI".into()))?;
        let issued = manage::rotate(&mut self.meter, &self.key, &manage).await?;
        self.previous = self.token.replace(issued);
        Ok(())
    }

    /// §6.2: revokes the current token.
    pub async fn revoke(&mut self) -> Result<(), DriverError> {
        let manage = self
            .issued()?
            .manage
            .clone()
            .ok_or_else(|| DriverError::Protocol("the token has no management URI".into()))?;
        manage::revoke(&mut self.meter, &self.key, &manage).await
    }

    /// A signed MCP request to the agent's own gateway URL with the token.
    fn mcp(&self, request: Request) -> Result<Request, DriverError> {
        wire::sign(request, &self.key, Some(self.issued()?.token.expose()))
    }

    /// MCP `initialize` and `notifications/initialized`, signed.
    pub async fn initialize(&mut self) -> Result<(), DriverError> {
        let request = self.mcp(driver::initialize(
            &self.resource,
            self.mcp_session.as_deref(),
        ))?;
        let response = self.send(request).await?;
        mcp_result(&response)?;
        if let Some(id) = response.header("mcp-session-id") {
            self.mcp_session = Some(id.to_owned());
        }
        let initialized = driver::mcp_request(
            &self.resource,
            None,
            "notifications/initialized",
            json!({}),
            self.mcp_session.as_deref(),
        );
        let response = self.send(self.mcp(initialized)?).await?;
        if !(200..300).contains(&response.status) {
            return Err(unexpected("notifications/initialized", &response));
        }
        Ok(())
    }

    /// A `tools/call` of `tool` at the agent's gateway URL, sent; the
    /// answer as it came.
    pub async fn call_tool(&mut self, tool: &str) -> Result<Response, DriverError> {
        let id = self.next_id();
        let request = driver::tool_call(&self.resource, id, tool, self.mcp_session.as_deref());
        let request = self.mcp(request)?;
        self.send(request).await
    }

    /// A `tools/call` of `tool` that must succeed: its result.
    pub async fn tool(&mut self, tool: &str) -> Result<Value, DriverError> {
        let response = self.call_tool(tool).await?;
        mcp_result(&response)
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A tools/call of `tool` at `instance`'s gateway for `upstream`,
    /// complete (token, signature) but not sent.
    pub fn call(
        &mut self,
        instance: &Instance,
        upstream: &str,
        tool: &str,
    ) -> Result<Request, DriverError> {
        let token = self.issued()?.token.expose().to_owned();
        self.call_with(instance, upstream, tool, &token)
    }

    /// [`Self::call`] presenting `token` instead of the current one,
    /// signed with the agent's key.
    pub fn call_with(
        &mut self,
        instance: &Instance,
        upstream: &str,
        tool: &str,
        token: &str,
    ) -> Result<Request, DriverError> {
        let id = self.next_id();
        let request = driver::tool_call(
            &instance.gateway(upstream),
            id,
            tool,
            self.mcp_session.as_deref(),
        );
        wire::sign(request, &self.key, Some(token))
    }

    /// Sends a request through the agent's own meter.
    pub async fn send(&mut self, request: Request) -> Result<Response, DriverError> {
        Ok(self.meter.send(request).await?)
    }
}
