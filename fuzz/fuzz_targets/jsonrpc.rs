//! Fuzzes the gateway's JSON-RPC reader against other decoders' reading.
//! The properties checked live in `gnapd::fuzzing::jsonrpc`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gnapd::fuzzing::jsonrpc(data));
