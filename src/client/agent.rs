//! The agent: one key, one grant at a time, and every request signed.
//!
//! [`SigningClient`] is the signed request layer: each method is one HTTP exchange
//! of RFC 9635 (grant request, continuation, rotation, revocation, a call at
//! the resource server), signed under the GNAP profile (`tag="gnap"`,
//! `created`, `nonce`, `Content-Digest`; `authorization` covered when a token
//! is presented). `gnapd agent …` drives it step by step.
//!
//! [`Agent`] keeps a usable token for one resource: it learns the AS and the
//! access to ask for from the resource's challenge (§9.1), asks for a grant
//! (interacting and polling when the AS wants a person), rotates the token
//! before it expires (§6.1) and negotiates again when the resource refuses
//! it (revoked). `gnapd connect` relays MCP through it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;

use super::ClientError;
use super::challenge::{Challenge, gnap_challenge};
use super::finish::{Listener, verify_redirect};
use super::grant::{
    AccessSpec, Interaction, Issued, Outcome, Pending, Refusal, grant_request, interpret, rotated,
    start_modes, upstream_of_reference, upstream_of_url,
};
use super::http::{AS_TIMEOUT, Answer, Http, MAX_AS_RESPONSE};
use super::timing::{self, PollSchedule, Step};
use crate::clock::Clock;
use crate::proto::gnap::{Continue, Discovery, ErrorCode};
use crate::proto::httpsig::{HttpRequest, SignOptions, sign_gnap};
use crate::proto::jwk::SigningKey;

mod prompt;
mod signing_client;

pub use prompt::{Prompter, StderrPrompter, open_browser};
pub use signing_client::SigningClient;

/// How an [`Agent`] negotiates.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// `client.display.name`.
    pub display_name: String,
    /// The grant endpoint, when not learnt from the resource's challenge.
    pub as_uri: Option<String>,
    /// What to ask for; `None`: the challenge's reference.
    pub access: Option<AccessSpec>,
    /// Narrow the access to these tools of the resource's upstream.
    pub tools: Vec<String>,
    /// Offer interaction start modes.
    pub interact: bool,
    /// Seconds to wait for approval.
    pub approval_timeout: u64,
    /// Offer a redirect finish to a loopback listener when the AS lists
    /// it. Only worth it where the person decides in a browser on this
    /// machine (one this agent opens): a decision made elsewhere — on
    /// another device, or by an admin on the server — never reaches the
    /// listener, and with a finish offered the AS answers polls with
    /// nothing until it does (RFC 9635 §4.2). Off by default.
    pub finish_redirect: bool,
}

impl Default for AgentOptions {
    fn default() -> Self {
        Self {
            display_name: "gnapd agent".into(),
            as_uri: None,
            access: None,
            tools: Vec::new(),
            interact: true,
            approval_timeout: timing::DEFAULT_APPROVAL_TIMEOUT,
            finish_redirect: false,
        }
    }
}

/// A grant the agent holds.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The access token.
    pub issued: Issued,
    /// When it was issued (or last rotated).
    pub issued_at: i64,
    /// The grant's continuation, for deleting it.
    pub continue_: Option<Continue>,
}

struct State {
    as_uri: Option<String>,
    access: Option<AccessSpec>,
    grant: Option<Grant>,
    /// Bumped whenever the token changes, so a refusal of an older token
    /// does not start a second negotiation.
    generation: u64,
    negotiations: u64,
    rotations: u64,
}

/// A token for `resource`, kept usable.
pub struct Agent {
    wire: SigningClient,
    resource: String,
    options: AgentOptions,
    prompter: Arc<dyn Prompter>,
    state: Mutex<State>,
    /// True while a negotiation waits for a person to decide.
    waiting: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

/// A token to present, and its generation.
#[derive(Debug, Clone)]
pub struct Presented {
    /// The token value.
    pub token: String,
    /// Its generation (see [`Agent::refused`]).
    pub generation: u64,
}

/// Counters for tests and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Grants negotiated.
    pub negotiations: u64,
    /// Tokens rotated.
    pub rotations: u64,
}

impl Agent {
    /// An agent for `resource` (the gateway URL).
    pub fn new(
        wire: SigningClient,
        resource: impl Into<String>,
        options: AgentOptions,
        prompter: Arc<dyn Prompter>,
    ) -> Self {
        Self {
            state: Mutex::new(State {
                as_uri: options.as_uri.clone(),
                access: None,
                grant: None,
                generation: 0,
                negotiations: 0,
                rotations: 0,
            }),
            wire,
            resource: resource.into(),
            options,
            prompter,
            waiting: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Whether a negotiation waits for a person to decide, as it changes.
    pub fn waiting_for_person(&self) -> tokio::sync::watch::Receiver<bool> {
        self.waiting.subscribe()
    }

    /// The signing layer.
    pub fn signing_client(&self) -> &SigningClient {
        &self.wire
    }

    /// The resource URL.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// Counters.
    pub async fn stats(&self) -> Stats {
        let state = self.state.lock().await;
        Stats {
            negotiations: state.negotiations,
            rotations: state.rotations,
        }
    }

    /// The grant held now, if any.
    pub async fn grant(&self) -> Option<Grant> {
        self.state.lock().await.grant.clone()
    }

    /// A usable token: negotiated if there is none (or it expired), rotated
    /// first if its rotation is due.
    pub async fn token(&self) -> Result<Presented, ClientError> {
        let mut state = self.state.lock().await;
        let now = self.wire.now();
        let due = match &state.grant {
            None => Due::Negotiate,
            Some(g) if timing::expired(now, g.issued_at, g.issued.expires_in) => Due::Negotiate,
            Some(g) if timing::rotation_due(now, g.issued_at, g.issued.expires_in) => Due::Rotate,
            Some(_) => Due::Nothing,
        };
        match due {
            Due::Negotiate => self.negotiate(&mut state).await?,
            Due::Rotate => {
                if let Err(e) = self.rotate_locked(&mut state).await {
                    tracing::info!(error = %e, "token rotation failed; negotiating a new grant");
                    self.negotiate(&mut state).await?;
                }
            }
            Due::Nothing => {}
        }
        let token = state
            .grant
            .as_ref()
            .map(|g| g.issued.token.expose().to_owned())
            .ok_or_else(|| ClientError::Protocol("no token after negotiation".into()))?;
        Ok(Presented {
            token,
            generation: state.generation,
        })
    }

    /// The resource refused the token of `generation` (401): unless the
    /// token changed since, negotiate a new grant.
    pub async fn refused(&self, generation: u64) -> Result<(), ClientError> {
        let mut state = self.state.lock().await;
        if state.generation != generation {
            return Ok(());
        }
        tracing::info!("the resource refused the token; negotiating a new grant");
        state.grant = None;
        self.negotiate(&mut state).await
    }

    /// Rotates the token now (§6.1).
    pub async fn rotate(&self) -> Result<(), ClientError> {
        let mut state = self.state.lock().await;
        self.rotate_locked(&mut state).await
    }

    /// Signs `request` for the resource with a usable token; returns the
    /// token's generation.
    pub async fn sign_for_resource(&self, request: &mut HttpRequest) -> Result<u64, ClientError> {
        let presented = self.token().await?;
        self.wire.sign(request, Some(&presented.token))?;
        Ok(presented.generation)
    }

    /// Revokes the token (§6.2) and deletes the grant (§5.4), best effort
    /// for the second: the AS may ask the agent to wait first.
    pub async fn revoke(&self) -> Result<(), ClientError> {
        let mut state = self.state.lock().await;
        let Some(grant) = state.grant.take() else {
            return Ok(());
        };
        state.generation += 1;
        if let Some(manage) = &grant.issued.manage {
            let answer = self
                .wire
                .revoke(&manage.uri, manage.access_token.value.expose())
                .await?;
            if !(200..300).contains(&answer.status) {
                return Err(ClientError::Protocol(format!(
                    "revoking the token answered HTTP {}",
                    answer.status
                )));
            }
        }
        if let Some(cont) = &grant.continue_ {
            let token = cont.access_token.value.expose();
            let mut answer = self.wire.delete_grant(&cont.uri, token).await;
            // The AS may ask for its continuation `wait` first (too_fast);
            // a short wait is worth it at exit, a long one is not.
            let retry = match &answer {
                Ok(a) if a.status == 429 => a
                    .header_values("retry-after")
                    .next()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .filter(|w| *w <= 5),
                _ => None,
            };
            if let Some(wait) = retry {
                tokio::time::sleep(Duration::from_secs(wait)).await;
                answer = self.wire.delete_grant(&cont.uri, token).await;
            }
            match answer {
                Ok(a) if (200..300).contains(&a.status) => {}
                Ok(a) => tracing::info!(status = a.status, "the grant was not deleted"),
                Err(e) => tracing::info!(error = %e, "the grant was not deleted"),
            }
        }
        Ok(())
    }

    async fn rotate_locked(&self, state: &mut State) -> Result<(), ClientError> {
        let grant = state
            .grant
            .as_mut()
            .ok_or_else(|| ClientError::Protocol("no token to rotate".into()))?;
        let manage = grant
            .issued
            .manage
            .clone()
            .ok_or_else(|| ClientError::Protocol("the token has no management URI".into()))?;
        let now = self.wire.now();
        let answer = self
            .wire
            .rotate(&manage.uri, manage.access_token.value.expose())
            .await?;
        if answer.status != 200 {
            return Err(ClientError::Protocol(format!(
                "rotating the token answered HTTP {}",
                answer.status
            )));
        }
        let mut issued = rotated(&answer.body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        if issued.manage.is_none() {
            issued.manage = Some(manage);
        }
        grant.issued = issued;
        grant.issued_at = now;
        state.generation += 1;
        state.rotations += 1;
        tracing::info!("access token rotated");
        Ok(())
    }

    /// Learns the AS and access (once), asks for a grant, interacts and
    /// polls until a token is issued or the request fails.
    async fn negotiate(&self, state: &mut State) -> Result<(), ClientError> {
        let (as_uri, access) = self.target(state).await?;
        let advertised = if self.options.interact {
            self.wire.discovery(&as_uri).await
        } else {
            None
        };
        let modes = if !self.options.interact {
            Vec::new()
        } else {
            match &advertised {
                Some(d) => start_modes(Some(&d.interaction_start_modes_supported)),
                // No discovery document: offer everything this agent can do.
                None => start_modes(None),
            }
        };
        // A redirect finish to a loopback listener, when the AS lists the
        // method and the person may be sent to a browser on this machine.
        let finish_listener = if self.options.finish_redirect
            && modes.contains(&"redirect")
            && advertised.as_ref().is_some_and(|d| {
                d.interaction_finish_methods_supported
                    .iter()
                    .any(|m| m.as_str() == "redirect")
            }) {
            match Listener::bind().await {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::info!(error = %e, "no loopback listener; polling instead");
                    None
                }
            }
        } else {
            None
        };
        let body = grant_request(
            self.wire.key(),
            &self.options.display_name,
            &access,
            &modes,
            finish_listener
                .as_ref()
                .map(|l| (l.uri.as_str(), l.nonce.as_str())),
        );
        let started = self.wire.now();
        let answer = self
            .wire
            .grant(&as_uri, &body, Some(&self.resource))
            .await?;
        let outcome = interpret(answer.status, &answer.body);
        let grant = self
            .settle(outcome, started, &as_uri, finish_listener)
            .await?;
        state.grant = Some(grant);
        state.generation += 1;
        state.negotiations += 1;
        Ok(())
    }

    /// The grant endpoint and the access to ask for.
    async fn target(&self, state: &mut State) -> Result<(String, AccessSpec), ClientError> {
        if let (Some(as_uri), Some(access)) = (&state.as_uri, &state.access) {
            return Ok((as_uri.clone(), access.clone()));
        }
        let challenge = match (&state.as_uri, &self.options.access) {
            (Some(_), Some(_)) => None,
            _ => Some(self.wire.challenge(&self.resource).await?),
        };
        let as_uri = match (&state.as_uri, &challenge) {
            (Some(uri), _) => uri.clone(),
            (None, Some(c)) => c.as_uri.clone(),
            (None, None) => return Err(ClientError::Protocol("no grant endpoint".into())),
        };
        let reference = challenge.as_ref().and_then(|c| c.access.clone());
        let access = match (&self.options.access, reference) {
            (Some(explicit), _) => explicit.clone(),
            (None, reference) if !self.options.tools.is_empty() => {
                let upstream = reference
                    .as_deref()
                    .and_then(upstream_of_reference)
                    .or_else(|| upstream_of_url(&self.resource))
                    .ok_or(ClientError::ToolsWithoutUpstream)?;
                AccessSpec::Tools {
                    upstream: upstream.to_owned(),
                    tools: self.options.tools.clone(),
                }
            }
            (None, Some(reference)) => AccessSpec::Reference(reference),
            (None, None) => {
                return Err(ClientError::NoAccess);
            }
        };
        state.as_uri = Some(as_uri.clone());
        state.access = Some(access.clone());
        Ok((as_uri, access))
    }

    /// Follows a grant response to its end: a token, or a clear failure.
    async fn settle(
        &self,
        mut outcome: Outcome,
        started: i64,
        as_uri: &str,
        mut finish: Option<Listener>,
    ) -> Result<Grant, ClientError> {
        let mut schedule: Option<PollSchedule> = None;
        let mut prompted = false;
        // Cleared however this returns (or is dropped).
        let _waiting = Waiting::new(&self.waiting);
        let mut as_nonce: Option<String> = None;
        // Once the redirect brought it, every continuation call carries the
        // `interact_ref` (§5.1), a retry after `too_fast` included.
        let mut after_interaction: Option<Value> = None;
        loop {
            let current = match outcome {
                Outcome::Approved { issued, continue_ } => {
                    if prompted {
                        self.prompter.approved();
                    }
                    return Ok(Grant {
                        issued,
                        issued_at: started,
                        continue_,
                    });
                }
                Outcome::Refused(refusal) => return Err(ClientError::Refused(refusal)),
                Outcome::Pending(pending) => {
                    let now = self.wire.now();
                    match schedule.as_mut() {
                        None => {
                            let mut s = PollSchedule::new(
                                now,
                                pending.continue_.wait,
                                self.options.approval_timeout,
                            );
                            if let Some(expires) =
                                pending.interaction.as_ref().and_then(|i| i.expires_in)
                            {
                                s.interaction_expires_in(now, expires);
                            }
                            schedule = Some(s);
                        }
                        Some(s) => s.continued(now, pending.continue_.wait),
                    }
                    if let Some(interaction) = &pending.interaction
                        && !prompted
                    {
                        if !interaction.actionable() {
                            return Err(ClientError::Refused(Refusal::other(
                                "the authorization server asks for an interaction this agent cannot carry out",
                            )));
                        }
                        as_nonce = interaction.finish.clone();
                        self.prompter.interaction(interaction);
                        prompted = true;
                        self.waiting.send_replace(true);
                    }
                    pending.continue_
                }
            };
            let cont = &current;
            let Some(sched) = schedule.as_mut() else {
                return Err(ClientError::Protocol("nothing to continue".into()));
            };
            let seconds = match sched.step(self.wire.now()) {
                Step::GiveUp => {
                    return Err(ClientError::ApprovalTimeout);
                }
                Step::Wait(seconds) => seconds,
            };
            let sleep = tokio::time::sleep(Duration::from_secs(seconds));
            tokio::pin!(sleep);
            // Poll after `wait`, or continue with the `interact_ref` when the
            // person's browser comes back to the loopback listener (§4.2.1),
            // still no sooner than `wait` (§3.1: the client "MUST wait"
            // before calling the continuation URI, whatever the call).
            match (finish.as_mut(), as_nonce.as_deref()) {
                (Some(listener), Some(as_nonce)) => {
                    tokio::select! {
                        () = &mut sleep => {}
                        query = &mut listener.query => {
                            let nonce = listener.nonce.clone();
                            finish = None;
                            if let Ok(query) = query {
                                let interact_ref = verify_redirect(&query, &nonce, as_nonce, as_uri)
                                    .map_err(|e| ClientError::Refused(Refusal::other(e.to_string())))?;
                                after_interaction = Some(serde_json::json!({"interact_ref": interact_ref}));
                                sleep.as_mut().await;
                            }
                        }
                    }
                }
                _ => sleep.await,
            }
            let answer = self
                .wire
                .continue_grant(
                    &cont.uri,
                    cont.access_token.value.expose(),
                    after_interaction.as_ref(),
                )
                .await?;
            if answer.status == 429 || answer.status == 400 {
                let retry_after = answer
                    .header_values("retry-after")
                    .next()
                    .and_then(|v| v.trim().parse().ok());
                if let Outcome::Refused(Refusal {
                    code: Some(ErrorCode::TooFast),
                    ..
                }) = interpret(answer.status, &answer.body)
                {
                    // The continuation token stays valid: call again later.
                    outcome = Outcome::Pending(Pending {
                        continue_: Continue {
                            wait: Some(retry_after.unwrap_or(timing::DEFAULT_WAIT)),
                            ..cont.clone()
                        },
                        interaction: None,
                    });
                    continue;
                }
            }
            outcome = interpret(answer.status, &answer.body);
            // While a redirect finish is awaited, an AS may refuse polling;
            // only a decision (denied) ends the wait then.
            if finish.is_some()
                && let Outcome::Refused(refusal) = &outcome
                && !matches!(
                    refusal.code,
                    Some(ErrorCode::UserDenied | ErrorCode::RequestDenied)
                )
            {
                tracing::debug!(reason = %refusal, "polling refused; waiting for the redirect");
                outcome = Outcome::Pending(Pending {
                    continue_: refusal.continue_.clone().unwrap_or_else(|| cont.clone()),
                    interaction: None,
                });
            }
        }
    }
}

/// Says "not waiting for a person" when dropped.
struct Waiting<'a>(&'a tokio::sync::watch::Sender<bool>);

impl<'a> Waiting<'a> {
    fn new(sender: &'a tokio::sync::watch::Sender<bool>) -> Self {
        Self(sender)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.send_replace(false);
    }
}

enum Due {
    Negotiate,
    Rotate,
    Nothing,
}
