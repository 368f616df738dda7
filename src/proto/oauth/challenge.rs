//! The `WWW-Authenticate` challenges of the gateway's OAuth face: what an
//! OAuth client reads from a 401 or 403 to find the metadata, the scopes to
//! ask for, and why its token was refused (RFC 6750 §3, RFC 9728 §5.1,
//! RFC 9449 §7.1). Each function writes one challenge, for a field line of
//! its own (RFC 9110 §11.6.1 allows several lines).

use super::dpop;

/// RFC 6750 §3.1 / RFC 9449 §7.1 error codes.
pub mod error {
    /// The token is unknown, expired, revoked, for another resource, or
    /// presented with the wrong scheme.
    pub const INVALID_TOKEN: &str = "invalid_token";
    /// The DPoP proof is missing or does not hold (RFC 9449 §7.1).
    pub const INVALID_DPOP_PROOF: &str = "invalid_dpop_proof";
    /// The token lacks a right the call needs (RFC 6750 §3.1).
    pub const INSUFFICIENT_SCOPE: &str = "insufficient_scope";
}

/// `Bearer resource_metadata="…", scope="…"`, with `error` when a token was
/// presented and refused (RFC 6750 §3.1: none when the request had none).
pub fn bearer(resource_metadata: &str, scope: &str, error: Option<&str>) -> String {
    let mut out = format!(
        "Bearer resource_metadata={}, scope={}",
        quoted(resource_metadata),
        quoted(scope)
    );
    if let Some(error) = error {
        out.push_str(", error=");
        out.push_str(&quoted(error));
    }
    out
}

/// `DPoP algs="…"` (RFC 9449 §7.1), with `error` when a DPoP token or its
/// proof was refused.
pub fn dpop(error: Option<&str>) -> String {
    let mut out = format!("DPoP algs={}", quoted(&dpop::ALGS.join(" ")));
    if let Some(error) = error {
        out.push_str(", error=");
        out.push_str(&quoted(error));
    }
    out
}

/// The 403 step-up challenge (RFC 6750 §3.1, MCP "scope challenge"):
/// `scope` names every scope the refused operation needs.
pub fn insufficient_scope(resource_metadata: &str, scope: &str) -> String {
    format!(
        "Bearer error={}, scope={}, resource_metadata={}, error_description={}",
        quoted(error::INSUFFICIENT_SCOPE),
        quoted(scope),
        quoted(resource_metadata),
        quoted("the access token does not grant this operation")
    )
}

/// An RFC 9110 §5.6.4 quoted-string. The values written here (URLs, scope
/// tokens, fixed codes) never hold `"` or `\`, but escaping keeps a
/// surprising upstream name from breaking the field.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRM: &str = "https://gw.example/.well-known/oauth-protected-resource/mcp/gh";

    #[test]
    fn the_bearer_challenge_names_the_metadata_and_scope_and_an_error_only_for_a_token() {
        assert_eq!(
            bearer(PRM, "mcp:gh", None),
            format!("Bearer resource_metadata=\"{PRM}\", scope=\"mcp:gh\"")
        );
        assert_eq!(
            bearer(PRM, "mcp:gh", Some(error::INVALID_TOKEN)),
            format!(
                "Bearer resource_metadata=\"{PRM}\", scope=\"mcp:gh\", error=\"invalid_token\""
            )
        );
    }

    #[test]
    fn the_dpop_challenge_lists_the_proof_algorithms() {
        assert_eq!(dpop(None), "DPoP algs=\"ES256 ES384 EdDSA PS512 RS256\"");
        assert_eq!(
            dpop(Some(error::INVALID_DPOP_PROOF)),
            "DPoP algs=\"ES256 ES384 EdDSA PS512 RS256\", error=\"invalid_dpop_proof\""
        );
    }

    #[test]
    fn the_step_up_challenge_is_insufficient_scope_with_every_scope_needed() {
        let c = insufficient_scope(PRM, "mcp:gh:tool:a mcp:gh:tool:b");
        assert!(
            c.starts_with("Bearer error=\"insufficient_scope\", "),
            "{c}"
        );
        assert!(c.contains("scope=\"mcp:gh:tool:a mcp:gh:tool:b\""), "{c}");
        assert!(c.contains(&format!("resource_metadata=\"{PRM}\"")), "{c}");
    }

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
