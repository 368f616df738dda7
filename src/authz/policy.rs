//! Who gets what without a person: the approval rules.
//!
//! Config, not code. Outside dev mode the default is to deny: a grant is
//! approved at once only when an allowlist rule names the client's key
//! thumbprint (or its self-declared `class_id`, for deployments that accept
//! that hint) and covers the access asked for. A request no rule approves
//! waits for a person when it offers interaction (`crate::authz::interaction`),
//! and `require_interaction` sends every request to a person.
//!
//! Resource servers (RFC 9767) are known the same way: outside dev mode an RS
//! is accepted only when an [`RsRule`] names its key's thumbprint, and it
//! sees, registers and asks about only the access its rule lists. Access
//! patterns are shared by both kinds of rule: a reference string matches
//! itself, `mcp:NAME` also matches an `mcp` object for upstream NAME,
//! `type:NAME` matches any object of `type` NAME, and `*` matches anything.

use serde::Deserialize;

use crate::proto::gnap::{AccessRight, GrantRequest};

/// One allowlist rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowRule {
    /// The RFC 7638 thumbprint of a client key this rule approves.
    #[serde(default)]
    pub thumbprint: Option<String>,
    /// A `class_id` this rule approves. Self-declared by the client: use only
    /// where every client able to reach the AS is trusted to declare it.
    #[serde(default)]
    pub class_id: Option<String>,
    /// The access this rule approves: reference strings (`mcp:github`),
    /// `type:NAME` for objects of a type, or `*` for anything.
    pub access: Vec<String>,
}

/// A resource server the AS knows (RFC 9767 §3.2: "The AS MAY require an RS
/// to pre-register its keys").
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RsRule {
    /// The RFC 7638 thumbprint of the RS's key.
    pub thumbprint: String,
    /// The access this RS may register and introspect (patterns as for
    /// [`AllowRule::access`]).
    pub access: Vec<String>,
}

/// The approval rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Development mode: approve every request at once (unless
    /// `require_interaction`).
    pub dev: bool,
    /// Every grant waits for a person (`--require-interaction`,
    /// `require_interaction = true`), whatever the other rules say.
    pub require_interaction: bool,
    /// In dev mode, a request offering interaction waits for it and only
    /// the others are approved at once (`--interop`: suites drive both).
    pub interact_when_offered: bool,
    /// Allowlist rules, tried in order; the first that matches the client
    /// decides.
    pub allow: Vec<AllowRule>,
    /// Issue bearer tokens when a client asks for them (§2.1.1 `bearer`).
    /// Off by default: a bearer token works for whoever holds it.
    pub allow_bearer: bool,
    /// The resource servers that may call the RS-facing API (RFC 9767). In
    /// dev mode any RS that proves its key is accepted and sees everything.
    pub resource_servers: Vec<RsRule>,
    /// OpenID providers whose ID tokens about the user are accepted
    /// (`user.assertions`, see [`super::assertion`]).
    pub issuers: Vec<super::assertion::TrustedIssuer>,
    /// Rules deciding requests whose user an ID token vouches for; checked
    /// before every other rule, dev mode included.
    pub assertion_rules: Vec<super::assertion::AssertionRule>,
}

/// What policy decided for a grant request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Approve now, with these rights for each requested token (same order as
    /// requested; a token with no approved rights is not issued).
    Approve(Vec<Vec<AccessRight>>),
    /// A person must decide.
    Interact,
    /// Refuse.
    Deny,
}

impl Policy {
    /// Decides a request from the client with `thumbprint`.
    pub(crate) fn decide(
        &self,
        request: &GrantRequest,
        thumbprint: &str,
        class_id: Option<&str>,
    ) -> Decision {
        let requested = request
            .access_token
            .as_ref()
            .map(|t| t.as_slice())
            .unwrap_or_default();
        if self.require_interaction {
            return Decision::Interact;
        }
        if self.dev && self.interact_when_offered && request.interact.is_some() {
            return Decision::Interact;
        }
        if self.dev {
            return Decision::Approve(requested.iter().map(|t| t.access.clone()).collect());
        }
        let rule = self.allow.iter().find(|r| {
            r.thumbprint.as_deref() == Some(thumbprint)
                || (r.class_id.is_some() && r.class_id.as_deref() == class_id)
        });
        let Some(rule) = rule else {
            return if request.interact.is_some() {
                Decision::Interact
            } else {
                Decision::Deny
            };
        };
        let approved: Vec<Vec<AccessRight>> = requested
            .iter()
            .map(|t| {
                t.access
                    .iter()
                    .filter(|a| rule.covers(a))
                    .cloned()
                    .collect()
            })
            .collect();
        if approved.iter().all(Vec::is_empty) {
            Decision::Deny
        } else {
            Decision::Approve(approved)
        }
    }
}

impl AllowRule {
    /// True if this rule approves `right`.
    fn covers(&self, right: &AccessRight) -> bool {
        patterns_cover(&self.access, right)
    }
}

impl Policy {
    /// The rule for the resource server whose key has `thumbprint`: in dev
    /// mode a rule that covers everything, otherwise the configured one.
    pub(crate) fn resource_server(&self, thumbprint: &str) -> Option<RsRule> {
        if self.dev {
            return Some(RsRule {
                thumbprint: thumbprint.to_owned(),
                access: vec!["*".to_owned()],
            });
        }
        self.resource_servers
            .iter()
            .find(|r| r.thumbprint == thumbprint)
            .cloned()
    }
}

impl RsRule {
    /// True if this RS may see, register and ask about `right`.
    pub(crate) fn covers(&self, right: &AccessRight) -> bool {
        patterns_cover(&self.access, right)
    }
}

/// True if one of `patterns` matches `right`: `*` matches anything; a
/// reference string must be listed; an object is matched by `type:<type>`,
/// and an `mcp` object also by `mcp:<identifier>`.
pub(crate) fn patterns_cover(patterns: &[String], right: &AccessRight) -> bool {
    if patterns.iter().any(|a| a == "*") {
        return true;
    }
    match right {
        AccessRight::Reference(r) => patterns.iter().any(|a| a == r),
        AccessRight::Object(o) => patterns.iter().any(|a| {
            a.strip_prefix("type:") == Some(o.kind.as_str())
                || (o.is_mcp()
                    && o.identifier
                        .as_deref()
                        .is_some_and(|id| a.strip_prefix("mcp:") == Some(id)))
        }),
    }
}
