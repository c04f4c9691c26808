//! TLS for the HTTPS port and the bootstrap listener: identities from PKCS#12 files, the rustls
//! server configuration (TLS 1.2 and 1.3 only, aws-lc-rs suites), certificate fingerprints.

use std::sync::Arc;

use p12_keystore::{KeyStore, Pkcs12ImportPolicy};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate chain (leaf first) and its private key.
pub struct TlsIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for TlsIdentity {
    // The private key never appears in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// Why a PKCS#12 file or a TLS configuration is unusable. Never contains the password.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "the PKCS#12 file could not be opened: it is not a PKCS#12 file or the password is wrong; send the right file and its password"
    )]
    Pkcs12Unreadable,
    #[error(
        "the PKCS#12 file holds no private key with its certificate; export the certificate together with its key"
    )]
    NoPrivateKey,
    #[error("cannot read the PKCS#12 file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the certificate or key is not usable for TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Opens a PKCS#12 archive: it must hold a certificate and its private key.
pub fn load_pkcs12(data: &[u8], password: &str) -> Result<TlsIdentity, TlsError> {
    let store = KeyStore::from_pkcs12(data, password, Pkcs12ImportPolicy::Relaxed)
        .map_err(|_| TlsError::Pkcs12Unreadable)?;
    let (_, chain) = store.private_key_chain().ok_or(TlsError::NoPrivateKey)?;
    if chain.certs().is_empty() {
        return Err(TlsError::NoPrivateKey);
    }
    Ok(TlsIdentity {
        chain: chain
            .certs()
            .iter()
            .map(|c| CertificateDer::from(c.as_der().to_vec()))
            .collect(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec())),
    })
}

/// A rustls server configuration: TLS 1.2 and 1.3 with aws-lc-rs's default (modern) suites.
pub fn server_config(identity: TlsIdentity) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    server_config_with_clients(identity, None)
}

/// [`server_config`], asking clients for a certificate that chains to `client_cas` when given.
/// A client without one may still connect (it must then prove who it is otherwise); one with
/// a certificate that does not verify (another CA, expired) is refused during the handshake.
pub fn server_config_with_clients(
    identity: TlsIdentity,
    client_cas: Option<&[CertificateDer<'static>]>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    build_server_config(identity, client_cas, false)
}

/// The TLS configurations of a server: its HTTPS port, and its KMIP socket when started.
pub struct ServerTls {
    pub http: Arc<rustls::ServerConfig>,
    pub socket: Option<Arc<rustls::ServerConfig>>,
}

/// Both configurations from one identity; the socket's needs `authority_cert_file`.
pub fn server_tls(
    identity: TlsIdentity,
    authority_cert_file: Option<&std::path::Path>,
    socket: bool,
) -> Result<ServerTls, TlsError> {
    let socket = match (socket, authority_cert_file) {
        (false, _) => None,
        (true, Some(authority)) => Some(socket_server_config(
            TlsIdentity {
                chain: identity.chain.clone(),
                key: identity.key.clone_key(),
            },
            authority,
        )?),
        (true, None) => {
            return Err(TlsError::Rustls(rustls::Error::General(
                "--socket-server-start needs --authority-cert-file: KMIP socket clients are \
                 identified by their certificates"
                    .into(),
            )));
        }
    };
    Ok(ServerTls {
        http: kms_server_config(identity, authority_cert_file)?,
        socket,
    })
}

/// The TLS configuration of the KMIP socket: client certificates required, chaining to the CAs
/// of `authority_cert_file`; no ALPN (KMIP clients send none).
pub fn socket_server_config(
    identity: TlsIdentity,
    authority_cert_file: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let pem = std::fs::read(authority_cert_file).map_err(|source| TlsError::Read {
        path: authority_cert_file.display().to_string(),
        source,
    })?;
    build_server_config(identity, Some(&pem_certificates(&pem)?), true)
}

fn build_server_config(
    identity: TlsIdentity,
    client_cas: Option<&[CertificateDer<'static>]>,
    require_client: bool,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match client_cas {
        None => builder.with_no_client_auth(),
        Some(cas) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in cas {
                roots.add(ca.clone())?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            let verifier = if require_client {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(identity.chain, identity.key)?;
    if !require_client {
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    Ok(Arc::new(config))
}

/// The TLS configuration of the KMS port: `identity`, and client certificates checked against
/// the CAs of `authority_cert_file` when given.
pub fn kms_server_config(
    identity: TlsIdentity,
    authority_cert_file: Option<&std::path::Path>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cas = match authority_cert_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.display().to_string(),
                source,
            })?;
            Some(pem_certificates(&pem)?)
        }
        None => None,
    };
    server_config_with_clients(identity, cas.as_deref())
}

/// The certificates of a PEM bundle (the CAs client certificates must chain to).
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            TlsError::Rustls(rustls::Error::General(format!(
                "not a PEM certificate bundle: {e}"
            )))
        })?;
    if certs.is_empty() {
        return Err(TlsError::Rustls(rustls::Error::General(
            "the PEM bundle holds no certificate".into(),
        )));
    }
    Ok(certs)
}

/// The subject common name of a DER certificate.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
}

/// The email address of a DER certificate: its subject alternative name (rfc822Name), else the
/// subject's emailAddress.
pub fn email(der: &[u8]) -> Option<String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::RFC822Name(email) = name {
                return Some((*email).to_owned());
            }
        }
    }
    cert.subject()
        .iter_email()
        .next()
        .and_then(|e| e.as_str().ok())
        .map(str::to_owned)
}

/// SHA-256 of a DER certificate, as colon-separated upper-case hex (what `openssl x509
/// -fingerprint -sha256` prints after `sha256 Fingerprint=`).
pub fn fingerprint(der: &[u8]) -> String {
    kms_crypto::sha256(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A fresh self-signed certificate for `names` in a PKCS#12 archive protected by `password`;
/// with `with_key` false, the archive holds the certificate alone. For tests and demos.
pub fn self_signed_pkcs12(
    names: &[&str],
    password: &str,
    with_key: bool,
) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    use p12_keystore::{Certificate, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let invalid =
        |e: &dyn std::fmt::Display| TlsError::Rustls(rustls::Error::General(e.to_string()));
    let key = rcgen::KeyPair::generate().map_err(|e| invalid(&e))?;
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .map_err(|e| invalid(&e))?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        names.first().copied().unwrap_or("kms"),
    );
    let cert = params.self_signed(&key).map_err(|e| invalid(&e))?;
    let cert_der = cert.der().to_vec();
    let certificate = Certificate::from_der(&cert_der).map_err(|e| invalid(&e))?;
    let mut store = KeyStore::new();
    if with_key {
        let private = PrivateKey::from_der(&key.serialize_der()).map_err(|e| invalid(&e))?;
        store.add_entry(
            "kms",
            KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(
                vec![1u8],
                private,
                vec![certificate],
            )),
        );
    } else {
        store.add_entry("kms", KeyStoreEntry::Certificate(certificate));
    }
    let p12 = store.writer(password).write().map_err(|e| invalid(&e))?;
    Ok((p12, cert_der))
}

#[cfg(test)]
mod tests {
    /// The fingerprint is the full SHA-256, never empty: the value `openssl x509 -fingerprint
    /// -sha256` prints for the same bytes.
    #[test]
    fn fingerprint_is_the_full_sha256() {
        assert_eq!(
            super::fingerprint(b"abc"),
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }
}
