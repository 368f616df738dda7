//! Opening and closing the sled database: the directory lock, the
//! replay horizon, group commit.

use super::*;

/// How long `open` waits for the directory lock to be let go.
const LOCK_WAIT: Duration = Duration::from_secs(1);

/// Opens the database, waiting a moment for a handle in this process that
/// is still letting go.
///
/// sled 0.34.7 releases its file lock only when its I/O threads drop their
/// last reference, which can be shortly *after* the last `Db` handle was
/// dropped or flushed; reopening at once (a restart inside one process, as
/// tests do) then fails with "could not acquire lock". Another process that
/// holds the directory still gets the error, after [`LOCK_WAIT`].
///
/// Without `background_flush` sled flushes only when asked (a held store,
/// whose test decides when writes reach the disk).
fn open_db(path: &Path, background_flush: bool, tuning: Tuning) -> Result<::sled::Db, StoreError> {
    let give_up = Instant::now() + LOCK_WAIT;
    let mut config = ::sled::Config::new()
        .path(path)
        .cache_capacity(tuning.cache_bytes);
    if !background_flush {
        config = config.flush_every_ms(None);
    }
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(::sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && Instant::now() < give_up =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(backend(&format!("opening {}", path.display()), e)),
        }
    }
}

/// Opens the store's database at `path` and lets go of it at once, so that
/// the next start reads little.
///
/// sled 0.34 writes its recovery snapshot only while opening; a start reads
/// the last snapshot and then every log entry written after it. A server
/// that took a million grants since it started would make its next start
/// scan all of them (333 ms measured at 1,000,000 grants against ~60 ms
/// with a fresh snapshot). Called after a clean stop, that scan is the
/// stopping process's; after a crash the next start still pays it.
pub fn checkpoint(path: &Path) -> Result<(), StoreError> {
    let tuning = Tuning {
        cache_bytes: CHECKPOINT_CACHE_BYTES,
    };
    let db = open_db(path, false, tuning)?;
    db.flush()
        .map_err(|e| backend("flushing after the checkpoint", e))?;
    Ok(())
}

/// The checkpoint reads no record; sled's smallest useful cache does.
const CHECKPOINT_CACHE_BYTES: u64 = 1 << 20;

/// sled's page cache unless configured (`store_cache_mb`): sled's own
/// default, 1 GiB.
pub const DEFAULT_CACHE_BYTES: u64 = 1 << 30;

/// How sled is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// The page cache's size in bytes: what sled keeps of the store in
    /// memory beyond the pages a request is reading.
    pub cache_bytes: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

impl SledStore {
    /// The same store with replay budgets of `sizes` (`replay_capacity`
    /// and its kin); its horizon is unchanged.
    pub fn with_replay_sizes(mut self, sizes: ReplaySizes) -> Self {
        let horizon = self.replay.budget(ReplayBudget::Bound).horizon();
        self.replay = ReplayMemory::new(sizes, horizon);
        self
    }

    /// Opens (or creates) the store in `path`, with group commit, at the
    /// system clock's time (tools and tests; the server uses
    /// [`Self::open_at`] with its own clock).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::GroupCommit)
    }

    /// [`Self::open`], making writes durable as `durability` says.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        Self::open_at(path, durability, SystemClock.now())
    }

    /// Opens (or creates) the store in `path`, making writes durable as
    /// `durability` says. `now` starts the replay horizon: a signature
    /// made before this opening may have been seen by the process before.
    pub fn open_at(path: &Path, durability: Durability, now: i64) -> Result<Self, StoreError> {
        Self::open_gated(path, durability, None, now, Tuning::default())
    }

    /// [`Self::open_at`] with sled set up as `tuning` says.
    pub fn open_tuned(
        path: &Path,
        durability: Durability,
        now: i64,
        tuning: Tuning,
    ) -> Result<Self, StoreError> {
        Self::open_gated(path, durability, None, now, tuning)
    }

    /// Opens the store with its flushes under a test's control: while the
    /// returned [`FlushHold`] is held nothing reaches the disk (sled's own
    /// periodic flush is off too), and every mutating call blocks. Only for
    /// tests that simulate a crash by copying the directory in that window;
    /// a server must never run so.
    #[doc(hidden)]
    pub fn danger_open_held(path: &Path) -> Result<(Self, FlushHold), StoreError> {
        let hold = FlushHold::default();
        let store = Self::open_gated(
            path,
            Durability::GroupCommit,
            Some(hold.clone()),
            SystemClock.now(),
            Tuning::default(),
        )?;
        Ok((store, hold))
    }

    fn open_gated(
        path: &Path,
        durability: Durability,
        hold: Option<FlushHold>,
        now: i64,
        tuning: Tuning,
    ) -> Result<Self, StoreError> {
        let db = open_db(path, hold.is_none(), tuning)?;
        // Older data dirs kept replay entries on disk; they are not needed.
        db.drop_tree(OLD_NONCES)
            .map_err(|e| backend("dropping the old replay tree", e))?;
        let tree = |name: &str| {
            db.open_tree(name)
                .map_err(|e| backend(&format!("opening tree {name}"), e))
        };
        let records = tree(RECORDS)?;
        let token_index = tree(TOKEN_INDEX)?;
        migrate::from_five_trees(&db, &records, &token_index)?;
        Ok(Self {
            records,
            token_index,
            instances: tree(INSTANCES)?,
            replay: ReplayMemory::new(ReplaySizes::default(), now),
            token_cache: Cache::default(),
            set_cache: Cache::default(),
            leases: Default::default(),
            credential_sets: tree(CREDENTIAL_SETS)?,
            upstreams: tree(UPSTREAMS)?,
            resource_sets: tree(RESOURCE_SETS)?,
            oauth_clients: tree(OAUTH_CLIENTS)?,
            interactions: tree(INTERACTIONS)?,
            user_codes: tree(USER_CODES)?,
            spent_refresh: tree(SPENT_REFRESH)?,
            commit: GroupCommit::start(db, durability, hold)?,
            path: path.to_owned(),
        })
    }

    /// Flushes, stops the commit thread and waits for it. The store stays
    /// usable (each write then flushes for itself); dropping the store closes
    /// it too, but `close` reports a failed final flush.
    pub fn close(&self) -> Result<(), StoreError> {
        self.commit.close()
    }

    /// How many calls are waiting for their changes (or what they found)
    /// to reach the disk.
    pub fn awaiting_flush(&self) -> u64 {
        self.commit.awaiting()
    }
}
