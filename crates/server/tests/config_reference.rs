//! The configuration reference in `docs/configuration.md` is generated from the server's flags,
//! so it cannot drift: this test fails when it differs from what the flags say today.
//! `KMS_UPDATE_DOCS=1 cargo test -p kms-server --test config_reference` rewrites it.

use std::path::PathBuf;

#[test]
fn configuration_reference_matches_the_flags() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let generated = kms_server::config::reference_markdown();
    if std::env::var_os("KMS_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).expect("write docs/configuration.md");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/configuration.md is not what the flags say; regenerate it with \
         `KMS_UPDATE_DOCS=1 cargo test -p kms-server --test config_reference`"
    );
}
