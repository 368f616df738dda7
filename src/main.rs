//! The `gnapd` binary: a thin shell over [`gnapd::main`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    gnapd::main()
}

/// mimalloc instead of glibc's allocator: the gateway's per-call work is
/// allocation-heavy (headers, signature bases, JSON), and glibc's malloc and
/// free were ~9% of its CPU under load (benches/gateway). Built with its
/// `no_thp` feature (Cargo.toml says why); on a kernel whose transparent huge
/// pages are `always` rather than `madvise`, `MIMALLOC_ALLOW_THP=0` in the
/// environment does the same.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
