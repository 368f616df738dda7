//! `gnapd serve`: the authorization server on the embedded sled store, or
//! on PostgreSQL (`store = "postgres://…"`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use std::collections::BTreeSet;

use crate::admin::Admin;
use crate::authz::{Assignments, AuthServer};
use crate::clock::SystemClock;
use crate::config::{Overrides, ServeConfig, StoreLocation};
use crate::gateway::forward::Gateway;
use crate::http::{App, serve::serve};
use crate::store::postgres::PostgresStore;
use crate::store::sled::SledStore;
use crate::upstream::Secret;
use crate::upstream::credential::Credential;
use crate::upstream::sealed_handoffs::SealedHandoffs;
use crate::upstream::server::{Upstream, enroll, enterprise_set_id, split_assignment};
use crate::upstream::vault::MasterKey;

/// Arguments of `gnapd serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A TOML config file; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8470].
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Data directory (sled, the dev master key, the admin socket)
    /// [default: ./gnapd-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep the store in PostgreSQL: `postgres://USER@HOST/DB` or a libpq
    /// `key=value` conninfo (prefer the config file's `store` for one with
    /// a password: flags show in the process list); else the environment
    /// variable `GNAPD_STORE`, else the config's `store` [default: sled in
    /// the data directory].
    #[arg(long, value_name = "CONNINFO")]
    store: Option<String>,
    /// What this node answers: `all`, `as` (the authorization server) or
    /// `gateway` (`/mcp/…`); a split role needs a PostgreSQL store
    /// [default: all].
    #[arg(long, value_name = "ROLE")]
    role: Option<String>,
    /// The public base URL [default: http:// + the listen address].
    #[arg(long)]
    public_url: Option<String>,
    /// TLS certificate chain (PEM).
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Ask TLS clients for a certificate (any is accepted, none too): the
    /// `mtls` key proofing method (RFC 9635 §7.3.2).
    #[arg(long)]
    tls_client_certs: bool,
    /// Development mode: approve every grant at once. Never in production.
    #[arg(long)]
    dev: bool,
    /// Every grant waits for a person to approve it (`gnapd grants
    /// approve CODE`), even in --dev: the quick way to try interaction.
    #[arg(long)]
    require_interaction: bool,
    /// Interop mode, for conformance suites (implies --dev): a grant that
    /// offers interaction waits for it, others are approved at once; a
    /// pending interaction can be decided with `POST /interop/decide` and
    /// the secret printed at start; `/rs/echo` checks tokens. Loopback
    /// only, never with TLS, unless --interop-force.
    #[arg(long)]
    interop: bool,
    /// Run --interop even on a non-loopback address, public URL or TLS.
    #[arg(long, requires = "interop")]
    interop_force: bool,
    /// An upstream MCP server behind the gateway at `{public}/mcp/NAME`:
    /// `NAME=URL` (Streamable HTTP) or `NAME=stdio:COMMAND ARG…` (a process
    /// the gateway starts per session, split at whitespace). Repeatable.
    #[arg(long = "upstream", value_name = "NAME=URL|NAME=stdio:COMMAND")]
    upstreams: Vec<String>,
    /// The credential the gateway presents at upstream NAME:
    /// `NAME=bearer:VALUE`, `NAME=header:Header-Name:VALUE`,
    /// `NAME=basic:USER:PASS` (HTTP upstreams), `NAME=env:VAR=VALUE` (stdio
    /// upstreams; repeat for more variables) or `NAME=none`. Repeatable.
    /// (Visible to local users in the process list: prefer the config file
    /// outside dev use.)
    #[arg(long = "upstream-credential", value_name = "NAME=KIND:...", value_parser = secret_arg)]
    upstream_credentials: Vec<Secret>,
    /// The master key that seals upstream credentials at rest: a file (mode
    /// 0600) holding 32 random bytes as base64url. Else the config's
    /// `master_key_file`, else the environment variable `GNAPD_MASTER_KEY`;
    /// in --dev, else `<data-dir>/master.key`, generated on first start.
    #[arg(long, value_name = "PATH")]
    master_key_file: Option<PathBuf>,
    /// A CA certificate file (PEM) trusted for HTTPS upstreams, besides the
    /// system's trust roots. Repeatable.
    #[arg(long = "upstream-ca", value_name = "PATH")]
    upstream_ca: Vec<PathBuf>,
    /// Most stdio upstream processes at once (one per MCP session)
    /// [default: 16].
    #[arg(long, value_name = "N")]
    stdio_max_children: Option<usize>,
    /// Seconds a stdio session may idle before its process is stopped
    /// [default: 300].
    #[arg(long, value_name = "SECONDS")]
    stdio_idle_timeout: Option<u64>,
    /// Check every gateway call's signature alone, never in a batch with
    /// other calls' (batching saves CPU under load; this is for measuring
    /// what it saves).
    #[arg(long)]
    no_signature_batching: bool,
    /// Where `GET /metrics` is served: `main` (beside the AS and the
    /// gateway), an address of its own (plain HTTP, e.g. 127.0.0.1:9100)
    /// or `off` [default: main].
    #[arg(long, value_name = "ADDR|off|main")]
    metrics_listen: Option<crate::http::metrics::MetricsListen>,
}

/// What the pages' form key is derived from the master key under.
const PAGE_KEY_LABEL: &str = "gnapd consent page form key v1";

/// The environment variable that may hold the master key (base64url).
pub const MASTER_KEY_ENV: &str = "GNAPD_MASTER_KEY";

/// The master key for this start, if any: the configured file, else
/// [`MASTER_KEY_ENV`], else in dev mode `<data-dir>/master.key` (generated
/// 0600 on first start). Without one, configured upstream credentials are
/// an error: they are never kept in the clear.
fn master_key(config: &ServeConfig) -> Result<Option<MasterKey>, String> {
    if let Some(path) = &config.master_key_file {
        return MasterKey::from_file(path)
            .map(Some)
            .map_err(|e| e.to_string());
    }
    if let Some(text) = std::env::var_os(MASTER_KEY_ENV) {
        let text = zeroize::Zeroizing::new(text.to_string_lossy().into_owned());
        return MasterKey::from_text(text.trim())
            .map(Some)
            .map_err(|e| format!("{MASTER_KEY_ENV}: {e}"));
    }
    if config.dev {
        let path = config.data_dir.join("master.key");
        if path.exists() {
            return MasterKey::from_file(&path)
                .map(Some)
                .map_err(|e| e.to_string());
        }
        let key = MasterKey::generate_into(&path).map_err(|e| e.to_string())?;
        tracing::info!(path = %path.display(), "dev mode: generated a master key");
        return Ok(Some(key));
    }
    if config
        .upstreams
        .iter()
        .any(|u| u.credential != Credential::None)
    {
        return Err(format!(
            "upstream credentials are configured but there is no master key to seal them: \
             give --master-key-file PATH, master_key_file in the config, or {MASTER_KEY_ENV} \
             (32 random bytes, base64url; a key file must be mode 0600)"
        ));
    }
    Ok(None)
}

/// Holds a flag's value as a secret from the start (clap never echoes it).
fn secret_arg(value: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(value))
}

/// Parses `--upstream` and `--upstream-credential` values. Errors name the
/// upstream at most, never the secret.
#[allow(clippy::type_complexity)]
fn parse_upstream_flags(
    urls: &[String],
    credentials: &[Secret],
) -> Result<(Vec<(String, String)>, Vec<(String, Credential)>), String> {
    let urls = urls
        .iter()
        .map(|spec| {
            split_assignment(spec)
                .map(|(n, u)| (n.to_owned(), u.to_owned()))
                .map_err(|e| format!("--upstream: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let credentials = credentials
        .iter()
        .map(|spec| {
            let (name, value) = split_assignment(spec.expose())
                .map_err(|e| format!("--upstream-credential: {e}"))?;
            let credential = Credential::parse(value)
                .map_err(|e| format!("--upstream-credential for `{name}`: {e}"))?;
            Ok((name.to_owned(), credential))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((urls, credentials))
}

/// Runs `gnapd serve`.
pub fn run(args: Args) -> ExitCode {
    // Everything the server creates (sled's files, keys, the admin socket)
    // is for its own user only, whatever umask it was started with.
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let (upstreams, upstream_credentials) =
        match parse_upstream_flags(&args.upstreams, &args.upstream_credentials) {
            Ok(parsed) => parsed,
            Err(e) => {
                eprintln!("gnapd serve: {e}");
                return ExitCode::from(2);
            }
        };
    // The flags' plaintext goes now (wiped on drop); the parsed credentials
    // are sealed and dropped at serve start.
    drop(args.upstream_credentials);
    let flags = Overrides {
        listen: args.listen,
        data_dir: args.data_dir,
        // The flag, else GNAPD_STORE; the file's `store` after both.
        store: crate::config::store_flag_or_env(args.store),
        role: args.role,
        public_url: args.public_url,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        tls_client_certs: args.tls_client_certs,
        dev: args.dev,
        require_interaction: args.require_interaction,
        interop: args.interop,
        interop_force: args.interop_force,
        upstreams,
        upstream_credentials,
        master_key_file: args.master_key_file,
        upstream_ca_files: args.upstream_ca,
        stdio_max_children: args.stdio_max_children,
        stdio_idle_timeout: args.stdio_idle_timeout,
        no_signature_batching: args.no_signature_batching,
        metrics_listen: args.metrics_listen,
    };
    let config = match ServeConfig::load(args.config.as_deref(), flags) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("gnapd serve: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gnapd serve: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // sled's checkpoint after a clean stop; PostgreSQL needs none.
    let store_path = config.store.sled_path(&config.data_dir);
    let outcome = runtime.block_on(run_server(config));
    // Every task, and with it every handle on the store, goes with the
    // runtime; only then can the store be opened again.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    match outcome {
        Ok(()) => {
            let Some(store_path) = store_path else {
                return ExitCode::SUCCESS;
            };
            let started = std::time::Instant::now();
            match crate::store::sled::checkpoint(&store_path) {
                Ok(()) => tracing::info!(
                    took_ms = started.elapsed().as_millis(),
                    "store checkpointed for a quick start"
                ),
                // The next start reads more of the log; nothing is lost.
                Err(e) => tracing::warn!(error = %e, "store checkpoint skipped"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gnapd serve: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How long the runtime's last tasks get to finish once the server stopped.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The file `--interop` writes its automation secret to, for hooks.
pub const INTEROP_SECRET_FILE: &str = "interop.secret";

/// A fresh automation secret for `--interop`, written (mode 0600, as
/// everything under the umask set at start) to the data dir, and printed
/// after the listening line: the suite's hook reads one or the other.
fn interop_secret(data_dir: &std::path::Path) -> Result<crate::http::interop::Interop, String> {
    let secret = zeroize::Zeroizing::new(
        crate::random::text_from(&crate::random::OsRandom).map_err(|e| e.to_string())?,
    );
    let path = data_dir.join(INTEROP_SECRET_FILE);
    std::fs::write(&path, secret.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!(
        "\n  *** INTEROP MODE: POST {{public}}{} with Authorization: Bearer <secret> decides any pending grant. ***\n",
        crate::http::interop::DECIDE_PATH
    );
    Ok(crate::http::interop::Interop::new(secret))
}

/// Raises the soft limit on open files to the hard one (client connections,
/// upstream connections and stdio pipes all take descriptors, and the
/// usual soft default of 1024 is soon reached), and returns the limit now
/// in force (`None`: unlimited or unknown).
fn raise_descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current.is_some() && limit.current != limit.maximum {
            let raised = Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => {
                    tracing::info!(from = ?limit.current, to = ?limit.maximum, "raised the open file limit to its hard limit");
                    return limit.maximum;
                }
                Err(e) => {
                    tracing::warn!(error = %e, limit = ?limit.current, "cannot raise the open file limit")
                }
            }
        }
        limit.current
    }
    #[cfg(not(unix))]
    None
}

async fn run_server(mut config: ServeConfig) -> Result<(), String> {
    let descriptors = raise_descriptor_limit();
    let max_connections = config.connections.max_for(descriptors);
    if config
        .connections
        .max
        .is_some_and(|max| max > max_connections)
    {
        tracing::warn!(
            max_connections,
            ?descriptors,
            "connections.max is more than 3/4 of the open file limit allows; held to that"
        );
    }
    let tls = match &config.tls {
        Some((cert, key)) => Some(
            crate::http::serve::tls_acceptor(cert, key, config.tls_client_certs)
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    if config.policy.require_interaction && config.dev && config.login.is_none() {
        eprintln!(
            "\n  *** gnapd is running in DEV MODE with interaction: every grant waits for a person, ***\n  *** and ANYONE holding a grant's page link can approve it there.                    ***\n"
        );
    } else if config.policy.require_interaction {
        eprintln!("\n  gnapd requires interaction: every grant waits for a person.\n");
    } else if config.dev {
        eprintln!(
            "\n  *** gnapd is running in DEV MODE: every grant request is approved at once. ***\n  *** Never expose this server to anyone you do not trust.                      ***\n"
        );
    }
    create_data_dir(&config.data_dir)?;
    let master_key = master_key(&config)?;
    let store = open_store(&config)?;

    let configured: BTreeSet<String> = config.upstreams.iter().map(|u| u.name.clone()).collect();
    // Configured credentials become sealed enterprise-held credential sets;
    // the plaintext is dropped here.
    if let Some(key) = &master_key {
        enroll(
            &mut config.upstreams,
            store.as_ref(),
            key,
            &SystemClock,
            config.upstream_timeout,
        )
        .map_err(|e| e.to_string())?;
    }
    let configured_credentials: BTreeSet<String> = config
        .upstreams
        .iter()
        .filter(|u| u.credential_set.is_some())
        .map(|u| u.name.clone())
        .collect();
    let upstreams = with_stored_upstreams(config.upstreams.clone(), store.as_ref())?;
    if master_key.is_none()
        && !store
            .credential_sets()
            .map_err(|e| e.to_string())?
            .is_empty()
    {
        return Err(format!(
            "the store holds sealed upstream credentials but there is no master key to open them: \
             give --master-key-file PATH, master_key_file in the config, or {MASTER_KEY_ENV}"
        ));
    }
    let assignments = Assignments::new(
        upstreams
            .iter()
            .filter_map(|u| u.credential_set.clone().map(|s| (u.name.clone(), s))),
    );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let metrics_listener = match config.metrics_listen {
        crate::http::metrics::MetricsListen::At(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?,
        ),
        _ => None,
    };
    let public_url = config.public_url.clone().unwrap_or_else(|| {
        let scheme = if tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{bound}")
    });
    let operator = config.operator.map(|settings| {
        Arc::new(crate::authz::operator::Operator::new(settings).shared(store.clone()))
    });
    let mut auth = AuthServer::new(
        store.clone(),
        Arc::new(SystemClock),
        config.policy.clone(),
        config.as_config(&public_url),
    )
    .with_credential_sets(assignments.clone())
    .with_deciders(crate::authz::Deciders {
        login: config.login.clone(),
        operator: operator.clone(),
    })
    .with_oauth_clients(Arc::new(config.oauth_clients()));
    if let Some(key) = &master_key {
        // One key on every node: a consent page is posted to any of them.
        auth = auth.with_page_key(&key.derive(PAGE_KEY_LABEL));
    }
    let master_key = master_key.map(Arc::new);
    // Sign-ins under way, signed-in people and connections cross nodes
    // only sealed under the master key; without one each node keeps its own.
    let sealed = master_key
        .clone()
        .and_then(|key| SealedHandoffs::of(store.clone(), key));
    let interaction_lifetime = auth.config().interaction_lifetime;
    if let (Some(login), Some(sealed)) = (&config.login, &sealed) {
        login.share(sealed.clone(), interaction_lifetime);
    }
    let connections = Arc::new(crate::upstream::connect::Connections::new(config.sign_ins));
    if let Some(sealed) = &sealed {
        connections.share(sealed.clone(), interaction_lifetime, Arc::new(SystemClock));
    }
    if let Some(sealed) = &sealed {
        auth = auth.with_shared_entries(sealed.clone());
    }
    let auth = Arc::new(auth);
    let operator_link_file = crate::admin::operator_link::file_in(&config.data_dir);
    if let Some(operator) = &operator {
        let url = crate::admin::operator_link::issue(
            operator,
            &public_url,
            &operator_link_file,
            crate::clock::Clock::now(&SystemClock),
        )
        .map_err(|e| e.to_string())?;
        announce_operator_link(&url, &operator_link_file);
    }
    tracing::info!(
        "grants waiting for a person are decided by: {}",
        auth.how_grants_are_decided()
    );
    let replay = config.limits.replay;
    let max_age = auth.config().profile.max_age;
    tracing::info!(
        capacity = replay.bound.capacity,
        sustained_per_second =
            crate::proto::httpsig::nonce::sustained_rate(replay.bound.capacity, max_age),
        unapproved_capacity = replay.unapproved.capacity,
        unapproved_sustained_per_second =
            crate::proto::httpsig::nonce::sustained_rate(replay.unapproved.capacity, max_age),
        "replay cache: past its capacity, signed requests are refused until older ones age out"
    );
    let mut upstream_cas = Vec::new();
    for path in &config.upstream_ca_files {
        upstream_cas.extend(crate::http_client::load_ca_file(path).map_err(|e| e.to_string())?);
    }
    let gateway = Arc::new(
        Gateway::new(
            upstreams.clone(),
            store.clone(),
            Arc::new(SystemClock),
            auth.config().profile,
            config.upstream_timeout,
            master_key.clone(),
            &upstream_cas,
        )
        .map_err(|e| e.to_string())?
        .with_stdio_limits(config.stdio)
        .with_session_bounds(config.sessions)
        .with_signature_batching(config.batch_signatures)
        .with_external_as(config.external_oauth_as.clone()),
    );
    let pusher = Arc::new(
        crate::http::push::Pusher::new(auth.config().allow_private_push, &upstream_cas)
            .map_err(|e| e.to_string())?,
    );
    let admin_socket = crate::admin::socket::path_in(&config.data_dir);
    // Filled once the app is assembled below (admin `store_stats`).
    let app_cell = Arc::new(std::sync::OnceLock::new());
    let admin_service = Arc::new(
        Admin::new(
            gateway.clone(),
            store.clone(),
            assignments,
            master_key,
            Arc::new(SystemClock),
            configured,
            configured_credentials,
        )
        .with_interaction(crate::admin::Interaction {
            auth: auth.clone(),
            pusher: pusher.clone(),
            runtime: tokio::runtime::Handle::current(),
            login: config.login.clone(),
            operator: operator.map(|o| (o, operator_link_file)),
        })
        .with_app(app_cell.clone()),
    );
    let admin = tokio::spawn(crate::admin::socket::serve(
        crate::admin::socket::bind(&admin_socket).map_err(|e| e.to_string())?,
        admin_service.clone(),
    ));
    // Other nodes' admin commands reach this one through the shared store.
    let in_step = store
        .upstream_changes()
        .map(|changes| tokio::spawn(crate::admin::keep_in_step(admin_service, changes)));
    for upstream in &upstreams {
        // The name and URL only: the credential is never logged.
        tracing::info!(upstream = %upstream.name, at = %upstream.location(), gateway = %format!("{public_url}/mcp/{}", upstream.name), "upstream");
    }
    let oauth_clients = Arc::new(oauth_clients(&config, &auth, &upstream_cas)?);
    let interop = match config.interop {
        true => Some(Arc::new(interop_secret(&config.data_dir)?)),
        false => None,
    };
    let app = Arc::new(App {
        auth,
        max_body: config.max_body,
        gateway,
        pusher,
        connections,
        login: config.login.clone(),
        trusted_proxy: config.trusted_proxy.clone(),
        metrics_on_main: config.metrics_listen == crate::http::metrics::MetricsListen::Main,
        admission: Arc::new(crate::http::admission::Admission::new(
            max_connections,
            config.connections.per_address,
        )),
        connection_limits: config.connections,
        oauth_clients,
        interop,
        role: config.role,
    });
    let _ = app_cell.set(app.clone());
    // Tests and scripts read this line to find the server.
    println!(
        "gnapd listening on {bound}, grant endpoint {}",
        app.auth.config().grant_endpoint()
    );
    if let Some(interop) = &app.interop {
        // Scripts read this line, as they read the one above.
        println!("gnapd interop secret {}", interop.secret());
    }
    tracing::info!(%bound, %public_url, role = config.role.name(), "listening");
    let metrics = match metrics_listener {
        Some(listener) => {
            let at = listener.local_addr().map_err(|e| e.to_string())?;
            // The second line of stdout, for tests and scripts.
            println!("gnapd metrics on {at}");
            tracing::info!(%at, "metrics on their own listener");
            Some(tokio::spawn(crate::http::metrics::serve(
                listener,
                app.clone(),
            )))
        }
        None => {
            if config.metrics_listen == crate::http::metrics::MetricsListen::Off {
                tracing::info!("metrics are off");
            }
            None
        }
    };
    // A gateway-only node leaves the sweeps to the nodes that run the AS.
    let sweeper = config.role.runs_the_as().then(|| {
        let store = store.clone();
        let auth = app.auth.clone();
        let every = config.sweep_interval;
        tokio::spawn(async move {
            // The first sweep comes one interval after start, not at once:
            // a sweep reads every record, and at start-up that would pull
            // the whole store into sled's cache before anyone asked for it
            // (at 200,000 grants: RSS 115 → 492 MB a second after start).
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                let store = store.clone();
                let now = crate::clock::Clock::now(&SystemClock);
                let swept = tokio::task::spawn_blocking(move || {
                    // Lapsed OAuth client registrations go too (issue 16).
                    if let Err(e) = store.sweep_oauth_clients(now) {
                        tracing::warn!(error = %e, "sweeping OAuth clients failed");
                    }
                    store.sweep(now)
                });
                match swept.await {
                    Ok(Ok(swept)) => {
                        auth.metrics().swept(&swept);
                        auth.count_pending();
                        tracing::debug!(?swept, "swept");
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "sweep failed"),
                    Err(_) => {}
                }
            }
        })
    });
    let gateway = app.gateway.clone();
    let signal = {
        let gateway = gateway.clone();
        async move {
            shutdown_signal().await;
            // GET streams of stdio sessions never end by themselves.
            gateway.stdio().drain();
        }
    };
    serve(listener, tls, app, signal).await;
    gateway.stdio().shutdown().await;
    if let Some(sweeper) = sweeper {
        sweeper.abort();
    }
    admin.abort();
    if let Some(in_step) = in_step {
        in_step.abort();
    }
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    let _ = std::fs::remove_file(&admin_socket);
    store.close().map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

/// The store the server runs on, and how to close it at the end.
struct ServerStore {
    store: Arc<dyn crate::store::Store>,
    close: Box<dyn Fn() -> Result<(), crate::store::StoreError> + Send + Sync>,
}

impl ServerStore {
    fn close(&self) -> Result<(), crate::store::StoreError> {
        (self.close)()
    }
}

impl std::ops::Deref for ServerStore {
    type Target = Arc<dyn crate::store::Store>;

    fn deref(&self) -> &Self::Target {
        &self.store
    }
}

/// Opens the configured store: sled in the data dir, or PostgreSQL.
fn open_store(config: &ServeConfig) -> Result<ServerStore, String> {
    let now = crate::clock::Clock::now(&SystemClock);
    match &config.store {
        StoreLocation::Sled(at) => {
            let path = at.clone().unwrap_or_else(|| config.data_dir.join("store"));
            let sled = Arc::new(
                SledStore::open_tuned(
                    &path,
                    crate::store::sled::Durability::GroupCommit,
                    now,
                    crate::store::sled::Tuning {
                        cache_bytes: config.store_cache_bytes,
                    },
                )
                .map_err(|e| e.to_string())?
                .with_replay_sizes(config.limits.replay),
            );
            let closing = sled.clone();
            Ok(ServerStore {
                store: sled,
                close: Box::new(move || closing.close()),
            })
        }
        StoreLocation::Postgres(conninfo) => {
            let postgres = Arc::new(
                PostgresStore::open_at(conninfo, crate::store::postgres::CONNECTIONS, now)
                    .map_err(|e| format!("cannot open the PostgreSQL store at {conninfo}: {e}"))?
                    .with_replay_sizes(config.limits.replay),
            );
            // Where, as whom and which database: never the password.
            tracing::info!(at = %conninfo, "store on PostgreSQL");
            let closing = postgres.clone();
            Ok(ServerStore {
                store: postgres,
                close: Box::new(move || closing.close()),
            })
        }
    }
}

/// Tells the operator how to sign in: the link itself on a terminal (as
/// notebook servers do), only where it is kept otherwise, so that a log
/// collecting stderr never holds it.
fn announce_operator_link(url: &str, file: &std::path::Path) {
    use std::io::IsTerminal as _;
    if std::io::stderr().is_terminal() {
        eprintln!(
            "\n  Operator sign-in (works once; `gnapd admin login-link` makes another):\n    {url}\n"
        );
    } else {
        eprintln!(
            "\n  Operator sign-in link: in {} (works once; `gnapd admin login-link` makes another).\n",
            file.display()
        );
    }
}

/// Creates the data dir if needed and makes it private (0700): it holds the
/// store (token hashes, sealed credentials), the dev master key and the
/// admin socket. An existing dir that group or others can enter is
/// tightened rather than refused: files an older gnapd (or `mkdir`) left
/// readable inside are then out of reach at once, and the log says so. A
/// dir owned by another user is refused: its owner could read it whatever
/// the mode.
fn create_data_dir(dir: &std::path::Path) -> Result<(), String> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let meta =
            std::fs::metadata(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        if !meta.is_dir() {
            return Err(format!("the data dir {} is not a directory", dir.display()));
        }
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(format!(
                "the data dir {} is owned by uid {}, not by the user gnapd runs as (uid {me}): \
                 give gnapd a data dir of its own",
                dir.display(),
                meta.uid()
            ));
        }
        let mode = meta.mode() & 0o777;
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot make {} private (0700): {e}", dir.display()))?;
            if mode & 0o077 != 0 {
                tracing::warn!(dir = %dir.display(), was = %format!("{mode:o}"), "the data dir was open to other users; it is now 0700");
            }
        }
    }
    Ok(())
}

/// The configured upstreams, then those added with `gnapd upstream add`
/// (a stored one with the name of a configured one is ignored, with a
/// warning: the file wins). An upstream without a configured credential
/// uses its enterprise-held set if the store has one.
fn with_stored_upstreams(
    mut upstreams: Vec<Upstream>,
    store: &dyn crate::store::Store,
) -> Result<Vec<Upstream>, String> {
    for record in store.upstreams().map_err(|e| e.to_string())? {
        if upstreams.iter().any(|u| u.name == record.name) {
            tracing::warn!(upstream = %record.name, "an upstream added by `gnapd upstream add` has the name of a configured one; the configured one is used");
            continue;
        }
        let built = Upstream::from_record(&record);
        match built {
            Ok(upstream) => upstreams.push(upstream),
            Err(e) => tracing::warn!(error = %e, "a stored upstream is not usable; skipped"),
        }
    }
    for upstream in &mut upstreams {
        if upstream.credential_set.is_none() {
            let id = enterprise_set_id(&upstream.name);
            if store
                .credential_set(&id)
                .map_err(|e| e.to_string())?
                .is_some()
            {
                upstream.credential_set = Some(id);
            }
        }
    }
    Ok(upstreams)
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutdown signal received; draining");
}

/// The OAuth client registry (`[[oauth_introspector]]`,
/// `oauth_registration`, on by default only in `--dev`) and the metadata
/// document fetcher, trusting the upstream CAs too.
fn oauth_clients(
    config: &ServeConfig,
    auth: &AuthServer,
    upstream_cas: &[tokio_rustls::rustls::pki_types::CertificateDer<'static>],
) -> Result<crate::http::oauth_clients::Clients, String> {
    let settings = config.oauth_client_settings().map_err(|e| e.to_string())?;
    let fetcher = crate::http::oauth_clients::fetch::DocumentFetcher::new(
        settings.allow_private_documents,
        upstream_cas,
    )
    .map_err(|e| e.to_string())?;
    Ok(crate::http::oauth_clients::Clients {
        registry: Arc::new(crate::authz::oauth_clients::OAuthClients::new(
            auth, settings,
        )),
        fetcher,
    })
}
