//! The grant endpoint (RFC 9635 §2, §3) and discovery (§9).

use super::assertion::{self, AssertedUser, UserDecision};
use super::mint;
use super::proof::{Prover, require_json};
use super::{AuthServer, Decision, Failure, Reply, metrics::Outcome};
use crate::proto::gnap::subject::User;
use crate::proto::gnap::{
    AccessRight, AccessToken, AccessTokenRequests, AccessTokens, BoundAccessToken, Client,
    Continue, Discovery, ErrorCode, GrantRequest, GrantResponse, Manage, ProofKind,
    parse_grant_request,
};
use crate::proto::httpsig::HttpRequest;
use crate::proto::jwk::Thumbprint;
use crate::proto::mcp::access::UpstreamGrant;
use crate::store::{
    Continuation, GrantId, GrantRecord, GrantState, InstanceRecord, KeyBinding, RECORD_VERSION,
    ReplayBudget, TokenHash, TokenRecord,
};

/// Tokens minted for a response: the records to store and the response
/// members that carry the values.
pub(super) struct Minted {
    pub(crate) records: Vec<(TokenHash, TokenRecord)>,
    pub(crate) tokens: Vec<AccessToken>,
}

impl AuthServer {
    /// §9: the discovery document, answered to OPTIONS on the grant endpoint.
    pub(super) fn discovery(&self) -> Reply {
        let mut document = Discovery::gnapd(self.config.grant_endpoint());
        if self.config.mtls {
            document.key_proofs_supported.push("mtls".to_owned());
        }
        if !self.policy.issuers.is_empty() {
            // ID tokens from the configured issuers decide grants (§2.4).
            document.assertion_formats_supported = vec!["id_token".to_owned()];
        }
        Reply::json(200, &document)
    }

    /// §2: a new grant request, from `source` (the client's address, when
    /// the HTTP edge knows it).
    pub(super) fn grant_request(
        &self,
        request: &HttpRequest,
        source: Option<&str>,
    ) -> Result<Reply, Failure> {
        let result = self.grant_request_inner(request, source);
        if result.is_err() {
            self.metrics.grant(Outcome::Error);
        }
        result
    }

    fn grant_request_inner(
        &self,
        request: &HttpRequest,
        source: Option<&str>,
    ) -> Result<Reply, Failure> {
        let opened = self.open_grant(request)?;
        // Whoever the key is, the grant endpoint never spends the gateway's
        // replay budget.
        let thumbprint = self.prove_with(
            request,
            &opened.key,
            opened.method,
            ReplayBudget::Unapproved,
        )?;
        self.grant_proved(source, opened, &thumbprint)
    }

    /// Reads a grant request as far as the key that must prove it.
    pub(super) fn open_grant(&self, request: &HttpRequest) -> Result<OpenedGrant, Failure> {
        // An `application/jose` body is read unverified only to find the
        // key; the proof is checked before anything else happens.
        if request.body.is_empty() {
            require_json(request)?;
        }
        let content = self.content(request)?;
        let grant_request = self.counted(parse_grant_request(&content))?;
        let (key, method, instance) = self.client_key(&grant_request)?;
        Ok(OpenedGrant {
            grant_request,
            key,
            method,
            instance,
        })
    }

    /// The rest of a grant request, once `thumbprint`'s proof of it held.
    pub(super) fn grant_proved(
        &self,
        source: Option<&str>,
        opened: OpenedGrant,
        thumbprint: &Thumbprint,
    ) -> Result<Reply, Failure> {
        let OpenedGrant {
            grant_request,
            key,
            method,
            instance,
        } = opened;
        self.admit_grant_key(thumbprint.as_str())?;
        if !self.policy.allow_bearer
            && grant_request
                .access_token
                .as_ref()
                .is_some_and(|t| t.as_slice().iter().any(|t| t.wants_bearer()))
        {
            return Err(Failure::gnap(
                ErrorCode::InvalidFlag,
                "bearer tokens are not allowed: every token is bound to the client's key",
            ));
        }
        let class_id = match &grant_request.client {
            Client::Key(c) => c.class_id.as_deref(),
            Client::Instance(_) => None,
        };
        let now = self.now();
        let binding = key.binding(thumbprint, method);
        // Registered resource references (RFC 9767 §3.4) stand for the
        // rights an RS registered: policy decides on those, tokens carry them.
        let resolved = self.resolve_request(&grant_request)?;
        // An ID token about the user, from a trusted issuer, is decided by
        // the assertion rules first (enterprise approval, no person asked).
        let mut credential_sets = std::collections::BTreeMap::new();
        let by_assertion = match self.asserted_user(&grant_request, now)? {
            None => None,
            Some(user) => {
                let requested: Vec<&[AccessRight]> = resolved
                    .access_token
                    .as_ref()
                    .map(|t| t.as_slice())
                    .unwrap_or_default()
                    .iter()
                    .map(|t| t.access.as_slice())
                    .collect();
                match assertion::decide(
                    &self.policy.assertion_rules,
                    &user,
                    &requested,
                    super::policy::patterns_cover,
                ) {
                    UserDecision::Deny => {
                        self.metrics.grant(Outcome::Denied);
                        return Err(Failure::gnap(
                            ErrorCode::RequestDenied,
                            "a rule for this user denies the request",
                        ));
                    }
                    UserDecision::Approve(approved, sets) => {
                        credential_sets = sets;
                        Some(approved)
                    }
                    UserDecision::Undecided => None,
                }
            }
        };
        let decision = match by_assertion {
            Some(approved) => Decision::Approve(approved),
            None => self
                .policy
                .decide(&resolved, binding.thumbprint.as_str(), class_id),
        };
        let approved = match decision {
            Decision::Approve(approved) => approved,
            Decision::Interact => {
                // The person decides on the registered rights, not on
                // references they cannot read, and tokens carry those.
                return self.pending_grant(resolved, binding, instance, source, now);
            }
            Decision::Deny => {
                self.metrics.grant(Outcome::Denied);
                return Err(Failure::gnap(
                    ErrorCode::RequestDenied,
                    "policy does not allow this request",
                ));
            }
        };
        let id = GrantId(mint::grant_id(self.random(), self.now()).map_err(no_randomness)?);
        let (continue_value, continue_hash) =
            mint::token(self.random(), &id).map_err(no_randomness)?;
        let mut minted = self.mint_tokens(
            &id,
            &binding,
            resolved.access_token.as_ref(),
            &approved,
            now,
        )?;
        let credential_sets: Vec<(String, String)> = credential_sets.into_iter().collect();
        map_credential_sets(&mut minted.records, &credential_sets);
        // A client presenting its key by value gets an instance identifier
        // (§3.5), written in the same transaction as the grant.
        let expires_at = now.saturating_add(self.config.grant_lifetime);
        let (new_instance, instance_id) = new_instance(&id, instance, &binding, now, expires_at)?;
        let record = GrantRecord {
            v: RECORD_VERSION,
            id: id.clone(),
            state: GrantState::Approved,
            client: binding,
            instance_id: instance_id.clone(),
            request: grant_request.stored(),
            tokens: minted.records.iter().map(|(h, _)| *h).collect(),
            continuation: Some(Continuation {
                token: continue_hash,
                wait: self.config.poll_wait,
                issued_at: now,
            }),
            created_at: now,
            expires_at,
            oauth: None,
        };
        match &new_instance {
            Some((id, instance)) => {
                self.store
                    .create_grant_with_instance(&record, &minted.records, (id, instance))?;
            }
            None => self.store.create_grant(&record, &minted.records)?,
        }
        self.metrics.grant(Outcome::Approved);
        self.metrics.issued(minted.tokens.len());
        let response = GrantResponse {
            continue_: Some(Continue {
                uri: self.config.continue_uri(&id.0),
                wait: Some(self.config.poll_wait),
                access_token: BoundAccessToken::new(continue_value),
            }),
            access_token: shape(grant_request.access_token.as_ref(), minted.tokens),
            instance_id: returned_instance_id(&grant_request.client, instance_id),
            ..GrantResponse::default()
        };
        Ok(Reply::json(200, &response))
    }

    /// The user an ID token in `user.assertions` vouches for, if the request
    /// carries one. An assertion that cannot be accepted (another format, an
    /// untrusted issuer, a bad signature, expired, another audience) is
    /// `unknown_user`: the AS cannot tell who the user is.
    fn asserted_user(
        &self,
        request: &GrantRequest,
        now: i64,
    ) -> Result<Option<AssertedUser>, Failure> {
        let assertions = match &request.user {
            Some(User::Value(info)) => info.assertions.as_deref().unwrap_or_default(),
            _ => return Ok(None),
        };
        let Some(first) = assertions.first() else {
            return Ok(None);
        };
        if assertions.len() > 1 || first.format != "id_token" {
            return Err(Failure::gnap(
                ErrorCode::UnknownUser,
                "one assertion of format id_token is accepted",
            ));
        }
        self.accept_assertion(&first.value, now).map(Some)
    }

    /// Mints one access token per requested token with approved rights.
    pub(super) fn mint_tokens(
        &self,
        grant: &GrantId,
        key: &KeyBinding,
        requested: Option<&AccessTokenRequests>,
        approved: &[Vec<AccessRight>],
        now: i64,
    ) -> Result<Minted, Failure> {
        let requested = requested.map(|r| r.as_slice()).unwrap_or_default();
        let mut minted = Minted {
            records: Vec::with_capacity(requested.len()),
            tokens: Vec::with_capacity(requested.len()),
        };
        for (asked, access) in requested.iter().zip(approved) {
            if access.is_empty() {
                continue;
            }
            let (record, token) = self.mint_one(
                grant,
                key,
                asked.label.clone(),
                access.clone(),
                asked.wants_bearer(),
                now,
            )?;
            minted.records.push(record);
            minted.tokens.push(token);
        }
        Ok(minted)
    }

    /// Mints one access token and its management token.
    pub(super) fn mint_one(
        &self,
        grant: &GrantId,
        key: &KeyBinding,
        label: Option<String>,
        access: Vec<AccessRight>,
        bearer: bool,
        now: i64,
    ) -> Result<((TokenHash, TokenRecord), AccessToken), Failure> {
        let (value, hash) = mint::token(self.random(), grant).map_err(no_randomness)?;
        let (manage_value, manage_hash) =
            mint::token(self.random(), grant).map_err(no_randomness)?;
        let lifetime = self.config.token_lifetime;
        let record = TokenRecord {
            v: RECORD_VERSION,
            grant: grant.clone(),
            label: label.clone(),
            access: access.clone(),
            key: key.clone(),
            manage: manage_hash,
            bearer,
            issued_at: now,
            expires_at: now.saturating_add(lifetime),
            // For each upstream the rights name, the set policy assigns
            // there (for now: the upstream's enterprise-held set).
            credential_sets: self.credential_sets.for_access(&access),
            oauth: None,
        };
        let mut token = AccessToken::new(value, access);
        token.label = label;
        token.manage = Some(Manage {
            uri: self.config.manage_uri(&grant.0),
            access_token: BoundAccessToken::new(manage_value),
        });
        token.expires_in = u64::try_from(lifetime).ok();
        if bearer {
            token
                .flags
                .push(crate::proto::gnap::response::ResponseFlag::Bearer);
        }
        Ok(((hash, record), token))
    }
}

/// Maps each token to `sets` (`(upstream, set id)`) at the upstreams its
/// rights reach, replacing the set policy assigned there.
pub(super) fn map_credential_sets(
    records: &mut [(crate::store::TokenHash, TokenRecord)],
    sets: &[(String, String)],
) {
    for (_, record) in records {
        for (upstream, set) in sets {
            if UpstreamGrant::for_upstream(&record.access, upstream).is_some() {
                record.credential_sets.retain(|(u, _)| u != upstream);
                record.credential_sets.push((upstream.clone(), set.clone()));
            }
        }
    }
}

/// The `instance_id` to return (§3.5): only to a client that presented its
/// key by value; a client that already uses one keeps it.
pub(super) fn returned_instance_id(client: &Client, instance_id: Option<String>) -> Option<String> {
    if matches!(client, Client::Key(_)) {
        instance_id
    } else {
        None
    }
}

/// A grant request read as far as the key that must prove it.
#[derive(Debug)]
pub(crate) struct OpenedGrant {
    pub(super) grant_request: GrantRequest,
    pub(super) key: Prover,
    pub(super) method: ProofKind,
    /// The instance the request names, or `None` for a key by value.
    pub(super) instance: Option<String>,
}

/// Answers in the shape asked for: a single request gets a single token, a
/// multiple request an array (§3.2.1, §3.2.2).
pub(super) fn shape(
    requested: Option<&AccessTokenRequests>,
    mut tokens: Vec<AccessToken>,
) -> Option<AccessTokens> {
    match requested {
        None => None,
        Some(AccessTokenRequests::Single(_)) => {
            tokens.pop().map(|t| AccessTokens::Single(Box::new(t)))
        }
        Some(AccessTokenRequests::Multiple(_)) if tokens.is_empty() => None,
        Some(AccessTokenRequests::Multiple(_)) => Some(AccessTokens::Multiple(tokens)),
    }
}

/// A client presenting its key by value gets a new instance identifier
/// (§3.5), to be written in the same transaction as its grant: the new
/// record, if any, and the identifier the grant carries. The identifier is
/// the grant's own (a reference, not a secret: requests naming it are still
/// signed with its key), so the store keeps the instance in that grant's
/// record. The record lives `until` the grant expires (the store keeps it
/// longer for later grants made with it).
#[allow(clippy::type_complexity)]
pub(super) fn new_instance(
    grant: &GrantId,
    known: Option<String>,
    key: &KeyBinding,
    now: i64,
    until: i64,
) -> Result<(Option<(String, InstanceRecord)>, Option<String>), Failure> {
    if known.is_some() {
        return Ok((None, known));
    }
    let record = InstanceRecord {
        v: RECORD_VERSION,
        key: key.clone(),
        created_at: now,
        expires_at: Some(until),
    };
    Ok((Some((grant.0.clone(), record)), Some(grant.0.clone())))
}

pub(super) fn no_randomness(_: mint::NoRandomness) -> Failure {
    Failure::Store(crate::store::StoreError::Backend(
        "the random source failed".into(),
    ))
}
