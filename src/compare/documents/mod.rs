//! The https host of the agents' client ID metadata documents (CIMD): a
//! tiny TLS server on loopback, on a thread and runtime of its own (its
//! CPU is neither the client's nor the server's), with a throwaway CA
//! ([`pki`]) the gnapd instances are told to trust. Each agent
//! publishes its own document at a fresh path; every fetch gnapd makes is
//! counted as `client_metadata_document` in the world's [`Outbound`].
//!
//! One host per process ([`shared`]): an OAuth agent
//! ([`super::oauth::Session`]) knows only its instance, so it finds the
//! host here; the world starts it before the instances, whose config
//! names its CA ([`DocumentHost::config`]).

pub mod pki;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::compare::probe::Outbound;

/// How long gnapd may cache a document (`Cache-Control`), as a published
/// client would let it.
pub const MAX_AGE: u32 = 3600;

type Documents = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// The running host.
#[derive(Debug)]
pub struct DocumentHost {
    /// Where it listens (https).
    pub addr: SocketAddr,
    /// The CA certificate file gnapd trusts.
    pub ca_file: PathBuf,
    documents: Documents,
}

static SHARED: OnceLock<DocumentHost> = OnceLock::new();

/// The process's host, if started.
pub fn shared() -> Option<&'static DocumentHost> {
    SHARED.get()
}

/// Starts the process's host once (its CA written under `dir`), counting
/// fetches into `outbound`; later calls return the running one.
pub fn start_shared(dir: &Path, outbound: &Outbound) -> Result<&'static DocumentHost, String> {
    if let Some(host) = SHARED.get() {
        return Ok(host);
    }
    let host = DocumentHost::start(dir, outbound.clone())?;
    Ok(SHARED.get_or_init(|| host))
}

impl DocumentHost {
    /// Starts a host whose CA is written to `dir/documents-ca.pem`.
    pub fn start(dir: &Path, outbound: Outbound) -> Result<Self, String> {
        let pki = pki::make().map_err(|e| format!("certificates: {e}"))?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let ca_file = dir.join("documents-ca.pem");
        std::fs::write(&ca_file, &pki.ca_pem).map_err(|e| format!("{}: {e}", ca_file.display()))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.leaf_key_pkcs8));
        let tls = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(pki.leaf_der)], key)
            .map_err(|e| e.to_string())?;
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let documents: Documents = Arc::default();
        let served = documents.clone();
        std::thread::Builder::new()
            .name("compare-documents".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    serve(listener, acceptor, served, outbound).await;
                });
            })
            .map_err(|e| e.to_string())?;
        Ok(Self {
            addr,
            ca_file,
            documents,
        })
    }

    /// The config lines an instance needs to fetch documents from here.
    pub fn config(&self) -> String {
        format!(
            "allow_private_metadata_documents = true\nupstream_ca_files = [{:?}]\n",
            self.ca_file.display().to_string()
        )
    }

    /// Publishes `metadata` at a fresh URL, which becomes its `client_id`;
    /// the URL.
    pub fn publish(&self, metadata: &Value) -> Result<String, String> {
        let name = crate::random::text().map_err(|_| "no randomness".to_owned())?;
        let path = format!("/clients/{name}.json");
        let url = format!("https://{}{path}", self.addr);
        let mut document = metadata.clone();
        document["client_id"] = Value::from(url.as_str());
        let mut documents = match self.documents.lock() {
            Ok(documents) => documents,
            Err(poisoned) => poisoned.into_inner(),
        };
        documents.insert(path, document.to_string().into_bytes());
        Ok(url)
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
    documents: Documents,
    outbound: Outbound,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, documents, outbound) =
            (acceptor.clone(), documents.clone(), outbound.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper::service::service_fn(move |request| {
                let answer = answer(&request, &documents, &outbound);
                async move { Ok::<_, Infallible>(answer) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

fn answer(
    request: &Request<Incoming>,
    documents: &Documents,
    outbound: &Outbound,
) -> Response<Full<Bytes>> {
    outbound.count("client_metadata_document");
    let body = {
        let documents = match documents.lock() {
            Ok(documents) => documents,
            Err(poisoned) => poisoned.into_inner(),
        };
        documents.get(request.uri().path()).cloned()
    };
    let mut response = Response::new(Full::new(Bytes::from(body.clone().unwrap_or_default())));
    match body {
        None => *response.status_mut() = StatusCode::NOT_FOUND,
        Some(_) => {
            let headers = response.headers_mut();
            headers.insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            if let Ok(value) =
                hyper::header::HeaderValue::from_str(&format!("public, max-age={MAX_AGE}"))
            {
                headers.insert(hyper::header::CACHE_CONTROL, value);
            }
        }
    }
    response
}
