//! The `resource` parameter (RFC 8707) of gnapd's OAuth face: which
//! upstream a token is for.
//!
//! Each upstream is one protected resource, `{public}/mcp/{upstream}`, the
//! URL an MCP client configures (RFC 9728 §3.3). The MCP authorization
//! specification asks servers to accept an uppercase scheme and host and to
//! tolerate a trailing slash, so a `resource` is compared after lowercasing
//! those and dropping one trailing slash. A request without `resource`
//! (some clients drop it) is for the one upstream its `scope` names.
//! Anything else is `invalid_target` (RFC 8707 §2): a token is never for
//! a resource gnapd does not serve.

use crate::proto::httpsig::message::TargetUri;

/// Longest `resource` accepted, in bytes.
pub const MAX_LEN: usize = 2048;

/// The resource a token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Its canonical URI, `{public}/mcp/{upstream}` (the token's audience).
    pub uri: String,
    /// The upstream.
    pub upstream: String,
}

/// Why no resource could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// RFC 8707 `invalid_target`: malformed, not an upstream of this
    /// server, or missing when the scope names no single upstream.
    #[error("{0}")]
    InvalidTarget(&'static str),
    /// The scope asks for rights at other upstreams only, not at the
    /// resource: `invalid_scope`.
    #[error("the scope names no right at the resource's upstream")]
    ScopeElsewhere,
}

/// `uri` with a lowercase scheme and host and without one trailing slash.
fn normalized(uri: &str) -> Option<String> {
    let parsed = TargetUri::parse(uri).ok()?;
    let mut path = parsed.path;
    if let Some(p) = path.strip_suffix('/') {
        path = p;
    }
    let mut out = format!(
        "{}://{}{path}",
        parsed.scheme.to_ascii_lowercase(),
        parsed.authority.to_ascii_lowercase()
    );
    if let Some(q) = parsed.query {
        out.push('?');
        out.push_str(q);
    }
    Some(out)
}

/// True if `sent` names the resource `canonical` (compared as a `resource`
/// parameter is: case of scheme and host, one trailing slash). For an
/// audience another AS wrote from what its client sent.
pub fn names(sent: &str, canonical: &str) -> bool {
    sent == canonical
        || (sent.len() <= MAX_LEN
            && !sent.contains('#')
            && normalized(sent).is_some_and(|s| Some(s) == normalized(canonical)))
}

/// The resource of a request: `resource` as sent (if any), the upstreams
/// its `scope` names, the server's public URL (no path, no trailing slash),
/// which upstream names exist, and the server's only upstream when it has
/// exactly one (a request naming neither resource nor scope is for it).
pub fn choose(
    resource: Option<&str>,
    scope_upstreams: &[String],
    public_url: &str,
    known: &dyn Fn(&str) -> bool,
    sole: Option<&str>,
) -> Result<Resource, ResourceError> {
    let upstream = match resource {
        Some(sent) => {
            if sent.len() > MAX_LEN || sent.contains('#') {
                return Err(ResourceError::InvalidTarget(
                    "the resource must be an absolute URI without a fragment",
                ));
            }
            let sent = normalized(sent).ok_or(ResourceError::InvalidTarget(
                "the resource must be an absolute URI",
            ))?;
            let base = normalized(public_url).unwrap_or_else(|| public_url.to_owned());
            let name = sent
                .strip_prefix(&base)
                .and_then(|rest| rest.strip_prefix("/mcp/"))
                .filter(|name| !name.is_empty() && !name.contains(['/', '?']))
                .filter(|name| known(name))
                .ok_or(ResourceError::InvalidTarget(
                    "the resource is not an MCP endpoint of this server",
                ))?;
            // Clients that find no scope in the challenge ask for every
            // scope the metadata lists: the rights at other upstreams are
            // dropped by the caller (a token has one audience), but a scope
            // naming only other upstreams asks for nothing here.
            if !scope_upstreams.is_empty() && !scope_upstreams.iter().any(|u| u == name) {
                return Err(ResourceError::ScopeElsewhere);
            }
            name.to_owned()
        }
        None => match scope_upstreams {
            [one] if known(one) => one.clone(),
            [_] => {
                return Err(ResourceError::InvalidTarget(
                    "the scope names an upstream this server does not have",
                ));
            }
            [] if sole.is_some_and(known) => sole.unwrap_or_default().to_owned(),
            _ => {
                return Err(ResourceError::InvalidTarget(
                    "send `resource` (the MCP URL), or a scope naming one upstream",
                ));
            }
        },
    };
    Ok(Resource {
        uri: format!("{}/mcp/{upstream}", public_url.trim_end_matches('/')),
        upstream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: &str = "https://gw.example";

    fn known(name: &str) -> bool {
        matches!(name, "github" | "slack")
    }

    fn pick(resource: Option<&str>, scopes: &[&str]) -> Result<Resource, ResourceError> {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        choose(resource, &scopes, PUBLIC, &known, None)
    }

    #[test]
    fn an_audience_names_the_resource_as_a_resource_parameter_would() {
        let canonical = "https://gw.example/mcp/gh";
        assert!(names(canonical, canonical));
        assert!(names("HTTPS://GW.EXAMPLE/mcp/gh/", canonical));
        assert!(!names("https://gw.example/mcp/GH", canonical));
        assert!(!names("https://gw.example/mcp/gh2", canonical));
        assert!(!names("https://gw.example/mcp/gh#x", canonical));
        assert!(!names("gw.example/mcp/gh", canonical));
    }

    #[test]
    fn the_mcp_url_of_an_upstream_is_its_resource_trailing_slash_and_case_tolerated() {
        let github = Resource {
            uri: "https://gw.example/mcp/github".into(),
            upstream: "github".into(),
        };
        assert_eq!(
            pick(Some("https://gw.example/mcp/github"), &[]),
            Ok(github.clone())
        );
        assert_eq!(
            pick(Some("https://gw.example/mcp/github/"), &[]),
            Ok(github.clone())
        );
        assert_eq!(
            pick(Some("HTTPS://GW.example/mcp/github"), &["github"]),
            Ok(github)
        );
    }

    #[test]
    fn a_missing_resource_is_the_one_upstream_the_scope_names() {
        assert_eq!(
            pick(None, &["slack"]).map(|r| r.upstream),
            Ok("slack".into())
        );
        assert!(matches!(
            pick(None, &[]),
            Err(ResourceError::InvalidTarget(_))
        ));
        assert!(matches!(
            pick(None, &["github", "slack"]),
            Err(ResourceError::InvalidTarget(_))
        ));
        assert!(matches!(
            pick(None, &["nope"]),
            Err(ResourceError::InvalidTarget(_))
        ));
        // Neither resource nor scope: the server's only upstream, if it has
        // just one.
        assert_eq!(
            choose(None, &[], PUBLIC, &known, Some("slack")).map(|r| r.uri),
            Ok("https://gw.example/mcp/slack".into())
        );
        assert!(choose(None, &[], PUBLIC, &known, Some("gone")).is_err());
    }

    #[test]
    fn anything_else_is_invalid_target_or_a_scope_elsewhere() {
        for bad in [
            "https://gw.example/mcp/nope",
            "https://other.example/mcp/github",
            "https://gw.example/mcp/github/tools",
            "https://gw.example/mcp/github#x",
            "https://gw.example/mcp/",
            "https://gw.example/mcp/github?x=1",
            "github",
            "https://gw.example:444/mcp/github",
        ] {
            assert!(
                matches!(pick(Some(bad), &[]), Err(ResourceError::InvalidTarget(_))),
                "{bad}"
            );
        }
        assert_eq!(
            pick(Some("https://gw.example/mcp/github"), &["slack"]),
            Err(ResourceError::ScopeElsewhere)
        );
        // Every upstream's scope with one resource: that one is chosen.
        assert_eq!(
            pick(Some("https://gw.example/mcp/github"), &["slack", "github"]).map(|r| r.upstream),
            Ok("github".into())
        );
    }
}
