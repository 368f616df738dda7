//! gnapd's HTTP service in this process, over real TCP on loopback, on a
//! sled store whose flushes the test holds (`held_disk`): the races of
//! `answer_after_disk` through the real edge. Dev policy (every grant
//! approved at once) and `wait` 0, so a continuation can be used at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gnapd::authz::{AsConfig, AuthServer, Policy};
use gnapd::clock::SystemClock;
use gnapd::gateway::forward::Gateway;
use gnapd::http::{App, DEFAULT_MAX_BODY};

use crate::support::held_disk::HeldDisk;

/// The running service; stopped when dropped.
pub struct HeldServer {
    pub disk: HeldDisk,
    pub addr: SocketAddr,
    pub grant_endpoint: String,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl HeldServer {
    pub fn start() -> Self {
        let disk = HeldDisk::new();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let public = format!("http://{addr}");
        let config = AsConfig {
            poll_wait: 0,
            ..AsConfig::new(&public)
        };
        let policy = Policy {
            dev: true,
            ..Policy::default()
        };
        let store = disk.store.clone();
        let auth = Arc::new(AuthServer::new(
            store.clone(),
            Arc::new(SystemClock),
            policy,
            config,
        ));
        let grant_endpoint = auth.config().grant_endpoint();
        let app = runtime.block_on(async {
            let gateway = Gateway::new(
                Vec::new(),
                store,
                Arc::new(SystemClock),
                auth.config().profile,
                Duration::from_secs(5),
                None,
                &[],
            )
            .unwrap();
            Arc::new(App {
                max_body: DEFAULT_MAX_BODY,
                gateway: Arc::new(gateway),
                pusher: Arc::new(gnapd::http::push::Pusher::new(false, &[]).unwrap()),
                connections: Arc::default(),
                login: None,
                trusted_proxy: None,
                metrics_on_main: true,
                role: gnapd::http::Role::All,
                admission: Arc::new(gnapd::http::admission::Admission::new(1024, 1024)),
                connection_limits: Default::default(),
                interop: None,
                oauth_clients: Arc::new(gnapd::http::oauth_clients::Clients {
                    registry: Arc::new(gnapd::authz::oauth_clients::OAuthClients::new(
                        &auth,
                        gnapd::authz::oauth_clients::Settings::new(false),
                    )),
                    fetcher: gnapd::http::oauth_clients::fetch::DocumentFetcher::new(false, &[])
                        .unwrap(),
                }),
                auth,
            })
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(gnapd::http::serve::serve(listener, None, app, async {
            let _ = stopped.await;
        }));
        Self {
            disk,
            addr,
            grant_endpoint,
            runtime: Some(runtime),
            stop: Some(stop),
        }
    }
}

impl Drop for HeldServer {
    fn drop(&mut self) {
        // A held flush would keep a request, and the drain, waiting.
        self.disk.hold.release();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}
