//! A real server on a loopback port for integration tests, built through one builder.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use kms_server::RunningServer;
use kms_server::config::{Backend, Config};

pub struct TestServer {
    pub server: RunningServer,
    pub url: String,
    /// Keeps the database directory alive as long as the server.
    pub dir: Option<tempfile::TempDir>,
}

pub struct Builder {
    sqlite_dir: Option<PathBuf>,
    database: Option<Backend>,
    user: String,
    connections: kms_server::listener::ConnectionLimits,
    request_timeout: std::time::Duration,
    max_request_size: usize,
    privileged_users: Option<Vec<String>>,
    jwt_providers: Vec<kms_server::config::JwtProvider>,
    api_token_id: Option<String>,
    https: Option<kms_server::config::Https>,
    authority_cert_file: Option<PathBuf>,
    client_certificate_email: bool,
    socket: bool,
}

impl TestServer {
    pub fn builder() -> Builder {
        Builder {
            sqlite_dir: None,
            database: None,
            user: "admin".into(),
            connections: Default::default(),
            request_timeout: std::time::Duration::from_secs(120),
            max_request_size: 8 * 1024 * 1024,
            privileged_users: None,
            jwt_providers: Vec::new(),
            api_token_id: None,
            https: None,
            authority_cert_file: None,
            client_certificate_email: false,
            socket: false,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }
}

impl Builder {
    /// Keep the database in this directory (default: a fresh temporary one).
    pub fn sqlite_dir(mut self, dir: PathBuf) -> Self {
        self.sqlite_dir = Some(dir);
        self
    }

    /// Use this database instead of a fresh SQLite one.
    pub fn database(mut self, database: Backend) -> Self {
        self.database = Some(database);
        self
    }

    /// The connection cap and header timeout of the listener.
    pub fn connections(mut self, limits: kms_server::listener::ConnectionLimits) -> Self {
        self.connections = limits;
        self
    }

    /// How long a request may take.
    pub fn request_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The largest request body the server takes.
    pub fn max_request_size(mut self, bytes: usize) -> Self {
        self.max_request_size = bytes;
        self
    }

    /// Accept JWTs from these identity providers.
    pub fn jwt(mut self, providers: Vec<kms_server::config::JwtProvider>) -> Self {
        self.jwt_providers = providers;
        self
    }

    /// Serve HTTPS with this PKCS#12, and check client certificates against these CAs.
    pub fn https(mut self, p12_file: PathBuf, password: &str, client_cas: Option<PathBuf>) -> Self {
        self.https = Some(kms_server::config::Https {
            p12_file,
            p12_password: kms_store::Secret::new(password),
        });
        self.authority_cert_file = client_cas;
        self
    }

    /// Serve the KMIP socket too, on a free loopback port (needs [`Builder::https`] with CAs).
    pub fn socket(mut self) -> Self {
        self.socket = true;
        self
    }

    /// The user of a client certificate is its email address.
    pub fn client_certificate_email(mut self) -> Self {
        self.client_certificate_email = true;
        self
    }

    /// Accept the value of this key as API token.
    pub fn api_token_id(mut self, uid: &str) -> Self {
        self.api_token_id = Some(uid.into());
        self
    }

    /// Only these users may add objects.
    pub fn privileged_users(mut self, users: &[&str]) -> Self {
        self.privileged_users = Some(users.iter().map(|u| (*u).to_owned()).collect());
        self
    }

    pub fn user(mut self, user: &str) -> Self {
        self.user = user.into();
        self
    }

    pub async fn start(self) -> TestServer {
        let https = self.https.is_some();
        let (dir, path) = match self.sqlite_dir {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir().expect("tempdir");
                let p = t.path().to_owned();
                (Some(t), p)
            }
        };
        let config = Config {
            https: self.https,
            bootstrap: None,
            database_given: true,
            database: self.database.unwrap_or(Backend::Sqlite {
                path: path.join("kms.db"),
            }),
            database_settings: Default::default(),
            cleanup_on_startup: false,
            listen: "127.0.0.1:0".parse().expect("address"),
            default_username: self.user,
            privileged_users: self.privileged_users,
            jwt_providers: self.jwt_providers,
            api_token_id: self.api_token_id,
            force_default_username: false,
            authority_cert_file: self.authority_cert_file,
            client_certificate_email: self.client_certificate_email,
            max_request_size: self.max_request_size,
            limits: Default::default(),
            connections: self.connections,
            request_timeout: self.request_timeout,
            socket_server: self.socket.then(|| "127.0.0.1:0".parse().expect("address")),
            hsm: None,
            key_encryption_key: None,
            unwrapped_key_cache: std::time::Duration::from_secs(60),
            shutdown_timeout: std::time::Duration::from_secs(5),
            log_format: Default::default(),
            log_filter: None,
            metrics: true,
            metrics_listen: None,
        };
        let server = kms_server::start(config).await.expect("server starts");
        let scheme = if https { "https" } else { "http" };
        let url = format!("{scheme}://{}", server.addr);
        TestServer { server, url, dir }
    }
}

/// Mutual TLS for the KMIP socket in tests: the server's PKCS#12, a CA, and client identities.
pub mod socket {
    use std::path::Path;
    use std::sync::Arc;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub struct Pki {
        pub server_cert: Vec<u8>,
        ca: rcgen::CertificateParams,
        ca_key: rcgen::KeyPair,
    }

    /// Writes `kms.p12` (password `pw`, for 127.0.0.1) and `ca.pem` into `dir`.
    pub fn pki(dir: &Path) -> Pki {
        let (p12, server_cert) =
            kms_server::tls::self_signed_pkcs12(&["127.0.0.1"], "pw", true).expect("p12");
        std::fs::write(dir.join("kms.p12"), p12).expect("write p12");
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "KMIP clients CA");
        ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        std::fs::write(
            dir.join("ca.pem"),
            ca.self_signed(&ca_key).expect("ca").pem(),
        )
        .expect("write ca");
        Pki {
            server_cert,
            ca,
            ca_key,
        }
    }

    impl Pki {
        /// A client certificate for `user` (CN), with clientAuth: (PEM certificate, PEM key).
        pub fn client_pem(&self, user: &str) -> (String, String) {
            let key = rcgen::KeyPair::generate().expect("key");
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, user);
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
            let cert = params
                .signed_by(&key, &rcgen::Issuer::from_params(&self.ca, &self.ca_key))
                .expect("sign");
            (cert.pem(), key.serialize_pem())
        }

        /// A TLS client configuration trusting the server, presenting `user`'s certificate
        /// (none when `None`).
        pub fn client_config(&self, user: Option<&str>) -> Arc<rustls::ClientConfig> {
            use rustls::pki_types::pem::PemObject;
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from(self.server_cert.clone()))
                .expect("root");
            let builder = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots);
            Arc::new(match user {
                Some(user) => {
                    let (cert, key) = self.client_pem(user);
                    builder
                        .with_client_auth_cert(
                            vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("cert")],
                            PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key"),
                        )
                        .expect("client auth")
                }
                None => builder.with_no_client_auth(),
            })
        }
    }

    pub type Stream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

    /// A TLS connection to the KMIP socket at `addr`.
    pub async fn connect(
        addr: std::net::SocketAddr,
        config: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<Stream> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::try_from("127.0.0.1").expect("name");
        tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
    }

    /// Sends one binary TTLV message and reads one answer (header first, then the body).
    pub async fn exchange(stream: &mut Stream, message: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(message).await?;
        stream.flush().await?;
        read_message(stream).await
    }

    pub async fn read_message(stream: &mut Stream) -> std::io::Result<Vec<u8>> {
        let mut header = [0u8; 8];
        stream.read_exact(&mut header).await?;
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut out = vec![0u8; 8 + len];
        out[..8].copy_from_slice(&header);
        stream.read_exact(&mut out[8..]).await?;
        Ok(out)
    }
}
