//! The `gnapd` binary: a thin shell over [`gnapd::cli`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    gnapd::cli::main()
}
