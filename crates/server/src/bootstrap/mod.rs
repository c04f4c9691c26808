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

use crate::config::{Config, Database, Secret};
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

/// The database a client chose, including the types this build does not offer.
#[derive(Clone, Debug)]
enum Chosen {
    Ready(Database),
    NotAvailable(&'static str),
}

/// What has been received so far.
struct Pending {
    database: Option<Chosen>,
    p12: Option<Vec<u8>>,
    p12_password: Option<Secret>,
}

/// What `/start` hands over to the KMS.
pub struct Started {
    pub config: Config,
    pub store: Arc<dyn ObjectStore>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

struct BootState {
    config: Config,
    pending: tokio::sync::Mutex<Pending>,
    started: Mutex<Option<Started>>,
    handle: axum_server::Handle<std::net::SocketAddr>,
}

fn bad(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "error": message.into() })),
    )
        .into_response()
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
#[allow(
    dead_code,
    reason = "read so that the body is validated; the backend is not built yet"
)]
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

async fn postgresql(State(s): State<Arc<BootState>>, body: Body) -> Response {
    let b: UrlBody =
        match json_body(body, r#"{"url": "postgres://user:password@host:5432/db"}"#).await {
            Ok(b) => b,
            Err(r) => return r,
        };
    // Parsing only: reachability is checked by /start.
    if let Err(e) = kms_store::sql::PostgresDriver::connect(&b.url, 1) {
        return bad(e.to_string());
    }
    s.pending.lock().await.database = Some(Chosen::Ready(Database::Postgresql {
        url: Secret(b.url),
        pool_size: pool_size(&s.config),
    }));
    ok("PostgreSQL configured")
}

async fn mysql(State(s): State<Arc<BootState>>, body: Body) -> Response {
    let b: UrlBody = match json_body(body, r#"{"url": "mysql://user:password@host:3306/db"}"#).await
    {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(e) = kms_store::sql::MysqlDriver::connect(&b.url, 1) {
        return bad(e.to_string());
    }
    s.pending.lock().await.database = Some(Chosen::Ready(Database::Mysql {
        url: Secret(b.url),
        pool_size: pool_size(&s.config),
    }));
    ok("MySQL configured")
}

fn pool_size(config: &Config) -> usize {
    match &config.database {
        Database::Postgresql { pool_size, .. } | Database::Mysql { pool_size, .. } => *pool_size,
        Database::Sqlite { .. } => 16,
    }
}

async fn sqlite(State(s): State<Arc<BootState>>, body: Body) -> Response {
    let b: PathBody = match json_body(body, r#"{"path": "/var/lib/kms/sqlite-data"}"#).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    s.pending.lock().await.database = Some(Chosen::Ready(Database::Sqlite {
        path: b.path.join("kms.db"),
    }));
    ok("SQLite configured")
}

async fn sqlite_enc(State(s): State<Arc<BootState>>, body: Body) -> Response {
    if let Err(r) = json_body::<PathBody>(body, r#"{"path": "/var/lib/kms/sqlite-data"}"#).await {
        return r;
    }
    s.pending.lock().await.database = Some(Chosen::NotAvailable("sqlite-enc"));
    ok("encrypted SQLite configured")
}

async fn redis_findex(State(s): State<Arc<BootState>>, body: Body) -> Response {
    if let Err(r) = json_body::<RedisBody>(
        body,
        r#"{"url": "redis://host:6379", "master_password": "...", "findex_label": "..."}"#,
    )
    .await
    {
        return r;
    }
    s.pending.lock().await.database = Some(Chosen::NotAvailable("redis-findex"));
    ok("Redis with Findex configured")
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
            s.pending.lock().await.p12 = Some(data.to_vec());
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
    s.pending.lock().await.p12_password = Some(Secret(b.password));
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
    let pending = s.pending.lock().await;
    let database = match &pending.database {
        None => {
            return bad(
                "no database is configured; POST one to /postgresql, /mysql or /sqlite first",
            );
        }
        Some(Chosen::NotAvailable(kind)) => {
            return bad(format!(
                "the database type {kind} is not available in this build; configure /postgresql, /mysql or /sqlite instead"
            ));
        }
        Some(Chosen::Ready(d)) => d.clone(),
    };
    let tls = match &pending.p12 {
        Some(data) => {
            let password = pending
                .p12_password
                .as_ref()
                .map(Secret::expose)
                .unwrap_or("");
            match tls::load_pkcs12(data, password).and_then(tls::server_config) {
                Ok(t) => Some(t),
                Err(e) => return bad(e.to_string()),
            }
        }
        None => None,
    };
    let store = match crate::open_store(&database).await {
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
        });
    let (cert, key) = ra_tls::self_signed(
        &options.common_name,
        options.ensure_ra_tls.then_some(quotes),
    )?;
    let fingerprint = tls::fingerprint(cert.as_ref());
    let tls_config = tls::server_config(TlsIdentity {
        chain: vec![cert],
        key,
    })?;

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
    let handle = axum_server::Handle::new();
    let state = Arc::new(BootState {
        pending: tokio::sync::Mutex::new(Pending {
            database: config
                .database_given
                .then(|| Chosen::Ready(config.database.clone())),
            p12,
            p12_password: config.https.as_ref().map(|h| h.p12_password.clone()),
        }),
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
    .handle(handle.clone());
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
