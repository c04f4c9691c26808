//! Who is calling: a TLS client certificate (its subject CN), a JWT bearer token from a
//! configured identity provider, an API token, or the default user. When any method is configured, a request that proves none of them is
//! refused (401), unless `--force-default-username` makes every caller the default user.
//!
//! JWTs: only asymmetric algorithms (RS*, PS*, ES*, EdDSA), with the key the provider's JWKS
//! names by `kid`; `exp`, `nbf`, `iss` and `aud` checked with a 60-second leeway. The JWKS is
//! cached per provider, fetched again after an hour or for an unknown `kid`, but at most once
//! per [`MIN_REFRESH`], so that a flood of bad tokens is not a flood of fetches. The user is the
//! token's `email` claim, else its `sub`. A verified token is remembered (by its SHA-256) for a
//! minute at most, never beyond its `exp`, so a client sending the same token with every request
//! pays for one signature verification a minute.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use tokio::sync::Mutex;

use crate::config::JwtProvider;
use crate::error::{KResult, KmsError};
use crate::kms::Kms;

/// Shortest time between two JWKS fetches of one provider.
pub const MIN_REFRESH: Duration = Duration::from_secs(1);
/// How long fetched keys are trusted before they are fetched again.
const JWKS_LIFETIME: Duration = Duration::from_secs(3600);
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY: u64 = 60;
/// How long a verified JWT is remembered (never beyond its `exp`): clients send the same token
/// with every request, and verifying a signature costs more than the rest of an Encrypt.
const VERIFIED_LIFETIME: Duration = Duration::from_secs(60);
/// Most verified tokens remembered; the memory is emptied when it is full.
const VERIFIED_MAX: usize = 10_000;

/// The authentication methods of a server.
pub struct Authenticator {
    providers: Vec<Provider>,
    api_token_id: Option<String>,
    force_default: bool,
    default_user: String,
    /// Client certificates are checked against `--authority-cert-file`.
    client_certificates: bool,
    /// The user of a client certificate is its email address rather than its CN.
    certificate_email: bool,
    http: reqwest::Client,
    /// SHA-256 of verified JWTs → their user and until when they are trusted.
    verified: std::sync::Mutex<HashMap<[u8; 32], (String, Instant)>>,
}

struct Provider {
    config: JwtProvider,
    keys: Mutex<Keys>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, (DecodingKey, Option<Algorithm>)>,
    fetched: Option<Instant>,
    /// How many times the JWKS was fetched (for tests and logs).
    fetches: u64,
}

#[derive(serde::Deserialize)]
struct Claims {
    email: Option<String>,
    sub: Option<String>,
    exp: Option<u64>,
}

#[derive(serde::Deserialize)]
struct Unverified {
    iss: Option<String>,
}

impl Authenticator {
    pub fn new(
        providers: Vec<JwtProvider>,
        api_token_id: Option<String>,
        force_default: bool,
        default_user: String,
    ) -> Authenticator {
        Authenticator {
            providers: providers
                .into_iter()
                .map(|config| Provider {
                    config,
                    keys: Mutex::new(Keys::default()),
                })
                .collect(),
            api_token_id,
            force_default,
            default_user,
            client_certificates: false,
            certificate_email: false,
            verified: std::sync::Mutex::new(HashMap::new()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Accepts the CN (or, with `email`, the email address) of a verified client certificate
    /// as the user.
    pub fn with_client_certificates(mut self, on: bool, email: bool) -> Authenticator {
        self.client_certificates = on;
        self.certificate_email = email;
        self
    }

    /// Whether any method besides the default user is configured.
    pub fn enabled(&self) -> bool {
        !self.force_default
            && (self.client_certificates
                || !self.providers.is_empty()
                || self.api_token_id.is_some())
    }

    /// How many times the JWKS of the provider of `issuer` was fetched.
    pub async fn jwks_fetches(&self, issuer: &str) -> u64 {
        match self.providers.iter().find(|p| p.config.issuer == issuer) {
            Some(p) => p.keys.lock().await.fetches,
            None => 0,
        }
    }

    /// The user a request's `Authorization` header value proves, or why it proves none.
    pub async fn user(
        &self,
        kms: &Kms,
        peer: &crate::listener::PeerIdentity,
        authorization: Option<&str>,
    ) -> KResult<String> {
        if !self.enabled() {
            return Ok(self.default_user.clone());
        }
        // The handshake verified the certificate against the configured CAs.
        if self.client_certificates {
            let name = if self.certificate_email {
                peer.email.as_deref()
            } else {
                peer.common_name.as_deref()
            };
            if let Some(name) = name.filter(|n| !n.is_empty()) {
                return Ok(name.to_owned());
            }
        }
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                KmsError::Unauthenticated(
                    "present a client certificate from a trusted CA, or send `Authorization: Bearer TOKEN` (a JWT from a configured identity provider, or the API token)".into(),
                )
            })?;
        if token.matches('.').count() == 2 && !self.providers.is_empty() {
            return self.jwt_user(token).await;
        }
        if let Some(id) = &self.api_token_id
            && self.api_token_matches(kms, id, token).await?
        {
            return Ok(self.default_user.clone());
        }
        Err(KmsError::Unauthenticated(
            "the bearer token is neither a valid JWT nor the API token".into(),
        ))
    }

    /// Whether `token` is the API token: the base64 of the key material of the symmetric key
    /// `id`, compared in constant time.
    async fn api_token_matches(&self, kms: &Kms, id: &str, token: &str) -> KResult<bool> {
        use base64::Engine;
        let Some(object) = kms.store.get(id).await? else {
            tracing::error!(api_token_id = %id, "the API token key does not exist");
            return Ok(false);
        };
        let Ok(material) = crate::operations::key_bytes(&object) else {
            return Ok(false);
        };
        let expected =
            zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(material));
        Ok(
            aws_lc_rs::constant_time::verify_slices_are_equal(
                expected.as_bytes(),
                token.as_bytes(),
            )
            .is_ok(),
        )
    }

    /// The user of a JWT, remembered for a while once verified.
    async fn jwt_user(&self, token: &str) -> KResult<String> {
        let digest: [u8; 32] =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes())
                .as_ref()
                .try_into()
                .unwrap_or([0; 32]);
        if let Ok(verified) = self.verified.lock()
            && let Some((user, until)) = verified.get(&digest)
            && Instant::now() < *until
        {
            return Ok(user.clone());
        }
        let (user, exp) = self.verify_jwt(token).await?;
        let now_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let left = Duration::from_secs(exp.saturating_sub(now_unix));
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() >= VERIFIED_MAX {
                verified.clear();
            }
            verified.insert(
                digest,
                (user.clone(), Instant::now() + left.min(VERIFIED_LIFETIME)),
            );
        }
        Ok(user)
    }

    /// Verifies a JWT: answers its user and its `exp`.
    async fn verify_jwt(&self, token: &str) -> KResult<(String, u64)> {
        let refused = |why: String| KmsError::Unauthenticated(format!("invalid JWT: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            refused("its header is not a JWT header of an allowed algorithm".into())
        })?;
        if !matches!(
            header.alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
                | Algorithm::ES256
                | Algorithm::ES384
                | Algorithm::EdDSA
        ) {
            return Err(refused(format!(
                "algorithm {:?} is not accepted; only RS*, PS*, ES* and EdDSA",
                header.alg
            )));
        }
        // The issuer only chooses which provider's keys verify the token.
        let unverified: Unverified = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| refused("its claims are not JSON".into()))?;
        let issuer = unverified
            .iss
            .ok_or_else(|| refused("it has no `iss` claim".into()))?;
        let provider = self
            .providers
            .iter()
            .find(|p| p.config.issuer == issuer)
            .ok_or_else(|| refused(format!("issuer `{issuer}` is not configured")))?;
        let kid = header
            .kid
            .ok_or_else(|| refused("its header has no `kid`".into()))?;
        let (key, key_alg) = provider.key(&self.http, &kid).await?;
        if key_alg.is_some_and(|a| a != header.alg) {
            return Err(refused(format!(
                "key `{kid}` is for {key_alg:?}, not {:?}",
                header.alg
            )));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        validation.set_issuer(&[&issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        match &provider.config.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| refused(describe(e.kind())))?;
        let exp = data.claims.exp.unwrap_or(0);
        let user = data
            .claims
            .email
            .or(data.claims.sub)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| refused("it has neither an `email` nor a `sub` claim".into()))?;
        Ok((user, exp))
    }
}

/// What a JWT validation error means, without the token.
fn describe(kind: &jsonwebtoken::errors::ErrorKind) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::ExpiredSignature => "it has expired".into(),
        K::ImmatureSignature => "it is not valid yet (nbf)".into(),
        K::InvalidAudience => "it is not meant for this server (aud)".into(),
        K::InvalidIssuer => "its issuer does not match".into(),
        K::InvalidSignature => "its signature does not verify".into(),
        K::MissingRequiredClaim(c) => format!("it has no `{c}` claim"),
        K::InvalidAlgorithm => "its algorithm does not fit the key".into(),
        _ => "it does not verify".into(),
    }
}

impl Provider {
    /// The key `kid`, fetching the JWKS when it is old or does not know `kid` (rate-limited).
    async fn key(
        &self,
        http: &reqwest::Client,
        kid: &str,
    ) -> KResult<(DecodingKey, Option<Algorithm>)> {
        let mut keys = self.keys.lock().await;
        let stale = keys.fetched.is_none_or(|t| t.elapsed() > JWKS_LIFETIME);
        let may_refresh = keys.fetched.is_none_or(|t| t.elapsed() >= MIN_REFRESH);
        if (stale || !keys.by_kid.contains_key(kid)) && may_refresh {
            match self.fetch(http).await {
                Ok(fresh) => {
                    keys.by_kid = fresh;
                    keys.fetches += 1;
                }
                Err(e) => {
                    tracing::warn!(issuer = %self.config.issuer, error = %e, "JWKS fetch failed")
                }
            }
            keys.fetched = Some(Instant::now());
        }
        keys.by_kid.get(kid).cloned().ok_or_else(|| {
            KmsError::Unauthenticated(format!(
                "invalid JWT: key `{kid}` is not in the JWKS of `{}`",
                self.config.issuer
            ))
        })
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
    ) -> Result<HashMap<String, (DecodingKey, Option<Algorithm>)>, String> {
        let jwks_uri = match &self.config.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let discovery = format!(
                    "{}/.well-known/openid-configuration",
                    self.config.issuer.trim_end_matches('/')
                );
                let document: serde_json::Value = http
                    .get(&discovery)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| format!("{discovery}: {e}"))?
                    .json()
                    .await
                    .map_err(|e| format!("{discovery}: {e}"))?;
                document["jwks_uri"]
                    .as_str()
                    .ok_or_else(|| format!("{discovery} names no jwks_uri"))?
                    .to_owned()
            }
        };
        let set: JwkSet = http
            .get(&jwks_uri)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("{jwks_uri}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("{jwks_uri}: {e}"))?;
        let mut out = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            // Symmetric keys in a JWKS are never used: a public JWKS cannot hold a secret.
            if matches!(
                jwk.algorithm,
                jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
            ) {
                continue;
            }
            let alg = jwk
                .common
                .key_algorithm
                .and_then(|a| a.to_string().parse::<Algorithm>().ok());
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    out.insert(kid, (key, alg));
                }
                Err(e) => tracing::warn!(%kid, error = %e, "JWKS key skipped"),
            }
        }
        Ok(out)
    }
}
