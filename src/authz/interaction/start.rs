//! Starting an interaction (RFC 9635 §3.3): which modes the client
//! offered that gnapd carries out, the pending grant and its interaction
//! stored, and the `interact` answer.

use super::finish_uri::{check_push_uri, check_redirect_uri};
use super::{MAX_SHOWN_CODES, PENDING_GRACE};
use crate::authz::grant::no_randomness;
use crate::authz::usercode::UserCode;
use crate::authz::{AuthServer, Failure, Reply, metrics::Outcome, mint};
use crate::proto::gnap::interact::{
    FinishMethod, InteractRequest, InteractResponse, StartMode, UserCodeUri,
};
use crate::proto::gnap::{ErrorCode, GrantRequest, GrantResponse};
use crate::store::{
    Continuation, FinishKind, GrantId, GrantRecord, GrantState, InteractionFinish,
    InteractionRecord, InteractionStatus, KeyBinding, RECORD_VERSION, TokenHash,
};

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

impl AuthServer {
    /// §3.3: answers a request that needs a person with `interact` and
    /// `continue`, and stores the pending grant. `grant_request` comes with
    /// its registered resource references resolved (RFC 9767 §3.4): what
    /// the person is shown and what approval mints.
    pub(crate) fn pending_grant(
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
            // Never offered by a GNAP request (`offered` makes only the two
            // GNAP methods); the OAuth face starts its own interactions.
            Some((_, FinishKind::OAuthCode)) | None => {}
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
            Some(UserCode::generate(self.random()).map_err(no_randomness)?)
        } else {
            None
        };
        let page_secret = if offered.redirect {
            Some(crate::random::text_from(self.random()).map_err(no_randomness)?)
        } else {
            None
        };
        let finish = match offered.finish {
            Some((finish, kind)) => Some(InteractionFinish {
                method: kind,
                uri: finish.uri.clone().unwrap_or_default(),
                client_nonce: finish.nonce.clone(),
                as_nonce: crate::random::text_from(self.random()).map_err(no_randomness)?,
                hash_method: finish.hash_method(),
            }),
            None => None,
        };
        let lifetime = self.config.interaction_lifetime;
        let expires_at = now.saturating_add(lifetime);
        let id = GrantId(mint::grant_id(self.random(), self.now()).map_err(no_randomness)?);
        let (continue_value, continue_hash) =
            mint::token(self.random(), &id).map_err(no_randomness)?;
        let grant_expires_at = expires_at.saturating_add(PENDING_GRACE);
        let (new_instance, instance_id) =
            crate::authz::grant::new_instance(&id, instance, &binding, now, grant_expires_at)?;
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
            oauth: None,
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
            instance_id: crate::authz::grant::returned_instance_id(
                &grant_request.client,
                instance_id,
            ),
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
}
