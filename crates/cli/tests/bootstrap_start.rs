//! `ckms bootstrap-start` against a real bootstrap server: with the pinned fingerprint it
//! configures and starts the KMS; with a wrong fingerprint it refuses, and the server received
//! nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use std::net::SocketAddr;
use std::process::Command;

use kms_server::bootstrap::ra_tls::ConfigfsTsm;
use kms_server::config::{Args, Backend, Bootstrap, Config};

async fn bootstrap(
    token: Option<&str>,
) -> (
    SocketAddr,
    String,
    tokio::task::JoinHandle<Result<kms_server::bootstrap::Started, String>>,
) {
    let mut config = Config::from_args(Args::default()).unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.bootstrap = Some(Bootstrap {
        port: 0,
        common_name: "cosmian.kms".into(),
        ensure_ra_tls: false,
        token: token.map(kms_server::config::Secret::new),
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        kms_server::bootstrap::run(config, &ConfigfsTsm::default(), move |addr, fp| {
            let _ = tx.send((addr, fp.to_owned()));
        })
        .await
        .map_err(|e| e.to_string())
    });
    let (addr, fp) = rx.await.unwrap();
    (addr, fp, task)
}

/// Runs ckms with a configuration whose `kms_server_url` is the plain-HTTP address: the command
/// must turn it into https for the bootstrap server.
fn ckms(addr: SocketAddr, extra: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("kms.json");
    std::fs::write(&conf, format!(r#"{{"kms_server_url": "http://{addr}"}}"#)).unwrap();
    Command::new(env!("CARGO_BIN_EXE_ckms"))
        .arg("--conf")
        .arg(&conf)
        .arg("bootstrap-start")
        .args(extra)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_fingerprint_and_token_configure_and_start() {
    let (addr, fingerprint, task) = bootstrap(Some("tok-0815-secret")).await;
    let dir = tempfile::tempdir().unwrap();
    let (p12, _) = kms_server::tls::self_signed_pkcs12(&["localhost"], "pw-4711", true).unwrap();
    let p12_path = dir.path().join("kms.p12");
    std::fs::write(&p12_path, p12).unwrap();
    let sqlite = dir.path().join("data");
    let path = |p: &std::path::Path| p.display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        let args = |token: &str| {
            vec![
                "--database-type".to_owned(),
                "sqlite".to_owned(),
                "--sqlite-path".to_owned(),
                path(&sqlite),
                "--https-p12-file".to_owned(),
                path(&p12_path),
                "--https-p12-password".to_owned(),
                "pw-4711".to_owned(),
                "--bootstrap-fingerprint".to_owned(),
                fingerprint.clone(),
                "--bootstrap-token".to_owned(),
                token.to_owned(),
            ]
        };
        let refused = ckms(
            addr,
            &args("wrong").iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert!(!refused.status.success(), "a wrong token is refused");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("401"),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );
        ckms(
            addr,
            &args("tok-0815-secret")
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started = task.await.unwrap().expect("the KMS starts");
    assert!(started.tls.is_some());
    assert_eq!(
        started.config.database,
        Backend::Sqlite {
            path: dir.path().join("data").join("kms.db")
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_fingerprint_sends_nothing() {
    let (addr, _, task) = bootstrap(None).await;
    let wrong = vec!["00"; 32].join(":");
    let out = tokio::task::spawn_blocking(move || {
        ckms(
            addr,
            &[
                "--database-type",
                "sqlite",
                "--sqlite-path",
                "/tmp/never",
                "--bootstrap-fingerprint",
                &wrong,
            ],
        )
    })
    .await
    .unwrap();
    assert!(!out.status.success(), "must refuse");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fingerprint"), "{stderr}");
    // The server received no database: /start still has nothing to start with.
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let r = http
        .post(format!("https://{addr}/start"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("no database"));
    task.abort();
}
