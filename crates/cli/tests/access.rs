//! `ckms access-rights` and client certificates against a real KMS over HTTPS with mutual TLS:
//! each user is the CN of the certificate in its `ssl_client_pkcs12_path`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use std::path::Path;
use std::process::{Command, Output};

use kms_server::config::{Args, Config};
use serde_json::{Value, json};

/// Runs ckms with the configuration `conf` without blocking the server's runtime.
async fn ckms(conf: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ckms"));
    command.arg("--conf").arg(conf).arg("--json").args(args);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

async fn ok(conf: &Path, args: &[&str]) -> Value {
    let out = ckms(conf, args).await;
    assert!(
        out.status.success(),
        "ckms {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A PKCS#12 holding a client certificate for `user` signed by the CA, and its key.
fn client_p12(ca: &rcgen::CertificateParams, ca_key: &rcgen::KeyPair, user: &str) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, user);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params
        .signed_by(&key, &rcgen::Issuer::from_params(ca, ca_key))
        .unwrap();
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        "client",
        p12_keystore::KeyStoreEntry::PrivateKeyChain(p12_keystore::PrivateKeyChain::new(
            vec![1u8],
            p12_keystore::PrivateKey::from_der(&key.serialize_der()).unwrap(),
            vec![p12_keystore::Certificate::from_der(cert.der()).unwrap()],
        )),
    );
    store.writer("secret").write().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rights_between_two_users_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let (server_p12, _) = kms_server::tls::self_signed_pkcs12(&["127.0.0.1"], "pw", true).unwrap();
    std::fs::write(dir.path().join("kms.p12"), server_p12).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Users CA");
    ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    std::fs::write(
        dir.path().join("ca.pem"),
        ca.self_signed(&ca_key).unwrap().pem(),
    )
    .unwrap();
    let config = Config::from_args(Args {
        sqlite_path: Some(dir.path().join("data")),
        hostname: Some("127.0.0.1".into()),
        port: Some(0),
        https_p12_file: Some(dir.path().join("kms.p12")),
        https_p12_password: Some("pw".into()),
        authority_cert_file: Some(dir.path().join("ca.pem")),
        ..Args::default()
    })
    .unwrap();
    let kms = kms_server::start(config).await.expect("the KMS starts");
    let url = format!("https://{}", kms.addr);
    let conf_for = |user: &str| {
        let p12 = dir.path().join(format!("{user}.p12"));
        std::fs::write(&p12, client_p12(&ca, &ca_key, user)).unwrap();
        let conf = dir.path().join(format!("{user}.json"));
        let body = json!({
            "kms_server_url": url, "accept_invalid_certs": true,
            "ssl_client_pkcs12_path": p12, "ssl_client_pkcs12_password": "secret",
        });
        std::fs::write(&conf, body.to_string()).unwrap();
        conf
    };
    let (alice, bob) = (conf_for("alice"), conf_for("bob"));

    let created = ok(&alice, &["sym", "keys", "create", "-t", "shared"]).await;
    let uid = created["unique_identifier"].as_str().unwrap().to_owned();
    // Bob does not see it; alice grants encrypt; bob sees it among the obtained.
    assert!(
        !ckms(&bob, &["access-rights", "list", &uid])
            .await
            .status
            .success()
    );
    assert_eq!(ok(&bob, &["access-rights", "obtained"]).await, json!([]));
    ok(
        &alice,
        &["access-rights", "grant", "bob", "encrypt", "-i", &uid],
    )
    .await;
    assert_eq!(
        ok(&alice, &["access-rights", "list", &uid]).await,
        json!([{"user_id": "bob", "operations": ["encrypt"]}])
    );
    let obtained = ok(&bob, &["access-rights", "obtained"]).await;
    assert_eq!(obtained[0]["object_id"], uid.as_str());
    assert_eq!(obtained[0]["owner_id"], "alice");
    assert_eq!(obtained[0]["operations"], json!(["encrypt"]));
    // Bob may not manage alice's rights, nor does he own the key.
    let denied = ckms(&bob, &["access-rights", "grant", "bob", "get", "-i", &uid]).await;
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("only the owner"));
    assert_eq!(ok(&bob, &["access-rights", "owned"]).await, json!([]));
    let owned = ok(&alice, &["access-rights", "owned"]).await;
    assert_eq!(owned[0]["object_id"], uid.as_str());
    ok(
        &alice,
        &["access-rights", "revoke", "bob", "encrypt", "-i", &uid],
    )
    .await;
    assert_eq!(ok(&bob, &["access-rights", "obtained"]).await, json!([]));
    // Without a certificate nothing is answered.
    let anonymous = dir.path().join("anonymous.json");
    std::fs::write(
        &anonymous,
        json!({"kms_server_url": url, "accept_invalid_certs": true}).to_string(),
    )
    .unwrap();
    let refused = ckms(&anonymous, &["access-rights", "owned"]).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));
    kms.stop().await;
}
