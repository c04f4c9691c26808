//! Replays every OASIS KMIP 2.1 and 1.4 mandatory test case against a running server, three
//! ways (binary TTLV on `POST /kmip`, JSON TTLV on `POST /kmip/2_1` for the 2.1 cases and
//! `/kmip` for the 1.4 ones, binary TTLV over the KMIP socket), and compares every response
//! with the expected one. Per profile and per version the test prints passed / total;
//! `KNOWN_FAILURES` lists what fails and why, and can only shrink.
//!
//! `$UNIQUE_IDENTIFIER_n` placeholders are captured from responses and substituted in later
//! requests. What is not compared, and why it may differ between two correct servers:
//! - dates and time stamps (the clock);
//! - result messages (free text) and the correlation values of response headers (optional);
//! - every other `$...` placeholder of a response: values the server chooses (identifiers,
//!   IVs, random bytes);
//! - data, MACs, tags, IVs, digests and key material computed from a key the server generated,
//!   from an IV it chose (`RandomIV` in the request or in the key's own parameters), or from a
//!   randomized RSA encryption: a literal value there is the test case's server's random choice;
//! - the content of `RandomNumberGenerator` (each server's own generator);
//! - the lists of a successful Query answer (they describe the server that answered: its
//!   operations, object types, vendor, server information); our answer must list operations and
//!   object types where the test case's does;
//! - the value of `Lease Time` (the server's lease policy);
//! - the order of attributes in `Attributes` and of attribute names in GetAttributeList answers,
//!   which the specification does not fix; the sets and each value are compared.

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

/// The test case's profile: its name up to `-M-` (`CS-BC`, `SKFF`, `MSGENC-JSON`...).
fn profile_of(name: &str) -> &str {
    name.split("-M-").next().unwrap_or(name)
}

/// The specification version a test case is written for: the directory it comes from.
fn version_of(path: &std::path::Path) -> String {
    path.components()
        .rev()
        .nth(2)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The test cases that fail, each with the reason. An entry names a file (every run of it) or
/// one run (`NAME json`, `NAME socket`). A listed run that passes fails the test, as does an
/// unlisted run that fails: the list says exactly what fails, and can only shrink.
const KNOWN_FAILURES: &[(&str, &str)] = &[
    (
        "PKCS11-M-1-21.xml",
        "it needs the PKCS#11 operation (PKCS#11 calls carried in KMIP messages), which the server does not implement",
    ),
    (
        "TL-M-3-14.xml",
        "the test case contradicts itself: its GetAttributeList (step 4) lists Sensitive, Always \
         Sensitive, Extractable and Never Extractable, its GetAttributes of every attribute (step 2) \
         leaves them out, and the 2.1 version of the case has them in both; this server answers both \
         with the same set",
    ),
];

/// Why `run` is expected to fail, if it is.
fn known_failure(run: &str) -> Option<&'static str> {
    let file = run.split(' ').next().unwrap_or(run);
    KNOWN_FAILURES
        .iter()
        .find(|(name, _)| *name == run || *name == file)
        .map(|(_, why)| *why)
}

/// What is wrong with a replay's results against the list of known failures.
fn verdicts(results: &[(String, Result<(), String>)]) -> Vec<String> {
    let mut wrong = Vec::new();
    for (run, result) in results {
        match (result, known_failure(run)) {
            (Ok(()), Some(why)) => wrong.push(format!(
                "{run} now passes: remove it from KNOWN_FAILURES (listed because {why})"
            )),
            (Err(e), None) => wrong.push(format!(
                "{run} fails: {}",
                e.chars().take(400).collect::<String>()
            )),
            _ => {}
        }
    }
    // An entry matching no run is stale too.
    for (name, _) in KNOWN_FAILURES {
        let matches = |run: &String| run == name || run.split(' ').next() == Some(*name);
        if !results.iter().any(|(run, _)| matches(run)) {
            wrong.push(format!(
                "KNOWN_FAILURES names {name}, which is not replayed"
            ));
        }
    }
    wrong
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

/// A Query answer describes the server that answered: its operations, object types, vendor,
/// server information and capabilities. The test case's answer lists its own server's, so a
/// successful Query is checked for operations and object types, not for the same lists.
fn accept_own_query(expected: &mut Ttlv, actual: &Ttlv) -> Result<(), String> {
    let (Value::Structure(e), Ok(a)) = (&mut expected.value, actual.children()) else {
        return Ok(());
    };
    let actual_items: Vec<&Ttlv> = a.iter().filter(|c| c.tag == Tag::BATCH_ITEM).collect();
    for (i, item) in e
        .iter_mut()
        .filter(|c| c.tag == Tag::BATCH_ITEM)
        .enumerate()
    {
        let is_query = item.child(Tag::OPERATION).and_then(|o| o.as_enum().ok()) == Some(0x18);
        let Some(theirs) = item.child(Tag::RESPONSE_PAYLOAD).filter(|_| is_query) else {
            continue;
        };
        let lists = |p: &Ttlv, tag: Tag| {
            p.children()
                .map(|c| c.iter().filter(|x| x.tag == tag).count())
                .unwrap_or(0)
        };
        let ours = actual_items
            .get(i)
            .and_then(|a| a.child(Tag::RESPONSE_PAYLOAD))
            .ok_or("Query answered no payload")?;
        for tag in [Tag::OPERATION, Tag::OBJECT_TYPE] {
            if lists(theirs, tag) > 0 && lists(ours, tag) == 0 {
                return Err(format!("Query answered no {tag}"));
            }
        }
        let ours = ours.clone();
        if let Value::Structure(fields) = &mut item.value {
            for f in fields.iter_mut().filter(|f| f.tag == Tag::RESPONSE_PAYLOAD) {
                *f = ours.clone();
            }
        }
    }
    Ok(())
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
        if let (Value::ByteString(e), Value::ByteString(a)) = (&expected.value, &actual.value) {
            if let Some(name) = placeholder_name(e) {
                bytes.insert(name, a.clone());
            }
            // A literal value the test case's server chose (its random IV, the ciphertext under
            // it) is what a later `$DATA_0` or `$IV_COUNTER_NONCE` means: this server's own.
            bytes.insert(format!("field:{}", expected.tag), a.clone());
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
    // The lease is the server's policy (the test cases' server granted an hour; this one grants
    // no shorter lease than unlimited).
    let lease = |t: &Ttlv| {
        t.tag == Tag::LEASE_TIME
            || t.tag == Tag::ATTRIBUTE
                && t.child(Tag::ATTRIBUTE_NAME)
                    .and_then(|n| n.as_str().ok())
                    .is_some_and(|n| n == "Lease Time")
    };
    if lease(expected) && lease(actual) {
        return Ok(());
    }
    if expected.tag != actual.tag {
        return Err(format!(
            "{here}: expected tag {}, got {}",
            expected.tag, actual.tag
        ));
    }
    match (&expected.value, &actual.value) {
        (Value::Structure(e), Value::Structure(a)) if is_attribute_list(e) => {
            // GetAttributeList: the specification gives the list no order.
            let uid = |v: &Vec<Ttlv>| v.iter().find(|t| t.tag == Tag::UNIQUE_IDENTIFIER).cloned();
            if let (Some(x), Some(y)) = (uid(e), uid(a)) {
                compare(&x, &y, ids, bytes, random, &here)?;
            }
            let names = |v: &Vec<Ttlv>| {
                let mut n: Vec<String> = v
                    .iter()
                    .filter(|t| t.tag != Tag::UNIQUE_IDENTIFIER)
                    .map(reference_name)
                    .collect();
                n.sort();
                n
            };
            let (e, a) = (names(e), names(a));
            if e == a {
                return Ok(());
            }
            let missing: Vec<&String> = e.iter().filter(|n| !a.contains(n)).collect();
            let extra: Vec<&String> = a.iter().filter(|n| !e.contains(n)).collect();
            Err(format!(
                "{here}: attribute list lacks {missing:?} and has {extra:?} too"
            ))
        }
        (Value::Structure(e), Value::Structure(a)) => {
            // Attributes have no order (KMIP 2.1 §2.1.1, §7.2): both sides are compared sorted
            // by attribute, each attribute's instances in the order given.
            let (e, a) = if is_attribute_set(expected) {
                (by_attribute(e), by_attribute(a))
            } else {
                (e.iter().collect(), a.iter().collect())
            };
            if e.len() != a.len() {
                let names = |v: &Vec<&Ttlv>| {
                    v.iter()
                        .map(|t| match t.child(Tag::ATTRIBUTE_NAME).map(Ttlv::as_str) {
                            Some(Ok(name)) => format!("{}({name})", t.tag),
                            _ => t.tag.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                };
                return Err(format!(
                    "{here}: expected [{}], got [{}]",
                    names(&e),
                    names(&a)
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

/// `Attributes` (2.x), or a 1.x payload listing attributes.
fn is_attribute_set(t: &Ttlv) -> bool {
    t.tag == Tag::ATTRIBUTES
        || t.children()
            .is_ok_and(|c| c.iter().filter(|x| x.tag == Tag::ATTRIBUTE).count() > 1)
}

/// The attributes sorted by name (a 1.x `Attribute` and a vendor attribute by the name they
/// carry), keeping the order of an attribute's instances.
fn by_attribute(items: &[Ttlv]) -> Vec<&Ttlv> {
    let key = |t: &Ttlv| {
        let named = t
            .child(Tag::ATTRIBUTE_NAME)
            .and_then(|n| n.as_str().ok())
            .unwrap_or_default()
            .to_owned();
        (t.tag.to_string(), named)
    };
    let mut sorted: Vec<&Ttlv> = items.iter().collect();
    sorted.sort_by_key(|t| key(t));
    sorted
}

/// A GetAttributeList answer: a unique identifier and attribute names or references.
fn is_attribute_list(children: &[Ttlv]) -> bool {
    let is_name = |t: &Ttlv| t.tag == Tag::ATTRIBUTE_NAME || t.tag == Tag::ATTRIBUTE_REFERENCE;
    children.iter().any(is_name)
        && children
            .iter()
            .all(|t| is_name(t) || t.tag == Tag::UNIQUE_IDENTIFIER)
}

/// An attribute name (1.x), reference (2.x, a tag) or vendor reference, as text.
fn reference_name(t: &Ttlv) -> String {
    match &t.value {
        Value::TextString(s) => s.clone(),
        Value::Enumeration(e) => Tag(*e).to_string(),
        Value::Structure(c) => c
            .iter()
            .filter_map(|x| x.as_str().ok())
            .collect::<Vec<_>>()
            .join("/"),
        other => format!("{other:?}"),
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

/// A key registered or created with `RandomIV` in its own Cryptographic Parameters makes the
/// server choose the IV of every encryption that does not give one: what those encryptions
/// answer is random, as with `RandomIV` in the request.
fn remember_random_iv_keys(request: &Ttlv, response: &Ttlv, random_keys: &mut Vec<String>) {
    let mut flags = Vec::new();
    find_all(request, Tag::RANDOM_IV, &mut flags);
    if !flags.iter().any(|f| f.as_bool().is_ok_and(|b| b)) {
        return;
    }
    let mut items = Vec::new();
    find_all(response, Tag::BATCH_ITEM, &mut items);
    for item in items {
        // Create (0x01) or Register (0x03).
        if matches!(
            item.child(Tag::OPERATION).and_then(|o| o.as_enum().ok()),
            Some(1 | 3)
        ) {
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
    // A Create in the batch makes the key its later items work on.
    let creates = items.iter().any(|item| {
        matches!(
            item.child(Tag::OPERATION).and_then(|o| o.as_enum().ok()),
            Some(1 | 2)
        )
    });
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
        uids.is_empty() && (creates || !random_keys.is_empty())
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

/// Test cases that continue an earlier one (the objects they locate are the earlier one's), as
/// the profiles' documents run them: the earlier file, from the same directory.
const CONTINUATIONS: &[(&str, &str)] = &[("SASED-M-3-", "SASED-M-2-"), ("TL-M-3-", "TL-M-2-")];

fn continued(path: &std::path::Path) -> Vec<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    CONTINUATIONS
        .iter()
        .filter_map(|(later, earlier)| {
            name.strip_prefix(later)
                .map(|version| path.with_file_name(format!("{earlier}{version}")))
        })
        .collect()
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
    // A test case that continues an earlier one runs after it, on the same server.
    let mut scripts = Vec::new();
    for file in continued(path).iter().chain([&path.to_path_buf()]) {
        let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
        scripts.push(
            kmip::xml::parse_document(&text, &mut Wildcards).map_err(|e| format!("parse: {e}"))?,
        );
    }
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
    let mut result = Ok(());
    let last = scripts.len() - 1;
    // The keys the server made stay random in a test case that continues another.
    let mut random_keys: Vec<String> = Vec::new();
    'scripts: for (n, messages) in scripts.iter().enumerate() {
        let mut ids: HashMap<String, String> = HashMap::new();
        let mut captured: HashMap<String, Vec<u8>> = HashMap::new();
        let earlier = if n == last {
            ""
        } else {
            "the test case it continues, "
        };
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
                    // JSON TTLV of the 2.1 test cases goes to Cosmian's JSON route.
                    let route = if json && version_of(path) == "v2.1" {
                        "kmip/2_1"
                    } else {
                        "kmip"
                    };
                    let response = http
                        .post(format!("{}/{route}", server.url))
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
            let compared = accept_own_query(&mut expected, &actual)
                .and_then(|()| compare(&expected, &actual, &mut ids, &mut captured, random, ""));
            remember_created(&actual, &mut random_keys);
            remember_public_keys(&request, &actual, &mut random_keys);
            remember_random_iv_keys(&request, &actual, &mut random_keys);
            if let Err(e) = compared {
                let mut messages = Vec::new();
                find_all(&actual, Tag::RESULT_MESSAGE, &mut messages);
                let said: Vec<&str> = messages.iter().filter_map(|m| m.as_str().ok()).collect();
                result = Err(format!("{earlier}step {step}: {e} (server said: {said:?})"));
                break 'scripts;
            }
        }
    }
    server.server.stop().await;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oasis_vectors_against_the_server() {
    let dir = vectors_dir();
    // `KMIP_VECTORS_ONLY=SKFF-M-9` replays the matching test cases alone, while working on them.
    let only = std::env::var("KMIP_VECTORS_ONLY").ok();
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
            if name.ends_with(".xml") && only.as_ref().is_none_or(|o| name.contains(o.as_str())) {
                files.push((name, p));
            }
        }
    }
    files.sort();
    assert!(
        only.is_some() || files.len() > 100,
        "only {} test cases under {}",
        files.len(),
        dir.display()
    );
    // Each test case in binary TTLV, then again in JSON TTLV (on `/kmip/2_1` for the 2.1 cases;
    // the MSGENC cases are in their own encoding once), then in binary over the KMIP socket; a
    // JSON run is named `NAME json`, a socket run `NAME socket`.
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
    let mut per_profile: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut per_version: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut results = Vec::new();
    for (name, path, transport) in runs {
        let result = run_file(path, transport).await;
        for (key, map) in [
            (profile_of(&name).to_owned(), &mut per_profile),
            (version_of(path), &mut per_version),
        ] {
            let entry = map.entry(key).or_default();
            entry.0 += usize::from(result.is_ok());
            entry.1 += 1;
        }
        results.push((name, result));
    }
    for (profile, (ok, total)) in &per_profile {
        println!("profile {profile:<12} {ok:>3} / {total:<3} passed");
    }
    for (version, (ok, total)) in &per_version {
        println!("version {version:<12} {ok:>3} / {total:<3} passed");
    }
    let ok = results.iter().filter(|r| r.1.is_ok()).count();
    println!(
        "vectors: {ok} / {} runs passed (binary and JSON over HTTP, binary over the socket)",
        results.len()
    );
    for (run, result) in &results {
        if let Err(e) = result {
            let why = known_failure(run).unwrap_or("NOT LISTED");
            let limit = if only.is_some() { 100_000 } else { 300 };
            println!(
                "FAIL {run} [{why}]: {}",
                e.chars().take(limit).collect::<String>()
            );
        }
    }
    // Over the socket exactly the cases that pass in binary over HTTP.
    let passed = |run: &str| results.iter().any(|(r, res)| r == run && res.is_ok());
    let differing: Vec<&String> = files
        .iter()
        .map(|(name, _)| name)
        .filter(|name| !name.starts_with("MSGENC"))
        .filter(|name| passed(name) != passed(&format!("{name} socket")))
        .collect();
    assert!(
        differing.is_empty(),
        "the socket and HTTP disagree on {differing:?}"
    );
    if only.is_some() {
        return;
    }
    let wrong = verdicts(&results);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_list_of_known_failures_only_shrinks() {
    // Every listed entry is matched by the runs of its file, and a listed run that passes, or an
    // unlisted one that fails, is reported.
    if let Some((name, _)) = KNOWN_FAILURES.first() {
        let passing = vec![((*name).to_owned(), Ok(()))];
        assert!(verdicts(&passing)[0].contains("now passes"));
    }
    let failing = vec![("NOT-A-CASE.xml".to_owned(), Err("boom".to_owned()))];
    assert!(
        verdicts(&failing)
            .iter()
            .any(|v| v.contains("NOT-A-CASE.xml fails"))
    );
    let names: Vec<&str> = KNOWN_FAILURES.iter().map(|k| k.0).collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(names.len(), unique.len(), "an entry is listed twice");
    assert!(KNOWN_FAILURES.iter().all(|(_, why)| !why.is_empty()));
}
