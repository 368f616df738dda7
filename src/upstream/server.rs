//! Upstream MCP servers as the gateway forwards to them: a name, a
//! transport — a Streamable HTTP URL, or a command the gateway runs and
//! speaks to over stdio ([`Transport`]) — and how the gateway authenticates
//! there: a header for HTTP upstreams, environment variables for stdio ones.
//!
//! Secrets given in the config file or on the command line are parsed into
//! [`Secret`] (whose `Debug` redacts and whose memory is wiped on drop), then
//! at serve start sealed under the master key into the store as each
//! upstream's enterprise-held credential set ([`enroll`]); the plaintext is
//! dropped, and the gateway opens the set a token is mapped to per call.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::Secret;
use super::credential::{Credential, CredentialError, check_env_var};
use super::oauth2::OAuth2Credential;
use crate::proto::httpsig::message::TargetUri;
use crate::store::{CredentialKind, CredentialSetRecord, RECORD_VERSION, Store, StoreError};
use crate::upstream::connect::{Connect, ConnectError};
use crate::upstream::vault::{MasterKey, VaultError};

mod enroll;
mod entry;
mod error;
mod stored;

pub use enroll::{EnrollError, enroll, enterprise_set_id};
pub use entry::UpstreamEntry;
use error::invalid;
pub use error::{CommandError, Problem, UpstreamError};

/// How the gateway reaches an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Streamable HTTP at a URL (`http://host:port/path`).
    Http {
        /// The endpoint.
        url: String,
    },
    /// A process the gateway starts, speaking MCP over its stdin/stdout
    /// (`crate::gateway::stdio`).
    Stdio(StdioCommand),
}

/// A stdio upstream's command. Everything here is configuration, not
/// secret: secrets go in an `env` credential, which is sealed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StdioCommand {
    /// The program (looked up on the gateway's `PATH` when it has no `/`).
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its working directory (default: the gateway's).
    pub cwd: Option<PathBuf>,
    /// Plain environment variables, besides `PATH`, `HOME`, `LANG` and the
    /// credential's.
    pub env: BTreeMap<String, String>,
}

impl StdioCommand {
    /// Parses the command-line form `COMMAND ARG…` (split at whitespace).
    pub fn parse(spec: &str) -> Result<Self, CommandError> {
        let mut words = spec.split_whitespace().map(str::to_owned);
        let command = words.next().ok_or(CommandError::Missing)?;
        Ok(Self {
            command,
            args: words.collect(),
            ..Self::default()
        })
    }

    fn check(&self) -> Result<(), CommandError> {
        if self.command.is_empty() {
            return Err(CommandError::Empty);
        }
        if self.command.contains('\0') || self.args.iter().any(|a| a.contains('\0')) {
            return Err(CommandError::Nul);
        }
        for (name, value) in &self.env {
            check_env_var(name, value)?;
        }
        Ok(())
    }
}

/// One upstream MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The name agents use: `{public}/mcp/{name}`, `mcp:{name}`.
    pub name: String,
    /// How it is reached.
    pub transport: Transport,
    /// How the gateway authenticates there, as configured. [`enroll`] seals
    /// it into the store and leaves `None` here.
    pub credential: Credential,
    /// The enterprise-held credential set for this upstream, once
    /// [`enroll`]ed: a token must be mapped to a set here to be forwarded.
    pub credential_set: Option<String>,
    /// How a person connects it on the consent page, if they can
    /// (`crate::upstream::connect`).
    pub connect: Option<Connect>,
}

/// Whether `name` can name an upstream (a URL path segment and the suffix of
/// an `mcp:` reference): 1–64 of `A-Z a-z 0-9 - _ .`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_name(name: &str) -> Result<(), UpstreamError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(UpstreamError::Name(name.to_owned()))
    }
}

/// The prefix of a stdio upstream in `--upstream NAME=stdio:COMMAND ARG…`.
pub const STDIO_PREFIX: &str = "stdio:";

impl Upstream {
    /// An upstream from the command-line form: `stdio:COMMAND ARG…` or a
    /// URL.
    pub fn from_spec(
        name: &str,
        spec: &str,
        credential: Credential,
    ) -> Result<Self, UpstreamError> {
        match spec.strip_prefix(STDIO_PREFIX) {
            Some(command) => {
                let command = StdioCommand::parse(command).map_err(|e| invalid(name, e))?;
                Self::stdio(name, command, credential)
            }
            None => Self::new(name, spec, credential),
        }
    }

    /// Checks and builds a stdio upstream.
    pub fn stdio(
        name: &str,
        command: StdioCommand,
        credential: Credential,
    ) -> Result<Self, UpstreamError> {
        check_name(name)?;
        command.check().map_err(|e| invalid(name, e))?;
        Ok(Self {
            name: name.to_owned(),
            transport: Transport::Stdio(command),
            credential,
            credential_set: None,
            connect: None,
        })
    }

    /// The Streamable HTTP URL, for an HTTP upstream.
    pub fn url(&self) -> Option<&str> {
        match &self.transport {
            Transport::Http { url } => Some(url),
            Transport::Stdio(_) => None,
        }
    }

    /// What to log about where it is: the URL, or the stdio program (not
    /// its arguments, which a careless config might fill with secrets).
    pub fn location(&self) -> String {
        match &self.transport {
            Transport::Http { url } => url.clone(),
            Transport::Stdio(c) => format!("stdio:{}", c.command),
        }
    }

    /// Refuses a credential the transport cannot present: `env` is for
    /// stdio upstreams, `bearer`/`header`/`basic` for HTTP ones.
    pub fn check_credential(&self) -> Result<(), UpstreamError> {
        let fits = match (&self.transport, &self.credential) {
            (_, Credential::None) => true,
            (Transport::Stdio(_), Credential::Env(_)) => true,
            (Transport::Stdio(_), _) => false,
            (Transport::Http { .. }, Credential::Env(_)) => false,
            (Transport::Http { .. }, _) => true,
        };
        if fits {
            return Ok(());
        }
        let (transport, allowed) = match self.transport {
            Transport::Stdio(_) => ("stdio", "env or none"),
            Transport::Http { .. } => ("http", "bearer, header, basic or none"),
        };
        Err(UpstreamError::CredentialMismatch {
            name: self.name.clone(),
            transport,
            allowed,
            kind: self.credential.kind_name(),
        })
    }

    /// Checks and builds an HTTP upstream: an `http` or `https` URL
    /// without user information.
    pub fn new(name: &str, url: &str, credential: Credential) -> Result<Self, UpstreamError> {
        check_name(name)?;
        let parsed = TargetUri::parse(url).map_err(|_| invalid(name, Problem::NotAbsolute))?;
        if !matches!(parsed.normalized_scheme().as_ref(), "http" | "https") {
            return Err(invalid(name, Problem::Scheme));
        }
        let uri = url
            .parse::<hyper::Uri>()
            .map_err(|_| invalid(name, Problem::Unusable))?;
        // The URL is logged: credentials belong in the credential, where
        // they are kept secret.
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(invalid(name, Problem::UserInfo));
        }
        Ok(Self {
            name: name.to_owned(),
            transport: Transport::Http {
                url: url.to_owned(),
            },
            credential,
            credential_set: None,
            connect: None,
        })
    }
}

/// Parses `NAME=VALUE` (the shape of `--upstream` and
/// `--upstream-credential`).
pub fn split_assignment(spec: &str) -> Result<(&str, &str), UpstreamError> {
    spec.split_once('=')
        .filter(|(name, _)| valid_name(name))
        .ok_or(UpstreamError::Assignment)
}

#[cfg(test)]
mod tests {
    use super::entry::CredentialEntry;
    use super::*;

    #[test]
    fn credential_specs_parse_and_never_print_their_secret() {
        let c = Credential::parse("bearer:s3cr3t").unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let (name, value) = c.header_to_inject().unwrap();
        assert_eq!(name, "authorization");
        assert_eq!(value.to_str().unwrap(), "Bearer s3cr3t");
        assert!(value.is_sensitive());

        let c = Credential::parse("header:X-Api-Key:k:with:colons").unwrap();
        let (name, value) = c.header_to_inject().unwrap();
        assert_eq!(name, "x-api-key");
        assert_eq!(value.to_str().unwrap(), "k:with:colons");

        let c = Credential::parse("basic:alice:pw:x").unwrap();
        assert!(!format!("{c:?}").contains("pw:x"));
        let (_, value) = c.header_to_inject().unwrap();
        assert_eq!(value.to_str().unwrap(), "Basic YWxpY2U6cHc6eA==");

        assert_eq!(Credential::parse("none").unwrap(), Credential::None);
        for bad in [
            "bearer:",
            "header:Host:x",
            "header:nocolon",
            "basic:nopass",
            "oauth:x",
            "header:Bad Name:x",
        ] {
            let err = Credential::parse(bad).unwrap_err();
            assert!(!err.to_string().contains("nopass"), "{err}");
        }
    }

    #[test]
    fn upstreams_need_a_valid_name_and_an_http_or_https_url() {
        assert!(Upstream::new("github", "http://127.0.0.1:9/mcp", Credential::None).is_ok());
        assert!(Upstream::new("github", "https://mcp.example.com/mcp", Credential::None).is_ok());
        assert!(Upstream::new("git/hub", "http://127.0.0.1:9/mcp", Credential::None).is_err());
        assert!(Upstream::new("..", "http://127.0.0.1:9/mcp", Credential::None).is_err());
        assert!(Upstream::new("github", "ftp://x/", Credential::None).is_err());
        assert!(Upstream::new("github", "not a url", Credential::None).is_err());
        let err = Upstream::new("gh", "http://u:pw@127.0.0.1:9/", Credential::None).unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
        assert_eq!(
            split_assignment("gh=bearer:x=y").unwrap(),
            ("gh", "bearer:x=y")
        );
        assert!(split_assignment("=x").is_err());
    }

    #[test]
    fn enroll_seals_credentials_into_the_store_and_drops_the_plaintext() {
        use crate::store::memory::MemoryStore;
        let key = MasterKey::from_text(&crate::proto::b64::encode_url(&[3u8; 32])).unwrap();
        let store = MemoryStore::new();
        let mut upstreams = vec![
            Upstream::new(
                "gh",
                "http://127.0.0.1:9/mcp",
                Credential::parse("header:X-Api-Key:s3cr3t-value").unwrap(),
            )
            .unwrap(),
            Upstream::new("open", "http://127.0.0.1:9/mcp", Credential::None).unwrap(),
        ];
        enroll(
            &mut upstreams,
            &store,
            &key,
            &crate::clock::ManualClock::at(1_000),
            std::time::Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!(upstreams[0].credential, Credential::None);
        assert_eq!(
            upstreams[0].credential_set.as_deref(),
            Some("enterprise:gh")
        );
        assert_eq!(upstreams[1].credential_set, None);
        assert_eq!(store.credential_set("enterprise:open").unwrap(), None);

        let set = store.credential_set("enterprise:gh").unwrap().unwrap();
        assert_eq!(set.kind, CredentialKind::Header);
        assert_eq!(set.header_name.as_deref(), Some("x-api-key"));
        let shown = format!("{set:?}");
        assert!(shown.contains("redacted"), "{shown}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        let sealed_b64 = crate::proto::b64::encode_url(&set.sealed);
        assert!(!shown.contains(&sealed_b64), "{shown}");
        assert!(!set.sealed.windows(6).any(|w| w == b"s3cr3t"));
        let json = serde_json::to_string(&set).unwrap();
        assert!(!json.contains("s3cr3t"), "{json}");

        let opened = key.open(&set.id, &set.sealed).unwrap();
        let credential =
            Credential::from_opened(set.kind, set.header_name.as_deref(), &opened).unwrap();
        assert_eq!(
            credential.header_to_inject().unwrap().1.to_str().unwrap(),
            "s3cr3t-value"
        );
        // Moved to another id, the sealed secret does not open.
        assert!(key.open("enterprise:other", &set.sealed).is_err());

        let basic = Credential::parse("basic:alice:pw:x").unwrap();
        let (kind, _, secret) = basic.to_sealable().unwrap();
        assert_eq!(Credential::from_opened(kind, None, &secret).unwrap(), basic);
    }

    #[test]
    fn toml_entries_build_credentials() {
        #[derive(Deserialize)]
        struct F {
            upstream: Vec<UpstreamEntry>,
        }
        let f: F = toml::from_str(
            "[[upstream]]\nname = \"gh\"\nurl = \"http://127.0.0.1:1/mcp\"\ncredential = { kind = \"bearer\", token = \"t0k\" }\n\n[[upstream]]\nname = \"open\"\nurl = \"http://127.0.0.1:2/mcp\"\n",
        )
        .unwrap();
        assert!(!format!("{:?}", f.upstream).contains("t0k"));
        let c = f.upstream[0].credential.clone().into_credential().unwrap();
        assert_eq!(c, Credential::Bearer(Secret::new("t0k")));
        assert!(matches!(f.upstream[1].credential, CredentialEntry::None));

        let f: F = toml::from_str(
            "[[upstream]]\nname = \"gh\"\nurl = \"http://127.0.0.1:1/mcp\"\ncredential = { kind = \"oauth2\", access_token = \"at-0\", refresh_token = \"rt-0\", token_endpoint = \"http://127.0.0.1:1/token\", client_id = \"gnapd\" }\n",
        )
        .unwrap();
        assert!(!format!("{:?}", f.upstream).contains("at-0"));
        let c = f.upstream[0].credential.clone().into_credential().unwrap();
        let (name, value) = c.header_to_inject().unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("authorization", "Bearer at-0")
        );
        let (kind, _, sealed) = c.to_sealable().unwrap();
        assert_eq!(Credential::from_opened(kind, None, &sealed).unwrap(), c);
    }

    #[test]
    fn env_credentials_parse_merge_seal_and_open_without_printing_values() {
        let a = Credential::parse("env:API_KEY=k=with=equals").unwrap();
        let b = Credential::parse("env:OTHER=v2").unwrap();
        let merged = a.clone().merge(b).unwrap();
        assert!(!format!("{merged:?}").contains("k=with=equals"));
        let vars: Vec<_> = merged.env_vars().collect();
        assert_eq!(vars, [("API_KEY", "k=with=equals"), ("OTHER", "v2")]);
        assert!(merged.header_to_inject().is_none());
        // The same variable twice, or env mixed with another kind: refused.
        assert!(merged.clone().merge(a.clone()).is_err());
        assert!(
            a.clone()
                .merge(Credential::parse("bearer:x").unwrap())
                .is_err()
        );
        for bad in [
            "env:",
            "env:NOEQUALS",
            "env:1BAD=x",
            "env:BAD-NAME=x",
            "env:=x",
            "env:A=\0",
        ] {
            let err = Credential::parse(bad).unwrap_err();
            assert!(!err.to_string().contains("k=with"), "{err}");
        }

        let (kind, header, secret) = merged.to_sealable().unwrap();
        assert_eq!(kind, CredentialKind::Env);
        assert_eq!(header, None);
        assert_eq!(
            Credential::from_opened(kind, None, &secret).unwrap(),
            merged
        );
        for damaged in [
            &b"[]"[..],
            b"{}",
            b"{\"A\": 1}",
            b"{\"1A\": \"x\"}",
            b"not json",
        ] {
            let err = Credential::from_opened(CredentialKind::Env, None, damaged).unwrap_err();
            assert!(err.to_string().contains("env"), "{err}");
        }
    }

    #[test]
    fn stdio_upstreams_come_from_specs_and_toml_and_take_only_env_credentials() {
        let u = Upstream::from_spec(
            "everything",
            "stdio:npx  -y @modelcontextprotocol/server-everything",
            Credential::None,
        )
        .unwrap();
        let Transport::Stdio(command) = &u.transport else {
            panic!("{u:?}")
        };
        assert_eq!(command.command, "npx");
        assert_eq!(
            command.args,
            ["-y", "@modelcontextprotocol/server-everything"]
        );
        assert_eq!(u.url(), None);
        assert_eq!(u.location(), "stdio:npx");
        assert!(Upstream::from_spec("x", "stdio:", Credential::None).is_err());
        assert!(Upstream::from_spec("x", "stdio:   ", Credential::None).is_err());
        let http = Upstream::from_spec("x", "http://127.0.0.1:9/mcp", Credential::None).unwrap();
        assert_eq!(http.url(), Some("http://127.0.0.1:9/mcp"));

        let mut env = u.clone();
        env.credential = Credential::parse("env:API_KEY=x").unwrap();
        assert!(env.check_credential().is_ok());
        let mut bearer = u.clone();
        bearer.credential = Credential::parse("bearer:SECRET-B").unwrap();
        let err = bearer.check_credential().unwrap_err().to_string();
        assert!(
            err.contains("stdio") && err.contains("bearer") && !err.contains("SECRET-B"),
            "{err}"
        );
        let mut http_env = http.clone();
        http_env.credential = Credential::parse("env:API_KEY=SECRET-E").unwrap();
        let err = http_env.check_credential().unwrap_err().to_string();
        assert!(
            err.contains("http") && err.contains("env") && !err.contains("SECRET-E"),
            "{err}"
        );

        #[derive(Deserialize)]
        struct F {
            upstream: Vec<UpstreamEntry>,
        }
        let f: F = toml::from_str(
            "[[upstream]]\nname = \"everything\"\ncommand = \"npx\"\nargs = [\"-y\", \"pkg\"]\ncwd = \"/tmp\"\nenv = { LOG_LEVEL = \"info\" }\ncredential = { kind = \"env\", vars = { API_KEY = \"t0k\" } }\n",
        )
        .unwrap();
        assert!(!format!("{:?}", f.upstream).contains("t0k"));
        let u = f.upstream[0].clone().into_upstream().unwrap();
        let Transport::Stdio(command) = &u.transport else {
            panic!("{u:?}")
        };
        assert_eq!(command.args, ["-y", "pkg"]);
        assert_eq!(command.cwd.as_deref(), Some(std::path::Path::new("/tmp")));
        assert_eq!(command.env["LOG_LEVEL"], "info");
        assert_eq!(
            u.credential.env_vars().collect::<Vec<_>>(),
            [("API_KEY", "t0k")]
        );

        for bad in [
            // Both, or neither.
            "name = \"a\"\nurl = \"http://x/\"\ncommand = \"npx\"\n",
            "name = \"a\"\n",
            // stdio settings on an HTTP upstream.
            "name = \"a\"\nurl = \"http://x/\"\nargs = [\"-y\"]\n",
            // A bad variable name.
            "name = \"a\"\ncommand = \"x\"\nenv = { \"BAD-NAME\" = \"v\" }\n",
            "name = \"a\"\ncommand = \"x\"\ncredential = { kind = \"env\", vars = {} }\n",
        ] {
            let f: F = toml::from_str(&format!("[[upstream]]\n{bad}")).unwrap();
            assert!(f.upstream[0].clone().into_upstream().is_err(), "{bad}");
        }
    }
}
