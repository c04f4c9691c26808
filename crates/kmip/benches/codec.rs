//! Decode + encode of a typical Encrypt request and response (4 KiB of data), binary and JSON.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kmip::model::{
    CryptographicParameters, Encrypt, EncryptResponse, RequestBatchItem, RequestHeader,
    RequestMessage, RequestPayload, ResponseBatchItem, ResponseHeader, ResponseMessage,
    ResponsePayload, UniqueIdentifier,
};
use kmip::{BlockCipherMode, DateTime, Operation, binary, json};

fn request() -> RequestMessage {
    RequestMessage {
        request_header: RequestHeader::new(2, 1, 1),
        batch_item: vec![RequestBatchItem {
            operation: Operation::Encrypt,
            ephemeral: None,
            unique_batch_item_id: None,
            request_payload: RequestPayload::Encrypt(Encrypt {
                unique_identifier: Some(UniqueIdentifier::Text(
                    "0b7a3f7e-8c51-4f5e-9a39-5ad2c8b0e2f1".into(),
                )),
                cryptographic_parameters: Some(CryptographicParameters {
                    block_cipher_mode: Some(BlockCipherMode::GCM),
                    tag_length: Some(16),
                    ..CryptographicParameters::default()
                }),
                data: Some(vec![0x5a; 4096]),
                iv_counter_nonce: Some(vec![7; 12]),
                correlation_value: None,
                init_indicator: None,
                final_indicator: None,
                authenticated_encryption_additional_data: Some(b"header".to_vec()),
            }),
            message_extension: None,
        }],
    }
}

fn response() -> ResponseMessage {
    ResponseMessage {
        response_header: ResponseHeader::new(2, 1, DateTime(1_700_000_000), 1),
        batch_item: vec![ResponseBatchItem::success(
            ResponsePayload::Encrypt(EncryptResponse {
                unique_identifier: UniqueIdentifier::Text(
                    "0b7a3f7e-8c51-4f5e-9a39-5ad2c8b0e2f1".into(),
                ),
                data: Some(vec![0xa5; 4096]),
                iv_counter_nonce: Some(vec![7; 12]),
                correlation_value: None,
                authenticated_encryption_tag: Some(vec![1; 16]),
            }),
            None,
        )],
    }
}

fn bench(c: &mut Criterion) {
    let limits = binary::Limits::default();
    let req = request();
    let resp = response();
    let req_bin = binary::encode(&req.encode());
    let resp_bin = binary::encode(&resp.encode());
    let req_json = json::to_string(&req.encode());
    let resp_json = json::to_string(&resp.encode());

    let mut g = c.benchmark_group("encrypt_4KiB");
    g.throughput(Throughput::Elements(1));
    g.bench_function("request binary decode+encode", |b| {
        b.iter(|| {
            let m = RequestMessage::decode(&binary::decode(black_box(&req_bin), &limits).unwrap())
                .unwrap();
            black_box(binary::encode(&m.encode()))
        })
    });
    g.bench_function("response binary decode+encode", |b| {
        b.iter(|| {
            let m =
                ResponseMessage::decode(&binary::decode(black_box(&resp_bin), &limits).unwrap())
                    .unwrap();
            black_box(binary::encode(&m.encode()))
        })
    });
    g.bench_function("request JSON decode+encode", |b| {
        b.iter(|| {
            let m = RequestMessage::decode(&json::from_str(black_box(&req_json)).unwrap()).unwrap();
            black_box(json::to_string(&m.encode()))
        })
    });
    g.bench_function("response JSON decode+encode", |b| {
        b.iter(|| {
            let m =
                ResponseMessage::decode(&json::from_str(black_box(&resp_json)).unwrap()).unwrap();
            black_box(json::to_string(&m.encode()))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
