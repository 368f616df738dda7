//! The choices every number depends on, written into the report as
//! sentences: what a reader needs to reproduce or to discount a figure.

use std::collections::BTreeMap;

use super::report::Settings;
use super::world::SHORT_LIVED;

/// The settings of a run of `runs` runs and `calls` steady-state calls.
pub fn settings(runs: u32, calls: u32) -> Settings {
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
