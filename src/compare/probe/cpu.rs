//! CPU time from the scheduler's own accounting (`schedstat`: nanoseconds
//! on a CPU), not from `utime`/`stime`, whose 10 ms ticks are coarser
//! than a whole GNAP flow.

use std::io;

/// Nanoseconds every thread of process `pid` has run.
pub fn process_ns(pid: u32) -> io::Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        // A thread that ended between the listing and the read is gone
        // with its time; what it ran is lost either way.
        if let Ok(text) = std::fs::read_to_string(path) {
            total += first_number(&text)?;
        }
    }
    Ok(total)
}

/// Nanoseconds the calling thread has run.
pub fn this_thread_ns() -> io::Result<u64> {
    first_number(&std::fs::read_to_string("/proc/thread-self/schedstat")?)
}

fn first_number(schedstat: &str) -> io::Result<u64> {
    schedstat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unreadable schedstat"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_thread_and_this_process_have_run() {
        let before = this_thread_ns().unwrap();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(this_thread_ns().unwrap() > before);
        assert!(process_ns(std::process::id()).unwrap() >= this_thread_ns().unwrap());
    }

    #[test]
    fn schedstat_reads_its_first_field() {
        assert_eq!(first_number("123 456 7\n").unwrap(), 123);
        assert!(first_number("").is_err());
    }
}
