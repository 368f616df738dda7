//! Resource servers at the AS (RFC 9767 §3): who they are, the resource sets
//! they register (§3.4), and the references to those sets a client may ask
//! for in a grant request.
//!
//! An RS identifies itself with its key by value in `resource_server` and
//! signs the request with it under the same GNAP profile clients use (§3.2).
//! Which RSs are accepted is policy ([`super::policy::RsRule`]): outside dev
//! mode only a key whose thumbprint a rule names, and only for the access
//! that rule lists.
//!
//! A registered set gets a `resource_reference`: 256 random bits, base64url
//! (§6 of the RFC asks for "fully random or encrypted values"). Wherever a
//! grant request carries that string as an access right, the AS reads the
//! registered rights in its place before policy decides, so policy judges,
//! and the token carries, what is actually granted. A grant that waits for
//! a person keeps its request resolved (`super::interaction`): the person
//! sees and narrows the registered rights, and approval mints those.

use super::grant::no_randomness;
use super::proof::require_json;
use super::{AuthServer, Failure, Reply, RsRule};
use crate::proto::gnap::discovery::KEY_PROOFS;
use crate::proto::gnap::limits::MAX_ACCESS_ITEMS;
use crate::proto::gnap::rs::{
    RegistrationResponse, ResourceServer, RsDiscovery, RsError, RsErrorCode,
    parse_registration_request,
};
use crate::proto::gnap::{AccessRight, AccessTokenRequests, ErrorCode, GrantRequest};
use crate::proto::httpsig::{HttpRequest, Rejection};
use crate::proto::jwk::VerifyingKey;
use crate::store::{RECORD_VERSION, ReplayBudget, ResourceSetRecord, StoreError};

impl AuthServer {
    /// RFC 9767 §3.1: the RS-facing discovery document.
    pub(crate) fn rs_discovery(&self) -> RsDiscovery {
        RsDiscovery {
            grant_request_endpoint: self.config.grant_endpoint(),
            introspection_endpoint: Some(self.config.introspection_endpoint()),
            token_formats_supported: Vec::new(),
            resource_registration_endpoint: Some(self.config.resource_registration_endpoint()),
            key_proofs_supported: KEY_PROOFS.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    /// §3.2: the RS named in `resource_server` signed `request` with its key,
    /// and policy knows it. Returns the rule that says what it may see.
    pub(super) fn authenticate_rs(
        &self,
        rs: &ResourceServer,
        request: &HttpRequest,
    ) -> Result<RsRule, Failure> {
        let presented = match rs {
            ResourceServer::Key(key) => key,
            ResourceServer::Reference(_) => {
                return Err(Failure::rs(
                    RsErrorCode::InvalidResourceServer,
                    "this AS issues no resource server identifiers; present resource_server.key by value",
                ));
            }
        };
        let key = VerifyingKey::from_presented_jwk(&presented.jwk_value()).map_err(|e| {
            Failure::rs(
                RsErrorCode::InvalidResourceServer,
                &format!("the presented key is not usable: {e}"),
            )
        })?;
        if presented
            .proof
            .algorithm()
            .is_some_and(|alg| alg != key.algorithm())
        {
            return Err(Failure::rs(
                RsErrorCode::InvalidResourceServer,
                "the proof algorithm does not match the key",
            ));
        }
        let rule = self
            .policy
            .resource_server(key.thumbprint().as_str())
            .ok_or_else(|| {
                Failure::rs(
                    RsErrorCode::InvalidResourceServer,
                    "this resource server's key is not known to the AS",
                )
            })?;
        // In dev mode any key is a resource server: nobody approved it.
        let budget = if self.policy.dev {
            ReplayBudget::Unapproved
        } else {
            ReplayBudget::Bound
        };
        if !presented.proof.kind().is_httpsig() {
            // A JWS proof's refusal is `invalid_client`, which the RS
            // registry answers as `invalid_resource_server`.
            self.prove(request, &key, presented.proof.kind(), budget)?;
            return Ok(rule);
        }
        self.config
            .profile
            .verify(request, &key, self.now(), self.store.replay(budget))
            .map_err(|r| match r {
                Rejection::ReplayCache(_) => self.replay_refusal(r, budget),
                other => Failure::rs_signature(other),
            })?;
        Ok(rule)
    }

    /// §3.4: POST to the resource registration endpoint.
    pub(super) fn register_resource_set(&self, request: &HttpRequest) -> Result<Reply, Failure> {
        if request.body.is_empty() {
            require_json(request)?;
        }
        let content = self.content(request)?;
        let parsed =
            parse_registration_request(&content).map_err(|e| Failure::Rs(RsError::from(&e)))?;
        let rule = self.authenticate_rs(&parsed.resource_server, request)?;
        if parsed.token_formats_supported.is_some() {
            // "If the AS does not support any of the requested token formats,
            // the AS MUST return an error": gnapd's tokens are opaque
            // references, none of the registered formats.
            return Err(Failure::rs(
                RsErrorCode::InvalidRequest,
                "this AS issues opaque reference tokens only, in none of the listed token formats",
            ));
        }
        if let Some(i) = parsed.access.iter().position(|r| !rule.covers(r)) {
            return Err(Failure::rs(
                RsErrorCode::InvalidAccess,
                &format!("this resource server may not register `access[{i}]`"),
            ));
        }
        let reference = crate::random::text_from(self.random()).map_err(no_randomness)?;
        let record = ResourceSetRecord {
            v: RECORD_VERSION,
            access: parsed.access,
            resource_server: rule.thumbprint,
            token_introspection_required: parsed.token_introspection_required,
            created_at: self.now(),
        };
        if !self.store.register_resource_set(&reference, &record)? {
            // 256 random bits do not collide; if they did, say so rather
            // than hand out a reference that means another set.
            return Err(Failure::Store(StoreError::Backend(
                "a fresh resource reference was already taken".into(),
            )));
        }
        Ok(Reply::json(
            200,
            &RegistrationResponse {
                resource_reference: reference,
                introspection_endpoint: Some(self.config.introspection_endpoint()),
            },
        ))
    }

    /// `rights` with every registered resource reference replaced by the
    /// rights registered under it (one level: a set's own rights are taken
    /// as they were registered). Other rights stay as they are, in order.
    pub(super) fn resolve_rights(
        &self,
        rights: &[AccessRight],
    ) -> Result<Vec<AccessRight>, Failure> {
        let mut out = Vec::with_capacity(rights.len());
        for right in rights {
            let registered = match right {
                // `mcp:NAME` names an upstream of the gateway, never a set.
                AccessRight::Reference(r) if !r.starts_with("mcp:") => {
                    self.store.resource_set(r)?
                }
                _ => None,
            };
            match registered {
                Some(set) => out.extend(set.access),
                None => out.push(right.clone()),
            }
        }
        if out.len() > MAX_ACCESS_ITEMS {
            return Err(Failure::gnap(
                ErrorCode::InvalidRequest,
                &format!(
                    "`access` holds more than {MAX_ACCESS_ITEMS} rights once resource references are resolved"
                ),
            ));
        }
        Ok(out)
    }

    /// The grant request with the registered references of every requested
    /// token resolved ([`Self::resolve_rights`]): what policy decides on and
    /// tokens are minted for.
    pub(super) fn resolve_request(&self, request: &GrantRequest) -> Result<GrantRequest, Failure> {
        let mut resolved = request.clone();
        match resolved.access_token.as_mut() {
            None => {}
            Some(AccessTokenRequests::Single(one)) => {
                one.access = self.resolve_rights(&one.access)?;
            }
            Some(AccessTokenRequests::Multiple(many)) => {
                for one in many {
                    one.access = self.resolve_rights(&one.access)?;
                }
            }
        }
        Ok(resolved)
    }
}
