//! Client library of the KMS: sends KMIP operations over HTTP as JSON TTLV (`/kmip/2_1`) or
//! binary TTLV (`/kmip`), and decodes the answers into the typed model.

use std::time::Duration;

use kmip::model::{
    RequestBatchItem, RequestHeader, RequestMessage, RequestPayload, ResponseMessage,
    ResponsePayload,
};
use kmip::{KmipEnum, Operation, ResultStatus, Tag, binary, json};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the KMS at {url}: {source}")]
    Transport { url: String, source: reqwest::Error },
    #[error("the KMS answered {status}: {message}")]
    Server { status: u16, message: String },
    #[error("the KMS refused the operation ({reason}): {message}")]
    Operation { reason: String, message: String },
    #[error("the KMS answer could not be decoded: {0}")]
    Decode(#[from] kmip::Error),
    #[error("unexpected answer from the KMS: {0}")]
    Unexpected(String),
    /// The KMS answered with the payload of another operation than the one requested.
    #[error(
        "unexpected answer from the KMS: expected a response to {expected:?}, got a response to {received:?}"
    )]
    UnexpectedResponse {
        expected: Operation,
        received: Operation,
    },
    #[error("invalid client configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// The KMS could not be reached, or the exchange broke off: connection refused, DNS, TLS
    /// failure or certificate mismatch, timeout, connection lost.
    pub fn is_network(&self) -> bool {
        matches!(self, ClientError::Transport { .. })
    }

    /// The KMS answered and refused the request: an HTTP error status, or a KMIP failure.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ClientError::Server { .. } | ClientError::Operation { .. }
        )
    }
}

pub mod pinning;
mod request;

pub use request::{Request, op};

/// Connection settings.
#[derive(Clone, Default)]
pub struct ClientConfig {
    pub server_url: String,
    pub access_token: Option<String>,
    pub accept_invalid_certs: bool,
    /// Trust exactly the server certificate with this SHA-256 fingerprint (hex, colons optional).
    pub pinned_sha256: Option<String>,
    /// A client certificate and its key (PEM) to present to the server (mutual TLS).
    pub client_identity_pem: Option<zeroize::Zeroizing<Vec<u8>>>,
    /// The secret of an encrypted database (`sqlite-enc`), sent in the `DatabaseSecret` header.
    pub database_secret: Option<String>,
}

impl std::fmt::Debug for ClientConfig {
    // The access token never appears in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("server_url", &self.server_url)
            .field("access_token", &self.access_token.as_ref().map(|_| "***"))
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .field("pinned_sha256", &self.pinned_sha256)
            .field(
                "client_identity_pem",
                &self.client_identity_pem.as_ref().map(|_| "***"),
            )
            .field(
                "database_secret",
                &self.database_secret.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

/// A KMS client.
#[derive(Clone)]
pub struct KmsClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    database_secret: Option<String>,
}

impl KmsClient {
    pub fn new(config: ClientConfig) -> Result<KmsClient, ClientError> {
        let http = http_client(&config)?;
        Ok(KmsClient {
            http,
            base: config.server_url.trim_end_matches('/').to_owned(),
            token: config.access_token,
            database_secret: config.database_secret,
        })
    }

    /// A client of `url` with default settings.
    pub fn with_url(url: &str) -> Result<KmsClient, ClientError> {
        Self::new(ClientConfig {
            server_url: url.to_owned(),
            ..ClientConfig::default()
        })
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.authorized(self.http.post(format!("{}{path}", self.base)))
    }

    /// The credentials of every request: the access token and the database secret.
    fn authorized(&self, mut r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        if let Some(s) = &self.database_secret {
            r = r.header("DatabaseSecret", s);
        }
        r
    }

    /// `POST /rotate_database_secret`: re-encrypts this client's database (`database_secret`)
    /// under `new_secret` (see [`rotated_secret`]).
    pub async fn rotate_database_secret(&self, new_secret: &str) -> Result<(), ClientError> {
        self.text_of(
            self.post("/rotate_database_secret")
                .header("NewDatabaseSecret", new_secret),
        )
        .await
        .map(drop)
    }

    /// `POST /new_database`: a new encrypted database (`sqlite-enc`); its secret, given once.
    pub async fn new_database(&self) -> Result<String, ClientError> {
        let text = self
            .text_of(self.http.post(format!("{}/new_database", self.base)))
            .await?;
        serde_json::from_str::<String>(&text).map_err(|e| {
            ClientError::Unexpected(format!("/new_database answered no JSON string: {e}"))
        })
    }

    /// Sends `request` and answers the body of a 200, or the server's refusal.
    async fn text_of(&self, request: reqwest::RequestBuilder) -> Result<String, ClientError> {
        let resp = request.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| self.transport(e))?;
        if status != 200 {
            return Err(ClientError::Server {
                status,
                message: text,
            });
        }
        Ok(text)
    }

    fn transport(&self, source: reqwest::Error) -> ClientError {
        ClientError::Transport {
            url: self.base.clone(),
            source,
        }
    }

    /// Sends one operation as JSON TTLV to `/kmip/2_1` and returns its typed response.
    pub async fn send(&self, payload: RequestPayload) -> Result<ResponsePayload, ClientError> {
        let op = payload.operation();
        let mut tree = payload.encode();
        tree.tag = Tag::operation_request(op.to_u32());
        let resp = self
            .post("/kmip/2_1")
            .header("content-type", "application/json")
            .body(json::to_string(&tree))
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| self.transport(e))?;
        if status != 200 {
            return Err(ClientError::Server {
                status,
                message: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        let tree = json::from_slice(&body)?;
        Ok(ResponsePayload::decode(op, &tree)?)
    }

    /// Sends one typed operation as JSON TTLV to `/kmip/2_1` and returns its typed answer: a
    /// [`Create`](kmip::model::Create) answers a [`CreateResponse`](kmip::model::CreateResponse),
    /// an [`op::Activate`] a [`UidResponse`](kmip::model::UidResponse)...
    pub async fn call<R: Request>(&self, request: R) -> Result<R::Response, ClientError> {
        R::from_response(self.send(request.into_payload()).await?)
    }

    /// [`KmsClient::call`] over binary TTLV (`/kmip`): one operation in a KMIP 2.1 message.
    pub async fn call_binary<R: Request>(&self, request: R) -> Result<R::Response, ClientError> {
        R::from_response(self.send_binary_one(request.into_payload()).await?)
    }

    /// Sends a whole request message as binary TTLV to `/kmip`.
    pub async fn send_binary(
        &self,
        message: &RequestMessage,
    ) -> Result<ResponseMessage, ClientError> {
        let resp = self
            .post("/kmip")
            .header("content-type", "application/octet-stream")
            .body(binary::encode(&message.encode()))
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| self.transport(e))?;
        if status != 200 {
            return Err(ClientError::Server {
                status,
                message: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        Ok(ResponseMessage::decode(&binary::decode(
            &body,
            &binary::Limits::default(),
        )?)?)
    }

    /// Sends one operation in a binary TTLV message and returns its payload or its failure.
    pub async fn send_binary_one(
        &self,
        payload: RequestPayload,
    ) -> Result<ResponsePayload, ClientError> {
        let message = single_message(payload);
        let mut response = self.send_binary(&message).await?;
        let item = response
            .batch_item
            .pop()
            .ok_or_else(|| ClientError::Unexpected("empty batch".into()))?;
        if item.result_status != ResultStatus::Success {
            return Err(ClientError::Operation {
                reason: item
                    .result_reason
                    .map(|r| format!("{r:?}"))
                    .unwrap_or_default(),
                message: item.result_message.unwrap_or_default(),
            });
        }
        item.response_payload
            .ok_or_else(|| ClientError::Unexpected("success without payload".into()))
    }

    /// An access rights route: `GET` without a body, `POST` with one; answers its JSON.
    pub async fn access(
        &self,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, ClientError> {
        let request = match body {
            Some(b) => self.post(path).json(&b),
            None => self.authorized(self.http.get(format!("{}{path}", self.base))),
        };
        let text = self.text_of(request).await?;
        serde_json::from_str(&text)
            .map_err(|e| ClientError::Unexpected(format!("{path} answered no JSON: {e}")))
    }

    /// `GET /version`: the server's version string (a JSON string; bare text from older servers).
    pub async fn version(&self) -> Result<String, ClientError> {
        let resp = self
            .http
            .get(format!("{}/version", self.base))
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let text = resp.text().await.map_err(|e| self.transport(e))?;
        Ok(serde_json::from_str::<String>(&text).unwrap_or(text))
    }
}

/// An HTTP client honoring the TLS settings: a pinned certificate, invalid certificates
/// accepted on request, or the public roots.
pub fn http_client(config: &ClientConfig) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(300));
    if let Some(pin) = &config.pinned_sha256 {
        builder = builder.tls_backend_preconfigured(pinning::client_config(pin)?);
    } else {
        builder = builder.danger_accept_invalid_certs(config.accept_invalid_certs);
    }
    if let Some(pem) = &config.client_identity_pem {
        let identity = reqwest::Identity::from_pem(pem).map_err(|_| {
            ClientError::Config(
                "the client certificate is not a PEM certificate with its private key".into(),
            )
        })?;
        builder = builder.identity(identity);
    }
    builder
        .build()
        .map_err(|e| ClientError::Config(e.to_string()))
}

/// A KMIP 2.1 request message holding one operation.
pub fn single_message(payload: RequestPayload) -> RequestMessage {
    RequestMessage {
        request_header: RequestHeader::new(2, 1, 1),
        batch_item: vec![RequestBatchItem {
            operation: payload.operation(),
            ephemeral: None,
            unique_batch_item_id: None,
            request_payload: payload,
            message_extension: None,
        }],
    }
}

/// A new secret for the encrypted database of `current` (same group id, a fresh random key), in
/// the format `/new_database` answers.
pub fn rotated_secret(current: &str) -> Result<String, ClientError> {
    use base64::Engine;
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Secret {
        group_id: u128,
        key: String,
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let bad = || {
        ClientError::Config("database_secret is not a secret that /new_database answered".into())
    };
    let json = b64.decode(current.trim()).map_err(|_| bad())?;
    let parsed: Secret = serde_json::from_slice(&json).map_err(|_| bad())?;
    let key = kms_crypto::random_key(32)
        .map_err(|e| ClientError::Config(format!("cannot draw a key: {e}")))?;
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let text = serde_json::to_vec(&Secret {
        group_id: parsed.group_id,
        key: hex,
    })
    .map_err(|_| bad())?;
    Ok(b64.encode(text))
}
