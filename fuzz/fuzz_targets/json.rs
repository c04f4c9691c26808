//! JSON TTLV decoder, then the typed model: must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tree) = kmip::json::from_slice(data) {
        let _ = kmip::model::RequestMessage::decode(&tree);
    }
});
