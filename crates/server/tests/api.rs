//! The HTTP API end to end: JSON TTLV single operations, binary and XML batches, the key
//! lifecycle, errors, and persistence across restarts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

mod common;

use common::TestServer;
use kmip::model::*;
use kmip::{
    BlockCipherMode, CryptographicAlgorithm, HashingAlgorithm, PaddingMethod, ResultReason,
    ResultStatus, RevocationReasonCode, State, ValidityIndicator,
};
use kms_client::{ClientError, KmsClient, Request, op, single_message};

fn aes_create(tags: &[&str]) -> Create {
    Create::symmetric_key(CryptographicAlgorithm::AES, 256).with_user_tags(tags)
}

async fn create_active(client: &KmsClient, tags: &[&str]) -> String {
    let c = client.call(aes_create(tags)).await.expect("create");
    let uid = c.unique_identifier.as_text().expect("text uid").to_owned();
    client
        .call(op::Activate::new(&uid))
        .await
        .expect("activate");
    uid
}

fn encrypt(uid: &str, data: &[u8], params: Option<CryptographicParameters>) -> Encrypt {
    let aead = params
        .as_ref()
        .and_then(|p| p.block_cipher_mode)
        .is_none_or(|m| m != BlockCipherMode::CBC);
    Encrypt {
        cryptographic_parameters: params,
        authenticated_encryption_additional_data: aead.then(|| b"aad".to_vec()),
        ..Encrypt::new(Some(uid.into()), data.to_vec())
    }
}

fn decrypt(uid: &str, e: &EncryptResponse, params: Option<CryptographicParameters>) -> Decrypt {
    let aead = params
        .as_ref()
        .and_then(|p| p.block_cipher_mode)
        .is_none_or(|m| m != BlockCipherMode::CBC);
    Decrypt {
        cryptographic_parameters: params,
        authenticated_encryption_additional_data: aead.then(|| b"aad".to_vec()),
        ..Decrypt::of(Some(uid.into()), e)
    }
}

async fn get_attributes(client: &KmsClient, uid: &str) -> Attributes {
    client
        .call(GetAttributes::all(uid))
        .await
        .expect("get attributes")
        .attributes
}

#[tokio::test]
async fn symmetric_lifecycle_over_json() {
    let t = TestServer::builder().start().await;
    let client = KmsClient::with_url(&t.url).unwrap();
    let uid = create_active(&client, &["lifecycle"]).await;
    assert_eq!(
        get_attributes(&client, &uid).await.state(),
        Some(State::Active)
    );

    // A key serves one mode (the first it is used with): one key per mode.
    for mode in [
        None,
        Some(BlockCipherMode::GCM),
        Some(BlockCipherMode::CBC),
        Some(BlockCipherMode::GCMSIV),
    ] {
        let uid = match mode {
            None => uid.clone(),
            Some(_) => create_active(&client, &[]).await,
        };
        let params = mode.map(|m| CryptographicParameters {
            block_cipher_mode: Some(m),
            padding_method: (m == BlockCipherMode::CBC).then_some(PaddingMethod::PKCS5),
            ..Default::default()
        });
        let e = client
            .call(encrypt(&uid, b"hello world", params.clone()))
            .await
            .expect("encrypt");
        assert_ne!(e.data.as_deref(), Some(&b"hello world"[..]));
        let d = client
            .call(decrypt(&uid, &e, params))
            .await
            .expect("decrypt");
        assert_eq!(
            d.data.as_deref(),
            Some(&b"hello world"[..]),
            "mode {mode:?}"
        );
    }

    // A tampered ciphertext is refused.
    let mut e = client.call(encrypt(&uid, b"secret", None)).await.unwrap();
    if let Some(d) = e.data.as_mut() {
        d[0] ^= 1;
    }
    let err = client
        .call(decrypt(&uid, &e, None))
        .await
        .expect_err("tampered");
    assert!(
        matches!(err, ClientError::Server { status: 422, .. }),
        "{err}"
    );

    // An active key cannot be destroyed.
    let err = client
        .call(Destroy::new(&uid))
        .await
        .expect_err("destroy active");
    assert!(err.to_string().contains("revoke it first"), "{err}");

    client
        .call(Revoke::new(
            &uid,
            RevocationReasonCode::CessationOfOperation,
        ))
        .await
        .expect("revoke");
    assert_eq!(
        get_attributes(&client, &uid).await.state(),
        Some(State::Deactivated)
    );
    // A deactivated key no longer encrypts.
    assert!(client.call(encrypt(&uid, b"x", None)).await.is_err());
    client.call(Destroy::new(&uid)).await.expect("destroy");
    let attrs = get_attributes(&client, &uid).await;
    assert_eq!(attrs.state(), Some(State::Destroyed), "metadata kept");
    let err = client
        .call(Get::new(&uid))
        .await
        .expect_err("material gone");
    assert!(err.to_string().contains("destroyed"), "{err}");
    t.server.stop().await;
}

#[tokio::test]
async fn usage_mask_is_enforced() {
    let t = TestServer::builder().start().await;
    let client = KmsClient::with_url(&t.url).unwrap();
    let create = Create::symmetric_key(CryptographicAlgorithm::AES, 128)
        .with_usage_mask(0x8) // Decrypt only
        .with_unique_identifier("decrypt-only");
    client.call(create).await.unwrap();
    client
        .call(op::Activate::new("decrypt-only"))
        .await
        .unwrap();
    let err = client
        .call(encrypt("decrypt-only", b"x", None))
        .await
        .expect_err("mask forbids encrypt");
    assert!(err.to_string().contains("usage mask"), "{err}");
    t.server.stop().await;
}

#[tokio::test]
async fn locate_register_attributes_and_primitives() {
    let t = TestServer::builder().start().await;
    let client = KmsClient::with_url(&t.url).unwrap();
    let a = create_active(&client, &["red", "blue"]).await;
    let b = create_active(&client, &["red"]).await;
    let locate = |tags: &[&str], max: Option<i32>| Locate {
        maximum_items: max,
        ..Locate::matching(Attributes::new().with_user_tags(tags))
    };
    let l = client.call(locate(&["red"], None)).await.unwrap();
    let found: Vec<_> = l
        .unique_identifier
        .iter()
        .filter_map(|u| u.as_text().map(str::to_owned))
        .collect();
    assert_eq!(found, vec![a.clone(), b.clone()]);
    let l = client.call(locate(&["red", "blue"], None)).await.unwrap();
    assert_eq!(l.unique_identifier.len(), 1);
    let l = client.call(locate(&["red"], Some(1))).await.unwrap();
    assert_eq!((l.unique_identifier.len(), l.located_items), (1, Some(2)));

    // Register a secret data, then add, modify and delete attributes.
    let register = Register::new(
        Attributes(vec![Attribute::CryptographicUsageMask(0x4)]),
        Object::secret_data(kmip::SecretDataType::Password, b"pw".to_vec()),
    );
    let r = client.call(register).await.unwrap();
    let sd = r.unique_identifier.as_text().unwrap().to_owned();
    let add = |attr: Attribute| op::AddAttribute::new(&sd, attr);
    client
        .call(add(Attribute::ObjectGroup("g1".into())))
        .await
        .unwrap();
    client
        .call(add(Attribute::ObjectGroup("g2".into())))
        .await
        .unwrap();
    let err = client
        .call(add(Attribute::State(State::Active)))
        .await
        .expect_err("read-only");
    assert!(err.to_string().contains("read-only"), "{err}");
    client
        .call(ModifyAttribute {
            unique_identifier: Some(sd.clone().into()),
            current_attribute: Some(AttributeHolder(Attribute::ObjectGroup("g1".into()))),
            new_attribute: AttributeHolder(Attribute::ObjectGroup("g3".into())),
        })
        .await
        .unwrap();
    let groups: Vec<String> = get_attributes(&client, &sd)
        .await
        .object_groups()
        .map(str::to_owned)
        .collect();
    assert_eq!(groups, ["g3", "g2"]);
    client
        .call(DeleteAttribute {
            unique_identifier: Some(sd.clone().into()),
            current_attribute: Some(AttributeHolder(Attribute::ObjectGroup("g2".into()))),
            attribute_reference: None,
        })
        .await
        .unwrap();
    let groups: Vec<String> = get_attributes(&client, &sd)
        .await
        .object_groups()
        .map(str::to_owned)
        .collect();
    assert_eq!(groups, ["g3"]);

    // Hash, RNG, MAC.
    let h = client
        .call(Hash::new(HashingAlgorithm::SHA_256, b"abc".to_vec()))
        .await
        .unwrap();
    assert_eq!(h.data.unwrap()[..4], [0xba, 0x78, 0x16, 0xbf]);
    let r = client.call(RngRetrieve { data_length: 48 }).await.unwrap();
    assert_eq!(r.data.len(), 48);
    client
        .call(
            Create::symmetric_key(CryptographicAlgorithm::HMAC_SHA256, 256)
                .with_unique_identifier("hmac-key"),
        )
        .await
        .unwrap();
    client.call(op::Activate::new("hmac-key")).await.unwrap();
    let m = client
        .call(Mac::new("hmac-key", b"msg".to_vec()))
        .await
        .unwrap();
    let verify = |mac: Vec<u8>| MacVerify::new("hmac-key", b"msg".to_vec(), mac);
    let mac = m.mac_data.unwrap();
    let v = client.call(verify(mac.clone())).await.unwrap();
    assert_eq!(v.validity_indicator, ValidityIndicator::Valid);
    let mut bad = mac;
    bad[0] ^= 1;
    let v = client.call(verify(bad)).await.unwrap();
    assert_eq!(v.validity_indicator, ValidityIndicator::Invalid);
    t.server.stop().await;
}

#[tokio::test]
async fn binary_batch_with_id_placeholder_and_errors() {
    let t = TestServer::builder().start().await;
    let client = KmsClient::with_url(&t.url).unwrap();
    // Create then Activate then Encrypt in one batch, the later items using the placeholder.
    let mut message = single_message(aes_create(&[]).into_payload());
    for payload in [
        RequestPayload::Activate(UidRequest {
            unique_identifier: None,
        }),
        RequestPayload::Encrypt(Encrypt::new(None, b"batch".to_vec())),
    ] {
        message.batch_item.push(RequestBatchItem {
            operation: payload.operation(),
            ephemeral: None,
            unique_batch_item_id: None,
            request_payload: payload,
            message_extension: None,
        });
    }
    message.request_header.batch_count = 3;
    let response = client.send_binary(&message).await.expect("binary batch");
    assert_eq!(response.batch_item.len(), 3);
    assert!(
        response
            .batch_item
            .iter()
            .all(|i| i.result_status == ResultStatus::Success),
        "{response:?}"
    );

    // A failing item is a result status inside a 200, and stops the batch.
    let mut failing = single_message(Get::new("missing").into_payload());
    failing.batch_item.push(failing.batch_item[0].clone());
    let response = client
        .send_binary(&failing)
        .await
        .expect("200 with failure");
    assert_eq!(response.batch_item.len(), 1);
    assert_eq!(
        response.batch_item[0].result_reason,
        Some(ResultReason::ObjectNotFound)
    );

    // Garbage is an InvalidMessage answer, not a crash or a 500.
    let raw = reqwest::Client::new()
        .post(format!("{}/kmip", t.url))
        .header("content-type", "application/octet-stream")
        .body(vec![
            0x42, 0x00, 0x78, 0x01, 0xff, 0xff, 0xff, 0xff, 1, 2, 3,
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    let tree = kmip::binary::decode(
        &raw.bytes().await.unwrap(),
        &kmip::binary::Limits::default(),
    )
    .unwrap();
    let r = ResponseMessage::decode(&tree).unwrap();
    assert_eq!(
        r.batch_item[0].result_reason,
        Some(ResultReason::InvalidMessage)
    );
    t.server.stop().await;
}

#[tokio::test]
async fn kmip_1_4_binary_client_gets_a_1_4_answer() {
    let t = TestServer::builder().start().await;
    // The SKLC-M-1-14 Create request, in binary, with KMIP 1.4 TemplateAttribute.
    let xml = r#"<RequestMessage>
      <RequestHeader><ProtocolVersion><ProtocolVersionMajor type="Integer" value="1"/><ProtocolVersionMinor type="Integer" value="4"/></ProtocolVersion><BatchCount type="Integer" value="1"/></RequestHeader>
      <BatchItem><Operation type="Enumeration" value="Create"/><RequestPayload>
        <ObjectType type="Enumeration" value="SymmetricKey"/>
        <TemplateAttribute>
          <Attribute><AttributeName type="TextString" value="Cryptographic Algorithm"/><AttributeValue type="Enumeration" value="AES"/></Attribute>
          <Attribute><AttributeName type="TextString" value="Cryptographic Length"/><AttributeValue type="Integer" value="256"/></Attribute>
          <Attribute><AttributeName type="TextString" value="Cryptographic Usage Mask"/><AttributeValue type="Integer" value="Encrypt Decrypt"/></Attribute>
        </TemplateAttribute>
      </RequestPayload></BatchItem></RequestMessage>"#;
    let tree = kmip::xml::from_str(xml).unwrap();
    let raw = reqwest::Client::new()
        .post(format!("{}/kmip", t.url))
        .header("content-type", "application/octet-stream")
        .body(kmip::binary::encode(&tree))
        .send()
        .await
        .unwrap();
    let tree = kmip::binary::decode(
        &raw.bytes().await.unwrap(),
        &kmip::binary::Limits::default(),
    )
    .unwrap();
    assert_eq!(kmip::v1::message_version(&tree), Some((1, 4)));
    let text = kmip::xml::to_string(&tree);
    assert!(
        text.contains(r#"<ResultStatus type="Enumeration" value="Success"/>"#),
        "{text}"
    );
    // Nothing later than KMIP 1.4 in the answer.
    fn max_tag(t: &kmip::Ttlv) -> u32 {
        t.children()
            .map(|c| c.iter().map(max_tag).max().unwrap_or(0))
            .unwrap_or(0)
            .max(t.tag.0)
    }
    assert!(max_tag(&tree) <= 0x420124);
    t.server.stop().await;
}

#[tokio::test]
async fn survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestServer::builder()
        .sqlite_dir(dir.path().to_owned())
        .start()
        .await;
    let client = KmsClient::with_url(&t.url).unwrap();
    let uid = create_active(&client, &["persist"]).await;
    let e = client.call(encrypt(&uid, b"kept", None)).await.unwrap();
    t.server.stop().await;

    let t = TestServer::builder()
        .sqlite_dir(dir.path().to_owned())
        .start()
        .await;
    let client = KmsClient::with_url(&t.url).unwrap();
    let d = client
        .call(decrypt(&uid, &e, None))
        .await
        .expect("key is still there");
    assert_eq!(d.data.as_deref(), Some(&b"kept"[..]));
    t.server.stop().await;
}

#[tokio::test]
async fn json_errors_are_clear() {
    let t = TestServer::builder().start().await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/kmip/2_1", t.url))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("JSON"));
    let r = http
        .post(format!("{}/kmip/2_1", t.url))
        .body(r#"{"tag":"Get","type":"Structure","value":[{"tag":"UniqueIdentifier","type":"TextString","value":"nope"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("nope"));
    let r = http.get(format!("{}/health", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http.get(format!("{}/version", t.url)).send().await.unwrap();
    assert_eq!(
        r.headers()[reqwest::header::CONTENT_TYPE],
        "application/json"
    );
    assert_eq!(
        r.text().await.unwrap(),
        format!("\"{}\"", env!("CARGO_PKG_VERSION"))
    );
    t.server.stop().await;
}

#[tokio::test]
async fn usage_limits_are_counted() {
    let t = TestServer::builder().start().await;
    let client = KmsClient::with_url(&t.url).unwrap();
    let create = Create::symmetric_key(CryptographicAlgorithm::AES, 128)
        .with_unique_identifier("limited")
        .with(Attribute::UsageLimits(UsageLimits {
            usage_limits_total: 16,
            usage_limits_count: None,
            usage_limits_unit: kmip::UsageLimitsUnit::Byte,
        }))
        .with_usage_mask(0x4 | 0x8);
    client.call(create).await.unwrap();
    client.call(op::Activate::new("limited")).await.unwrap();
    client
        .call(encrypt("limited", &[1; 16], None))
        .await
        .expect("16 bytes are allowed");
    let left = get_attributes(&client, "limited")
        .await
        .usage_limits()
        .and_then(|l| l.usage_limits_count);
    assert_eq!(left, Some(0));
    let err = client
        .call(encrypt("limited", &[1; 1], None))
        .await
        .expect_err("the limit is reached");
    assert!(err.to_string().contains("usage limits"), "{err}");
    t.server.stop().await;
}

#[tokio::test]
async fn undo_batch_restores_what_it_changed() {
    let t = TestServer::builder().start().await;
    let client = KmsClient::with_url(&t.url).unwrap();
    let c = client.call(aes_create(&[])).await.unwrap();
    let existing = c.unique_identifier.as_text().unwrap().to_owned();
    // Activate the existing key, create another one, then fail: everything is undone.
    let mut message = single_message(op::Activate::new(&existing).into_payload());
    message.request_header.batch_error_continuation_option =
        Some(kmip::BatchErrorContinuationOption::Undo);
    for payload in [
        aes_create(&[])
            .with_unique_identifier("undone-key")
            .into_payload(),
        Get::new("missing").into_payload(),
    ] {
        message.batch_item.push(RequestBatchItem {
            operation: payload.operation(),
            ephemeral: None,
            unique_batch_item_id: None,
            request_payload: payload,
            message_extension: None,
        });
    }
    let response = client.send_binary(&message).await.unwrap();
    let statuses: Vec<ResultStatus> = response
        .batch_item
        .iter()
        .map(|i| i.result_status)
        .collect();
    assert_eq!(
        statuses,
        [
            ResultStatus::OperationUndone,
            ResultStatus::OperationUndone,
            ResultStatus::OperationFailed
        ]
    );
    assert_eq!(
        get_attributes(&client, &existing).await.state(),
        Some(State::PreActive)
    );
    let gone = client.call(GetAttributes::all("undone-key")).await;
    assert!(gone.is_err(), "the created key is removed");
    t.server.stop().await;
}

/// Slow or idle clients cannot hold the server: a connection that sends no complete headers in
/// time is closed, and connections beyond the cap are closed at once.
#[tokio::test]
async fn idle_connections_are_closed_and_capped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = TestServer::builder()
        .connections(kms_server::listener::ConnectionLimits {
            max_connections: 2,
            header_read_timeout: std::time::Duration::from_secs(1),
        })
        .start()
        .await;
    let closed = |mut s: tokio::net::TcpStream, within: u64| async move {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(within), s.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    };
    // Two idle connections fill the cap; a third is closed at once.
    let first = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    let mut second = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    second
        .write_all(b"GET /version HTTP/1.1\r\nHo")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let third = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    assert!(
        closed(third, 1).await,
        "a connection beyond the cap is closed"
    );
    // The silent one and the one stuck in its headers are closed after the timeout.
    assert!(closed(first, 5).await, "an idle connection is closed");
    assert!(closed(second, 5).await, "a slow header is cut off");
    // Then the server answers again.
    let version = reqwest::get(format!("{}/version", t.url)).await.unwrap();
    assert_eq!(version.status(), 200);
    t.server.stop().await;
}

/// A client that sends its request and then shuts its side of the connection (a half-close,
/// as `nc -N` and some HTTP/1.0 clients do) still gets its answer, here to a durable Create.
#[tokio::test]
async fn a_client_that_half_closes_after_its_request_gets_its_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = TestServer::builder().start().await;
    let body = r#"{"tag":"Create","type":"Structure","value":[{"tag":"ObjectType","type":"Enumeration","value":"SymmetricKey"},{"tag":"Attributes","type":"Structure","value":[{"tag":"CryptographicAlgorithm","type":"Enumeration","value":"AES"},{"tag":"CryptographicLength","type":"Integer","value":256}]}]}"#;
    let mut stream = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    let request = format!(
        "POST /kmip/2_1 HTTP/1.1\r\nHost: kms\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the server answers and then closes the connection")
    .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("UniqueIdentifier"), "{answer}");
    t.server.stop().await;
}

/// A request cut off by the server's deadline is told that its change may have been made:
/// here the Create is already with the database writer when the deadline passes, and it does
/// commit.
#[tokio::test]
async fn a_timed_out_write_says_its_outcome_is_unknown() {
    let t = TestServer::builder()
        .request_timeout(std::time::Duration::ZERO)
        .start()
        .await;
    let client = KmsClient::with_url(&t.url).unwrap();
    // The deadline is checked after the handler's first step, and tokio's timers tick by the
    // millisecond: a write that completes within that tick (a fast disk, the machine idle at
    // the right moment) succeeds, and the next attempt is timed out. Up to a hundred tries: on
    // a fast machine most attempts can beat the tick.
    let mut attempts = 0;
    let err = loop {
        attempts += 1;
        match client
            .call(
                Create::symmetric_key(CryptographicAlgorithm::AES, 256)
                    .with_unique_identifier(format!("late-{attempts}")),
            )
            .await
        {
            Err(e @ ClientError::Server { .. }) => break e,
            _ if attempts >= 100 => {
                panic!("a hundred writes beat a zero deadline or lost their connection")
            }
            // A write may beat the deadline; and the answer may come before the server read the
            // whole body, the client then seeing the connection close instead. Another try.
            _ => continue,
        }
    };
    let ClientError::Server { status, message } = &err else {
        panic!("a server answer: {err}")
    };
    assert_eq!(*status, 504);
    assert!(
        message.contains("may or may not have been made"),
        "{message}"
    );
    t.server.stop().await;
}

/// The access rights routes with Cosmian's JSON shapes, as the owner (the default user) uses
/// them; bad requests say what to do, and an object nobody showed is not found.
#[tokio::test]
async fn access_rights_routes() {
    let t = TestServer::builder().start().await;
    let client = KmsClient::with_url(&t.url).unwrap();
    let uid = create_active(&client, &["acl"]).await;
    let http = reqwest::Client::new();
    let post = |route: &str, body: serde_json::Value| {
        http.post(format!("{}{route}", t.url)).json(&body).send()
    };
    let (http_ref, base) = (&http, t.url.as_str());
    let get_json = move |route: String| async move {
        let r = http_ref.get(format!("{base}{route}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{route}");
        r.json::<serde_json::Value>().await.unwrap()
    };
    let grant = serde_json::json!({
        "unique_identifier": uid, "user_id": "bob", "operation_types": ["encrypt", "decrypt"]
    });
    let r = post("/access/grant", grant).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.json::<serde_json::Value>().await.unwrap()["success"].is_string());
    let everyone = serde_json::json!({
        "unique_identifier": uid, "user_id": "*", "operation_types": ["get"]
    });
    assert_eq!(post("/access/grant", everyone).await.unwrap().status(), 200);
    assert_eq!(
        get_json(format!("/access/list/{uid}")).await,
        serde_json::json!([
            {"user_id": "*", "operations": ["get"]},
            {"user_id": "bob", "operations": ["decrypt", "encrypt"]},
        ])
    );
    let owned = get_json("/access/owned".into()).await;
    assert_eq!(owned[0]["object_id"], uid.as_str());
    assert_eq!(owned[0]["state"], "Active");
    assert_eq!(owned[0]["attributes"]["CryptographicAlgorithm"], "AES");
    assert_eq!(get_json("/objects/owned".into()).await, owned);
    assert_eq!(
        get_json("/access/obtained".into()).await,
        serde_json::json!([])
    );

    let revoke = serde_json::json!({
        "unique_identifier": uid, "user_id": "bob", "operation_types": ["encrypt"]
    });
    assert_eq!(post("/access/revoke", revoke).await.unwrap().status(), 200);
    assert_eq!(
        get_json(format!("/access/list/{uid}")).await[1],
        serde_json::json!({"user_id": "bob", "operations": ["decrypt"]})
    );

    let unknown_op = serde_json::json!({
        "unique_identifier": uid, "user_id": "bob", "operation_types": ["fly"]
    });
    let r = post("/access/grant", unknown_op).await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("use one of"));
    let missing = serde_json::json!({
        "unique_identifier": "nope", "user_id": "bob", "operation_types": ["get"]
    });
    assert_eq!(post("/access/grant", missing).await.unwrap().status(), 404);
    let r = post("/access/grant", serde_json::json!({"user_id": "bob"}))
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    assert!(r.text().await.unwrap().contains("operation_types"));
    let to_owner = serde_json::json!({
        "unique_identifier": uid, "user_id": "admin", "operation_types": ["get"]
    });
    assert!(
        post("/access/grant", to_owner)
            .await
            .unwrap()
            .status()
            .is_client_error()
    );
    t.server.stop().await;
}
