//! The KMS server: configuration, the KMS core with one file per KMIP operation, and the HTTP
//! routes. `main.rs` only parses the command line and calls [`start`].

pub mod config;
pub mod error;
pub mod http;
pub mod kms;
pub mod operations;

use std::net::SocketAddr;
use std::sync::Arc;

use kms_store::ObjectStore;
use kms_store::sql::{MysqlDriver, PostgresDriver, SqlStore};
use kms_store::sqlite::SqliteStore;
use tokio::sync::oneshot;

use crate::config::{Config, Database};
use crate::http::AppState;
use crate::kms::Kms;

/// A server accepting connections.
pub struct RunningServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stops accepting connections and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Waits until the server stops (on its own, or after a signal handled by the caller).
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
    #[error("cannot listen on {addr}: {source}; choose another --port or --hostname")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Opens the store of the configuration.
pub async fn open_store(config: &Config) -> Result<Arc<dyn ObjectStore>, StartError> {
    let store: Arc<dyn ObjectStore> = match &config.database {
        Database::Sqlite { path } => Arc::new(SqliteStore::open(path)?),
        Database::Postgresql { url, pool_size } => Arc::new(
            SqlStore::open(Box::new(PostgresDriver::connect(url.expose(), *pool_size)?)).await?,
        ),
        Database::Mysql { url, pool_size } => Arc::new(
            SqlStore::open(Box::new(MysqlDriver::connect(url.expose(), *pool_size)?)).await?,
        ),
    };
    if config.cleanup_on_startup {
        tracing::warn!(
            "--cleanup-on-startup: deleting every object, tag and grant in the database"
        );
        store.clear().await?;
    }
    Ok(store)
}

/// Opens the store, binds the listener and serves until stopped.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    let store = open_store(&config).await?;
    let state = Arc::new(AppState {
        kms: Kms::new(store),
        default_username: config.default_username.clone(),
        limits: kmip::binary::Limits {
            max_message_size: config.max_request_size,
            ..Default::default()
        },
    });
    let app = http::router(state, config.max_request_size);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    tracing::info!(%addr, "KMS listening (HTTP)");
    Ok(RunningServer {
        addr,
        shutdown: Some(tx),
        task,
    })
}
