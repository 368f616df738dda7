//! Integration tests, compiled into one binary (one link on a 2-core machine).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod answer_after_disk;
mod as_core;
mod as_http;
mod assertion_approval;
mod connect;
mod connect_upstream;
mod connection_bounds;
mod crash_cycles;
mod data_dir;
mod gateway_core;
mod gateway_golike;
mod gateway_http;
mod gateway_resume;
mod gateway_sdk;
mod gateway_stdio;
mod hidden_characters;
mod hostile_upstream_answers;
mod httpsig_cli;
mod interaction_browser;
mod interaction_core;
mod interaction_http;
mod interaction_pages;
mod interop_agent;
mod interop_python;
mod layers;
mod login_oidc;
mod malformed_input;
mod metrics_listen;
mod profile_rules;
mod properties;
mod rate_limits;
mod replay_budgets;
mod request_bounds;
mod rs_core;
mod rs_http;
mod session_bounds;
mod sign_in_bounds;
mod signature_limits;
mod signature_replay;
mod spec_notes;
mod state_bounds;
mod stdio_child_bounds;
mod store_contract;
mod store_crash;
mod support;
mod user_code_guessing;
mod vectors;
mod who_decides;

/// `root`'s old path, which tests/it/layers/ (kept by the lead) still
/// imports; goes when that import names `support::paths`.
mod common {
    pub(crate) use crate::support::paths::root;
}
