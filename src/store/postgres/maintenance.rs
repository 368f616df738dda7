//! `gnapd store status` and `gnapd store migrate` on PostgreSQL: one
//! connection of their own (over TLS as the conninfo says), no pool, no
//! listener. Status reads in a read-only transaction and creates nothing;
//! migrate runs the same steps, under the same advisory lock, as a
//! store's open.

use super::Conninfo;
use super::pool::connect;
use super::schema::{self, SCHEMA_VERSION};
use super::sql::{connect_failed, failed};
use crate::store::StoreError;

/// Where a database's schema stands against this build's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// At this build's version.
    Current,
    /// Older (or absent): a migration, or the next start, brings it up.
    Behind,
    /// Newer than this build knows: it refuses to run on it.
    Newer,
}

/// The schema version found (0: none) against the one this build knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemaVersions {
    pub found: i32,
    pub known: i32,
}

impl SchemaVersions {
    pub fn standing(self) -> Standing {
        match self.found.cmp(&self.known) {
            std::cmp::Ordering::Equal => Standing::Current,
            std::cmp::Ordering::Less => Standing::Behind,
            std::cmp::Ordering::Greater => Standing::Newer,
        }
    }
}

/// The schema's version, read without writing anything.
pub fn schema_status(conninfo: &Conninfo) -> Result<SchemaVersions, StoreError> {
    let mut client = connect(&conninfo.config, &conninfo.tls.connector()?)
        .map_err(|e| connect_failed("connecting", &e))?;
    let found = schema::found(&mut client).map_err(|e| failed("reading the schema version", &e))?;
    Ok(SchemaVersions {
        found,
        known: SCHEMA_VERSION,
    })
}

/// Applies the missing steps; `found` is the version before. A schema
/// newer than this build's is refused, untouched.
pub fn migrate_schema(conninfo: &Conninfo) -> Result<SchemaVersions, StoreError> {
    let mut client = connect(&conninfo.config, &conninfo.tls.connector()?)
        .map_err(|e| connect_failed("connecting", &e))?;
    let found = schema::migrate(&mut client)?;
    Ok(SchemaVersions {
        found,
        known: SCHEMA_VERSION,
    })
}
