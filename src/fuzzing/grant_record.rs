//! The `grant_record` hook: sled's grant records read from hostile bytes.

/// A grant record as sled holds it (compact, or JSON as older builds
/// wrote it), read by `store::sled::danger_check_record_bytes`.
///
/// Input: the stored bytes. Properties: reading never panics nor
/// allocates beyond the input (lengths are checked against the bytes
/// left); an entry that reads is written again (compact) to bytes that
/// read back to the same entry; the expiries a sweep reads from the header
/// alone are the entry's, in the stored bytes and in the rewritten ones.
pub fn grant_record(data: &[u8]) {
    if let Err(broken) = crate::store::sled::danger_check_record_bytes(data) {
        panic!("grant record: {broken}");
    }
}
