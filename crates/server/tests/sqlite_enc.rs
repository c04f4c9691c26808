//! `sqlite-enc` over HTTP: `POST /new_database` answers a secret once; each tenant sees only its
//! own objects; a missing, malformed or wrong secret is a 401 that opens and creates nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

mod common;

use common::TestServer;
use kmip::CryptographicAlgorithm;
use kmip::model::*;
use kms_client::{ClientConfig, KmsClient};
use kms_store::Backend;

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn tenant(url: &str, secret: &str) -> KmsClient {
    KmsClient::new(ClientConfig {
        server_url: url.to_owned(),
        database_secret: Some(secret.to_owned()),
        ..ClientConfig::default()
    })
    .unwrap()
}

async fn create(client: &KmsClient, tag: &str) -> String {
    client
        .call(Create::symmetric_key(CryptographicAlgorithm::AES, 256).with_user_tags(&[tag]))
        .await
        .unwrap()
        .unique_identifier
        .as_text()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated_and_bad_secrets_are_401() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::builder()
        .database(Backend::SqliteEnc {
            dir: dir.path().to_owned(),
        })
        .start()
        .await;
    let anonymous = KmsClient::with_url(&server.url).unwrap();
    let secret_a = anonymous.new_database().await.unwrap();
    let secret_b = anonymous.new_database().await.unwrap();
    assert_ne!(secret_a, secret_b, "each call creates another database");
    let (a, b) = (
        tenant(&server.url, &secret_a),
        tenant(&server.url, &secret_b),
    );
    let ka = create(&a, "shared-tag").await;
    let kb = create(&b, "shared-tag").await;

    // Each tenant gets its own key and not the other's.
    a.call(Get::new(ka.as_str())).await.unwrap();
    b.call(Get::new(kb.as_str())).await.unwrap();
    assert!(a.call(Get::new(kb.as_str())).await.is_err());
    assert!(b.call(Get::new(ka.as_str())).await.is_err());
    let tagged = Locate::matching(Attributes::new().with_user_tags(&["shared-tag"]));
    let la = a.call(tagged.clone()).await.unwrap().unique_identifier;
    let lb = b.call(tagged).await.unwrap().unique_identifier;
    assert_eq!(
        la.iter().filter_map(|u| u.as_text()).collect::<Vec<_>>(),
        [ka.as_str()]
    );
    assert_eq!(
        lb.iter().filter_map(|u| u.as_text()).collect::<Vec<_>>(),
        [kb.as_str()]
    );
    let owned = a.access("/access/owned", None).await.unwrap().to_string();
    assert!(owned.contains(&ka) && !owned.contains(&kb), "{owned}");

    // Missing, malformed and wrong secrets: 401, and no file appears.
    let before = files(dir.path());
    let wrong = {
        // A well-formed secret of no database (the other format: a JSON array of 48 bytes).
        let bytes: Vec<u8> = (0u8..48).collect();
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            serde_json::to_vec(&bytes).unwrap(),
        )
    };
    let http = reqwest::Client::new();
    for header in [None, Some("not a secret"), Some(wrong.as_str())] {
        let mut request = http
            .post(format!("{}/kmip/2_1", server.url))
            .header("content-type", "application/json")
            .body(r#"{"tag":"Create","value":[]}"#);
        if let Some(h) = header {
            request = request.header("DatabaseSecret", h);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 401, "{header:?}");
        let text = r.text().await.unwrap();
        assert!(text.contains("DatabaseSecret"), "{text}");
        assert!(!text.contains(&wrong), "the secret is not echoed");
    }
    // The alternative header name is accepted.
    let r = http
        .get(format!("{}/access/owned", server.url))
        .header("KmsDatabaseSecret", &secret_b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains(&kb));
    assert_eq!(files(dir.path()), before, "refused requests create nothing");
    server.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_database_is_refused_on_other_backends() {
    let server = TestServer::builder().start().await;
    let e = KmsClient::with_url(&server.url)
        .unwrap()
        .new_database()
        .await
        .expect_err("sqlite, not sqlite-enc");
    assert!(e.to_string().contains("sqlite-enc"), "{e}");
    server.server.stop().await;
}
