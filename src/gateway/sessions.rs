//! MCP sessions bound to the agent key that opened them.
//!
//! An `Mcp-Session-Id` is an upstream's handle on a conversation, not a
//! credential, and the MCP specification says so: servers must not treat it
//! as authentication. Behind the gateway every agent's calls reach the
//! upstream with the same upstream credential, so without a binding any
//! holder of a valid token could join — or end — another agent's session by
//! replaying its id. The gateway therefore records which key (by RFC 7638
//! thumbprint) and which credential set opened each session, and answers a
//! session id it did not see opened for this key and set with 404, which
//! the MCP transport defines as "start a new session".
//!
//! The table is in memory: after a restart of the gateway the agents'
//! sessions are unknown and they re-initialize, which the transport already
//! requires clients to handle. It is bounded; sessions idle for longer than
//! [`IDLE_LIMIT`] are dropped first when it fills.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most sessions remembered at once.
pub const CAPACITY: usize = 100_000;
/// A session unused for this long may be forgotten when the table is full.
pub const IDLE_LIMIT: Duration = Duration::from_secs(24 * 60 * 60);

/// Who opened a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The agent key's thumbprint.
    pub thumbprint: String,
    /// The credential set the session's calls are made with, if any.
    pub credential_set: Option<String>,
}

#[derive(Debug)]
struct Entry {
    owner: Owner,
    last_used: Instant,
}

/// Why a session id is refused. Both read as 404 on the wire: a stranger
/// learns nothing about other agents' sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionRefusal {
    /// The gateway never saw this session opened (or forgot it).
    #[error("no such session")]
    Unknown,
    /// Another key or credential set opened it.
    #[error("no such session")]
    Foreign,
}

/// Session id → owner, per upstream.
#[derive(Debug, Default)]
pub struct Sessions {
    table: Mutex<HashMap<(String, String), Entry>>,
}

impl Sessions {
    /// May `owner` use `session` at `upstream`? Marks it used if so.
    pub fn check(
        &self,
        upstream: &str,
        session: &str,
        owner: &Owner,
        now: Instant,
    ) -> Result<(), SessionRefusal> {
        let mut table = self.table.lock().map_err(|_| SessionRefusal::Unknown)?;
        let entry = table
            .get_mut(&(upstream.to_owned(), session.to_owned()))
            .ok_or(SessionRefusal::Unknown)?;
        if entry.owner != *owner {
            return Err(SessionRefusal::Foreign);
        }
        entry.last_used = now;
        Ok(())
    }

    /// Records that `owner` opened `session` at `upstream`. An id already
    /// held by another owner keeps its first owner: an upstream that hands
    /// out the same id twice must not let the second agent into the first
    /// one's conversation.
    pub fn open(&self, upstream: &str, session: &str, owner: Owner, now: Instant) {
        let Ok(mut table) = self.table.lock() else {
            return;
        };
        if table.len() >= CAPACITY {
            table.retain(|_, e| now.saturating_duration_since(e.last_used) < IDLE_LIMIT);
            if table.len() >= CAPACITY {
                // Still full of live sessions: forget the least recently
                // used one rather than refuse new sessions.
                if let Some(oldest) = table
                    .iter()
                    .min_by_key(|(_, e)| e.last_used)
                    .map(|(k, _)| k.clone())
                {
                    table.remove(&oldest);
                }
            }
        }
        table
            .entry((upstream.to_owned(), session.to_owned()))
            .or_insert(Entry {
                owner,
                last_used: now,
            });
    }

    /// Forgets `session` (after the agent ended it).
    pub fn end(&self, upstream: &str, session: &str) {
        if let Ok(mut table) = self.table.lock() {
            table.remove(&(upstream.to_owned(), session.to_owned()));
        }
    }

    /// How many sessions are remembered.
    pub fn len(&self) -> usize {
        self.table.lock().map(|t| t.len()).unwrap_or(0)
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(key: &str, set: Option<&str>) -> Owner {
        Owner {
            thumbprint: key.into(),
            credential_set: set.map(Into::into),
        }
    }

    #[test]
    fn a_session_serves_only_the_key_and_set_that_opened_it() {
        let s = Sessions::default();
        let now = Instant::now();
        s.open("gh", "sess-1", owner("A", Some("enterprise:gh")), now);
        assert_eq!(
            s.check("gh", "sess-1", &owner("A", Some("enterprise:gh")), now),
            Ok(())
        );
        assert_eq!(
            s.check("gh", "sess-1", &owner("B", Some("enterprise:gh")), now),
            Err(SessionRefusal::Foreign)
        );
        assert_eq!(
            s.check("gh", "sess-1", &owner("A", Some("other")), now),
            Err(SessionRefusal::Foreign)
        );
        assert_eq!(
            s.check("other", "sess-1", &owner("A", Some("enterprise:gh")), now),
            Err(SessionRefusal::Unknown)
        );
        assert_eq!(
            s.check("gh", "sess-2", &owner("A", Some("enterprise:gh")), now),
            Err(SessionRefusal::Unknown)
        );
    }

    #[test]
    fn a_reissued_session_id_keeps_its_first_owner() {
        let s = Sessions::default();
        let now = Instant::now();
        s.open("gh", "x", owner("A", None), now);
        s.open("gh", "x", owner("B", None), now);
        assert_eq!(s.check("gh", "x", &owner("A", None), now), Ok(()));
        assert_eq!(
            s.check("gh", "x", &owner("B", None), now),
            Err(SessionRefusal::Foreign)
        );
    }

    #[test]
    fn an_ended_session_is_unknown() {
        let s = Sessions::default();
        let now = Instant::now();
        s.open("gh", "x", owner("A", None), now);
        s.end("gh", "x");
        assert!(s.is_empty());
        assert_eq!(
            s.check("gh", "x", &owner("A", None), now),
            Err(SessionRefusal::Unknown)
        );
    }
}
