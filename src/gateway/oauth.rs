//! OAuth access tokens at the gateway (sans I/O): which scheme a call
//! presents its token with, the checks an OAuth token passes instead of a
//! GNAP signature (scheme, audience, DPoP proof), and the scopes a refused
//! operation needs (the 403 step-up).
//!
//! An OAuth token is a token record with `oauth` set; everything after
//! [`open`] (per-method and per-tool rights, credential sets, sessions) is
//! the GNAP path's. The scheme must match the token exactly: a GNAP token
//! never passes as Bearer or DPoP, an OAuth token never as GNAP, a DPoP
//! token never as Bearer (RFC 9449 §7.2: that would strip its key binding).

use std::sync::Arc;

use super::{KeyCache, Opened, Refusal};
use crate::proto::gnap::AccessRight;
use crate::proto::gnap::token::is_token68;
use crate::proto::httpsig::nonce::Seen;
use crate::proto::httpsig::{HttpRequest, NonceStore, Rejection};
use crate::proto::mcp::access::Denied;
use crate::proto::mcp::jsonrpc::Message;
use crate::proto::oauth::dpop::{self, DpopError};
use crate::proto::oauth::scope;
use crate::store::TokenRecord;

/// How far a DPoP proof's `iat` may be from the gateway's clock (the
/// window every verifier of gnapd's uses).
pub const DPOP_WINDOW: i64 = dpop::WINDOW;

/// The `Authorization` scheme a token came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `GNAP` (RFC 9635 §7.2), with an HTTP message signature.
    Gnap,
    /// `Bearer` (RFC 6750 §2.1).
    Bearer,
    /// `DPoP` (RFC 9449 §7.1), with a `DPoP` proof.
    Dpop,
}

/// The one `Authorization` field's scheme and token68 value, if it has a
/// scheme the gateway knows. Reads in place: a GNAP call allocates nothing
/// here.
pub fn presented(request: &HttpRequest) -> Option<(Scheme, &str)> {
    let mut lines = request.fields.lines("authorization");
    let (Some(value), None) = (lines.next(), lines.next()) else {
        return None;
    };
    let (scheme, token) = std::str::from_utf8(value).ok()?.split_once(' ')?;
    let token = token.trim();
    let scheme = if scheme.eq_ignore_ascii_case("GNAP") {
        Scheme::Gnap
    } else if scheme.eq_ignore_ascii_case("Bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("DPoP") {
        Scheme::Dpop
    } else {
        return None;
    };
    is_token68(token).then_some((scheme, token))
}

/// The refusal for a Bearer or DPoP token that is not good here (RFC 6750
/// §3.1 `invalid_token` on the scheme it came with).
pub(super) fn invalid(scheme: Scheme) -> Refusal {
    match scheme {
        Scheme::Gnap => Refusal::Token,
        Scheme::Bearer => Refusal::OAuthToken { dpop: false },
        Scheme::Dpop => Refusal::OAuthToken { dpop: true },
    }
}

/// [`super::open`] for a token presented as Bearer or DPoP: the token must
/// be an OAuth token of that kind, for this resource (RFC 8707: its
/// audience is the URL called, which the HTTP edge rebuilds from the public
/// URL), and a DPoP token needs a fresh proof by its key for this request
/// (RFC 9449 §4.3, §7.1).
pub(super) fn open(
    replay: &dyn NonceStore,
    keys: &KeyCache,
    request: &HttpRequest,
    token: Arc<TokenRecord>,
    scheme: Scheme,
    value: &str,
    now: i64,
) -> Result<Opened, Refusal> {
    let Some(oauth) = &token.oauth else {
        return Err(invalid(scheme));
    };
    if oauth.dpop != (scheme == Scheme::Dpop) {
        return Err(invalid(scheme));
    }
    let target = request.target_uri.split('?').next().unwrap_or_default();
    if oauth.audience != target {
        return Err(invalid(scheme));
    }
    if oauth.dpop {
        check_proof(replay, keys, request, &token, value, now)?;
    }
    Ok(Opened {
        token,
        key: None,
        content: None,
    })
}

/// RFC 9449 §4.3 and §7.1: one `DPoP` field, a proof for this method and
/// URL over this token, signed by the key the token is bound to, not seen
/// before.
fn check_proof(
    replay: &dyn NonceStore,
    keys: &KeyCache,
    request: &HttpRequest,
    token: &TokenRecord,
    value: &str,
    now: i64,
) -> Result<(), Refusal> {
    let mut lines = request.fields.lines("dpop");
    let (Some(proof), None) = (lines.next(), lines.next()) else {
        return Err(Refusal::DpopProof(DpopError::Malformed));
    };
    let proof = std::str::from_utf8(proof).map_err(|_| DpopError::Malformed)?;
    let checked = dpop::verify(
        proof.trim(),
        &request.method,
        &request.target_uri,
        Some(value),
        now,
        DPOP_WINDOW,
    )?;
    // §7.1 / RFC 9449 §6: the proof's key is the one the token is bound to.
    if checked.jkt != token.key.thumbprint {
        return Err(Refusal::OAuthToken { dpop: true });
    }
    // A proof older than the replay memory could have been used before it.
    if checked.iat < replay.horizon() {
        return Err(DpopError::Iat.into());
    }
    // An external token's record knows only the thumbprint (`cnf.jkt`):
    // the key is the proof's own, which hashes to it.
    let from_proof;
    let binding = if token.key.jwk.is_null() {
        from_proof = crate::store::KeyBinding {
            thumbprint: checked.jkt.clone(),
            jwk: checked.jwk.clone(),
            method: crate::proto::gnap::ProofKind::HttpSig,
        };
        &from_proof
    } else {
        &token.key
    };
    let key = keys.key(binding)?;
    let mut seen = Vec::with_capacity(5 + checked.jti.len());
    seen.extend_from_slice(b"dpop\0");
    seen.extend_from_slice(checked.jti.as_bytes());
    match replay.remember(key.thumbprint(), &seen, checked.iat + DPOP_WINDOW, now) {
        Ok(Seen::Fresh) => Ok(()),
        Ok(Seen::Replayed) => Err(DpopError::Replayed.into()),
        Err(e) => Err(Refusal::Signature(Rejection::ReplayCache(e))),
    }
}

/// The refusal for an operation the token's rights do not allow: for an
/// OAuth token, 403 `insufficient_scope` naming every scope the operation
/// needs (MCP "scope challenge"); a GNAP token keeps its own answer.
pub(super) fn denied(
    token: &TokenRecord,
    upstream: &str,
    message: Option<&Message>,
    denied: Denied,
) -> Refusal {
    let Some(oauth) = &token.oauth else {
        return Refusal::Denied(denied);
    };
    Refusal::InsufficientScope {
        scope: needed_scope(&token.access, upstream, message, &denied),
        dpop: oauth.dpop,
    }
}

/// The token's scopes at `upstream` plus the one the refused operation
/// lacks: a tool scope for `tools/call` of a named tool, else the method's,
/// else (a name no scope can carry) the whole upstream.
fn needed_scope(
    access: &[AccessRight],
    upstream: &str,
    message: Option<&Message>,
    denied: &Denied,
) -> String {
    let whole = scope::whole_upstream(upstream);
    let mine: Vec<AccessRight> = access
        .iter()
        .filter(|r| scope::upstreams(std::slice::from_ref(*r)) == [upstream])
        .cloned()
        .collect();
    let Ok(mut scopes) = scope::from_access(&mine) else {
        return whole;
    };
    let missing = match (denied, message) {
        (
            Denied::Method(_) | Denied::Tool(_),
            Some(Message::Request {
                method,
                target: Some(tool),
            }),
        ) if method == "tools/call" => format!("{upstream}:tool:{tool}"),
        (Denied::Method(method), _) => format!("{upstream}:method:{method}"),
        _ => return whole,
    };
    let missing = format!("mcp:{missing}");
    if !scope::is_scope_token(&missing) {
        return whole;
    }
    if !scopes.contains(&missing) {
        scopes.push(missing);
    }
    scopes.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(authorization: &[&str]) -> HttpRequest {
        let mut r = HttpRequest::new("POST", "https://gw.example/mcp/gh");
        for a in authorization {
            r.fields.append("Authorization", (*a).to_owned());
        }
        r
    }

    #[test]
    fn the_scheme_is_read_case_insensitively_and_only_once() {
        assert_eq!(
            presented(&request(&["GNAP abc"])),
            Some((Scheme::Gnap, "abc"))
        );
        assert_eq!(
            presented(&request(&["bearer abc"])),
            Some((Scheme::Bearer, "abc"))
        );
        assert_eq!(
            presented(&request(&["DPoP abc"])),
            Some((Scheme::Dpop, "abc"))
        );
        assert_eq!(presented(&request(&["Basic abc"])), None);
        assert_eq!(presented(&request(&["Bearer a b"])), None);
        assert_eq!(presented(&request(&["Bearer a", "Bearer a"])), None);
        assert_eq!(presented(&request(&[])), None);
    }

    fn tool_call(tool: &str) -> Message {
        Message::Request {
            method: "tools/call".into(),
            target: Some(tool.into()),
        }
    }

    #[test]
    fn the_needed_scope_is_the_tokens_plus_the_missing_one() {
        let access = scope::to_access("mcp:gh:tool:a mcp:other").unwrap();
        let call = tool_call("b");
        assert_eq!(
            needed_scope(&access, "gh", Some(&call), &Denied::Tool("b".into())),
            "mcp:gh:tool:a mcp:gh:tool:b"
        );
        // A method refused for a token limited to some methods.
        let access = scope::to_access("mcp:gh:method:tools/list").unwrap();
        let read = Message::Request {
            method: "resources/read".into(),
            target: Some("r".into()),
        };
        assert_eq!(
            needed_scope(
                &access,
                "gh",
                Some(&read),
                &Denied::Method("resources/read".into())
            ),
            "mcp:gh:method:tools/list mcp:gh:method:resources/read"
        );
        // tools/call refused by method: the tool is what is asked for.
        assert_eq!(
            needed_scope(
                &access,
                "gh",
                Some(&call),
                &Denied::Method("tools/call".into())
            ),
            "mcp:gh:method:tools/list mcp:gh:tool:b"
        );
        // No right here at all, or a tool name no scope can carry.
        assert_eq!(
            needed_scope(&[], "gh", None, &Denied::Upstream("gh".into())),
            "mcp:gh"
        );
        assert_eq!(
            needed_scope(
                &[],
                "gh",
                Some(&tool_call("two words")),
                &Denied::Tool("two words".into())
            ),
            "mcp:gh"
        );
    }
}
