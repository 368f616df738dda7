//! `gnapd store status` and `gnapd store migrate`: where the store's
//! schema stands, and bringing it up to date before the nodes start.
//!
//! The store is found as `gnapd serve` finds it: `--store`, else
//! `GNAPD_STORE`, else the config file's `store`, else sled in the data
//! dir. sled has no versioned schema (each record carries its own format,
//! read or upgraded when `gnapd serve` opens it) and allows one process per
//! directory, so these commands never open it: a running server's store
//! is left alone.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{StoreLocation, store_flag_or_env, store_location};
use crate::store::postgres::{Conninfo, SchemaVersions, Standing, migrate_schema, schema_status};

/// Arguments of `gnapd store`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// The schema version the store holds against the one this build
    /// knows: current, behind or newer (exit 1 when newer or
    /// unreachable). Changes nothing.
    Status(Target),
    /// Applies the missing schema steps (as a start would, under the same
    /// lock) and prints the versions from and to; refuses a schema newer
    /// than this build's.
    Migrate(Target),
}

/// Which store: as `gnapd serve` would find it.
#[derive(Debug, clap::Args)]
struct Target {
    /// A TOML config file (its `store` and `data_dir` are read).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory, for sled [default: ./gnapd-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A PostgreSQL conninfo; else `GNAPD_STORE`, else the config's
    /// `store` [default: sled in the data directory].
    #[arg(long, value_name = "CONNINFO")]
    store: Option<String>,
}

/// Runs `gnapd store …`.
pub fn run(args: Args) -> ExitCode {
    let (target, migrating) = match args.command {
        Command::Status(target) => (target, false),
        Command::Migrate(target) => (target, true),
    };
    let name = if migrating { "migrate" } else { "status" };
    let located = store_location(
        target.config.as_deref(),
        store_flag_or_env(target.store),
        target.data_dir,
    );
    let (store, data_dir) = match located {
        Ok(found) => found,
        Err(e) => {
            eprintln!("gnapd store {name}: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = match store {
        StoreLocation::Sled(at) => {
            sled(&at.unwrap_or_else(|| data_dir.join("store")), migrating);
            Ok(())
        }
        StoreLocation::Postgres(conninfo) if migrating => migrate(&conninfo),
        StoreLocation::Postgres(conninfo) => status(&conninfo),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gnapd store {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What there is to say of sled, without opening it.
fn sled(path: &std::path::Path, migrating: bool) {
    let state = if path.exists() {
        "exists"
    } else {
        "not created yet"
    };
    println!("store: sled at {} ({state})", path.display());
    println!(
        "schema: none versioned: each sled record carries its own format, read or upgraded \
         when `gnapd serve` opens the store"
    );
    if migrating {
        println!("nothing to migrate");
    }
}

fn status(conninfo: &Conninfo) -> Result<(), String> {
    let versions = schema_status(conninfo).map_err(|e| format!("{conninfo}: {e}"))?;
    println!("store: PostgreSQL at {conninfo}");
    let SchemaVersions { found, known } = versions;
    let held = match found {
        0 => "no gnapd schema".to_owned(),
        n => format!("schema version {n}"),
    };
    match versions.standing() {
        Standing::Current => {
            println!("schema: {held}, this build's {known}: current");
            Ok(())
        }
        Standing::Behind => {
            println!(
                "schema: {held}, this build's {known}: behind (`gnapd store migrate`, or the \
                 next `gnapd serve`, brings it up to date)"
            );
            Ok(())
        }
        Standing::Newer => Err(format!(
            "{held}, newer than this build's {known}: this gnapd refuses to run on it \
             (run the newer gnapd)"
        )),
    }
}

fn migrate(conninfo: &Conninfo) -> Result<(), String> {
    let SchemaVersions { found, known } =
        migrate_schema(conninfo).map_err(|e| format!("{conninfo}: {e}"))?;
    println!("store: PostgreSQL at {conninfo}");
    if found == known {
        println!("schema: already at version {known}, nothing to migrate");
    } else {
        println!("schema: migrated from version {found} to {known}");
    }
    Ok(())
}
