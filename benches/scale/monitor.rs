//! A thread that samples a process while a phase runs: its CPU ticks, its
//! memory, and how much of the phase is done, so that progress can be
//! printed and a window cut out of the phase afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::procfs::{self, Memory};

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    /// Since the monitor started.
    pub secs: f64,
    /// The phase's count (flows, calls) at that moment.
    pub done: u64,
    /// The process's CPU ticks.
    pub ticks: u64,
    pub memory: Memory,
}

pub struct Monitor {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<Sample>>,
}

impl Monitor {
    /// Samples `pid` every `period` until [`Monitor::finish`], calling
    /// `each` with every sample, the last one too.
    pub fn start(
        pid: u32,
        done: Arc<AtomicU64>,
        period: Duration,
        mut each: impl FnMut(&Sample) + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let since = Instant::now();
        let handle = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                let take = || Sample {
                    secs: since.elapsed().as_secs_f64(),
                    done: done.load(Ordering::Relaxed),
                    ticks: procfs::cpu_ticks(pid).unwrap_or(0),
                    memory: Memory::of(pid).unwrap_or_default(),
                };
                loop {
                    let sample = take();
                    each(&sample);
                    samples.push(sample);
                    // Short naps, so that finishing does not wait a period.
                    let next = since + Duration::from_secs_f64(sample.secs) + period;
                    while Instant::now() < next && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(10).min(period));
                    }
                    if stop.load(Ordering::Relaxed) {
                        let last = take();
                        each(&last);
                        samples.push(last);
                        return samples;
                    }
                }
            })
        };
        Self { stop, handle }
    }

    /// Stops sampling, after one last sample; every sample, in order.
    pub fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}
