//! `--mysql-user-cert-file`: a MariaDB instance of the test's own (a temporary data directory,
//! a free port, TLS with a test CA) whose KMS user requires an X.509 client certificate. The KMS
//! reaches it with the PKCS#12 client certificate and serves; without it, the database refuses.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kmip::CryptographicAlgorithm;
use kmip::model::*;
use kms_client::KmsClient;
use kms_server::config::{Args, Config};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// A MariaDB server killed when dropped.
struct Mariadb(Child);

impl Drop for Mariadb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sql(socket: &Path, statements: &str) {
    let out = Command::new("mariadb")
        .args(["--no-defaults", "-uroot", "--socket"])
        .arg(socket)
        .args(["-e", statements])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{statements}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The test CA, a server certificate for 127.0.0.1 and a client PKCS#12 (password `p12-pw`).
fn certificates(dir: &Path) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "kms test MariaDB CA");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca, &ca_key);
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();

    let server_key = rcgen::KeyPair::generate().unwrap();
    let mut server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    server
        .distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    let server_cert = server.signed_by(&server_key, &issuer).unwrap();
    std::fs::write(dir.join("server.pem"), server_cert.pem()).unwrap();
    std::fs::write(dir.join("server-key.pem"), server_key.serialize_pem()).unwrap();

    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut client = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    client
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kms-x509");
    client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client.signed_by(&client_key, &issuer).unwrap();
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        "client",
        p12_keystore::KeyStoreEntry::PrivateKeyChain(p12_keystore::PrivateKeyChain::new(
            vec![1u8],
            p12_keystore::PrivateKey::from_der(&client_key.serialize_der()).unwrap(),
            vec![p12_keystore::Certificate::from_der(client_cert.der()).unwrap()],
        )),
    );
    std::fs::write(
        dir.join("client.p12"),
        store.writer("p12-pw").write().unwrap(),
    )
    .unwrap();
}

fn start_mariadb(dir: &Path, port: u16) -> Mariadb {
    let data = dir.join("data");
    let out = Command::new("mariadb-install-db")
        .args([
            "--no-defaults",
            "--user=root",
            "--auth-root-authentication-method=socket",
        ])
        .arg(format!("--datadir={}", data.display()))
        .output()
        .expect(
            "mariadb-install-db (Debian package mariadb-server, installed by scripts/setup.sh)",
        );
    assert!(
        out.status.success(),
        "mariadb-install-db: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let socket = dir.join("mysqld.sock");
    let child = Command::new("/usr/sbin/mariadbd")
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", socket.display()))
        .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
        .args(["--user=root", "--bind-address=127.0.0.1", "--skip-log-bin"])
        .arg(format!("--port={port}"))
        .arg(format!("--ssl-ca={}", dir.join("ca.pem").display()))
        .arg(format!("--ssl-cert={}", dir.join("server.pem").display()))
        .arg(format!(
            "--ssl-key={}",
            dir.join("server-key.pem").display()
        ))
        .args(["--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Mariadb(child);
    for _ in 0..100 {
        if Command::new("mariadb")
            .args(["--no-defaults", "-uroot", "--socket"])
            .arg(&socket)
            .args(["-e", "SELECT 1"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            sql(
                &socket,
                "DELETE FROM mysql.global_priv WHERE User = ''; FLUSH PRIVILEGES; \
                 CREATE DATABASE kms; CREATE USER 'kmsx509'@'%' REQUIRE X509; \
                 GRANT ALL ON kms.* TO 'kmsx509'@'%';",
            );
            return server;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the test MariaDB did not start");
}

fn config(dir: &Path, port: u16, with_cert: bool) -> Config {
    Config::from_args(Args {
        database_type: Some("mysql".into()),
        database_url: Some(format!(
            "mysql://kmsx509@127.0.0.1:{port}/kms?require_ssl=true&ssl_ca={}",
            dir.join("ca.pem").display()
        )),
        mysql_user_cert_file: with_cert.then(|| dir.join("client.p12")),
        mysql_user_cert_password: with_cert.then(|| "p12-pw".to_owned()),
        hostname: Some("127.0.0.1".into()),
        port: Some(0),
        ..Args::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kms_reaches_mariadb_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let port = free_port();
    let _mariadb = tokio::task::block_in_place(|| start_mariadb(dir.path(), port));

    // Without the certificate, MariaDB refuses the user.
    let refused = config(dir.path(), port, false).database.open().await;
    let e = refused.err().expect("no certificate, no connection");
    assert!(
        e.to_string().contains("Access denied for user 'kmsx509'"),
        "{e}"
    );

    let kms = kms_server::start(config(dir.path(), port, true))
        .await
        .expect("the KMS starts on MariaDB with its client certificate");
    let client = KmsClient::with_url(&format!("http://{}", kms.addr)).unwrap();
    let uid = client
        .call(Create::symmetric_key(CryptographicAlgorithm::AES, 256))
        .await
        .unwrap()
        .unique_identifier;
    client.call(Get::new(uid)).await.unwrap();

    // A wrong PKCS#12 password is a clear error that does not repeat it.
    let mut wrong = config(dir.path(), port, true);
    if let kms_store::Backend::Mysql { client_cert, .. } = &mut wrong.database {
        client_cert.as_mut().unwrap().password = kms_store::Secret::new("not-the-pw");
    }
    let e = wrong.database.check().expect_err("wrong password");
    assert!(e.to_string().contains("--mysql-user-cert-password"), "{e}");
    assert!(!e.to_string().contains("not-the-pw"), "{e}");
}
