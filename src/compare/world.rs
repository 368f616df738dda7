//! Everything a scenario or an attack runs against: the gnapd instances,
//! the upstream MCP server, the counters of server-made requests.

use std::path::Path;

use super::external::process::ExternalSpec;
use super::external::{ExternalAs, OidcProvider, relay};
use super::harness::{HarnessError, Instance, InstanceSpec, free_port};
use super::probe::{Outbound, Probes};
use super::upstream::{UPSTREAMS, UpstreamServer};
use super::variant::{Scenario, Variant};

/// The running parts of one comparison.
#[derive(Debug)]
pub struct World {
    /// `--dev`: every grant approved at once (headless scenarios).
    pub auto: Instance,
    /// `--dev --require-interaction`: every grant waits for a person on
    /// the consent page.
    pub interactive: Instance,
    /// `--dev` with access tokens that live one second: the returning
    /// agent finds its token expired.
    pub short: Instance,
    /// A second AS in front of the same upstream (`--dev`): the other AS
    /// of the mix-up and cuckoo's-token attacks.
    pub other: Instance,
    /// The upstream MCP server behind all of them.
    pub upstream: UpstreamServer,
    /// Requests the servers made on their own.
    pub outbound: Outbound,
    /// The external AS and the gateways trusting it, with
    /// `--with-oidc-provider`.
    pub external: Option<External>,
}

/// node-oidc-provider and the gnapd instances whose gateways introspect
/// its tokens.
#[derive(Debug)]
pub struct External {
    /// `--dev`, with `[external_oauth_as]` naming the AS.
    pub instance: Instance,
    /// The same, at other URLs: the AS's resources whose access tokens live
    /// [`EXTERNAL_SHORT_TTL`] seconds (the returning agent's).
    pub short: Instance,
    /// The AS (stopped when dropped, after the instances: fields drop in
    /// order).
    pub provider: ExternalAs,
}

/// The gateway's client ID at the external AS's introspection endpoint.
pub const INTROSPECTOR_ID: &str = "gnapd-gateway";

/// The config every instance gets besides its upstreams: the choices the
/// report lists (`super::settings`).
pub const COMMON_CONFIG: &str = "poll_wait = 0\n";

/// The per-address rate limits a measurement run would meet from its one
/// address (every agent and the browser are 127.0.0.1: a full run sends
/// thousands of grant requests, consent pages, registrations and token
/// requests in minutes), raised on the measured instances only: an
/// instance the attack suite floods keeps gnapd's defaults.
pub const MEASUREMENT_LIMITS: &str = "grant_rate_per_address = { burst = 1000000, per_minute = 1000000 }\n\
continue_rate_per_address = { burst = 1000000, per_minute = 1000000 }\n\
page_rate_per_address = { burst = 1000000, per_minute = 1000000 }\n\
oauth_registration_rate_per_address = { burst = 1000000, per_minute = 1000000 }\n\
oauth_rate_per_address = { burst = 1000000, per_minute = 1000000 }\n";

/// The short-lived instance's token lifetimes.
pub const SHORT_LIVED: &str = "token_lifetime = 1\noauth_token_lifetime = 1\n";

/// The lifetime in seconds of the external AS's access tokens for the
/// short-lived gateway (`external_as.mjs --short-ttl`). Not 1: the
/// provider's `exp` is its floored clock plus the lifetime, so a 1 s token
/// can expire before the setup's first call; with 2 it lives more than 1 s,
/// and the returning agent's wait (the lifetime and 0.1 s) outlives it.
pub const EXTERNAL_SHORT_TTL: u32 = 2;

impl World {
    /// Starts the upstream and the instances (`exe serve`: `exe` is a
    /// gnapd binary, `std::env::current_exe()` for the command) under
    /// `work`.
    pub fn start(exe: &Path, work: &Path) -> Result<Self, HarnessError> {
        Self::start_with(exe, work, None)
    }

    /// [`Self::start`], and with `oidc` the external AS and its gateway.
    pub fn start_with(
        exe: &Path,
        work: &Path,
        oidc: Option<&OidcProvider>,
    ) -> Result<Self, HarnessError> {
        let outbound = Outbound::new();
        let upstream = UpstreamServer::start(outbound.clone())
            .map_err(|e| HarnessError(format!("upstream: {e}")))?;
        let upstreams = upstream.config();
        // The host of OAuth agents' metadata documents, before the
        // instances that must trust its CA.
        let documents = super::documents::start_shared(work, &outbound)
            .map_err(|e| HarnessError(format!("metadata documents: {e}")))?
            .config();
        let spec = |name: &str, flags: &[&str], config: &str| InstanceSpec {
            name: name.to_owned(),
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
            config: format!("{COMMON_CONFIG}{documents}{MEASUREMENT_LIMITS}{config}"),
            listen: None,
        };
        let start = |spec: InstanceSpec| Instance::start(exe, work, &spec, &upstreams);
        let auto = start(spec("auto", &["--dev"], ""))?;
        let interactive = start(spec("interactive", &["--dev", "--require-interaction"], ""))?;
        let short = start(spec("short", &["--dev"], SHORT_LIVED))?;
        let other = start(spec("other", &["--dev"], ""))?;
        let external = match oidc {
            Some(oidc) => {
                let started = start_external(oidc, work, &outbound)?;
                let mut spec_main = spec("external", &["--dev"], &started.config);
                spec_main.listen = Some(started.listen);
                let instance = start(spec_main)?;
                // Nothing in its config is short: the AS decides the
                // lifetime of the tokens for its URLs.
                let mut spec_short = spec("external_short", &["--dev"], &started.config);
                spec_short.listen = Some(started.listen_short);
                let short = start(spec_short)?;
                Some(External {
                    instance,
                    short,
                    provider: started.provider,
                })
            }
            None => None,
        };
        Ok(Self {
            auto,
            interactive,
            short,
            other,
            upstream,
            outbound,
            external,
        })
    }

    /// The instance `variant` runs `scenario` against (the one its probes
    /// measure), the one place that decides: a person approves on
    /// `interactive`, the returning agent finds its token expired on
    /// `short`, the rest runs on `auto`; the external AS's variants run on
    /// its gateways (None without them), the short-lived one for the
    /// returning agent.
    pub fn instance_for(&self, variant: Variant, scenario: Scenario) -> Option<&Instance> {
        if variant.is_external() {
            let external = self.external.as_ref()?;
            return Some(match scenario {
                Scenario::ReturningAgent => &external.short,
                _ => &external.instance,
            });
        }
        Some(match scenario {
            Scenario::PersonApproves => &self.interactive,
            Scenario::ReturningAgent => &self.short,
            _ => &self.auto,
        })
    }

    /// The instance the attack suite aims at for `variant`: `auto`, or the
    /// external gateway (None without one).
    pub fn target_of(&self, variant: Variant) -> Option<&Instance> {
        self.instance_for(variant, Scenario::SteadyState)
    }

    /// Probes for `variant` running `scenario`: its instance, and for the
    /// external AS's variants the AS's process too (its CPU is server CPU).
    pub fn probes_of(&self, variant: Variant, scenario: Scenario) -> Option<Probes> {
        let instance = self.instance_for(variant, scenario)?;
        let probes = self.probes(instance);
        Some(match (&self.external, variant.is_external()) {
            (Some(external), true) => probes.with_processes([external.provider.pid()]),
            _ => probes,
        })
    }

    /// Probes that measure `instance` (and count every server-made request).
    pub fn probes(&self, instance: &Instance) -> Probes {
        Probes::new(vec![instance.probe()], self.outbound.clone())
    }
}

/// The external AS, started, and what its gateways need.
struct StartedExternal {
    provider: ExternalAs,
    /// The `[external_oauth_as]` table for both gateways.
    config: String,
    /// Where the gateway with the AS's ordinary resources must listen.
    listen: std::net::SocketAddr,
    /// Where the gateway with its short-lived resources must listen.
    listen_short: std::net::SocketAddr,
}

/// Starts the external AS for the two gateways that will listen at ports
/// chosen now (its resources are those gateways' URLs: the second's
/// tokens live [`EXTERNAL_SHORT_TTL`] seconds), and the counting relay in
/// front of its introspection endpoint, which both gateways use.
fn start_external(
    oidc: &OidcProvider,
    work: &Path,
    outbound: &Outbound,
) -> Result<StartedExternal, HarnessError> {
    let listen = free_port().map_err(|e| HarnessError(format!("a free port: {e}")))?;
    // Held while the second is chosen, so the two ports differ.
    let held = std::net::TcpListener::bind(listen)
        .map_err(|e| HarnessError(format!("holding port {listen}: {e}")))?;
    let listen_short = free_port().map_err(|e| HarnessError(format!("a free port: {e}")))?;
    drop(held);
    let secret = crate::random::text()
        .map_err(|_| HarnessError("no randomness for the introspector's secret".into()))?;
    let urls = |at: std::net::SocketAddr| -> Vec<String> {
        UPSTREAMS
            .iter()
            .map(|(name, _)| format!("http://{at}/mcp/{name}"))
            .collect()
    };
    let spec = ExternalSpec {
        resources: urls(listen),
        short_resources: urls(listen_short),
        short_ttl: EXTERNAL_SHORT_TTL,
        introspector_id: INTROSPECTOR_ID.to_owned(),
        introspector_secret: secret.clone(),
    };
    let provider = ExternalAs::start(oidc, work, &spec)?;
    let relay = relay::start(provider.addr, outbound.clone())
        .map_err(|e| HarnessError(format!("introspection relay: {e}")))?;
    let config = format!(
        "[external_oauth_as]\nissuer = \"{}\"\nintrospection_endpoint = \"http://{relay}/token/introspection\"\nclient_id = \"{INTROSPECTOR_ID}\"\nclient_secret = \"{secret}\"\ncache_seconds = 0\n",
        provider.issuer
    );
    Ok(StartedExternal {
        provider,
        config,
        listen,
        listen_short,
    })
}
