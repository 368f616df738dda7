//! Where the database is: a `postgres://` URL or a libpq `key=value`
//! conninfo, read by the driver's own parser. Either may hold a password,
//! so the text itself is never logged: [`Conninfo`]'s `Display` says
//! where, as whom and which database, and nothing else.

use std::fmt;

use postgres::Config;
use postgres::config::Host;

use crate::store::StoreError;

/// A parsed conninfo.
#[derive(Clone)]
pub struct Conninfo {
    pub(super) config: Config,
}

impl Conninfo {
    /// Reads `text` (`postgres://…`, `postgresql://…` or `key=value …`).
    /// The error says what is wrong without repeating the text.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let config: Config = text.parse().map_err(|e: postgres::Error| {
            StoreError::Backend(format!("not a PostgreSQL conninfo: {e}"))
        })?;
        if config.get_hosts().is_empty() {
            return Err(StoreError::Backend(
                "a PostgreSQL conninfo must name a host (or a socket directory)".into(),
            ));
        }
        Ok(Self { config })
    }

    /// True if `text` is meant as a PostgreSQL conninfo rather than a path:
    /// a `postgres://` or `postgresql://` URL, or `key=value` pairs.
    pub fn looks_like(text: &str) -> bool {
        text.starts_with("postgres://")
            || text.starts_with("postgresql://")
            || text
                .split_whitespace()
                .next()
                .is_some_and(|word| word.split_once('=').is_some_and(|(k, _)| is_key(k)))
    }
}

/// The libpq keywords a conninfo starts with in practice.
const KEYS: [&str; 8] = [
    "host", "hostaddr", "port", "dbname", "user", "password", "options", "sslmode",
];

fn is_key(word: &str) -> bool {
    KEYS.contains(&word)
}

impl fmt::Display for Conninfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .map(|host| match host {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let ports: Vec<String> = self.config.get_ports().iter().map(u16::to_string).collect();
        write!(f, "host={}", hosts.join(","))?;
        if !ports.is_empty() {
            write!(f, " port={}", ports.join(","))?;
        }
        if let Some(user) = self.config.get_user() {
            write!(f, " user={user}")?;
        }
        if let Some(dbname) = self.config.get_dbname() {
            write!(f, " dbname={dbname}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Conninfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Conninfo({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conninfo_with_a_password_never_shows_it() {
        for text in [
            "postgres://gnapd:hunter2secret@db.example:5433/gnapd",
            "host=db.example port=5433 user=gnapd password=hunter2secret dbname=gnapd",
        ] {
            let conninfo = Conninfo::parse(text).unwrap();
            let shown = format!("{conninfo} {conninfo:?}");
            assert!(!shown.contains("hunter2secret"), "{shown}");
            assert!(shown.contains("host=db.example port=5433 user=gnapd dbname=gnapd"));
        }
    }

    #[test]
    fn urls_and_key_value_pairs_are_conninfos_and_paths_are_not() {
        assert!(Conninfo::looks_like("postgres://db/gnapd"));
        assert!(Conninfo::looks_like("postgresql://db/gnapd"));
        assert!(Conninfo::looks_like("host=/run/postgresql dbname=gnapd"));
        assert!(!Conninfo::looks_like("./gnapd-data"));
        assert!(!Conninfo::looks_like("/var/lib/gnapd"));
        assert!(!Conninfo::looks_like("data=dir"));
        assert!(Conninfo::parse("dbname=gnapd").is_err(), "no host");
        let wrong = Conninfo::parse("host=db password='unterminated").unwrap_err();
        assert!(!wrong.to_string().contains("unterminated"), "{wrong}");
    }
}
