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
//! requires clients to handle. It is bounded twice. One key holds at most
//! [`PER_KEY`] sessions: opening another forgets that key's oldest, so an
//! agent opening sessions without end only ever pushes out its own. And the
//! whole table holds [`CAPACITY`]: when it fills, sessions idle for longer
//! than [`IDLE_LIMIT`] go first, then the least recently used.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most sessions remembered at once.
pub const CAPACITY: usize = 100_000;
/// Most sessions one agent key holds at once, across upstreams.
pub const PER_KEY: usize = 1_000;
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

/// (upstream, session id).
type Key = (String, String);

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<Key, Entry>,
    /// Per key thumbprint: its sessions in the order they were opened (ids
    /// since forgotten are skipped when met), and how many are live.
    by_key: HashMap<String, (VecDeque<Key>, usize)>,
}

impl Table {
    fn remove(&mut self, key: &Key) {
        if let Some(entry) = self.entries.remove(key) {
            self.forgot(&entry.owner.thumbprint);
        }
    }

    /// One fewer live session for `thumbprint`.
    fn forgot(&mut self, thumbprint: &str) {
        if let Some((order, live)) = self.by_key.get_mut(thumbprint) {
            *live = live.saturating_sub(1);
            if *live == 0 {
                order.clear();
                self.by_key.remove(thumbprint);
            }
        }
    }

    /// Forgets the oldest live session `thumbprint` opened.
    fn forget_oldest_of(&mut self, thumbprint: &str) {
        while let Some(key) = self
            .by_key
            .get_mut(thumbprint)
            .and_then(|(order, _)| order.pop_front())
        {
            if self
                .entries
                .get(&key)
                .is_some_and(|e| e.owner.thumbprint == thumbprint)
            {
                self.remove(&key);
                return;
            }
        }
    }

    /// Makes room when the whole table is full.
    fn make_room(&mut self, now: Instant) {
        let mut idle = Vec::new();
        for (key, entry) in &self.entries {
            if now.saturating_duration_since(entry.last_used) >= IDLE_LIMIT {
                idle.push(key.clone());
            }
        }
        for key in &idle {
            self.remove(key);
        }
        if self.entries.len() >= CAPACITY {
            // Still full of live sessions: forget the least recently used
            // one rather than refuse new sessions.
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            {
                self.remove(&oldest);
            }
        }
    }
}

/// Session id → owner, per upstream.
#[derive(Debug, Default)]
pub struct Sessions {
    table: Mutex<Table>,
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
            .entries
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
        let key = (upstream.to_owned(), session.to_owned());
        if table.entries.contains_key(&key) {
            return;
        }
        if table.entries.len() >= CAPACITY {
            table.make_room(now);
        }
        let thumbprint = owner.thumbprint.clone();
        let full = table
            .by_key
            .get(&thumbprint)
            .is_some_and(|(_, live)| *live >= PER_KEY);
        if full {
            table.forget_oldest_of(&thumbprint);
        }
        table.entries.insert(
            key.clone(),
            Entry {
                owner,
                last_used: now,
            },
        );
        let Table { entries, by_key } = &mut *table;
        let (order, live) = by_key.entry(thumbprint.clone()).or_default();
        order.push_back(key);
        *live += 1;
        // Ids ended by their agents stay in the order until met; keep it
        // from growing past twice the live ones.
        if order.len() > 2 * PER_KEY {
            order.retain(|k| {
                entries
                    .get(k)
                    .is_some_and(|e| e.owner.thumbprint == thumbprint)
            });
        }
    }

    /// Forgets `session` (after the agent ended it).
    pub fn end(&self, upstream: &str, session: &str) {
        if let Ok(mut table) = self.table.lock() {
            table.remove(&(upstream.to_owned(), session.to_owned()));
        }
    }

    /// How many sessions are remembered.
    pub fn len(&self) -> usize {
        self.table.lock().map(|t| t.entries.len()).unwrap_or(0)
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
    fn a_key_holding_too_many_sessions_pushes_out_only_its_own_oldest() {
        let s = Sessions::default();
        let now = Instant::now();
        s.open("gh", "b", owner("B", None), now);
        for i in 0..PER_KEY {
            s.open("gh", &format!("a{i}"), owner("A", None), now);
        }
        assert_eq!(s.len(), PER_KEY + 1);
        s.open("other", "a-new", owner("A", None), now);
        assert_eq!(s.len(), PER_KEY + 1);
        assert_eq!(
            s.check("gh", "a0", &owner("A", None), now),
            Err(SessionRefusal::Unknown)
        );
        for (upstream, id) in [("gh", "a1"), ("other", "a-new")] {
            assert_eq!(s.check(upstream, id, &owner("A", None), now), Ok(()));
        }
        assert_eq!(s.check("gh", "b", &owner("B", None), now), Ok(()));
    }

    #[test]
    fn sessions_a_key_ended_do_not_count_against_it() {
        let s = Sessions::default();
        let now = Instant::now();
        s.open("gh", "first", owner("A", None), now);
        // Many sessions opened and ended, more than the order keeps.
        for i in 0..3 * PER_KEY {
            let id = format!("short{i}");
            s.open("gh", &id, owner("A", None), now);
            s.end("gh", &id);
        }
        for i in 1..PER_KEY {
            s.open("gh", &format!("live{i}"), owner("A", None), now);
        }
        assert_eq!(s.len(), PER_KEY);
        assert_eq!(s.check("gh", "first", &owner("A", None), now), Ok(()));
        // One more, and the first one goes.
        s.open("gh", "one-more", owner("A", None), now);
        assert_eq!(
            s.check("gh", "first", &owner("A", None), now),
            Err(SessionRefusal::Unknown)
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
