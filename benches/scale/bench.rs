//! The scale bench's logic: one run of gnapd holding many live tokens, step
//! by step (see README.md beside this file). `main.rs` runs it from the
//! command line; the integration tests include this file and run it small.

// The tests' process start; the integration tests, which include this
// file, load it as their own module too.
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "../../tests/it/support/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "../gateway/upstream.rs"]
mod upstream;

#[path = "agents.rs"]
mod agents;
#[path = "args.rs"]
mod args;
#[path = "calls.rs"]
mod calls;
#[path = "cluster.rs"]
mod cluster;
#[path = "disk.rs"]
mod disk;
#[path = "flow_window.rs"]
mod flow_window;
#[path = "load.rs"]
mod load;
#[path = "monitor.rs"]
mod monitor;
#[path = "procfs.rs"]
mod procfs;
#[path = "report.rs"]
mod report;
#[path = "server.rs"]
mod server;
#[path = "sweep.rs"]
mod sweep;
#[path = "wire.rs"]
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use args::Config;
use flow_window::Server;
use procfs::Memory;
use server::{Gnapd, Place};

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Runs the bench with `args` (without the program name): its exit code.
/// 0 when every flow and call succeeded, 1 when one failed or the run
/// could not be set up, 2 for a bad command line. Figures never decide it.
pub fn main_with_args(args: impl IntoIterator<Item = String>) -> i32 {
    let cfg = match args::parse(args) {
        Ok(Some(cfg)) => cfg,
        Ok(None) => return 0,
        Err(e) => {
            eprintln!("scale: {e}");
            return 2;
        }
    };
    let outcome = if let Some(settings) = cfg.cluster {
        cluster::run(&cfg, settings)
    } else if cfg.sweep.is_some() {
        sweep::run(&cfg)
    } else {
        run(&cfg)
    };
    match outcome {
        Ok(0) => 0,
        Ok(failures) => {
            eprintln!("scale: {failures} flows or calls failed (see the table and the JSON)");
            1
        }
        Err(e) => {
            eprintln!("scale: {e}");
            1
        }
    }
}

/// The bench's upstream, served on a runtime of its own in this process.
pub struct Upstream {
    pub addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl Upstream {
    pub fn start() -> Res<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        runtime.spawn(async move {
            let _ = upstream::serve(listener).await;
        });
        Ok(Self {
            addr,
            _runtime: runtime,
        })
    }
}

fn runtime(cfg: &Config) -> Res<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.client_threads)
        .enable_all()
        .build()?)
}

fn server_of(gnapd: &Gnapd, cfg: &Config, tck: f64) -> Res<Server> {
    Ok(Server::one(
        gnapd.addr,
        Arc::new(agents::Target::new(&gnapd.grant_endpoint)?),
        gnapd.pid(),
        tck,
        cfg.concurrency,
    ))
}

/// Steps 1 to 5: the figures, printed and written as JSON; the number of
/// failed flows and calls.
fn run(cfg: &Config) -> Res<u64> {
    if !cfg.gnapd.exists() {
        return Err(format!(
            "no gnapd binary at {} (cargo build --release --locked --bin gnapd, or --gnapd)",
            cfg.gnapd.display()
        )
        .into());
    }
    let tck = procfs::clk_tck();
    let rt = runtime(cfg)?;
    let mut figures = report::Figures::begin(cfg);
    report::print_header(&figures);

    // 1. gnapd and its upstream. Tokens live a day: none lapses (or is
    // swept) while the bench runs.
    let place = Place::new(&cfg.data_root, "scale", cfg.keep)?;
    place.write_config("token_lifetime = 86400\n", &cfg.settings)?;
    let upstream = Upstream::start()?;
    let gnapd = Gnapd::start(&cfg.gnapd, &place, upstream.addr)?;
    let server = server_of(&gnapd, cfg, tck)?;
    let mut grants_made = 0u64;

    // 2. Baseline: one token at the gateway, first tokens on a nearly
    // empty store.
    println!();
    println!("step 2: baseline, one token in the store");
    let one = rt.block_on(async {
        let agent = agents::Agent::new()?;
        let mut conn = wire::Conn::open(server.addr()).await?;
        let token = agents::first_token(&mut conn, &server.target, &agent).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(load::Holder {
            token,
            key: agent.key,
        })
    })?;
    grants_made += 1;
    let mut gateway = calls::Gateway {
        server: &server,
        base: &gnapd.base,
        next_id: 1,
    };
    rt.block_on(gateway.check(std::slice::from_ref(&one)))?;
    let base_calls =
        rt.block_on(gateway.measure(std::slice::from_ref(&one), cfg.duration, None))?;
    report::print_calls("gateway, 1 token", &base_calls);
    let (base_flows, made) = rt.block_on(flow_window::measure(&server, cfg.duration, None))?;
    grants_made += made;
    report::print_flows("first token", &base_flows);
    let base_memory = Memory::of(server.pid)?;
    println!("  gnapd: {}", base_memory.show());
    figures.baseline = Some(report::Baseline {
        gateway: base_calls,
        first_token: base_flows,
        memory: base_memory,
    });

    // 3. The load.
    println!();
    println!(
        "step 3: loading {} grants at concurrency {}",
        cfg.tokens, cfg.concurrency
    );
    let (loaded, holders) =
        rt.block_on(load::run(&server, cfg.tokens, cfg.sample, cfg.duration))?;
    grants_made += loaded.grants;
    report::print_stretch("first token, end of the load", &loaded.last_window);
    figures.load = Some(loaded);
    // The load makes each agent's key as it goes, so its last seconds share
    // the cores with more generator work than any window: the full store's
    // first-token cost is measured as the baseline's was.
    let rate_guess = figures
        .baseline
        .as_ref()
        .map(|b| b.first_token.flows_per_sec);
    let (full_store, made) =
        rt.block_on(flow_window::measure(&server, cfg.duration, rate_guess))?;
    grants_made += made;
    report::print_flows("first token, full store", &full_store);
    figures.full_store = Some(full_store);
    figures.store_tables = gnapd.store_stats();
    report::print_tables(&figures.store_tables);

    // 4. Stop, and the disk.
    println!();
    println!("step 4: stop (SIGTERM) and the data dir");
    let addr = gnapd.addr;
    let stop = gnapd.stop();
    println!("  stopped in {:.2} s ({})", stop.secs, stop.exit);
    let disk = disk::usage(&place.data)?;
    figures.disk = Some(report::DiskFigures::new(disk, grants_made, stop));
    report::print_disk(figures.disk.as_ref());

    // 5. Restart on the same data dir.
    println!();
    println!("step 5: restart on the same data dir");
    let (gnapd, startup) = Gnapd::start_timed(&cfg.gnapd, &place, addr, upstream.addr)?;
    let server = server_of(&gnapd, cfg, tck)?;
    let at_start = Memory::of(server.pid)?;
    println!(
        "  start-up: listening line at {:.1} ms, first answer at {:.1} ms; gnapd {}",
        startup.to_listening_line_ms,
        startup.to_first_answer_ms,
        at_start.show()
    );
    // A second later: what it holds once settled (and every signature
    // from now on is after the restart, which the replay memory wants).
    std::thread::sleep(Duration::from_secs(1));
    let after_1s = Memory::of(server.pid)?;
    println!("  1 s later: {}", after_1s.show());
    let mut gateway = calls::Gateway {
        server: &server,
        base: &gnapd.base,
        next_id: 10_000_000,
    };
    rt.block_on(gateway.check(&holders))?;
    // What each token costs in memory once used: the tokens are first used
    // in growing steps, RSS read after each (no other load meanwhile).
    let mut by_tokens_used = Vec::new();
    let mut used = 0;
    for step in [
        holders.len() / 8,
        holders.len() / 4,
        holders.len() / 2,
        holders.len(),
    ] {
        if step <= used {
            continue;
        }
        rt.block_on(gateway.touch(&holders[used..step]))?;
        used = step;
        by_tokens_used.push((used, Memory::of(server.pid)?));
    }
    report::print_memory_by_tokens_used(&after_1s, &by_tokens_used);
    let calls_hint = figures.baseline.as_ref().map(|b| b.gateway.calls_per_sec);
    let calls_after = rt.block_on(gateway.measure(&holders, cfg.duration, calls_hint))?;
    report::print_calls(&format!("gateway, {} tokens", holders.len()), &calls_after);
    let rate_guess = figures
        .baseline
        .as_ref()
        .map(|b| b.first_token.flows_per_sec);
    let (flows_after, _) = rt.block_on(flow_window::measure(&server, cfg.duration, rate_guess))?;
    report::print_flows("first token", &flows_after);
    let memory_end = Memory::of(server.pid)?;
    println!("  gnapd at the end: {}", memory_end.show());
    let stop = gnapd.stop();
    figures.restart = Some(report::Restart {
        startup,
        memory_at_first_answer: at_start,
        memory_after_1s: after_1s,
        memory_by_tokens_used: by_tokens_used,
        gateway: calls_after,
        first_token: flows_after,
        memory_end,
        stop,
    });
    figures.finish();
    report::print_summary(&figures);
    report::write_json(&cfg.json, &figures)?;
    println!("json: {}", cfg.json.display());
    Ok(figures.failures())
}
