//! gnapd nodes outside dev mode sharing one PostgreSQL schema, one config
//! file, one master key (written here, as an operator gives every node the
//! same key) and one public URL (as behind a load balancer): the setting
//! of the tests that send each step of a flow to another node.

use std::path::{Path, PathBuf};

use crate::support::postgres::Schema;
use crate::support::server::{Serve, Server};

/// Every node's public URL.
pub const PUBLIC_URL: &str = "http://gnapd.test";

/// The nodes' shared setting; each [`Nodes::node`] is one more process.
pub struct Nodes {
    dir: PathBuf,
    pub schema: Schema,
    config: PathBuf,
    master_key: PathBuf,
    extra: Vec<String>,
}

impl Nodes {
    /// Nodes whose config file holds `config`, started with `extra` too.
    pub fn new(dir: &Path, config: &str, extra: &[&str]) -> Self {
        let path = dir.join("gnapd.toml");
        std::fs::write(&path, config).unwrap();
        let master_key = dir.join("master.key");
        let mut key = [0u8; 32];
        gnapd::random::fill(&mut key).unwrap();
        std::fs::write(&master_key, gnapd::proto::b64::encode_url(&key)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&master_key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        Self {
            dir: dir.to_owned(),
            schema: Schema::new(),
            config: path,
            master_key,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// Node `name`'s data dir (its admin socket is there).
    pub fn data(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Starts node `name`, with a data dir and log of its own.
    pub fn node(&self, name: &str) -> Server {
        let mut args = vec![
            "--store".to_owned(),
            self.schema.conninfo.clone(),
            "--config".to_owned(),
            self.config.display().to_string(),
            "--public-url".to_owned(),
            PUBLIC_URL.to_owned(),
            "--master-key-file".to_owned(),
            self.master_key.display().to_string(),
        ];
        args.extend(self.extra.iter().cloned());
        Serve::new(&self.data(name))
            .args(&args)
            .log(&self.dir.join(format!("{name}.log")))
            .start()
    }
}
