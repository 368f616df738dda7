//! Integration tests, compiled into one binary (one link on a 2-core machine).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent;
mod as_core;
mod common;
mod httpsig_cli;
mod interop_python;
mod profile_rules;
mod properties;
mod spec_notes;
mod vectors;
