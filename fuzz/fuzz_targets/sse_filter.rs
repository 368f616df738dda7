//! Fuzzes the gateway's SSE rewriter against a WHATWG event stream client.
//! The properties checked live in `gnapd::fuzzing::sse_filter`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gnapd::fuzzing::sse_filter(data));
