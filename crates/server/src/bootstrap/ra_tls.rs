//! The bootstrap listener's certificate: self-signed with a key made at each start (never
//! written to disk), optionally carrying a remote-attestation quote (RA-TLS) whose report data is
//! the SHA-256 of the certificate's public key, obtained from Linux's configfs-tsm interface
//! (Intel TDX and AMD SEV-SNP guests).

use std::path::PathBuf;

use rcgen::{CertificateParams, CustomExtension, DnType, KeyPair, PublicKeyData};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// OID of the X.509 extension holding the quote (Intel's TDX quote extension in RA-TLS
/// certificates).
pub const QUOTE_OID: &[u64] = &[1, 2, 840, 113741, 1, 5, 5, 1, 6];

/// Where configfs-tsm lives on a confidential guest.
pub const CONFIGFS_TSM: &str = "/sys/kernel/config/tsm/report";

#[derive(Debug, thiserror::Error)]
pub enum RaTlsError {
    #[error(
        "--ensure-ra-tls needs a confidential VM (Intel TDX or AMD SEV-SNP guest) exposing attestation reports at {path}; this machine has none. Run on a confidential VM or start without --ensure-ra-tls"
    )]
    NotConfidential { path: String },
    #[error("the attestation report could not be obtained from {path}: {reason}")]
    Quote { path: String, reason: String },
    #[error("the bootstrap certificate could not be generated: {0}")]
    Certificate(#[from] rcgen::Error),
}

/// Something that produces an attestation quote over 64 bytes of report data.
pub trait QuoteSource: Send + Sync {
    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, RaTlsError>;
}

/// Quotes from the kernel's configfs-tsm interface.
pub struct ConfigfsTsm {
    pub root: PathBuf,
}

impl Default for ConfigfsTsm {
    fn default() -> Self {
        ConfigfsTsm {
            root: PathBuf::from(CONFIGFS_TSM),
        }
    }
}

impl QuoteSource for ConfigfsTsm {
    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, RaTlsError> {
        let path = self.root.display().to_string();
        if !self.root.is_dir() {
            return Err(RaTlsError::NotConfidential { path });
        }
        let err = |reason: std::io::Error| RaTlsError::Quote {
            path: path.clone(),
            reason: reason.to_string(),
        };
        // One report entry per request, as the interface expects.
        let entry = self.root.join(format!("kms-{}", std::process::id()));
        std::fs::create_dir(&entry).map_err(err)?;
        let result = std::fs::write(entry.join("inblob"), report_data)
            .and_then(|_| std::fs::read(entry.join("outblob")));
        let _ = std::fs::remove_dir(&entry);
        let quote = result.map_err(err)?;
        if quote.is_empty() {
            return Err(RaTlsError::Quote {
                path,
                reason: "the report is empty".into(),
            });
        }
        Ok(quote)
    }
}

/// DER OCTET STRING around `content`.
fn octet_string(content: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The report data bound into the quote: SHA-256 of the SubjectPublicKeyInfo, zero-padded.
pub fn report_data(spki_der: &[u8]) -> [u8; 64] {
    let mut data = [0u8; 64];
    data[..32].copy_from_slice(&kms_crypto::sha256(spki_der));
    data
}

/// A fresh self-signed certificate for `common_name` (also its DNS name, with `localhost`),
/// carrying a quote when a source is given.
pub fn self_signed(
    common_name: &str,
    quotes: Option<&dyn QuoteSource>,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), RaTlsError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![common_name.to_owned(), "localhost".to_owned()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    if let Some(source) = quotes {
        let quote = source.quote(&report_data(&key.subject_public_key_info()))?;
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                QUOTE_OID,
                octet_string(&quote),
            ));
    }
    let cert = params.self_signed(&key)?;
    Ok((
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeQuotes;

    impl QuoteSource for FakeQuotes {
        fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, RaTlsError> {
            Ok([b"FAKE-QUOTE:".as_slice(), report_data].concat())
        }
    }

    #[test]
    fn certificate_carries_a_quote_over_its_public_key() {
        let (der, _) = self_signed("cosmian.kms", Some(&FakeQuotes)).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        let oid = x509_parser::oid_registry::Oid::from(QUOTE_OID).unwrap();
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid == oid)
            .expect("quote extension");
        // The extension holds an OCTET STRING with the quote.
        let (_, inner) = x509_parser::der_parser::parse_der(ext.value).unwrap();
        let quote = inner.as_slice().unwrap();
        let spki = cert.public_key().raw;
        let expected = [b"FAKE-QUOTE:".as_slice(), &report_data(spki)].concat();
        assert_eq!(
            quote,
            expected.as_slice(),
            "report data = SHA-256 of the certificate's public key"
        );
        assert!(cert.subject().to_string().contains("cosmian.kms"));
    }

    #[test]
    fn no_quote_without_a_source_and_a_new_key_each_time() {
        let (a, _) = self_signed("x", None).unwrap();
        let (b, _) = self_signed("x", None).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(a.as_ref()).unwrap();
        let oid = x509_parser::oid_registry::Oid::from(QUOTE_OID).unwrap();
        assert!(cert.extensions().iter().all(|e| e.oid != oid));
        assert_ne!(a, b);
    }

    #[test]
    fn machine_without_configfs_tsm_is_refused_clearly() {
        let source = ConfigfsTsm {
            root: PathBuf::from("/nonexistent/tsm/report"),
        };
        let err = self_signed("x", Some(&source)).unwrap_err();
        assert!(err.to_string().contains("confidential VM"), "{err}");
    }
}
