//! Property tests: every encoding round-trips any tree; typed values round-trip through the
//! tree; arbitrary input never panics a decoder.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use kmip::model::{
    Attribute, Attributes, CryptographicParameters, Encrypt, Item, Link, Locate, Name,
    RequestBatchItem, RequestHeader, RequestMessage, RequestPayload, UniqueIdentifier,
};
use kmip::{
    BlockCipherMode, CryptographicAlgorithm, DateTime, LinkType, NameType, Operation, State, Tag,
    Ttlv, Value, binary, json, xml,
};
use proptest::prelude::*;

fn tag() -> impl Strategy<Value = Tag> {
    prop_oneof![
        4 => (0x420001u32..0x420162).prop_map(Tag),
        1 => (0x540000u32..0x540010).prop_map(Tag),
    ]
}

fn big_integer() -> impl Strategy<Value = Vec<u8>> {
    (1usize..4).prop_flat_map(|words| proptest::collection::vec(any::<u8>(), words * 8))
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i32>().prop_map(Value::Integer),
        any::<i64>().prop_map(Value::LongInteger),
        big_integer().prop_map(Value::BigInteger),
        any::<u32>().prop_map(Value::Enumeration),
        any::<bool>().prop_map(Value::Boolean),
        "[^$]{0,20}".prop_map(Value::TextString),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::ByteString),
        (-62_135_596_800i64..253_402_300_799).prop_map(|s| Value::DateTime(DateTime(s))),
        any::<u32>().prop_map(Value::Interval),
        any::<i64>().prop_map(Value::DateTimeExtended),
    ]
}

fn tree() -> impl Strategy<Value = Ttlv> {
    let leaf_item = (tag(), leaf()).prop_map(|(t, v)| Ttlv::new(t, v));
    leaf_item.prop_recursive(4, 64, 8, |inner| {
        (tag(), proptest::collection::vec(inner, 0..8)).prop_map(|(t, c)| Ttlv::structure(t, c))
    })
}

fn attribute() -> impl Strategy<Value = Attribute> {
    prop_oneof![
        "[a-z]{1,12}".prop_map(|n| Attribute::Name(Name {
            name_value: n,
            name_type: NameType::UninterpretedTextString
        })),
        (1i32..4096).prop_map(Attribute::CryptographicLength),
        any::<i32>().prop_map(Attribute::CryptographicUsageMask),
        Just(Attribute::CryptographicAlgorithm(
            CryptographicAlgorithm::AES
        )),
        Just(Attribute::State(State::Active)),
        "[a-z]{1,8}".prop_map(Attribute::ObjectGroup),
        (0i64..4_000_000_000).prop_map(|s| Attribute::ActivationDate(DateTime(s))),
        "[a-z0-9-]{1,36}".prop_map(|u| Attribute::Link(Link {
            link_type: LinkType::ParentLink,
            linked_object_identifier: UniqueIdentifier::Text(u),
        })),
    ]
}

fn encrypt() -> impl Strategy<Value = Encrypt> {
    (
        proptest::option::of("[a-z0-9-]{1,36}"),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 12..=12)),
        any::<bool>(),
    )
        .prop_map(|(uid, data, iv, gcm)| Encrypt {
            unique_identifier: uid.map(UniqueIdentifier::Text),
            cryptographic_parameters: gcm.then(|| CryptographicParameters {
                block_cipher_mode: Some(BlockCipherMode::GCM),
                tag_length: Some(16),
                ..CryptographicParameters::default()
            }),
            data,
            iv_counter_nonce: iv,
            correlation_value: None,
            init_indicator: None,
            final_indicator: None,
            authenticated_encryption_additional_data: None,
        })
}

fn header(count: i32) -> RequestHeader {
    RequestHeader::new(2, 1, count)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn binary_round_trip(t in tree()) {
        let bytes = binary::encode(&t);
        prop_assert_eq!(bytes.len() % 8, 0);
        prop_assert_eq!(binary::encoded_len(&t), bytes.len());
        prop_assert_eq!(binary::decode(&bytes, &binary::Limits::default()).unwrap(), t);
    }

    /// JSON writes the instances of one attribute next to each other inside `Attributes`, as
    /// Cosmian's clients read them (`json::as_written`): the round trip gives that order.
    #[test]
    fn json_round_trip(t in tree()) {
        prop_assert_eq!(json::from_str(&json::to_string(&t)).unwrap(), json::as_written(&t));
    }

    /// JSON TTLV is read in one pass when written the common way and by serde_json otherwise
    /// (`json::from_str`): both read the same tree from the text this crate writes, and from
    /// that text with one byte changed, added or removed, or a space added (where one declines,
    /// the other gives the error).
    #[test]
    fn json_fast_path_agrees(
        t in tree(),
        at in any::<proptest::sample::Index>(),
        byte in prop_oneof![any::<u8>(), Just(b' '), Just(b'"'), Just(b'-'), Just(b'0'), Just(b'\\')],
        change in 0u8..3,
    ) {
        let text = json::to_string(&t);
        prop_assert_eq!(json::from_str(&text).unwrap(), json::from_str_general(&text).unwrap());
        let mut bytes = text.into_bytes();
        let i = at.index(bytes.len());
        match change {
            0 => bytes[i] = byte,
            1 => bytes.insert(i, byte),
            _ => {
                bytes.remove(i);
            }
        }
        if let Ok(changed) = String::from_utf8(bytes) {
            match (json::from_str(&changed), json::from_str_general(&changed)) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                (a, b) => prop_assert!(false, "{changed}: {a:?} against {b:?}"),
            }
        }
    }

    #[test]
    fn xml_round_trip(t in tree()) {
        prop_assert_eq!(xml::from_str(&xml::to_string(&t)).unwrap(), t);
    }

    #[test]
    fn typed_round_trip(attrs in proptest::collection::vec(attribute(), 0..10), enc in encrypt()) {
        let attributes = Attributes(attrs);
        let tree = attributes.to_ttlv(Tag::ATTRIBUTES);
        prop_assert_eq!(Attributes::from_ttlv(&tree).unwrap(), attributes.clone());
        let msg = RequestMessage {
            request_header: header(2),
            batch_item: vec![
                RequestBatchItem {
                    operation: Operation::Encrypt,
                    ephemeral: None,
                    unique_batch_item_id: Some(vec![1]),
                    request_payload: RequestPayload::Encrypt(enc),
                    message_extension: None,
                },
                RequestBatchItem {
                    operation: Operation::Locate,
                    ephemeral: None,
                    unique_batch_item_id: None,
                    request_payload: RequestPayload::Locate(Locate {
                        maximum_items: Some(3),
                        offset_items: None,
                        storage_status_mask: None,
                        object_group_member: None,
                        attributes: Some(attributes),
                    }),
                    message_extension: None,
                },
            ],
        };
        let bytes = binary::encode(&msg.encode());
        let back = RequestMessage::decode(&binary::decode(&bytes, &binary::Limits::default()).unwrap()).unwrap();
        prop_assert_eq!(&back, &msg);
        // JSON writes the instances of one attribute together (for Cosmian's clients), keeping
        // their order: the message comes back as `as_written` says.
        let tree = msg.encode();
        let written = json::as_written(&tree);
        let from_json = json::from_str(&json::to_string(&tree)).unwrap();
        prop_assert_eq!(&from_json, &written);
        prop_assert_eq!(RequestMessage::decode(&from_json).unwrap().encode(), written);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = binary::decode(&bytes, &binary::Limits::default());
        if bytes.len() >= 8 {
            let header: [u8; 8] = bytes[..8].try_into().unwrap();
            let _ = binary::message_length(&header, &binary::Limits::default());
        }
        let _ = json::from_slice(&bytes);
        let _ = xml::from_str(&String::from_utf8_lossy(&bytes));
        if let Ok(t) = binary::decode(&bytes, &binary::Limits::default()) {
            let _ = RequestMessage::decode(&t);
        }
    }

    #[test]
    fn mutated_messages_never_panic(t in tree(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = binary::encode(&Ttlv::structure(Tag::REQUEST_MESSAGE, vec![t]));
        for (at, b) in flips {
            let i = at % bytes.len();
            bytes[i] = b;
        }
        if let Ok(tree) = binary::decode(&bytes, &binary::Limits::default()) {
            let _ = RequestMessage::decode(&tree);
        }
    }
}
