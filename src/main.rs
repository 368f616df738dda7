//! The `gnapd` binary: a thin shell over [`gnapd::main`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    gnapd::main()
}

/// mimalloc instead of glibc's allocator: the gateway's per-call work is
/// allocation-heavy (headers, signature bases, JSON), and glibc's malloc and
/// free were ~9% of its CPU under load (benches/gateway).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
