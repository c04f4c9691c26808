//! Every OASIS KMIP 2.1 and 1.4 mandatory test case parses, and every message in them converts
//! XML -> typed -> binary -> typed -> XML (and JSON) without loss.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use std::path::PathBuf;

use kmip::model::{RequestMessage, ResponseMessage};
use kmip::xml::Resolver;
use kmip::{DateTime, ItemType, Tag, Ttlv, Value, binary, json, v1, xml};

/// Deterministic values for the test cases' placeholders.
struct Fixed;

impl Resolver for Fixed {
    fn resolve(&mut self, _: Tag, item_type: ItemType, placeholder: &str) -> Option<Value> {
        let seed: Vec<u8> = placeholder.bytes().collect();
        Some(match item_type {
            ItemType::DateTime => Value::DateTime(DateTime(1_700_000_000)),
            ItemType::ByteString => Value::ByteString(seed),
            ItemType::Integer => Value::Integer(seed.len() as i32),
            ItemType::LongInteger => Value::LongInteger(seed.len() as i64),
            ItemType::Interval => Value::Interval(seed.len() as u32),
            ItemType::Boolean => Value::Boolean(true),
            ItemType::Enumeration => Value::Enumeration(1),
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

fn round_trip(original: &Ttlv) -> Result<(), String> {
    let version = v1::message_version(original).ok_or("no protocol version")?;
    let is_request = original.tag == Tag::REQUEST_MESSAGE;
    let shaped = match (version.0, is_request) {
        (1, true) => v1::request_to_v2(original.clone()).map_err(|e| e.to_string())?,
        (1, false) => v1::response_to_v2(original.clone()).map_err(|e| e.to_string())?,
        _ => original.clone(),
    };
    let back = if is_request {
        let typed = RequestMessage::decode(&shaped).map_err(|e| format!("typed: {e}"))?;
        let bytes = binary::encode(&typed.encode());
        let tree = binary::decode(&bytes, &binary::Limits::default())
            .map_err(|e| format!("binary: {e}"))?;
        let again = RequestMessage::decode(&tree).map_err(|e| format!("typed again: {e}"))?;
        if again != typed {
            return Err("typed value changed through binary".into());
        }
        again.encode()
    } else {
        let typed = ResponseMessage::decode(&shaped).map_err(|e| format!("typed: {e}"))?;
        let bytes = binary::encode(&typed.encode());
        let tree = binary::decode(&bytes, &binary::Limits::default())
            .map_err(|e| format!("binary: {e}"))?;
        let again = ResponseMessage::decode(&tree).map_err(|e| format!("typed again: {e}"))?;
        if again != typed {
            return Err("typed value changed through binary".into());
        }
        again.encode()
    };
    let json_back = json::from_str(&json::to_string(&back)).map_err(|e| format!("json: {e}"))?;
    // JSON writes the instances of one attribute together, in their order.
    if json_back != json::as_written(&back) {
        return Err("JSON round trip changed the message".into());
    }
    let back = match (version.0, is_request) {
        (1, true) => v1::request_to_v1(back, version.1).map_err(|e| e.to_string())?,
        (1, false) => v1::response_to_v1(back, version.1).map_err(|e| e.to_string())?,
        _ => back,
    };
    let text = xml::to_string(&back);
    let reparsed = xml::parse_document(&text, &mut Fixed).map_err(|e| format!("xml: {e}"))?;
    if reparsed.len() != 1 || reparsed[0] != *original {
        return Err(format!(
            "XML differs after the round trip:\n{}\nvs original\n{}",
            text,
            xml::to_string(original)
        ));
    }
    Ok(())
}

#[test]
fn oasis_vectors_round_trip() {
    let dir = vectors_dir();
    let mut files = Vec::new();
    for sub in ["v2.1/mandatory", "v1.4/mandatory"] {
        let d = dir.join(sub);
        let entries =
            std::fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot read {}: {e}", d.display()));
        for e in entries {
            let p = e.expect("directory entry").path();
            if p.extension().is_some_and(|x| x == "xml") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert_eq!(
        files.len(),
        154,
        "expected the 154 mandatory test case files"
    );
    let mut messages = 0;
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read vector");
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let items = match xml::parse_document(&text, &mut Fixed) {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!("{name}: parse: {e}"));
                continue;
            }
        };
        for (i, m) in items.iter().enumerate() {
            messages += 1;
            if let Err(e) = round_trip(m) {
                failures.push(format!("{name} message {i}: {e}"));
            }
        }
    }
    println!(
        "checked {} files, {} messages, {} failures",
        files.len(),
        messages,
        failures.len()
    );
    for f in failures.iter().take(15) {
        println!("FAIL {f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {messages} messages failed",
        failures.len()
    );
}
