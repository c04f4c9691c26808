//! `redis-findex` through the HTTP API on the real Redis: after keys with names, tags, grants and
//! known key bytes are created, nothing in Redis (keys or values) shows an identifier, a tag, a
//! name, a user name or the key bytes, raw, hex or base64.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

mod common;

use base64::Engine;
use common::TestServer;
use kmip::model::*;
use kmip::{CryptographicAlgorithm, ObjectType};
use kms_client::KmsClient;
use kms_store::Backend;
use kms_store::redis::testing::TestRedis;

const OWNER: &str = "owner-narwhal";
const GRANTEE: &str = "grantee-okapi";

fn encodings(secret: &[u8]) -> Vec<Vec<u8>> {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let mut out = vec![
        secret.to_vec(),
        hex.clone().into_bytes(),
        hex.to_uppercase().into_bytes(),
    ];
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        let b = engine.encode(secret);
        // Base64 of a value depends on its alignment inside a longer one: the aligned form
        // without its padding is what would show.
        out.push(b.trim_end_matches('=').as_bytes().to_vec());
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sees_no_identifier_tag_name_user_or_key_in_clear() {
    let redis = TestRedis::new().await.unwrap();
    let server = TestServer::builder()
        .user(OWNER)
        .database(Backend::RedisFindex(redis.settings.clone()))
        .start()
        .await;
    let client = KmsClient::with_url(&server.url).unwrap();
    let key_bytes: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let mut secrets: Vec<(String, Vec<u8>)> = vec![
        ("owner".into(), OWNER.into()),
        ("grantee".into(), GRANTEE.into()),
        ("key bytes".into(), key_bytes.clone()),
    ];
    let mut uids = Vec::new();
    for i in 0..5 {
        let tag = format!("tag-zebra-{i}42");
        let name = format!("name-walrus-{i}73");
        let attributes = Attributes(vec![Attribute::Name(Name {
            name_value: name.clone(),
            name_type: kmip::NameType::UninterpretedTextString,
        })])
        .with_user_tags(&[&tag]);
        let r = client
            .send(RequestPayload::Register(Register {
                object_type: ObjectType::SymmetricKey,
                attributes,
                object: Object::symmetric_key(CryptographicAlgorithm::AES, 256, key_bytes.clone()),
                protection_storage_masks: None,
            }))
            .await
            .unwrap();
        let ResponsePayload::Register(UidResponse { unique_identifier }) = r else {
            panic!("{r:?}")
        };
        let uid = unique_identifier.as_text().unwrap().to_owned();
        client
            .access(
                "/access/grant",
                Some(serde_json::json!({
                    "unique_identifier": uid, "user_id": GRANTEE, "operation_types": ["get", "encrypt"]
                })),
            )
            .await
            .unwrap();
        secrets.push((format!("tag {i}"), tag.into_bytes()));
        secrets.push((format!("name {i}"), name.into_bytes()));
        secrets.push((format!("uid {i}"), uid.clone().into_bytes()));
        uids.push(uid);
    }
    // The API still finds them by tag, by name and for the grantee.
    let located = client
        .call(Locate::matching(Attributes(vec![Attribute::Name(Name {
            name_value: "name-walrus-373".into(),
            name_type: kmip::NameType::UninterpretedTextString,
        })])))
        .await
        .unwrap();
    assert_eq!(located.unique_identifier.len(), 1);
    assert_eq!(
        located.unique_identifier[0].as_text(),
        Some(uids[3].as_str())
    );

    let dump = redis.dump().await.unwrap();
    assert!(dump.len() > 10, "the objects and index are in Redis");
    // The scan sees values: the public label is stored in clear, and it finds it.
    let label = redis.settings.label.as_bytes();
    assert!(
        dump.iter()
            .any(|(_, values)| values.iter().any(|v| contains(v, label))),
        "the scan reads values"
    );
    let mut seen = Vec::new();
    for (what, secret) in &secrets {
        for form in encodings(secret) {
            for (key, values) in &dump {
                if contains(key, &form) || values.iter().any(|v| contains(v, &form)) {
                    seen.push(format!("{what} ({})", String::from_utf8_lossy(&form)));
                }
            }
        }
    }
    assert!(seen.is_empty(), "found in Redis in clear: {seen:?}");
    server.server.stop().await;
    redis.drop_now().await.unwrap();
}
