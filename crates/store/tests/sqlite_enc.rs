//! `sqlite-enc`: the conformance suite on a tenant's SQLCipher database, files that show nothing
//! in clear, wrong secrets that create nothing, and the bound on open databases.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use kms_store::sqlite_enc::{DatabaseSecret, OPEN_TENANTS, OpenError, SecretError, Tenants};
use kms_store::{ObjectStore, conformance};

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_a_tenant_database() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = Tenants::new(dir.path());
    let secret = DatabaseSecret::parse(&tenants.create().await.unwrap()).unwrap();
    let store = tenants.open(&secret).await.unwrap();
    conformance::run_all(store.as_ref()).await;
    // What the suite leaves is unreadable on disk: no SQLite header, no owner, no tag.
    store
        .create(conformance::sample(
            "on-disk",
            "owner-quokka",
            &["tag-axolotl"],
        ))
        .await
        .unwrap();
    drop(store);
    for name in files(dir.path()) {
        let bytes = std::fs::read(dir.path().join(&name)).unwrap();
        for clear in [
            &b"SQLite format 3"[..],
            b"owner-quokka",
            b"tag-axolotl",
            b"on-disk",
        ] {
            assert!(
                !bytes.windows(clear.len()).any(|w| w == clear),
                "{name} shows {}",
                String::from_utf8_lossy(clear)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_opens_nothing_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = Tenants::new(dir.path());
    let text = tenants.create().await.unwrap();
    let before = files(dir.path());
    // Another key for the same group id, while the database is open and once it is closed.
    let good = DatabaseSecret::parse(&text).unwrap();
    // The same group id with another key (the JSON edited as text: the id is beyond u64).
    let json = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text.as_bytes())
            .unwrap(),
    )
    .unwrap();
    let key_at = json.find("\"key\"").unwrap();
    let forged = format!("{}\"key\":\"{}\"}}", &json[..key_at], "00".repeat(32));
    let forged = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, forged);
    let forged = DatabaseSecret::parse(&forged).unwrap();
    assert!(matches!(
        tenants.open(&forged).await,
        Err(OpenError::Secret(SecretError::Unknown))
    ));
    let fresh = Tenants::new(dir.path());
    assert!(matches!(
        fresh.open(&forged).await,
        Err(OpenError::Secret(SecretError::Unknown))
    ));
    let unknown = DatabaseSecret::generate().unwrap();
    assert!(matches!(
        fresh.open(&unknown).await,
        Err(OpenError::Secret(SecretError::Unknown))
    ));
    assert_eq!(files(dir.path()), before, "nothing created");
    drop(tenants);
    assert!(
        fresh.open(&good).await.is_ok(),
        "the right secret still opens it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_databases_are_bounded_and_closed_ones_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = Tenants::new(dir.path());
    let mut secrets = Vec::new();
    for i in 0..OPEN_TENANTS + 6 {
        let s = DatabaseSecret::parse(&tenants.create().await.unwrap()).unwrap();
        let store = tenants.open(&s).await.unwrap();
        store
            .create(conformance::sample(&format!("t{i}"), "alice", &[]))
            .await
            .unwrap();
        secrets.push(s);
    }
    assert_eq!(tenants.open_count(), OPEN_TENANTS);
    // The first tenant was closed; it opens again with its data, and sees only its own.
    let first = tenants.open(&secrets[0]).await.unwrap();
    assert!(first.get("t0").await.unwrap().is_some());
    assert!(first.get("t1").await.unwrap().is_none());
    assert_eq!(tenants.open_count(), OPEN_TENANTS);
}

/// A tenant's secret rotated while writes go on: every acknowledged write is there under the
/// new secret, the old one opens nothing (in this process and in a new one), and repeating the
/// rotation after it finished (its answer lost) succeeds without change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_keeps_every_write_and_retires_the_old_secret() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = std::sync::Arc::new(Tenants::new(dir.path()));
    let old_text = tenants.create().await.unwrap();
    let old = DatabaseSecret::parse(&old_text).unwrap();
    let new_text = kms_client_like_rotation(&old_text);
    let new = DatabaseSecret::parse(&new_text).unwrap();
    let store = tenants.open(&old).await.unwrap();
    for i in 0..200 {
        store
            .create(conformance::sample(&format!("before-{i}"), "alice", &["t"]))
            .await
            .unwrap();
    }
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut done = Vec::new();
            for i in 0..300 {
                let uid = format!("during-{i}");
                if store
                    .create(conformance::sample(&uid, "alice", &["t"]))
                    .await
                    .is_ok()
                {
                    done.push(uid);
                }
            }
            done
        })
    };
    tenants.rotate(&old, &new).await.unwrap();
    let done = writer.await.unwrap();
    assert_eq!(done.len(), 300, "no write failed during the rotation");
    drop(store);
    assert!(matches!(
        tenants.open(&old).await,
        Err(OpenError::Secret(SecretError::Unknown))
    ));
    let rotated = tenants.open(&new).await.unwrap();
    for uid in (0..200).map(|i| format!("before-{i}")).chain(done) {
        assert!(rotated.get(&uid).await.unwrap().is_some(), "{uid}");
    }
    drop(rotated);
    drop(tenants);
    // A new process: the file opens with the new key only; the repeated rotation is a success.
    let fresh = Tenants::new(dir.path());
    assert!(matches!(
        fresh.open(&old).await,
        Err(OpenError::Secret(SecretError::Unknown))
    ));
    fresh.rotate(&old, &new).await.unwrap();
    assert!(fresh.open(&new).await.is_ok());
    // Another group id is not a rotation.
    let other = DatabaseSecret::generate().unwrap();
    assert!(matches!(
        fresh.rotate(&new, &other).await,
        Err(OpenError::Secret(SecretError::NotARotation))
    ));
}

/// The same group id with a fresh key (what `ckms rotate-database-secret` draws).
fn kms_client_like_rotation(current: &str) -> String {
    let json = String::from_utf8(
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            current.as_bytes(),
        )
        .unwrap(),
    )
    .unwrap();
    let key_at = json.find("\"key\"").unwrap();
    let key: String = (0..32).map(|i| format!("{:02x}", i * 5 + 1)).collect();
    base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{}\"key\":\"{key}\"}}", &json[..key_at]),
    )
}
