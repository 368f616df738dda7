//! The GNAP request fixtures in `tests/vectors/gnap-requests.json`: rebuilt
//! from the keys byte for byte, judged by gnapd's AS, and checked by an
//! independent Python verifier.

pub(crate) mod make;
mod python;
mod reproduce;
mod verdicts;
