//! The KMS server: configuration, the KMS core with one file per KMIP operation, the HTTP
//! routes, TLS, and the bootstrap server. `main.rs` only parses the command line and calls
//! [`start`] (or [`bootstrap::run`] then [`serve`]).

pub mod access;
pub mod auth;
pub mod batch;
pub mod bootstrap;
pub mod config;
pub mod error;
pub mod http;
pub mod kek;
pub mod key_cache;
pub mod kms;
pub mod listener;
pub mod logs;
pub mod metered;
pub mod observe;
pub mod openapi;
pub mod operations;
pub mod socket;
pub mod streams;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kms_store::ObjectStore;

use crate::config::Config;
use crate::http::AppState;
use crate::kms::Kms;

/// A server accepting connections.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Whether it serves HTTPS.
    pub https: bool,
    /// The KMIP socket, when started.
    pub socket: Option<socket::SocketServer>,
    /// Where `/metrics` is served, when on its own port (`--metrics-port`).
    pub metrics_addr: Option<SocketAddr>,
    /// How long requests in flight have to finish once [`RunningServer::stop`] is called.
    pub shutdown_timeout: Duration,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    metrics_task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// Stops accepting connections, lets requests in flight finish (for
    /// [`RunningServer::shutdown_timeout`] at most; then their connections are closed), and
    /// waits for the task. Every answered write is already durable: nothing is left to flush
    /// but the store's own threads, which stop when the last request drops it.
    pub async fn stop(self) {
        self.handle.graceful_shutdown(Some(self.shutdown_timeout));
        if let Some(socket) = self.socket {
            socket.stop().await;
        }
        if let Some(task) = self.metrics_task {
            task.abort();
        }
        let _ = self.task.await;
    }

    /// Waits until the server stops.
    pub async fn wait(self) -> std::io::Result<()> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] kms_store::StoreError),
    #[error("cannot listen on {addr}: {reason}; choose another --port or --hostname")]
    Bind { addr: SocketAddr, reason: String },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Bootstrap(#[from] bootstrap::BootstrapError),
    #[error("{0}")]
    Hsm(String),
    #[error("{0}")]
    Socket(String),
}

/// Deletes everything in the store, loudly.
pub async fn clear_store(store: &dyn ObjectStore) -> Result<(), kms_store::StoreError> {
    tracing::warn!(
        backend = store.backend(),
        "clearing the database: deleting every object and its tags"
    );
    store.clear().await
}

/// Opens the store of the configuration, loads its HTTPS identity, and serves.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    let tls = match &config.https {
        Some(h) => {
            let data = std::fs::read(&h.p12_file).map_err(|source| tls::TlsError::Read {
                path: h.p12_file.display().to_string(),
                source,
            })?;
            Some(tls::server_tls(
                tls::load_pkcs12(&data, h.p12_password.expose())?,
                config.authority_cert_file.as_deref(),
                config.socket_server.is_some(),
            )?)
        }
        None => None,
    };
    let store = config.database.open().await?;
    if config.cleanup_on_startup {
        clear_store(store.as_ref()).await?;
    }
    serve(&config, store, tls).await
}

/// Loads the HSM library and logs in to every configured slot; a configuration that does not
/// work stops the start with what to fix.
async fn open_hsm(config: &Config) -> Result<Option<Arc<kms_hsm::Hsm>>, StartError> {
    let Some(h) = &config.hsm else {
        return Ok(None);
    };
    let library = h.library.clone();
    let slots: Vec<(u64, zeroize::Zeroizing<String>)> = h
        .slots
        .iter()
        .map(|(slot, password)| (*slot, zeroize::Zeroizing::new(password.expose().to_owned())))
        .collect();
    let hsm = tokio::task::spawn_blocking(move || kms_hsm::Hsm::open(&library, &slots))
        .await
        .map_err(|e| StartError::Hsm(format!("the HSM start stopped: {e}")))?
        .map_err(|e| StartError::Hsm(e.to_string()))?;
    tracing::info!(model = %h.model, library = %h.library.display(), slots = ?hsm.slots(), "HSM ready");
    Ok(Some(Arc::new(hsm)))
}

/// Serves the KMS on `config.listen`, over HTTPS when a TLS configuration is given.
pub async fn serve(
    config: &Config,
    store: Arc<dyn ObjectStore>,
    tls: Option<tls::ServerTls>,
) -> Result<RunningServer, StartError> {
    let (tls, socket_tls) = match tls {
        Some(t) => (Some(t.http), t.socket),
        None => (None, None),
    };
    let hsm = open_hsm(config).await?;
    let store = match (&config.key_encryption_key, &hsm) {
        (Some(kek), Some(hsm)) => {
            let Some(Ok(r)) = kms_hsm::HsmRef::parse(kek) else {
                return Err(StartError::Hsm(format!(
                    "--key-encryption-key `{kek}` is not hsm::<slot>::<label>"
                )));
            };
            let wrapped = kek::KekStore::new(store, hsm.clone(), r, config.unwrapped_key_cache)
                .await
                .map_err(StartError::Hsm)?;
            // Per-tenant databases are only reachable with their secret: their keys are
            // wrapped on their next write.
            if wrapped.tenants().is_none() {
                let n = wrapped.wrap_existing().await?;
                if n > 0 {
                    tracing::warn!(
                        keys = n,
                        "wrapped the keys stored in clear under the key encryption key"
                    );
                }
            }
            tracing::info!(kek = %kek, "stored keys are wrapped by the key encryption key");
            Arc::new(wrapped) as Arc<dyn ObjectStore>
        }
        (Some(_), None) => {
            return Err(StartError::Hsm(
                "--key-encryption-key needs an HSM (--hsm-model, --hsm-slot, --hsm-password)"
                    .into(),
            ));
        }
        (None, _) => store,
    };
    let store = if config.metrics {
        // The recorder first: the store takes its metric handles from it.
        observe::prometheus();
        Arc::new(metered::MeteredStore::new(store)) as Arc<dyn ObjectStore>
    } else {
        store
    };
    let mut kms = Kms::new(store.clone());
    kms.hsm = hsm.map(|hsm| crate::operations::hsm::HsmState {
        hsm,
        admins: config
            .hsm
            .as_ref()
            .map(|h| h.admins.clone())
            .unwrap_or_default(),
    });
    kms.limits = config.limits;
    kms.privileged_users = config.privileged_users.clone();
    let store_backend = kms.store.backend();
    let mut state = Arc::new(AppState {
        kms,
        request_timeout: config.request_timeout,
        default_username: config.default_username.clone(),
        auth: auth::Authenticator::new(
            config.jwt_providers.clone(),
            config.api_token_id.clone(),
            config.force_default_username,
            config.default_username.clone(),
        )
        .with_client_certificates(
            config.authority_cert_file.is_some() && tls.is_some(),
            config.client_certificate_email,
        ),
        limits: kmip::binary::Limits {
            max_message_size: config.max_request_size,
            ..Default::default()
        },
        info: http::ServerInfo {
            version: env!("CARGO_PKG_VERSION"),
            database_type: store_backend,
            fips_mode: cfg!(feature = "fips"),
            hsm_model: config.hsm.as_ref().map(|h| h.model.clone()),
            key_encryption_key: config.key_encryption_key.is_some(),
            authentication: false,
            https: tls.is_some(),
            kmip_socket: config.socket_server.is_some(),
            metrics: config.metrics,
            kmip_versions: vec!["2.1", "2.0", "1.4", "1.3", "1.2", "1.1", "1.0"],
        },
        metrics_route: config.metrics && config.metrics_listen.is_none(),
    });
    let auth_enabled = state.auth.enabled();
    if let Some(state) = Arc::get_mut(&mut state) {
        state.info.authentication = auth_enabled;
    }
    if config.metrics {
        crate::observe::prometheus();
    }
    let metrics_task = match config.metrics_listen.filter(|_| config.metrics) {
        Some(addr) => {
            let listener =
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| StartError::Bind {
                        addr,
                        reason: format!("--metrics-port: {e}"),
                    })?;
            let bound = listener.local_addr().unwrap_or(addr);
            tracing::info!(addr = %bound, "metrics listening");
            Some((
                bound,
                tokio::spawn(async move {
                    let _ = axum::serve(listener, http::metrics_router(store)).await;
                }),
            ))
        }
        None => None,
    };
    let socket = match (config.socket_server, socket_tls) {
        (None, _) => None,
        (Some(listen), Some(tls)) => Some(
            socket::start(
                state.clone(),
                tls,
                listen,
                config.connections.max_connections,
            )
            .map_err(|e| StartError::Bind {
                addr: listen,
                reason: e.to_string(),
            })?,
        ),
        (Some(_), None) => {
            return Err(StartError::Socket(
                "--socket-server-start needs TLS: --https-p12-file (and --authority-cert-file)"
                    .into(),
            ));
        }
    };
    let make_service =
        axum::ServiceExt::<axum::extract::Request>::into_make_service(http::router(state));
    let handle = axum_server::Handle::new();
    let https = tls.is_some();
    let listener = std::net::TcpListener::bind(config.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| StartError::Bind {
            addr: config.listen,
            reason: e.to_string(),
        })?;
    if !config.listen.ip().is_loopback() && !https {
        if auth_enabled {
            tracing::warn!(
                address = %config.listen,
                "serving plain HTTP on a non-loopback address: tokens and keys travel in clear \
                 and can be replayed by anyone on the path. Serve HTTPS with \
                 --https-p12-file/--https-p12-password"
            );
        } else {
            tracing::warn!(
                address = %config.listen,
                "SERVING PLAIN HTTP WITHOUT AUTHENTICATION on a non-loopback address: anyone who \
                 reaches this port can read, use and destroy every key, and keys travel in clear. \
                 Serve HTTPS with --https-p12-file/--https-p12-password, or listen on loopback only \
                 with --hostname 127.0.0.1 behind a proxy that authenticates"
            );
        }
    } else if https && !auth_enabled && !config.listen.ip().is_loopback() {
        tracing::warn!(
            address = %config.listen,
            "no authentication configured: every caller is the default user and may use every key; \
             configure --authority-cert-file, --jwt-issuer-uri or --api-token-id"
        );
    }
    let limits = config.connections;
    let bind_error = |e: std::io::Error| StartError::Bind {
        addr: config.listen,
        reason: e.to_string(),
    };
    // Every connection with TCP_NODELAY: an answer larger than a segment is never held back
    // until the client acknowledges its start (Nagle's algorithm against delayed ACKs).
    let task = match tls {
        Some(tls) => {
            let server = axum_server::from_tcp_rustls(
                listener,
                axum_server::tls_rustls::RustlsConfig::from_config(tls),
            )
            .map_err(bind_error)?
            .map(|tls| {
                listener::ClientCertAcceptor::new(tls.acceptor(listener::LimitedAcceptor::new(
                    axum_server::accept::NoDelayAcceptor::new(),
                    limits,
                )))
            })
            .handle(handle.clone());
            let server = listener::configure(server, limits);
            tokio::spawn(async move { server.serve(make_service).await })
        }
        None => {
            let server = axum_server::from_tcp(listener)
                .map_err(bind_error)?
                .acceptor(listener::LimitedAcceptor::new(
                    axum_server::accept::NoDelayAcceptor::new(),
                    limits,
                ))
                .handle(handle.clone());
            let server = listener::configure(server, limits);
            tokio::spawn(async move { server.serve(make_service).await })
        }
    };
    let addr = handle.listening().await.ok_or_else(|| StartError::Bind {
        addr: config.listen,
        reason: "the listener stopped".into(),
    })?;
    tracing::info!(%addr, https, "KMS listening");
    let (metrics_addr, metrics_task) = match metrics_task {
        Some((addr, task)) => (Some(addr), Some(task)),
        None => (None, None),
    };
    Ok(RunningServer {
        socket,
        addr,
        https,
        metrics_addr,
        shutdown_timeout: config.shutdown_timeout,
        handle,
        task,
        metrics_task,
    })
}
