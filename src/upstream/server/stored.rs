//! An upstream added with `gnapd upstream add`, as the store keeps it and
//! as every node builds it back (at start, and when another node changed
//! the stored ones).

use super::*;
use crate::store::{UpstreamRecord, UpstreamTransport};

impl Upstream {
    /// The upstream a stored record describes: no configured credential
    /// (an added upstream's credential is its enterprise-held set) and no
    /// enterprise set yet (the caller looks it up).
    pub fn from_record(record: &UpstreamRecord) -> Result<Self, UpstreamError> {
        match &record.transport {
            UpstreamTransport::Http { url } => Self::new(&record.name, url, Credential::None),
            UpstreamTransport::Stdio { command, args } => Self::stdio(
                &record.name,
                StdioCommand {
                    command: command.clone(),
                    args: args.clone(),
                    cwd: None,
                    env: BTreeMap::new(),
                },
                Credential::None,
            ),
        }
    }

    /// How the store keeps this upstream's transport.
    pub fn stored_transport(&self) -> UpstreamTransport {
        match &self.transport {
            Transport::Http { url } => UpstreamTransport::Http { url: url.clone() },
            Transport::Stdio(command) => UpstreamTransport::Stdio {
                command: command.command.clone(),
                args: command.args.clone(),
            },
        }
    }
}
