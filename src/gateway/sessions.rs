//! MCP sessions bound to the agent key and credential set that opened them.
//! An `Mcp-Session-Id` is no credential (MCP says so), and every agent
//! reaches the upstream with the same upstream credential: unbound, any
//! token holder could join or end another agent's session by replaying its
//! id. An id this key and set did not open is 404 ("start a new session").
//! The table is in memory and bounded twice ([`Bounds`]) so that no agent's
//! traffic makes it forget another agent's live session; an idle session is
//! found through an index by last use (to within [`GRANULARITY`]), never by
//! scanning the table.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Bounds on the session table (`[sessions]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Most sessions remembered at once.
    pub max: usize,
    /// Most sessions one agent key holds at once, across upstreams.
    pub per_key: usize,
    /// A session unused for this long may give its place to a new one
    /// when the table is full.
    pub idle: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            max: 100_000,
            per_key: 1_000,
            idle: Duration::from_secs(60 * 60),
        }
    }
}

/// The `[sessions]` table as the file writes it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsFile {
    /// `max = 100000`
    pub max: Option<usize>,
    /// `per_key = 1000`
    pub per_key: Option<usize>,
    /// `idle = 3600` (seconds)
    pub idle: Option<u64>,
}

impl Bounds {
    /// The bounds `file` sets over the defaults (each positive).
    pub(crate) fn from_file(file: &SessionsFile) -> Result<Self, ZeroBound> {
        let defaults = Self::default();
        if file.max == Some(0) || file.per_key == Some(0) || file.idle == Some(0) {
            return Err(ZeroBound);
        }
        Ok(Self {
            max: file.max.unwrap_or(defaults.max),
            per_key: file.per_key.unwrap_or(defaults.per_key),
            idle: file.idle.map_or(defaults.idle, Duration::from_secs),
        })
    }
}

/// A session bound of zero in the config, which would refuse every session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sessions max, per_key and idle must be positive")]
pub(crate) struct ZeroBound;

/// Who opened a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    /// The agent key's thumbprint.
    pub thumbprint: String,
    /// The credential set the session's calls are made with, if any.
    pub credential_set: Option<String>,
}

/// How stale a session's place in the idle index may be.
pub(crate) const GRANULARITY: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Entry {
    owner: Owner,
    /// Its place in the idle index: (when it was last used, to within
    /// [`GRANULARITY`]; its number).
    indexed: (Instant, u64),
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
    /// Sessions by when they were last used (to within [`GRANULARITY`]):
    /// the first is the one unused longest.
    idle_index: BTreeMap<(Instant, u64), Key>,
    next: u64,
}

impl Table {
    fn remove(&mut self, key: &Key) {
        if let Some(entry) = self.entries.remove(key) {
            self.idle_index.remove(&entry.indexed);
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

    fn holds(&self, thumbprint: &str) -> usize {
        self.by_key.get(thumbprint).map_or(0, |(_, live)| *live)
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

    /// Forgets the session unused longest, if it was unused for `idle`
    /// (its index time may be up to [`GRANULARITY`] behind its last use).
    fn forget_one_idle(&mut self, now: Instant, idle: Duration) -> bool {
        let Some((&(stamp, _), key)) = self.idle_index.first_key_value() else {
            return false;
        };
        if now.saturating_duration_since(stamp) < idle + GRANULARITY {
            return false;
        }
        let key = key.clone();
        self.remove(&key);
        true
    }

    /// Whether a session `thumbprint` opens may be recorded now, making
    /// room for it where the bounds allow: its key's own oldest, else an
    /// idle session, goes. `false`: the table is full of other agents'
    /// live sessions.
    fn make_room(&mut self, thumbprint: &str, now: Instant, bounds: &Bounds) -> Room {
        let own = self.holds(thumbprint);
        if own >= bounds.per_key {
            self.forget_oldest_of(thumbprint);
            return Room::OwnOldest;
        }
        if self.entries.len() < bounds.max {
            return Room::Free;
        }
        if own > 0 {
            self.forget_oldest_of(thumbprint);
            return Room::OwnOldest;
        }
        if self.forget_one_idle(now, bounds.idle) {
            return Room::Idle;
        }
        Room::Full
    }
}

/// How room was made for a new session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Room {
    Free,
    OwnOldest,
    Idle,
    Full,
}

/// Session id → owner, per upstream.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    table: Mutex<Table>,
    bounds: Bounds,
    forgot_own: AtomicU64,
    forgot_idle: AtomicU64,
    refused: AtomicU64,
}

impl Sessions {
    /// Sessions remembered, and their bytes: upstream, session id, owner
    /// (thumbprint, credential set) and place in the idle index.
    pub(crate) fn size(&self) -> crate::store::TableSize {
        let mut size = crate::store::TableSize::default();
        if let Ok(table) = self.table.lock() {
            for ((upstream, id), entry) in &table.entries {
                let owner = entry.owner.thumbprint.len()
                    + entry.owner.credential_set.as_ref().map_or(0, String::len);
                size.add(upstream.len() + id.len(), owner + 16);
            }
        }
        size
    }

    /// An empty table under `bounds`.
    pub(crate) fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            ..Self::default()
        }
    }

    /// May `owner` use `session` at `upstream`? Marks it used if so.
    pub(crate) fn check(
        &self,
        upstream: &str,
        session: &str,
        owner: &Owner,
        now: Instant,
    ) -> Result<(), SessionRefusal> {
        let mut table = self.table.lock().map_err(|_| SessionRefusal::Unknown)?;
        let Table {
            entries,
            idle_index,
            ..
        } = &mut *table;
        let key = (upstream.to_owned(), session.to_owned());
        let entry = entries.get_mut(&key).ok_or(SessionRefusal::Unknown)?;
        if entry.owner != *owner {
            return Err(SessionRefusal::Foreign);
        }
        if now.saturating_duration_since(entry.indexed.0) >= GRANULARITY {
            idle_index.remove(&entry.indexed);
            entry.indexed.0 = now;
            idle_index.insert(entry.indexed, key);
        }
        Ok(())
    }

    /// Whether a session `owner` opens now would be recorded (making room
    /// for it if an idle one can go): asked before an `initialize` is
    /// forwarded, so that a full table refuses it rather than record a
    /// session its agent could not use.
    pub(crate) fn has_room(&self, owner: &Owner, now: Instant) -> bool {
        let Ok(mut table) = self.table.lock() else {
            return false;
        };
        if table.entries.len() < self.bounds.max || table.holds(&owner.thumbprint) > 0 {
            return true;
        }
        if table.forget_one_idle(now, self.bounds.idle) {
            self.forgot_idle.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Records that `owner` opened `session` at `upstream`; `false` if the
    /// table is full of other agents' live sessions (the session is then
    /// unknown here, and its id answered 404). An id already held by
    /// another owner keeps its first owner: an upstream that hands out the
    /// same id twice must not let the second agent into the first one's
    /// conversation.
    pub(crate) fn open(&self, upstream: &str, session: &str, owner: Owner, now: Instant) -> bool {
        let Ok(mut table) = self.table.lock() else {
            return false;
        };
        let key = (upstream.to_owned(), session.to_owned());
        if table.entries.contains_key(&key) {
            return table.entries.get(&key).is_some_and(|e| e.owner == owner);
        }
        let thumbprint = owner.thumbprint.clone();
        match table.make_room(&thumbprint, now, &self.bounds) {
            Room::Free => {}
            Room::OwnOldest => {
                self.forgot_own.fetch_add(1, Ordering::Relaxed);
            }
            Room::Idle => {
                self.forgot_idle.fetch_add(1, Ordering::Relaxed);
            }
            Room::Full => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        }
        table.next += 1;
        let indexed = (now, table.next);
        table.entries.insert(key.clone(), Entry { owner, indexed });
        table.idle_index.insert(indexed, key.clone());
        let per_key = self.bounds.per_key;
        let Table {
            entries, by_key, ..
        } = &mut *table;
        let (order, live) = by_key.entry(thumbprint.clone()).or_default();
        order.push_back(key);
        *live += 1;
        // Ids ended by their agents stay in the order until met; keep it
        // from growing past twice the live ones.
        if order.len() > 2 * per_key.max(*live) {
            order.retain(|k| {
                entries
                    .get(k)
                    .is_some_and(|e| e.owner.thumbprint == thumbprint)
            });
        }
        true
    }

    /// Forgets `session` (after the agent ended it).
    pub(crate) fn end(&self, upstream: &str, session: &str) {
        if let Ok(mut table) = self.table.lock() {
            table.remove(&(upstream.to_owned(), session.to_owned()));
        }
    }

    /// How many sessions are remembered.
    pub(crate) fn len(&self) -> usize {
        self.table.lock().map(|t| t.entries.len()).unwrap_or(0)
    }

    /// Whether none is.
    /// The table's counters, in the Prometheus text format.
    pub(crate) fn render(&self, out: &mut String) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP gnapd_gateway_sessions MCP sessions the gateway remembers (HTTP upstreams).\n# TYPE gnapd_gateway_sessions gauge\ngnapd_gateway_sessions {}",
            self.len()
        );
        let _ = writeln!(
            out,
            "# HELP gnapd_gateway_sessions_forgotten_total Sessions forgotten to make room: the opening key's own oldest, or one unused for the idle time.\n# TYPE gnapd_gateway_sessions_forgotten_total counter\ngnapd_gateway_sessions_forgotten_total{{why=\"own\"}} {}\ngnapd_gateway_sessions_forgotten_total{{why=\"idle\"}} {}",
            load(&self.forgot_own),
            load(&self.forgot_idle)
        );
        let _ = writeln!(
            out,
            "# HELP gnapd_gateway_sessions_refused_total New sessions refused: the table was full of other agents' live sessions.\n# TYPE gnapd_gateway_sessions_refused_total counter\ngnapd_gateway_sessions_refused_total {}",
            load(&self.refused)
        );
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
        for i in 0..Bounds::default().per_key {
            s.open("gh", &format!("a{i}"), owner("A", None), now);
        }
        assert_eq!(s.len(), Bounds::default().per_key + 1);
        s.open("other", "a-new", owner("A", None), now);
        assert_eq!(s.len(), Bounds::default().per_key + 1);
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
        for i in 0..3 * Bounds::default().per_key {
            let id = format!("short{i}");
            s.open("gh", &id, owner("A", None), now);
            s.end("gh", &id);
        }
        for i in 1..Bounds::default().per_key {
            s.open("gh", &format!("live{i}"), owner("A", None), now);
        }
        assert_eq!(s.len(), Bounds::default().per_key);
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
        assert_eq!(s.len(), 0);
        assert_eq!(
            s.check("gh", "x", &owner("A", None), now),
            Err(SessionRefusal::Unknown)
        );
    }

    fn small(max: usize) -> Sessions {
        Sessions::new(Bounds {
            max,
            per_key: 100,
            idle: Duration::from_secs(60),
        })
    }

    #[test]
    fn a_full_table_refuses_a_key_without_sessions_rather_than_forget_a_live_one() {
        let s = small(2);
        let now = Instant::now();
        assert!(s.open("gh", "a", owner("A", None), now));
        assert!(s.open("gh", "b", owner("B", None), now));
        assert!(!s.has_room(&owner("C", None), now));
        assert!(!s.open("gh", "c", owner("C", None), now));
        assert_eq!(
            s.check("gh", "c", &owner("C", None), now),
            Err(SessionRefusal::Unknown)
        );
        for (id, key) in [("a", "A"), ("b", "B")] {
            assert_eq!(s.check("gh", id, &owner(key, None), now), Ok(()));
        }
    }

    #[test]
    fn in_a_full_table_a_key_replaces_its_own_oldest() {
        let s = small(3);
        let now = Instant::now();
        s.open("gh", "b", owner("B", None), now);
        s.open("gh", "a1", owner("A", None), now);
        s.open("gh", "a2", owner("A", None), now);
        assert!(s.has_room(&owner("A", None), now));
        assert!(s.open("gh", "a3", owner("A", None), now));
        assert_eq!(s.len(), 3);
        assert_eq!(
            s.check("gh", "a1", &owner("A", None), now),
            Err(SessionRefusal::Unknown)
        );
        assert_eq!(s.check("gh", "a2", &owner("A", None), now), Ok(()));
        assert_eq!(s.check("gh", "b", &owner("B", None), now), Ok(()));
    }

    #[test]
    fn a_session_unused_for_the_idle_time_gives_its_place_and_one_in_use_keeps_it() {
        let s = small(2);
        let start = Instant::now();
        s.open("gh", "a", owner("A", None), start);
        s.open("gh", "b", owner("B", None), start);
        // B keeps using its session; A's lies unused.
        let later = start + Duration::from_secs(40);
        assert_eq!(s.check("gh", "b", &owner("B", None), later), Ok(()));
        let not_yet = start + Duration::from_secs(60);
        assert!(!s.open("gh", "c", owner("C", None), not_yet));
        let idle = start + Duration::from_secs(62);
        assert!(s.open("gh", "c", owner("C", None), idle));
        assert_eq!(
            s.check("gh", "a", &owner("A", None), idle),
            Err(SessionRefusal::Unknown)
        );
        assert_eq!(s.check("gh", "b", &owner("B", None), idle), Ok(()));
        // B's session, used at 40 s, is not idle at 62 s.
        assert!(!s.open("gh", "d", owner("D", None), idle));
    }

    #[test]
    fn the_metrics_count_what_was_forgotten_and_refused() {
        let s = small(1);
        let now = Instant::now();
        s.open("gh", "a1", owner("A", None), now);
        s.open("gh", "a2", owner("A", None), now);
        s.open("gh", "b", owner("B", None), now);
        s.open("gh", "c", owner("C", None), now + Duration::from_secs(62));
        let mut out = String::new();
        s.render(&mut out);
        for line in [
            "gnapd_gateway_sessions 1",
            "gnapd_gateway_sessions_forgotten_total{why=\"own\"} 1",
            "gnapd_gateway_sessions_forgotten_total{why=\"idle\"} 1",
            "gnapd_gateway_sessions_refused_total 1",
        ] {
            assert!(out.lines().any(|l| l == line), "no `{line}` in {out}");
        }
    }

    #[test]
    fn zero_bounds_are_refused() {
        assert!(
            Bounds::from_file(&SessionsFile {
                max: Some(0),
                ..SessionsFile::default()
            })
            .is_err()
        );
        assert_eq!(
            Bounds::from_file(&SessionsFile {
                per_key: Some(5),
                ..SessionsFile::default()
            }),
            Ok(Bounds {
                per_key: 5,
                ..Bounds::default()
            })
        );
    }
}
