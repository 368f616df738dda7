//! The choices every number depends on, written into the report as
//! sentences: what a reader needs to reproduce or to discount a figure.

use std::collections::BTreeMap;

use super::report::Settings;
use super::world::{EXTERNAL_SHORT_TTL, SHORT_LIVED};

/// The settings of a run of `runs` runs and `calls` steady-state calls;
/// `external`: node-oidc-provider ran as the third column's AS.
pub fn settings(runs: u32, calls: u32, external: bool) -> Settings {
    let choices = [
        (
            "same-server",
            "One gnapd binary serves GNAP, the OAuth face and the MCP gateway in one process per instance: the same policy, store, HTTP stack, upstream and credential set for every variant.",
        ),
        (
            "instances",
            "Four instances on fresh data dirs: `--dev` (approves at once: scenarios 1, 3-6), `--dev --require-interaction` (a person on the consent page: scenario 2), `--dev` with 1 s token lifetimes (scenario 7), and a second `--dev` AS for the mix-up and cuckoo's-token attacks.",
        ),
        (
            "store",
            "sled 0.34.7 on disk; an answer leaves only after what it reports is on disk (group commit), on both protocols.",
        ),
        (
            "token-lifetimes",
            "GNAP access tokens 3600 s, OAuth access tokens 900 s (the defaults); scenario 7's instance: 1 s for both.",
        ),
        (
            "dpop-nonce",
            "No DPoP server nonce: gnapd does not send `DPoP-Nonce`. A nonce would add a round trip to the first token request and to the first call at each resource server.",
        ),
        (
            "consent-decider",
            "In development mode with no login configured, whoever holds the consent link decides (the page says so). A signed-in person would add the same sign-in exchanges to both protocols, so none is made.",
        ),
        (
            "http",
            "HTTP/1.1 on loopback, no TLS, TCP_NODELAY, one keep-alive connection per origin per party (agent, browser). The only TLS is the client ID metadata document, which gnapd fetches over https from the tool.",
        ),
        (
            "client",
            "One Rust client drives every variant on one thread (a current-thread tokio runtime); its CPU is that thread's. Keys are generated inside the first measured step.",
        ),
        (
            "cpu",
            "CPU time is the scheduler's (`/proc/<pid>/task/*/schedstat`, nanoseconds), every thread of the measured instance, sled's flusher included; the client's is its thread's. Scrapes of counters and state between steps are outside every step's window.",
        ),
        (
            "interleaving",
            "Within each scenario, every run runs every variant once, in an order rotated by one each run, so drift on the machine spreads over all variants. Before the measured runs of a scenario, every variant runs it once unmeasured (warm-up: first connections, lazily opened credential sets and caches); a failed warm-up is reported as a failure.",
        ),
        (
            "rate-limits",
            "Every request of a run comes from 127.0.0.1, so the measured instances raise gnapd's per-address rate limits (grant and continuation requests, consent pages, OAuth endpoints, registrations) out of reach; the flooding attack's instances keep the defaults.",
        ),
        (
            "bytes",
            "Bytes are counted on the client's sockets: request line and headers as written, response status line and headers as hyper's server writes them, bodies with any chunk framing.",
        ),
    ];
    let mut map: BTreeMap<String, String> = choices
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    if external {
        map.extend(
            EXTERNAL
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        map.insert(
            "external-returning-agent".to_owned(),
            format!(
                "Scenario 7 runs against the sixth instance (`external_short`): node-oidc-provider gives access tokens for its resources a lifetime of {EXTERNAL_SHORT_TTL} s (external_as.mjs --short-ttl; its exp is the provider's clock in whole seconds plus the lifetime, so 1 s could expire before the setup's first call), refresh tokens the provider's default. The agent stays away that lifetime plus 0.1 s; its call is refused (401) because the introspection says the token is inactive; it refreshes at node-oidc-provider (the refresh token rotates) and calls again."
            ),
        );
    }
    map.insert(
        "short-lived-instance-config".to_owned(),
        SHORT_LIVED.trim().replace('\n', "; "),
    );
    Settings {
        runs,
        calls,
        choices: map,
    }
}

/// The choices of the external AS's column (`--with-oidc-provider`).
const EXTERNAL: [(&str, &str); 8] = [
    (
        "external-as",
        "node-oidc-provider (tests/interop/oidc/external_as.mjs, its versions in environment.peers) is the AS of the oidc-provider-* variants: open RFC 7591 registration, authorization code with PKCE S256, DPoP without a server nonce, RFC 8707 resources with opaque access tokens (the provider's default lifetimes: access 3600 s; see external-returning-agent for the short-lived gateway's), refresh tokens rotating on every use, RFC 7009 revocation, its in-memory adapter. A fifth gnapd instance (`external`, `--dev`, the common config) fronts the same upstreams, and a sixth (`external_short`, the same config, other URLs: the returning agent's) too; their `[external_oauth_as]` names the AS and introspects every call (RFC 7662, client_secret_basic, cache_seconds = 0, so a revocation is seen on the next call). Its resource metadata lists gnapd's own issuer first and the external one second; the agent, set up to use the external AS, takes the first issuer on another origin than the gateway.",
    ),
    (
        "external-headless-first-call",
        "Not applicable to the oidc-provider-* variants: node-oidc-provider has no policy that approves an authorization-code request without a person (devInteractions always shows its sign-in and consent forms), and its column adds no client_credentials variant. Scenario 2 runs the same flow with the person's steps measured.",
    ),
    (
        "external-person",
        "At node-oidc-provider the person signs in (devInteractions: any name, any password) and then consents, on two forms: two person actions, measured as the steps `sign-in` and `consent` (the consent step compares with gnapd's). gnapd's consent page asks for no sign-in in development mode (see consent-decider). The browser keeps the provider's session cookie, so a later authorization by the same agent (step-up) shows the consent form only. In the setup of the other scenarios the same steps are made, unmeasured.",
    ),
    (
        "external-cpu",
        "Server CPU for the oidc-provider-* variants is the external gnapd instance's (`external`, or `external_short` for scenario 7; every thread) plus the node process's (every thread: the event loop, libuv's pool, V8's compiler and garbage collector), read the same way.",
    ),
    (
        "external-crypto",
        "Server crypto counts for the oidc-provider-* variants are the gnapd instance's only (the DPoP proof it checks at the gateway): node's signing and hashing are not observable from outside, so they are left out, not estimated.",
    ),
    (
        "external-introspection",
        "Each introspection the gateway makes is counted as a server-made request (`introspection`) by a relay in the tool, on a thread of its own, in front of the AS's introspection endpoint: the gateway is configured with the relay's URL, and the relay passes each request and answer through unchanged (one kept-alive connection to the AS per connection from the gateway). The relay adds a loopback hop to every introspection; its CPU is neither the client's nor a server's.",
    ),
    (
        "external-state",
        "State created on node's side is not observable (the provider's in-memory adapter): state numbers for the oidc-provider-* variants are the gnapd instance's only (its MCP sessions), and the registration flood against the external AS is judged by its answers.",
    ),
    (
        "external-revocation",
        "Revocation is RFC 7009 at node-oidc-provider (the public client authenticating by client_id), of the access token; the gateway sees it at the next call's introspection.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_external_returning_agent_choice_states_the_short_lifetime() {
        let with_external = settings(1, 1, true);
        let text = &with_external.choices["external-returning-agent"];
        assert!(
            text.contains(&format!("lifetime of {EXTERNAL_SHORT_TTL} s")),
            "{text}"
        );
        assert!(!text.contains("Not applicable"), "{text}");
        assert!(
            !settings(1, 1, false)
                .choices
                .contains_key("external-returning-agent")
        );
    }
}
