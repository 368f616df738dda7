//! What every statement shares: turning a driver error into a
//! [`StoreError`], and running a transaction again when PostgreSQL chose it
//! as the loser of a serialization failure or a deadlock.

use postgres::Transaction;
use postgres::error::SqlState;

use super::prepared::{Conn, Db};

use crate::store::StoreError;

/// How often a transaction is tried before its failure is the caller's.
const TRIES: usize = 8;

/// A driver error as a store error. The driver's text names the statement's
/// failure, never a parameter: hashes and records do not reach the log, and
/// neither does the conninfo (a connection error says what failed, not
/// with which password).
pub(super) fn failed(what: &str, error: &postgres::Error) -> StoreError {
    StoreError::Backend(format!("postgres {what}: {error}"))
}

/// [`failed`] for a connection that could not be made, with why: the
/// driver's own text says only "error performing TLS handshake" or "db
/// error", and an operator needs the certificate's or the server's reason.
/// A server's error gives its message, not its detail; neither the
/// handshake nor the server repeats the conninfo.
pub(super) fn connect_failed(what: &str, error: &postgres::Error) -> StoreError {
    let mut text = format!("postgres {what}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        match cause.downcast_ref::<postgres::error::DbError>() {
            Some(db) => text.push_str(&format!(": {}: {}", db.severity(), db.message())),
            None => text.push_str(&format!(": {cause}")),
        }
        source = cause.source();
    }
    StoreError::Backend(text)
}

/// True for the failures PostgreSQL asks the client to retry: the whole
/// transaction was rolled back and running it again may succeed.
fn retryable(error: &postgres::Error) -> bool {
    matches!(
        error.code(),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE | &SqlState::T_R_DEADLOCK_DETECTED)
    )
}

/// Why a transaction body stopped: the database, a record that would not
/// decode or encode (`?` takes either), or a compare-and-swap that found
/// the old value gone after the body had written (see [`refusable`]).
pub(super) enum Failure {
    Db(postgres::Error),
    Store(StoreError),
    Refused,
}

impl From<postgres::Error> for Failure {
    fn from(error: postgres::Error) -> Self {
        Self::Db(error)
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// Runs `body` in a READ COMMITTED transaction and commits, again from the
/// start (up to [`TRIES`] times) if PostgreSQL rolled it back as the loser
/// of a deadlock or a serialization failure. `body` must only read and
/// write the database: it may run more than once. An `Err` from `body`
/// rolls back.
pub(super) fn transaction<T>(
    conn: &mut Conn,
    what: &str,
    body: impl FnMut(&mut Db<'_, Transaction<'_>>) -> Result<T, Failure>,
) -> Result<T, StoreError> {
    refusable(conn, what, body)?
        .ok_or_else(|| StoreError::Backend(format!("{what}: refused without a reason")))
}

/// [`transaction`], where the body may answer [`Failure::Refused`]: the
/// transaction rolls back (undoing what the body wrote before it found
/// out) and the answer is `None`.
pub(super) fn refusable<T>(
    conn: &mut Conn,
    what: &str,
    mut body: impl FnMut(&mut Db<'_, Transaction<'_>>) -> Result<T, Failure>,
) -> Result<Option<T>, StoreError> {
    let mut tries = 0;
    loop {
        tries += 1;
        let outcome = match conn.begin() {
            Ok((mut tx, statements)) => {
                let value = body(&mut Db::on(&mut tx, statements));
                match value {
                    Ok(value) => tx.commit().map(|()| value).map_err(Failure::Db),
                    // Dropping the transaction rolls it back.
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(Failure::Db(e)),
        };
        match outcome {
            Ok(value) => return Ok(Some(value)),
            Err(Failure::Refused) => return Ok(None),
            Err(Failure::Db(e)) if retryable(&e) && tries < TRIES => continue,
            Err(Failure::Db(e)) => return Err(failed(what, &e)),
            Err(Failure::Store(e)) => return Err(e),
        }
    }
}

/// A single statement's outcome as a store error.
pub(super) fn one<T>(what: &str, outcome: Result<T, postgres::Error>) -> Result<T, StoreError> {
    outcome.map_err(|e| failed(what, &e))
}
