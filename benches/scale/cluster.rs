//! `--cluster`: brand-new agents to their first token, and gateway calls,
//! with 1, 2, … `--nodes` gnapd nodes on one PostgreSQL schema, beside one
//! node on its embedded sled store, in one run (issue 20, "Benchmark").
//!
//! The nodes are `gnapd serve --dev` processes, each with its own data dir
//! and port, sharing the schema, the master key and one public URL (as
//! behind a load balancer); the generator spreads its connections over
//! them round-robin, which is what the balancer would do. Each setup
//! starts afresh (new data dirs, a new schema), and the setups' order
//! rotates from run to run. The server CPU is every node's, and the
//! database server's processes (its postmaster and backends) are counted
//! apart. All of it shares the machine's cores with the generator and
//! the upstream: with 2 cores, more nodes cannot add CPU, only spread it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use super::agents::{self, Agent, Target};
use super::args::{Cluster, Config};
use super::calls::{self, CallWindow};
use super::flow_window::{self, FlowWindow, Server};
use super::load::Holder;
use super::procfs;
use super::server::{Gnapd, Place};
use super::wire::Conn;
use super::{Res, Upstream, runtime};

/// The name every node answers for (each signs and checks requests
/// against it), as behind a load balancer.
const PUBLIC_URL: &str = "http://gnapd.cluster";

/// Tokens the gateway calls go round, per connection.
const HOLDERS_PER_CONNECTION: usize = 4;

/// One setup: one node on sled, or `n` nodes on PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    Sled,
    Postgres(usize),
}

impl Setup {
    fn label(self) -> String {
        match self {
            Setup::Sled => "1 node, sled".to_owned(),
            Setup::Postgres(1) => "1 node, postgres".to_owned(),
            Setup::Postgres(n) => format!("{n} nodes, postgres"),
        }
    }
}

/// What one setup measured in one run (a row of the JSON).
#[derive(serde::Serialize)]
struct Measured {
    setup: String,
    nodes: usize,
    store: &'static str,
    run: usize,
    flows: FlowWindow,
    calls: CallWindow,
}

/// The database: its conninfo (key=value) and its postmaster, when its
/// data dir is where scripts/postgres.sh puts it.
struct Database {
    conninfo: String,
    postmaster: Option<u32>,
}

impl Database {
    fn find() -> Res<Self> {
        let conninfo = match std::env::var("GNAPD_TEST_POSTGRES") {
            Ok(c) if !c.trim().is_empty() => c,
            _ => {
                let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres.sh");
                let out = Command::new("bash").arg(&script).arg("start").output()?;
                if !out.status.success() {
                    return Err(format!(
                        "{} start failed: {}",
                        script.display(),
                        String::from_utf8_lossy(&out.stderr)
                    )
                    .into());
                }
                String::from_utf8_lossy(&out.stdout).trim().to_owned()
            }
        };
        // The script's cluster: `host=DIR`, its data in DIR/data.
        let postmaster = conninfo
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("host="))
            .filter(|h| h.starts_with('/'))
            .and_then(|h| std::fs::read_to_string(Path::new(h).join("data/postmaster.pid")).ok())
            .and_then(|text| text.lines().next()?.trim().parse().ok());
        Ok(Self {
            conninfo,
            postmaster,
        })
    }

    /// A fresh schema, and the conninfo whose tables land in it.
    fn schema(&self) -> Res<Schema> {
        let name = format!("cluster_{}", uuid::Uuid::new_v4().simple());
        let mut client = postgres::Client::connect(&self.conninfo, postgres::NoTls)?;
        client.batch_execute(&format!("CREATE SCHEMA {name}"))?;
        Ok(Schema {
            conninfo: format!("{} options='-c search_path={name}'", self.conninfo),
            admin: self.conninfo.clone(),
            name,
        })
    }
}

/// A schema dropped with its tables when this goes.
struct Schema {
    name: String,
    conninfo: String,
    admin: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name));
        }
    }
}

/// Runs every setup `settings.runs` times; prints the table. The number
/// of failed flows and calls.
pub fn run(cfg: &Config, settings: Cluster) -> Res<u64> {
    if !cfg.gnapd.exists() {
        return Err(format!(
            "no gnapd binary at {} (cargo build --release --locked --bin gnapd, or --gnapd)",
            cfg.gnapd.display()
        )
        .into());
    }
    let database = Database::find()?;
    if database.postmaster.is_none() {
        println!("the database's processes are not visible here: its CPU is not counted");
    }
    let tck = procfs::clk_tck();
    let rt = runtime(cfg)?;
    let upstream = Upstream::start()?;
    let mut setups = vec![Setup::Sled];
    setups.extend((1..=settings.nodes).map(Setup::Postgres));
    println!(
        "cluster: {} s windows, concurrency {}, {} runs; load average {}",
        cfg.duration.as_secs_f64(),
        cfg.concurrency,
        settings.runs,
        procfs::loadavg()
    );
    let mut results: Vec<(Setup, Measured)> = Vec::new();
    let mut failures = 0;
    for run in 0..settings.runs {
        let mut order = setups.clone();
        order.rotate_left(run % setups.len());
        for setup in order {
            let (flows, calls) = one(cfg, &rt, &database, upstream.addr, setup, tck)?;
            let (nodes, store) = match setup {
                Setup::Sled => (1, "sled"),
                Setup::Postgres(n) => (n, "postgres"),
            };
            let measured = Measured {
                setup: setup.label(),
                nodes,
                store,
                run: run + 1,
                flows,
                calls,
            };
            println!(
                "run {} {:<18} {:>8.0} flows/s  server {:>6.1} µs/flow  database {:>6.1} µs/flow  p99 {:>6.2} ms | {:>8.0} calls/s  server {:>6.1} µs/call  database {:>6.1} µs/call  p99 {:>6.2} ms",
                run + 1,
                setup.label(),
                measured.flows.flows_per_sec,
                measured.flows.server_cpu_us_per_flow,
                measured.flows.database_cpu_us_per_flow,
                measured.flows.p99_ms,
                measured.calls.calls_per_sec,
                measured.calls.server_cpu_us_per_call,
                measured.calls.database_cpu_us_per_call,
                measured.calls.p99_ms,
            );
            failures += measured.flows.errors + measured.calls.failed;
            results.push((setup, measured));
        }
    }
    summary(&setups, &results);
    let rows: Vec<&Measured> = results.iter().map(|(_, m)| m).collect();
    super::report::write_json(&cfg.json, &rows)?;
    println!("json: {}", cfg.json.display());
    Ok(failures)
}

/// One setup, started afresh, measured, stopped.
fn one(
    cfg: &Config,
    rt: &tokio::runtime::Runtime,
    database: &Database,
    upstream: SocketAddr,
    setup: Setup,
    tck: f64,
) -> Res<(FlowWindow, CallWindow)> {
    let schema = match setup {
        Setup::Sled => None,
        Setup::Postgres(_) => Some(database.schema()?),
    };
    let count = match setup {
        Setup::Sled => 1,
        Setup::Postgres(n) => n,
    };
    let mut places = Vec::with_capacity(count);
    let mut nodes: Vec<Gnapd> = Vec::with_capacity(count);
    for i in 0..count {
        let place = Place::new(&cfg.data_root, &format!("cluster-node{i}"), cfg.keep)?;
        place.write_config("token_lifetime = 86400\n", &cfg.settings)?;
        let mut extra = Vec::new();
        if let Some(schema) = &schema {
            extra.extend([
                "--store".to_owned(),
                schema.conninfo.clone(),
                "--public-url".to_owned(),
                PUBLIC_URL.to_owned(),
            ]);
            // The first node generates the master key (dev mode); the
            // others are given its file, as an operator gives every node
            // the same key.
            if let Some(first) = places.first() {
                extra.push("--master-key-file".to_owned());
                extra.push(master_key(first).display().to_string());
            }
        }
        nodes.push(Gnapd::start_with(&cfg.gnapd, &place, upstream, &extra)?);
        places.push(place);
    }
    let public = match setup {
        Setup::Sled => nodes[0].base.clone(),
        Setup::Postgres(_) => PUBLIC_URL.to_owned(),
    };
    let server = Server {
        addrs: nodes.iter().map(|n| n.addr).collect(),
        target: Arc::new(Target::new(&format!("{public}/gnap"))?),
        pid: nodes[0].pid(),
        nodes: nodes.iter().map(Gnapd::pid).collect(),
        database: schema.as_ref().and(database.postmaster),
        tck,
        concurrency: cfg.concurrency,
    };
    let measured = rt.block_on(async {
        let (flows, _) = flow_window::measure(&server, cfg.duration, None).await?;
        let holders = holders(&server, cfg.concurrency * HOLDERS_PER_CONNECTION).await?;
        let mut gateway = calls::Gateway {
            server: &server,
            base: &public,
            next_id: 1,
        };
        gateway.check(&holders).await?;
        let calls = gateway.measure(&holders, cfg.duration, None).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((flows, calls))
    })?;
    for node in nodes {
        node.stop();
    }
    drop(schema);
    Ok(measured)
}

/// Where `gnapd serve --dev` keeps the master key it generated.
fn master_key(place: &Place) -> PathBuf {
    place.data.join("master.key")
}

/// `n` agents with a token each, their grants spread over the nodes.
async fn holders(server: &Server, n: usize) -> Res<Vec<Holder>> {
    let mut conns = Vec::with_capacity(server.addrs.len());
    for addr in &server.addrs {
        conns.push(Conn::open(*addr).await?);
    }
    let mut holders = Vec::with_capacity(n);
    for i in 0..n {
        let agent = Agent::new()?;
        let conn = &mut conns[i % server.addrs.len()];
        let token = agents::first_token(conn, &server.target, &agent).await?;
        holders.push(Holder {
            token,
            key: agent.key,
        });
    }
    Ok(holders)
}

/// (min, median, max) of `values`.
fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return (0.0, 0.0, 0.0);
    }
    (values[0], values[n / 2], values[n - 1])
}

fn show((min, median, max): (f64, f64, f64), digits: usize) -> String {
    format!("{min:.digits$} / {median:.digits$} / {max:.digits$}")
}

/// min / median / max of each figure, per setup, and the rates against
/// one PostgreSQL node.
fn summary(setups: &[Setup], results: &[(Setup, Measured)]) {
    println!();
    println!("min / median / max over the runs");
    println!(
        "{:<18} | {:>26} | {:>22} | {:>22} | {:>26} | {:>22} | {:>22}",
        "setup",
        "first tokens/s",
        "server µs/flow",
        "database µs/flow",
        "gateway calls/s",
        "server µs/call",
        "database µs/call"
    );
    let figure = |setup: Setup, f: &dyn Fn(&Measured) -> f64| {
        spread(
            results
                .iter()
                .filter(|(s, _)| *s == setup)
                .map(|(_, m)| f(m))
                .collect(),
        )
    };
    for &setup in setups {
        println!(
            "{:<18} | {:>26} | {:>22} | {:>22} | {:>26} | {:>22} | {:>22}",
            setup.label(),
            show(figure(setup, &|m| m.flows.flows_per_sec), 0),
            show(figure(setup, &|m| m.flows.server_cpu_us_per_flow), 1),
            show(figure(setup, &|m| m.flows.database_cpu_us_per_flow), 1),
            show(figure(setup, &|m| m.calls.calls_per_sec), 0),
            show(figure(setup, &|m| m.calls.server_cpu_us_per_call), 1),
            show(figure(setup, &|m| m.calls.database_cpu_us_per_call), 1),
        );
    }
    let one = Setup::Postgres(1);
    let (_, flows_one, _) = figure(one, &|m| m.flows.flows_per_sec);
    let (_, calls_one, _) = figure(one, &|m| m.calls.calls_per_sec);
    let (_, flows_sled, _) = figure(Setup::Sled, &|m| m.flows.flows_per_sec);
    let (_, calls_sled, _) = figure(Setup::Sled, &|m| m.calls.calls_per_sec);
    for &setup in setups {
        if let Setup::Postgres(n) = setup {
            let (_, flows, _) = figure(setup, &|m| m.flows.flows_per_sec);
            let (_, calls, _) = figure(setup, &|m| m.calls.calls_per_sec);
            println!(
                "{n} postgres node(s), medians: first tokens {:.2}× one postgres node, {:.2}× sled; gateway calls {:.2}× one postgres node, {:.2}× sled",
                flows / flows_one.max(f64::MIN_POSITIVE),
                flows / flows_sled.max(f64::MIN_POSITIVE),
                calls / calls_one.max(f64::MIN_POSITIVE),
                calls / calls_sled.max(f64::MIN_POSITIVE),
            );
        }
    }
}
