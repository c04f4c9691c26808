//! The `kms-server` process as an operator runs it: SIGTERM under a load of creates (every
//! answered key is there after a restart, exit 0 within the deadline, no answered request cut),
//! JSON logs whose lines carry the request id of `X-Request-Id` with an access line per
//! request, `--print-default-config`, and a refused unknown key.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kmip::model::*;
use kmip::{CryptographicAlgorithm, ObjectType};
use kms_client::KmsClient;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn server(dir: &std::path::Path, port: u16, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kms-server"));
    command
        .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
        .arg("--sqlite-path")
        .arg(dir)
        .args(extra);
    command
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

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
}

fn create(uid: &str) -> RequestPayload {
    RequestPayload::Create(Create {
        object_type: ObjectType::SymmetricKey,
        attributes: Attributes(vec![
            Attribute::CryptographicAlgorithm(CryptographicAlgorithm::AES),
            Attribute::CryptographicLength(256),
            Attribute::UniqueIdentifier(uid.to_owned().into()),
        ]),
        protection_storage_masks: None,
    })
}

/// Whether the server has an object `uid`.
async fn exists(client: &KmsClient, uid: &str) -> bool {
    client
        .send(RequestPayload::GetAttributes(GetAttributes {
            unique_identifier: Some(uid.to_owned().into()),
            attribute_reference: vec![],
        }))
        .await
        .is_ok()
}

/// Sixteen clients create keys until the server goes away; SIGTERM arrives in the middle. A
/// create is either answered in full or never ran: a connection closed under a client shows no
/// key after the restart, and every answered key is there.
#[tokio::test]
async fn sigterm_under_create_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = server(dir.path(), port, &["--shutdown-timeout", "10"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(&url).await;

    let answered = Arc::new(Mutex::new(Vec::<String>::new()));
    let cut = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for c in 0..16 {
        let (url, answered, cut) = (url.clone(), answered.clone(), cut.clone());
        clients.push(tokio::spawn(async move {
            let client = KmsClient::with_url(&url).unwrap();
            for i in 0.. {
                let uid = format!("term-{c}-{i}");
                match client.send(create(&uid)).await {
                    Ok(_) => answered.lock().unwrap().push(uid),
                    Err(kms_client::ClientError::Transport { source, .. })
                        if source.is_connect() =>
                    {
                        return;
                    }
                    Err(_) => {
                        // The connection closed before an answer came: the request must not
                        // have run (checked after the restart).
                        cut.lock().unwrap().push(uid);
                        return;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = answered.lock().unwrap().len();
    assert!(before > 0, "no create was answered before the signal");
    sigterm(&child);
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(15),
            "the server did not exit within its 10 s deadline"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let stopped_in = signalled.elapsed();
    assert!(status.success(), "exit status {status:?}");
    for client in clients {
        client.await.unwrap();
    }
    // A client that wrote on a kept-alive connection as the server closed it idle sees the
    // connection close without an answer: its request never ran. What ran was answered.
    let cut = cut.lock().unwrap().clone();
    let answered = answered.lock().unwrap().clone();
    println!(
        "{} creates answered ({before} before SIGTERM); exit 0 in {stopped_in:?}",
        answered.len()
    );

    let mut child = server(dir.path(), port, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(&url).await;
    let client = KmsClient::with_url(&url).unwrap();
    for uid in &answered {
        assert!(
            exists(&client, uid).await,
            "{uid} was answered but is gone after SIGTERM"
        );
    }
    for uid in &cut {
        assert!(
            !exists(&client, uid).await,
            "{uid} was created but its answer was cut by the shutdown"
        );
    }
    println!(
        "{} requests were closed unread on connections the server closed idle",
        cut.len()
    );
    sigterm(&child);
    assert!(child.wait().unwrap().success());
}

/// With `--log-format json`, every line is a JSON object; the lines of a request carry the id
/// its answer names in `X-Request-Id`, and its access line says who did what, with what result,
/// without the key.
#[tokio::test]
async fn json_logs_carry_the_request_id_and_an_access_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = server(dir.path(), port, &["--log-format", "json"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        })
    };
    wait_ready(&url).await;

    let http = reqwest::Client::new();
    let body = r#"{"tag":"Create","type":"Structure","value":[
        {"tag":"ObjectType","type":"Enumeration","value":"SymmetricKey"},
        {"tag":"Attributes","type":"Structure","value":[
          {"tag":"CryptographicAlgorithm","type":"Enumeration","value":"AES"},
          {"tag":"CryptographicLength","type":"Integer","value":256},
          {"tag":"UniqueIdentifier","type":"TextString","value":"logged-key"}]}]}"#;
    let response = http
        .post(format!("{url}/kmip/2_1"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let exported = http
        .post(format!("{url}/kmip/2_1"))
        .header("content-type", "application/json")
        .body(r#"{"tag":"Get","type":"Structure","value":[{"tag":"UniqueIdentifier","type":"TextString","value":"logged-key"}]}"#)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The key's bytes, as the answer carries them (hex in JSON TTLV).
    let material = exported
        .split("\"KeyMaterial\"")
        .nth(1)
        .and_then(|s| s.split("\"value\":\"").nth(1))
        .and_then(|s| s.split('"').next())
        .expect("key material in the Get answer")
        .to_owned();
    assert!(material.len() >= 64, "{material}");

    sigterm(&child);
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    let lines = lines.lock().unwrap().clone();
    assert!(!lines.is_empty());
    let mut access = None;
    let mut of_request = 0;
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
        assert!(
            !line
                .to_ascii_lowercase()
                .contains(&material.to_ascii_lowercase()),
            "key material in the log: {line}"
        );
        if v["span"]["id"] == id.as_str() {
            of_request += 1;
            if v["target"] == "kms::access" {
                access = Some(v);
            }
        }
    }
    let access = access.unwrap_or_else(|| panic!("no access line for {id} in {lines:#?}"));
    let fields = &access["fields"];
    assert_eq!(fields["user"], "admin", "{access}");
    assert_eq!(fields["operation"], "Create", "{access}");
    assert_eq!(fields["object"], "logged-key", "{access}");
    assert_eq!(fields["result"], "Success", "{access}");
    assert_eq!(fields["status"], 200, "{access}");
    assert!(fields["duration_ms"].as_f64().is_some(), "{access}");
    assert!(of_request >= 1);
}

#[test]
fn print_default_config_prints_a_file_the_server_reads() {
    let out = Command::new(env!("CARGO_BIN_EXE_kms-server"))
        .arg("--print-default-config")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "[db]",
        "# database_type = \"sqlite\"",
        "[http]",
        "# port = 9998",
        "# shutdown_timeout = 30",
        "[logging]",
        "# log_format = \"text\"",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kms.toml");
    std::fs::write(&path, &text).unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        text.replace("[http]\n", "[http]\nprot = 9000\n"),
    )
    .unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_kms-server"))
        .arg("--config")
        .arg(dir.path().join("bad.toml"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("`prot`") && message.contains("did you mean `port`?"),
        "{message}"
    );
}
