//! Everything a scenario or an attack runs against: the gnapd instances,
//! the upstream MCP server, the counters of server-made requests.

use std::path::Path;

use super::harness::{HarnessError, Instance, InstanceSpec};
use super::probe::{Outbound, Probes};
use super::upstream::UpstreamServer;
use super::variant::Scenario;

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
}

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

impl World {
    /// Starts the upstream and the instances (`exe serve`: `exe` is a
    /// gnapd binary, `std::env::current_exe()` for the command) under
    /// `work`.
    pub fn start(exe: &Path, work: &Path) -> Result<Self, HarnessError> {
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
        };
        let start = |spec: InstanceSpec| Instance::start(exe, work, &spec, &upstreams);
        let auto = start(spec("auto", &["--dev"], ""))?;
        let interactive = start(spec("interactive", &["--dev", "--require-interaction"], ""))?;
        let short = start(spec("short", &["--dev"], SHORT_LIVED))?;
        let other = start(spec("other", &["--dev"], ""))?;
        Ok(Self {
            auto,
            interactive,
            short,
            other,
            upstream,
            outbound,
        })
    }

    /// Probes that measure `instance` (and count every server-made request).
    pub fn probes(&self, instance: &Instance) -> Probes {
        Probes::new(vec![instance.probe()], self.outbound.clone())
    }

    /// The instance `scenario` runs against, for every protocol (the one
    /// its probes measure): a person approves on `interactive`, the
    /// returning agent finds its token expired on `short`.
    pub fn instance_for(&self, scenario: Scenario) -> &Instance {
        match scenario {
            Scenario::PersonApproves => &self.interactive,
            Scenario::ReturningAgent => &self.short,
            _ => &self.auto,
        }
    }
}
