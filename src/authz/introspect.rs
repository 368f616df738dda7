//! Token introspection (RFC 9767 §3.3).
//!
//! An RS that received an access token asks the AS what it is worth. The RS
//! signs with its own key ([`AuthServer::authenticate_rs`]); the token's
//! value travels in the body and never comes back.
//!
//! "Active" is all of (§3.3): issued by this AS, not revoked, not expired,
//! bound with the `proof` method named, appropriate for this RS, and
//! appropriate for the `access` named. gnapd reads them as:
//!
//! - issued and not revoked: the token's hash is in the store's token index.
//!   Revocation, rotation (the old value), grant deletion and credential set
//!   removal take tokens out of it. Continuation and management tokens are
//!   indexed elsewhere and are never found here, so they are never active
//!   (§2.1.1's "AS-specific access tokens");
//! - not expired: `now <= exp`, and the grant it was issued under not
//!   expired either;
//! - `proof`: gnapd binds every non-bearer token with `httpsig`; any other
//!   registered method, or any method for a bearer token, is inactive;
//! - for this RS: at least one of the token's rights is one the RS's rule
//!   covers; the answer lists only those (§3.3: the array "MAY be filtered");
//! - for `access`: every right asked about is covered by one of the token's
//!   rights ([`covers`]). A right the RS may not ask about at all is an
//!   `invalid_access` error, decided before the token is looked at, so the
//!   error never says anything about the token.

use super::proof::require_json;
use super::{AuthServer, Failure, Reply, RsRule};
use crate::proto::gnap::access::AccessObject;
use crate::proto::gnap::response::ResponseFlag;
use crate::proto::gnap::rs::{
    IntrospectionRequest, IntrospectionResponse, ProofMethod, RsError, RsErrorCode,
    parse_introspection_request,
};
use crate::proto::gnap::{AccessRight, CertKey, HttpSigProof, Key, PresentedKey, Proof, ProofKind};
use crate::proto::httpsig::HttpRequest;
use crate::store::TokenHash;

impl AuthServer {
    /// §3.3: POST to the introspection endpoint.
    pub(super) fn introspect(&self, request: &HttpRequest) -> Result<Reply, Failure> {
        if request.body.is_empty() {
            require_json(request)?;
        }
        let content = self.content(request)?;
        let parsed =
            parse_introspection_request(&content).map_err(|e| Failure::Rs(RsError::from(&e)))?;
        let rule = self.authenticate_rs(&parsed.resource_server, request)?;
        let wanted = match &parsed.access {
            None => None,
            // Too many rights once resolved is a `Failure::Gnap`
            // `invalid_request`, which reaches the RS as §3.5's
            // `invalid_request`; a storage failure stays one.
            Some(access) => Some(self.resolve_rights(access)?),
        };
        if let Some(wanted) = &wanted
            && wanted.iter().any(|r| !rule.covers(r))
        {
            return Err(Failure::rs(
                RsErrorCode::InvalidAccess,
                "this resource server may not introspect for the access it names",
            ));
        }
        let answer = self.introspection(&parsed, &rule, wanted.as_deref())?;
        Ok(Reply::json(200, &answer))
    }

    fn introspection(
        &self,
        parsed: &IntrospectionRequest,
        rule: &RsRule,
        wanted: Option<&[AccessRight]>,
    ) -> Result<IntrospectionResponse, Failure> {
        let inactive = IntrospectionResponse::inactive();
        let now = self.now();
        let Some(token) = self
            .store
            .token(&TokenHash::of(&parsed.access_token))?
            .filter(|t| now <= t.expires_at)
        else {
            return Ok(inactive);
        };
        match parsed.proof {
            None => {}
            // The RS says how the client proved the token; it must be the
            // method the token's key is bound with.
            Some(method) if !token.bearer && names(method, token.key.method) => {}
            Some(_) => return Ok(inactive),
        }
        let visible: Vec<AccessRight> = token
            .access
            .iter()
            .filter(|r| rule.covers(r))
            .cloned()
            .collect();
        if visible.is_empty() {
            return Ok(inactive);
        }
        if let Some(wanted) = wanted
            && !wanted
                .iter()
                .all(|w| token.access.iter().any(|have| covers(have, w)))
        {
            return Ok(inactive);
        }
        // The grant decides too: an expired grant's tokens are dead even
        // before the sweep removes them; a token without one is damage.
        let Some(grant) = self
            .store
            .grant(&token.grant)?
            .filter(|g| now <= g.expires_at)
        else {
            return Ok(inactive);
        };
        let key = if token.bearer {
            None
        } else if token.key.method == ProofKind::Mtls {
            // The certificate is known by its thumbprint (RFC 8705 §3.1),
            // which is what the RS compares a TLS client certificate with.
            Some(Key::Value(PresentedKey {
                proof: Proof::Mtls,
                jwk: serde_json::Map::new(),
                cert: Some(CertKey::Thumbprint(token.key.thumbprint.clone())),
            }))
        } else {
            let Some(jwk) = token.key.jwk.as_object() else {
                return Ok(inactive);
            };
            Some(Key::Value(PresentedKey {
                proof: match token.key.method {
                    ProofKind::HttpSig => Proof::HttpSig(HttpSigProof::Derived),
                    ProofKind::Jwsd => Proof::Jwsd,
                    ProofKind::Jws => Proof::Jws,
                    ProofKind::Mtls => Proof::Mtls,
                },
                jwk: jwk.clone(),
                cert: None,
            }))
        };
        Ok(IntrospectionResponse {
            active: true,
            access: Some(visible),
            key,
            flags: if token.bearer {
                vec![ResponseFlag::Bearer]
            } else {
                Vec::new()
            },
            exp: Some(token.expires_at),
            iat: Some(token.issued_at),
            iss: Some(self.config.grant_endpoint()),
            instance_id: grant.instance_id,
        })
    }
}

/// True if holding `have` is enough for `want`.
///
/// Equal rights cover each other. `mcp` rights follow the gateway's reading
/// (an absent `actions` or `tools` list means all; `mcp:NAME` is all of
/// upstream NAME). For objects of other types gnapd cannot know what an
/// absent member means, so it decides only what it can prove: same `type`;
/// every list `want` names is a subset of the same list in `have`; `want`'s
/// `identifier`, if any, is `have`'s; and members specific to the type are
/// identical. Anything else is not covered (§3.3: a part of `access` the AS
/// cannot process MUST NOT make the token active).
pub(crate) fn covers(have: &AccessRight, want: &AccessRight) -> bool {
    if have == want {
        return true;
    }
    match (have, want) {
        (AccessRight::Reference(h), AccessRight::Object(w)) => {
            w.is_mcp()
                && h.strip_prefix("mcp:")
                    .is_some_and(|name| w.identifier.as_deref() == Some(name))
        }
        (AccessRight::Object(h), AccessRight::Reference(w)) => {
            h.is_mcp()
                && h.actions.is_none()
                && h.tools.is_none()
                && h.locations.is_none()
                && w.strip_prefix("mcp:")
                    .is_some_and(|name| h.identifier.as_deref() == Some(name))
        }
        (AccessRight::Object(h), AccessRight::Object(w)) => object_covers(h, w),
        (AccessRight::Reference(_), AccessRight::Reference(_)) => false,
    }
}

fn object_covers(have: &AccessObject, want: &AccessObject) -> bool {
    if have.kind != want.kind || have.extra != want.extra {
        return false;
    }
    if have.is_mcp() {
        return have.identifier.is_some()
            && have.identifier == want.identifier
            && all_or_superset(have.actions.as_deref(), want.actions.as_deref())
            && all_or_superset(have.tools.as_deref(), want.tools.as_deref())
            && named_subset(have.locations.as_deref(), want.locations.as_deref());
    }
    (want.identifier.is_none() || want.identifier == have.identifier)
        && named_subset(have.actions.as_deref(), want.actions.as_deref())
        && named_subset(have.locations.as_deref(), want.locations.as_deref())
        && named_subset(have.datatypes.as_deref(), want.datatypes.as_deref())
        && named_subset(have.privileges.as_deref(), want.privileges.as_deref())
}

/// `mcp` lists: absent means all.
fn all_or_superset(have: Option<&[String]>, want: Option<&[String]>) -> bool {
    match (have, want) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(have), Some(want)) => want.iter().all(|w| have.contains(w)),
    }
}

/// Other lists: a list `want` does not name asks for nothing in it; one it
/// names must be within `have`'s.
fn named_subset(have: Option<&[String]>, want: Option<&[String]>) -> bool {
    match (have, want) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(have), Some(want)) => want.iter().all(|w| have.contains(w)),
    }
}

/// True when the registry value `method` names the bound `kind`.
fn names(method: ProofMethod, kind: ProofKind) -> bool {
    matches!(
        (method, kind),
        (ProofMethod::HttpSig, ProofKind::HttpSig)
            | (ProofMethod::Jwsd, ProofKind::Jwsd)
            | (ProofMethod::Jws, ProofKind::Jws)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn right(value: serde_json::Value) -> AccessRight {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn introspection_access_coverage_is_decided_only_where_it_can_be_proved() {
        let photo = right(
            json!({"type": "photo-api", "actions": ["read", "write"], "datatypes": ["images"]}),
        );
        for (have, want, covered) in [
            (
                &photo,
                json!({"type": "photo-api", "actions": ["read"]}),
                true,
            ),
            (&photo, json!({"type": "photo-api"}), true),
            (
                &photo,
                json!({"type": "photo-api", "actions": ["delete"]}),
                false,
            ),
            (
                &photo,
                json!({"type": "photo-api", "locations": ["https://x/"]}),
                false,
            ),
            (
                &photo,
                json!({"type": "video-api", "actions": ["read"]}),
                false,
            ),
            (
                &photo,
                json!({"type": "photo-api", "identifier": "album-1"}),
                false,
            ),
            (&photo, json!({"type": "photo-api", "geo": "eu"}), false),
            (&photo, json!("photo-api"), false),
        ] {
            assert_eq!(covers(have, &right(want.clone())), covered, "{want}");
        }
        let github = right(json!("mcp:github"));
        let read_only =
            right(json!({"type": "mcp", "identifier": "github", "actions": ["tools/list"]}));
        assert!(covers(
            &github,
            &right(json!({"type": "mcp", "identifier": "github", "actions": ["tools/call"]}))
        ));
        assert!(!covers(
            &github,
            &right(json!({"type": "mcp", "identifier": "slack"}))
        ));
        assert!(covers(
            &read_only,
            &right(json!({"type": "mcp", "identifier": "github", "actions": ["tools/list"]}))
        ));
        assert!(!covers(&read_only, &github));
        assert!(!covers(
            &read_only,
            &right(json!({"type": "mcp", "identifier": "github"}))
        ));
        assert!(covers(
            &right(json!({"type": "mcp", "identifier": "github"})),
            &github
        ));
        assert!(covers(&right(json!("dolphin")), &right(json!("dolphin"))));
        assert!(!covers(&right(json!("dolphin")), &right(json!("dolphins"))));
    }
}
