//! Where the database is: a `postgres://` URL or a libpq `key=value`
//! conninfo, read by the driver's own parser. Either may hold a password,
//! so the text itself is never logged: [`Conninfo`]'s `Display` says
//! where, as whom, which database and how it is secured, and nothing else.
//!
//! `sslmode` and `sslrootcert` are taken out before the driver reads the
//! rest: it knows neither `verify-ca`/`verify-full` nor a root file, and
//! the certificate checks are ours (`tls.rs`).

use std::fmt;

use postgres::Config;
use postgres::config::Host;

use super::tls::{SslMode, TlsSettings};
use crate::store::StoreError;

/// A parsed conninfo.
#[derive(Clone)]
pub struct Conninfo {
    pub(super) config: Config,
    pub(super) tls: TlsSettings,
}

impl Conninfo {
    /// Reads `text` (`postgres://…`, `postgresql://…` or `key=value …`).
    /// The error says what is wrong without repeating the text.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let (rest, tls) = if is_url(text) {
            take_tls_from_url(text)?
        } else {
            take_tls_from_pairs(text)?
        };
        let mut config: Config = rest.parse().map_err(|e: postgres::Error| {
            StoreError::Backend(format!("not a PostgreSQL conninfo: {e}"))
        })?;
        config.ssl_mode(tls.mode().driver());
        if config.get_hosts().is_empty() {
            return Err(StoreError::Backend(
                "a PostgreSQL conninfo must name a host (or a socket directory)".into(),
            ));
        }
        Ok(Self { config, tls })
    }

    /// The `sslmode` in effect (`prefer` unless the conninfo says).
    pub fn ssl_mode(&self) -> SslMode {
        self.tls.mode()
    }

    /// True if `text` is meant as a PostgreSQL conninfo rather than a path:
    /// a `postgres://` or `postgresql://` URL, or `key=value` pairs.
    pub fn looks_like(text: &str) -> bool {
        is_url(text)
            || text
                .split_whitespace()
                .next()
                .is_some_and(|word| word.split_once('=').is_some_and(|(k, _)| is_key(k)))
    }
}

fn is_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// The libpq keywords a conninfo starts with in practice.
const KEYS: [&str; 9] = [
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "options",
    "sslmode",
    "sslrootcert",
];

/// Records one of the TLS parameters; false if `key` is not one.
fn take_tls(tls: &mut TlsSettings, key: &str, value: &str) -> Result<bool, StoreError> {
    match key {
        "sslmode" => tls.mode = Some(SslMode::parse(value)?),
        // libpq's `system`: the system's roots, as when it is absent.
        "sslrootcert" if value == "system" => tls.root_cert = None,
        "sslrootcert" => tls.root_cert = Some(value.into()),
        _ => return Ok(false),
    }
    Ok(true)
}

fn no_tls() -> TlsSettings {
    TlsSettings {
        mode: None,
        root_cert: None,
    }
}

/// The URL without its `sslmode`/`sslrootcert` query parameters, and
/// them (the last of each wins, as with libpq).
fn take_tls_from_url(text: &str) -> Result<(String, TlsSettings), StoreError> {
    let mut tls = no_tls();
    let Some((base, query)) = text.split_once('?') else {
        return Ok((text.to_owned(), tls));
    };
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !take_tls(&mut tls, &percent_decoded(key)?, &percent_decoded(value)?)? {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, tls))
}

fn percent_decoded(text: &str) -> Result<String, StoreError> {
    let bad = || StoreError::Backend("not a PostgreSQL conninfo: a bad %-escape".into());
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = tail.get(..2).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            bytes.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).map_err(|_| bad())
}

/// The `key=value` text without its `sslmode`/`sslrootcert` pairs (the
/// others kept as written, quoting and all), and them. Values follow
/// libpq's syntax: single-quoted or bare, `\` escaping the next character.
fn take_tls_from_pairs(text: &str) -> Result<(String, TlsSettings), StoreError> {
    let bad = |what: &str| StoreError::Backend(format!("not a PostgreSQL conninfo: {what}"));
    let mut tls = no_tls();
    let mut kept: Vec<&str> = Vec::new();
    let mut chars = text.char_indices().peekable();
    let skip_space = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_space(&mut chars);
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        skip_space(&mut chars);
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            return Err(bad("a keyword without `=`"));
        }
        skip_space(&mut chars);
        let quoted = chars.next_if(|(_, c)| *c == '\'').is_some();
        let mut value = String::new();
        let mut closed = !quoted;
        while let Some(&(_, c)) = chars.peek() {
            if !quoted && c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '\\' => value.extend(chars.next().map(|(_, c)| c)),
                '\'' if quoted => {
                    closed = true;
                    break;
                }
                c => value.push(c),
            }
        }
        if !closed {
            return Err(bad("a quoted value without its closing quote"));
        }
        let end = chars.peek().map_or(text.len(), |&(at, _)| at);
        if !take_tls(&mut tls, &key, &value)? {
            kept.push(&text[start..end]);
        }
    }
    Ok((kept.join(" "), tls))
}

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
        if let Some(mode) = self.tls.mode {
            write!(f, " sslmode={}", mode.name())?;
        }
        if let Some(root) = &self.tls.root_cert {
            write!(f, " sslrootcert={}", root.display())?;
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

    #[test]
    fn sslmode_and_sslrootcert_are_read_from_either_form_and_the_rest_reaches_the_driver() {
        for text in [
            "host=db.example port=5433 user=gnapd password='a \\'quoted\\' secret' sslmode=verify-full sslrootcert=/etc/ca.pem dbname=gnapd",
            "postgres://gnapd:pw@db.example:5433/gnapd?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        ] {
            let conninfo = Conninfo::parse(text).unwrap();
            assert_eq!(conninfo.ssl_mode(), SslMode::VerifyFull);
            assert_eq!(
                conninfo.tls.root_cert.as_deref(),
                Some(std::path::Path::new("/etc/ca.pem"))
            );
            assert_eq!(
                conninfo.config.get_ssl_mode(),
                postgres::config::SslMode::Require
            );
            assert_eq!(conninfo.config.get_dbname(), Some("gnapd"));
            assert_eq!(conninfo.config.get_ports(), &[5433]);
            assert_eq!(
                conninfo.to_string(),
                "host=db.example port=5433 user=gnapd dbname=gnapd sslmode=verify-full \
                 sslrootcert=/etc/ca.pem"
            );
        }
        let quoted =
            Conninfo::parse("host=db password='a \\'quoted\\' secret' sslmode=require dbname=x")
                .unwrap();
        assert_eq!(
            quoted.config.get_password(),
            Some(&b"a 'quoted' secret"[..])
        );
    }

    #[test]
    fn each_sslmode_maps_onto_the_driver_and_unknown_ones_are_refused() {
        use postgres::config::SslMode as Driver;
        for (mode, driver) in [
            ("disable", Driver::Disable),
            ("prefer", Driver::Prefer),
            ("require", Driver::Require),
            ("verify-ca", Driver::Require),
            ("verify-full", Driver::Require),
        ] {
            let conninfo = Conninfo::parse(&format!("host=db sslmode={mode}")).unwrap();
            assert_eq!(conninfo.config.get_ssl_mode(), driver, "{mode}");
            assert_eq!(conninfo.ssl_mode().name(), mode);
        }
        assert_eq!(
            Conninfo::parse("host=db").unwrap().ssl_mode(),
            SslMode::Prefer
        );
        let system = Conninfo::parse("postgres://db/x?sslrootcert=system").unwrap();
        assert_eq!(system.tls.root_cert, None);
        for text in [
            "host=db sslmode=allow",
            "postgres://db/x?sslmode=verify_full",
        ] {
            let refused = Conninfo::parse(text).unwrap_err().to_string();
            assert!(refused.contains("sslmode must be"), "{refused}");
        }
    }
}
