//! `scope` strings (RFC 6749 §3.3) and gnapd's `mcp` access rights, both
//! ways: what an OAuth client asks for, what metadata and challenges
//! advertise, and what a token's `scope` says are one mapping.
//!
//! The grammar, gnapd's own (it is the API designer of `mcp`):
//!
//! | scope | access right |
//! |---|---|
//! | `mcp:NAME` | everything at upstream NAME (the reference `mcp:NAME`) |
//! | `mcp:NAME:method:METHOD` | MCP method METHOD at NAME (`actions`) |
//! | `mcp:NAME:tool:TOOL` | `tools/call` of tool TOOL at NAME (`tools`) |
//!
//! Scopes for one upstream merge into one `mcp` object: its `actions` are
//! the methods named (with `tools/call` added when a tool is named), its
//! `tools` the tools named; an absent list means "all", as in GNAP. A whole
//! upstream scope beside narrower ones for the same upstream is the whole
//! upstream. `offline_access` and the OpenID scopes clients add by habit
//! ([`IGNORED`]) ask for nothing here and are dropped; any other string is
//! `invalid_scope`, never silently ignored, because ignoring a restriction
//! would grant more than was asked.

use std::collections::BTreeMap;

use crate::proto::gnap::{AccessObject, AccessRight};

/// Scopes that ask for nothing at gnapd: refresh tokens come with every
/// authorization code grant, and gnapd is no OpenID provider.
pub const IGNORED: [&str; 4] = ["offline_access", "openid", "profile", "email"];

/// Most scope strings read from one request.
pub const MAX_SCOPES: usize = 64;

/// Why a `scope` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// A character RFC 6749 §3.3 does not allow, or an empty token.
    #[error("scope tokens are printable ASCII without spaces, quotes or backslashes")]
    Syntax,
    /// Not a scope gnapd knows.
    #[error("unknown scope `{0}`")]
    Unknown(String),
    /// More scopes than [`MAX_SCOPES`].
    #[error("too many scopes")]
    TooMany,
    /// A right (a tool or method name) no scope token can carry.
    #[error("`{0}` cannot be written as a scope")]
    Inexpressible(String),
}

/// True for a `scope-token` of RFC 6749 §3.3:
/// `1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// The scope that asks for everything at `upstream`.
pub fn whole_upstream(upstream: &str) -> String {
    format!("mcp:{upstream}")
}

/// What one upstream's scopes ask for, before merging.
#[derive(Default)]
struct Wanted {
    whole: bool,
    methods: Vec<String>,
    tools: Vec<String>,
}

/// Reads a `scope` parameter (space-delimited, RFC 6749 §3.3) into access
/// rights, one per upstream named, in the order upstreams first appear.
/// An empty or all-ignored scope gives no rights (the caller decides what a
/// request with no scope gets).
pub fn to_access(scope: &str) -> Result<Vec<AccessRight>, ScopeError> {
    let mut order: Vec<String> = Vec::new();
    let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
    // RFC 6749 §3.3 separates with single spaces; a client that doubles one
    // asks for nothing more.
    let tokens: Vec<&str> = scope.split(' ').filter(|t| !t.is_empty()).collect();
    if tokens.len() > MAX_SCOPES {
        return Err(ScopeError::TooMany);
    }
    for token in tokens {
        if !is_scope_token(token) {
            return Err(ScopeError::Syntax);
        }
        if IGNORED.contains(&token) {
            continue;
        }
        let rest = token
            .strip_prefix("mcp:")
            .ok_or_else(|| ScopeError::Unknown(token.to_owned()))?;
        let (upstream, narrow) = match rest.split_once(':') {
            None => (rest, None),
            Some((upstream, narrow)) => (upstream, Some(narrow)),
        };
        if upstream.is_empty() {
            return Err(ScopeError::Unknown(token.to_owned()));
        }
        if !wanted.contains_key(upstream) {
            order.push(upstream.to_owned());
        }
        let entry = wanted.entry(upstream.to_owned()).or_default();
        match narrow.map(|n| n.split_once(':')) {
            None => entry.whole = true,
            Some(Some(("method", method))) if !method.is_empty() => {
                if !entry.methods.iter().any(|m| m == method) {
                    entry.methods.push(method.to_owned());
                }
            }
            Some(Some(("tool", tool))) if !tool.is_empty() => {
                if !entry.tools.iter().any(|t| t == tool) {
                    entry.tools.push(tool.to_owned());
                }
            }
            Some(_) => return Err(ScopeError::Unknown(token.to_owned())),
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|upstream| {
            let want = wanted.remove(&upstream)?;
            Some(right_for(upstream, want))
        })
        .collect())
}

fn right_for(upstream: String, mut want: Wanted) -> AccessRight {
    if want.whole || (want.methods.is_empty() && want.tools.is_empty()) {
        return AccessRight::Reference(whole_upstream(&upstream));
    }
    let tools = (!want.tools.is_empty()).then_some(want.tools);
    let actions = if want.methods.is_empty() {
        None
    } else {
        if tools.is_some() && !want.methods.iter().any(|m| m == "tools/call") {
            want.methods.push("tools/call".to_owned());
        }
        Some(want.methods)
    };
    AccessRight::Object(Box::new(AccessObject {
        kind: crate::proto::gnap::access::MCP_TYPE.to_owned(),
        identifier: Some(upstream),
        actions,
        tools,
        ..AccessObject::default()
    }))
}

/// Writes access rights as scope tokens, each once, in order: the inverse
/// of [`to_access`] for the rights it makes. A right that is not an `mcp`
/// right, or names a method or tool no scope token can carry, is
/// [`ScopeError::Inexpressible`].
pub fn from_access(rights: &[AccessRight]) -> Result<Vec<String>, ScopeError> {
    let mut scopes: Vec<String> = Vec::new();
    let mut push = |scope: String| -> Result<(), ScopeError> {
        if !is_scope_token(&scope) {
            return Err(ScopeError::Inexpressible(scope));
        }
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
        Ok(())
    };
    for right in rights {
        match right {
            AccessRight::Reference(r) if r.starts_with("mcp:") && r.len() > 4 => {
                push(r.clone())?;
            }
            AccessRight::Object(o) if o.is_mcp() => {
                let upstream = o.identifier.as_deref().ok_or_else(|| {
                    ScopeError::Inexpressible("an mcp right without identifier".into())
                })?;
                if o.locations.is_some() {
                    return Err(ScopeError::Inexpressible(format!(
                        "locations of {upstream}"
                    )));
                }
                match (&o.actions, &o.tools) {
                    (None, None) => push(whole_upstream(upstream))?,
                    (actions, tools) => {
                        for method in actions.iter().flatten() {
                            // `tools/call` is implied by a tool scope.
                            if tools.is_some() && method == "tools/call" {
                                continue;
                            }
                            push(format!("mcp:{upstream}:method:{method}"))?;
                        }
                        for tool in tools.iter().flatten() {
                            push(format!("mcp:{upstream}:tool:{tool}"))?;
                        }
                    }
                }
            }
            AccessRight::Reference(r) => return Err(ScopeError::Inexpressible(r.clone())),
            AccessRight::Object(o) => return Err(ScopeError::Inexpressible(o.kind.clone())),
        }
    }
    Ok(scopes)
}

/// The upstreams `rights` name, each once, in order.
pub fn upstreams(rights: &[AccessRight]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for right in rights {
        let name = match right {
            AccessRight::Reference(r) => r.strip_prefix("mcp:"),
            AccessRight::Object(o) if o.is_mcp() => o.identifier.as_deref(),
            AccessRight::Object(_) => None,
        };
        if let Some(name) = name
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(right: &AccessRight) -> &AccessObject {
        match right {
            AccessRight::Object(o) => o,
            AccessRight::Reference(r) => panic!("expected an object, got {r}"),
        }
    }

    #[test]
    fn a_whole_upstream_scope_is_the_mcp_reference() {
        let rights = to_access("mcp:github").unwrap();
        assert_eq!(rights, vec![AccessRight::Reference("mcp:github".into())]);
        assert_eq!(from_access(&rights).unwrap(), vec!["mcp:github"]);
    }

    #[test]
    fn tool_and_method_scopes_merge_into_one_object_per_upstream() {
        let rights =
            to_access("mcp:gh:tool:create_issue mcp:gh:method:tools/list mcp:gh:tool:a:b").unwrap();
        assert_eq!(rights.len(), 1);
        let o = object(&rights[0]);
        assert_eq!(o.identifier.as_deref(), Some("gh"));
        assert_eq!(o.tools, Some(vec!["create_issue".into(), "a:b".into()]));
        assert_eq!(
            o.actions,
            Some(vec!["tools/list".into(), "tools/call".into()])
        );
        let back = from_access(&rights).unwrap();
        assert_eq!(
            back,
            vec![
                "mcp:gh:method:tools/list",
                "mcp:gh:tool:create_issue",
                "mcp:gh:tool:a:b"
            ]
        );
        assert_eq!(to_access(&back.join(" ")).unwrap(), rights);
    }

    #[test]
    fn a_tool_scope_alone_limits_tools_and_leaves_methods_open() {
        let rights = to_access("mcp:gh:tool:x").unwrap();
        let o = object(&rights[0]);
        assert_eq!(o.actions, None);
        assert_eq!(o.tools, Some(vec!["x".into()]));
    }

    #[test]
    fn a_whole_upstream_scope_wins_over_narrower_ones_for_it() {
        let rights = to_access("mcp:gh:tool:x mcp:gh mcp:other:tool:y").unwrap();
        assert_eq!(rights[0], AccessRight::Reference("mcp:gh".into()));
        assert_eq!(object(&rights[1]).identifier.as_deref(), Some("other"));
    }

    #[test]
    fn habitual_openid_scopes_are_dropped_and_unknown_ones_refused() {
        assert_eq!(to_access("openid offline_access").unwrap(), vec![]);
        assert_eq!(to_access("").unwrap(), vec![]);
        assert_eq!(to_access("admin"), Err(ScopeError::Unknown("admin".into())));
        assert_eq!(to_access("mcp:"), Err(ScopeError::Unknown("mcp:".into())));
        assert_eq!(
            to_access("mcp:gh:tool:"),
            Err(ScopeError::Unknown("mcp:gh:tool:".into()))
        );
        assert_eq!(
            to_access("mcp:gh:other:x"),
            Err(ScopeError::Unknown("mcp:gh:other:x".into()))
        );
    }

    #[test]
    fn characters_outside_the_scope_token_grammar_are_refused() {
        for bad in ["mcp:\"gh\"", "mcp:g\\h", "mcp:gé", "mcp:g\th"] {
            assert_eq!(to_access(bad), Err(ScopeError::Syntax), "{bad:?}");
        }
        let many = vec!["mcp:a"; MAX_SCOPES + 1].join(" ");
        assert_eq!(to_access(&many), Err(ScopeError::TooMany));
    }

    #[test]
    fn a_tool_name_no_scope_can_carry_is_inexpressible_not_dropped() {
        let rights = vec![AccessRight::Object(Box::new(AccessObject {
            kind: "mcp".into(),
            identifier: Some("gh".into()),
            tools: Some(vec!["two words".into()]),
            ..AccessObject::default()
        }))];
        assert!(matches!(
            from_access(&rights),
            Err(ScopeError::Inexpressible(_))
        ));
        let other = vec![AccessRight::Reference("photos".into())];
        assert!(matches!(
            from_access(&other),
            Err(ScopeError::Inexpressible(_))
        ));
    }

    #[test]
    fn upstreams_are_named_once_in_order() {
        let rights = to_access("mcp:b mcp:a:tool:x mcp:b:tool:y").unwrap();
        assert_eq!(upstreams(&rights), vec!["b", "a"]);
    }
}
