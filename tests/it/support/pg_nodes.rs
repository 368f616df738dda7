//! gnapd nodes sharing one PostgreSQL schema, one master key and one
//! public URL (as behind a load balancer), each a `gnapd serve` process
//! with a data dir, log and port of its own: outside dev mode with one
//! config file and the key written here, as an operator gives every node
//! the same key ([`Nodes::new`]), or in dev mode, where the first node
//! started generates the key and the others are given that file
//! ([`Nodes::dev`]).

use std::path::{Path, PathBuf};

use crate::support::postgres::Schema;
use crate::support::server::{Serve, Server};

/// Every node's public URL.
pub const PUBLIC_URL: &str = "http://gnapd.test";

/// The nodes' shared setting; each [`Nodes::node`] is one more process.
pub struct Nodes {
    dir: PathBuf,
    pub schema: Schema,
    /// What every node is started with besides the store, the public URL
    /// and the master key: `--dev`, `--config` and the caller's own.
    args: Vec<String>,
    master_key: PathBuf,
}

impl Nodes {
    /// Nodes outside dev mode whose config file holds `config`, started
    /// with `extra` too.
    pub fn new(dir: &Path, config: &str, extra: &[&str]) -> Self {
        let nodes = Self::with(dir, &[], Some(config), extra);
        let mut key = [0u8; 32];
        gnapd::random::fill(&mut key).unwrap();
        std::fs::write(&nodes.master_key, gnapd::proto::b64::encode_url(&key)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&nodes.master_key, std::fs::Permissions::from_mode(0o600))
                .unwrap();
        }
        nodes
    }

    /// `--dev` nodes, with a config file holding `config` if given,
    /// started with `extra` too. The first node started generates the
    /// master key (dev mode does); the later ones are given that file.
    pub fn dev(dir: &Path, config: Option<&str>, extra: &[&str]) -> Self {
        Self::with(dir, &["--dev"], config, extra)
    }

    fn with(dir: &Path, mode: &[&str], config: Option<&str>, extra: &[&str]) -> Self {
        let mut args: Vec<String> = mode.iter().map(|s| (*s).to_owned()).collect();
        if let Some(config) = config {
            let path = dir.join("gnapd.toml");
            std::fs::write(&path, config).unwrap();
            args.extend(["--config".to_owned(), path.display().to_string()]);
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Self {
            dir: dir.to_owned(),
            schema: Schema::new(),
            args,
            master_key: dir.join("master.key"),
        }
    }

    /// Node `name`'s data dir (its admin socket is there).
    pub fn data(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Starts node `name`, with a data dir and log of its own.
    pub fn node(&self, name: &str) -> Server {
        let data = self.data(name);
        let mut args = vec![
            "--store".to_owned(),
            self.schema.conninfo.clone(),
            "--public-url".to_owned(),
            PUBLIC_URL.to_owned(),
        ];
        args.extend(self.args.iter().cloned());
        let given_key = self.master_key.exists();
        if given_key {
            args.push("--master-key-file".to_owned());
            args.push(self.master_key.display().to_string());
        }
        let server = Serve::new(&data)
            .args(&args)
            .log(&self.dir.join(format!("{name}.log")))
            .start();
        // A dev node given no key generated one in its data dir.
        let generated = data.join("master.key");
        if !given_key && generated.exists() {
            std::fs::copy(&generated, &self.master_key).unwrap();
        }
        server
    }
}
