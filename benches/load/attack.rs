//! The attack: idle connections that never send a byte, and slow clients
//! that dribble a request head or body one byte a second. Each reconnects
//! as soon as gnapd closes it, so the attack holds as many connections as
//! gnapd lets it. Attackers come from many loopback addresses (100
//! connections each, under the default per-address bound), so that only
//! the global bounds and the deadlines stand in their way.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// Connections per attacking address.
const PER_ADDRESS: usize = 100;
/// Attackers start spread over this long, so that their deadlines do not
/// all fall at once.
const SPREAD_MS: u64 = 10_000;

#[derive(Default)]
struct Counters {
    idle: AtomicUsize,
    slow: AtomicUsize,
    closed: AtomicU64,
    failed: AtomicU64,
    measuring: AtomicBool,
    idle_low: AtomicUsize,
    slow_low: AtomicUsize,
}

/// The attack under way.
pub struct Attack {
    tasks: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
}

/// What the attack held while the agents worked.
#[derive(Default, Clone)]
pub struct Report {
    /// The fewest idle connections open at once.
    pub idle_low: usize,
    /// The fewest slow clients connected at once.
    pub slow_low: usize,
    /// Connections gnapd closed (deadlines, 408s).
    pub closed: u64,
    /// Connects that failed.
    pub failed: u64,
    /// gnapd's own counts at the end (`/metrics`): connections open,
    /// deadlines missed and connections evicted since it started.
    pub gnapd_open: u64,
    pub gnapd_timed_out: u64,
    pub gnapd_evicted: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "held at least {} idle and {} slow connections; gnapd closed {}, {} connects failed; gnapd's metrics at the end: {} open, {} deadlines missed, {} evicted",
            self.idle_low,
            self.slow_low,
            self.closed,
            self.failed,
            self.gnapd_open,
            self.gnapd_timed_out,
            self.gnapd_evicted
        )
    }
}

fn address(block: u8, i: usize) -> IpAddr {
    let j = i / PER_ADDRESS;
    IpAddr::V4(Ipv4Addr::new(
        127,
        block,
        (j / 250) as u8,
        (j % 250 + 1) as u8,
    ))
}

async fn connect(addr: SocketAddr, from: IpAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(addr).await
}

/// Connects, sends nothing, waits for gnapd to close; again.
async fn idle(addr: SocketAddr, i: usize, c: Arc<Counters>) {
    tokio::time::sleep(Duration::from_millis(i as u64 * 7919 % SPREAD_MS)).await;
    let from = address(1, i);
    let mut buf = [0u8; 512];
    loop {
        match connect(addr, from).await {
            Ok(mut stream) => {
                c.idle.fetch_add(1, Ordering::Relaxed);
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                c.idle.fetch_sub(1, Ordering::Relaxed);
                c.closed.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                c.failed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Starts a request and sends the rest one byte a second: every other
/// client dribbles its head, the others a body.
async fn slow(addr: SocketAddr, i: usize, c: Arc<Counters>) {
    tokio::time::sleep(Duration::from_millis(i as u64 * 7919 % SPREAD_MS)).await;
    let from = address(2, i);
    let (start, byte): (&[u8], &[u8]) = if i.is_multiple_of(2) {
        (b"POST /gnap HTTP/1.1\r\nHost: gnapd\r\nX-Slow: ", b"a")
    } else {
        (
            b"POST /gnap HTTP/1.1\r\nHost: gnapd\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
            b" ",
        )
    };
    let mut buf = [0u8; 512];
    loop {
        let Ok(mut stream) = connect(addr, from).await else {
            c.failed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        c.slow.fetch_add(1, Ordering::Relaxed);
        let (mut r, mut w) = stream.split();
        if w.write_all(start).await.is_ok() {
            loop {
                tokio::select! {
                    // An answer (408) or the end: gnapd let go.
                    _ = r.read(&mut buf) => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {
                        if w.write_all(byte).await.is_err() {
                            break;
                        }
                    }
                }
            }
        }
        c.slow.fetch_sub(1, Ordering::Relaxed);
        c.closed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Keeps the lowest counts seen while measuring.
async fn sample(c: Arc<Counters>) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if c.measuring.load(Ordering::Relaxed) {
            c.idle_low
                .fetch_min(c.idle.load(Ordering::Relaxed), Ordering::Relaxed);
            c.slow_low
                .fetch_min(c.slow.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}

impl Attack {
    /// `idle` idle connections and `slow` slow clients against `addr`.
    pub fn start(addr: SocketAddr, idle_n: usize, slow_n: usize) -> Self {
        let counters = Arc::new(Counters::default());
        let mut tasks = vec![tokio::spawn(sample(counters.clone()))];
        tasks.extend((0..idle_n).map(|i| tokio::spawn(idle(addr, i, counters.clone()))));
        tasks.extend((0..slow_n).map(|i| tokio::spawn(slow(addr, i, counters.clone()))));
        Self { tasks, counters }
    }

    /// From now on, the lowest counts are kept (and the counts of closes
    /// and failures start from zero).
    pub fn measure(&self) {
        let c = &self.counters;
        c.idle_low.store(usize::MAX, Ordering::Relaxed);
        c.slow_low.store(usize::MAX, Ordering::Relaxed);
        c.closed.store(0, Ordering::Relaxed);
        c.failed.store(0, Ordering::Relaxed);
        c.measuring.store(true, Ordering::Relaxed);
    }

    /// Ends the attack: what it held while measured.
    pub async fn stop(self) -> Report {
        let c = &self.counters;
        c.measuring.store(false, Ordering::Relaxed);
        let report = Report {
            idle_low: c.idle_low.load(Ordering::Relaxed),
            slow_low: c.slow_low.load(Ordering::Relaxed),
            closed: c.closed.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            ..Report::default()
        };
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        report
    }
}
