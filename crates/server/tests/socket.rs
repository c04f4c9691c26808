//! The KMIP socket (`--socket-server-start`): binary TTLV over mutual TLS, many requests per
//! connection answered in order, and hostile clients that leave the server up and answering
//! others: a 4 GiB length, a body shorter than announced, a client stopping mid-message, 500
//! idle connections, a client without a certificate.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

mod common;

use common::TestServer;
use common::socket::{Pki, connect, exchange, pki, read_message};
use kmip::model::*;
use kmip::{CryptographicAlgorithm, ResultStatus, binary};
use kms_client::single_message;
use tokio::io::AsyncWriteExt;

async fn server(dir: &std::path::Path) -> (TestServer, Pki) {
    let pki = pki(dir);
    let server = TestServer::builder()
        .https(dir.join("kms.p12"), "pw", Some(dir.join("ca.pem")))
        .socket()
        .start()
        .await;
    (server, pki)
}

fn request(payload: RequestPayload) -> Vec<u8> {
    binary::encode(&single_message(payload).encode())
}

fn answer(bytes: &[u8]) -> ResponseBatchItem {
    let tree = binary::decode(bytes, &binary::Limits::default()).unwrap();
    ResponseMessage::decode(&tree).unwrap().batch_item.remove(0)
}

/// Create, encrypt and decrypt on one connection: each answered in order, the user being the
/// certificate's CN (the key is alice's, not bob's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_on_one_connection_are_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pki) = server(dir.path()).await;
    let addr = server.server.socket.as_ref().unwrap().addr;
    let mut alice = connect(addr, pki.client_config(Some("alice")))
        .await
        .unwrap();
    let created = answer(
        &exchange(
            &mut alice,
            &request(RequestPayload::Create(Create::symmetric_key(
                CryptographicAlgorithm::AES,
                256,
            ))),
        )
        .await
        .unwrap(),
    );
    assert_eq!(created.result_status, ResultStatus::Success);
    let Some(ResponsePayload::Create(c)) = created.response_payload else {
        panic!("{created:?}")
    };
    let uid = c.unique_identifier.as_text().unwrap().to_owned();
    alice
        .write_all(&request(RequestPayload::Activate(UidRequest::new(
            uid.as_str(),
        ))))
        .await
        .unwrap();
    // Two requests written back to back, answered in order.
    alice
        .write_all(&request(RequestPayload::Encrypt(Encrypt::new(
            Some(uid.as_str().into()),
            b"over the socket".to_vec(),
        ))))
        .await
        .unwrap();
    let activated = answer(&read_message(&mut alice).await.unwrap());
    assert_eq!(activated.result_status, ResultStatus::Success);
    let encrypted = answer(&read_message(&mut alice).await.unwrap());
    let Some(ResponsePayload::Encrypt(e)) = encrypted.response_payload else {
        panic!("{encrypted:?}")
    };
    let decrypted = answer(
        &exchange(
            &mut alice,
            &request(RequestPayload::Decrypt(Decrypt {
                iv_counter_nonce: e.iv_counter_nonce,
                authenticated_encryption_tag: e.authenticated_encryption_tag,
                ..Decrypt::new(Some(uid.as_str().into()), e.data.unwrap())
            })),
        )
        .await
        .unwrap(),
    );
    let Some(ResponsePayload::Decrypt(d)) = decrypted.response_payload else {
        panic!("{decrypted:?}")
    };
    assert_eq!(d.data.as_deref(), Some(&b"over the socket"[..]));
    // Bob does not see alice's key.
    let mut bob = connect(addr, pki.client_config(Some("bob"))).await.unwrap();
    let refused = answer(
        &exchange(
            &mut bob,
            &request(RequestPayload::Get(Get::new(uid.as_str()))),
        )
        .await
        .unwrap(),
    );
    assert_eq!(refused.result_status, ResultStatus::OperationFailed);
    // A framed message that does not decode gets an error answer, and the connection goes on.
    let mut garbage = request(RequestPayload::Get(Get::new(uid.as_str())));
    // The first item inside the message gets a type that does not exist.
    garbage[11] = 0xEE;
    let bad = answer(&exchange(&mut alice, &garbage).await.unwrap());
    assert_eq!(bad.result_status, ResultStatus::OperationFailed);
    let again = answer(
        &exchange(
            &mut alice,
            &request(RequestPayload::Get(Get::new(uid.as_str()))),
        )
        .await
        .unwrap(),
    );
    assert_eq!(again.result_status, ResultStatus::Success);
    // Stopped: the open connection is closed after its last answer, new ones are refused.
    server.server.stop().await;
    assert!(read_message(&mut alice).await.is_err());
    assert!(
        connect(addr, pki.client_config(Some("alice")))
            .await
            .is_err()
    );
}

async fn still_answers(addr: std::net::SocketAddr, pki: &Pki) {
    let mut c = connect(addr, pki.client_config(Some("carol")))
        .await
        .unwrap();
    let q = answer(
        &exchange(
            &mut c,
            &request(RequestPayload::Query(Query {
                query_function: vec![kmip::QueryFunction::QueryOperations],
            })),
        )
        .await
        .unwrap(),
    );
    assert_eq!(q.result_status, ResultStatus::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_leave_the_server_answering_others() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pki) = server(dir.path()).await;
    let addr = server.server.socket.as_ref().unwrap().addr;

    // A length of 4 GiB: an error answer, then the connection is closed.
    let mut huge = connect(addr, pki.client_config(Some("mallory")))
        .await
        .unwrap();
    huge.write_all(&[0x42, 0x00, 0x78, 0x01, 0xFF, 0xFF, 0xFF, 0xFF])
        .await
        .unwrap();
    let refused = answer(&read_message(&mut huge).await.unwrap());
    assert_eq!(refused.result_status, ResultStatus::OperationFailed);
    assert!(
        read_message(&mut huge).await.is_err(),
        "closed after a bad header"
    );
    still_answers(addr, &pki).await;

    // A body shorter than announced, then the client closes.
    let mut short = connect(addr, pki.client_config(Some("mallory")))
        .await
        .unwrap();
    short
        .write_all(&[0x42, 0x00, 0x78, 0x01, 0x00, 0x00, 0x01, 0x00, 1, 2, 3])
        .await
        .unwrap();
    short.shutdown().await.unwrap();
    drop(short);
    still_answers(addr, &pki).await;

    // A client that stops mid-message and stays connected.
    let mut stalled = connect(addr, pki.client_config(Some("mallory")))
        .await
        .unwrap();
    stalled
        .write_all(&[0x42, 0x00, 0x78, 0x01, 0x00, 0x00, 0x00, 0x40, 0x42])
        .await
        .unwrap();
    still_answers(addr, &pki).await;

    // 500 idle TCP connections that never start TLS.
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    still_answers(addr, &pki).await;

    // No client certificate: the handshake fails (or the first read does).
    let refused = match connect(addr, pki.client_config(None)).await {
        Err(_) => true,
        Ok(mut s) => exchange(
            &mut s,
            &request(RequestPayload::Query(Query {
                query_function: vec![],
            })),
        )
        .await
        .is_err(),
    };
    assert!(refused, "a client without a certificate is refused");
    still_answers(addr, &pki).await;
    drop(idle);
    drop(stalled);
    server.server.stop().await;
}
