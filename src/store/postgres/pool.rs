//! A fixed set of PostgreSQL connections, each on a thread of its own.
//!
//! The `Store` trait is synchronous and is called from tokio worker threads
//! (the AS's handlers run inside `store::deferring` on the runtime).
//! `postgres::Client` blocks on a runtime of its own, and blocking on one
//! runtime from inside another's thread panics. So no store call touches a
//! client directly: it sends a job to whichever connection thread is free
//! (one shared queue) and waits on a std channel for the answer. The
//! hand-off costs two thread wake-ups per call (spec-notes/store.md has the
//! measured round trip).
//!
//! A connection that broke (the server restarted) is opened again before
//! the next job it takes; a job that finds no connection fails with
//! [`StoreError::Backend`] and the caller answers a 500-class error.
//!
//! No call waits on the database without bound: connecting gives up after
//! [`CONNECT_TIMEOUT`] unless the conninfo says otherwise, and a session
//! whose conninfo sets no `statement_timeout` gets [`STATEMENT_TIMEOUT`]
//! (a statement queued behind a lock that long is a fault, answered as
//! one, never a request that hangs).

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::{Client, Config};

use super::prepared::Conn;
use super::tls::Connector;

use super::sql::connect_failed;
use crate::store::StoreError;

/// How long a connection may take to open, unless the conninfo says.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a statement may run, unless the conninfo's options say.
const STATEMENT_TIMEOUT: &str = "30s";

/// What a connection thread runs: given its connection (or why there is
/// none), it answers on a channel of its own.
type Job = Box<dyn FnOnce(Result<&mut Conn, StoreError>) + Send>;

/// The connection threads and the queue they take jobs from.
pub(super) struct Pool {
    jobs: Mutex<Option<Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Pool {
    /// Opens `size` connections to the database `config` names, each on its
    /// thread, over TLS as `tls` says; fails if any cannot be opened now.
    pub(super) fn open(config: &Config, tls: &Connector, size: usize) -> Result<Self, StoreError> {
        let mut config = config.clone();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut threads = Vec::with_capacity(size);
        let mut opened = Vec::with_capacity(size);
        for n in 0..size {
            let (ready, is_ready) = mpsc::sync_channel(1);
            let config = config.clone();
            let tls = tls.clone();
            let queue = queue.clone();
            let thread = std::thread::Builder::new()
                .name(format!("gnapd-postgres-{n}"))
                .spawn(move || {
                    let client = match connect(&config, &tls) {
                        Ok(client) => {
                            let _ = ready.send(Ok(()));
                            Some(Conn::new(client))
                        }
                        Err(e) => {
                            let _ = ready.send(Err(connect_failed("connecting", &e)));
                            return;
                        }
                    };
                    serve(&config, &tls, client, &queue);
                })
                .map_err(|e| {
                    StoreError::Backend(format!("cannot start a PostgreSQL connection thread: {e}"))
                })?;
            threads.push(thread);
            opened.push(is_ready);
        }
        let pool = Self {
            jobs: Mutex::new(Some(jobs)),
            threads: Mutex::new(threads),
        };
        for is_ready in opened {
            let outcome = is_ready.recv().unwrap_or_else(|_| {
                Err(StoreError::Backend(
                    "a PostgreSQL connection thread died while connecting".into(),
                ))
            });
            if let Err(e) = outcome {
                pool.close();
                return Err(e);
            }
        }
        Ok(pool)
    }

    /// Runs `work` on a free connection and returns what it returned.
    /// `work` owns what it needs (`'static`): the caller's borrowed
    /// arguments are encoded or copied before the call.
    pub(super) fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Conn) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |client| {
            let outcome = client.and_then(work);
            let _ = answer.send(outcome);
        });
        let sender = self
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| StoreError::Backend("the PostgreSQL store is closed".into()))?;
        sender
            .send(job)
            .map_err(|_| StoreError::Backend("no PostgreSQL connection thread is left".into()))?;
        off_the_worker(|| answered.recv()).map_err(|_| {
            StoreError::Backend("a PostgreSQL connection thread died during a call".into())
        })?
    }

    /// Lets every thread finish its job and close its connection. Calls
    /// after this fail; a second close does nothing.
    pub(super) fn close(&self) {
        drop(
            self.jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.close();
    }
}

/// A connection thread's loop: takes jobs until the queue closes.
fn serve(config: &Config, tls: &Connector, conn: Option<Conn>, queue: &Mutex<Receiver<Job>>) {
    let mut client = conn;
    loop {
        let job = {
            let queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        if client
            .as_ref()
            .is_none_or(|conn| Client::is_closed(&conn.client))
        {
            client = None;
            match connect(config, tls) {
                Ok(fresh) => client = Some(Conn::new(fresh)),
                Err(e) => {
                    run_guarded(job, Err(connect_failed("reconnecting", &e)));
                    continue;
                }
            }
        }
        match client.as_mut() {
            Some(connection) => run_guarded(job, Ok(connection)),
            None => run_guarded(
                job,
                Err(StoreError::Backend("no PostgreSQL connection".into())),
            ),
        }
    }
}

/// A new connection, with a statement timeout unless the conninfo set one.
pub(super) fn connect(config: &Config, tls: &Connector) -> Result<Client, postgres::Error> {
    let mut client = config.connect(tls.clone())?;
    client.execute(
        "SELECT set_config('statement_timeout', $1, false)
         WHERE current_setting('statement_timeout') = '0'",
        &[&STATEMENT_TIMEOUT],
    )?;
    Ok(client)
}

/// Runs a job; a panic in it drops its answer channel (its caller then
/// gets an error) instead of taking the connection thread down with it.
/// Runs `wait` (a wait for the database) with the current thread's tokio
/// worker handed to another thread first, when it is one. A commit waits
/// for its WAL flush, milliseconds on this machine's disk; a worker blocked
/// that long holds back every other request queued on it, so a node served
/// about as many requests at once as it had workers (2 here), whatever its
/// connections. Elsewhere (a current-thread runtime, a plain thread, a
/// blocking-pool thread) it just waits.
fn off_the_worker<T>(wait: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}

fn run_guarded(job: Job, client: Result<&mut Conn, StoreError>) {
    let _ = std::panic::catch_unwind(AssertUnwindSafe(move || job(client)));
}
