//! Hex decoding for the known-answer tests; test-only, so it may panic on a malformed literal.

/// Decodes a hex literal written in a test.
pub(crate) fn decode(hex: &str) -> Vec<u8> {
    assert_eq!(hex.len() % 2, 0, "odd-length hex literal");
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            let pair = hex.get(i..i + 2).unwrap_or_default();
            u8::from_str_radix(pair, 16).unwrap_or_else(|_| panic!("bad hex pair {pair:?}"))
        })
        .collect()
}
