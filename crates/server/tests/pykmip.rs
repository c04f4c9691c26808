//! PyKMIP 0.11's `ProxyKmipClient`, the most used open KMIP client, against the KMIP socket over
//! mutual TLS, at KMIP 1.2 and 2.0: `tests/pykmip/client.py` runs every operation and checks
//! each answer. PyKMIP lives in a virtual environment that `scripts/setup.sh` makes
//! (`~/.cache/kms-tools/pykmip`, or `KMS_TEST_PYKMIP_PYTHON`); a missing one is a failure.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

mod common;

use std::path::PathBuf;

use common::TestServer;

fn python() -> PathBuf {
    std::env::var_os("KMS_TEST_PYKMIP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/kms-tools/pykmip/bin/python")
        })
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

async fn run(version: &str) {
    let python = python();
    assert!(
        python.exists(),
        "PyKMIP's Python is missing at {}: run scripts/setup.sh",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let pki = common::socket::pki(dir.path());
    let server = TestServer::builder()
        .https(
            dir.path().join("kms.p12"),
            "pw",
            Some(dir.path().join("ca.pem")),
        )
        .socket()
        .start()
        .await;
    let addr = server.server.socket.as_ref().unwrap().addr;
    let (cert, key) = pki.client_pem("pykmip-user");
    let files = [
        ("client.pem", cert),
        ("client.key", key),
        ("server-ca.pem", pem("CERTIFICATE", &pki.server_cert)),
    ];
    for (name, text) in &files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/pykmip/client.py");
    let mut command = std::process::Command::new(&python);
    command
        .arg(&script)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(dir.path().join("client.pem"))
        .arg(dir.path().join("client.key"))
        .arg(dir.path().join("server-ca.pem"))
        .arg(version);
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("all ok"),
        "PyKMIP at KMIP {version}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pykmip_at_kmip_1_2() {
    run("1.2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pykmip_at_kmip_2_0() {
    run("2.0").await;
}
