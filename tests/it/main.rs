//! Integration tests, compiled into one binary (one link on a 2-core machine).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent;
mod as_core;
mod as_http;
mod assertion_approval;
mod common;
mod connect;
mod connect_upstream;
mod gateway_core;
mod gateway_golike;
mod gateway_http;
mod gateway_resume;
mod gateway_sdk;
mod gateway_stdio;
mod http_client;
mod httpsig_cli;
mod in_process;
mod interaction_browser;
mod interaction_core;
mod interaction_http;
mod interaction_pages;
mod interop_agent;
mod interop_python;
mod login_oidc;
mod mcp_upstream;
mod profile_rules;
mod properties;
mod rs_core;
mod rs_http;
mod server;
mod spec_notes;
mod store_contract;
mod store_crash;
mod store_fixture;
mod vectors;
