//! `[connections]`: how many client connections gnapd holds, and how long
//! a client may take to send what it sends.
//!
//! ```toml
//! [connections]
//! max = 16384              # all at once (never more than 3/4 of the descriptor limit)
//! per_address = 256        # from one address (an IPv6 /64)
//! header_timeout = 10      # s: a connection's first request head, and each next one on HTTP/1.1
//! idle_timeout = 60        # s: no request in flight (HTTP/2)
//! body_timeout = 10        # s: the longest pause within a request body
//! request_timeout = 30     # s: a whole request body, from its head
//! h2_keepalive_interval = 20   # s between HTTP/2 PINGs (0: none)
//! h2_keepalive_timeout = 20    # s a PING may go unanswered before the connection closes
//! h2_max_streams = 100     # concurrent requests on one HTTP/2 connection
//! ```
//!
//! Nothing here bounds a response: the gateway's SSE streams run as long as
//! the upstream keeps them open.

use std::time::Duration;

use serde::Deserialize;

/// The `[connections]` table as the file writes it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionsFile {
    /// Most connections at once.
    pub max: Option<usize>,
    /// Most connections from one address.
    pub per_address: Option<usize>,
    /// Seconds for a request head.
    pub header_timeout: Option<u64>,
    /// Seconds a connection may hold no request.
    pub idle_timeout: Option<u64>,
    /// Longest pause within a request body, seconds.
    pub body_timeout: Option<u64>,
    /// Seconds for a whole request body.
    pub request_timeout: Option<u64>,
    /// Seconds between HTTP/2 PINGs; 0 turns them off.
    pub h2_keepalive_interval: Option<u64>,
    /// Seconds an HTTP/2 PING may go unanswered.
    pub h2_keepalive_timeout: Option<u64>,
    /// Concurrent streams on one HTTP/2 connection.
    pub h2_max_streams: Option<u32>,
}

/// The connection bounds and request deadlines in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections at once, if configured; else [`DEFAULT_MAX`].
    /// Either way at most 3/4 of the descriptor limit ([`Self::max_for`]).
    pub max: Option<usize>,
    /// Most connections from one address.
    pub per_address: usize,
    /// A connection's first request head must arrive within this of its
    /// accept (TLS handshake included); on HTTP/1.1, each next head within
    /// this of the previous response.
    pub header_timeout: Duration,
    /// A connection with no request in flight is closed after this.
    pub idle_timeout: Duration,
    /// The longest pause within a request body.
    pub body_timeout: Duration,
    /// A request body must be whole within this of its head.
    pub request_timeout: Duration,
    /// HTTP/2 PING interval and how long an answer may take.
    pub h2_keepalive: Option<(Duration, Duration)>,
    /// Concurrent streams on one HTTP/2 connection.
    pub h2_max_streams: u32,
}

/// Connections held at once unless `max` says otherwise.
pub const DEFAULT_MAX: usize = 16_384;

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max: None,
            per_address: 256,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            h2_keepalive: Some((Duration::from_secs(20), Duration::from_secs(20))),
            h2_max_streams: 100,
        }
    }
}

/// A `[connections]` value of zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// A count.
    #[error("connections.max, per_address and h2_max_streams must be positive")]
    Counts,
    /// A timeout, by name.
    #[error("connections.{0} must be positive")]
    Zero(&'static str),
}

impl ConnectionLimits {
    /// The limits `file` sets over the defaults. Behind a trusted reverse
    /// proxy every connection comes from the proxy, so `per_address` is
    /// then off unless set.
    pub fn from_file(file: &ConnectionsFile, behind_proxy: bool) -> Result<Self, LimitsError> {
        let defaults = Self::default();
        let seconds = |name: &'static str, value: Option<u64>, default: Duration| match value {
            Some(0) => Err(LimitsError::Zero(name)),
            Some(s) => Ok(Duration::from_secs(s)),
            None => Ok(default),
        };
        if file.max == Some(0) || file.per_address == Some(0) || file.h2_max_streams == Some(0) {
            return Err(LimitsError::Counts);
        }
        let h2_keepalive = match file.h2_keepalive_interval {
            Some(0) => None,
            interval => {
                let (default_interval, default_timeout) = defaults.h2_keepalive.unwrap_or_default();
                Some((
                    interval.map_or(default_interval, Duration::from_secs),
                    seconds(
                        "h2_keepalive_timeout",
                        file.h2_keepalive_timeout,
                        default_timeout,
                    )?,
                ))
            }
        };
        Ok(Self {
            max: file.max,
            per_address: file.per_address.unwrap_or(if behind_proxy {
                usize::MAX
            } else {
                defaults.per_address
            }),
            header_timeout: seconds(
                "header_timeout",
                file.header_timeout,
                defaults.header_timeout,
            )?,
            idle_timeout: seconds("idle_timeout", file.idle_timeout, defaults.idle_timeout)?,
            body_timeout: seconds("body_timeout", file.body_timeout, defaults.body_timeout)?,
            request_timeout: seconds(
                "request_timeout",
                file.request_timeout,
                defaults.request_timeout,
            )?,
            h2_keepalive,
            h2_max_streams: file.h2_max_streams.unwrap_or(defaults.h2_max_streams),
        })
    }

    /// Most connections at once when the process may hold `descriptors`
    /// open files: the configured (or default) bound, but never more than
    /// 3/4 of them — the rest is for the store, upstream connections and
    /// stdio children's pipes, so that client connections never take the
    /// last descriptor.
    pub fn max_for(&self, descriptors: Option<u64>) -> usize {
        let wanted = self.max.unwrap_or(DEFAULT_MAX);
        match descriptors.and_then(|d| usize::try_from(d).ok()) {
            Some(d) => wanted.min(d / 4 * 3).max(1),
            None => wanted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(text: &str, behind_proxy: bool) -> Result<ConnectionLimits, String> {
        let file: ConnectionsFile = toml::from_str(text).map_err(|e| e.to_string())?;
        ConnectionLimits::from_file(&file, behind_proxy).map_err(|e| e.to_string())
    }

    #[test]
    fn connection_limits_default_and_read_the_file() {
        assert_eq!(limits("", false).unwrap(), ConnectionLimits::default());
        let set = limits(
            "max = 50\nper_address = 5\nheader_timeout = 2\nidle_timeout = 3\nbody_timeout = 4\nrequest_timeout = 6\nh2_keepalive_interval = 0\nh2_max_streams = 8\n",
            false,
        )
        .unwrap();
        assert_eq!(set.max, Some(50));
        assert_eq!(set.per_address, 5);
        assert_eq!(set.header_timeout, Duration::from_secs(2));
        assert_eq!(set.request_timeout, Duration::from_secs(6));
        assert_eq!(set.h2_keepalive, None);
        assert_eq!(set.h2_max_streams, 8);
        assert_eq!(limits("", true).unwrap().per_address, usize::MAX);
        assert_eq!(limits("per_address = 9", true).unwrap().per_address, 9);
        for bad in [
            "max = 0",
            "per_address = 0",
            "body_timeout = 0",
            "h2_keepalive_timeout = 0",
            "maximum = 3",
        ] {
            assert!(limits(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn client_connections_never_take_more_than_three_quarters_of_the_descriptors() {
        let default = ConnectionLimits::default();
        assert_eq!(default.max_for(None), DEFAULT_MAX);
        assert_eq!(default.max_for(Some(1_048_576)), DEFAULT_MAX);
        assert_eq!(default.max_for(Some(1024)), 768);
        let set = ConnectionLimits {
            max: Some(100_000),
            ..default
        };
        assert_eq!(set.max_for(Some(20_000)), 15_000);
    }
}
