//! What one node answers (`role`, issue 20): several gnapd nodes on one
//! PostgreSQL may split the work, so that operators scale the gateway apart
//! from the authorization server. A node answers a path outside its role
//! with the same 404 a path nobody serves gets, so a misrouted request
//! learns nothing it could not learn from any unknown path.

use crate::proto::oauth::resource_metadata::WELL_KNOWN;

/// The parts of gnapd one node serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Everything: the authorization server and the gateway (the default).
    #[default]
    All,
    /// The authorization server: GNAP, the OAuth face, the pages people
    /// decide on; not `/mcp/…`.
    As,
    /// The gateway: `/mcp/…` and its protected resource metadata (RFC
    /// 9728), which belong to the resource.
    Gateway,
}

impl Role {
    /// The role a configuration names: `all`, `as` or `gateway`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "all" => Some(Self::All),
            "as" => Some(Self::As),
            "gateway" => Some(Self::Gateway),
            _ => None,
        }
    }

    /// The name [`Self::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::As => "as",
            Self::Gateway => "gateway",
        }
    }

    /// Whether the authorization server's background work (the sweeper)
    /// runs on this node.
    pub fn runs_the_as(self) -> bool {
        self != Self::Gateway
    }

    /// Whether a node in this role answers a request for `path`. `/metrics`
    /// is every node's own.
    pub fn serves(self, path: &str) -> bool {
        if path == "/metrics" {
            return true;
        }
        let gateway = path.starts_with(super::mcp::PREFIX) || is_under(path, WELL_KNOWN);
        match self {
            Self::All => true,
            Self::As => !gateway,
            Self::Gateway => gateway,
        }
    }
}

/// `path` is `root` or a path below it (not merely a longer name).
fn is_under(path: &str, root: &str) -> bool {
    path.strip_prefix(root)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_answers_its_own_paths_and_every_node_its_metrics() {
        let gateway_paths = [
            "/mcp/github",
            "/mcp/github/extra",
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp/github",
        ];
        let as_paths = [
            "/gnap",
            "/gnap/continue/0190c7b2-0000-7000-8000-000000000000",
            "/.well-known/gnap-as-rs",
            "/.well-known/oauth-authorization-server",
            "/.well-known/oauth-protected-resourcex",
            "/mcp",
            "/authorize",
        ];
        for path in gateway_paths {
            assert!(
                Role::All.serves(path) && Role::Gateway.serves(path),
                "{path}"
            );
            assert!(!Role::As.serves(path), "{path}");
        }
        for path in as_paths {
            assert!(Role::All.serves(path) && Role::As.serves(path), "{path}");
            assert!(!Role::Gateway.serves(path), "{path}");
        }
        for role in [Role::All, Role::As, Role::Gateway] {
            assert!(role.serves("/metrics"));
            assert_eq!(Role::parse(role.name()), Some(role));
        }
        assert_eq!(Role::parse("AS"), None, "names are exact");
        assert_eq!(Role::parse("both"), None);
    }
}
