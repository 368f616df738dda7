//! `scale`: gnapd holding many live tokens (issue 19, "Proof"). Loads
//! `--tokens` grants through the grant endpoint, then reports the disk
//! they take, the start-up on that data dir, RSS, and the gateway's and
//! the grant endpoint's CPU against a one-token baseline; `--sweep` shows
//! the sweeper keeping the store bounded under short-lived agents. It
//! reports, never asserts: it fails only when it cannot set up or a flow
//! fails. See benches/scale/README.md; the logic is in `bench.rs`, which
//! the integration tests run small.

#[path = "bench.rs"]
mod bench;

fn main() {
    std::process::exit(bench::main_with_args(std::env::args().skip(1)));
}
