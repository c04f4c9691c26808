//! `kms-server`: parses the configuration, sets up the logs, runs the bootstrap server first
//! when asked, then the KMS until SIGTERM or SIGINT, when it stops accepting and lets the
//! requests in flight finish (up to `--shutdown-timeout`).

use clap::Parser;
use kms_server::bootstrap::ra_tls::ConfigfsTsm;
use kms_server::config::{Args, Config, LogFormat};

fn main() -> anyhow::Result<()> {
    // Before any other thread exists: each thread takes its malloc arena at its first
    // allocation, under the limit set then (see kms_alloc).
    kms_alloc::configure();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.print_default_config {
        print!("{}", kms_server::config::default_config_toml());
        return Ok(());
    }
    let config = Config::from_args(args)?;
    // Held until the end of main: dropping it writes out the lines still queued.
    let _log_writer = init_logs(&config)?;
    let server = if config.bootstrap.is_some() {
        let started =
            kms_server::bootstrap::run(config, &ConfigfsTsm::default(), |_, _| {}).await?;
        kms_server::serve(&started.config, started.store, started.tls).await?
    } else {
        kms_server::start(config).await?
    };
    let signal = stop_signal().await?;
    tracing::info!(
        signal,
        deadline_seconds = server.shutdown_timeout.as_secs_f64(),
        "shutting down: no new connections; finishing the requests in flight"
    );
    server.stop().await;
    tracing::info!("stopped");
    Ok(())
}

/// Text or JSON lines on stdout (batched: see `kms_server::logs`), filtered by `--log-filter`,
/// else `RUST_LOG`, else info.
fn init_logs(config: &Config) -> anyhow::Result<kms_server::logs::LogGuard> {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = match &config.log_filter {
        Some(f) => EnvFilter::try_new(f)
            .map_err(|e| anyhow::anyhow!("--log-filter `{f}` is not a valid filter: {e}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
    };
    let ansi = std::io::stdout().is_terminal();
    let (writer, guard) = kms_server::logs::batched_stdout();
    let json = matches!(config.log_format, LogFormat::Json);
    if !ansi {
        // The line of every request, written without tracing's formatter: as the formatter
        // below writes it.
        kms_server::logs::access_lines_to(&writer, json);
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .event_format(kms_server::logs::LineFormat { json, ansi })
        .init();
    Ok(guard)
}

/// Waits for SIGTERM or SIGINT (Ctrl-C) and names it.
async fn stop_signal() -> std::io::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => Ok("SIGTERM"),
            _ = int.recv() => Ok("SIGINT"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await?;
        Ok("Ctrl-C")
    }
}
