//! The bootstrap server (seed `000_...`): before the KMS starts, a TLS listener with a fresh
//! self-signed certificate receives the database configuration and the HTTPS PKCS#12, so that no
//! secret appears on a command line. `/start` validates everything, then the listener closes and
//! the KMS starts with that configuration.
//!
//! Nothing posted here is logged; errors name what is wrong, never a value.

pub mod ra_tls;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use kms_store::ObjectStore;
use serde::Deserialize;
use serde_json::json;

use kms_store::{Backend, Settings};

use crate::config::{Config, Secret};
use crate::error::KmsError;
use crate::tls::{self, TlsIdentity};

/// Largest accepted request body (a PKCS#12 is a few KiB).
pub const MAX_UPLOAD: usize = 1024 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    RaTls(#[from] ra_tls::RaTlsError),
    #[error("the bootstrap server cannot listen on port {port}: {reason}")]
    Listen { port: u16, reason: String },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("the bootstrap server stopped before a valid configuration was received")]
    Stopped,
}

/// What has been received so far.
struct Pending {
    /// The database posted (or given on the command line).
    database: Option<Backend>,
    p12: Option<zeroize::Zeroizing<Vec<u8>>>,
    p12_password: Option<Secret>,
    /// `/start` succeeded: nothing more is accepted.
    started: bool,
}

/// What `/start` hands over to the KMS.
pub struct Started {
    pub config: Config,
    pub store: Arc<dyn ObjectStore>,
    pub tls: Option<tls::ServerTls>,
}

struct BootState {
    config: Config,
    /// The token every request must carry (`--bootstrap-token`), if any.
    token: Option<Secret>,
    pending: tokio::sync::Mutex<Pending>,
    started: Mutex<Option<Started>>,
    handle: axum_server::Handle<std::net::SocketAddr>,
}

/// A failed bootstrap request: status and message from [`KmsError`], as a JSON `{"error"}`.
fn error(e: &KmsError) -> Response {
    let request_id = crate::error::RequestId::next();
    if e.http_status() >= 500 {
        tracing::warn!(%request_id, error = %e, "bootstrap request failed");
    }
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        axum::Json(json!({ "error": e.client_message(request_id) })),
    )
        .into_response()
}

/// A configuration that cannot be used: 400.
fn bad(message: impl Into<String>) -> Response {
    error(&KmsError::InvalidConfiguration(message.into()))
}

/// What was received so far, unless `/start` already handed over to the KMS: after it, every
/// request is refused with 409, so nothing can change the configuration that started.
async fn pending(s: &BootState) -> Result<tokio::sync::MutexGuard<'_, Pending>, Response> {
    let pending = s.pending.lock().await;
    if pending.started {
        return Err(error(&KmsError::AlreadyStarted));
    }
    Ok(pending)
}

/// Refuses a request without the bootstrap token, when one is configured. The comparison
/// takes the same time wherever the first difference is.
async fn require_token(
    State(s): State<Arc<BootState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(token) = &s.token {
        let given = request
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let expected = token.expose().as_bytes();
        let same = given.len() == expected.len()
            && given
                .bytes()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return error(&KmsError::BootstrapToken);
        }
    }
    next.run(request).await
}

fn ok(message: &str) -> Response {
    (StatusCode::OK, axum::Json(json!({ "success": message }))).into_response()
}

/// Reads a JSON body of at most [`MAX_UPLOAD`] bytes.
async fn json_body<T: serde::de::DeserializeOwned>(
    body: Body,
    expected: &str,
) -> Result<T, Response> {
    let bytes: Bytes = axum::body::to_bytes(body, MAX_UPLOAD)
        .await
        .map_err(|_| bad(format!("the request is larger than {MAX_UPLOAD} bytes")))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        bad(format!(
            "the body is not valid JSON of the form {expected}: {e}"
        ))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UrlBody {
    url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathBody {
    path: std::path::PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedisBody {
    url: String,
    master_password: String,
    findex_label: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    password: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(default)]
    clear_database: bool,
}

/// Records the database settings posted, once the store crate checked that they name a
/// backend and parse; `/start` opens it.
async fn choose(s: &BootState, settings: Settings, done: &str) -> Response {
    let chosen = match Backend::from_settings(settings) {
        Ok(backend) => match backend.check() {
            Ok(()) => backend,
            Err(e) => return bad(e.to_string()),
        },
        Err(e) => return bad(e.to_string()),
    };
    match pending(s).await {
        Ok(mut p) => p.database = Some(chosen),
        Err(r) => return r,
    }
    ok(done)
}

fn shared_database(s: &BootState, kind: &str, url: String) -> Settings {
    Settings {
        kind: Some(kind.into()),
        url: Some(Secret::new(url)),
        sqlite_dir: None,
        pool_size: s.config.database.pool_size(),
        ..s.config.database_settings.clone()
    }
}

async fn postgresql(State(s): State<Arc<BootState>>, body: Body) -> Response {
    let b: UrlBody =
        match json_body(body, r#"{"url": "postgres://user:password@host:5432/db"}"#).await {
            Ok(b) => b,
            Err(r) => return r,
        };
    // Parsing only: reachability is checked by /start.
    let settings = shared_database(&s, "postgresql", b.url);
    choose(&s, settings, "PostgreSQL configured").await
}

async fn mysql(State(s): State<Arc<BootState>>, body: Body) -> Response {
    let b: UrlBody = match json_body(body, r#"{"url": "mysql://user:password@host:3306/db"}"#).await
    {
        Ok(b) => b,
        Err(r) => return r,
    };
    let settings = shared_database(&s, "mysql", b.url);
    choose(&s, settings, "MySQL configured").await
}

async fn sqlite(State(s): State<Arc<BootState>>, body: Body) -> Response {
    let b: PathBody = match json_body(body, r#"{"path": "/var/lib/kms/sqlite-data"}"#).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let settings = Settings {
        kind: Some("sqlite".into()),
        sqlite_dir: Some(b.path),
        ..Settings::default()
    };
    choose(&s, settings, "SQLite configured").await
}

async fn sqlite_enc(State(s): State<Arc<BootState>>, body: Body) -> Response {
    let b: PathBody = match json_body(body, r#"{"path": "/var/lib/kms/sqlite-data"}"#).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let settings = Settings {
        kind: Some("sqlite-enc".into()),
        sqlite_dir: Some(b.path),
        ..Settings::default()
    };
    choose(&s, settings, "encrypted SQLite configured").await
}

async fn redis_findex(State(s): State<Arc<BootState>>, body: Body) -> Response {
    let b: RedisBody = match json_body(
        body,
        r#"{"url": "redis://host:6379", "master_password": "...", "findex_label": "..."}"#,
    )
    .await
    {
        Ok(b) => b,
        Err(r) => return r,
    };
    let settings = Settings {
        redis_master_password: Some(Secret::new(b.master_password)),
        redis_findex_label: Some(b.findex_label),
        ..shared_database(&s, "redis-findex", b.url)
    };
    choose(&s, settings, "Redis with Findex configured").await
}

async fn pkcs12(State(s): State<Arc<BootState>>, mut multipart: Multipart) -> Response {
    let too_big = || {
        bad(format!(
            "the upload is malformed or larger than {MAX_UPLOAD} bytes; send the PKCS#12 file as multipart/form-data"
        ))
    };
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return too_big(),
        };
        if field.content_type() == Some("application/octet-stream") {
            let data = match field.bytes().await {
                Ok(d) => d,
                Err(_) => return too_big(),
            };
            if data.is_empty() {
                return bad("the PKCS#12 part is empty");
            }
            match pending(&s).await {
                Ok(mut p) => p.p12 = Some(zeroize::Zeroizing::new(data.to_vec())),
                Err(r) => return r,
            }
            return ok("PKCS#12 received");
        }
    }
    bad(
        "no part with content type application/octet-stream; upload the file, e.g. curl -F file=@kms.p12",
    )
}

async fn pkcs12_password(State(s): State<Arc<BootState>>, body: Body) -> Response {
    let b: PasswordBody = match json_body(body, r#"{"password": "..."}"#).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match pending(&s).await {
        Ok(mut p) => p.p12_password = Some(Secret::new(b.password)),
        Err(r) => return r,
    }
    ok("PKCS#12 password received")
}

async fn start(State(s): State<Arc<BootState>>, body: Body) -> Response {
    let bytes = match axum::body::to_bytes(body, MAX_UPLOAD).await {
        Ok(b) => b,
        Err(_) => return bad(format!("the request is larger than {MAX_UPLOAD} bytes")),
    };
    let request: StartBody = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        StartBody::default()
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => {
                return bad(format!(
                    r#"the body is not valid JSON of the form {{"clear_database": false}}: {e}"#
                ));
            }
        }
    };
    // Holding the lock for the whole check keeps concurrent posts out of a half-validated state.
    let mut pending = match pending(&s).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let database = match pending.database.clone() {
        None => {
            return bad(
                "no database is configured; POST one to /postgresql, /mysql, /sqlite, /sqlite-enc \
                 or /redis-findex first",
            );
        }
        Some(d) => d,
    };
    let tls = match &pending.p12 {
        Some(data) => {
            let password = pending
                .p12_password
                .as_ref()
                .map(Secret::expose)
                .unwrap_or("");
            let authority = s.config.authority_cert_file.clone();
            let socket = s.config.socket_server.is_some();
            match tls::load_pkcs12(data, password)
                .and_then(|identity| tls::server_tls(identity, authority.as_deref(), socket))
            {
                Ok(t) => Some(t),
                Err(e) => return bad(e.to_string()),
            }
        }
        None => None,
    };
    let store = match database.open().await {
        Ok(s) => s,
        Err(e) => return bad(format!("the database cannot be used: {e}")),
    };
    let clear = request.clear_database || s.config.cleanup_on_startup;
    if clear && let Err(e) = crate::clear_store(store.as_ref()).await {
        return bad(format!("the database could not be cleared: {e}"));
    }
    let mut config = s.config.clone();
    config.database = database;
    config.cleanup_on_startup = false;
    config.bootstrap = None;
    config.https = None;
    if let Ok(mut slot) = s.started.lock() {
        *slot = Some(Started { config, store, tls });
    }
    // Marked under the lock: any request still in flight finds the server started. The
    // secrets received are dropped (and wiped) now; the KMS has what it needs.
    pending.started = true;
    pending.database = None;
    pending.p12 = None;
    pending.p12_password = None;
    drop(pending);
    // The answer goes out before the listener closes: graceful shutdown lets it finish.
    s.handle.graceful_shutdown(Some(Duration::from_secs(5)));
    tracing::info!("bootstrap complete: starting the KMS");
    ok("KMS server starting")
}

/// Serves the bootstrap routes until a valid `/start`, and returns what it received.
///
/// `on_listening` is called with the bound address and the certificate fingerprint once the
/// listener is up (tests use it to learn a port chosen by the system).
pub async fn run(
    config: Config,
    quotes: &dyn ra_tls::QuoteSource,
    on_listening: impl FnOnce(std::net::SocketAddr, &str),
) -> Result<Started, BootstrapError> {
    let options = config
        .bootstrap
        .clone()
        .unwrap_or(crate::config::Bootstrap {
            port: 9998,
            common_name: "cosmian.kms".into(),
            ensure_ra_tls: false,
            token: None,
        });
    let (cert, key) = ra_tls::self_signed(
        &options.common_name,
        options.ensure_ra_tls.then_some(quotes),
    )?;
    let fingerprint = tls::fingerprint(cert.as_ref());
    // HTTP/1.1 only, as the seed's curl commands speak it: over HTTP/2, reqwest's multipart
    // uploads (`ckms bootstrap`'s among them) reached the handler cut short in about 3 of 100
    // requests ("incomplete multipart stream"), which curl's never did; a handful of
    // configuration requests gain nothing from HTTP/2.
    let mut tls_config = Arc::unwrap_or_clone(tls::server_config(TlsIdentity {
        chain: vec![cert],
        key,
    })?);
    tls_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tls_config = Arc::new(tls_config);

    // The command line's configuration is the starting point; what is posted overrides it.
    let p12 = match &config.https {
        Some(h) => Some(
            std::fs::read(&h.p12_file).map_err(|source| tls::TlsError::Read {
                path: h.p12_file.display().to_string(),
                source,
            })?,
        ),
        None => None,
    };
    let token = match &options.token {
        Some(t) if !t.expose().is_empty() => Some(t.clone()),
        // Asked for without a value: a fresh one, shown once so that the operator can use it.
        Some(_) => {
            let fresh = Secret::new(uuid::Uuid::new_v4().simple().to_string());
            tracing::warn!(
                bootstrap_token = fresh.expose(),
                "bootstrap token generated: every bootstrap request must carry `Authorization: Bearer <token>`; it is shown only this once"
            );
            Some(fresh)
        }
        None => None,
    };
    let handle = axum_server::Handle::new();
    let state = Arc::new(BootState {
        pending: tokio::sync::Mutex::new(Pending {
            database: config.database_given.then(|| config.database.clone()),
            p12: p12.map(zeroize::Zeroizing::new),
            p12_password: config.https.as_ref().map(|h| h.p12_password.clone()),
            started: false,
        }),
        token: token.clone(),
        config: config.clone(),
        started: Mutex::new(None),
        handle: handle.clone(),
    });
    let app = Router::new()
        .route("/redis-findex", post(redis_findex))
        .route("/postgresql", post(postgresql))
        .route("/mysql", post(mysql))
        .route("/sqlite", post(sqlite))
        .route("/sqlite-enc", post(sqlite_enc))
        .route("/sqlite-ec", post(sqlite_enc))
        .route("/pkcs12", post(pkcs12))
        .route("/pkcs12-password", post(pkcs12_password))
        .route("/start", post(start))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(state.clone());
    let addr = std::net::SocketAddr::new(config.listen.ip(), options.port);
    let listener = std::net::TcpListener::bind(addr).map_err(|e| BootstrapError::Listen {
        port: options.port,
        reason: e.to_string(),
    })?;
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(tls_config),
    )
    .map_err(|e| BootstrapError::Listen {
        port: options.port,
        reason: e.to_string(),
    })?
    .map(|tls| {
        tls.acceptor(crate::listener::LimitedAcceptor::new(
            axum_server::accept::DefaultAcceptor::new(),
            config.connections,
        ))
    })
    .handle(handle.clone());
    let server = crate::listener::configure(server, config.connections);
    let task = tokio::spawn(async move { server.serve(app.into_make_service()).await });
    let bound = handle.listening().await.ok_or(BootstrapError::Listen {
        port: options.port,
        reason: "the listener stopped".into(),
    })?;
    tracing::info!(address = %bound, sha256_fingerprint = %fingerprint, "bootstrap server listening (TLS, self-signed)");
    on_listening(bound, &fingerprint);
    let _ = task.await;
    let started = state.started.lock().ok().and_then(|mut s| s.take());
    started.ok_or(BootstrapError::Stopped)
}
