//! Encrypt req/s over the KMIP socket (16 mutual-TLS connections, binary TTLV, one request after
//! another on each) next to binary TTLV over HTTPS (`POST /kmip`, 16 requests in flight), in one
//! run against one in-process server on SQLite.
//!
//! `cargo run --release -p kms-server --example socket_bench -- [seconds per scenario]`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kmip::model::{Create, Encrypt, RequestPayload, UidRequest};
use kmip::{CryptographicAlgorithm, binary};
use kms_client::single_message;
use kms_server::config::{Args, Config};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONNECTIONS: usize = 16;

async fn read_message<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
    let mut header = [0u8; 8];
    s.read_exact(&mut header).await.unwrap();
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let mut out = vec![0u8; 8 + len];
    out[..8].copy_from_slice(&header);
    s.read_exact(&mut out[8..]).await.unwrap();
    out
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let (p12, server_cert) =
        kms_server::tls::self_signed_pkcs12(&["127.0.0.1"], "pw", true).unwrap();
    std::fs::write(dir.path().join("kms.p12"), p12).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "bench CA");
    std::fs::write(
        dir.path().join("ca.pem"),
        ca.self_signed(&ca_key).unwrap().pem(),
    )
    .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut client = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    client
        .distinguished_name
        .push(rcgen::DnType::CommonName, "bench");
    client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client
        .signed_by(&key, &rcgen::Issuer::from_params(&ca, &ca_key))
        .unwrap();
    let config = Config::from_args(Args {
        sqlite_path: Some(dir.path().join("data")),
        hostname: Some("127.0.0.1".into()),
        port: Some(0),
        https_p12_file: Some(dir.path().join("kms.p12")),
        https_p12_password: Some("pw".into()),
        authority_cert_file: Some(dir.path().join("ca.pem")),
        socket_server_start: true,
        socket_server_hostname: Some("127.0.0.1".into()),
        socket_server_port: Some(0),
        ..Args::default()
    })
    .unwrap();
    let server = kms_server::start(config).await.unwrap();
    let socket_addr = server.socket.as_ref().unwrap().addr;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(server_cert.clone()))
        .unwrap();
    let tls = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(client_cert.pem().as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
            )
            .unwrap(),
    );
    let connect = || {
        let tls = tls.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(socket_addr).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            tokio_rustls::TlsConnector::from(tls)
                .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
                .await
                .unwrap()
        }
    };
    // The key, created and activated over the socket.
    let mut s = connect().await;
    let create = binary::encode(
        &single_message(RequestPayload::Create(Create::symmetric_key(
            CryptographicAlgorithm::AES,
            256,
        )))
        .encode(),
    );
    s.write_all(&create).await.unwrap();
    let answer = read_message(&mut s).await;
    let tree = binary::decode(&answer, &binary::Limits::default()).unwrap();
    let message = kmip::model::ResponseMessage::decode(&tree).unwrap();
    let Some(kmip::model::ResponsePayload::Create(c)) =
        message.batch_item[0].response_payload.clone()
    else {
        panic!("create failed: {message:?}")
    };
    let uid = c.unique_identifier;
    s.write_all(&binary::encode(
        &single_message(RequestPayload::Activate(UidRequest::new(uid.clone()))).encode(),
    ))
    .await
    .unwrap();
    read_message(&mut s).await;
    let encrypt = Arc::new(binary::encode(
        &single_message(RequestPayload::Encrypt(Encrypt::new(
            Some(uid),
            vec![0x42; 64],
        )))
        .encode(),
    ));
    let duration = Duration::from_secs(seconds);

    // The socket: one connection per worker, one request after another.
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (mut stream, body, done) = (connect().await, encrypt.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < duration {
                stream.write_all(&body).await.unwrap();
                read_message(&mut stream).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let socket_rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();

    // HTTPS: binary TTLV on POST /kmip with the same client certificate.
    let identity = reqwest::Identity::from_pem(
        format!("{}{}", client_cert.pem(), key.serialize_pem()).as_bytes(),
    )
    .unwrap();
    let http = reqwest::Client::builder()
        .identity(identity)
        .add_root_certificate(reqwest::Certificate::from_der(&server_cert).unwrap())
        .pool_max_idle_per_host(CONNECTIONS * 2)
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{}/kmip", server.addr.port());
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (http, url, body, done) = (http.clone(), url.clone(), encrypt.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < duration {
                let r = http
                    .post(&url)
                    .header("content-type", "application/octet-stream")
                    .body(body.to_vec())
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
                r.bytes().await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let https_rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    println!("encrypt, 64 bytes, {CONNECTIONS} connections, {seconds} s each, one process:");
    println!("KMIP socket (mutual TLS, binary TTLV): {socket_rate:.0} req/s");
    println!("HTTPS POST /kmip (mutual TLS, binary TTLV): {https_rate:.0} req/s");
    server.stop().await;
}
