//! A key whose Create was answered survives `kill -9` of the server process.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kmip::model::*;
use kmip::{CryptographicAlgorithm, ObjectType};
use kms_client::KmsClient;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn spawn(dir: &std::path::Path, port: u16) -> Child {
    spawn_with(&["--sqlite-path".into(), dir.display().to_string()], port)
}

fn spawn_with(database: &[String], port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kms-server"))
        .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
        .args(database)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kms-server")
}

async fn wait_ready(url: &str) {
    for _ in 0..200 {
        if reqwest::get(format!("{url}/health"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server at {url} did not start");
}

#[tokio::test]
async fn create_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = spawn(dir.path(), port);
    wait_ready(&url).await;
    let client = KmsClient::with_url(&url).unwrap();
    let mut uids = Vec::new();
    for i in 0..20 {
        let attributes = Attributes(vec![
            Attribute::CryptographicAlgorithm(CryptographicAlgorithm::AES),
            Attribute::CryptographicLength(256),
            Attribute::UniqueIdentifier(format!("crash-{i}").into()),
        ]);
        client
            .send(RequestPayload::Create(Create {
                object_type: ObjectType::SymmetricKey,
                attributes,
                protection_storage_masks: None,
            }))
            .await
            .expect("create");
        uids.push(format!("crash-{i}"));
    }
    // SIGKILL right after the last answer: no shutdown, no flush.
    child.kill().expect("kill -9");
    child.wait().expect("reaped");

    let mut child = spawn(dir.path(), port);
    wait_ready(&url).await;
    for uid in &uids {
        let r = client
            .send(RequestPayload::GetAttributes(GetAttributes {
                unique_identifier: Some(uid.clone().into()),
                attribute_reference: vec![],
            }))
            .await;
        assert!(r.is_ok(), "{uid} lost after kill -9: {r:?}");
    }
    child.kill().ok();
    child.wait().ok();
}

/// Eight clients create keys as fast as the server answers; the server is killed with SIGKILL
/// in the middle; after a restart every create that was answered is there.
async fn kill_9_under_create_load(database: Vec<String>, tenant: bool) {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = spawn_with(&database, port);
    wait_ready(&url).await;
    let mut client = KmsClient::with_url(&url).unwrap();
    if tenant {
        let secret = client.new_database().await.unwrap();
        client = KmsClient::new(kms_client::ClientConfig {
            server_url: url.clone(),
            database_secret: Some(secret),
            ..Default::default()
        })
        .unwrap();
    }
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let (client, acknowledged) = (client.clone(), acknowledged.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let uid = format!("load-{w}-{i}");
                    let create = Create::symmetric_key(CryptographicAlgorithm::AES, 256)
                        .with_unique_identifier(&uid);
                    if client.call(create).await.is_err() {
                        return;
                    }
                    acknowledged.lock().unwrap().push(uid);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    for t in tasks {
        t.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 20,
        "the load ran: {}",
        acknowledged.len()
    );

    let mut child = spawn_with(&database, port);
    wait_ready(&url).await;
    for uid in &acknowledged {
        let r = client
            .call(GetAttributes {
                unique_identifier: Some(uid.clone().into()),
                attribute_reference: vec![],
            })
            .await;
        assert!(r.is_ok(), "{uid} lost after kill -9: {r:?}");
    }
    child.kill().ok();
    child.wait().ok();
}

#[tokio::test]
async fn redis_findex_loses_no_acknowledged_create_under_kill_9() {
    let redis = kms_store::redis::testing::TestRedis::new().await.unwrap();
    let s = &redis.settings;
    kill_9_under_create_load(
        vec![
            "--database-type".into(),
            "redis-findex".into(),
            "--database-url".into(),
            s.url.expose().into(),
            "--redis-master-password".into(),
            s.master_password.expose().into(),
            "--redis-findex-label".into(),
            s.label.clone(),
            "--redis-key-prefix".into(),
            s.prefix.clone(),
        ],
        false,
    )
    .await;
    redis.drop_now().await.unwrap();
}

#[tokio::test]
async fn sqlite_enc_loses_no_acknowledged_create_under_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    kill_9_under_create_load(
        vec![
            "--database-type".into(),
            "sqlite-enc".into(),
            "--sqlite-path".into(),
            dir.path().display().to_string(),
        ],
        true,
    )
    .await;
}
