//! The KMS core in process, on a real SQLite store: rules that do not depend on the transport
//! (wrapped key requests, usage limits counted only on success, batch and response limits, the
//! Undo journal).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use std::sync::Arc;

use kmip::model::*;
use kmip::{
    BatchErrorContinuationOption, CryptographicAlgorithm, KeyWrapType, ObjectType, ResultReason,
    ResultStatus, State, Tag, Ttlv, UsageLimitsUnit,
};
use kms_client::{Request, op};
use kms_server::error::KmsError;
use kms_server::kms::{Kms, Limits};
use kms_store::ObjectStore;
use kms_store::sqlite::SqliteStore;

struct Core {
    kms: Kms,
    _dir: tempfile::TempDir,
}

fn core(limits: Limits) -> Core {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> =
        Arc::new(SqliteStore::open(&dir.path().join("kms.db")).unwrap());
    let mut kms = Kms::new(store);
    kms.limits = limits;
    Core { kms, _dir: dir }
}

fn aes(uid: &str, extra: Vec<Attribute>) -> RequestPayload {
    let mut attributes = vec![
        Attribute::CryptographicAlgorithm(CryptographicAlgorithm::AES),
        Attribute::CryptographicLength(256),
        Attribute::CryptographicUsageMask(0x4 | 0x8 | 0x80),
        Attribute::UniqueIdentifier(uid.into()),
    ];
    // A usage mask given replaces the default one.
    if extra
        .iter()
        .any(|a| matches!(a, Attribute::CryptographicUsageMask(_)))
    {
        attributes.retain(|a| !matches!(a, Attribute::CryptographicUsageMask(_)));
    }
    attributes.extend(extra);
    RequestPayload::Create(Create {
        object_type: ObjectType::SymmetricKey,
        attributes: Attributes(attributes),
        protection_storage_masks: None,
    })
}

async fn run(kms: &Kms, user: &str, payload: RequestPayload) -> Result<ResponsePayload, KmsError> {
    let mut ctx = kms.context(user);
    kms.dispatch(&mut ctx, payload).await
}

async fn active_key(kms: &Kms, uid: &str, extra: Vec<Attribute>) {
    run(kms, "alice", aes(uid, extra)).await.unwrap();
    run(
        kms,
        "alice",
        RequestPayload::Activate(UidRequest {
            unique_identifier: Some(uid.into()),
        }),
    )
    .await
    .unwrap();
}

fn get(uid: &str) -> Get {
    Get {
        unique_identifier: Some(uid.into()),
        key_format_type: None,
        key_wrap_type: None,
        key_compression_type: None,
        key_wrapping_specification: None,
    }
}

/// Runs `items` as one batch with the Undo option for `user`; answers each item's status.
async fn undo_batch(kms: &Kms, user: &str, items: Vec<RequestPayload>) -> Vec<ResultStatus> {
    kms.process_message(
        kms.context(user),
        message(items, Some(BatchErrorContinuationOption::Undo)),
    )
    .await
    .batch_item
    .iter()
    .map(|i| i.result_status)
    .collect()
}

fn message(
    items: Vec<RequestPayload>,
    option: Option<BatchErrorContinuationOption>,
) -> RequestMessage {
    let mut header = RequestHeader::new(2, 1, items.len() as i32);
    header.batch_error_continuation_option = option;
    RequestMessage {
        request_header: header,
        batch_item: items
            .into_iter()
            .map(|payload| RequestBatchItem {
                operation: payload.operation(),
                ephemeral: None,
                unique_batch_item_id: None,
                request_payload: payload,
                message_extension: None,
            })
            .collect(),
    }
}

#[tokio::test]
async fn a_wrapped_get_never_answers_the_plain_key_and_imports_back() {
    let c = core(Limits::default());
    active_key(&c.kms, "k", vec![]).await;
    active_key(
        &c.kms,
        "kek",
        vec![Attribute::CryptographicUsageMask(0x10 | 0x20)],
    )
    .await;
    let plain = |r: ResponsePayload| match r {
        ResponsePayload::Get(g) => g.object,
        ResponsePayload::Export(e) => e.object,
        other => panic!("{other:?}"),
    };
    let original = plain(
        run(&c.kms, "alice", RequestPayload::Get(get("k")))
            .await
            .unwrap(),
    );
    let original_bytes = original
        .key_block()
        .unwrap()
        .symmetric_key_bytes()
        .unwrap()
        .to_vec();
    let spec = |kek: &str, mode: kmip::BlockCipherMode, encoding: u32| {
        Ttlv::structure(
            Tag::KEY_WRAPPING_SPECIFICATION,
            vec![
                Ttlv::new(Tag::WRAPPING_METHOD, kmip::Value::Enumeration(1)),
                Ttlv::structure(
                    Tag::ENCRYPTION_KEY_INFORMATION,
                    vec![
                        Ttlv::new(Tag::UNIQUE_IDENTIFIER, kmip::Value::TextString(kek.into())),
                        Ttlv::structure(
                            Tag::CRYPTOGRAPHIC_PARAMETERS,
                            vec![Ttlv::new(
                                Tag::BLOCK_CIPHER_MODE,
                                kmip::Value::Enumeration(mode as u32),
                            )],
                        ),
                    ],
                ),
                Ttlv::new(Tag::ENCODING_OPTION, kmip::Value::Enumeration(encoding)),
            ],
        )
    };
    use kmip::BlockCipherMode as M;
    for (mode, encoding) in [
        (M::NISTKeyWrap, 1),
        (M::AESKeyWrapPadding, 1),
        (M::AESKeyWrapPadding, 2),
        (M::GCM, 2),
    ] {
        for export in [false, true] {
            let request = Get {
                key_wrapping_specification: Some(spec("kek", mode, encoding)),
                ..get("k")
            };
            let payload = if export {
                RequestPayload::Export(request)
            } else {
                RequestPayload::Get(request)
            };
            let wrapped = plain(run(&c.kms, "alice", payload).await.unwrap());
            let kb = wrapped.key_block().unwrap();
            let Some(KeyValue::Wrapped(bytes)) = &kb.key_value else {
                panic!("{mode:?}: the key came back in the clear");
            };
            assert!(
                !bytes
                    .windows(original_bytes.len())
                    .any(|w| w == original_bytes.as_slice())
            );
            assert!(kb.key_wrapping_data.is_some());
            // Imported back unwrapped under a new identifier: the same key bytes.
            let imported = run(
                &c.kms,
                "alice",
                RequestPayload::Import(Import {
                    unique_identifier: "".into(),
                    object_type: ObjectType::SymmetricKey,
                    replace_existing: None,
                    key_wrap_type: Some(KeyWrapType::NotWrapped),
                    attributes: Attributes::new(),
                    object: wrapped.clone(),
                }),
            )
            .await
            .unwrap();
            let ResponsePayload::Import(UidResponse { unique_identifier }) = imported else {
                panic!("{imported:?}")
            };
            let back = plain(
                run(
                    &c.kms,
                    "alice",
                    RequestPayload::Get(get(unique_identifier.as_text().unwrap())),
                )
                .await
                .unwrap(),
            );
            assert_eq!(
                back.key_block().unwrap().symmetric_key_bytes().unwrap(),
                original_bytes,
                "{mode:?} {encoding}"
            );
        }
    }
    // A wrapping key that does not exist, that may not wrap, or no wrapping key at all: an
    // error, never the plain key.
    run(
        &c.kms,
        "alice",
        aes("nowrap", vec![Attribute::CryptographicUsageMask(4)]),
    )
    .await
    .unwrap();
    let no_info = Ttlv::structure(
        Tag::KEY_WRAPPING_SPECIFICATION,
        vec![Ttlv::new(Tag::WRAPPING_METHOD, kmip::Value::Enumeration(1))],
    );
    for bad in [
        spec("missing", M::NISTKeyWrap, 1),
        spec("nowrap", M::NISTKeyWrap, 1),
        spec("k", M::NISTKeyWrap, 1),
        no_info,
    ] {
        for payload in [
            RequestPayload::Get(Get {
                key_wrapping_specification: Some(bad.clone()),
                ..get("k")
            }),
            RequestPayload::Export(Get {
                key_wrapping_specification: Some(bad.clone()),
                ..get("k")
            }),
        ] {
            run(&c.kms, "alice", payload).await.expect_err("refused");
        }
    }
    // Compressed points are not offered.
    let e = run(
        &c.kms,
        "alice",
        RequestPayload::Get(Get {
            key_compression_type: Some(kmip::KeyCompressionType::ECPublicKeyTypeUncompressed),
            ..get("k")
        }),
    )
    .await
    .expect_err("refused");
    assert_eq!(e.reason(), ResultReason::FeatureNotSupported, "{e}");
    // Not wrapped, or as registered (a plain key), is the plain key.
    for wrap_type in [KeyWrapType::NotWrapped, KeyWrapType::AsRegistered] {
        let r = run(
            &c.kms,
            "alice",
            RequestPayload::Get(Get {
                key_wrap_type: Some(wrap_type),
                ..get("k")
            }),
        )
        .await;
        assert!(r.is_ok(), "{r:?}");
    }
}

/// One typed operation, as the client library types them: the response follows from the request.
async fn call<R: Request>(kms: &Kms, user: &str, request: R) -> R::Response {
    let payload = run(kms, user, request.into_payload()).await.unwrap();
    R::from_response(payload).unwrap()
}

async fn usage_left(kms: &Kms, uid: &str) -> Option<i64> {
    let a = call(kms, "alice", GetAttributes::all(uid)).await;
    a.attributes
        .usage_limits()
        .and_then(|l| l.usage_limits_count)
}

#[tokio::test]
async fn a_failed_encrypt_or_mac_uses_up_nothing() {
    let c = core(Limits::default());
    let limits = Attribute::UsageLimits(UsageLimits {
        usage_limits_total: 100,
        usage_limits_count: None,
        usage_limits_unit: UsageLimitsUnit::Byte,
    });
    active_key(&c.kms, "limited", vec![limits]).await;
    // RandomIV false and no IV: the encryption fails after the key checks passed.
    let failing = Encrypt {
        cryptographic_parameters: Some(CryptographicParameters {
            random_iv: Some(false),
            ..Default::default()
        }),
        ..Encrypt::new(Some("limited".into()), vec![0; 10])
    };
    run(&c.kms, "alice", RequestPayload::Encrypt(failing))
        .await
        .expect_err("no IV");
    assert_eq!(usage_left(&c.kms, "limited").await, Some(100));
    run(
        &c.kms,
        "alice",
        RequestPayload::Encrypt(Encrypt::new(Some("limited".into()), vec![0; 10])),
    )
    .await
    .unwrap();
    assert_eq!(usage_left(&c.kms, "limited").await, Some(90));
}

#[tokio::test]
async fn too_many_batch_items_are_refused_before_any_work() {
    let c = core(Limits {
        max_batch_items: 3,
        ..Limits::default()
    });
    let items = (0..4).map(|i| aes(&format!("b{i}"), vec![])).collect();
    let response = c
        .kms
        .process_message(c.kms.context("alice"), message(items, None))
        .await;
    assert_eq!(response.batch_item.len(), 1);
    assert_eq!(
        response.batch_item[0].result_reason,
        Some(ResultReason::ServerLimitExceeded)
    );
    for i in 0..4 {
        assert!(
            c.kms.store.get(&format!("b{i}")).await.unwrap().is_none(),
            "nothing was created"
        );
    }
}

#[tokio::test]
async fn responses_of_one_request_are_bounded_and_random_bytes_checked_before_generating() {
    let c = core(Limits {
        max_response_size: 1024 * 1024,
        ..Limits::default()
    });
    let rng = || {
        RequestPayload::RNGRetrieve(RngRetrieve {
            data_length: 512 * 1024,
        })
    };
    let response = c
        .kms
        .process_message(
            c.kms.context("alice"),
            message(
                vec![rng(), rng(), rng()],
                Some(BatchErrorContinuationOption::Continue),
            ),
        )
        .await;
    let reasons: Vec<_> = response
        .batch_item
        .iter()
        .map(|i| i.result_reason)
        .collect();
    assert_eq!(
        reasons,
        [
            None,
            Some(ResultReason::ResponseTooLarge),
            Some(ResultReason::ResponseTooLarge)
        ]
    );
}

#[tokio::test]
async fn undo_restores_own_objects_and_removes_imported_ones() {
    let c = core(Limits::default());
    active_key(&c.kms, "mine", vec![]).await;
    // Exported first: serving the key ends its `Fresh`, which no undo brings back.
    let exported = call(&c.kms, "alice", op::Export(get("mine"))).await;
    let before = c.kms.store.get("mine").await.unwrap().unwrap();
    let items = vec![
        RequestPayload::AddAttribute(NewAttributeRequest {
            unique_identifier: Some("mine".into()),
            new_attribute: AttributeHolder(Attribute::ObjectGroup("g".into())),
        }),
        RequestPayload::Import(Import {
            unique_identifier: "imported".into(),
            object_type: ObjectType::SymmetricKey,
            replace_existing: None,
            key_wrap_type: None,
            attributes: Attributes(vec![]),
            object: exported.object,
        }),
        RequestPayload::Get(get("missing")),
    ];
    assert_eq!(
        undo_batch(&c.kms, "alice", items).await,
        [
            ResultStatus::OperationUndone,
            ResultStatus::OperationUndone,
            ResultStatus::OperationFailed
        ]
    );
    let after = c.kms.store.get("mine").await.unwrap().unwrap();
    assert_eq!(after.attributes, before.attributes, "the attribute is gone");
    assert_eq!(after.state, State::Active);
    assert!(c.kms.store.get("imported").await.unwrap().is_none());
}

/// A CBC padding that does not check out is answered exactly like a GCM tag that does not
/// verify: a different answer would make the server a padding oracle.
#[tokio::test]
async fn bad_padding_and_bad_tag_get_the_same_answer() {
    let c = core(Limits::default());
    active_key(&c.kms, "k", vec![]).await;
    let cbc = || CryptographicParameters {
        block_cipher_mode: Some(kmip::BlockCipherMode::CBC),
        padding_method: Some(kmip::PaddingMethod::PKCS5),
        ..Default::default()
    };
    let encrypted = call(
        &c.kms,
        "alice",
        Encrypt {
            cryptographic_parameters: Some(cbc()),
            ..Encrypt::new(Some("k".into()), b"sixteen byte msg".to_vec())
        },
    )
    .await;
    // Two blocks (the message and a block of padding). Flipping a bit of the first block's
    // last byte flips the same bit of the padding byte in the second: the padding breaks.
    let mut data = encrypted.data.clone().unwrap();
    let n = data.len();
    data[n - 17] ^= 0x01;
    let bad_padding = run(
        &c.kms,
        "alice",
        RequestPayload::Decrypt(Decrypt {
            cryptographic_parameters: Some(cbc()),
            data: Some(data),
            iv_counter_nonce: encrypted.iv_counter_nonce.clone(),
            ..Decrypt::of(Some("k".into()), &encrypted)
        }),
    )
    .await
    .expect_err("padding does not check out");
    // A key serves one mode: GCM on another key.
    active_key(&c.kms, "g", vec![]).await;
    let gcm = call(
        &c.kms,
        "alice",
        Encrypt::new(Some("g".into()), b"sixteen byte msg".to_vec()),
    )
    .await;
    let mut tag = gcm.authenticated_encryption_tag.clone().unwrap();
    tag[0] ^= 1;
    let bad_tag = run(
        &c.kms,
        "alice",
        RequestPayload::Decrypt(Decrypt {
            authenticated_encryption_tag: Some(tag),
            ..Decrypt::of(Some("g".into()), &gcm)
        }),
    )
    .await
    .expect_err("tag does not verify");
    assert_eq!(bad_padding.to_string(), bad_tag.to_string());
    assert_eq!(bad_padding.reason(), bad_tag.reason());
}

fn mode(m: kmip::BlockCipherMode) -> Option<CryptographicParameters> {
    Some(CryptographicParameters {
        block_cipher_mode: Some(m),
        ..Default::default()
    })
}

/// A key serves the mode of its first use (or of its CryptographicParameters) only: ECB of a
/// zero block under a GCM key would give GCM's hash key, CTR would decrypt GCM data.
#[tokio::test]
async fn a_key_is_bound_to_one_mode() {
    use kmip::BlockCipherMode::{CBC, CTR, ECB, GCM};
    let c = core(Limits::default());
    active_key(&c.kms, "gcm", vec![]).await;
    let sealed = call(
        &c.kms,
        "alice",
        Encrypt::new(Some("gcm".into()), b"attack at dawn".to_vec()),
    )
    .await;
    let ecb = run(
        &c.kms,
        "alice",
        RequestPayload::Encrypt(Encrypt {
            cryptographic_parameters: mode(ECB),
            ..Encrypt::new(Some("gcm".into()), vec![0; 16])
        }),
    )
    .await
    .expect_err("ECB under a GCM key");
    assert!(ecb.to_string().contains("AesGcm"), "{ecb}");
    run(
        &c.kms,
        "alice",
        RequestPayload::Decrypt(Decrypt {
            cryptographic_parameters: mode(CTR),
            ..Decrypt::of(Some("gcm".into()), &sealed)
        }),
    )
    .await
    .expect_err("CTR under a GCM key");
    // The binding is visible: the key's CryptographicParameters name GCM.
    let attributes = call(&c.kms, "alice", GetAttributes::all("gcm")).await;
    assert_eq!(
        attributes
            .attributes
            .cryptographic_parameters()
            .and_then(|p| p.block_cipher_mode),
        Some(GCM)
    );
    // GCM itself keeps working.
    call(&c.kms, "alice", Decrypt::of(Some("gcm".into()), &sealed)).await;

    // A key created for CBC serves CBC only.
    active_key(
        &c.kms,
        "cbc",
        vec![Attribute::CryptographicParameters(
            CryptographicParameters {
                block_cipher_mode: Some(CBC),
                ..Default::default()
            },
        )],
    )
    .await;
    call(
        &c.kms,
        "alice",
        Encrypt::new(Some("cbc".into()), vec![1; 16]),
    )
    .await;
    run(
        &c.kms,
        "alice",
        RequestPayload::Encrypt(Encrypt {
            cryptographic_parameters: mode(GCM),
            ..Encrypt::new(Some("cbc".into()), vec![1; 16])
        }),
    )
    .await
    .expect_err("GCM under a CBC key");
}

/// An HMAC key's hash is its algorithm's.
#[tokio::test]
async fn an_hmac_key_computes_its_own_hash_only() {
    let c = core(Limits::default());
    run(
        &c.kms,
        "alice",
        RequestPayload::Create(Create {
            object_type: ObjectType::SymmetricKey,
            attributes: Attributes(vec![
                Attribute::CryptographicAlgorithm(CryptographicAlgorithm::HMAC_SHA256),
                Attribute::CryptographicLength(256),
                Attribute::CryptographicUsageMask(0x80 | 0x100),
                Attribute::UniqueIdentifier("hmac".into()),
            ]),
            protection_storage_masks: None,
        }),
    )
    .await
    .unwrap();
    run(
        &c.kms,
        "alice",
        RequestPayload::Activate(UidRequest {
            unique_identifier: Some("hmac".into()),
        }),
    )
    .await
    .unwrap();
    let sha512 = Some(CryptographicParameters {
        cryptographic_algorithm: Some(CryptographicAlgorithm::HMAC_SHA512),
        ..Default::default()
    });
    let e = run(
        &c.kms,
        "alice",
        RequestPayload::MAC(Mac {
            cryptographic_parameters: sha512,
            ..Mac::new("hmac", b"data".to_vec())
        }),
    )
    .await
    .expect_err("SHA-512 with an HMAC-SHA256 key");
    assert_eq!(e.reason(), ResultReason::BadCryptographicParameters, "{e}");
    let mac = call(&c.kms, "alice", Mac::new("hmac", b"data".to_vec())).await;
    assert_eq!(mac.mac_data.map(|m| m.len()), Some(32));
}

/// Sensitive and Extractable as KMIP defines them: a sensitive key's material does not leave in
/// clear, neither protection can be undone, and the server keeps AlwaysSensitive,
/// NeverExtractable and the remaining usage count.
#[tokio::test]
async fn sensitive_and_extractable_hold() {
    let c = core(Limits::default());
    active_key(&c.kms, "s", vec![Attribute::Sensitive(true)]).await;
    let e = run(&c.kms, "alice", RequestPayload::Get(get("s")))
        .await
        .expect_err("sensitive");
    assert_eq!(e.reason(), ResultReason::Sensitive, "{e}");
    run(&c.kms, "alice", RequestPayload::Export(get("s")))
        .await
        .expect_err("sensitive");
    for undo in [
        RequestPayload::SetAttribute(NewAttributeRequest {
            unique_identifier: Some("s".into()),
            new_attribute: AttributeHolder(Attribute::Sensitive(false)),
        }),
        RequestPayload::ModifyAttribute(ModifyAttribute {
            unique_identifier: Some("s".into()),
            current_attribute: None,
            new_attribute: AttributeHolder(Attribute::Sensitive(false)),
        }),
        RequestPayload::DeleteAttribute(DeleteAttribute {
            unique_identifier: Some("s".into()),
            current_attribute: Some(AttributeHolder(Attribute::Sensitive(true))),
            attribute_reference: None,
        }),
    ] {
        let e = run(&c.kms, "alice", undo)
            .await
            .expect_err("cannot be undone");
        assert!(e.to_string().contains("cannot be undone"), "{e}");
    }
    let a = call(&c.kms, "alice", GetAttributes::all("s"))
        .await
        .attributes;
    assert_eq!(a.sensitive(), Some(true));
    assert!(a.0.contains(&Attribute::AlwaysSensitive(true)));
    assert!(a.0.contains(&Attribute::NeverExtractable(false)));

    active_key(&c.kms, "x", vec![Attribute::Extractable(false)]).await;
    let e = run(&c.kms, "alice", RequestPayload::Get(get("x")))
        .await
        .expect_err("not extractable");
    assert_eq!(e.reason(), ResultReason::NotExtractable, "{e}");
    run(
        &c.kms,
        "alice",
        RequestPayload::SetAttribute(NewAttributeRequest {
            unique_identifier: Some("x".into()),
            new_attribute: AttributeHolder(Attribute::Extractable(true)),
        }),
    )
    .await
    .expect_err("cannot be undone");

    // The client cannot set the remaining count, at creation or later.
    let limits = |count| {
        Attribute::UsageLimits(UsageLimits {
            usage_limits_total: 100,
            usage_limits_count: count,
            usage_limits_unit: UsageLimitsUnit::Byte,
        })
    };
    active_key(&c.kms, "u", vec![limits(Some(1_000_000))]).await;
    assert_eq!(usage_left(&c.kms, "u").await, Some(100));
    run(
        &c.kms,
        "alice",
        RequestPayload::SetAttribute(NewAttributeRequest {
            unique_identifier: Some("u".into()),
            new_attribute: AttributeHolder(limits(Some(1_000_000))),
        }),
    )
    .await
    .expect_err("the count is the server's");
    assert_eq!(usage_left(&c.kms, "u").await, Some(100));
}

/// What a request may have the server generate is proportional to its size: a small batch of
/// RNGRetrieve items gets only a few of them, well before the response limit.
#[tokio::test]
async fn generated_bytes_are_proportional_to_the_request() {
    let c = core(Limits::default());
    let rng = || {
        RequestPayload::RNGRetrieve(RngRetrieve {
            data_length: 512 * 1024,
        })
    };
    let request = message(
        (0..8).map(|_| rng()).collect(),
        Some(BatchErrorContinuationOption::Continue),
    );
    let body_len = kmip::binary::encode(&request.encode()).len();
    assert!(body_len < 1024, "a small request: {body_len} bytes");
    let response = c
        .kms
        .process_message(c.kms.context("alice").with_body_len(body_len), request)
        .await;
    let served = response
        .batch_item
        .iter()
        .filter(|i| i.result_status == ResultStatus::Success)
        .count();
    assert_eq!(served, 2, "1 MiB (the floor) of random bytes, not 4 MiB");
    assert!(
        response.batch_item[2..]
            .iter()
            .all(|i| i.result_reason == Some(ResultReason::ResponseTooLarge))
    );
}

/// Cosmian's Destroy fields: `ExpectedObjectType` refuses another kind of object, `Remove`
/// deletes the record, and an Undo batch puts a removed object back, as it takes back an
/// Import without identifier (which created a new object).
#[tokio::test]
async fn destroy_remove_and_expected_type_and_their_undo() {
    let c = core(Limits::default());
    active_key(&c.kms, "k", vec![]).await;
    let revoke = || {
        RequestPayload::Revoke(Revoke::new(
            "k",
            kmip::RevocationReasonCode::CessationOfOperation,
        ))
    };
    run(&c.kms, "alice", revoke()).await.unwrap();
    let wrong_kind = run(
        &c.kms,
        "alice",
        RequestPayload::Destroy(Destroy {
            expected_object_type: Some(ObjectType::SecretData),
            ..Destroy::new("k")
        }),
    )
    .await
    .unwrap_err();
    assert!(
        wrong_kind
            .to_string()
            .contains("not the SecretData expected"),
        "{wrong_kind}"
    );
    assert_eq!(
        c.kms.store.get("k").await.unwrap().unwrap().state,
        State::Deactivated
    );
    let exported = call(&c.kms, "alice", op::Export(get("k"))).await;
    let remove = || {
        RequestPayload::Destroy(Destroy {
            remove: Some(true),
            expected_object_type: Some(ObjectType::SymmetricKey),
            ..Destroy::new("k")
        })
    };
    let items = vec![
        remove(),
        RequestPayload::Import(Import {
            unique_identifier: "".into(),
            object_type: ObjectType::SymmetricKey,
            replace_existing: None,
            key_wrap_type: None,
            attributes: Attributes(vec![]).with_user_tags(&["fresh"]),
            object: exported.object,
        }),
        RequestPayload::Get(get("missing")),
    ];
    assert_eq!(
        undo_batch(&c.kms, "alice", items).await,
        [
            ResultStatus::OperationUndone,
            ResultStatus::OperationUndone,
            ResultStatus::OperationFailed
        ]
    );
    let back = c.kms.store.get("k").await.unwrap().expect("put back");
    assert_eq!(back.state, State::Deactivated);
    assert!(back.object.is_some(), "with its material");
    let fresh = c
        .kms
        .store
        .locate(&kms_store::LocateQuery {
            tags: vec!["fresh".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(fresh.is_empty(), "the imported copy is gone: {fresh:?}");

    // Outside a batch, Remove deletes the record for good.
    run(&c.kms, "alice", remove()).await.unwrap();
    assert!(c.kms.store.get("k").await.unwrap().is_none());
}

/// A `["tag", ...]` identifier names the one object with all those tags; none or several is an
/// error that says so.
#[tokio::test]
async fn tag_selectors_name_exactly_one_object() {
    let c = core(Limits::default());
    let tags = |t: &[&str]| Attributes(vec![]).with_user_tags(t).0;
    active_key(&c.kms, "a", tags(&["team", "alpha"])).await;
    active_key(&c.kms, "b", tags(&["team", "beta"])).await;
    let encrypt = |selector: &str| {
        RequestPayload::Encrypt(Encrypt::new(Some(selector.into()), b"data".to_vec()))
    };
    let ResponsePayload::Encrypt(one) = run(&c.kms, "alice", encrypt(r#"["team","alpha"]"#))
        .await
        .unwrap()
    else {
        panic!("an Encrypt response")
    };
    assert_eq!(one.unique_identifier, "a".into());
    let several = run(&c.kms, "alice", encrypt(r#"["team"]"#))
        .await
        .unwrap_err();
    assert!(several.to_string().contains("2 objects"), "{several}");
    let none = run(&c.kms, "alice", encrypt(r#"["gamma"]"#))
        .await
        .unwrap_err();
    assert_eq!(none.reason(), ResultReason::ObjectNotFound);
    // Another user's objects are not candidates.
    let other = run(&c.kms, "bob", encrypt(r#"["alpha"]"#))
        .await
        .unwrap_err();
    assert_eq!(other.reason(), ResultReason::ObjectNotFound);
    // Revoke answers the selector it was given, as Cosmian's clients expect.
    let ResponsePayload::Revoke(revoked) = run(
        &c.kms,
        "alice",
        RequestPayload::Revoke(Revoke::new(
            r#"["beta"]"#,
            kmip::RevocationReasonCode::Unspecified,
        )),
    )
    .await
    .unwrap() else {
        panic!("a Revoke response")
    };
    assert_eq!(revoked.unique_identifier, r#"["beta"]"#.into());
    assert_eq!(
        c.kms.store.get("b").await.unwrap().unwrap().state,
        State::Deactivated
    );
}

/// Rights per operation: the owner may do everything; a grantee only what it was granted (to
/// it or to `*`); a user with no right sees no object at all, existence included.
#[tokio::test]
async fn rights_are_checked_per_operation_and_hide_objects() {
    let c = core(Limits::default());
    let tagged = Attributes(vec![]).with_user_tags(&["shared"]).0;
    active_key(&c.kms, "k", tagged).await;
    let get_k = || RequestPayload::Get(get("k"));
    let encrypt_k = || RequestPayload::Encrypt(Encrypt::new(Some("k".into()), b"data".to_vec()));
    let locate_shared = || {
        RequestPayload::Locate(Locate {
            maximum_items: None,
            offset_items: None,
            storage_status_mask: None,
            object_group_member: None,
            attributes: Some(Attributes(vec![]).with_user_tags(&["shared"])),
        })
    };
    let located = |r: ResponsePayload| match r {
        ResponsePayload::Locate(l) => l.unique_identifier.len(),
        other => panic!("{other:?}"),
    };
    let ctx = c.kms.context("alice");
    let grant = |user: &'static str, ops: &[&str]| {
        let ops: Vec<String> = ops.iter().map(|s| (*s).to_owned()).collect();
        let kms = &c.kms;
        let ctx = &ctx;
        async move { kms.grant_access(ctx, "k", user, &ops).await }
    };

    // Nobody but alice knows about k.
    let unknown = run(&c.kms, "bob", get_k()).await.unwrap_err();
    let missing = run(&c.kms, "bob", RequestPayload::Get(get("nope")))
        .await
        .unwrap_err();
    assert_eq!(unknown.reason(), missing.reason());
    assert_eq!(unknown.http_status(), 404);
    assert_eq!(
        located(run(&c.kms, "bob", locate_shared()).await.unwrap()),
        0
    );

    // Bob may encrypt, and only that; he now sees k.
    grant("bob", &["encrypt"]).await.unwrap();
    run(&c.kms, "bob", encrypt_k()).await.unwrap();
    let denied = run(&c.kms, "bob", get_k()).await.unwrap_err();
    assert_eq!(denied.reason(), ResultReason::PermissionDenied);
    assert_eq!(denied.http_status(), 403);
    assert_eq!(
        located(run(&c.kms, "bob", locate_shared()).await.unwrap()),
        1
    );
    // By tag too.
    run(
        &c.kms,
        "bob",
        RequestPayload::Encrypt(Encrypt::new(Some(r#"["shared"]"#.into()), b"d".to_vec())),
    )
    .await
    .unwrap();
    // Neither can he manage its rights.
    let ctx_bob = c.kms.context("bob");
    let ops = vec!["get".to_owned()];
    let not_owner = c
        .kms
        .grant_access(&ctx_bob, "k", "bob", &ops)
        .await
        .unwrap_err();
    assert_eq!(not_owner.http_status(), 403);
    assert_eq!(
        c.kms
            .list_access(&c.kms.context("carol"), "k")
            .await
            .unwrap_err()
            .http_status(),
        404
    );

    // A grant to everyone.
    grant("*", &["get"]).await.unwrap();
    run(&c.kms, "carol", get_k()).await.unwrap();
    let carol_destroy = run(&c.kms, "carol", RequestPayload::Destroy(Destroy::new("k")))
        .await
        .unwrap_err();
    assert_eq!(carol_destroy.reason(), ResultReason::PermissionDenied);
    let list = c.kms.list_access(&ctx, "k").await.unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let obtained = c.kms.obtained(&c.kms.context("bob")).await.unwrap();
    assert_eq!(obtained.len(), 1);
    assert_eq!(obtained[0].operations, ["encrypt", "get"]);

    // After revoke, back to nothing.
    let back = |ops: &[&str]| ops.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    c.kms
        .revoke_access(&ctx, "k", "bob", &back(&["encrypt"]))
        .await
        .unwrap();
    c.kms
        .revoke_access(&ctx, "k", "*", &back(&["get"]))
        .await
        .unwrap();
    assert_eq!(
        run(&c.kms, "bob", encrypt_k())
            .await
            .unwrap_err()
            .http_status(),
        404
    );
    assert_eq!(
        located(run(&c.kms, "bob", locate_shared()).await.unwrap()),
        0
    );
    // Bad requests say what to do.
    let bad = c
        .kms
        .grant_access(&ctx, "k", "bob", &back(&["fly"]))
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("use one of"), "{bad}");
    // The owner keeps every right.
    run(&c.kms, "alice", get_k()).await.unwrap();
}

/// With privileged users, only they add objects; the others use what they are granted.
#[tokio::test]
async fn only_privileged_users_create() {
    let mut c = core(Limits::default());
    c.kms.privileged_users = Some(vec!["alice".into()]);
    active_key(&c.kms, "k", vec![]).await;
    let refused = run(&c.kms, "bob", aes("b", vec![])).await.unwrap_err();
    assert_eq!(refused.reason(), ResultReason::PermissionDenied);
    assert!(c.kms.store.get("b").await.unwrap().is_none());
}

/// Links never reveal objects the caller has no right on.
#[tokio::test]
async fn links_to_unseen_objects_are_hidden() {
    let c = core(Limits::default());
    active_key(&c.kms, "a", vec![]).await;
    active_key(&c.kms, "b", vec![]).await;
    run(
        &c.kms,
        "alice",
        RequestPayload::AddAttribute(NewAttributeRequest {
            unique_identifier: Some("a".into()),
            new_attribute: AttributeHolder(Attribute::Link(Link {
                link_type: kmip::LinkType::NextLink,
                linked_object_identifier: "b".into(),
            })),
        }),
    )
    .await
    .unwrap();
    let owner = c.kms.context("alice");
    let ops = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    c.kms
        .grant_access(&owner, "a", "bob", &ops(&["get_attributes"]))
        .await
        .unwrap();
    let links = |r: ResponsePayload| match r {
        ResponsePayload::GetAttributes(g) => g.attributes.links().count(),
        other => panic!("{other:?}"),
    };
    let get_a = || RequestPayload::GetAttributes(GetAttributes::all("a"));
    assert_eq!(links(run(&c.kms, "alice", get_a()).await.unwrap()), 1);
    assert_eq!(
        links(run(&c.kms, "bob", get_a()).await.unwrap()),
        0,
        "b is not bob's to see"
    );
    c.kms
        .grant_access(&owner, "b", "bob", &ops(&["get"]))
        .await
        .unwrap();
    assert_eq!(links(run(&c.kms, "bob", get_a()).await.unwrap()), 1);
}

async fn attributes_of(kms: &Kms, uid: &str) -> Attributes {
    match run(
        kms,
        "alice",
        RequestPayload::GetAttributes(GetAttributes {
            unique_identifier: Some(uid.into()),
            attribute_reference: vec![],
        }),
    )
    .await
    .unwrap()
    {
        ResponsePayload::GetAttributes(r) => r.attributes,
        other => panic!("{other:?}"),
    }
}

fn linked(attributes: &Attributes, link_type: kmip::LinkType) -> Option<String> {
    attributes
        .links()
        .find(|l| l.link_type == link_type)
        .and_then(|l| l.linked_object_identifier.as_text().map(str::to_owned))
}

fn key_of(r: ResponsePayload) -> Vec<u8> {
    match r {
        ResponsePayload::Get(g) => g
            .object
            .key_block()
            .unwrap()
            .symmetric_key_bytes()
            .unwrap()
            .to_vec(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn re_key_replaces_with_new_material_moves_names_and_links_both_ways() {
    let c = core(Limits::default());
    let name = Attribute::Name(Name {
        name_value: "payroll".into(),
        name_type: kmip::NameType::UninterpretedTextString,
    });
    active_key(&c.kms, "old", vec![name]).await;
    let rekey = |offset: Option<u32>| {
        RequestPayload::ReKey(ReKey {
            unique_identifier: Some("old".into()),
            offset: offset.map(Interval),
            attributes: None,
            protection_storage_masks: None,
        })
    };
    let ResponsePayload::ReKey(UidResponse { unique_identifier }) =
        run(&c.kms, "alice", rekey(Some(0))).await.unwrap()
    else {
        panic!()
    };
    let new = unique_identifier.as_text().unwrap().to_owned();
    assert_ne!(new, "old");
    let old_attributes = attributes_of(&c.kms, "old").await;
    let new_attributes = attributes_of(&c.kms, &new).await;
    assert_eq!(
        linked(&old_attributes, kmip::LinkType::ReplacementObjectLink).as_deref(),
        Some(new.as_str())
    );
    assert_eq!(
        linked(&new_attributes, kmip::LinkType::ReplacedObjectLink).as_deref(),
        Some("old")
    );
    assert_eq!(old_attributes.names().count(), 0);
    assert_eq!(new_attributes.names().next().unwrap().name_value, "payroll");
    assert_eq!(
        old_attributes.state(),
        Some(State::Active),
        "the old key keeps its state"
    );
    assert_eq!(new_attributes.state(), Some(State::Active));
    assert_eq!(new_attributes.cryptographic_length(), Some(256));
    let old_key = key_of(
        run(&c.kms, "alice", RequestPayload::Get(get("old")))
            .await
            .unwrap(),
    );
    let new_key = key_of(
        run(&c.kms, "alice", RequestPayload::Get(get(&new)))
            .await
            .unwrap(),
    );
    assert_ne!(old_key, new_key);
    // An offset in the future leaves the new key pre-active.
    let ResponsePayload::ReKey(UidResponse { unique_identifier }) =
        run(&c.kms, "alice", rekey(Some(3600))).await.unwrap()
    else {
        panic!()
    };
    let later = attributes_of(&c.kms, unique_identifier.as_text().unwrap()).await;
    assert_eq!(later.state(), Some(State::PreActive));
    // In an Undo batch that fails, the new key is removed and the old one restored.
    let before = attributes_of(&c.kms, "old").await;
    let statuses = undo_batch(
        &c.kms,
        "alice",
        vec![rekey(None), RequestPayload::Get(get("missing"))],
    )
    .await;
    assert_eq!(
        statuses,
        vec![ResultStatus::OperationUndone, ResultStatus::OperationFailed]
    );
    let after = attributes_of(&c.kms, "old").await;
    assert_eq!(after.links().count(), before.links().count());
    // A key pair is not re-keyed by ReKey.
    run(
        &c.kms,
        "alice",
        RequestPayload::ReKey(ReKey {
            unique_identifier: Some("missing".into()),
            offset: None,
            attributes: None,
            protection_storage_masks: None,
        }),
    )
    .await
    .expect_err("no such key");
}

#[tokio::test]
async fn re_key_key_pair_replaces_both_halves() {
    let c = core(Limits::default());
    let created = run(
        &c.kms,
        "alice",
        RequestPayload::CreateKeyPair(CreateKeyPair {
            common_attributes: Some(Attributes(vec![
                Attribute::CryptographicAlgorithm(CryptographicAlgorithm::EC),
                Attribute::CryptographicLength(256),
                Attribute::ActivationDate(kmip::DateTime::now()),
            ])),
            private_key_attributes: None,
            public_key_attributes: None,
            common_protection_storage_masks: None,
            private_protection_storage_masks: None,
            public_protection_storage_masks: None,
        }),
    )
    .await
    .unwrap();
    let ResponsePayload::CreateKeyPair(old) = created else {
        panic!()
    };
    let old_private = old
        .private_key_unique_identifier
        .as_text()
        .unwrap()
        .to_owned();
    let old_public = old
        .public_key_unique_identifier
        .as_text()
        .unwrap()
        .to_owned();
    let ResponsePayload::ReKeyKeyPair(new) = run(
        &c.kms,
        "alice",
        RequestPayload::ReKeyKeyPair(ReKeyKeyPair {
            private_key_unique_identifier: Some(old_private.clone().into()),
            offset: None,
            common_attributes: None,
            private_key_attributes: None,
            public_key_attributes: None,
            common_protection_storage_masks: None,
            private_protection_storage_masks: None,
            public_protection_storage_masks: None,
        }),
    )
    .await
    .unwrap() else {
        panic!()
    };
    let new_private = new
        .private_key_unique_identifier
        .as_text()
        .unwrap()
        .to_owned();
    let new_public = new
        .public_key_unique_identifier
        .as_text()
        .unwrap()
        .to_owned();
    let p = attributes_of(&c.kms, &new_private).await;
    assert_eq!(
        linked(&p, kmip::LinkType::PublicKeyLink).as_deref(),
        Some(new_public.as_str())
    );
    assert_eq!(
        linked(&p, kmip::LinkType::ReplacedObjectLink).as_deref(),
        Some(old_private.as_str())
    );
    assert_eq!(p.state(), Some(State::Active));
    let q = attributes_of(&c.kms, &new_public).await;
    assert_eq!(
        linked(&q, kmip::LinkType::PrivateKeyLink).as_deref(),
        Some(new_private.as_str())
    );
    assert_eq!(
        linked(&q, kmip::LinkType::ReplacedObjectLink).as_deref(),
        Some(old_public.as_str())
    );
    let o = attributes_of(&c.kms, &old_public).await;
    assert_eq!(
        linked(&o, kmip::LinkType::ReplacementObjectLink).as_deref(),
        Some(new_public.as_str())
    );
    // The new pair signs and verifies.
    let ResponsePayload::Sign(signed) = run(
        &c.kms,
        "alice",
        RequestPayload::Sign(Sign {
            unique_identifier: Some(new_private.clone().into()),
            cryptographic_parameters: None,
            data: Some(b"data".to_vec()),
            digested_data: None,
            correlation_value: None,
            init_indicator: None,
            final_indicator: None,
        }),
    )
    .await
    .unwrap() else {
        panic!()
    };
    let ResponsePayload::SignatureVerify(v) = run(
        &c.kms,
        "alice",
        RequestPayload::SignatureVerify(SignatureVerify {
            unique_identifier: Some(new_public.into()),
            cryptographic_parameters: None,
            data: Some(b"data".to_vec()),
            digested_data: None,
            signature_data: signed.signature_data,
            correlation_value: None,
            init_indicator: None,
            final_indicator: None,
        }),
    )
    .await
    .unwrap() else {
        panic!()
    };
    assert_eq!(v.validity_indicator, kmip::ValidityIndicator::Valid);
}

#[tokio::test]
async fn derive_key_matches_the_kdfs_and_needs_the_derive_right_on_the_base() {
    let c = core(Limits::default());
    // A secret (its default usage is DeriveKey) and an AES key that may not derive.
    run(
        &c.kms,
        "alice",
        RequestPayload::Create(Create {
            object_type: ObjectType::SecretData,
            attributes: Attributes(vec![Attribute::UniqueIdentifier("seed".into())]),
            protection_storage_masks: None,
        }),
    )
    .await
    .unwrap();
    run(
        &c.kms,
        "alice",
        RequestPayload::Activate(UidRequest {
            unique_identifier: Some("seed".into()),
        }),
    )
    .await
    .unwrap();
    let seed = match run(&c.kms, "alice", RequestPayload::Get(get("seed")))
        .await
        .unwrap()
    {
        ResponsePayload::Get(g) => g
            .object
            .key_block()
            .unwrap()
            .symmetric_key_bytes()
            .unwrap()
            .to_vec(),
        other => panic!("{other:?}"),
    };
    active_key(&c.kms, "aes", vec![]).await;
    let params = |items: Vec<Ttlv>| Ttlv::structure(Tag::DERIVATION_PARAMETERS, items);
    let bytes = |tag, v: &[u8]| Ttlv::new(tag, kmip::Value::ByteString(v.to_vec()));
    let derive = |base: &str, method, p: Ttlv| {
        RequestPayload::DeriveKey(DeriveKey {
            object_type: ObjectType::SymmetricKey,
            unique_identifier: vec![base.into()],
            derivation_method: method,
            derivation_parameters: p,
            attributes: Attributes(vec![
                Attribute::CryptographicAlgorithm(CryptographicAlgorithm::AES),
                Attribute::CryptographicLength(256),
            ]),
        })
    };
    use kmip::DerivationMethod as M;
    let cases = [
        (
            M::PBKDF2,
            params(vec![
                bytes(Tag::SALT, b"salt-salt-salt!!"),
                Ttlv::new(Tag::ITERATION_COUNT, kmip::Value::Integer(1000)),
            ]),
            kms_crypto::pbkdf2(
                kms_crypto::HashAlgorithm::Sha256,
                &seed,
                b"salt-salt-salt!!",
                1000,
                32,
            )
            .unwrap()
            .to_vec(),
        ),
        (
            M::HKDF,
            params(vec![
                bytes(Tag::SALT, b"s"),
                bytes(Tag::DERIVATION_DATA, b"info"),
            ]),
            kms_crypto::hkdf(kms_crypto::HashAlgorithm::Sha256, &seed, b"s", b"info", 32)
                .unwrap()
                .to_vec(),
        ),
        (
            M::NIST800_108_C,
            params(vec![bytes(Tag::DERIVATION_DATA, b"label\0context")]),
            kms_crypto::kdf_counter_hmac(
                kms_crypto::HashAlgorithm::Sha256,
                &seed,
                b"label\0context",
                32,
            )
            .unwrap()
            .to_vec(),
        ),
        (
            M::HMAC,
            params(vec![bytes(Tag::DERIVATION_DATA, b"data")]),
            kms_crypto::hmac(kms_crypto::HashAlgorithm::Sha256, &seed, b"data").unwrap(),
        ),
    ];
    for (method, p, expected) in cases {
        let ResponsePayload::DeriveKey(UidResponse { unique_identifier }) =
            run(&c.kms, "alice", derive("seed", method, p))
                .await
                .unwrap()
        else {
            panic!()
        };
        let uid = unique_identifier.as_text().unwrap().to_owned();
        let derived = key_of(
            run(&c.kms, "alice", RequestPayload::Get(get(&uid)))
                .await
                .unwrap(),
        );
        assert_eq!(derived, expected, "{method:?}");
        let a = attributes_of(&c.kms, &uid).await;
        assert_eq!(
            linked(&a, kmip::LinkType::DerivationBaseObjectLink).as_deref(),
            Some("seed")
        );
    }
    // The AES key's usage mask does not allow DeriveKey; PBKDF2 without salt is refused.
    let e = run(&c.kms, "alice", derive("aes", M::HKDF, params(vec![])))
        .await
        .expect_err("no right");
    assert_eq!(
        e.reason(),
        ResultReason::IncompatibleCryptographicUsageMask,
        "{e}"
    );
    let e = run(&c.kms, "alice", derive("seed", M::PBKDF2, params(vec![])))
        .await
        .expect_err("no salt");
    assert_eq!(e.reason(), ResultReason::MissingData, "{e}");
}

#[tokio::test]
async fn streamed_sign_and_verify_match_the_whole_message() {
    let c = core(Limits::default());
    for algorithm in [
        vec![
            Attribute::CryptographicAlgorithm(CryptographicAlgorithm::RSA),
            Attribute::CryptographicLength(2048),
        ],
        vec![Attribute::CryptographicAlgorithm(
            CryptographicAlgorithm::Ed25519,
        )],
    ] {
        let ResponsePayload::CreateKeyPair(pair) = run(
            &c.kms,
            "alice",
            RequestPayload::CreateKeyPair(CreateKeyPair {
                common_attributes: Some(Attributes(
                    algorithm
                        .into_iter()
                        .chain([Attribute::ActivationDate(kmip::DateTime::now())])
                        .collect(),
                )),
                private_key_attributes: None,
                public_key_attributes: None,
                common_protection_storage_masks: None,
                private_protection_storage_masks: None,
                public_protection_storage_masks: None,
            }),
        )
        .await
        .unwrap() else {
            panic!()
        };
        let sign = |init, last, correlation: Option<Vec<u8>>, data: &[u8]| {
            RequestPayload::Sign(Sign {
                unique_identifier: Some(pair.private_key_unique_identifier.clone()),
                cryptographic_parameters: None,
                data: Some(data.to_vec()),
                digested_data: None,
                correlation_value: correlation,
                init_indicator: init,
                final_indicator: last,
            })
        };
        let answer = |r: ResponsePayload| match r {
            ResponsePayload::Sign(s) => s,
            other => panic!("{other:?}"),
        };
        let first = answer(
            run(&c.kms, "alice", sign(Some(true), None, None, b"part one, "))
                .await
                .unwrap(),
        );
        assert!(first.signature_data.is_none());
        let id = first.correlation_value.unwrap();
        let middle = answer(
            run(
                &c.kms,
                "alice",
                sign(None, None, Some(id.clone()), b"part two, "),
            )
            .await
            .unwrap(),
        );
        assert_eq!(middle.correlation_value.as_ref(), Some(&id));
        let last = answer(
            run(
                &c.kms,
                "alice",
                sign(None, Some(true), Some(id.clone()), b"part three"),
            )
            .await
            .unwrap(),
        );
        let signature = last.signature_data.unwrap();
        // The stream is closed: its correlation value is unknown now.
        let e = run(&c.kms, "alice", sign(None, Some(true), Some(id), b"x"))
            .await
            .expect_err("closed");
        assert!(e.to_string().contains("CorrelationValue"), "{e}");
        // The signature is that of the whole message, verified in one request.
        let ResponsePayload::SignatureVerify(v) = run(
            &c.kms,
            "alice",
            RequestPayload::SignatureVerify(SignatureVerify {
                unique_identifier: Some(pair.public_key_unique_identifier.clone()),
                cryptographic_parameters: None,
                data: Some(b"part one, part two, part three".to_vec()),
                digested_data: None,
                signature_data: Some(signature),
                correlation_value: None,
                init_indicator: None,
                final_indicator: None,
            }),
        )
        .await
        .unwrap() else {
            panic!()
        };
        assert_eq!(v.validity_indicator, kmip::ValidityIndicator::Valid);
        // A correlation value of a stream on another key is refused.
        let other = answer(
            run(&c.kms, "alice", sign(Some(true), None, None, b"x"))
                .await
                .unwrap(),
        );
        let e = run(
            &c.kms,
            "alice",
            RequestPayload::Sign(Sign {
                unique_identifier: Some(pair.public_key_unique_identifier.clone()),
                cryptographic_parameters: None,
                data: Some(b"y".to_vec()),
                digested_data: None,
                correlation_value: other.correlation_value,
                init_indicator: None,
                final_indicator: Some(true),
            }),
        )
        .await
        .expect_err("another key");
        assert_ne!(e.reason(), ResultReason::GeneralFailure, "{e}");
    }
}

#[tokio::test]
async fn a_registered_certificate_gets_its_derived_attributes_and_garbage_is_refused() {
    let c = core(Limits::default());
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["kms.example.com".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kms test");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Example");
    let der = params.self_signed(&key).unwrap().der().to_vec();
    let register = |value: Vec<u8>| {
        RequestPayload::Register(Register {
            object_type: ObjectType::Certificate,
            attributes: Attributes::new(),
            object: Object::Certificate(Certificate {
                certificate_type: kmip::CertificateType::X_509,
                certificate_value: value,
            }),
            protection_storage_masks: None,
        })
    };
    let ResponsePayload::Register(UidResponse { unique_identifier }) =
        run(&c.kms, "alice", register(der.clone())).await.unwrap()
    else {
        panic!()
    };
    let a = attributes_of(&c.kms, unique_identifier.as_text().unwrap()).await;
    let length = a.0.iter().find_map(|x| match x {
        Attribute::CertificateLength(l) => Some(*l),
        _ => None,
    });
    assert_eq!(length, Some(der.len() as i32));
    let text = |tag| {
        a.0.iter().find_map(|x| match x {
            Attribute::Other(t) if t.tag == tag => t.as_str().ok().map(str::to_owned),
            _ => None,
        })
    };
    assert_eq!(
        text(Tag::CERTIFICATE_SUBJECT_CN).as_deref(),
        Some("kms test")
    );
    assert_eq!(text(Tag::CERTIFICATE_ISSUER_O).as_deref(), Some("Example"));
    // Found by its subject's common name, and by issuer and serial.
    let locate = |attribute: Attribute| {
        RequestPayload::Locate(Locate {
            maximum_items: None,
            offset_items: None,
            storage_status_mask: None,
            object_group_member: None,
            attributes: Some(Attributes(vec![attribute])),
        })
    };
    let cn = Attribute::Other(Ttlv::new(
        Tag::CERTIFICATE_SUBJECT_CN,
        kmip::Value::TextString("kms test".into()),
    ));
    let identifier =
        a.0.iter()
            .find(|x| x.tag() == Tag::X_509_CERTIFICATE_IDENTIFIER)
            .cloned()
            .unwrap();
    for criterion in [cn, identifier] {
        let ResponsePayload::Locate(found) = run(&c.kms, "alice", locate(criterion)).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(found.unique_identifier, vec![unique_identifier.clone()]);
    }
    let e = run(&c.kms, "alice", register(b"not a certificate".to_vec()))
        .await
        .expect_err("garbage");
    assert_eq!(e.reason(), ResultReason::InvalidField, "{e}");
}

/// A CA certificate (or, with `ca` false, a certificate without basic constraints) and its key.
fn test_ca(cn: &str, ca: bool) -> (rcgen::CertificateParams, rcgen::KeyPair, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
    }
    let der = params.self_signed(&key).unwrap().der().to_vec();
    (params, key, der)
}

fn test_leaf(
    issuer: &rcgen::Issuer<'_, &rcgen::KeyPair>,
    serial: u8,
    not_after: time::OffsetDateTime,
    crl: Option<String>,
) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["leaf.example.com".to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "leaf");
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[serial]));
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(2);
    params.not_after = not_after;
    if let Some(uri) = crl {
        params.crl_distribution_points = vec![rcgen::CrlDistributionPoint { uris: vec![uri] }];
    }
    params.signed_by(&key, issuer).unwrap().der().to_vec()
}

async fn validity(kms: &Kms, chain: &[&[u8]]) -> (kmip::ValidityIndicator, Option<String>) {
    let r = run(
        kms,
        "alice",
        RequestPayload::Validate(Validate {
            certificate: chain
                .iter()
                .map(|c| Ttlv::new(Tag::CERTIFICATE, kmip::Value::ByteString(c.to_vec())))
                .collect(),
            unique_identifier: vec![],
            validity_time: None,
        }),
    )
    .await
    .unwrap();
    match r {
        ResponsePayload::Validate(v) => (v.validity_indicator, v.validity_reason),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_checks_signatures_dates_ca_and_revocation() {
    use kmip::ValidityIndicator::{Invalid, Unknown, Valid};
    let c = core(Limits::default());
    let dir = tempfile::tempdir().unwrap();
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(30);
    let (root_params, root_key, root) = test_ca("Root", true);
    let issuer = rcgen::Issuer::from_params(&root_params, &root_key);
    // A good chain, leaf first.
    let leaf = test_leaf(&issuer, 1, later, None);
    assert_eq!(validity(&c.kms, &[&leaf, &root]).await, (Valid, None));
    // An expired leaf.
    let expired = test_leaf(
        &issuer,
        2,
        time::OffsetDateTime::now_utc() - time::Duration::days(1),
        None,
    );
    let (v, why) = validity(&c.kms, &[&expired, &root]).await;
    assert_eq!(v, Invalid);
    assert!(why.unwrap().contains("not valid at that date"));
    // Signed by another key under the same name: the signature does not verify.
    let (impostor_params, impostor_key, _) = test_ca("Root", true);
    let forged = test_leaf(
        &rcgen::Issuer::from_params(&impostor_params, &impostor_key),
        3,
        later,
        None,
    );
    let (v, why) = validity(&c.kms, &[&forged, &root]).await;
    assert_eq!(v, Invalid);
    assert!(why.unwrap().contains("signature"));
    // An issuer without basic constraints.
    let (plain_params, plain_key, plain) = test_ca("Not a CA", false);
    let under_plain = test_leaf(
        &rcgen::Issuer::from_params(&plain_params, &plain_key),
        4,
        later,
        None,
    );
    let (v, why) = validity(&c.kms, &[&under_plain, &plain]).await;
    assert_eq!(v, Invalid);
    assert!(why.unwrap().contains("not a CA"));
    // Revoked by the CRL its distribution point names (file://).
    let crl_path = dir.path().join("root.crl");
    let url = format!("file://{}", crl_path.display());
    let revoked = test_leaf(&issuer, 5, later, Some(url.clone()));
    let kept = test_leaf(&issuer, 6, later, Some(url));
    let crl = rcgen::CertificateRevocationListParams {
        this_update: time::OffsetDateTime::now_utc() - time::Duration::hours(1),
        next_update: later,
        crl_number: rcgen::SerialNumber::from_slice(&[1]),
        issuing_distribution_point: None,
        revoked_certs: vec![rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from_slice(&[5]),
            revocation_time: time::OffsetDateTime::now_utc() - time::Duration::hours(1),
            reason_code: Some(rcgen::RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)
    .unwrap();
    std::fs::write(&crl_path, crl.der()).unwrap();
    let (v, why) = validity(&c.kms, &[&revoked, &root]).await;
    assert_eq!(v, Invalid);
    assert!(why.unwrap().contains("revoked"));
    assert_eq!(validity(&c.kms, &[&kept, &root]).await, (Valid, None));
    // A CRL that cannot be fetched: Unknown, without hanging.
    let unreachable = test_leaf(
        &issuer,
        7,
        later,
        Some("http://127.0.0.1:9/root.crl".into()),
    );
    let start = std::time::Instant::now();
    let (v, why) = validity(&c.kms, &[&unreachable, &root]).await;
    assert_eq!(v, Unknown, "{why:?}");
    assert!(why.unwrap().contains("cannot be read"));
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    // No root among the certificates: Unknown.
    let (v, _) = validity(&c.kms, &[&leaf]).await;
    assert_eq!(v, Unknown);
}

#[tokio::test]
async fn certify_a_pair_created_in_the_same_batch_then_re_certify() {
    let c = core(Limits::default());
    let cn = |v: &str| {
        Attribute::Other(Ttlv::new(
            Tag::CERTIFICATE_SUBJECT_CN,
            kmip::Value::TextString(v.into()),
        ))
    };
    // CreateKeyPair then Certify of the placeholder, in one batch.
    let response = c
        .kms
        .process_message(
            c.kms.context("alice"),
            message(
                vec![
                    RequestPayload::CreateKeyPair(CreateKeyPair {
                        common_attributes: Some(Attributes(vec![
                            Attribute::CryptographicAlgorithm(CryptographicAlgorithm::EC),
                            Attribute::CryptographicLength(256),
                            Attribute::ActivationDate(kmip::DateTime::now()),
                        ])),
                        private_key_attributes: None,
                        public_key_attributes: None,
                        common_protection_storage_masks: None,
                        private_protection_storage_masks: None,
                        public_protection_storage_masks: None,
                    }),
                    RequestPayload::Certify(Certify {
                        unique_identifier: None,
                        attributes: Some(Attributes(vec![cn("batch.example.com")])),
                        certificate_request_unique_identifier: None,
                        certificate_request_type: None,
                        certificate_request_value: None,
                        protection_storage_masks: None,
                    }),
                ],
                None,
            ),
        )
        .await;
    let statuses: Vec<_> = response
        .batch_item
        .iter()
        .map(|i| i.result_status)
        .collect();
    assert_eq!(
        statuses,
        vec![ResultStatus::Success, ResultStatus::Success],
        "{response:?}"
    );
    let payload = response.batch_item[1]
        .response_payload
        .clone()
        .map(|p| p.into_typed());
    let Some(Ok(ResponsePayload::Certify(UidResponse { unique_identifier }))) = &payload else {
        panic!()
    };
    let first = unique_identifier.as_text().unwrap().to_owned();
    let ResponsePayload::ReCertify(UidResponse { unique_identifier }) = run(
        &c.kms,
        "alice",
        RequestPayload::ReCertify(ReCertify {
            unique_identifier: Some(first.clone().into()),
            certificate_request_type: None,
            certificate_request_value: None,
            offset: None,
            attributes: None,
        }),
    )
    .await
    .unwrap() else {
        panic!()
    };
    let second = unique_identifier.as_text().unwrap().to_owned();
    assert_ne!(first, second);
    let old = attributes_of(&c.kms, &first).await;
    let new = attributes_of(&c.kms, &second).await;
    assert_eq!(
        linked(&old, kmip::LinkType::ReplacementObjectLink).as_deref(),
        Some(second.as_str())
    );
    assert_eq!(
        linked(&new, kmip::LinkType::ReplacedObjectLink).as_deref(),
        Some(first.as_str())
    );
    let subject = |a: &Attributes| {
        a.0.iter().find_map(|x| match x {
            Attribute::Other(t) if t.tag == Tag::CERTIFICATE_SUBJECT_CN => {
                t.as_str().ok().map(str::to_owned)
            }
            _ => None,
        })
    };
    assert_eq!(subject(&new).as_deref(), Some("batch.example.com"));
    assert_eq!(
        linked(&new, kmip::LinkType::PublicKeyLink),
        linked(&old, kmip::LinkType::PublicKeyLink)
    );
}

/// Streamed AES-GCM: an encryption in three parts equals the one-shot encryption with the same
/// IV; a streamed decryption answers the plaintext at its final part, and only with the right
/// tag; another user's CorrelationValue is refused.
#[tokio::test]
async fn streamed_gcm_encrypt_and_decrypt_match_one_shot() {
    let c = core(Limits::default());
    let ResponsePayload::Create(created) = run(
        &c.kms,
        "alice",
        RequestPayload::Create(Create {
            attributes: Attributes(vec![
                Attribute::CryptographicAlgorithm(CryptographicAlgorithm::AES),
                Attribute::CryptographicLength(256),
                Attribute::ActivationDate(kmip::DateTime::now()),
            ]),
            ..Create::symmetric_key(CryptographicAlgorithm::AES, 256)
        }),
    )
    .await
    .unwrap() else {
        panic!()
    };
    let uid = created.unique_identifier;
    let data: Vec<u8> = (0u8..100).collect();
    let iv = vec![9u8; 12];
    let encrypt =
        |init: bool, last: bool, correlation: Option<Vec<u8>>, part: &[u8], iv: Option<Vec<u8>>| {
            RequestPayload::Encrypt(Encrypt {
                iv_counter_nonce: iv,
                authenticated_encryption_additional_data: init.then(|| b"aad".to_vec()),
                init_indicator: init.then_some(true),
                final_indicator: last.then_some(true),
                correlation_value: correlation,
                ..Encrypt::new(Some(uid.clone()), part.to_vec())
            })
        };
    let ResponsePayload::Encrypt(whole) = run(
        &c.kms,
        "alice",
        RequestPayload::Encrypt(Encrypt {
            iv_counter_nonce: Some(iv.clone()),
            authenticated_encryption_additional_data: Some(b"aad".to_vec()),
            ..Encrypt::new(Some(uid.clone()), data.clone())
        }),
    )
    .await
    .unwrap() else {
        panic!()
    };
    let ResponsePayload::Encrypt(first) = run(
        &c.kms,
        "alice",
        encrypt(true, false, None, &data[..37], Some(iv.clone())),
    )
    .await
    .unwrap() else {
        panic!()
    };
    let id = first
        .correlation_value
        .clone()
        .expect("a correlation value");
    // Bob cannot continue alice's stream.
    assert!(
        run(
            &c.kms,
            "bob",
            encrypt(false, false, Some(id.clone()), &data[37..50], None)
        )
        .await
        .is_err()
    );
    let ResponsePayload::Encrypt(second) = run(
        &c.kms,
        "alice",
        encrypt(false, false, Some(id.clone()), &data[37..50], None),
    )
    .await
    .unwrap() else {
        panic!()
    };
    let ResponsePayload::Encrypt(last) = run(
        &c.kms,
        "alice",
        encrypt(false, true, Some(id.clone()), &data[50..], None),
    )
    .await
    .unwrap() else {
        panic!()
    };
    let streamed: Vec<u8> = [first.data, second.data, last.data]
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    assert_eq!(Some(streamed.clone()), whole.data);
    assert_eq!(
        last.authenticated_encryption_tag,
        whole.authenticated_encryption_tag
    );
    // The stream is closed after its final part.
    assert!(
        run(
            &c.kms,
            "alice",
            encrypt(false, true, Some(id), &data[..1], None)
        )
        .await
        .is_err()
    );

    let decrypt = |init: bool,
                   last: bool,
                   correlation: Option<Vec<u8>>,
                   part: &[u8],
                   tag: Option<Vec<u8>>| {
        RequestPayload::Decrypt(Decrypt {
            iv_counter_nonce: init.then(|| iv.clone()),
            authenticated_encryption_additional_data: init.then(|| b"aad".to_vec()),
            init_indicator: init.then_some(true),
            final_indicator: last.then_some(true),
            correlation_value: correlation,
            authenticated_encryption_tag: tag,
            ..Decrypt::new(Some(uid.clone()), part.to_vec())
        })
    };
    for good in [true, false] {
        let ResponsePayload::Decrypt(d1) = run(
            &c.kms,
            "alice",
            decrypt(true, false, None, &streamed[..60], None),
        )
        .await
        .unwrap() else {
            panic!()
        };
        assert_eq!(d1.data, None, "nothing before the tag is checked");
        let mut tag = whole.authenticated_encryption_tag.clone().unwrap();
        if !good {
            tag[0] ^= 1;
        }
        let answer = run(
            &c.kms,
            "alice",
            decrypt(
                false,
                true,
                d1.correlation_value,
                &streamed[60..],
                Some(tag),
            ),
        )
        .await;
        match answer {
            Ok(ResponsePayload::Decrypt(d)) if good => assert_eq!(d.data, Some(data.clone())),
            Err(_) if !good => {}
            other => panic!("{other:?}"),
        }
    }
}

/// RNGSeed is answered (the generator takes no outside input: 0 bytes accepted), and a seed
/// that is empty or too large is refused with the limit.
#[tokio::test]
async fn rng_seed_accepts_nothing_and_checks_its_input() {
    let c = core(Limits::default());
    let answer = call(&c.kms, "alice", RngSeed { data: vec![7; 32] }).await;
    assert_eq!(answer.data_length, 0);
    for data in [Vec::new(), vec![0; 1024 * 1024 + 1]] {
        let err = run(&c.kms, "alice", RequestPayload::RNGSeed(RngSeed { data }))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("between 1 and"), "{err}");
    }
}

/// Streamed AES-CBC (padded), AES-CTR and ChaCha20-Poly1305 through the server: three parts give
/// what one request gives, and decrypt back in three other parts.
#[tokio::test]
async fn streamed_cbc_ctr_and_chacha_match_one_shot() {
    let c = core(Limits::default());
    let cases = [
        (
            CryptographicAlgorithm::AES,
            Some(kmip::BlockCipherMode::CBC),
            Some(kmip::PaddingMethod::PKCS5),
            16,
        ),
        (
            CryptographicAlgorithm::AES,
            Some(kmip::BlockCipherMode::CTR),
            None,
            16,
        ),
        (CryptographicAlgorithm::ChaCha20Poly1305, None, None, 12),
    ];
    for (algorithm, mode, padding, iv_len) in cases {
        let ResponsePayload::Create(created) = run(
            &c.kms,
            "alice",
            RequestPayload::Create(Create {
                attributes: Attributes(vec![
                    Attribute::CryptographicAlgorithm(algorithm),
                    Attribute::CryptographicLength(256),
                    Attribute::ActivationDate(kmip::DateTime::now()),
                ]),
                ..Create::symmetric_key(algorithm, 256)
            }),
        )
        .await
        .unwrap() else {
            panic!()
        };
        let uid = created.unique_identifier;
        let params = CryptographicParameters {
            block_cipher_mode: mode,
            padding_method: padding,
            cryptographic_algorithm: Some(algorithm),
            ..Default::default()
        };
        let iv = vec![3u8; iv_len];
        let data: Vec<u8> = (0u8..77).collect();
        let ResponsePayload::Encrypt(whole) = run(
            &c.kms,
            "alice",
            RequestPayload::Encrypt(Encrypt {
                cryptographic_parameters: Some(params.clone()),
                iv_counter_nonce: Some(iv.clone()),
                ..Encrypt::new(Some(uid.clone()), data.clone())
            }),
        )
        .await
        .unwrap() else {
            panic!()
        };
        let whole_data = whole.data.clone().unwrap();
        // Encrypt in parts of 5, 40 and 32 bytes.
        let mut correlation = None;
        let mut streamed = Vec::new();
        let mut tag = None;
        for (i, part) in [&data[..5], &data[5..45], &data[45..]]
            .into_iter()
            .enumerate()
        {
            let ResponsePayload::Encrypt(r) = run(
                &c.kms,
                "alice",
                RequestPayload::Encrypt(Encrypt {
                    cryptographic_parameters: Some(params.clone()),
                    iv_counter_nonce: (i == 0).then(|| iv.clone()),
                    init_indicator: (i == 0).then_some(true),
                    final_indicator: (i == 2).then_some(true),
                    correlation_value: correlation.clone(),
                    ..Encrypt::new(Some(uid.clone()), part.to_vec())
                }),
            )
            .await
            .unwrap() else {
                panic!()
            };
            streamed.extend(r.data.unwrap_or_default());
            correlation = r.correlation_value.or(correlation);
            tag = r.authenticated_encryption_tag.or(tag);
        }
        assert_eq!(streamed, whole_data, "{algorithm:?} {mode:?}");
        assert_eq!(tag, whole.authenticated_encryption_tag, "{algorithm:?}");
        // Decrypt in parts of 17, 1 and the rest.
        let mut correlation = None;
        let mut plain = Vec::new();
        let cuts = [0, 17, 18, whole_data.len()];
        for i in 0..3 {
            let ResponsePayload::Decrypt(r) = run(
                &c.kms,
                "alice",
                RequestPayload::Decrypt(Decrypt {
                    cryptographic_parameters: Some(params.clone()),
                    iv_counter_nonce: (i == 0).then(|| iv.clone()),
                    init_indicator: (i == 0).then_some(true),
                    final_indicator: (i == 2).then_some(true),
                    correlation_value: correlation.clone(),
                    authenticated_encryption_tag: if i == 2 { tag.clone() } else { None },
                    ..Decrypt::new(Some(uid.clone()), whole_data[cuts[i]..cuts[i + 1]].to_vec())
                }),
            )
            .await
            .unwrap() else {
                panic!()
            };
            plain.extend(r.data.unwrap_or_default());
            correlation = r.correlation_value.or(correlation);
        }
        assert_eq!(plain, data, "{algorithm:?} {mode:?}");
    }
}

/// A registered three-key Triple DES key encrypts in CBC with PKCS#5 padding (the default for
/// DES3) as `openssl enc -des-ede3-cbc` does, and decrypts back.
#[tokio::test]
async fn triple_des_matches_openssl() {
    let c = core(Limits::default());
    let key = unhex("0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123");
    let ResponsePayload::Register(UidResponse { unique_identifier }) = run(
        &c.kms,
        "alice",
        RequestPayload::Register(Register {
            object_type: ObjectType::SymmetricKey,
            attributes: Attributes(vec![
                Attribute::CryptographicUsageMask(0x0C),
                Attribute::ActivationDate(kmip::DateTime::now()),
            ]),
            object: Object::symmetric_key(CryptographicAlgorithm::DES3, 168, key),
            protection_storage_masks: None,
        }),
    )
    .await
    .unwrap() else {
        panic!()
    };
    let iv = unhex("0011223344556677");
    let ResponsePayload::Encrypt(e) = run(
        &c.kms,
        "alice",
        RequestPayload::Encrypt(Encrypt {
            iv_counter_nonce: Some(iv.clone()),
            ..Encrypt::new(
                Some(unique_identifier.clone()),
                b"The qufck brown fox jump".to_vec(),
            )
        }),
    )
    .await
    .unwrap() else {
        panic!()
    };
    assert_eq!(
        e.data.clone().unwrap(),
        unhex("256554b72a698322ff9b1a0d888c3a5e7f94342f68b4faaf1396b8e571acd5c6")
    );
    let ResponsePayload::Decrypt(d) = run(
        &c.kms,
        "alice",
        RequestPayload::Decrypt(Decrypt {
            iv_counter_nonce: Some(iv),
            ..Decrypt::new(Some(unique_identifier), e.data.unwrap())
        }),
    )
    .await
    .unwrap() else {
        panic!()
    };
    assert_eq!(d.data.unwrap(), b"The qufck brown fox jump");
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
