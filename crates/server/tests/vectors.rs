//! Replays the OASIS KMIP test cases of the profiles this server covers against a running
//! server (binary TTLV over `POST /kmip`) and compares every response with the expected one.
//!
//! `$UNIQUE_IDENTIFIER_n` placeholders are captured from responses and substituted in later
//! requests. Values that cannot be reproduced are not compared: dates and time stamps, result
//! messages (free text), correlation values of response headers, every other `$...` placeholder
//! (server-generated IVs, random data, key material), what is computed from server-generated
//! keys or IVs, and the content of `RandomNumberGenerator` (each server's own generator). Per profile the test prints passed / total, and fails if a test case listed in
//! `vectors-passing.txt` stops passing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use common::TestServer;
use kmip::xml::Resolver;
use kmip::{DateTime, ItemType, Tag, Ttlv, Value, binary};

/// Marks placeholders in expected messages so that the comparison skips them.
struct Wildcards;

/// A ByteString placeholder becomes this prefix followed by its name.
const WILDCARD: &[u8] = b"\x00$placeholder:";

fn placeholder_name(bytes: &[u8]) -> Option<String> {
    bytes
        .strip_prefix(WILDCARD)
        .map(|n| String::from_utf8_lossy(n).into_owned())
}

impl Resolver for Wildcards {
    fn resolve(&mut self, _: Tag, item_type: ItemType, placeholder: &str) -> Option<Value> {
        Some(match item_type {
            // `$NOW`, `$NOW-3600`, `$NOW+3600`: real times, since the server checks them.
            // Responses' dates are not compared.
            ItemType::DateTime => {
                let offset: i64 = placeholder
                    .strip_prefix("$NOW")
                    .filter(|r| !r.is_empty())
                    .and_then(|r| r.trim_start_matches('+').parse().ok())
                    .unwrap_or(0);
                Value::DateTime(DateTime(DateTime::now().0 + offset))
            }
            ItemType::ByteString => Value::ByteString([WILDCARD, placeholder.as_bytes()].concat()),
            ItemType::Integer => Value::Integer(i32::MIN),
            ItemType::LongInteger => Value::LongInteger(i64::MIN),
            ItemType::Interval => Value::Interval(u32::MAX),
            _ => return None,
        })
    }
}

fn vectors_dir() -> PathBuf {
    match std::env::var_os("KMIP_VECTORS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/kmip-vectors"),
    }
}

/// Profiles of what the server implements.
const PROFILES: &[&str] = &[
    "AKLC",
    "CS-AC",
    "AX",
    "BL",
    "SKLC",
    "SKFF",
    "CS-BC",
    "CS-RNG",
    "QS",
    "MSGENC-HTTPS",
    "MSGENC-JSON",
    "MSGENC-XML",
];

fn profile_of(name: &str) -> Option<&'static str> {
    let stem = name.split("-M-").next()?;
    PROFILES.iter().copied().find(|p| *p == stem)
}

fn substitute(item: &mut Ttlv, ids: &HashMap<String, String>, bytes: &HashMap<String, Vec<u8>>) {
    match &mut item.value {
        Value::TextString(s) if s.starts_with('$') => {
            if let Some(v) = ids.get(s.as_str()) {
                *s = v.clone();
            }
        }
        Value::ByteString(b) => {
            // A placeholder names a value an earlier response gave; when that response gave it
            // literally (compared, not captured), the last value of the same field stands in.
            let by_name = placeholder_name(b).and_then(|n| bytes.get(&n));
            let by_field =
                || placeholder_name(b).and_then(|_| bytes.get(&format!("field:{}", item.tag)));
            if let Some(v) = by_name.or_else(by_field) {
                *b = v.clone();
            }
        }
        Value::Structure(children) => children.iter_mut().for_each(|c| substitute(c, ids, bytes)),
        _ => {}
    }
}

/// Removes the optional correlation values of response headers: servers may or may not echo
/// them, and the test cases differ on it.
fn strip_correlation(message: &mut Ttlv) {
    if let Value::Structure(children) = &mut message.value {
        for c in children
            .iter_mut()
            .filter(|c| c.tag == Tag::RESPONSE_HEADER)
        {
            if let Value::Structure(h) = &mut c.value {
                h.retain(|x| {
                    x.tag != Tag::CLIENT_CORRELATION_VALUE && x.tag != Tag::SERVER_CORRELATION_VALUE
                });
            }
        }
    }
}

/// Fields whose value depends on server-generated randomness.
const RANDOM_FIELDS: &[Tag] = &[
    Tag::DATA,
    Tag::MAC_DATA,
    Tag::AUTHENTICATED_ENCRYPTION_TAG,
    Tag::IV_COUNTER_NONCE,
    Tag::DIGEST_VALUE,
    Tag::KEY_MATERIAL,
    Tag::KEY,
];

fn compare(
    expected: &Ttlv,
    actual: &Ttlv,
    ids: &mut HashMap<String, String>,
    bytes: &mut HashMap<String, Vec<u8>>,
    random: bool,
    path: &str,
) -> Result<(), String> {
    let here = format!("{path}/{}", expected.tag);
    if random && RANDOM_FIELDS.contains(&expected.tag) && expected.tag == actual.tag {
        // Not compared (made with a key the server generated), but still remembered when the
        // test case names it for a later request.
        if let (Value::ByteString(e), Value::ByteString(a)) = (&expected.value, &actual.value)
            && let Some(name) = e
                .starts_with(WILDCARD)
                .then(|| placeholder_name(e))
                .flatten()
        {
            bytes.insert(name, a.clone());
        }
        return Ok(());
    }
    // Which generator made a key is the server's own: the attribute must be there, its content
    // is not compared (the test cases' server used ANSI X9.31; this one uses CTR-DRBG).
    let is_rng = |t: &Ttlv| {
        t.tag == Tag::RANDOM_NUMBER_GENERATOR
            || t.children()
                .ok()
                .and_then(|c| c.first())
                .is_some_and(|f| f.tag == Tag::RNG_ALGORITHM)
    };
    if is_rng(expected) && is_rng(actual) {
        return Ok(());
    }
    if expected.tag != actual.tag {
        return Err(format!(
            "{here}: expected tag {}, got {}",
            expected.tag, actual.tag
        ));
    }
    match (&expected.value, &actual.value) {
        (Value::Structure(e), Value::Structure(a)) => {
            if e.len() != a.len() {
                let names = |v: &Vec<Ttlv>| {
                    v.iter()
                        .map(|t| t.tag.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                return Err(format!(
                    "{here}: expected [{}], got [{}]",
                    names(e),
                    names(a)
                ));
            }
            for (x, y) in e.iter().zip(a) {
                compare(x, y, ids, bytes, random, &here)?;
            }
            Ok(())
        }
        (Value::TextString(e), Value::TextString(a)) if e.starts_with("$UNIQUE_IDENTIFIER") => {
            match ids.get(e) {
                Some(known) if known != a => Err(format!("{here}: {e} is {known}, got {a}")),
                Some(_) => Ok(()),
                None => {
                    ids.insert(e.clone(), a.clone());
                    Ok(())
                }
            }
        }
        _ if expected.tag == Tag::RESULT_MESSAGE => Ok(()),
        (Value::DateTime(_), Value::DateTime(_)) => Ok(()),
        (Value::ByteString(e), Value::ByteString(a)) if e.starts_with(WILDCARD) => {
            // A value the server chose (IV, ciphertext of a random IV...): remembered for the
            // requests that send it back, which mean the latest one (a test case reuses the
            // name `$IV_COUNTER_NONCE` for each random IV it is given).
            if let Some(name) = placeholder_name(e) {
                bytes.insert(name, a.clone());
            }
            Ok(())
        }
        (Value::ByteString(e), Value::ByteString(a)) if e == a => {
            bytes.insert(format!("field:{}", expected.tag), a.clone());
            Ok(())
        }
        (Value::Integer(i32::MIN), Value::Integer(_))
        | (Value::LongInteger(i64::MIN), Value::LongInteger(_)) => Ok(()),
        (Value::TextString(e), Value::TextString(_)) if e.starts_with('$') => Ok(()),
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{here}: expected {e:?}, got {a:?}")),
    }
}

fn find_all<'a>(t: &'a Ttlv, tag: Tag, out: &mut Vec<&'a Ttlv>) {
    if t.tag == tag {
        out.push(t);
    }
    if let Ok(children) = t.children() {
        for c in children {
            find_all(c, tag, out);
        }
    }
}

/// Keys created by the server have random material: what is computed from them is not compared.
/// RSA encryption (OAEP, PKCS#1 v1.5) is randomized: what a registered public key encrypts
/// differs on every run, so it is not compared either. (The decryption test cases check the
/// server against the test cases' own ciphertexts.)
fn remember_public_keys(request: &Ttlv, response: &Ttlv, random_keys: &mut Vec<String>) {
    let mut objects = Vec::new();
    find_all(request, Tag::PUBLIC_KEY, &mut objects);
    if objects.is_empty() {
        return;
    }
    let mut items = Vec::new();
    find_all(response, Tag::BATCH_ITEM, &mut items);
    for item in items {
        // Register (0x03) of a public key.
        if item.child(Tag::OPERATION).and_then(|o| o.as_enum().ok()) == Some(3) {
            let mut uids = Vec::new();
            find_all(item, Tag::UNIQUE_IDENTIFIER, &mut uids);
            random_keys.extend(
                uids.iter()
                    .filter_map(|u| u.as_str().ok().map(str::to_owned)),
            );
        }
    }
}

fn remember_created(response: &Ttlv, random_keys: &mut Vec<String>) {
    let mut items = Vec::new();
    find_all(response, Tag::BATCH_ITEM, &mut items);
    for item in items {
        let op = item.child(Tag::OPERATION).and_then(|o| o.as_enum().ok());
        if matches!(op, Some(1) | Some(2)) {
            let mut uids = Vec::new();
            for tag in [
                Tag::UNIQUE_IDENTIFIER,
                Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER,
                Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER,
            ] {
                find_all(item, tag, &mut uids);
            }
            random_keys.extend(
                uids.iter()
                    .filter_map(|u| u.as_str().ok().map(str::to_owned)),
            );
        }
    }
}

fn uses_random_key(request: &Ttlv, random_keys: &[String]) -> bool {
    let mut items = Vec::new();
    find_all(request, Tag::BATCH_ITEM, &mut items);
    items.iter().any(|item| {
        // RNGRetrieve (0x25) answers random bytes; RandomIV makes the server choose the IV.
        if item.child(Tag::OPERATION).and_then(|o| o.as_enum().ok()) == Some(0x25) {
            return true;
        }
        let mut random_iv = Vec::new();
        find_all(item, Tag::RANDOM_IV, &mut random_iv);
        if random_iv.iter().any(|r| r.as_bool().is_ok_and(|b| b)) {
            return true;
        }
        let mut uids = Vec::new();
        find_all(item, Tag::UNIQUE_IDENTIFIER, &mut uids);
        // An operation without identifier works on the batch's previous object: a created key
        // when the batch created one.
        uids.is_empty() && !random_keys.is_empty()
            || uids
                .iter()
                .any(|u| u.as_str().is_ok_and(|s| random_keys.iter().any(|k| k == s)))
    })
}

#[derive(Clone, Copy)]
enum Encoding {
    Binary,
    Json,
    Xml,
}

/// How a run reaches the server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// `POST /kmip`, binary TTLV (or the MSGENC case's own encoding).
    Http,
    /// `POST /kmip`, JSON TTLV.
    HttpJson,
    /// The KMIP socket, binary TTLV over mutual TLS.
    Socket,
}

async fn run_file(path: &std::path::Path, transport: Transport) -> Result<(), String> {
    let json = transport == Transport::HttpJson;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let encoding = if name.starts_with("MSGENC-JSON") || json {
        Encoding::Json
    } else if name.starts_with("MSGENC-XML") {
        Encoding::Xml
    } else {
        Encoding::Binary
    };
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let messages =
        kmip::xml::parse_document(&text, &mut Wildcards).map_err(|e| format!("parse: {e}"))?;
    let tls_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (server, mut socket) = if transport == Transport::Socket {
        let pki = common::socket::pki(tls_dir.path());
        let server = TestServer::builder()
            .https(
                tls_dir.path().join("kms.p12"),
                "pw",
                Some(tls_dir.path().join("ca.pem")),
            )
            .socket()
            .start()
            .await;
        let addr = server
            .server
            .socket
            .as_ref()
            .map(|s| s.addr)
            .ok_or("no socket")?;
        let stream = common::socket::connect(addr, pki.client_config(Some("admin")))
            .await
            .map_err(|e| e.to_string())?;
        (server, Some(stream))
    } else {
        (TestServer::builder().start().await, None)
    };
    let http = reqwest::Client::new();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut random_keys: Vec<String> = Vec::new();
    let mut captured: HashMap<String, Vec<u8>> = HashMap::new();
    let mut result = Ok(());
    for (step, pair) in messages.chunks(2).enumerate() {
        let [request, expected] = pair else { break };
        let mut request = request.clone();
        substitute(&mut request, &ids, &captured);
        let random = uses_random_key(&request, &random_keys);
        // The message-encoding test cases go in their encoding; the others in binary TTLV.
        let (content_type, body) = match encoding {
            Encoding::Json => (
                "application/json",
                kmip::json::to_string(&request).into_bytes(),
            ),
            Encoding::Xml => ("text/xml", kmip::xml::to_string(&request).into_bytes()),
            Encoding::Binary => ("application/octet-stream", binary::encode(&request)),
        };
        let bytes = match socket.as_mut() {
            Some(stream) => common::socket::exchange(stream, &body)
                .await
                .map_err(|e| format!("step {step}: {e}"))?,
            None => {
                let response = http
                    .post(format!("{}/kmip", server.url))
                    .header("content-type", content_type)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                response.bytes().await.map_err(|e| e.to_string())?.to_vec()
            }
        };
        let decoded = match encoding {
            Encoding::Json => kmip::json::from_slice(&bytes),
            Encoding::Xml => kmip::xml::from_str(&String::from_utf8_lossy(&bytes)),
            Encoding::Binary => binary::decode(&bytes, &binary::Limits::default()),
        };
        let mut actual = decoded.map_err(|e| format!("step {step}: {e}"))?;
        let mut expected = expected.clone();
        strip_correlation(&mut expected);
        strip_correlation(&mut actual);
        let compared = compare(&expected, &actual, &mut ids, &mut captured, random, "");
        remember_created(&actual, &mut random_keys);
        remember_public_keys(&request, &actual, &mut random_keys);
        if let Err(e) = compared {
            let mut messages = Vec::new();
            find_all(&actual, Tag::RESULT_MESSAGE, &mut messages);
            let said: Vec<&str> = messages.iter().filter_map(|m| m.as_str().ok()).collect();
            result = Err(format!("step {step}: {e} (server said: {said:?})"));
            break;
        }
    }
    server.server.stop().await;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oasis_vectors_against_the_server() {
    let dir = vectors_dir();
    let mut files = Vec::new();
    for sub in ["v2.1/mandatory", "v1.4/mandatory"] {
        let d = dir.join(sub);
        for e in
            std::fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot read {}: {e}", d.display()))
        {
            let p = e.expect("entry").path();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.ends_with(".xml") && profile_of(&name).is_some() {
                files.push((name, p));
            }
        }
    }
    files.sort();
    let mut per_profile: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut passing = Vec::new();
    let mut failures = Vec::new();
    // Each test case in binary TTLV, then again in JSON TTLV (the MSGENC cases are in their
    // own encoding once), then in binary over the KMIP socket; a JSON run is listed as
    // `NAME json`, a socket run as `NAME socket`.
    let runs = files.iter().flat_map(|(name, path)| {
        let others = (!name.starts_with("MSGENC"))
            .then(|| {
                [
                    (format!("{name} json"), path, Transport::HttpJson),
                    (format!("{name} socket"), path, Transport::Socket),
                ]
            })
            .into_iter()
            .flatten();
        std::iter::once((name.clone(), path, Transport::Http)).chain(others)
    });
    for (name, path, transport) in runs {
        let profile = profile_of(&name).unwrap_or("?");
        let entry = per_profile.entry(profile).or_default();
        entry.1 += 1;
        match run_file(path, transport).await {
            Ok(()) => {
                entry.0 += 1;
                passing.push(name.clone());
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    for (profile, (ok, total)) in &per_profile {
        println!("profile {profile:<8} {ok:>3} / {total:<3} passed");
    }
    let ok: usize = per_profile.values().map(|v| v.0).sum();
    let total: usize = per_profile.values().map(|v| v.1).sum();
    println!(
        "vectors: {ok} / {total} runs passed (binary and JSON over HTTP, binary over the socket)"
    );
    // Over the socket exactly the cases that pass in binary over HTTP.
    let differing: Vec<&String> = files
        .iter()
        .map(|(name, _)| name)
        .filter(|name| !name.starts_with("MSGENC"))
        .filter(|name| passing.contains(*name) != passing.contains(&format!("{name} socket")))
        .collect();
    assert!(
        differing.is_empty(),
        "the socket and HTTP disagree on {differing:?}"
    );
    for f in &failures {
        println!("FAIL {}", f.chars().take(400).collect::<String>());
    }
    let expected_file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors-passing.txt");
    if std::env::var_os("UPDATE_VECTORS_PASSING").is_some() {
        std::fs::write(&expected_file, passing.join("\n") + "\n").expect("write list");
    }
    let expected = expected_passing(&expected_file).unwrap_or_else(|e| panic!("{e}"));
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    let regressions = regressions(&expected, &passing);
    assert!(
        regressions.is_empty(),
        "test cases that passed before now fail: {regressions:?}"
    );
    // The list can only grow: a case passing without being listed fails the test too, so that
    // the list always says exactly what passes.
    let unlisted: Vec<&String> = passing
        .iter()
        .filter(|p| !expected.contains(&p.as_str()))
        .collect();
    for new in &unlisted {
        println!(
            "NEWLY PASSING {new}: add it to tests/vectors-passing.txt (UPDATE_VECTORS_PASSING=1)"
        );
    }
    assert!(
        unlisted.is_empty(),
        "test cases pass that tests/vectors-passing.txt does not list: {unlisted:?}; run with UPDATE_VECTORS_PASSING=1"
    );
}

/// The test cases that must keep passing. A missing or empty list is an error: the regression
/// check would otherwise check nothing.
fn expected_passing(path: &std::path::Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "{} cannot be read ({e}): the regression check needs it",
            path.display()
        )
    })?;
    let list: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if list.is_empty() {
        return Err(format!(
            "{} lists no test case: the regression check would check nothing",
            path.display()
        ));
    }
    Ok(list)
}

/// The listed test cases that no longer pass.
fn regressions<'a>(expected: &[&'a str], passing: &[String]) -> Vec<&'a str> {
    expected
        .iter()
        .copied()
        .filter(|l| !passing.iter().any(|p| p == l))
        .collect()
}

#[test]
fn a_missing_or_empty_list_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("vectors-passing.txt");
    assert!(expected_passing(&missing).is_err());
    std::fs::write(&missing, "\n \n").unwrap();
    assert!(expected_passing(&missing).is_err());
    std::fs::write(&missing, "A.xml\n").unwrap();
    assert_eq!(expected_passing(&missing).unwrap(), ["A.xml"]);
}

#[test]
fn a_listed_case_that_fails_is_a_regression() {
    let passing = vec!["A.xml".to_owned()];
    assert_eq!(regressions(&["A.xml", "B.xml"], &passing), ["B.xml"]);
    assert!(regressions(&["A.xml"], &passing).is_empty());
}
