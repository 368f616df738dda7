//! What an OAuth client reads from the gateway's `WWW-Authenticate`
//! fields (RFC 6750 §3, RFC 9728 §5.1): the `Bearer` challenge's
//! `resource_metadata`, `scope` and `error`. The grammar is the GNAP
//! client's reader ([`crate::client::challenge::parse_challenges`]); this
//! only picks the Bearer challenge out of every field line.

/// The parameters of a `Bearer` challenge a client acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BearerChallenge {
    /// `resource_metadata`: where the RFC 9728 document is.
    pub resource_metadata: Option<String>,
    /// `scope`: what to ask for (MCP "scope selection strategy").
    pub scope: Option<String>,
    /// `error`: why a token was refused (absent when none was sent).
    pub error: Option<String>,
}

/// The first `Bearer` challenge among `fields` (the values of every
/// `WWW-Authenticate` line), or `None` if no field has one.
pub fn bearer<'a>(fields: impl IntoIterator<Item = &'a str>) -> Option<BearerChallenge> {
    for field in fields {
        let Ok(challenges) = crate::client::challenge::parse_challenges(field) else {
            continue;
        };
        for challenge in challenges {
            if !challenge.scheme.eq_ignore_ascii_case("bearer") {
                continue;
            }
            let param = |name: &str| {
                challenge
                    .params
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            };
            return Some(BearerChallenge {
                resource_metadata: param("resource_metadata"),
                scope: param("scope"),
                error: param("error"),
            });
        }
    }
    None
}

/// The first challenge, of any scheme, refusing a token for want of
/// scope (RFC 6750 §3.1 `insufficient_scope`): its parameters.
pub fn insufficient_scope<'a>(
    fields: impl IntoIterator<Item = &'a str>,
) -> Option<BearerChallenge> {
    for field in fields {
        let Ok(challenges) = crate::client::challenge::parse_challenges(field) else {
            continue;
        };
        for challenge in challenges {
            let param = |name: &str| {
                challenge
                    .params
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            };
            if param("error").as_deref() == Some(INSUFFICIENT_SCOPE) {
                return Some(BearerChallenge {
                    resource_metadata: param("resource_metadata"),
                    scope: param("scope"),
                    error: param("error"),
                });
            }
        }
    }
    None
}

const INSUFFICIENT_SCOPE: &str = crate::proto::oauth::challenge::error::INSUFFICIENT_SCOPE;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::oauth::challenge;

    const PRM: &str = "http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp/alpha";

    #[test]
    fn the_bearer_challenge_is_found_among_the_gateways_lines() {
        let bearer_line = challenge::bearer(PRM, "mcp:alpha", None);
        let dpop_line = challenge::dpop(None);
        let gnap_line = "GNAP as_uri=\"http://127.0.0.1:9/gnap\", access=\"mcp:alpha\"";
        let read = bearer([gnap_line, dpop_line.as_str(), bearer_line.as_str()]).unwrap();
        assert_eq!(read.resource_metadata.as_deref(), Some(PRM));
        assert_eq!(read.scope.as_deref(), Some("mcp:alpha"));
        assert_eq!(read.error, None);
    }

    #[test]
    fn the_step_up_challenge_gives_the_scope_and_error() {
        let line = challenge::insufficient_scope(PRM, "mcp:alpha:tool:echo mcp:alpha:tool:add");
        let read = bearer([line.as_str()]).unwrap();
        assert_eq!(read.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(
            read.scope.as_deref(),
            Some("mcp:alpha:tool:echo mcp:alpha:tool:add")
        );
        let other = challenge::dpop(None);
        assert_eq!(
            insufficient_scope([other.as_str(), line.as_str()]),
            Some(read)
        );
        assert!(insufficient_scope([other.as_str()]).is_none());
        assert!(bearer(["GNAP as_uri=\"x\""]).is_none());
        assert!(bearer(["\u{0}garbage"]).is_none());
    }
}
