//! Which client connections gnapd holds: at most `max` at once, and at
//! most `per_address` from one address (an IPv6 address by its /64, which
//! one subscriber usually holds whole).
//!
//! Past either bound the connection that has waited longest on its client
//! — idle, or still sending its head or body — is closed to make room, so
//! slow clients (or a flood of idle sockets) cannot keep a newcomer out:
//! they are the ones pushed out. A connection whose request is being
//! served, or whose response is being streamed (a gateway SSE stream may
//! last hours), is never pushed out; when every connection is such a one,
//! the newcomer is closed at once instead.
//!
//! The per-request bookkeeping is a few atomics on the connection's own
//! [`Conn`]; the shared table is locked only when a connection opens or
//! closes. Finding whom to push out past the global bound reads the whole
//! table, so it is done for a batch (1/64 of `max`) at a time.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;

use crate::proto::address::AddressKey;

/// Why a connection was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its address holds `per_address` connections, all busy serving.
    Address,
    /// gnapd holds `max` connections, all busy serving.
    Full,
}

/// A deadline a connection or request missed (for the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// The TLS handshake.
    Handshake,
    /// The first request head.
    Header,
    /// A pause between requests.
    Idle,
    /// A pause within a request body.
    Body,
    /// A whole request body.
    Request,
}

impl Missed {
    const ALL: [Self; 5] = [
        Self::Handshake,
        Self::Header,
        Self::Idle,
        Self::Body,
        Self::Request,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Handshake => "handshake",
            Self::Header => "header",
            Self::Idle => "idle",
            Self::Body => "body",
            Self::Request => "request",
        }
    }
}

/// One client connection's state, shared by its task and its requests.
#[derive(Debug)]
pub struct Conn {
    id: u64,
    address: AddressKey,
    /// Requests in flight: from the service call until the response body
    /// is dropped (sent, or the connection closed).
    open: AtomicUsize,
    /// Of those, requests whose body is still being received.
    reading: AtomicUsize,
    /// Requests received so far.
    requests: AtomicU64,
    /// When the connection last started waiting on its client (accepted,
    /// or its last request finished), in ms since the table's epoch.
    since: AtomicU64,
    evicted: AtomicBool,
    evict: Notify,
    idle: Notify,
    epoch: Instant,
}

impl Conn {
    /// Whether the connection only waits on its client: no request in
    /// flight, or every one still sending its body.
    pub fn waiting(&self) -> bool {
        self.reading.load(Ordering::Acquire) >= self.open.load(Ordering::Acquire)
    }

    /// Whether no request is in flight.
    pub fn idle(&self) -> bool {
        self.open.load(Ordering::Acquire) == 0
    }

    /// Whether a request ever came.
    pub fn served_any(&self) -> bool {
        self.requests.load(Ordering::Relaxed) > 0
    }

    /// Since when the connection has waited on its client.
    pub fn waiting_since(&self) -> Instant {
        self.epoch + std::time::Duration::from_millis(self.since.load(Ordering::Acquire))
    }

    /// A request arrived: in flight until the returned guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// A request's body started (`true`) or stopped being received.
    pub fn reading(&self, started: bool) {
        if started {
            self.reading.fetch_add(1, Ordering::AcqRel);
        } else {
            self.reading.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Completes when the connection must close now (pushed out).
    pub async fn evicted(&self) {
        let notified = self.evict.notified();
        if self.evicted.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }

    /// Completes when the last request in flight finishes (at once if
    /// none is).
    pub async fn became_idle(&self) {
        let notified = self.idle.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.idle() {
            return;
        }
        notified.await;
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A request in flight (see [`Conn::begin`]).
#[derive(Debug)]
pub struct InFlight(Arc<Conn>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let conn = &self.0;
        // `since` is written before the count drops, so a reader that sees
        // the connection idle sees when it became so.
        conn.since.store(conn.now_ms(), Ordering::Release);
        if conn.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            conn.idle.notify_waiters();
        }
    }
}

#[derive(Debug, Default)]
struct Table {
    by_address: HashMap<AddressKey, Vec<Arc<Conn>>>,
    total: usize,
    next_id: u64,
}

impl Table {
    fn take(&mut self, conn: &Conn) -> bool {
        let Some(list) = self.by_address.get_mut(&conn.address) else {
            return false;
        };
        let Some(i) = list.iter().position(|c| c.id == conn.id) else {
            return false;
        };
        list.swap_remove(i);
        if list.is_empty() {
            self.by_address.remove(&conn.address);
        }
        self.total -= 1;
        true
    }
}

/// The table of client connections and its counters.
#[derive(Debug)]
pub struct Admission {
    max: usize,
    per_address: usize,
    table: Mutex<Table>,
    epoch: Instant,
    accepted: AtomicU64,
    refused_address: AtomicU64,
    refused_full: AtomicU64,
    evicted_address: AtomicU64,
    evicted_full: AtomicU64,
    missed: [AtomicU64; Missed::ALL.len()],
}

/// A connection held in the table; dropping it (when the connection's task
/// ends) gives its place back.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    conn: Arc<Conn>,
}

impl Ticket {
    /// The connection's state.
    pub fn conn(&self) -> &Arc<Conn> {
        &self.conn
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.table().take(&self.conn);
    }
}

impl Admission {
    /// Client connections held, and their bytes (each entry at its fixed
    /// size; the connection's buffers are hyper's).
    pub fn size(&self) -> crate::store::TableSize {
        let held = self.table.lock().map_or(0, |t| t.total);
        crate::store::TableSize::of(held, held * std::mem::size_of::<Conn>())
    }

    /// A table of at most `max` connections, `per_address` from one
    /// address (both at least 1).
    pub fn new(max: usize, per_address: usize) -> Self {
        Self {
            max: max.max(1),
            per_address: per_address.max(1),
            table: Mutex::default(),
            epoch: Instant::now(),
            accepted: AtomicU64::new(0),
            refused_address: AtomicU64::new(0),
            refused_full: AtomicU64::new(0),
            evicted_address: AtomicU64::new(0),
            evicted_full: AtomicU64::new(0),
            missed: Default::default(),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections held now.
    pub fn open(&self) -> usize {
        self.table().total
    }

    /// Takes a connection from `peer`, pushing out the longest-waiting
    /// connection of its address, then of the whole table, where a bound
    /// is reached.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Ticket, Refused> {
        let address = AddressKey::of(peer);
        let mut pushed_out = Vec::new();
        let conn = {
            let mut table = self.table();
            let held = table.by_address.get(&address).map_or(0, Vec::len);
            if held >= self.per_address {
                let list = table.by_address.get(&address).into_iter().flatten();
                let Some(oldest) = longest_waiting(list, 1).pop() else {
                    drop(table);
                    self.refused_address.fetch_add(1, Ordering::Relaxed);
                    return Err(Refused::Address);
                };
                table.take(&oldest);
                self.evicted_address.fetch_add(1, Ordering::Relaxed);
                pushed_out.push(oldest);
            }
            if table.total >= self.max {
                let batch = (self.max / 64).max(1);
                let victims = longest_waiting(table.by_address.values().flatten(), batch);
                if victims.is_empty() {
                    drop(table);
                    // Whoever was pushed out for the address stays out:
                    // it was waiting on its client anyway.
                    evict(&pushed_out);
                    self.refused_full.fetch_add(1, Ordering::Relaxed);
                    return Err(Refused::Full);
                }
                for victim in &victims {
                    table.take(victim);
                }
                self.evicted_full
                    .fetch_add(victims.len() as u64, Ordering::Relaxed);
                pushed_out.extend(victims);
            }
            table.next_id += 1;
            let conn = Arc::new(Conn {
                id: table.next_id,
                address,
                open: AtomicUsize::new(0),
                reading: AtomicUsize::new(0),
                requests: AtomicU64::new(0),
                since: AtomicU64::new(
                    u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX),
                ),
                evicted: AtomicBool::new(false),
                evict: Notify::new(),
                idle: Notify::new(),
                epoch: self.epoch,
            });
            table
                .by_address
                .entry(address)
                .or_default()
                .push(conn.clone());
            table.total += 1;
            conn
        };
        evict(&pushed_out);
        self.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(Ticket {
            admission: self.clone(),
            conn,
        })
    }

    /// Counts a missed deadline.
    pub fn missed(&self, what: Missed) {
        if let Some(counter) = Missed::ALL
            .iter()
            .position(|m| *m == what)
            .and_then(|i| self.missed.get(i))
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The connection counters, in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP gnapd_connections_open Client connections held now.\n# TYPE gnapd_connections_open gauge\ngnapd_connections_open {}",
            self.open()
        );
        let _ = writeln!(
            out,
            "# HELP gnapd_connections_limit Most client connections held at once, in all and from one address.\n# TYPE gnapd_connections_limit gauge\ngnapd_connections_limit{{scope=\"all\"}} {}\ngnapd_connections_limit{{scope=\"address\"}} {}",
            self.max, self.per_address
        );
        let _ = writeln!(
            out,
            "# HELP gnapd_connections_accepted_total Client connections taken.\n# TYPE gnapd_connections_accepted_total counter\ngnapd_connections_accepted_total {}",
            load(&self.accepted)
        );
        let _ = writeln!(
            out,
            "# HELP gnapd_connections_refused_total Client connections closed at once: every connection of the bound was busy serving.\n# TYPE gnapd_connections_refused_total counter\ngnapd_connections_refused_total{{bound=\"address\"}} {}\ngnapd_connections_refused_total{{bound=\"all\"}} {}",
            load(&self.refused_address),
            load(&self.refused_full)
        );
        let _ = writeln!(
            out,
            "# HELP gnapd_connections_evicted_total Connections waiting on their client closed to make room for a new one.\n# TYPE gnapd_connections_evicted_total counter\ngnapd_connections_evicted_total{{bound=\"address\"}} {}\ngnapd_connections_evicted_total{{bound=\"all\"}} {}",
            load(&self.evicted_address),
            load(&self.evicted_full)
        );
        out.push_str("# HELP gnapd_connections_timed_out_total Connections and requests that missed a deadline, by deadline.\n# TYPE gnapd_connections_timed_out_total counter\n");
        for (what, counter) in Missed::ALL.iter().zip(&self.missed) {
            let _ = writeln!(
                out,
                "gnapd_connections_timed_out_total{{deadline=\"{}\"}} {}",
                what.label(),
                load(counter)
            );
        }
    }
}

fn evict(conns: &[Arc<Conn>]) {
    for conn in conns {
        conn.evicted.store(true, Ordering::Release);
        conn.evict.notify_one();
    }
}

/// Up to `n` of `conns` that wait on their client, those that have waited
/// longest.
fn longest_waiting<'a>(conns: impl Iterator<Item = &'a Arc<Conn>>, n: usize) -> Vec<Arc<Conn>> {
    let mut waiting: Vec<(u64, &Arc<Conn>)> = conns
        .filter(|c| c.waiting())
        .map(|c| (c.since.load(Ordering::Acquire), c))
        .collect();
    if waiting.len() > n {
        waiting.select_nth_unstable_by_key(n, |(since, _)| *since);
        waiting.truncate(n);
    }
    waiting.into_iter().map(|(_, c)| Arc::clone(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn past_the_address_bound_its_longest_waiting_connection_goes() {
        let table = Arc::new(Admission::new(100, 2));
        let first = table.admit(ip("192.0.2.1")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let second = table.admit(ip("192.0.2.1")).unwrap();
        let other = table.admit(ip("192.0.2.2")).unwrap();
        let third = table.admit(ip("192.0.2.1")).unwrap();
        assert!(first.conn.evicted.load(Ordering::Acquire));
        assert!(!second.conn.evicted.load(Ordering::Acquire));
        assert!(!other.conn.evicted.load(Ordering::Acquire));
        assert_eq!(table.open(), 3);
        // Both of the address's places busy serving: the newcomer is refused.
        let _busy = (second.conn.begin(), third.conn.begin());
        assert_eq!(table.admit(ip("192.0.2.1")).unwrap_err(), Refused::Address);
        assert!(table.admit(ip("192.0.2.3")).is_ok());
        drop(first);
        assert_eq!(table.open(), 3, "an evicted ticket was already taken out");
    }

    #[test]
    fn past_the_global_bound_waiting_connections_go_and_busy_ones_stay() {
        let table = Arc::new(Admission::new(3, 10));
        let serving = table.admit(ip("192.0.2.1")).unwrap();
        let _request = serving.conn.begin();
        // A request still sending its body waits on its client.
        let reading = table.admit(ip("192.0.2.2")).unwrap();
        let _slow = reading.conn.begin();
        reading.conn.reading(true);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let idle = table.admit(ip("192.0.2.3")).unwrap();
        let newcomer = table.admit(ip("192.0.2.4")).unwrap();
        assert!(
            reading.conn.evicted.load(Ordering::Acquire),
            "waited longest"
        );
        assert!(!idle.conn.evicted.load(Ordering::Acquire));
        assert!(!serving.conn.evicted.load(Ordering::Acquire));
        let _busy = (idle.conn.begin(), newcomer.conn.begin());
        assert_eq!(table.admit(ip("192.0.2.5")).unwrap_err(), Refused::Full);
        let mut text = String::new();
        table.render(&mut text);
        assert!(text.contains("gnapd_connections_refused_total{bound=\"all\"} 1"));
        assert!(text.contains("gnapd_connections_evicted_total{bound=\"all\"} 1"));
        assert!(text.contains("gnapd_connections_open 3"));
    }

    #[test]
    fn a_finished_request_marks_when_the_connection_became_idle() {
        let table = Arc::new(Admission::new(10, 10));
        let ticket = table.admit(ip("192.0.2.1")).unwrap();
        let conn = ticket.conn().clone();
        assert!(conn.idle() && conn.waiting() && !conn.served_any());
        let before = conn.waiting_since();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let request = conn.begin();
        assert!(!conn.idle() && !conn.waiting() && conn.served_any());
        drop(request);
        assert!(conn.idle() && conn.waiting_since() > before);
    }
}
