//! `ckms bench`: a load test of a KMS at a given concurrency, printing req/s and p50/p99 of
//! encrypt (JSON TTLV and binary TTLV) and Create, next to the same load against a minimal HTTP
//! handler started in this process: the floor of what this machine can do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::routing::post;
use clap::Args;
use hdrhistogram::Histogram;
use kmip::model::{Create, CryptographicParameters, Encrypt, Get, RequestPayload};
use kmip::{BlockCipherMode, CryptographicAlgorithm, KmipEnum, Tag, binary, json};
use kms_client::{KmsClient, op, single_message};
use serde_json::json;

use crate::output::Output;

#[derive(Args)]
pub struct BenchArgs {
    /// Concurrent requests in flight.
    #[arg(long, short = 'c', default_value_t = 16)]
    concurrency: usize,
    /// Seconds per scenario.
    #[arg(long, short = 'd', default_value_t = 10)]
    duration: u64,
    /// Bytes of plaintext per encrypt request.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Rounds the scenarios alternate in (each runs duration / rounds per round).
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Skip the Create scenario (it writes a key per request).
    #[arg(long)]
    no_create: bool,
    /// Private-key operations instead: RSA-2048 and RSA-4096 OAEP decrypt, ECDSA P-256 and
    /// Ed25519 sign, ML-KEM-768 decrypt (compare with `cargo run --release -p kms-crypto
    /// --example raw_speed`).
    #[arg(long)]
    asymmetric: bool,
    /// HSM keys instead: AES-256-GCM encrypt and RSA-2048 PSS sign with keys created in this
    /// HSM slot, next to the same with keys in the database (the user must be an HSM admin).
    #[arg(long, conflicts_with = "asymmetric")]
    hsm_slot: Option<u64>,
}

struct Scenario {
    name: &'static str,
    requests: u64,
    elapsed: Duration,
    histogram: Histogram<u64>,
}

impl Scenario {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn ms(&self, q: f64) -> f64 {
        self.histogram.value_at_quantile(q) as f64 / 1000.0
    }
}

async fn load(
    name: &'static str,
    http: reqwest::Client,
    url: String,
    content_type: &'static str,
    body: Arc<Vec<u8>>,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Scenario> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let http = http.clone();
        let url = url.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let mut n = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                let r = http
                    .post(&url)
                    .header("content-type", content_type)
                    .body(body.as_ref().clone())
                    .send()
                    .await?;
                let status = r.status();
                let _ = r.bytes().await?;
                if !status.is_success() {
                    return Err(crate::output::refused(format!("{url} answered {status}")));
                }
                h.record(t.elapsed().as_micros().max(1) as u64)?;
                n += 1;
            }
            Ok::<_, anyhow::Error>((n, h))
        }));
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut requests = 0;
    for t in tasks {
        let (n, h) = t.await??;
        requests += n;
        histogram.add(&h)?;
    }
    Ok(Scenario {
        name,
        requests,
        elapsed: start.elapsed(),
        histogram,
    })
}

/// A minimal HTTP handler on a loopback port: the floor.
async fn floor_server() -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/floor",
        post(|| async { r#"{"tag":"EncryptResponse","value":[]}"# }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/floor"))
}

pub async fn run(
    url: &str,
    token: Option<&str>,
    args: BenchArgs,
    out: &Output,
) -> anyhow::Result<()> {
    if args.concurrency == 0 {
        return Err(crate::output::usage("--concurrency must be at least 1"));
    }
    let base = url.trim_end_matches('/').to_owned();
    let client = KmsClient::new(kms_client::ClientConfig {
        server_url: base.clone(),
        access_token: token.map(str::to_owned),
        ..Default::default()
    })?;
    let create = Create::symmetric_key(CryptographicAlgorithm::AES, 256);
    let uid = client
        .call(create.clone())
        .await
        .context("creating the benchmark key")?
        .unique_identifier;
    client.call(op::Activate::new(uid.clone())).await?;

    let get = RequestPayload::Get(Get::new(uid.clone()));
    let encrypt = RequestPayload::Encrypt(Encrypt {
        cryptographic_parameters: Some(CryptographicParameters {
            block_cipher_mode: Some(BlockCipherMode::GCM),
            ..Default::default()
        }),
        ..Encrypt::new(Some(uid), vec![0x42; args.payload])
    });
    let encrypt_json = json_body(encrypt.clone());
    let encrypt_binary = Arc::new(binary::encode(&single_message(encrypt).encode()));
    let create_json = json_body(RequestPayload::Create(create));
    let get_json = json_body(get);

    // Every request carries the token, as a real client's would (the floor ignores it).
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(t) = token {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {t}"))
            .context("the access token is not a valid header value")?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .default_headers(headers)
        .build()?;
    let d = Duration::from_secs(args.duration);
    let c = args.concurrency;
    let floor_url = floor_server().await?;
    let asymmetric = if args.asymmetric {
        asymmetric_scenarios(&client, &base).await?
    } else if let Some(slot) = args.hsm_slot {
        hsm_scenarios(&client, &base, slot).await?
    } else {
        Vec::new()
    };
    // (name, url, content type, body) of each scenario.
    let mut scenarios: Vec<(&'static str, String, &'static str, Arc<Vec<u8>>)> = vec![
        (
            "floor (minimal handler)",
            floor_url,
            "application/json",
            encrypt_json.clone(),
        ),
        (
            "encrypt JSON TTLV",
            format!("{base}/kmip/2_1"),
            "application/json",
            encrypt_json,
        ),
        (
            "encrypt binary TTLV",
            format!("{base}/kmip"),
            "application/octet-stream",
            encrypt_binary,
        ),
        (
            "get JSON TTLV",
            format!("{base}/kmip/2_1"),
            "application/json",
            get_json,
        ),
    ];
    if args.asymmetric || args.hsm_slot.is_some() {
        scenarios.truncate(1);
        scenarios.extend(asymmetric);
    } else if !args.no_create {
        scenarios.push((
            "create (durable)",
            format!("{base}/kmip/2_1"),
            "application/json",
            create_json,
        ));
    }
    // The scenarios take turns in short rounds, so that a change in the machine's load during
    // the run weighs on all of them alike and the ratios to the floor stay meaningful.
    let rounds = args.rounds.max(1);
    let slice = d / rounds;
    let mut results: Vec<Scenario> = Vec::new();
    for round in 0..rounds {
        for (i, (name, url, content_type, body)) in scenarios.iter().enumerate() {
            let s = load(
                name,
                http.clone(),
                url.clone(),
                content_type,
                body.clone(),
                c,
                slice,
            )
            .await?;
            if round == 0 {
                results.push(s);
            } else if let Some(total) = results.get_mut(i) {
                total.requests += s.requests;
                total.elapsed += s.elapsed;
                total.histogram.add(&s.histogram)?;
            }
        }
    }
    let floor = results[0].rate();
    let rows: Vec<_> = results
        .iter()
        .map(|s| json!({ "scenario": s.name, "requests": s.requests, "req_per_s": s.rate(), "p50_ms": s.ms(0.5), "p99_ms": s.ms(0.99), "ratio_to_floor": s.rate() / floor }))
        .collect();
    let mut text = format!(
        "concurrency {c}, {} s per scenario, {} bytes per encrypt, server {base}\n",
        args.duration, args.payload
    );
    text.push_str(&format!(
        "{:<26} {:>10} {:>10} {:>9} {:>9} {:>9}",
        "scenario", "requests", "req/s", "p50 ms", "p99 ms", "/floor"
    ));
    for s in &results {
        text.push_str(&format!(
            "\n{:<26} {:>10} {:>10.0} {:>9.2} {:>9.2} {:>9.2}",
            s.name,
            s.requests,
            s.rate(),
            s.ms(0.5),
            s.ms(0.99),
            s.rate() / floor
        ));
    }
    out.report(
        &text,
        json!({ "server": base, "concurrency": c, "duration_s": args.duration, "payload_bytes": args.payload, "results": rows }),
    );
    Ok(())
}

type ScenarioSpec = (&'static str, String, &'static str, Arc<Vec<u8>>);

/// A request payload as a JSON TTLV body.
fn json_body(p: RequestPayload) -> Arc<Vec<u8>> {
    let mut t = p.encode();
    t.tag = Tag::operation_request(p.operation().to_u32());
    Arc::new(json::to_string(&t).into_bytes())
}

/// A Sign of 64 bytes with the private key `uid`, as JSON TTLV.
fn sign_body(uid: kmip::model::UniqueIdentifier) -> Arc<Vec<u8>> {
    json_body(RequestPayload::Sign(kmip::model::Sign {
        unique_identifier: Some(uid),
        cryptographic_parameters: None,
        data: Some(vec![7; 64]),
        digested_data: None,
        correlation_value: None,
        init_indicator: None,
        final_indicator: None,
    }))
}

/// The private-key scenarios: a key pair each, and the request body that uses it.
async fn asymmetric_scenarios(client: &KmsClient, base: &str) -> anyhow::Result<Vec<ScenarioSpec>> {
    use kmip::model::{
        Attribute, Attributes, CreateKeyPair, CryptographicDomainParameters, Decrypt,
    };
    use kmip::{HashingAlgorithm, PaddingMethod, RecommendedCurve};
    let pair = |attributes: Vec<Attribute>| CreateKeyPair {
        common_attributes: Some(Attributes(
            attributes
                .into_iter()
                .chain([Attribute::ActivationDate(kmip::DateTime::now())])
                .collect(),
        )),
        private_key_attributes: None,
        public_key_attributes: None,
        common_protection_storage_masks: None,
        private_protection_storage_masks: None,
        public_protection_storage_masks: None,
    };
    let oaep = CryptographicParameters {
        padding_method: Some(PaddingMethod::OAEP),
        hashing_algorithm: Some(HashingAlgorithm::SHA_256),
        ..Default::default()
    };
    let url = format!("{base}/kmip/2_1");
    let mut out = Vec::new();
    let decrypting: [(
        &'static str,
        Vec<Attribute>,
        Option<CryptographicParameters>,
    ); 3] = [
        (
            "RSA-2048 OAEP decrypt",
            vec![
                Attribute::CryptographicAlgorithm(CryptographicAlgorithm::RSA),
                Attribute::CryptographicLength(2048),
            ],
            Some(oaep.clone()),
        ),
        (
            "RSA-4096 OAEP decrypt",
            vec![
                Attribute::CryptographicAlgorithm(CryptographicAlgorithm::RSA),
                Attribute::CryptographicLength(4096),
            ],
            Some(oaep),
        ),
        (
            "ML-KEM-768 decrypt",
            vec![
                Attribute::CryptographicAlgorithm(CryptographicAlgorithm::ML_KEM),
                Attribute::CryptographicLength(768),
            ],
            None,
        ),
    ];
    for (name, attributes, params) in decrypting {
        let keys = client.call(pair(attributes)).await.context(name)?;
        let encrypted = client
            .call(Encrypt {
                cryptographic_parameters: params.clone(),
                ..Encrypt::new(Some(keys.public_key_unique_identifier), vec![7; 32])
            })
            .await
            .context(name)?;
        let decrypt = Decrypt {
            cryptographic_parameters: params,
            ..Decrypt::new(
                Some(keys.private_key_unique_identifier),
                encrypted.data.unwrap_or_default(),
            )
        };
        out.push((
            name,
            url.clone(),
            "application/json",
            json_body(RequestPayload::Decrypt(decrypt)),
        ));
    }
    let signing: [(&'static str, Vec<Attribute>); 2] = [
        (
            "ECDSA P-256 sign",
            vec![
                Attribute::CryptographicAlgorithm(CryptographicAlgorithm::EC),
                Attribute::CryptographicDomainParameters(CryptographicDomainParameters {
                    qlength: None,
                    recommended_curve: Some(RecommendedCurve::P_256),
                }),
            ],
        ),
        (
            "Ed25519 sign",
            vec![Attribute::CryptographicAlgorithm(
                CryptographicAlgorithm::Ed25519,
            )],
        ),
    ];
    for (name, attributes) in signing {
        let keys = client.call(pair(attributes)).await.context(name)?;
        out.push((
            name,
            url.clone(),
            "application/json",
            sign_body(keys.private_key_unique_identifier),
        ));
    }
    Ok(out)
}

/// AES-GCM encrypt and RSA-2048 sign with HSM keys, next to the same with database keys.
async fn hsm_scenarios(
    client: &KmsClient,
    base: &str,
    slot: u64,
) -> anyhow::Result<Vec<ScenarioSpec>> {
    use kmip::model::{Attribute, Attributes, CreateKeyPair};
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let url = format!("{base}/kmip/2_1");
    let mut out = Vec::new();
    for (name, uid) in [
        ("AES-GCM encrypt, DB key", None),
        (
            "AES-GCM encrypt, HSM key",
            Some(format!("hsm::{slot}::bench-aes-{stamp}")),
        ),
    ] {
        let mut create = Create::symmetric_key(CryptographicAlgorithm::AES, 256);
        create
            .attributes
            .set(Attribute::ActivationDate(kmip::DateTime::now()));
        if let Some(uid) = &uid {
            create
                .attributes
                .set(Attribute::UniqueIdentifier(uid.clone().into()));
        }
        let key = client.call(create).await.context(name)?.unique_identifier;
        let encrypt = Encrypt {
            cryptographic_parameters: Some(CryptographicParameters {
                block_cipher_mode: Some(BlockCipherMode::GCM),
                ..Default::default()
            }),
            ..Encrypt::new(Some(key), vec![0x42; 64])
        };
        out.push((
            name,
            url.clone(),
            "application/json",
            json_body(RequestPayload::Encrypt(encrypt)),
        ));
    }
    for (name, uid) in [
        ("RSA-2048 PSS sign, DB key", None),
        (
            "RSA-2048 PSS sign, HSM key",
            Some(format!("hsm::{slot}::bench-rsa-{stamp}")),
        ),
    ] {
        let private = uid.map(|u| Attributes(vec![Attribute::UniqueIdentifier(u.into())]));
        let pair = CreateKeyPair {
            common_attributes: Some(Attributes(vec![
                Attribute::CryptographicAlgorithm(CryptographicAlgorithm::RSA),
                Attribute::CryptographicLength(2048),
                Attribute::ActivationDate(kmip::DateTime::now()),
            ])),
            private_key_attributes: private,
            public_key_attributes: None,
            common_protection_storage_masks: None,
            private_protection_storage_masks: None,
            public_protection_storage_masks: None,
        };
        let keys = client.call(pair).await.context(name)?;
        out.push((
            name,
            url.clone(),
            "application/json",
            sign_body(keys.private_key_unique_identifier),
        ));
    }
    Ok(out)
}
