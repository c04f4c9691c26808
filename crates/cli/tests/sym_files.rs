//! `ckms sym encrypt|decrypt` against a real KMS: files of 0 bytes, 1 byte, one chunk and
//! several chunks come back intact; a decryption never replaces an existing file and leaves no
//! output when the file was tampered with. `ckms new-database` and `database_secret` select a
//! tenant of a `sqlite-enc` server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use std::path::Path;
use std::process::{Command, Output};

use kms_server::config::{Args, Config};

const CHUNK: usize = 1 << 20;

async fn server(dir: &Path) -> kms_server::RunningServer {
    let config = Config::from_args(Args {
        sqlite_path: Some(dir.join("data")),
        hostname: Some("127.0.0.1".into()),
        port: Some(0),
        ..Args::default()
    })
    .unwrap();
    kms_server::start(config).await.expect("the KMS starts")
}

/// Runs ckms with the configuration `conf` without blocking the server's runtime.
async fn ckms(conf: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ckms"));
    command.arg("--conf").arg(conf).args(args);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 253) as u8).collect()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_round_trip_and_decryption_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let kms = server(dir.path()).await;
    let conf = dir.path().join("kms.json");
    std::fs::write(
        &conf,
        format!(r#"{{"kms_server_url": "http://{}"}}"#, kms.addr),
    )
    .unwrap();
    ok(&ckms(&conf, &["sym", "keys", "create", "file-key"]).await);
    ok(&ckms(&conf, &["sym", "keys", "activate", "file-key"]).await);

    for len in [0, 1, CHUNK, 2 * CHUNK + 5] {
        let plain = dir.path().join(format!("f{len}"));
        std::fs::write(&plain, data(len)).unwrap();
        ok(&ckms(&conf, &["sym", "encrypt", "-k", "file-key", path(&plain)]).await);
        let enc = dir.path().join(format!("f{len}.enc"));
        let out = dir.path().join(format!("f{len}.out"));
        ok(&ckms(
            &conf,
            &[
                "sym",
                "decrypt",
                "-k",
                "file-key",
                path(&enc),
                "-o",
                path(&out),
            ],
        )
        .await);
        assert_eq!(std::fs::read(&out).unwrap(), data(len), "{len} bytes");

        // Without -o the output is the original's name, which exists: refused, left alone.
        let again = ckms(&conf, &["sym", "decrypt", "-k", "file-key", path(&enc)]).await;
        assert!(!again.status.success());
        let stderr = String::from_utf8_lossy(&again.stderr);
        assert!(stderr.contains(path(&plain)), "{stderr}");
        assert!(
            stderr.contains("remove it or choose another output"),
            "{stderr}"
        );
        assert_eq!(std::fs::read(&plain).unwrap(), data(len));
    }

    // A tampered last chunk: the first two decrypt, then the output is removed.
    let enc = dir.path().join(format!("f{}.enc", 2 * CHUNK + 5));
    let mut bytes = std::fs::read(&enc).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 1;
    let tampered = dir.path().join("tampered.enc");
    std::fs::write(&tampered, bytes).unwrap();
    let out = dir.path().join("tampered.out");
    let r = ckms(
        &conf,
        &[
            "sym",
            "decrypt",
            "-k",
            "file-key",
            path(&tampered),
            "-o",
            path(&out),
        ],
    )
    .await;
    assert!(!r.status.success());
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("modified"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(!out.exists());
    assert!(!dir.path().join("tampered.out.partial").exists());
    kms.stop().await;
}

/// `ckms new-database` on a `sqlite-enc` server, then the secret in `database_secret`: the
/// tenant's key is there for that configuration and for no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_database_then_database_secret_selects_the_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_args(Args {
        database_type: Some("sqlite-enc".into()),
        sqlite_path: Some(dir.path().join("tenants")),
        hostname: Some("127.0.0.1".into()),
        port: Some(0),
        ..Args::default()
    })
    .unwrap();
    let kms = kms_server::start(config).await.expect("the KMS starts");
    let anonymous = dir.path().join("anonymous.json");
    std::fs::write(
        &anonymous,
        format!(r#"{{"kms_server_url": "http://{}"}}"#, kms.addr),
    )
    .unwrap();
    let mut confs = Vec::new();
    for tenant in ["a", "b"] {
        let out = ckms(&anonymous, &["new-database"]).await;
        ok(&out);
        let secret = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(secret.len() > 60, "{secret}");
        let conf = dir.path().join(format!("{tenant}.json"));
        std::fs::write(
            &conf,
            serde_json::json!({"kms_server_url": format!("http://{}", kms.addr), "database_secret": secret})
                .to_string(),
        )
        .unwrap();
        confs.push(conf);
    }
    ok(&ckms(&confs[0], &["sym", "keys", "create", "tenant-key"]).await);
    let other = ckms(&confs[1], &["sym", "keys", "activate", "tenant-key"]).await;
    assert!(
        !other.status.success(),
        "tenant b does not see tenant a's key"
    );
    ok(&ckms(&confs[0], &["sym", "keys", "activate", "tenant-key"]).await);
    // The secret rotated: the new one reaches the key, the old one nothing.
    let out = ckms(&confs[0], &["rotate-database-secret"]).await;
    ok(&out);
    let rotated = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let rotated_conf = dir.path().join("a-rotated.json");
    std::fs::write(
        &rotated_conf,
        serde_json::json!({"kms_server_url": format!("http://{}", kms.addr), "database_secret": rotated})
            .to_string(),
    )
    .unwrap();
    ok(&ckms(
        &rotated_conf,
        &["sym", "keys", "revoke", "-k", "tenant-key", "rotated"],
    )
    .await);
    let old = ckms(&confs[0], &["sym", "keys", "destroy", "tenant-key"]).await;
    assert!(!old.status.success(), "the old secret opens nothing");
    let refused = ckms(&anonymous, &["sym", "keys", "create", "k"]).await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("DatabaseSecret"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
