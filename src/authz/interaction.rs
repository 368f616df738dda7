//! Interaction (RFC 9635 §2.5, §3.3, §4, §5.1): a grant that waits for a
//! person, sans I/O.
//!
//! When policy says a person must decide, a grant request that offers a
//! mode gnapd supports gets 200 with `interact` and `continue` and no
//! token; the grant is _pending_. Supported here:
//!
//! - start mode `redirect` (§3.3.1): the interaction page at
//!   `{public}/gnap/interact/{grant}/{secret}`, unique per interaction and
//!   unguessable (256 random bits, stored as a hash), where a person
//!   approves, narrows or denies (`super::consent`, `crate::http::pages`);
//! - start modes `user_code` (§3.3.3) and `user_code_uri` (§3.3.4): one
//!   code per interaction, typed at `{public}/gnap/device` (which leads to
//!   the same page) or given to `gnapd grants approve CODE` (the admin
//!   socket);
//! - `app` is not offered ("The AS MUST NOT respond with any interaction
//!   mode that the AS does not support");
//! - finish methods `redirect` and `push` (§4.2.1, §4.2.2), with the
//!   interaction hash of §4.2.3. With a finish method the AS can reach the
//!   client after an out-of-band decision, so a request offering only a
//!   finish method is served too (the §2.5 example with `"start": []`).
//!
//! A request that needs a person and offers nothing gnapd supports is
//! `invalid_interaction` (§2.5: "the AS MUST return an `invalid_interaction`
//! error").
//!
//! Continuation (§5.1, §5.2): before a decision, polling gets a new
//! continuation and no token. After approval, tokens come with the
//! interaction reference when a finish method was used (§4.2: "All
//! interaction finish methods MUST require presentation of an interaction
//! reference"; a poll without it keeps getting the pending answer), or with
//! the next poll otherwise. The reference is taken once, atomically with the
//! token issue (`Store::finish_interaction`); presented again once the grant
//! is no longer pending it is `too_many_attempts` and the grant is
//! finalized (§5.1). A denial is `user_denied`; an interaction that expired
//! undecided is `invalid_interaction` ("the interaction modes in use have
//! expired", §3.6).

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;
use subtle::ConstantTimeEq as _;

use super::grant::{no_randomness, shape};
use super::usercode::{Attempts, UserCode};
use super::{AuthServer, Failure, Reply, metrics::Outcome, mint};
use crate::proto::gnap::interact::{
    FinishMethod, InteractRequest, InteractResponse, StartMode, UserCodeUri, interaction_hash,
};
use crate::proto::gnap::{
    AccessRight, Client, ContinueRequest, ErrorCode, GrantRequest, GrantResponse,
};
use crate::store::{
    Continuation, FinishKind, GrantId, GrantRecord, GrantState, InteractionFinish,
    InteractionRecord, InteractionStatus, KeyBinding, RECORD_VERSION, StoreError, TokenHash,
};

/// How long a pending grant outlives its interaction: time for a client to
/// collect an approval made just before the interaction expired.
pub const PENDING_GRACE: i64 = 3600;
/// Most clear user codes kept in memory for `gnapd grants pending`.
const MAX_SHOWN_CODES: usize = 10_000;

/// Interaction state that lives in memory only: attempt counters, and the
/// user codes of pending grants so the admin listing can show them (the
/// store keeps only their hashes; after a restart the listing shows none).
#[derive(Debug, Default)]
pub(super) struct Live {
    attempts: Attempts,
    codes: HashMap<GrantId, UserCode>,
    /// The browser that started each interaction with a redirect finish.
    pub(super) started_by: super::started_by::StartedBy,
}

/// What the client asked for that gnapd will carry out.
struct Offered<'a> {
    redirect: bool,
    user_code: bool,
    user_code_uri: bool,
    finish: Option<(&'a crate::proto::gnap::interact::Finish, FinishKind)>,
}

impl Offered<'_> {
    fn any_start(&self) -> bool {
        self.redirect || self.user_code || self.user_code_uri
    }

    fn needs_code(&self) -> bool {
        self.user_code || self.user_code_uri
    }
}

fn offered(interact: &InteractRequest) -> Offered<'_> {
    let finish = interact.finish.as_ref().and_then(|f| match f.method {
        FinishMethod::Redirect => Some((f, FinishKind::Redirect)),
        FinishMethod::Push => Some((f, FinishKind::Push)),
        FinishMethod::Other(_) => None,
    });
    Offered {
        redirect: interact.start.contains(&StartMode::Redirect),
        user_code: interact.start.contains(&StartMode::UserCode),
        user_code_uri: interact.start.contains(&StartMode::UserCodeUri),
        finish,
    }
}

/// True for addresses a push must not reach unless configured: loopback,
/// private (RFC 1918, unique local), link-local, unspecified, multicast,
/// broadcast, documentation and shared (CGNAT) ranges, and every IPv6 form
/// that carries an IPv4 address to a translator or tunnel, whose IPv4 side
/// this check cannot see: mapped and translated (`::ffff:0:0/95`),
/// IPv4-compatible (`::/96`), NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`),
/// 6to4 (`2002::/16`) and Teredo (`2001::/32`).
pub fn is_internal_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_address(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                // IPv4-compatible ::a.b.c.d and SIIT-translated ::ffff:0:a.b.c.d.
                || s[..6] == [0; 6]
                || s[..6] == [0, 0, 0, 0, 0xffff, 0]
                // NAT64: the well-known prefix and the local-use /48.
                || (s[0] == 0x0064 && s[1] == 0xff9b && (s[2..6] == [0; 4] || s[2] == 1))
                // 6to4 and Teredo.
                || s[0] == 0x2002
                || (s[0] == 0x2001 && s[1] == 0)
        }
    }
}

/// Checks a push URI at request time: `http` or `https`, and a literal
/// internal address only when allowed. Host names are checked again, with
/// every resolved address, when the push is made.
fn check_push_uri(uri: &str, allow_internal: bool) -> Result<(), Failure> {
    let refuse = |why: &str| {
        Failure::gnap(
            ErrorCode::InvalidRequest,
            &format!("interact.finish.uri: {why}"),
        )
    };
    let parsed: hyper::Uri = uri.parse().map_err(|_| refuse("not a usable URI"))?;
    if !matches!(parsed.scheme_str(), Some("http" | "https")) {
        return Err(refuse("a push goes to an http or https URI"));
    }
    let host = parsed.host().ok_or_else(|| refuse("no host"))?;
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>()
        && !allow_internal
        && is_internal_address(ip)
    {
        return Err(refuse(
            "this server does not push to private, loopback or link-local addresses",
        ));
    }
    Ok(())
}

/// Checks a `redirect` finish URI at request time: `https`, or `http` to
/// the loopback interface only (`127.0.0.0/8`, `[::1]`, `localhost`), where
/// a native client listens (RFC 8252 §7.3). The browser carries
/// `interact_ref` and `hash` there (§4.2.1), so plain `http` across a
/// network would hand them to anyone on the path (RFC 9700 §2.6 asks for
/// TLS on redirect URIs for the same reason). A bad value is
/// `invalid_request` (§3.6: "includes an invalid parameter value").
fn check_redirect_uri(uri: &str) -> Result<(), Failure> {
    let refuse = |why: &str| {
        Failure::gnap(
            ErrorCode::InvalidRequest,
            &format!("interact.finish.uri: {why}"),
        )
    };
    let parsed: hyper::Uri = uri.parse().map_err(|_| refuse("not a usable URI"))?;
    let host = parsed.host().ok_or_else(|| refuse("no host"))?;
    match parsed.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback_host(host) => Ok(()),
        Some("http") => Err(refuse(
            "a redirect finish over plain http goes to loopback only (127.0.0.1, [::1], localhost); use https",
        )),
        _ => Err(refuse("a redirect finish goes to an https URI")),
    }
}

/// True for `localhost`, `127.0.0.0/8` and `[::1]` as a URI host.
fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback()),
    }
}

/// What the AS does to tell the client that the interaction finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishAction {
    /// No finish method: the client polls.
    None,
    /// §4.2.1: send the RO's browser to this URL (the client's URI with
    /// `hash` and `interact_ref`).
    Redirect {
        /// Where to.
        url: String,
    },
    /// §4.2.2: POST this JSON to the client's URI.
    Push {
        /// The client's URI.
        uri: String,
        /// `{"hash": …, "interact_ref": …}`.
        body: Vec<u8>,
    },
}

/// A decision made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// The grant decided.
    pub grant: GrantId,
    /// True if approved.
    pub approved: bool,
    /// How the client learns of it.
    pub finish: FinishAction,
}

/// Why a decision could not be made. The text is for the person deciding.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// No pending grant has this code or id.
    #[error("no pending grant has this code or id")]
    NotFound,
    /// Too many failed attempts from this source, or entries of this code.
    #[error("too many attempts; wait a few minutes")]
    TooManyAttempts,
    /// The interaction expired before a decision.
    #[error("the interaction expired; the agent must ask again")]
    Expired,
    /// Someone decided first.
    #[error("this grant was already decided")]
    AlreadyDecided,
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The random source failed.
    #[error("the random source failed")]
    NoRandomness,
}

/// A pending grant, for a person (or an admin) to decide on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingGrant {
    /// The grant id.
    pub grant: String,
    /// Its user code as people read it (`XXXX-XXXX`), if this server
    /// issued it since it started.
    pub user_code: Option<String>,
    /// The client's self-declared name: unverified (§2.3.2).
    pub display_name: Option<String>,
    /// RFC 7638 thumbprint of the client's key: the client's real identity.
    pub thumbprint: String,
    /// The access requested, in plain words, one line per right.
    pub access: Vec<String>,
    /// Seconds since the request.
    pub age: i64,
    /// Seconds until the interaction expires.
    pub expires_in: i64,
    /// `redirect`, `push` or none.
    pub finish: Option<FinishKind>,
}

/// Describes access rights in plain words, one line per right.
pub fn describe_access(rights: &[AccessRight]) -> Vec<String> {
    rights
        .iter()
        .map(|right| match right {
            AccessRight::Reference(r) => match r.strip_prefix("mcp:") {
                Some(upstream) => format!("full access to MCP upstream `{upstream}`"),
                None => format!("access named `{r}`"),
            },
            AccessRight::Object(o) if o.is_mcp() => {
                let upstream = o.identifier.as_deref().unwrap_or("(any)");
                let methods = match &o.actions {
                    Some(a) => format!("methods {}", a.join(", ")),
                    None => "all methods".to_owned(),
                };
                let tools = match &o.tools {
                    Some(t) => format!("; tools {}", t.join(", ")),
                    None => "; all tools".to_owned(),
                };
                format!("MCP upstream `{upstream}`: {methods}{tools}")
            }
            AccessRight::Object(o) => {
                let mut text = format!("`{}`", o.kind);
                if let Some(a) = &o.actions {
                    text.push_str(&format!(": {}", a.join(", ")));
                }
                if let Some(l) = &o.locations {
                    text.push_str(&format!(" at {}", l.join(", ")));
                }
                if let Some(id) = &o.identifier {
                    text.push_str(&format!(" ({id})"));
                }
                text
            }
        })
        .collect()
}

/// How a pending interaction may be named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lookup {
    /// By user code or grant id: the admin, who sees grant ids listed.
    CodeOrGrantId,
    /// By user code only: a person at the user code page (a grant id is
    /// not a secret, and must not open a grant's page).
    CodeOnly,
}

/// The rights requested, per requested token (what approval grants unless
/// a person narrows it).
pub(super) fn requested_per_token(request: &GrantRequest) -> Vec<Vec<AccessRight>> {
    request
        .access_token
        .as_ref()
        .map(|t| t.as_slice().iter().map(|t| t.access.clone()).collect())
        .unwrap_or_default()
}

fn requested_access(request: &GrantRequest) -> Vec<AccessRight> {
    request
        .access_token
        .as_ref()
        .map(|t| {
            t.as_slice()
                .iter()
                .flat_map(|t| t.access.iter().cloned())
                .collect()
        })
        .unwrap_or_default()
}

impl AuthServer {
    /// §3.3: answers a request that needs a person with `interact` and
    /// `continue`, and stores the pending grant. `grant_request` comes with
    /// its registered resource references resolved (RFC 9767 §3.4): what
    /// the person is shown and what approval mints.
    pub(super) fn pending_grant(
        &self,
        grant_request: GrantRequest,
        binding: KeyBinding,
        instance: Option<String>,
        source: Option<&str>,
        now: i64,
    ) -> Result<Reply, Failure> {
        let Some(interact) = grant_request.interact.as_ref() else {
            return Err(Failure::gnap(
                ErrorCode::InvalidInteraction,
                "this request needs a person's approval: offer interaction (start mode `redirect`, `user_code` or `user_code_uri`, or a `redirect` or `push` finish method)",
            ));
        };
        let offered = offered(interact);
        if !offered.any_start() && offered.finish.is_none() {
            return Err(Failure::gnap(
                ErrorCode::InvalidInteraction,
                "this request needs a person's approval and offers no interaction mode this server supports (start modes `redirect`, `user_code`, `user_code_uri`; finish methods `redirect`, `push`)",
            ));
        }
        match offered.finish {
            Some((finish, FinishKind::Push)) => check_push_uri(
                finish.uri.as_deref().unwrap_or_default(),
                self.config.allow_private_push,
            )?,
            Some((finish, FinishKind::Redirect)) => {
                check_redirect_uri(finish.uri.as_deref().unwrap_or_default())?;
            }
            None => {}
        }
        // What a pending grant keeps is bounded in bytes: with the cap on
        // pending grants, so is what unapproved requests store.
        let stored = grant_request.stored();
        let kept = serde_json::to_vec(&stored).map_or(usize::MAX, |b| b.len());
        let max = self.config.limits.pending.request_bytes;
        if kept > max {
            self.metrics.limited("pending_request_bytes");
            return Err(Failure::gnap(
                ErrorCode::InvalidRequest,
                &format!(
                    "this request needs a person's approval and is too large to wait for one: {kept} bytes as kept, at most {max}; ask for less"
                ),
            ));
        }
        let code = if offered.needs_code() {
            Some(UserCode::generate().map_err(no_randomness)?)
        } else {
            None
        };
        let page_secret = if offered.redirect {
            Some(crate::random::text().map_err(no_randomness)?)
        } else {
            None
        };
        let finish = match offered.finish {
            Some((finish, kind)) => Some(InteractionFinish {
                method: kind,
                uri: finish.uri.clone().unwrap_or_default(),
                client_nonce: finish.nonce.clone(),
                as_nonce: crate::random::text().map_err(no_randomness)?,
                hash_method: finish.hash_method(),
            }),
            None => None,
        };
        let lifetime = self.config.interaction_lifetime;
        let expires_at = now.saturating_add(lifetime);
        let id = GrantId(mint::grant_id());
        let (continue_value, continue_hash) = mint::token().map_err(no_randomness)?;
        let grant_expires_at = expires_at.saturating_add(PENDING_GRACE);
        let (new_instance, instance_id) =
            super::grant::new_instance(instance, &binding, now, grant_expires_at)?;
        let record = GrantRecord {
            v: RECORD_VERSION,
            id: id.clone(),
            state: GrantState::Pending,
            client: binding,
            instance_id: instance_id.clone(),
            request: stored,
            tokens: Vec::new(),
            continuation: Some(Continuation {
                token: continue_hash,
                wait: self.config.poll_wait,
                issued_at: now,
            }),
            created_at: now,
            expires_at: grant_expires_at,
        };
        let interaction = InteractionRecord {
            v: RECORD_VERSION,
            grant: id.clone(),
            user_code: code.as_ref().map(UserCode::hash),
            finish: finish.clone(),
            page: page_secret.as_deref().map(TokenHash::of),
            created_at: now,
            expires_at,
            status: InteractionStatus::Pending,
        };
        // The slot is held before anything is written, and given back if
        // the write fails: what the caps count is what the store keeps.
        self.hold_pending(&id, &record.client.thumbprint, source, record.expires_at)?;
        if let Err(e) = self.store.create_interaction_grant(
            &record,
            &interaction,
            new_instance.as_ref().map(|(id, r)| (id.as_str(), r)),
        ) {
            self.release_pending(&id);
            return Err(e.into());
        }
        if let Some(code) = &code {
            self.remember_code(&id, code);
        }
        self.metrics.grant(Outcome::Pending);
        let response = GrantResponse {
            continue_: Some(self.continue_for(&id, continue_value)),
            interact: Some(InteractResponse {
                redirect: page_secret
                    .as_deref()
                    .map(|secret| self.config.interaction_uri(&id.0, secret)),
                user_code: code
                    .as_ref()
                    .filter(|_| offered.user_code)
                    .map(|c| c.as_str().to_owned()),
                user_code_uri: code.as_ref().filter(|_| offered.user_code_uri).map(|c| {
                    UserCodeUri {
                        code: c.as_str().to_owned(),
                        uri: self.config.device_uri(),
                    }
                }),
                finish: finish.map(|f| f.as_nonce),
                expires_in: u64::try_from(lifetime).ok(),
                ..InteractResponse::default()
            }),
            instance_id: super::grant::returned_instance_id(&grant_request.client, instance_id),
            ..GrantResponse::default()
        };
        Ok(Reply::json(200, &response))
    }

    fn continue_for(
        &self,
        id: &GrantId,
        value: crate::proto::gnap::TokenValue,
    ) -> crate::proto::gnap::Continue {
        crate::proto::gnap::Continue {
            uri: self.config.continue_uri(&id.0),
            wait: Some(self.config.poll_wait),
            access_token: crate::proto::gnap::BoundAccessToken::new(value),
        }
    }

    fn remember_code(&self, grant: &GrantId, code: &UserCode) {
        if let Ok(mut live) = self.live.lock() {
            if live.codes.len() >= MAX_SHOWN_CODES {
                live.codes.clear();
            }
            live.codes.insert(grant.clone(), code.clone());
        }
    }

    /// §5.1, §5.2: a continuation of a pending grant.
    pub(super) fn continue_pending(
        &self,
        token: TokenHash,
        grant: GrantRecord,
        parsed: ContinueRequest,
    ) -> Result<Reply, Failure> {
        let interaction = self.store.interaction(&grant.id)?.ok_or_else(|| {
            Failure::gnap(
                ErrorCode::InvalidContinuation,
                "this grant has no interaction",
            )
        })?;
        let now = self.now();
        let presented = match &parsed {
            ContinueRequest::Poll => None,
            ContinueRequest::AfterInteraction { interact_ref } => Some(interact_ref.as_str()),
        };
        match (&interaction.status, presented) {
            (InteractionStatus::Pending, _) if now > interaction.expires_at => Err(Failure::gnap(
                ErrorCode::InvalidInteraction,
                "the interaction expired before a decision; make a new grant request",
            )),
            (InteractionStatus::Pending, None) => self.still_pending(token, grant),
            (InteractionStatus::Pending, Some(_)) => Err(Failure::gnap(
                ErrorCode::InvalidInteraction,
                "no interaction has finished for this grant",
            )),
            (
                InteractionStatus::Approved {
                    interact_ref: Some(_),
                    ..
                },
                None,
            ) => {
                // The approval reaches the client with the interaction
                // reference (§4.2): until it presents it, still pending.
                self.still_pending(token, grant)
            }
            (
                InteractionStatus::Approved {
                    interact_ref: Some(expected),
                    access,
                    credential_sets,
                    ..
                },
                Some(presented),
            ) => {
                let matches: bool = TokenHash::of(presented).0.ct_eq(&expected.0).into();
                if !matches {
                    return Err(Failure::gnap(
                        ErrorCode::InvalidInteraction,
                        "the interaction reference is not this grant's",
                    ));
                }
                self.issue_after_interaction(token, grant, access, credential_sets, now)
            }
            (
                InteractionStatus::Approved {
                    interact_ref: None,
                    access,
                    credential_sets,
                    ..
                },
                None,
            ) => self.issue_after_interaction(token, grant, access, credential_sets, now),
            (
                InteractionStatus::Approved {
                    interact_ref: None, ..
                },
                Some(_),
            ) => Err(Failure::gnap(
                ErrorCode::InvalidInteraction,
                "this grant's interaction has no finish method and no interaction reference",
            )),
            (InteractionStatus::Denied { .. }, _) => Err(Failure::gnap(
                ErrorCode::UserDenied,
                "the resource owner denied the request",
            )),
            (InteractionStatus::Finished { .. }, _) => Err(Failure::gnap(
                ErrorCode::InvalidContinuation,
                "this grant's interaction is finished",
            )),
        }
    }

    /// The answer without a token (§5.2): a new continuation. Also what a
    /// poll of an approved grant gets once its tokens were issued.
    pub(super) fn still_pending(
        &self,
        token: TokenHash,
        mut grant: GrantRecord,
    ) -> Result<Reply, Failure> {
        let next = self.next_continuation(&mut grant)?;
        if !self.store.continuation_swap(&token, &grant, &[])? {
            return Err(Failure::continuation_used());
        }
        let response = GrantResponse {
            continue_: Some(next),
            ..GrantResponse::default()
        };
        Ok(Reply::json(200, &response))
    }

    /// Issues the approved tokens, taking the interaction once. Each token
    /// maps to the sets the person connected at the upstreams it reaches.
    fn issue_after_interaction(
        &self,
        token: TokenHash,
        mut grant: GrantRecord,
        access: &[Vec<AccessRight>],
        connected: &[(String, String)],
        now: i64,
    ) -> Result<Reply, Failure> {
        let mut minted = self.mint_tokens(
            &grant.id,
            &grant.client,
            grant.request.access_token.as_ref(),
            access,
            now,
        )?;
        super::grant::map_credential_sets(&mut minted.records, connected);
        grant.tokens.extend(minted.records.iter().map(|(h, _)| *h));
        grant.state = GrantState::Approved;
        grant.expires_at = now.saturating_add(self.config.grant_lifetime);
        let next = self.next_continuation(&mut grant)?;
        if !self
            .store
            .finish_interaction(&token, &grant, &minted.records, now)?
        {
            return Err(Failure::continuation_used());
        }
        // The request's outcome was counted as pending; the tokens count here.
        self.metrics.issued(minted.tokens.len());
        let response = GrantResponse {
            continue_: Some(next),
            access_token: shape(grant.request.access_token.as_ref(), minted.tokens),
            ..GrantResponse::default()
        };
        Ok(Reply::json(200, &response))
    }

    /// §5.1: an interaction reference on a grant that is not pending is
    /// `too_many_attempts`, and the grant is finalized: its continuation
    /// and the tokens issued under it are revoked (a reference presented
    /// twice means it leaked, or the client lost track of its grant).
    pub(super) fn replayed_interaction(
        &self,
        token: &TokenHash,
        grant: &GrantId,
    ) -> Result<Reply, Failure> {
        if self.store.delete_grant(token)? {
            self.release_pending(grant);
        }
        Err(Failure::gnap(
            ErrorCode::TooManyAttempts,
            "an interaction reference is used once; this grant is now finalized",
        ))
    }

    /// The grants waiting for a person, oldest first.
    pub fn pending_grants(&self) -> Result<Vec<PendingGrant>, StoreError> {
        let now = self.now();
        let codes = self
            .live
            .lock()
            .map(|live| live.codes.clone())
            .unwrap_or_default();
        let mut pending = Vec::new();
        for interaction in self.store.pending_interactions()? {
            if interaction.expires_at < now {
                continue;
            }
            // One record this build cannot read (say, one stored before a
            // stricter reader) must not hide every other pending grant.
            let grant = match self.store.grant(&interaction.grant) {
                Ok(Some(grant)) => grant,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(grant = %interaction.grant.0, error = %e, "a pending grant could not be read; not listed");
                    continue;
                }
            };
            let display_name = match &grant.request.client {
                Client::Key(c) => c.display.as_ref().and_then(|d| d.name.clone()),
                Client::Instance(_) => None,
            };
            pending.push(PendingGrant {
                grant: grant.id.0.clone(),
                user_code: codes.get(&grant.id).map(UserCode::display),
                display_name,
                thumbprint: grant.client.thumbprint.clone(),
                access: describe_access(&requested_access(&grant.request)),
                age: now.saturating_sub(grant.created_at),
                expires_in: interaction.expires_at.saturating_sub(now),
                finish: interaction.finish.as_ref().map(|f| f.method),
            });
        }
        Ok(pending)
    }

    /// A person's decision on the pending grant named by `selector` (its
    /// user code, in any case and with or without separators, or its grant
    /// id), from `source` (an address, or `admin`). Approval grants the
    /// access requested. The caller carries out the returned finish action.
    pub fn decide_grant(
        &self,
        selector: &str,
        approve: bool,
        source: &str,
    ) -> Result<Decided, DecideError> {
        let now = self.now();
        let interaction = self.find_pending(selector, source, now, Lookup::CodeOrGrantId)?;
        if now > interaction.expires_at {
            return Err(DecideError::Expired);
        }
        let grant = self
            .store
            .grant(&interaction.grant)?
            .ok_or(DecideError::NotFound)?;
        let access = approve.then(|| requested_per_token(&grant.request));
        let decided =
            self.record_decision(&interaction, &grant, access, Vec::new(), None, source, now)?;
        if let FinishAction::Redirect { url } = &decided.finish {
            // Made on the server, not in a browser: the browser that
            // started the interaction collects it by opening its link.
            self.deliver_finish(&decided.grant, None, url.clone());
        }
        Ok(decided)
    }

    /// Records a decision on a pending interaction: approval of `access`
    /// (per requested token), with the credential sets the person
    /// `connected` (`(upstream, set id)`), or denial when `access` is
    /// `None`. Returns the finish action for the caller to carry out.
    #[allow(clippy::too_many_arguments)] // each is one fact of the decision
    pub(super) fn record_decision(
        &self,
        interaction: &InteractionRecord,
        grant: &GrantRecord,
        access: Option<Vec<Vec<AccessRight>>>,
        connected: Vec<(String, String)>,
        by: Option<&str>,
        source: &str,
        now: i64,
    ) -> Result<Decided, DecideError> {
        let approve = access.is_some();
        let interact_ref = match &interaction.finish {
            Some(_) => Some(crate::random::text().map_err(|_| DecideError::NoRandomness)?),
            None => None,
        };
        let ref_hash = interact_ref.as_deref().map(TokenHash::of);
        let status = match access {
            Some(access) => InteractionStatus::Approved {
                access,
                interact_ref: ref_hash,
                decided_at: now,
                credential_sets: connected,
                by: by.map(str::to_owned),
            },
            None => InteractionStatus::Denied {
                interact_ref: ref_hash,
                decided_at: now,
                by: by.map(str::to_owned),
            },
        };
        if !self.store.decide_interaction(&grant.id, &status)? {
            return Err(DecideError::AlreadyDecided);
        }
        if let Ok(mut live) = self.live.lock() {
            live.codes.remove(&grant.id);
        }
        if approve {
            // Approved by a person: no longer state an unapproved request
            // holds. A denied grant keeps its slot until it is swept.
            self.release_pending(&grant.id);
        }
        tracing::info!(grant = %grant.id.0, approve, by = by.unwrap_or("-"), source, "interaction decided");
        let finish = match (&interaction.finish, interact_ref) {
            (Some(finish), Some(interact_ref)) => self.finish_action(finish, &interact_ref),
            _ => FinishAction::None,
        };
        Ok(Decided {
            grant: grant.id.clone(),
            approved: approve,
            finish,
        })
    }

    /// §4.2: the finish method's message, with the §4.2.3 hash.
    fn finish_action(&self, finish: &InteractionFinish, interact_ref: &str) -> FinishAction {
        let hash = interaction_hash(
            finish.hash_method,
            &finish.client_nonce,
            &finish.as_nonce,
            interact_ref,
            &self.config.grant_endpoint(),
        );
        match finish.method {
            FinishKind::Redirect => {
                // Both values are base64url: nothing to escape.
                let separator = if finish.uri.contains('?') { '&' } else { '?' };
                FinishAction::Redirect {
                    url: format!(
                        "{}{separator}hash={hash}&interact_ref={interact_ref}",
                        finish.uri
                    ),
                }
            }
            FinishKind::Push => FinishAction::Push {
                uri: finish.uri.clone(),
                body: serde_json::to_vec(
                    &serde_json::json!({"hash": hash, "interact_ref": interact_ref}),
                )
                .unwrap_or_default(),
            },
        }
    }

    /// The pending interaction named by a user code or a grant id, counting
    /// attempts.
    pub(super) fn find_pending(
        &self,
        selector: &str,
        source: &str,
        now: i64,
        lookup: Lookup,
    ) -> Result<InteractionRecord, DecideError> {
        let mut live = self
            .live
            .lock()
            .map_err(|_| DecideError::Store(StoreError::Backend("lock poisoned".into())))?;
        let budget = self.config.user_code_failure_budget;
        if !live.attempts.source_allowed(source, budget, now) {
            return Err(DecideError::TooManyAttempts);
        }
        let found = match UserCode::parse(selector) {
            Some(code) => self.store.interaction_by_user_code(&code.hash())?,
            None if lookup == Lookup::CodeOrGrantId && super::is_grant_id(selector) => self
                .store
                .interaction(&GrantId(selector.to_owned()))?
                .filter(|i| i.status == InteractionStatus::Pending),
            None => None,
        };
        let Some(interaction) = found else {
            if live.attempts.source_failed(source, budget, now) {
                tracing::warn!(
                    budget,
                    "failed user code entries reached the budget for all sources: code entry is paused for up to 10 minutes (the admin socket still decides)"
                );
            }
            // A decided grant is not "not found" for its own id.
            if lookup == Lookup::CodeOrGrantId
                && super::is_grant_id(selector)
                && self
                    .store
                    .interaction(&GrantId(selector.to_owned()))?
                    .is_some()
            {
                return Err(DecideError::AlreadyDecided);
            }
            return Err(DecideError::NotFound);
        };
        if !live.attempts.grant_entered(&interaction.grant, now) {
            return Err(DecideError::TooManyAttempts);
        }
        Ok(interaction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognized() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:0:7f00:1",
            "::7f00:1",
            "::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::5db8:d822",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "fec0::1",
            "192.0.0.8",
        ] {
            assert!(is_internal_address(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "8.8.8.8",
            "2001:4860:4860::8888",
            "64:ff9c::1",
        ] {
            assert!(!is_internal_address(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn push_uris_are_checked_at_request_time() {
        assert!(check_push_uri("https://client.example/push", false).is_ok());
        assert!(check_push_uri("http://127.0.0.1:9/push", true).is_ok());
        for bad in [
            "http://127.0.0.1:9/push",
            "https://[::1]/p",
            "http://169.254.169.254/latest",
            "ftp://client.example/p",
            "app://x/y",
        ] {
            assert!(check_push_uri(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirect_finish_uris_are_https_or_loopback_http() {
        for good in [
            "https://client.example/cb",
            "https://10.0.0.1/cb",
            "http://127.0.0.1:9/cb",
            "http://127.9.8.7/cb?x=1",
            "http://[::1]:8080/cb",
            "http://localhost:1/cb",
            "http://LocalHost/cb",
        ] {
            assert!(check_redirect_uri(good).is_ok(), "{good}");
        }
        for bad in [
            "http://client.example/cb",
            "http://10.0.0.1/cb",
            "http://localhost.evil.example/cb",
            "http://127.0.0.1.evil.example/cb",
            "http://[::ffff:127.0.0.1]/cb",
            "http://128.0.0.1/cb",
            "javascript:alert(1)",
            "ftp://client.example/cb",
            "/relative",
            "",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn access_is_described_in_plain_words() {
        let rights: Vec<AccessRight> = serde_json::from_value(serde_json::json!([
            "mcp:github",
            {"type": "mcp", "identifier": "slack", "actions": ["tools/call"], "tools": ["post"]},
            {"type": "photo-api", "actions": ["read"], "locations": ["https://p.example"]},
            "other"
        ]))
        .unwrap();
        assert_eq!(
            describe_access(&rights),
            [
                "full access to MCP upstream `github`",
                "MCP upstream `slack`: methods tools/call; tools post",
                "`photo-api`: read at https://p.example",
                "access named `other`",
            ]
        );
    }
}
