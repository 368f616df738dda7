//! Everything a scenario or an attack runs against: the gnapd instances,
//! the upstream MCP server, the counters of server-made requests.

use std::path::Path;

use super::harness::{HarnessError, Instance, InstanceSpec};
use super::probe::{Outbound, Probes};
use super::upstream::UpstreamServer;

/// The running parts of one comparison.
#[derive(Debug)]
pub struct World {
    /// `--dev`: every grant approved at once (headless scenarios).
    pub auto: Instance,
    /// `--dev --require-interaction`: every grant waits for a person on
    /// the consent page.
    pub interactive: Instance,
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

impl World {
    /// Starts the upstream and the instances under `work`.
    pub fn start(work: &Path) -> Result<Self, HarnessError> {
        let outbound = Outbound::new();
        let upstream = UpstreamServer::start(outbound.clone())
            .map_err(|e| HarnessError(format!("upstream: {e}")))?;
        let upstreams = upstream.config();
        let spec = |name: &str, flags: &[&str]| InstanceSpec {
            name: name.to_owned(),
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
            config: COMMON_CONFIG.to_owned(),
        };
        let auto = Instance::start(work, &spec("auto", &["--dev"]), &upstreams)?;
        let interactive = Instance::start(
            work,
            &spec("interactive", &["--dev", "--require-interaction"]),
            &upstreams,
        )?;
        let other = Instance::start(work, &spec("other", &["--dev"]), &upstreams)?;
        Ok(Self {
            auto,
            interactive,
            other,
            upstream,
            outbound,
        })
    }

    /// Probes that measure `instance` (and count every server-made request).
    pub fn probes(&self, instance: &Instance) -> Probes {
        Probes::new(vec![instance.probe()], self.outbound.clone())
    }
}
