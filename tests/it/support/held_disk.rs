//! A sled store whose flushes a test holds, and the crash it can simulate:
//! while held, what writers committed is in sled's memory only, so a copy
//! of the directory is what a `kill -9` would leave behind. The races of
//! `answer_after_disk` stand in that window without sleeping.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gnapd::store::sled::{FlushHold, SledStore};

/// A held store on a temporary directory.
pub struct HeldDisk {
    pub store: Arc<SledStore>,
    pub hold: FlushHold,
    pub dir: tempfile::TempDir,
}

impl HeldDisk {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (store, hold) = SledStore::danger_open_held(dir.path()).unwrap();
        Self {
            store: Arc::new(store),
            hold,
            dir,
        }
    }

    /// The directory as a `kill -9` now would leave it.
    pub fn crash_copy(&self) -> tempfile::TempDir {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(self.dir.path(), copy.path());
        copy
    }

    /// Holds the flushes; runs `first` (a write) and, once it waits for the
    /// disk, `second` (a call that finds what `first` did). Fails if
    /// `second` returns while `first`'s write is not on disk: its answer
    /// would have got ahead of the disk. Returns the crash copy taken while
    /// both waited, and what each returned once the flushes went on.
    pub fn race<A: Send, B: Send>(
        &self,
        first: impl FnOnce() -> A + Send,
        second: impl FnOnce() -> B + Send,
    ) -> (tempfile::TempDir, A, B) {
        self.hold.hold();
        let second_done = AtomicBool::new(false);
        let (copy, a, b) = std::thread::scope(|s| {
            let a = s.spawn(first);
            until("the first call waits for the disk", || {
                self.store.awaiting_flush() == 1
            });
            let b = s.spawn(|| {
                let b = second();
                second_done.store(true, Ordering::SeqCst);
                b
            });
            until("the second call waits for the disk or answers", || {
                self.store.awaiting_flush() == 2 || second_done.load(Ordering::SeqCst)
            });
            let early = second_done.load(Ordering::SeqCst);
            let copy = self.crash_copy();
            self.hold.release();
            let (a, b) = (a.join().unwrap(), b.join().unwrap());
            assert!(
                !early,
                "the second call answered while the write it saw was not on disk"
            );
            (copy, a, b)
        });
        (copy, a, b)
    }
}

/// Polls `condition` (a few microseconds apart) until it holds; fails the
/// test after 20 s.
pub fn until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
