//! KMIP XML decoder, then the typed model: must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(tree) = kmip::xml::from_str(text) {
            let _ = kmip::model::RequestMessage::decode(&tree);
        }
    }
});
