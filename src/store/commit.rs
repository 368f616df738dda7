//! Group commit: many writers, one `fsync` at a time.
//!
//! A writer applies its change to sled (in memory and the log buffer), then
//! calls [`GroupCommit::wait_durable`]: it takes a ticket and sleeps until a
//! flush that *started after the ticket was taken* has finished. One
//! dedicated thread runs those flushes back to back with sled's blocking
//! [`sled::Db::flush`], so every writer that arrived while a flush was running
//! shares the next one.
//!
//! Why this shape: sled 0.34.7's `flush_async` hangs when many tasks call it
//! at once (spacejam/sled#1308), and a `flush` per write caps throughput at
//! one `fsync` per write (see `/work/shared/practical-notes.md`).
//!
//! Correctness argument. Tickets are numbers handed out in order under the
//! state lock. Before each flush the commit thread reads the last ticket
//! issued (`target`) under that lock; every writer holding a ticket `<=
//! target` had finished its write before it took the ticket, so before the
//! flush started, and the flush covers it. Only after the flush returns is
//! `durable` raised to `target`, and a writer wakes when `durable >= ticket`.
//!
//! The same ticket serves a caller that changed nothing but must not answer
//! ahead of a write it saw (a revocation that found its token already gone):
//! a flush that starts after the ticket covers every write visible before it,
//! since sled reserves a write's place in its log before anyone can read it.
//!
//! Lingering. Under load writers come in waves: each flush answers a group,
//! whose clients send their next requests together. A flush started at the
//! first arrival splits the next wave over two flushes, so after a flush
//! that served several writers the thread waits (at most [`LINGER`]) for
//! as many again; a lone writer is flushed at once. Writers wake the thread
//! only when the group it waits for is complete.
//!
//! Deferral. A request handled on an async runtime would otherwise park a
//! thread in [`GroupCommit::wait_durable`]: tokio hands the request to a
//! blocking thread, which sleeps on a condvar until the commit thread wakes
//! it, which then wakes the runtime: three thread hand-offs per request,
//! measured as a fifth of a first grant's CPU. [`deferring`] runs a request's
//! handler with this thread's waits turned into a [`Pending`] ticket
//! instead; the caller holds the answer back until [`Pending::wait`] says
//! the disk has everything the handler wrote or read, and answers a store
//! failure instead if a flush failed. The guarantee is the same (no answer
//! gets ahead of the disk); only where the waiting happens moves.
//!
//! Failure. A failed flush is sticky: every waiting and later writer gets
//! [`StoreError::Backend`]. After an I/O error sled's state on disk is
//! unknown, and answering `Ok` for a write that may not be there would break
//! the store's contract; the operator restarts the server (sled recovers
//! from its log). If the commit thread is gone (closed, or it died), writers
//! flush for themselves: slower, never less durable.

use std::cell::RefCell;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use super::StoreError;

/// How a mutating call is made durable before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Writers share flushes through one commit thread (the server's mode).
    #[default]
    GroupCommit,
    /// Each writer calls `flush` itself: the baseline group commit is
    /// measured against. Equally durable, much slower under concurrency.
    FlushEachWrite,
}

/// The group-commit machinery of one database.
pub(crate) struct GroupCommit {
    db: ::sled::Db,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<Result<(), ::sled::Error>>>>,
    hold: Option<FlushHold>,
}

/// A test's hand on the commit thread (see `SledStore::danger_open_held`):
/// while held, no flush starts, so what writers committed stays in sled's
/// memory and a copy of the directory is what a `kill -9` would leave
/// behind. Lets a test stand in the window between a write and its flush
/// without sleeping. Closing the store releases it.
#[derive(Debug, Clone, Default)]
pub struct FlushHold(Arc<HoldState>);

#[derive(Debug, Default)]
struct HoldState {
    held: Mutex<bool>,
    released: Condvar,
}

impl FlushHold {
    /// No flush starts until [`FlushHold::release`].
    pub fn hold(&self) {
        *self.0.held.lock().unwrap_or_else(PoisonError::into_inner) = true;
    }

    /// Flushes start again.
    pub fn release(&self) {
        *self.0.held.lock().unwrap_or_else(PoisonError::into_inner) = false;
        self.0.released.notify_all();
    }

    /// Blocks while held.
    fn pass(&self) {
        let mut held = self.0.held.lock().unwrap_or_else(PoisonError::into_inner);
        while *held {
            held = self
                .0
                .released
                .wait(held)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a ticket is issued or a stop is asked for.
    work: Condvar,
    /// Signalled when a flush finished (or failed) or the thread exited.
    done: Condvar,
    /// The same moments as `done`, for [`Pending::wait`]ers.
    flushed: tokio::sync::Notify,
}

impl Shared {
    fn notify_done(&self) {
        self.done.notify_all();
        self.flushed.notify_waiters();
    }
}

thread_local! {
    /// While [`deferring`] runs on this thread: the latest ticket its
    /// handler took, with the machinery that serves it.
    static DEFERRED: RefCell<Option<Option<Pending>>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's durability waits deferred: a store call that
/// would wait for the disk takes its ticket and returns at once. Returns
/// what `f` returned and the wait it left, if any; the caller must not let
/// anything built from `f`'s result leave before [`Pending::wait`] is `Ok`.
/// A store without a commit thread (flushing each write, or after close)
/// still waits inside `f`.
pub fn deferring<R>(f: impl FnOnce() -> R) -> (R, Option<Pending>) {
    let mut scope = DeferScope {
        outer: Some(DEFERRED.with(|d| d.borrow_mut().replace(None))),
    };
    let result = f();
    (result, scope.end())
}

/// Puts back what the thread deferred before [`deferring`] began, also
/// when `f` panics: a runtime worker survives a task's panic, and a scope
/// left open would defer, and so lose, the waits of whatever it runs next.
struct DeferScope {
    outer: Option<Option<Option<Pending>>>,
}

impl DeferScope {
    fn end(&mut self) -> Option<Pending> {
        let outer = self.outer.take().flatten();
        DEFERRED
            .with(|d| std::mem::replace(&mut *d.borrow_mut(), outer))
            .flatten()
    }
}

impl Drop for DeferScope {
    fn drop(&mut self) {
        if self.outer.is_some() {
            drop(self.end());
        }
    }
}

/// Writes a handler made whose durability its caller still has to wait
/// for (see [`deferring`]).
#[must_use = "the answer must wait for the disk"]
pub struct Pending {
    shared: Arc<Shared>,
    db: ::sled::Db,
    ticket: u64,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("ticket", &self.ticket)
            .finish_non_exhaustive()
    }
}

impl Pending {
    /// Returns once a flush that started after the ticket was taken has
    /// finished; the flush's error if it failed.
    pub async fn wait(self) -> Result<(), StoreError> {
        loop {
            let flushed = self.shared.flushed.notified();
            tokio::pin!(flushed);
            // Registered before the state is read, so a flush finishing in
            // between still wakes this task.
            flushed.as_mut().enable();
            let thread_gone = {
                let state = self.shared.lock();
                if let Some(failure) = &state.failure {
                    return Err(StoreError::Backend(format!("flush failed: {failure}")));
                }
                if state.durable >= self.ticket {
                    return Ok(());
                }
                !state.running
            };
            if thread_gone {
                // The thread left without covering the ticket: a flush
                // started now still comes after the writes.
                let db = self.db.clone();
                return tokio::task::spawn_blocking(move || db.flush())
                    .await
                    .map_err(|e| StoreError::Backend(format!("flush failed: {e}")))?
                    .map(drop)
                    .map_err(|e| StoreError::Backend(format!("flush failed: {e}")));
            }
            flushed.await;
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// The last ticket handed out.
    issued: u64,
    /// Every ticket up to this one is on disk.
    durable: u64,
    /// The first flush failure; sticky.
    failure: Option<String>,
    /// `close` asked the thread to finish.
    stopping: bool,
    /// The commit thread is serving tickets.
    running: bool,
    /// Waiting writers at which the commit thread wants to be woken: 1
    /// when idle, the last group's size while it lets a group fill, never
    /// while it flushes (it looks again after each flush anyway).
    want: u64,
    /// Writers the last flush served.
    last_group: u64,
}

impl Shared {
    /// The counters are plain numbers that no panic can leave half-written,
    /// so a poisoned lock is still usable.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl GroupCommit {
    /// Starts the machinery for `db` in `mode`; with `hold`, the commit
    /// thread's flushes wait for a test to let them start.
    pub(crate) fn start(
        db: ::sled::Db,
        mode: Durability,
        hold: Option<FlushHold>,
    ) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            done: Condvar::new(),
            flushed: tokio::sync::Notify::new(),
        });
        let thread = match mode {
            Durability::FlushEachWrite => None,
            Durability::GroupCommit => {
                shared.lock().running = true;
                let (db, shared, gate) = (db.clone(), Arc::clone(&shared), hold.clone());
                let spawned = std::thread::Builder::new()
                    .name("gnapd-store-commit".into())
                    .spawn(move || commit_loop(&db, &shared, gate.as_ref()));
                match spawned {
                    Ok(handle) => Some(handle),
                    Err(e) => {
                        return Err(StoreError::Backend(format!(
                            "starting the commit thread: {e}"
                        )));
                    }
                }
            }
        };
        Ok(Self {
            db,
            shared,
            thread: Mutex::new(thread),
            hold,
        })
    }

    /// Tickets taken and not yet covered by a finished flush: writers (and
    /// callers settling) waiting for the disk.
    pub(crate) fn awaiting(&self) -> u64 {
        let state = self.shared.lock();
        state.issued - state.durable
    }

    /// Returns once everything this thread wrote before the call is on disk.
    pub(crate) fn wait_durable(&self) -> Result<(), StoreError> {
        let mut state = self.shared.lock();
        if let Some(failure) = &state.failure {
            return Err(StoreError::Backend(format!(
                "an earlier flush failed: {failure}"
            )));
        }
        if !state.running {
            drop(state);
            return self.flush_here();
        }
        state.issued += 1;
        let ticket = state.issued;
        if state.issued - state.durable >= state.want {
            self.shared.work.notify_one();
        }
        if self.defer(ticket) {
            return Ok(());
        }
        while state.durable < ticket {
            if let Some(failure) = &state.failure {
                return Err(StoreError::Backend(format!("flush failed: {failure}")));
            }
            if !state.running {
                // The thread left without covering this ticket; a flush
                // started now still comes after the write.
                drop(state);
                return self.flush_here();
            }
            state = self
                .shared
                .done
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        Ok(())
    }

    /// Leaves `ticket` to the caller of [`deferring`], if this thread runs
    /// one and has not deferred a wait on another store's machinery.
    fn defer(&self, ticket: u64) -> bool {
        DEFERRED.with(|d| match &mut *d.borrow_mut() {
            None => false,
            Some(slot @ None) => {
                *slot = Some(Pending {
                    shared: Arc::clone(&self.shared),
                    db: self.db.clone(),
                    ticket,
                });
                true
            }
            Some(Some(pending)) if Arc::ptr_eq(&pending.shared, &self.shared) => {
                pending.ticket = pending.ticket.max(ticket);
                true
            }
            Some(Some(_)) => false,
        })
    }

    /// Stops the commit thread after it has served every ticket, then
    /// flushes once more. Idempotent; later writers flush for themselves.
    pub(crate) fn close(&self) -> Result<(), StoreError> {
        let handle = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(hold) = &self.hold {
            // A held thread would never serve the last tickets.
            hold.release();
        }
        if let Some(handle) = handle {
            self.shared.lock().stopping = true;
            self.shared.work.notify_all();
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(StoreError::Backend(format!("final flush failed: {e}"))),
                Err(_) => return Err(StoreError::Backend("the commit thread panicked".into())),
            }
        }
        self.flush_here()
    }

    fn flush_here(&self) -> Result<(), StoreError> {
        self.db
            .flush()
            .map(drop)
            .map_err(|e| StoreError::Backend(format!("flush failed: {e}")))
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // Nothing to report to: a failure here already failed the writers
        // that depended on it.
        let _ = self.close();
    }
}

/// Marks the thread gone however it leaves (return or panic), so no writer
/// waits for it forever.
struct Exit<'a>(&'a Shared);

impl Drop for Exit<'_> {
    fn drop(&mut self) {
        self.0.lock().running = false;
        self.0.notify_done();
    }
}

/// The commit thread: flush while tickets are waiting; on stop, serve what is
/// left and flush a last time.
fn commit_loop(
    db: &::sled::Db,
    shared: &Shared,
    hold: Option<&FlushHold>,
) -> Result<(), ::sled::Error> {
    let _exit = Exit(shared);
    let mut state = shared.lock();
    loop {
        state.want = 1;
        while state.durable == state.issued && !state.stopping {
            state = shared
                .work
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.durable == state.issued {
            // Stopping with nothing waiting.
            break;
        }
        state = let_group_fill(shared, state);
        if let Some(hold) = hold {
            // Before the target is read: tickets taken while held are
            // served by the first flush after the release.
            drop(state);
            hold.pass();
            state = shared.lock();
        }
        let target = state.issued;
        state.last_group = target - state.durable;
        state.want = u64::MAX;
        drop(state);
        let flushed = db.flush();
        state = shared.lock();
        match flushed {
            Ok(_) => state.durable = target,
            Err(e) => {
                state.failure = Some(e.to_string());
                shared.notify_done();
                return Err(e);
            }
        }
        shared.notify_done();
    }
    drop(state);
    db.flush().map(drop)
}

/// How long the commit thread waits, at most, for a group as large as the
/// last one before it flushes. Writers arrive in waves under load (each
/// flush answers a group, whose clients send again together); flushing at
/// the first arrival splits a wave over two flushes. Measured on the
/// first-token benchmark: see spec-notes/rfc9635.md.
const LINGER: std::time::Duration = std::time::Duration::from_micros(300);

/// Under load (the last flush served more than one writer), waits until as
/// many writers wait again, or [`LINGER`]: one flush per wave. A lone
/// writer (the last group was one) is flushed at once.
fn let_group_fill<'a>(
    shared: &'a Shared,
    mut state: MutexGuard<'a, State>,
) -> MutexGuard<'a, State> {
    if state.last_group <= 1 {
        return state;
    }
    let deadline = std::time::Instant::now() + LINGER;
    state.want = state.last_group;
    while state.issued - state.durable < state.want && !state.stopping {
        let now = std::time::Instant::now();
        if now >= deadline {
            break;
        }
        state = shared
            .work
            .wait_timeout(state, deadline - now)
            .map(|(state, _)| state)
            .unwrap_or_else(|e| e.into_inner().0);
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, ::sled::Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = ::sled::Config::new().path(dir.path()).open().unwrap();
        (dir, db)
    }

    #[test]
    fn store_commit_serves_many_writers_and_closes() {
        let (_dir, db) = db();
        let commit =
            Arc::new(GroupCommit::start(db.clone(), Durability::GroupCommit, None).unwrap());
        let threads: Vec<_> = (0..8u32)
            .map(|i| {
                let (db, commit) = (db.clone(), Arc::clone(&commit));
                std::thread::spawn(move || {
                    for j in 0..50u32 {
                        db.insert([i.to_be_bytes(), j.to_be_bytes()].concat(), vec![1])
                            .unwrap();
                        commit.wait_durable().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let state = commit.shared.lock();
        assert_eq!(state.durable, state.issued);
        assert_eq!(state.issued, 400);
        drop(state);
        commit.close().unwrap();
        // After close a writer still gets durability, by flushing itself.
        db.insert(b"late", vec![2]).unwrap();
        commit.wait_durable().unwrap();
        assert!(!commit.shared.lock().running);
    }

    #[test]
    fn store_commit_flush_each_write_needs_no_thread() {
        let (_dir, db) = db();
        let commit = GroupCommit::start(db.clone(), Durability::FlushEachWrite, None).unwrap();
        db.insert(b"k", vec![1]).unwrap();
        commit.wait_durable().unwrap();
        assert!(commit.thread.lock().unwrap().is_none());
    }

    #[test]
    fn a_writer_alone_after_a_crowd_is_flushed_not_stranded() {
        // After a flush that served a group, the commit thread waits for
        // as many writers again; when only one comes, the linger's end
        // must still flush it.
        let (_dir, db) = db();
        let commit =
            Arc::new(GroupCommit::start(db.clone(), Durability::GroupCommit, None).unwrap());
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8u32)
            .map(|i| {
                let (db, commit, barrier) = (db.clone(), Arc::clone(&commit), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    for j in 0..20u32 {
                        barrier.wait();
                        db.insert([i.to_be_bytes(), j.to_be_bytes()].concat(), vec![1])
                            .unwrap();
                        commit.wait_durable().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Whatever groups the crowd made, the thread now expects a large
        // one (as it does right after a wave).
        commit.shared.lock().last_group = 8;
        for k in 0..3u8 {
            db.insert([b'z', k], vec![2]).unwrap();
            commit.wait_durable().unwrap();
        }
        let state = commit.shared.lock();
        assert_eq!(state.durable, state.issued);
        drop(state);
        commit.close().unwrap();
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn a_deferred_write_answers_only_after_a_flush_that_started_after_it() {
        let (_dir, db) = db();
        let hold = FlushHold::default();
        let commit =
            GroupCommit::start(db.clone(), Durability::GroupCommit, Some(hold.clone())).unwrap();
        hold.hold();
        let ((), pending) = deferring(|| {
            db.insert(b"k", vec![1]).unwrap();
            // Held: without deferral this would block until the release.
            commit.wait_durable().unwrap();
            db.insert(b"l", vec![2]).unwrap();
            commit.wait_durable().unwrap();
        });
        let pending = pending.expect("the handler's waits are left to its caller");
        assert_eq!(pending.ticket, 2, "the latest ticket covers both writes");
        let rt = runtime();
        rt.block_on(async {
            let mut wait = Box::pin(pending.wait());
            let early =
                tokio::time::timeout(std::time::Duration::from_millis(100), &mut wait).await;
            assert!(early.is_err(), "no flush has run: the answer must wait");
            assert_eq!(commit.shared.lock().durable, 0);
            hold.release();
            wait.await.unwrap();
        });
        assert!(commit.shared.lock().durable >= 2);
        commit.close().unwrap();
    }

    #[test]
    fn outside_deferring_and_without_a_commit_thread_waits_stay_where_they_are() {
        let (_dir, db) = db();
        let commit = GroupCommit::start(db.clone(), Durability::GroupCommit, None).unwrap();
        db.insert(b"k", vec![1]).unwrap();
        commit.wait_durable().unwrap();
        assert_eq!(commit.shared.lock().durable, 1, "waited for its flush");
        let ((), pending) = deferring(|| {});
        assert!(
            pending.is_none(),
            "a handler that wrote nothing leaves nothing"
        );

        let (_dir2, db2) = super::tests::db();
        let each = GroupCommit::start(db2.clone(), Durability::FlushEachWrite, None).unwrap();
        let ((), pending) = deferring(|| {
            db2.insert(b"k", vec![1]).unwrap();
            each.wait_durable().unwrap();
        });
        assert!(pending.is_none(), "flushed in place: nothing to defer");
        commit.close().unwrap();
    }

    #[test]
    fn a_handler_that_panics_leaves_its_thread_waiting_for_the_disk_again() {
        let (_dir, db) = db();
        let hold = FlushHold::default();
        let commit =
            GroupCommit::start(db.clone(), Durability::GroupCommit, Some(hold.clone())).unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            deferring(|| -> () { panic!("a handler's bug") })
        }));
        assert!(panicked.is_err());
        // Outside any deferring scope: this wait must hold the thread until
        // the flush, not slip away as a ticket nobody awaits.
        hold.hold();
        db.insert(b"k", vec![1]).unwrap();
        let released = std::thread::spawn({
            let hold = hold.clone();
            move || {
                std::thread::sleep(std::time::Duration::from_millis(100));
                hold.release();
            }
        });
        commit.wait_durable().unwrap();
        assert!(
            commit.shared.lock().durable >= 1,
            "the wait returned before its flush"
        );
        released.join().unwrap();
        commit.close().unwrap();
    }

    #[test]
    fn a_failed_flush_fails_the_deferred_answer() {
        let (_dir, db) = db();
        let commit = GroupCommit::start(db.clone(), Durability::GroupCommit, None).unwrap();
        let ((), pending) = deferring(|| {
            db.insert(b"k", vec![1]).unwrap();
            commit.wait_durable().unwrap();
        });
        let pending = pending.expect("deferred");
        // As the commit thread records a failed flush.
        commit.shared.lock().failure = Some("disk gone".into());
        commit.shared.notify_done();
        let got = runtime().block_on(pending.wait());
        assert!(
            got.is_err(),
            "a deferred answer must not survive a failed flush"
        );
    }
}
