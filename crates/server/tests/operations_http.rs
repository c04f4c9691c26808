//! What an operator sees over real sockets: `/metrics` (Prometheus text, with the counters and
//! histograms of the operations just run), `/server-info`, `/openapi.json` (valid OpenAPI 3.1,
//! every documented route answering), the Swagger UI, and the `X-Request-Id` of every answer.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

mod common;

use std::collections::BTreeMap;

use common::TestServer;
use kmip::model::*;
use kmip::{CryptographicAlgorithm, ObjectType};
use kms_client::KmsClient;

/// One sample of a Prometheus text exposition: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format strictly enough that a malformed line fails: comments
/// are `# HELP name text` or `# TYPE name counter|gauge|histogram|summary|untyped`, samples are
/// `name{label="value",...} number`, and every sample's family has a TYPE line before it.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    let is_name = |s: &str| {
        !s.is_empty()
            && s.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap();
            let name = parts.next().expect("a metric name after # HELP/# TYPE");
            assert!(is_name(name), "bad metric name in {line:?}");
            match kind {
                "HELP" => {}
                "TYPE" => {
                    let t = parts.next().expect("a type");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                        "bad type in {line:?}"
                    );
                    typed.insert(name.to_owned(), t.to_owned());
                }
                _ => panic!("unknown comment {line:?}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                let mut labels = BTreeMap::new();
                let mut rest = body;
                while !rest.is_empty() {
                    let (key, after) = rest.split_once("=\"").expect("label=\"value\"");
                    assert!(is_name(key), "bad label name in {line:?}");
                    let mut value = String::new();
                    let mut chars = after.char_indices();
                    let end = loop {
                        let (i, c) = chars.next().expect("closing quote");
                        match c {
                            '\\' => {
                                let (_, e) = chars.next().expect("escape");
                                value.push(match e {
                                    'n' => '\n',
                                    other => other,
                                });
                            }
                            '"' => break i,
                            c => value.push(c),
                        }
                    };
                    labels.insert(key.to_owned(), value);
                    rest = after[end + 1..].trim_start_matches(',');
                }
                (name, labels)
            }
            None => (series, BTreeMap::new()),
        };
        assert!(is_name(name), "bad sample name in {line:?}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains_key(*f)))
            .unwrap_or(name);
        assert!(
            typed.contains_key(family),
            "{name} has no # TYPE line before it"
        );
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    samples
}

fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    samples.iter().find(|s| {
        s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

async fn create_aes(client: &KmsClient) -> String {
    let attributes = Attributes(vec![
        Attribute::CryptographicAlgorithm(CryptographicAlgorithm::AES),
        Attribute::CryptographicLength(256),
    ]);
    match client
        .send(RequestPayload::Create(Create {
            object_type: ObjectType::SymmetricKey,
            attributes,
            protection_storage_masks: None,
        }))
        .await
        .expect("create")
    {
        ResponsePayload::Create(r) => r.unique_identifier.as_text().unwrap().to_owned(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn metrics_count_the_operations_just_run() {
    let server = TestServer::builder().start().await;
    let client = KmsClient::with_url(&server.url).unwrap();
    let uid = create_aes(&client).await;
    client
        .send(RequestPayload::Activate(UidRequest {
            unique_identifier: Some(uid.clone().into()),
        }))
        .await
        .expect("activate");
    for _ in 0..3 {
        client
            .send(RequestPayload::Encrypt(Encrypt::new(
                Some(uid.clone().into()),
                vec![7; 64],
            )))
            .await
            .expect("encrypt");
    }
    let missing = client
        .send(RequestPayload::Get(Get {
            unique_identifier: Some("no-such-key".into()),
            key_format_type: None,
            key_wrap_type: None,
            key_compression_type: None,
            key_wrapping_specification: None,
        }))
        .await;
    assert!(missing.is_err());

    let response = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    let samples = parse_prometheus(&text);

    let count = |labels: &[(&str, &str)]| {
        find(&samples, "kms_operations_total", labels)
            .unwrap_or_else(|| panic!("no kms_operations_total{labels:?} in\n{text}"))
            .value
    };
    // The recorder is the process's: other tests of this binary may have counted too.
    assert!(count(&[("operation", "Create"), ("result", "Success")]) >= 1.0);
    assert!(count(&[("operation", "Encrypt"), ("result", "Success")]) >= 3.0);
    assert!(
        samples.iter().any(|s| s.name == "kms_operations_total"
            && s.labels["operation"] == "Get"
            && s.labels["result"] == "ObjectNotFound"),
        "{text}"
    );
    let encrypts = find(
        &samples,
        "kms_operation_duration_seconds_count",
        &[("operation", "Encrypt")],
    )
    .expect("Encrypt latency histogram");
    assert!(encrypts.value >= 3.0);
    let inf_bucket = find(
        &samples,
        "kms_operation_duration_seconds_bucket",
        &[("operation", "Encrypt"), ("le", "+Inf")],
    )
    .expect("+Inf bucket");
    assert_eq!(inf_bucket.value, encrypts.value);
    assert!(text.contains("# TYPE kms_operation_duration_seconds histogram"));
    assert!(
        find(
            &samples,
            "kms_http_requests_total",
            &[("route", "/kmip/2_1"), ("status", "200")]
        )
        .is_some_and(|s| s.value >= 4.0),
        "{text}"
    );
    assert!(
        find(
            &samples,
            "kms_store_duration_seconds_count",
            &[("backend", "sqlite"), ("call", "create")]
        )
        .is_some_and(|s| s.value >= 1.0),
        "{text}"
    );
    assert!(find(&samples, "kms_open_connections", &[("listener", "http")]).is_some());
    assert!(
        find(
            &samples,
            "kms_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        )
        .is_some()
    );
    assert!(
        find(
            &samples,
            "kms_objects",
            &[("object_type", "SymmetricKey"), ("state", "Active")]
        )
        .is_some_and(|s| s.value >= 1.0),
        "{text}"
    );
    // No key material, no identifier of a key in the metrics.
    assert!(!text.contains(&uid));
}

#[tokio::test]
async fn every_answer_names_its_request() {
    let server = TestServer::builder().start().await;
    let http = reqwest::Client::new();
    let body = r#"{"tag":"Get","type":"Structure","value":[{"tag":"UniqueIdentifier","type":"TextString","value":"nope"}]}"#;
    let response = http
        .post(format!("{}/kmip/2_1", server.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 16, "{id}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");

    let other = http
        .get(format!("{}/version", server.url))
        .send()
        .await
        .unwrap();
    let other_id = other.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(other_id, id);
}

#[tokio::test]
async fn server_info_says_what_runs_and_nothing_secret() {
    let server = TestServer::builder().start().await;
    let info: serde_json::Value = reqwest::get(format!("{}/server-info", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["database_type"], "sqlite");
    assert_eq!(info["fips_mode"], cfg!(feature = "fips"));
    assert_eq!(info["hsm_model"], serde_json::Value::Null);
    assert_eq!(info["https"], false);
    assert_eq!(info["metrics"], true);
    assert!(
        info["kmip_versions"]
            .as_array()
            .unwrap()
            .contains(&"2.1".into())
    );
    let text = info.to_string();
    assert!(
        !text.contains("sqlite-data") && !text.contains("kms.db"),
        "{text}"
    );
}

/// The checker of `scripts/setup.sh`; a missing one is a failure, not a skip.
fn openapi_validator() -> std::path::PathBuf {
    let python = std::env::var_os("KMS_TEST_OPENAPI_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var("HOME").expect("HOME"))
                .join(".cache/kms-tools/openapi/bin/python")
        });
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh (it installs openapi-spec-validator)",
        python.display()
    );
    python
}

#[tokio::test]
async fn openapi_is_valid_and_every_route_it_lists_answers() {
    let server = TestServer::builder().start().await;
    let response = reqwest::get(format!("{}/openapi.json", server.url))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, &text).unwrap();
    let out = std::process::Command::new(openapi_validator())
        .args(["-m", "openapi_spec_validator", "--schema", "3.1.0"])
        .arg(&path)
        .output()
        .expect("run openapi-spec-validator");
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Every documented route is one the server has (neither 404 nor 405).
    let http = reqwest::Client::new();
    let paths = doc["paths"].as_object().unwrap();
    for expected in [
        "/kmip/2_1",
        "/kmip",
        "/access/grant",
        "/access/revoke",
        "/access/list/{uid}",
        "/access/owned",
        "/access/obtained",
        "/new_database",
        "/rotate_database_secret",
        "/version",
        "/health",
        "/server-info",
        "/metrics",
    ] {
        assert!(paths.contains_key(expected), "{expected} is not documented");
    }
    for (path, methods) in paths {
        let url = format!("{}{}", server.url, path.replace("{uid}", "some-uid"));
        for method in methods.as_object().unwrap().keys() {
            let request = match method.as_str() {
                "get" => http.get(&url),
                "post" => http.post(&url).body("{}"),
                other => panic!("unexpected method {other}"),
            };
            let response = request.send().await.unwrap();
            let status = response.status();
            // A route the router lacks is an empty 404 (a missing object has a message).
            let body = response.text().await.unwrap();
            assert!(
                !(status == 404 && body.is_empty()) && status != 405,
                "{method} {path} is documented but answers {status}"
            );
        }
    }

    let ui = reqwest::get(format!("{}/swagger-ui/", server.url))
        .await
        .unwrap();
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("swagger-ui"));
    let init = reqwest::get(format!("{}/swagger-ui/swagger-initializer.js", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/openapi.json"), "{init}");
}

/// Large bodies take turns within a memory budget: several at once, one larger than the whole
/// budget among them, are all answered (none waits forever), and small requests meanwhile too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_take_turns_and_all_are_answered() {
    let server = TestServer::builder()
        .max_request_size(64 * 1024 * 1024)
        .start()
        .await;
    let http = reqwest::Client::new();
    let body = |hex_bytes: usize| {
        format!(
            r#"{{"tag":"Encrypt","type":"Structure","value":[{{"tag":"UniqueIdentifier","type":"TextString","value":"absent"}},{{"tag":"Data","type":"ByteString","value":"{}"}}]}}"#,
            "00".repeat(hex_bytes)
        )
    };
    let mut tasks = Vec::new();
    for size in [5_000_000, 5_000_000, 12_000_000, 1_000_000] {
        let (http, url, body) = (http.clone(), server.url.clone(), body(size));
        tasks.push(tokio::spawn(async move {
            http.post(format!("{url}/kmip/2_1"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    let small = http
        .get(format!("{}/version", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200);
    for t in tasks {
        let status = tokio::time::timeout(std::time::Duration::from_secs(60), t)
            .await
            .expect("a large request was never answered")
            .unwrap()
            .unwrap();
        // The key does not exist: the body was read and decoded, then the operation refused.
        assert_eq!(status, 404);
    }
}

/// Sends `request` over a new TCP connection and reads the answer's status line, headers and
/// body (by its `content-length`), within 5 s. A refused body is sent over raw TCP, not with
/// reqwest: the server answers as soon as it knows the body is too large and closes the
/// connection, and a client still writing the rest of it sees a broken pipe instead of the
/// answer (what every server that refuses early does to such a client).
async fn raw_exchange(address: &str, request: &[u8]) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap() == 1 {
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map_or(0, |n| n.trim().parse().unwrap());
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await.unwrap();
        (head, String::from_utf8_lossy(&body).into_owned())
    })
    .await
    .expect("the server did not answer within 5 s")
}

/// A body larger than `--max-request-size` is a 413 whose message names the limit and the
/// flag, on every route that reads a body, whether its length is declared (refused before it
/// is read) or it comes in chunks without one (refused once past the limit); the server then
/// answers the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_a_413_that_names_it() {
    let limit = 64 * 1024;
    let server = TestServer::builder().max_request_size(limit).start().await;
    let address = server.url.trim_start_matches("http://").to_owned();
    for route in ["/kmip/2_1", "/kmip", "/access/grant"] {
        // Declared, headers only: the answer must come before any of the body is sent.
        let declared = format!(
            "POST {route} HTTP/1.1\r\nhost: kms\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n",
            limit + 1
        );
        let (head, message) = raw_exchange(&address, declared.as_bytes()).await;
        assert!(head.starts_with("http/1.1 413"), "{route}: {head}");
        assert!(
            message.contains(&format!("larger than the {limit} bytes"))
                && message.contains("--max-request-size"),
            "{route}: {message}"
        );
        // Chunked, no Content-Length: three chunks of a third of the limit and more, and no
        // final chunk, so that the server has read all that was sent when it answers.
        let mut chunked = format!(
            "POST {route} HTTP/1.1\r\nhost: kms\r\ncontent-type: application/json\r\n\
             transfer-encoding: chunked\r\n\r\n"
        )
        .into_bytes();
        for _ in 0..3 {
            chunked.extend_from_slice(format!("{:x}\r\n", limit / 3 + 10).as_bytes());
            chunked.extend(std::iter::repeat_n(b'x', limit / 3 + 10));
            chunked.extend_from_slice(b"\r\n");
        }
        let (head, message) = raw_exchange(&address, &chunked).await;
        assert!(head.starts_with("http/1.1 413"), "{route}, chunked: {head}");
        assert!(
            message.contains("--max-request-size"),
            "{route}, chunked: {message}"
        );
    }
    // Chunked and within the limit: read whole and decoded (the key does not exist).
    let http = reqwest::Client::new();
    let encrypt = br#"{"tag":"Encrypt","type":"Structure","value":[{"tag":"UniqueIdentifier","type":"TextString","value":"absent"},{"tag":"Data","type":"ByteString","value":"00"}]}"#;
    let halves: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(encrypt[..40].to_vec()), Ok(encrypt[40..].to_vec())];
    let within = http
        .post(format!("{}/kmip/2_1", server.url))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            halves,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(within.status(), 404, "{}", within.text().await.unwrap());
}

/// A declared body over the limit is refused at once, even while a large request that has not
/// finished sending holds every turn among large bodies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_without_waiting_for_a_turn() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::builder()
        .max_request_size(32 * 1024 * 1024)
        .start()
        .await;
    let address = server.url.trim_start_matches("http://").to_owned();
    // 20 MB declared, never sent: it holds the whole 16 MiB budget of large bodies.
    let mut holder = tokio::net::TcpStream::connect(&address).await.unwrap();
    holder
        .write_all(
            b"POST /kmip/2_1 HTTP/1.1\r\nhost: kms\r\ncontent-type: application/json\r\n\
              content-length: 20000000\r\n\r\n{",
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // 40 MB declared, headers only: the answer must come without the body.
    let (head, _) = raw_exchange(
        &address,
        b"POST /kmip/2_1 HTTP/1.1\r\nhost: kms\r\ncontent-type: application/json\r\n\
          content-length: 40000000\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("http/1.1 413"), "{head}");
    assert!(head.contains("x-request-id:"), "{head}");
    drop(holder);
}
