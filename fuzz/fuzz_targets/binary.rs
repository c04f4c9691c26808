//! Binary TTLV decoder, then the typed model: must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tree) = kmip::binary::decode(data, &kmip::binary::Limits::default()) {
        let _ = kmip::model::RequestMessage::decode(&tree);
        let _ = kmip::model::ResponseMessage::decode(&tree);
        let _ = kmip::v1::request_to_v2(tree);
    }
});
