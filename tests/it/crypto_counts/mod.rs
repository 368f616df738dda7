//! Every cryptographic operation the server does is counted
//! (`gnapd_crypto_operations_total` on /metrics, read by `gnapd compare`).

mod metrics;
mod primitives;
