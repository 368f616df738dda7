//! Hearing of other nodes' writes: every write that retires this node's
//! record caches also sends a `NOTIFY` inside its own transaction (so it is
//! delivered only if that transaction commits, and only once its rows are
//! visible), and every node keeps one more connection that `LISTEN`s, on a
//! thread of its own, and retires its caches on each notification.
//!
//! Notifications are per database, not per schema: the payload is the
//! writer's schema, and a listener retires only for its own (two
//! deployments, or two tests, in one database do not retire each other).
//!
//! What this cannot hear of is bounded by the caches' maximum age
//! ([`super::CACHE_MAX_AGE`]): a notification lost with a broken
//! connection, or one not yet read. When the listener connects again, it
//! retires everything first, since writes may have gone unheard meanwhile.
//!
//! A second channel carries writes to upstreams and credential sets (the
//! admin commands, a person connecting a set, a refreshed set): each node's
//! gateway rebuilds its upstream registry from the store when it hears one
//! ([`Heard::Upstreams`]), and after every reconnection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator as _;
use postgres::{Client, Config};

use super::prepared::Db;
use super::sql::{Failure, connect_failed};
use super::tls::Connector;
use crate::store::StoreError;

/// The channel of writes that retire record caches.
const CHANNEL: &str = "gnapd_retire";

/// The statement a retiring write runs inside its transaction.
pub(super) const NOTIFY: &str = "SELECT pg_notify('gnapd_retire', current_schema())";

/// The channel of writes to upstreams and credential sets.
const UPSTREAMS_CHANNEL: &str = "gnapd_upstreams";

/// The statement such a write runs inside its transaction.
const NOTIFY_UPSTREAMS: &str = "SELECT pg_notify('gnapd_upstreams', current_schema())";

/// What the listener heard, for the callback it was started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Heard {
    /// A write that retires the record caches.
    Retire,
    /// A write to upstreams or credential sets.
    Upstreams,
    /// A (re)connection: anything may have been written unheard.
    Everything,
}

/// How long the listener waits for a notification before it looks whether
/// it should stop, and how often it checks that its connection is alive.
const POLL: Duration = Duration::from_millis(200);

/// How long it waits before connecting again after a failure.
const RECONNECT_DELAY: Duration = Duration::from_millis(200);

/// Sends the retiring notification inside the caller's transaction.
pub(super) fn notify<C: postgres::GenericClient>(db: &mut Db<'_, C>) -> Result<(), Failure> {
    db.execute(NOTIFY, &[])?;
    Ok(())
}

/// Tells every node, inside the caller's transaction, that upstreams or
/// credential sets changed.
pub(super) fn notify_upstreams<C: postgres::GenericClient>(
    db: &mut Db<'_, C>,
) -> Result<(), Failure> {
    db.execute(NOTIFY_UPSTREAMS, &[])?;
    Ok(())
}

/// The listening thread; stopped when dropped.
pub(super) struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Starts listening on a connection of its own to the database
    /// `config` names, and returns once it listens (so no write committed
    /// after the store opened goes unheard); `heard` runs on every
    /// notification for this schema, and on every reconnection. Fails if
    /// the first connection cannot be made.
    pub(super) fn start(
        config: &Config,
        tls: &Connector,
        heard: impl Fn(Heard) + Send + 'static,
    ) -> Result<Self, StoreError> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut config = config.clone();
        // Told apart from the pool's connections in `pg_stat_activity`.
        let name = match config.get_application_name() {
            Some(name) => format!("{name} listener"),
            None => "gnapd listener".to_owned(),
        };
        config.application_name(&name);
        let stopped = stop.clone();
        let tls = tls.clone();
        let (ready, is_ready) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("gnapd-postgres-listen".into())
            .spawn(move || match subscribe(&config, &tls) {
                Ok((client, schema)) => {
                    let _ = ready.send(Ok(()));
                    listen(&config, &tls, Some((client, schema)), &stopped, &heard);
                }
                Err(e) => {
                    let _ = ready.send(Err(connect_failed("listening", &e)));
                }
            })
            .map_err(|e| {
                StoreError::Backend(format!("cannot start the PostgreSQL listener thread: {e}"))
            })?;
        let mut listener = Self {
            stop,
            thread: Some(thread),
        };
        let outcome = is_ready.recv().unwrap_or_else(|_| {
            Err(StoreError::Backend(
                "the PostgreSQL listener thread died while connecting".into(),
            ))
        });
        if outcome.is_err() {
            listener.stop();
        }
        outcome.map(|()| listener)
    }

    /// Stops the thread (within [`POLL`]) and waits for it.
    pub(super) fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Listens on `first` (a connection already listening), then connects
/// again, listens and retires until told to stop; a failed connection is
/// tried again after [`RECONNECT_DELAY`].
fn listen(
    config: &Config,
    tls: &Connector,
    mut first: Option<(Client, String)>,
    stop: &AtomicBool,
    heard: &dyn Fn(Heard),
) {
    if let Some((client, schema)) = first.as_mut() {
        hear(client, schema, stop, heard);
    }
    drop(first);
    while !stop.load(Ordering::Acquire) {
        match subscribe(config, tls) {
            Ok((mut client, schema)) => {
                // Writes made while nobody here listened went unheard.
                heard(Heard::Everything);
                hear(&mut client, &schema, stop, heard);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other nodes' writes; retrying");
                std::thread::sleep(RECONNECT_DELAY);
            }
        }
    }
}

/// A connection listening on both channels, and the schema it is in.
fn subscribe(config: &Config, tls: &Connector) -> Result<(Client, String), postgres::Error> {
    let mut client = config.connect(tls.clone())?;
    client.batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {UPSTREAMS_CHANNEL}"))?;
    // NULL when no schema on the search path exists (yet): then no
    // writer's payload can match, and the age bound alone holds.
    let schema: Option<String> = client.query_one("SELECT current_schema()", &[])?.get(0);
    let schema = schema.unwrap_or_default();
    Ok((client, schema))
}

/// Passes on every notification for `schema` until the connection fails
/// or `stop` is set.
fn hear(client: &mut Client, schema: &str, stop: &AtomicBool, heard: &dyn Fn(Heard)) {
    while !stop.load(Ordering::Acquire) {
        if drain(client, schema, heard).is_err() {
            return;
        }
        // A connection that died quietly says so only when used.
        if client.is_closed() || client.is_valid(POLL).is_err() {
            return;
        }
    }
}

/// Passes on each notification for `schema` that arrives within [`POLL`],
/// in the order they were sent; an error if the connection failed.
fn drain(client: &mut Client, schema: &str, heard: &dyn Fn(Heard)) -> Result<(), postgres::Error> {
    let mut arrived = client.notifications();
    let mut notifications = arrived.timeout_iter(POLL);
    while let Some(notification) = notifications.next()? {
        if notification.payload() != schema {
            continue;
        }
        match notification.channel() {
            UPSTREAMS_CHANNEL => heard(Heard::Upstreams),
            _ => heard(Heard::Retire),
        }
    }
    Ok(())
}
