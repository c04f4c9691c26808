//! `ckms bench`: a load test of one or several KMS servers at a given concurrency, printing
//! req/s and p50/p99 of encrypt (JSON TTLV and binary TTLV), Get, Locate by tag, a batch of 100
//! encrypts and durable creates, every scenario of every server interleaved in rounds, next to the same load
//! against a minimal HTTP handler in a process of its own (`ckms bench-floor`): the floor of
//! what HTTP costs on this machine. The load comes from wrk when installed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::routing::post;
use clap::Args;
use hdrhistogram::Histogram;
use kmip::model::{
    Attributes, Create, CryptographicParameters, Encrypt, Get, Locate, RequestPayload,
};
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
    /// A server to measure, NAME=URL (repeat for several; their scenarios are interleaved);
    /// default: the configured server.
    #[arg(long)]
    target: Vec<String>,
    /// The process of a local --target, NAME=PID: its resident and peak memory are reported.
    #[arg(long)]
    pid: Vec<String>,
    /// What makes the load: wrk (default when installed) or the built-in client.
    #[arg(long, value_enum)]
    driver: Option<Driver>,
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

/// wrk reports percentiles, not samples: a histogram that answers them (98% of the requests
/// at p50, 1% at p99, 1% just above), close enough for p50 and p99 after merging rounds.
fn percentile_histogram(requests: u64, p50: u64, p99: u64) -> anyhow::Result<Histogram<u64>> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (p50, p99) = (p50.max(1), p99.max(p50.max(1)));
    let tail = (requests / 100).max(1);
    h.record_n(p50, requests.saturating_sub(2 * tail).max(1))?;
    h.record_n(p99, tail)?;
    h.record_n(p99 + 1, tail)?;
    Ok(h)
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

/// `ckms bench-floor`: a minimal HTTP server on a loopback port that reads each request's
/// body and answers 300 bytes, as a KMS answer to an encrypt would be. Prints its address on
/// the first line of stdout, then serves until killed.
pub async fn floor_process() -> anyhow::Result<()> {
    static ANSWER: [u8; 300] = [b'x'; 300];
    let app = axum::Router::new().route(
        "/floor",
        post(|body: axum::body::Bytes| async move {
            std::hint::black_box(&body);
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                &ANSWER[..],
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("http://{}/floor", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// The floor process, killed when dropped.
struct Floor {
    child: std::process::Child,
    url: String,
}

impl Floor {
    fn start() -> anyhow::Result<Floor> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .arg("bench-floor")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("starting the floor process (ckms bench-floor)")?;
        let stdout = child.stdout.take().context("the floor's stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let url = line.trim().to_owned();
        if !url.starts_with("http://") {
            let _ = child.kill();
            anyhow::bail!("the floor process did not start: {line:?}");
        }
        Ok(Floor { child, url })
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One server to measure: a name (the backend) and its address, and its process when local.
struct Target {
    name: String,
    base: String,
    pid: Option<u32>,
}

fn parse_targets(args: &BenchArgs, default_url: &str) -> anyhow::Result<Vec<Target>> {
    let mut targets = Vec::new();
    for t in &args.target {
        let (name, base) = t
            .split_once('=')
            .ok_or_else(|| crate::output::usage(format!("--target `{t}`: expected NAME=URL")))?;
        targets.push(Target {
            name: name.to_owned(),
            base: base.trim_end_matches('/').to_owned(),
            pid: None,
        });
    }
    if targets.is_empty() {
        targets.push(Target {
            name: "server".into(),
            base: default_url.trim_end_matches('/').to_owned(),
            pid: None,
        });
    }
    for p in &args.pid {
        let (name, pid) = p
            .split_once('=')
            .and_then(|(n, p)| Some((n, p.parse::<u32>().ok()?)))
            .ok_or_else(|| crate::output::usage(format!("--pid `{p}`: expected NAME=PID")))?;
        let target = targets
            .iter_mut()
            .find(|t| t.name == name)
            .ok_or_else(|| crate::output::usage(format!("--pid {name}: no --target {name}")))?;
        target.pid = Some(pid);
    }
    Ok(targets)
}

/// Resident and peak resident memory of a local process, in MiB (`/proc/PID/status`).
fn memory_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Items per batch in the batch scenario.
const BATCH_ITEMS: usize = 100;

/// How a scenario is measured: the built-in client, or wrk (`-t1`, the concurrency as
/// connections), which costs the machine less than the load it makes.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Driver {
    Wrk,
    Builtin,
}

struct Spec {
    target: usize,
    name: &'static str,
    url: String,
    content_type: &'static str,
    body: Arc<Vec<u8>>,
    /// Operations per request (a batch runs several).
    items: usize,
}

/// Runs `spec` for `duration` with wrk; answers requests, elapsed time and the latency
/// histogram wrk reports (p50, p99 in microseconds, recorded into an hdrhistogram).
async fn wrk_load(
    spec: &Spec,
    token: Option<&str>,
    concurrency: usize,
    duration: Duration,
    dir: &std::path::Path,
) -> anyhow::Result<Scenario> {
    let body_file = dir.join(format!(
        "body-{}-{}",
        spec.target,
        spec.name.replace(' ', "_")
    ));
    if !body_file.exists() {
        std::fs::write(&body_file, spec.body.as_ref())?;
    }
    let auth = token
        .map(|t| format!("wrk.headers[\"Authorization\"] = \"Bearer {t}\"\n"))
        .unwrap_or_default();
    // A response that is not 2xx counts as an error, which fails the scenario.
    let script = format!(
        "local f = io.open({path:?}, \"rb\")\nwrk.body = f:read(\"*all\")\nf:close()\n\
         wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"{ct}\"\n{auth}\
         function done(summary, latency, requests)\n\
           io.write(string.format(\"CKMS %d %d %d %d %d %d\\n\", summary.requests, \
           summary.duration, summary.errors.status, summary.errors.connect + summary.errors.read \
           + summary.errors.write + summary.errors.timeout, latency:percentile(50), \
           latency:percentile(99)))\nend\n",
        path = body_file.display().to_string(),
        ct = spec.content_type,
    );
    let script_file = body_file.with_extension("lua");
    std::fs::write(&script_file, script)?;
    let mut wrk = std::process::Command::new("wrk");
    wrk.args(["-t1", &format!("-c{concurrency}")])
        .arg(format!("-d{}s", duration.as_secs_f64().ceil().max(1.0)))
        .arg("-s")
        .arg(&script_file)
        .arg(&spec.url);
    let out = tokio::task::spawn_blocking(move || wrk.output())
        .await?
        .context("running wrk (apt-get install wrk, or --driver builtin)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("CKMS "))
        .ok_or_else(|| anyhow::anyhow!("wrk printed no summary: {text}"))?;
    let n: Vec<u64> = line
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let [requests, micros, status_errors, socket_errors, p50, p99] = n[..] else {
        anyhow::bail!("wrk summary `{line}`");
    };
    if status_errors > 0 {
        return Err(crate::output::refused(format!(
            "{} answered {status_errors} requests with an error status",
            spec.url
        )));
    }
    if socket_errors > requests / 100 {
        anyhow::bail!("{socket_errors} socket errors against {}", spec.url);
    }
    let histogram = percentile_histogram(requests, p50, p99)?;
    Ok(Scenario {
        name: spec.name,
        requests,
        elapsed: Duration::from_micros(micros),
        histogram,
    })
}

/// The standard scenarios of one target: its benchmark key, then encrypt (JSON and binary),
/// Get, Locate by tag, a batch of [`BATCH_ITEMS`] encrypts, and durable creates.
async fn target_scenarios(
    index: usize,
    target: &Target,
    token: Option<&str>,
    args: &BenchArgs,
) -> anyhow::Result<Vec<Spec>> {
    let base = &target.base;
    let client = KmsClient::new(kms_client::ClientConfig {
        server_url: base.clone(),
        access_token: token.map(str::to_owned),
        ..Default::default()
    })?;
    let create = Create::symmetric_key(CryptographicAlgorithm::AES, 256);
    let uid = client
        .call(create.clone())
        .await
        .with_context(|| format!("creating the benchmark key on {}", target.name))?
        .unique_identifier;
    client.call(op::Activate::new(uid.clone())).await?;
    // Ten keys under a tag of their own, for the Locate scenario: among whatever else the
    // server holds (scripts/bench.sh can preload a million keys, ten per tag).
    let tag = format!("bench-locate-{}", uuid::Uuid::new_v4().simple());
    let mut tagged = create.clone();
    tagged.attributes = tagged.attributes.with_user_tags(&[&tag]);
    for _ in 0..10 {
        client.call(tagged.clone()).await?;
    }
    let locate = RequestPayload::Locate(Locate {
        maximum_items: None,
        offset_items: None,
        storage_status_mask: None,
        object_group_member: None,
        attributes: Some(Attributes::default().with_user_tags(&[&tag])),
    });
    let encrypt = RequestPayload::Encrypt(Encrypt {
        cryptographic_parameters: Some(CryptographicParameters {
            block_cipher_mode: Some(BlockCipherMode::GCM),
            ..Default::default()
        }),
        ..Encrypt::new(Some(uid.clone()), vec![0x42; args.payload])
    });
    let batch = {
        let mut message = single_message(encrypt.clone());
        let item = message.batch_item[0].clone();
        message.batch_item = vec![item; BATCH_ITEMS];
        message.request_header.batch_count = BATCH_ITEMS as i32;
        Arc::new(binary::encode(&message.encode()))
    };
    let spec = |name, path: &str, content_type, body, items| Spec {
        target: index,
        name,
        url: format!("{base}{path}"),
        content_type,
        body,
        items,
    };
    let mut specs = vec![
        spec(
            "encrypt JSON TTLV",
            "/kmip/2_1",
            "application/json",
            json_body(encrypt.clone()),
            1,
        ),
        spec(
            "encrypt binary TTLV",
            "/kmip",
            "application/octet-stream",
            Arc::new(binary::encode(&single_message(encrypt).encode())),
            1,
        ),
        spec(
            "get JSON TTLV",
            "/kmip/2_1",
            "application/json",
            json_body(RequestPayload::Get(Get::new(uid))),
            1,
        ),
        spec(
            "locate by tag (10 found)",
            "/kmip/2_1",
            "application/json",
            json_body(locate),
            1,
        ),
        spec(
            "batch of 100 encrypts",
            "/kmip",
            "application/octet-stream",
            batch,
            BATCH_ITEMS,
        ),
    ];
    if !args.no_create {
        specs.push(spec(
            "create (durable)",
            "/kmip/2_1",
            "application/json",
            json_body(RequestPayload::Create(create)),
            1,
        ));
    }
    Ok(specs)
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
    if args.asymmetric || args.hsm_slot.is_some() {
        return run_single(url, token, args, out).await;
    }
    let targets = parse_targets(&args, url)?;
    let driver = match args.driver {
        Some(d) => d,
        None if which_wrk() => Driver::Wrk,
        None => Driver::Builtin,
    };
    let floor = Floor::start()?;
    let mut specs = vec![Spec {
        target: usize::MAX,
        name: "floor (own process)",
        url: floor.url.clone(),
        content_type: "application/json",
        body: Arc::new(vec![b'{'; 300]),
        items: 1,
    }];
    for (i, target) in targets.iter().enumerate() {
        specs.extend(target_scenarios(i, target, token, &args).await?);
    }
    let http = builtin_client(token, args.concurrency)?;
    let dir = tempfile::tempdir()?;
    let d = Duration::from_secs(args.duration);
    let c = args.concurrency;
    // Every scenario of every target takes its turn in each round, so that a change in the
    // machine's load during the run weighs on all of them alike.
    let rounds = args.rounds.max(1);
    let slice = d / rounds;
    let mut results: Vec<Option<Scenario>> = (0..specs.len()).map(|_| None).collect();
    for _ in 0..rounds {
        for (i, spec) in specs.iter().enumerate() {
            let s = match driver {
                Driver::Wrk => wrk_load(spec, token, c, slice, dir.path()).await?,
                Driver::Builtin => {
                    load(
                        spec.name,
                        http.clone(),
                        spec.url.clone(),
                        spec.content_type,
                        spec.body.clone(),
                        c,
                        slice,
                    )
                    .await?
                }
            };
            match &mut results[i] {
                None => results[i] = Some(s),
                Some(total) => {
                    total.requests += s.requests;
                    total.elapsed += s.elapsed;
                    total.histogram.add(&s.histogram)?;
                }
            }
        }
    }
    let results: Vec<Scenario> = results.into_iter().flatten().collect();
    let floor_rate = results[0].rate();
    let mut text = format!(
        "concurrency {c}, {} s per scenario in {rounds} rounds, {} bytes per encrypt, driver {}\n",
        args.duration,
        args.payload,
        if driver == Driver::Wrk {
            "wrk -t1"
        } else {
            "builtin"
        }
    );
    text.push_str(&format!(
        "{:<12} {:<24} {:>10} {:>10} {:>9} {:>9} {:>7} {:>9}",
        "server", "scenario", "requests", "req/s", "p50 ms", "p99 ms", "/floor", "µs/item"
    ));
    let mut rows = Vec::new();
    for (spec, s) in specs.iter().zip(&results) {
        let server = targets
            .get(spec.target)
            .map_or("floor", |t| t.name.as_str());
        let per_item = 1e6 / (s.rate() * spec.items as f64);
        text.push_str(&format!(
            "\n{:<12} {:<24} {:>10} {:>10.0} {:>9.2} {:>9.2} {:>7.2} {:>9}",
            server,
            s.name,
            s.requests,
            s.rate(),
            s.ms(0.5),
            s.ms(0.99),
            s.rate() / floor_rate,
            if spec.items > 1 {
                format!("{per_item:.2}")
            } else {
                String::new()
            }
        ));
        rows.push(json!({
            "server": server, "scenario": s.name, "requests": s.requests,
            "req_per_s": s.rate(), "p50_ms": s.ms(0.5), "p99_ms": s.ms(0.99),
            "ratio_to_floor": s.rate() / floor_rate,
            "items_per_request": spec.items, "us_per_item": per_item,
        }));
    }
    let mut memory = Vec::new();
    for t in &targets {
        if let Some((rss, peak)) = t.pid.and_then(memory_mib) {
            text.push_str(&format!(
                "\n{}: resident {rss:.0} MiB after the load, peak {peak:.0} MiB",
                t.name
            ));
            memory.push(json!({ "server": t.name, "rss_mib": rss, "peak_rss_mib": peak }));
        }
    }
    out.report(
        &text,
        json!({ "concurrency": c, "duration_s": args.duration, "payload_bytes": args.payload,
                "results": rows, "memory": memory }),
    );
    Ok(())
}

fn which_wrk() -> bool {
    std::process::Command::new("wrk")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

fn builtin_client(token: Option<&str>, concurrency: usize) -> anyhow::Result<reqwest::Client> {
    // Every request carries the token, as a real client's would (the floor ignores it).
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(t) = token {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {t}"))
            .context("the access token is not a valid header value")?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency * 2)
        .default_headers(headers)
        .build()?)
}

/// The asymmetric and HSM scenarios, on one server with the built-in client.
async fn run_single(
    url: &str,
    token: Option<&str>,
    args: BenchArgs,
    out: &Output,
) -> anyhow::Result<()> {
    let base = url.trim_end_matches('/').to_owned();
    let client = KmsClient::new(kms_client::ClientConfig {
        server_url: base.clone(),
        access_token: token.map(str::to_owned),
        ..Default::default()
    })?;
    let http = builtin_client(token, args.concurrency)?;
    let d = Duration::from_secs(args.duration);
    let c = args.concurrency;
    let floor = Floor::start()?;
    let mut scenarios: Vec<ScenarioSpec> = vec![(
        "floor (own process)",
        floor.url.clone(),
        "application/json",
        Arc::new(vec![b'{'; 300]),
    )];
    scenarios.extend(if args.asymmetric {
        asymmetric_scenarios(&client, &base).await?
    } else if let Some(slot) = args.hsm_slot {
        hsm_scenarios(&client, &base, slot).await?
    } else {
        Vec::new()
    });
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
    let floor_rate = results[0].rate();
    let mut text = format!(
        "concurrency {c}, {} s per scenario, server {base}\n{:<26} {:>10} {:>10} {:>9} {:>9} {:>9}",
        args.duration, "scenario", "requests", "req/s", "p50 ms", "p99 ms", "/floor"
    );
    let mut rows = Vec::new();
    for s in &results {
        text.push_str(&format!(
            "\n{:<26} {:>10} {:>10.0} {:>9.2} {:>9.2} {:>9.2}",
            s.name,
            s.requests,
            s.rate(),
            s.ms(0.5),
            s.ms(0.99),
            s.rate() / floor_rate
        ));
        rows.push(json!({ "scenario": s.name, "requests": s.requests, "req_per_s": s.rate(), "p50_ms": s.ms(0.5), "p99_ms": s.ms(0.99), "ratio_to_floor": s.rate() / floor_rate }));
    }
    out.report(
        &text,
        json!({ "server": base, "concurrency": c, "duration_s": args.duration, "results": rows }),
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
