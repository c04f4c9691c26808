//! The bootstrap server: the seed's curl commands as written, every bad input answered with a
//! 400 JSON error, `--ensure-ra-tls` refused on this machine, and no secret in the output at the
//! most verbose log level.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kms_client::{ClientConfig, KmsClient};
use kms_server::bootstrap::ra_tls::ConfigfsTsm;
use kms_server::config::{Backend, Bootstrap, Config};
use kms_server::tls;
use kms_store::sql::testing::TestDatabase;
use serde_json::Value;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// Runs `kms-server` in bootstrap mode at trace level; returns the child, the bootstrap
/// fingerprint and a receiver of every output line.
#[allow(
    clippy::zombie_processes,
    reason = "the caller kills and waits for the child"
)]
fn spawn_bootstrap(port: u16) -> (std::process::Child, String, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kms-server"))
        .args(["--use-bootstrap-server", "--hostname", "127.0.0.1"])
        .args([
            "--bootstrap-server-port",
            &port.to_string(),
            "--port",
            &port.to_string(),
        ])
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("bootstrap starts");
        if let Some(i) = line.find("sha256_fingerprint=") {
            let fp = line[i + "sha256_fingerprint=".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned();
            let (tx2, rx2) = mpsc::channel();
            for l in seen {
                tx2.send(l).unwrap();
            }
            tx2.send(line).unwrap();
            std::thread::spawn(move || {
                while let Ok(l) = rx.recv() {
                    if tx2.send(l).is_err() {
                        break;
                    }
                }
            });
            return (child, fp, rx2);
        }
        seen.push(line);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_curl_commands_then_https_with_the_uploaded_certificate() {
    const P12_PASSWORD: &str = "p12-Secret-4711";
    const DB_PASSWORD: &str = "pg-Secret-4711";
    let db = TestDatabase::postgres().await.unwrap();
    // PostgreSQL trusts local connections: the password only has to travel, and never show.
    let db_url = db
        .url
        .replacen("postgres@", &format!("postgres:{DB_PASSWORD}@"), 1);
    let dir = tempfile::tempdir().unwrap();
    let (p12, cert_der) =
        tls::self_signed_pkcs12(&["localhost", "127.0.0.1"], P12_PASSWORD, true).unwrap();
    let p12_path = dir.path().join("kms-server.p12");
    std::fs::write(&p12_path, &p12).unwrap();

    let port = free_port();
    let (mut child, bootstrap_fp, lines) = spawn_bootstrap(port);
    let base = format!("https://127.0.0.1:{port}");
    // The seed's commands, with the local address, the test database and the generated file.
    let body = format!(r#"{{"url": "{db_url}"}}"#);
    let (code, answer) = curl(&[
        "-k",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        &body,
        &format!("{base}/postgresql"),
    ]);
    assert_eq!(code, 200, "{answer}");
    let file = format!("file=@{}", p12_path.display());
    let (code, answer) = curl(&[
        "-k",
        "-F",
        "name=pkcs12",
        "-F",
        &file,
        &format!("{base}/pkcs12"),
    ]);
    assert_eq!(code, 200, "{answer}");
    let body = format!(r#"{{"password": "{P12_PASSWORD}"}}"#);
    let (code, answer) = curl(&[
        "-k",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        &body,
        &format!("{base}/pkcs12-password"),
    ]);
    assert_eq!(code, 200, "{answer}");
    let (code, answer) = curl(&[
        "-k",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"clear_database": false}"#,
        &format!("{base}/start"),
    ]);
    assert_eq!(code, 200, "{answer}");

    // The KMS now answers over HTTPS on the same port with exactly the uploaded certificate.
    let uploaded_fp = tls::fingerprint(&cert_der);
    let pinned = KmsClient::new(ClientConfig {
        server_url: base.clone(),
        pinned_sha256: Some(uploaded_fp.clone()),
        ..ClientConfig::default()
    })
    .unwrap();
    let mut version = None;
    for _ in 0..100 {
        if let Ok(v) = pinned.version().await {
            version = Some(v);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        version.as_deref(),
        Some(env!("CARGO_PKG_VERSION")),
        "KMS over HTTPS with the uploaded certificate"
    );
    let bootstrap_pinned = KmsClient::new(ClientConfig {
        server_url: base.clone(),
        pinned_sha256: Some(bootstrap_fp),
        ..ClientConfig::default()
    })
    .unwrap();
    assert!(
        bootstrap_pinned.version().await.is_err(),
        "the bootstrap certificate is gone"
    );

    // On the configured database: a key created through the KMS is in that PostgreSQL schema.
    use kmip::model::*;
    let attributes = Attributes(vec![
        Attribute::CryptographicAlgorithm(kmip::CryptographicAlgorithm::AES),
        Attribute::CryptographicLength(256),
        Attribute::UniqueIdentifier("boot-key".into()),
    ]);
    pinned
        .send(RequestPayload::Create(Create {
            object_type: kmip::ObjectType::SymmetricKey,
            attributes,
            protection_storage_masks: None,
        }))
        .await
        .unwrap();
    let direct = kms_store::sql::SqlStore::open(db.driver(1).unwrap())
        .await
        .unwrap();
    use kms_store::ObjectStore;
    assert!(
        direct.get("boot-key").await.unwrap().is_some(),
        "the key is in the posted database"
    );

    child.kill().unwrap();
    child.wait().unwrap();
    // No secret given to the bootstrap server appears in the output, even at trace level.
    let output: Vec<String> = lines.try_iter().collect();
    assert!(output.len() > 5, "trace output was captured");
    for line in &output {
        assert!(
            !line.contains(P12_PASSWORD),
            "PKCS#12 password in the output: {line}"
        );
        assert!(
            !line.contains(DB_PASSWORD),
            "database password in the output: {line}"
        );
    }
    db.drop_now().await.unwrap();
}

async fn start_in_process(
    config: Config,
) -> (
    SocketAddr,
    tokio::task::JoinHandle<Result<kms_server::bootstrap::Started, String>>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        kms_server::bootstrap::run(config, &ConfigfsTsm::default(), move |addr, _| {
            let _ = tx.send(addr);
        })
        .await
        .map_err(|e| e.to_string())
    });
    (rx.await.unwrap(), task)
}

fn bootstrap_config() -> Config {
    let mut config = Config::from_args(kms_server::config::Args::default()).unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.bootstrap = Some(Bootstrap {
        port: 0,
        common_name: "cosmian.kms".into(),
        ensure_ra_tls: false,
        token: None,
    });
    config
}

async fn expect_400(response: reqwest::Response, about: &str) {
    assert_eq!(response.status(), 400, "{about}");
    let body: Value = response.json().await.expect("a JSON body");
    let error = body
        .get("error")
        .and_then(Value::as_str)
        .expect("an `error` field");
    assert!(
        error.to_lowercase().contains(about),
        "`{error}` should mention `{about}`"
    );
}

/// Over HTTP/2, reqwest's multipart uploads (as `ckms bootstrap` sends them) reached the
/// handler cut short in about 3 of 100 requests; the bootstrap server speaks HTTP/1.1 only.
/// With the old behaviour, 100 uploads all arriving whole had a chance of about 1 in 20.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_upload_arrives_whole_over_http_1_1() {
    let (addr, task) = start_in_process(bootstrap_config()).await;
    let base = format!("https://{addr}");
    let (p12, _) = tls::self_signed_pkcs12(&["localhost"], "right", true).unwrap();
    for _ in 0..100 {
        // A client that offers HTTP/2 and a fresh connection each time, as `ckms` makes one.
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let part = reqwest::multipart::Part::bytes(p12.clone())
            .mime_str("application/octet-stream")
            .unwrap();
        let r = http
            .post(format!("{base}/pkcs12"))
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_11);
        let status = r.status();
        assert_eq!(status, 200, "{}", r.text().await.unwrap_or_default());
    }
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_400_json_errors_and_a_valid_configuration_still_starts() {
    let (addr, task) = start_in_process(bootstrap_config()).await;
    let base = format!("https://{addr}");
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let start = || {
        http.post(format!("{base}/start"))
            .json(&serde_json::json!({}))
    };
    let upload = |bytes: Vec<u8>| {
        let part = reqwest::multipart::Part::bytes(bytes)
            .mime_str("application/octet-stream")
            .unwrap();
        http.post(format!("{base}/pkcs12"))
            .multipart(reqwest::multipart::Form::new().part("file", part))
    };

    expect_400(start().send().await.unwrap(), "no database").await;
    expect_400(
        http.post(format!("{base}/postgresql"))
            .json(&serde_json::json!({"url": "postgres://[::bad"}))
            .send()
            .await
            .unwrap(),
        "does not parse",
    )
    .await;
    expect_400(
        http.post(format!("{base}/mysql"))
            .body("{not json")
            .send()
            .await
            .unwrap(),
        "not valid json",
    )
    .await;
    http.post(format!("{base}/postgresql"))
        .json(&serde_json::json!({"url": "postgres://postgres:pw@127.0.0.1:1/none"}))
        .send()
        .await
        .unwrap();
    expect_400(start().send().await.unwrap(), "unreachable").await;

    let dir = tempfile::tempdir().unwrap();
    http.post(format!("{base}/sqlite"))
        .json(&serde_json::json!({"path": dir.path()}))
        .send()
        .await
        .unwrap();
    upload(b"garbage, not a PKCS#12".to_vec())
        .send()
        .await
        .unwrap();
    expect_400(start().send().await.unwrap(), "pkcs#12").await;
    let (p12, _) = tls::self_signed_pkcs12(&["localhost"], "right", true).unwrap();
    upload(p12.clone()).send().await.unwrap();
    http.post(format!("{base}/pkcs12-password"))
        .json(&serde_json::json!({"password": "wrong"}))
        .send()
        .await
        .unwrap();
    expect_400(start().send().await.unwrap(), "password").await;
    let (cert_only, _) = tls::self_signed_pkcs12(&["localhost"], "right", false).unwrap();
    upload(cert_only).send().await.unwrap();
    http.post(format!("{base}/pkcs12-password"))
        .json(&serde_json::json!({"password": "right"}))
        .send()
        .await
        .unwrap();
    expect_400(start().send().await.unwrap(), "private key").await;
    // The server answers before reading the whole body and closes that connection: the
    // oversized upload goes on a connection of its own.
    expect_400(
        upload(vec![0u8; 2 * 1024 * 1024])
            .header("connection", "close")
            .send()
            .await
            .unwrap(),
        "larger than",
    )
    .await;
    expect_400(
        http.post(format!("{base}/start"))
            .body(r#"{"clear_database": "yes"#)
            .send()
            .await
            .unwrap(),
        "not valid json",
    )
    .await;
    // Redis with Findex without a password.
    expect_400(
        http.post(format!("{base}/redis-findex"))
            .json(&serde_json::json!({"url": "redis://127.0.0.1:6379", "master_password": "", "findex_label": "l"}))
            .send()
            .await
            .unwrap(),
        "--redis-master-password",
    )
    .await;

    // A valid configuration still starts. It goes on fresh connections: the oversized upload
    // above left the client's pool with a connection the server closed mid-body.
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let upload = |bytes: Vec<u8>| {
        let part = reqwest::multipart::Part::bytes(bytes)
            .mime_str("application/octet-stream")
            .unwrap();
        http.post(format!("{base}/pkcs12"))
            .multipart(reqwest::multipart::Form::new().part("file", part))
    };
    http.post(format!("{base}/sqlite"))
        .json(&serde_json::json!({"path": dir.path()}))
        .send()
        .await
        .unwrap();
    let r = upload(p12).send().await.unwrap();
    let status = r.status();
    assert_eq!(status, 200, "{}", r.text().await.unwrap_or_default());
    let r = http
        .post(format!("{base}/start"))
        .json(&serde_json::json!({"clear_database": true}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(status, 200, "{}", r.text().await.unwrap_or_default());
    let started = task.await.unwrap().expect("bootstrap hands over");
    assert!(started.tls.is_some(), "HTTPS with the uploaded PKCS#12");
    assert_eq!(
        started.config.database,
        Backend::Sqlite {
            path: dir.path().join("kms.db")
        }
    );
}

#[test]
fn ensure_ra_tls_refuses_to_start_on_this_machine() {
    let out = Command::new(env!("CARGO_BIN_EXE_kms-server"))
        .args([
            "--use-bootstrap-server",
            "--ensure-ra-tls",
            "--hostname",
            "127.0.0.1",
        ])
        .args(["--bootstrap-server-port", &free_port().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "must not start");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("confidential VM") && text.contains("/sys/kernel/config/tsm/report"),
        "{text}"
    );
}

/// A request still in flight when `/start` hands over gets 409 and changes nothing: the KMS
/// starts with the configuration `/start` validated, and every later request is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_during_start_gets_409_and_changes_nothing() {
    let (addr, task) = start_in_process(bootstrap_config()).await;
    let base = format!("https://{addr}");
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let chosen = tempfile::tempdir().unwrap();
    let r = http
        .post(format!("{base}/sqlite"))
        .json(&serde_json::json!({"path": chosen.path()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A slow client: its headers are in, the second half of its body comes after /start.
    let other = tempfile::tempdir().unwrap();
    let body = serde_json::json!({"path": other.path()}).to_string();
    let (first, second) = body.split_at(5);
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let halves = futures_util::stream::unfold(
        (0, Some(released), first.to_owned(), second.to_owned()),
        |(step, gate, first, second)| async move {
            match step {
                0 => Some((
                    Ok::<_, std::io::Error>(first.clone()),
                    (1, gate, first, second),
                )),
                1 => {
                    if let Some(gate) = gate {
                        let _ = gate.await;
                    }
                    Some((Ok(second.clone()), (2, None, first, second)))
                }
                _ => None,
            }
        },
    );
    let slow = tokio::spawn({
        let request = http
            .post(format!("{base}/sqlite"))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(halves));
        async move { request.send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = http
        .post(format!("{base}/start"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    release.send(()).unwrap();
    let late = slow.await.unwrap().unwrap();
    assert_eq!(
        late.status(),
        409,
        "{}",
        late.text().await.unwrap_or_default()
    );
    let started = task.await.unwrap().expect("bootstrap hands over");
    assert_eq!(
        started.config.database,
        Backend::Sqlite {
            path: chosen.path().join("kms.db")
        },
        "the configuration that started is the one /start validated"
    );
}

/// With `--bootstrap-token`, a request without it (or with another) is refused before it
/// touches anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_token_is_required_when_configured() {
    let mut config = bootstrap_config();
    if let Some(b) = &mut config.bootstrap {
        b.token = Some(kms_server::config::Secret::new("tok-4711-secret"));
    }
    let (addr, task) = start_in_process(config).await;
    let base = format!("https://{addr}");
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let post = |path: &str, token: Option<&str>| {
        let mut request = http
            .post(format!("{base}{path}"))
            .json(&serde_json::json!({"path": dir.path(), "clear_database": true}));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        request
    };
    for token in [None, Some("wrong"), Some("tok-4711-secre")] {
        let r = post("/sqlite", token).send().await.unwrap();
        assert_eq!(r.status(), 401, "token {token:?}");
        let r = post("/start", token).send().await.unwrap();
        assert_eq!(r.status(), 401, "token {token:?}");
    }
    let r = post("/sqlite", Some("tok-4711-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        400,
        "the token passes; the body is then checked"
    );
    let r = http
        .post(format!("{base}/sqlite"))
        .bearer_auth("tok-4711-secret")
        .json(&serde_json::json!({"path": dir.path()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{base}/start"))
        .bearer_auth("tok-4711-secret")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    task.await.unwrap().expect("bootstrap hands over");
}

/// `/redis-findex` with the real Redis: the KMS starts on it and serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_on_redis_findex() {
    let redis = kms_store::redis::testing::TestRedis::new().await.unwrap();
    let mut config = bootstrap_config();
    config.database_settings.redis_key_prefix = Some(redis.settings.prefix.clone());
    let (addr, task) = start_in_process(config).await;
    let base = format!("https://{addr}");
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    // A Redis that does not answer is a 400 at /start, and the bootstrap server keeps waiting.
    let r = http
        .post(format!("{base}/redis-findex"))
        .json(&serde_json::json!({"url": format!("redis://127.0.0.1:{}", free_port()), "master_password": "m", "findex_label": "l"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    expect_400(
        http.post(format!("{base}/start"))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap(),
        "redis",
    )
    .await;
    let r = http
        .post(format!("{base}/redis-findex"))
        .json(&serde_json::json!({
            "url": redis.settings.url.expose(),
            "master_password": redis.settings.master_password.expose(),
            "findex_label": redis.settings.label,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let r = http
        .post(format!("{base}/start"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let started = task.await.unwrap().expect("bootstrap hands over");
    assert_eq!(
        started.config.database,
        Backend::RedisFindex(redis.settings.clone())
    );
    redis.drop_now().await.unwrap();
}

/// `/sqlite-enc` (and the seed's `/sqlite-ec` spelling): the KMS starts on encrypted databases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_on_sqlite_enc() {
    let dir = tempfile::tempdir().unwrap();
    for route in ["/sqlite-ec", "/sqlite-enc"] {
        let (addr, task) = start_in_process(bootstrap_config()).await;
        let base = format!("https://{addr}");
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let r = http
            .post(format!("{base}{route}"))
            .json(&serde_json::json!({"path": dir.path()}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
        let r = http
            .post(format!("{base}/start"))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
        let started = task.await.unwrap().expect("bootstrap hands over");
        assert_eq!(
            started.config.database,
            Backend::SqliteEnc {
                dir: dir.path().to_owned()
            }
        );
    }
}
