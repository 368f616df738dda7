//! Reading a grant record in either form: compact (its first byte is
//! [`TAG`]) or JSON, as records were written before the compact form.
//! Writing is always compact.

use super::{TAG, decode, encode_entry, expiry};
use crate::store::sled::entry::{EntryExpiry, GrantEntry};
use crate::store::{RECORD_VERSION, StoreError};

impl GrantEntry {
    /// The bytes stored for this entry: always the compact form.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, StoreError> {
        encode_entry(self)
    }

    /// The entry stored as `bytes`, in either form.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.first() == Some(&TAG) {
            decode(bytes)
        } else {
            crate::store::codec::decode(bytes)
        }
    }
}

impl EntryExpiry {
    /// The expiries of the entry stored as `bytes`, in either form, read
    /// without decoding the rest.
    pub(crate) fn of(bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.first() == Some(&TAG) {
            return expiry(bytes);
        }
        match serde_json::from_slice::<EntryExpiry>(bytes) {
            Ok(due) if due.v == RECORD_VERSION => Ok(due),
            Ok(due) => Err(StoreError::Version(due.v)),
            Err(e) => Err(StoreError::Backend(format!(
                "reading a grant record's expiry: {e}"
            ))),
        }
    }
}
