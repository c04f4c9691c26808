//! `kms-server`: parses the configuration, runs the bootstrap server first when asked, then the
//! KMS until Ctrl-C or SIGTERM.

use clap::Parser;
use kms_server::bootstrap::ra_tls::ConfigfsTsm;
use kms_server::config::{Args, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = Config::from_args(Args::parse())?;
    let server = if config.bootstrap.is_some() {
        let started =
            kms_server::bootstrap::run(config, &ConfigfsTsm::default(), |_, _| {}).await?;
        kms_server::serve(&started.config, started.store, started.tls).await?
    } else {
        kms_server::start(config).await?
    };
    let stop = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        #[cfg(not(unix))]
        ctrl_c.await?;
        Ok::<(), std::io::Error>(())
    };
    stop.await?;
    tracing::info!("shutting down");
    server.stop().await;
    Ok(())
}
