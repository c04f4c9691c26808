//! Database outages: the connection to PostgreSQL or MariaDB is cut under load (through a TCP
//! proxy this test controls); requests fail fast with a 503 naming the database, `/health`
//! reports it, and service resumes by itself when the connection comes back.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::TestServer;
use kmip::model::*;
use kmip::{CryptographicAlgorithm, ObjectType};
use kms_client::{ClientError, KmsClient};
use kms_store::sql::testing::TestDatabase;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

/// A TCP proxy that can drop every connection and refuse new ones, then come back.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let links = Arc::new(Mutex::new(Vec::new()));
        let (up2, links2) = (up.clone(), links.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                links2.lock().await.push(link);
            }
        });
        Proxy { addr, up, links }
    }

    async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().await.drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// `scheme://user@host:port/rest` -> (`host:port`, URL with `proxy` instead).
fn through(url: &str, proxy: SocketAddr) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, rest) = rest
        .rsplit_once('@')
        .map(|(u, r)| (format!("{u}@"), r))
        .unwrap_or((String::new(), rest));
    let (authority, path) = rest.split_once('/').unwrap();
    (
        authority.to_owned(),
        format!("{scheme}://{userinfo}{proxy}/{path}"),
    )
}

#[derive(Default, Debug)]
struct Tally {
    ok: u64,
    unavailable: u64,
    other: Vec<String>,
    slowest_failure: Duration,
}

async fn outage(db: TestDatabase) {
    let backend = db.backend;
    let target = through(&db.url, "127.0.0.1:1".parse().unwrap()).0;
    let proxy = Proxy::start(target).await;
    let (_, mut url) = through(&db.url, proxy.addr);
    if backend == "mysql" {
        // mysql_async moves to the server's Unix socket when it finds one on this host, which
        // would bypass the proxy.
        url.push_str(if url.contains('?') {
            "&prefer_socket=false"
        } else {
            "?prefer_socket=false"
        });
    }
    let database = db.backend_at(url, 4);
    let t = TestServer::builder().database(database).start().await;
    let client = KmsClient::with_url(&t.url).unwrap();
    let attributes = Attributes(vec![
        Attribute::CryptographicAlgorithm(CryptographicAlgorithm::AES),
        Attribute::CryptographicLength(256),
        Attribute::UniqueIdentifier("outage-key".into()),
    ]);
    client
        .send(RequestPayload::Create(Create {
            object_type: ObjectType::SymmetricKey,
            attributes,
            protection_storage_masks: None,
        }))
        .await
        .unwrap();
    client
        .send(RequestPayload::Activate(UidRequest {
            unique_identifier: Some("outage-key".into()),
        }))
        .await
        .unwrap();

    let phase = Arc::new(std::sync::Mutex::new(0usize)); // 0 before, 1 during, 2 after
    let tallies = Arc::new(std::sync::Mutex::new([
        Tally::default(),
        Tally::default(),
        Tally::default(),
    ]));
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (client, phase, tallies, stop) =
            (client.clone(), phase.clone(), tallies.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                // A request counts in the phase it started in.
                let p = *phase.lock().unwrap();
                let started = Instant::now();
                let r = client
                    .send(RequestPayload::Encrypt(Encrypt::new(
                        Some("outage-key".into()),
                        b"load".to_vec(),
                    )))
                    .await;
                {
                    let mut all = tallies.lock().unwrap();
                    let tally = &mut all[p];
                    match r {
                        Ok(_) => tally.ok += 1,
                        // The answer names the kind of database and a request id, never
                        // where the database is (its host and port stay in the server log).
                        Err(ClientError::Server {
                            status: 503,
                            message,
                        }) if message.contains(backend)
                            && message.contains("request id")
                            && !message.contains("127.0.0.1") =>
                        {
                            tally.unavailable += 1;
                            tally.slowest_failure = tally.slowest_failure.max(started.elapsed());
                        }
                        Err(e) => tally.other.push(e.to_string()),
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let http = reqwest::Client::new();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Cut the database off.
    proxy.cut().await;
    *phase.lock().unwrap() = 1;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let health = http.get(format!("{}/health", t.url)).send().await.unwrap();
    assert_eq!(
        health.status(),
        503,
        "health reports the outage (load so far: {:?})",
        tallies.lock().unwrap()
    );
    let health = health.text().await.unwrap();
    assert!(health.contains(backend), "{health}");
    assert!(
        !health.contains("127.0.0.1"),
        "/health names no host: {health}"
    );

    // Bring it back: service resumes without a restart.
    proxy.restore();
    let back = Instant::now();
    loop {
        let r = client.send(RequestPayload::Check(Check {
            unique_identifier: Some("outage-key".into()),
            usage_limits_count: None,
            cryptographic_usage_mask: None,
            lease_time: None,
        }));
        if r.await.is_ok() {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "service did not resume after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    *phase.lock().unwrap() = 2;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for l in load {
        l.await.unwrap();
    }
    let health = http.get(format!("{}/health", t.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let tallies = std::mem::take(&mut *tallies.lock().unwrap());
    println!(
        "{backend}: before {:?}, during {:?}, after {:?}",
        tallies[0], tallies[1], tallies[2]
    );
    assert!(tallies[0].ok > 0, "requests succeeded before the outage");
    assert!(
        tallies[1].unavailable > 0,
        "requests failed during the outage"
    );
    assert!(
        tallies[1].slowest_failure < Duration::from_secs(5),
        "failures are fast: {:?}",
        tallies[1].slowest_failure
    );
    assert!(
        tallies[2].ok > 0 && tallies[2].unavailable == 0,
        "service resumed: {:?}",
        tallies[2]
    );
    for t in &tallies[..] {
        assert!(
            t.other.is_empty(),
            "only clean 503 errors naming the database: {:?}",
            t.other
        );
    }
    t.server.stop().await;
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_outage_and_recovery() {
    outage(TestDatabase::postgres().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_outage_and_recovery() {
    outage(TestDatabase::mysql().await.unwrap()).await;
}
