//! Authentication and rights over real HTTP: JWTs checked against a JWKS this test serves
//! itself (rotation, rate-limited refetch, refused algorithms, two providers), the API token,
//! and the rights matrix with users proven by their tokens.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use common::TestServer;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kms_server::config::{Backend, JwtProvider};
use kms_store::sql::testing::TestDatabase;
use serde_json::{Value, json};

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An ES256 signing key with its JWK.
struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
}

impl SigningKey {
    fn new(kid: &str) -> SigningKey {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        SigningKey {
            kid: kid.into(),
            pkcs8: pkcs8.as_ref().to_vec(),
            public: pair.public_key().as_ref().to_vec(),
        }
    }

    fn jwk(&self) -> Value {
        json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
            "x": b64url(&self.public[1..33]), "y": b64url(&self.public[33..65]),
        })
    }

    fn sign(&self, claims: &Value) -> String {
        let header = Header {
            kid: Some(self.kid.clone()),
            ..Header::new(Algorithm::ES256)
        };
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&self.pkcs8)).unwrap()
    }
}

/// An identity provider on a loopback port: its JWKS (replaceable) and a discovery document.
struct IdP {
    url: String,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicU64>,
}

async fn idp(keys: &[&SigningKey]) -> IdP {
    let jwks = Arc::new(Mutex::new(
        json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() }),
    ));
    let fetches = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (served, counted, base) = (jwks.clone(), fetches.clone(), url.clone());
    let app =
        axum::Router::new()
            .route(
                "/jwks",
                axum::routing::get(move || {
                    let (served, counted) = (served.clone(), counted.clone());
                    async move {
                        counted.fetch_add(1, Ordering::SeqCst);
                        axum::Json(served.lock().unwrap().clone())
                    }
                }),
            )
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || {
                    let base = base.clone();
                    async move {
                        axum::Json(json!({ "issuer": base, "jwks_uri": format!("{base}/jwks") }))
                    }
                }),
            );
    tokio::spawn(async move { axum::serve(listener, app).await });
    IdP { url, jwks, fetches }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(issuer: &str, user: &str) -> Value {
    json!({ "iss": issuer, "email": user, "aud": "kms", "iat": now(), "exp": now() + 600 })
}

/// Sends a JSON TTLV operation with an optional bearer token; answers the status and body.
async fn call(url: &str, token: Option<&str>, body: Value) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/kmip/2_1"))
        .json(&body);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn create_key(tag: &str) -> Value {
    json!({"tag": "Create", "value": [
        {"tag": "ObjectType", "type": "Enumeration", "value": "SymmetricKey"},
        {"tag": "Attributes", "value": [
            {"tag": "CryptographicAlgorithm", "type": "Enumeration", "value": "AES"},
            {"tag": "CryptographicLength", "type": "Integer", "value": 256},
            {"tag": "CryptographicUsageMask", "type": "Integer", "value": 12},
            {"tag": "ActivationDate", "type": "DateTime", "value": "2020-01-01T00:00:00Z"},
            {"tag": "Attribute", "value": [
                {"tag": "VendorIdentification", "type": "TextString", "value": "cosmian"},
                {"tag": "AttributeName", "type": "TextString", "value": "tag"},
                {"tag": "AttributeValue", "type": "TextString", "value": format!("[\"{tag}\"]")}]}]}]})
}

fn uid_request(operation: &str, uid: &str) -> Value {
    json!({"tag": operation, "value": [
        {"tag": "UniqueIdentifier", "type": "TextString", "value": uid}]})
}

fn encrypt(uid: &str) -> Value {
    json!({"tag": "Encrypt", "value": [
        {"tag": "UniqueIdentifier", "type": "TextString", "value": uid},
        {"tag": "Data", "type": "ByteString", "value": "00112233"}]})
}

fn uid_of(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap();
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["tag"] == "UniqueIdentifier")
        .and_then(|n| n["value"].as_str())
        .unwrap()
        .to_owned()
}

fn provider(idp: &IdP, discover: bool) -> JwtProvider {
    JwtProvider {
        issuer: idp.url.clone(),
        jwks_uri: (!discover).then(|| format!("{}/jwks", idp.url)),
        audience: Some("kms".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_tokens_are_checked() {
    let first = SigningKey::new("k1");
    let idp1 = idp(&[&first]).await;
    let second_key = SigningKey::new("p2");
    let idp2 = idp(&[&second_key]).await;
    let t = TestServer::builder()
        .jwt(vec![provider(&idp1, false), provider(&idp2, true)])
        .start()
        .await;
    let iss = idp1.url.as_str();

    // Valid: the user is the email claim.
    let alice = first.sign(&claims(iss, "alice@example.com"));
    let (status, body) = call(&t.url, Some(&alice), create_key("jwt")).await;
    assert_eq!(status, 200, "{body}");
    let uid = uid_of(&body);

    // No token, or not a token.
    let (status, body) = call(&t.url, None, uid_request("Get", &uid)).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("Authorization: Bearer"), "{body}");
    assert_eq!(
        call(&t.url, Some("nonsense"), uid_request("Get", &uid))
            .await
            .0,
        401
    );

    let refused = |claims: Value, why: &'static str| {
        let token = first.sign(&claims);
        let url = t.url.clone();
        let uid = uid.clone();
        async move {
            let (status, body) = call(&url, Some(&token), uid_request("Get", &uid)).await;
            assert_eq!(status, 401, "{why}: {body}");
            assert!(body.contains(why), "{why}: {body}");
        }
    };
    let mut expired = claims(iss, "alice@example.com");
    expired["exp"] = json!(now() - 3600);
    refused(expired, "expired").await;
    let mut early = claims(iss, "alice@example.com");
    early["nbf"] = json!(now() + 3600);
    refused(early, "not valid yet").await;
    let mut audience = claims(iss, "alice@example.com");
    audience["aud"] = json!("another-service");
    refused(audience, "not meant for this server").await;
    refused(
        claims("https://evil.example", "alice@example.com"),
        "is not configured",
    )
    .await;

    // alg none, and HS256 keyed with the provider's public key.
    let none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
        b64url(claims(iss, "alice@example.com").to_string().as_bytes())
    );
    let (status, body) = call(&t.url, Some(&none), uid_request("Get", &uid)).await;
    assert_eq!(status, 401, "{body}");
    let hs256 = jsonwebtoken::encode(
        &Header {
            kid: Some("k1".into()),
            ..Header::new(Algorithm::HS256)
        },
        &claims(iss, "alice@example.com"),
        &EncodingKey::from_secret(&first.public),
    )
    .unwrap();
    let (status, body) = call(&t.url, Some(&hs256), uid_request("Get", &uid)).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("HS256"), "{body}");

    // Rotation: a new key is fetched once, and a flood of unknown keys is not a flood of fetches.
    let rotated = SigningKey::new("k2");
    let before = idp1.fetches.load(Ordering::SeqCst);
    *idp1.jwks.lock().unwrap() = json!({ "keys": [first.jwk(), rotated.jwk()] });
    tokio::time::sleep(kms_server::auth::MIN_REFRESH).await;
    let token = rotated.sign(&claims(iss, "alice@example.com"));
    let (status, body) = call(&t.url, Some(&token), uid_request("Get", &uid)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        idp1.fetches.load(Ordering::SeqCst),
        before + 1,
        "fetched once"
    );
    let (status, _) = call(&t.url, Some(&token), uid_request("Get", &uid)).await;
    assert_eq!(status, 200);
    assert_eq!(
        idp1.fetches.load(Ordering::SeqCst),
        before + 1,
        "then cached"
    );
    let stranger = SigningKey::new("unknown");
    let flood_start = idp1.fetches.load(Ordering::SeqCst);
    for _ in 0..20 {
        let t2 = stranger.sign(&claims(iss, "alice@example.com"));
        assert_eq!(
            call(&t.url, Some(&t2), uid_request("Get", &uid)).await.0,
            401
        );
    }
    assert!(
        idp1.fetches.load(Ordering::SeqCst) <= flood_start + 1,
        "at most one fetch for 20 tokens with unknown keys"
    );

    // The second provider, found through discovery; the user is `sub` without `email`.
    let token = second_key.sign(&json!({
        "iss": idp2.url, "sub": "robot-7", "aud": "kms", "exp": now() + 600
    }));
    let (status, body) = call(&t.url, Some(&token), create_key("robot")).await;
    assert_eq!(status, 200, "{body}");
    let robots = uid_of(&body);
    // Objects belong to who created them: alice does not see the robot's key.
    assert_eq!(
        call(&t.url, Some(&alice), uid_request("Get", &robots))
            .await
            .0,
        404
    );
    t.server.stop().await;
}

/// Whether an answer got past authentication and authorization (it may still fail on the
/// object's state or the data).
fn authorized(status: u16) -> bool {
    !matches!(status, 401 | 403 | 404)
}

/// Builds the request of one operation on an object.
type RequestFor = Box<dyn Fn(&str) -> Value>;

/// Every operation × {owner, granted that operation, granted another, nothing, `*`, after
/// revoke}, with users proven by JWTs; nothing leaks to those without the right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rights_matrix_on_sqlite() {
    rights_matrix(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rights_matrix_on_postgresql() {
    let db = TestDatabase::postgres().await.unwrap();
    rights_matrix(Some(db.backend_at(db.url.clone(), 4))).await;
    db.drop_now().await.unwrap();
}

async fn rights_matrix(database: Option<Backend>) {
    let key = SigningKey::new("m");
    let idp = idp(&[&key]).await;
    let mut builder = TestServer::builder().jwt(vec![provider(&idp, false)]);
    if let Some(database) = database {
        builder = builder.database(database);
    }
    let t = builder.start().await;
    let token = |user: &str| key.sign(&claims(&idp.url, user));
    let (owner, granted, other, nobody) = (
        token("owner"),
        token("granted"),
        token("other"),
        token("nobody"),
    );
    let http = reqwest::Client::new();
    let access = |route: &'static str, who: String, body: Value| {
        let request = http
            .post(format!("{}{route}", t.url))
            .bearer_auth(who)
            .json(&body);
        async move { request.send().await.unwrap().status().as_u16() }
    };

    let operations: Vec<(&str, RequestFor)> = vec![
        ("get", Box::new(|u: &str| uid_request("Get", u))),
        ("export", Box::new(|u: &str| uid_request("Export", u))),
        (
            "get_attributes",
            Box::new(|u: &str| uid_request("GetAttributes", u)),
        ),
        ("encrypt", Box::new(|u: &str| encrypt(u))),
        // Authorized requests below may still fail for other reasons (a ciphertext that does
        // not decrypt, a state that forbids the change); `authorized` tells them apart.
        (
            "decrypt",
            Box::new(|u: &str| {
                json!({"tag": "Decrypt", "value": [
            {"tag": "UniqueIdentifier", "type": "TextString", "value": u},
            {"tag": "Data", "type": "ByteString", "value": "00112233"},
            {"tag": "IVCounterNonce", "type": "ByteString", "value": "000102030405060708090A0B"},
            {"tag": "AuthenticatedEncryptionTag", "type": "ByteString", "value": "000102030405060708090A0B0C0D0E0F"}]})
            }),
        ),
        (
            "mac",
            Box::new(|u: &str| {
                json!({"tag": "MAC", "value": [
            {"tag": "UniqueIdentifier", "type": "TextString", "value": u},
            {"tag": "Data", "type": "ByteString", "value": "00"}]})
            }),
        ),
        (
            "get_attribute_list",
            Box::new(|u: &str| uid_request("GetAttributeList", u)),
        ),
        ("activate", Box::new(|u: &str| uid_request("Activate", u))),
        (
            "mac_verify",
            Box::new(|u: &str| {
                json!({"tag": "MACVerify", "value": [
            {"tag": "UniqueIdentifier", "type": "TextString", "value": u},
            {"tag": "Data", "type": "ByteString", "value": "00"},
            {"tag": "MACData", "type": "ByteString", "value": "00"}]})
            }),
        ),
        (
            "modify_attribute",
            Box::new(|u: &str| {
                json!({"tag": "ModifyAttribute", "value": [
            {"tag": "UniqueIdentifier", "type": "TextString", "value": u},
            {"tag": "NewAttribute", "value": [
                {"tag": "ContactInformation", "type": "TextString", "value": "ops"}]}]})
            }),
        ),
        (
            "import",
            Box::new(|u: &str| {
                json!({"tag": "Import", "value": [
            {"tag": "UniqueIdentifier", "type": "TextString", "value": u},
            {"tag": "ObjectType", "type": "Enumeration", "value": "SymmetricKey"},
            {"tag": "ReplaceExisting", "type": "Boolean", "value": true},
            {"tag": "Attributes", "value": [
                {"tag": "CryptographicUsageMask", "type": "Integer", "value": 12}]},
            {"tag": "SymmetricKey", "value": [{"tag": "KeyBlock", "value": [
                {"tag": "KeyFormatType", "type": "Enumeration", "value": "Raw"},
                {"tag": "KeyValue", "value": [{"tag": "KeyMaterial", "type": "ByteString",
                    "value": "000102030405060708090A0B0C0D0E0F000102030405060708090A0B0C0D0E0F"}]},
                {"tag": "CryptographicAlgorithm", "type": "Enumeration", "value": "AES"},
                {"tag": "CryptographicLength", "type": "Integer", "value": 256}]}]}]})
            }),
        ),
        ("check", Box::new(|u: &str| uid_request("Check", u))),
        (
            "add_attribute",
            Box::new(|u: &str| {
                json!({"tag": "AddAttribute", "value": [
            {"tag": "UniqueIdentifier", "type": "TextString", "value": u},
            {"tag": "NewAttribute", "value": [
                {"tag": "ObjectGroup", "type": "TextString", "value": "g"}]}]})
            }),
        ),
        (
            "set_attribute",
            Box::new(|u: &str| {
                json!({"tag": "SetAttribute", "value": [
            {"tag": "UniqueIdentifier", "type": "TextString", "value": u},
            {"tag": "NewAttribute", "value": [
                {"tag": "ContactInformation", "type": "TextString", "value": "ops"}]}]})
            }),
        ),
        (
            "delete_attribute",
            Box::new(|u: &str| {
                json!({"tag": "DeleteAttribute", "value": [
            {"tag": "UniqueIdentifier", "type": "TextString", "value": u},
            {"tag": "AttributeReference", "type": "Enumeration", "value": "ContactInformation"}]})
            }),
        ),
        ("destroy", Box::new(|u: &str| uid_request("Destroy", u))),
        (
            "revoke",
            Box::new(|u: &str| {
                json!({"tag": "Revoke", "value": [
            {"tag": "UniqueIdentifier", "type": "TextString", "value": u},
            {"tag": "RevocationReason", "value": [
                {"tag": "RevocationReasonCode", "type": "Enumeration", "value": "Unspecified"}]}]})
            }),
        ),
    ];
    for (right, request) in &operations {
        let uid = uid_of(&call(&t.url, Some(&owner), create_key(right)).await.1);
        let run = |who: &String| {
            let (url, who, body) = (t.url.clone(), who.clone(), request(&uid));
            async move { call(&url, Some(&who), body).await }
        };
        let grant = |user: &str, ops: &[&str]| json!({"unique_identifier": uid, "user_id": user, "operation_types": ops});
        // Nobody but the owner knows the object: the answer of a missing one, and no material.
        let (status, body) = run(&nobody).await;
        assert_eq!(status, 404, "{right}: nothing granted");
        assert!(!body.contains("KeyMaterial"), "{right}");
        let (status, body) = run(&other).await;
        assert_eq!(status, 404, "{right}: other, before any grant: {body}");
        // Granted that operation: allowed. Granted another: 403.
        let another = if *right == "get" { "encrypt" } else { "get" };
        assert_eq!(
            access("/access/grant", owner.clone(), grant("granted", &[right])).await,
            200
        );
        assert_eq!(
            access("/access/grant", owner.clone(), grant("other", &[another])).await,
            200
        );
        let (status, body) = run(&granted).await;
        assert!(authorized(status), "{right}: granted: {status} {body}");
        let (status, body) = run(&other).await;
        assert_eq!(status, 403, "{right}: granted another operation: {body}");
        assert!(!body.contains("KeyMaterial"), "{right}");
        // A grantee cannot grant.
        assert_eq!(
            access("/access/grant", granted.clone(), grant("nobody", &[right])).await,
            403
        );
        // After revoke, back to nothing.
        assert_eq!(
            access("/access/revoke", owner.clone(), grant("granted", &[right])).await,
            200
        );
        let (status, _) = run(&granted).await;
        assert_eq!(status, 404, "{right}: after revoke");
        // Granted to everyone.
        assert_eq!(
            access("/access/grant", owner.clone(), grant("*", &[right])).await,
            200
        );
        let (status, body) = run(&nobody).await;
        assert!(authorized(status), "{right}: granted to *: {status} {body}");
        // The owner may do it all along.
        let (status, body) = run(&owner).await;
        assert!(authorized(status), "{right}: owner: {status} {body}");
    }
    // Locate shows each user what it may see, and nothing else.
    let locate = json!({"tag": "Locate", "value": []});
    let (_, body) = call(&t.url, Some(&token("stranger")), locate.clone()).await;
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        seen["value"].as_array().unwrap().len(),
        operations.len(),
        "the * grants: {body}"
    );
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_token() {
    let dir = tempfile::tempdir().unwrap();
    // A key created while the server is open, whose value becomes the token.
    let t = TestServer::builder()
        .sqlite_dir(dir.path().to_owned())
        .start()
        .await;
    let uid = uid_of(&call(&t.url, None, create_key("token")).await.1);
    let (_, body) = call(&t.url, None, uid_request("Get", &uid)).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    let hex = v.to_string();
    let material = hex
        .split("\"KeyMaterial\",\"type\":\"ByteString\",\"value\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let bytes: Vec<u8> = (0..material.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&material[i..i + 2], 16).unwrap())
        .collect();
    t.server.stop().await;
    let t = TestServer::builder()
        .sqlite_dir(dir.path().to_owned())
        .api_token_id(&uid)
        .start()
        .await;
    let token = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let (status, body) = call(&t.url, Some(&token), uid_request("Get", &uid)).await;
    assert_eq!(status, 200, "{body}");
    let mut wrong = bytes.clone();
    wrong[0] ^= 1;
    let wrong = base64::engine::general_purpose::STANDARD.encode(&wrong);
    let (status, body) = call(&t.url, Some(&wrong), uid_request("Get", &uid)).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        !body.contains(&token) && !body.contains(&wrong),
        "no token echoed"
    );
    assert_eq!(call(&t.url, None, uid_request("Get", &uid)).await.0, 401);
    // Public routes stay open.
    let health = reqwest::get(format!("{}/health", t.url)).await.unwrap();
    assert_eq!(health.status(), 200);
    t.server.stop().await;
}

/// Two servers on one PostgreSQL database: a right revoked through one is gone on the other at
/// once (no server caches grants).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_on_one_server_holds_on_the_other() {
    let key = SigningKey::new("ha");
    let idp = idp(&[&key]).await;
    let db = TestDatabase::postgres().await.unwrap();
    let database = db.backend_at(db.url.clone(), 4);
    let a = TestServer::builder()
        .jwt(vec![provider(&idp, false)])
        .database(database.clone())
        .start()
        .await;
    let b = TestServer::builder()
        .jwt(vec![provider(&idp, false)])
        .database(database)
        .start()
        .await;
    let (owner, bob) = (
        key.sign(&claims(&idp.url, "owner")),
        key.sign(&claims(&idp.url, "bob")),
    );
    let uid = uid_of(&call(&a.url, Some(&owner), create_key("ha")).await.1);
    let http = reqwest::Client::new();
    let body = json!({"unique_identifier": uid, "user_id": "bob", "operation_types": ["encrypt"]});
    let status = |r: reqwest::Response| r.status().as_u16();
    let granted = http
        .post(format!("{}/access/grant", a.url))
        .bearer_auth(&owner)
        .json(&body);
    assert_eq!(status(granted.send().await.unwrap()), 200);
    assert_eq!(call(&b.url, Some(&bob), encrypt(&uid)).await.0, 200);
    let revoked = http
        .post(format!("{}/access/revoke", a.url))
        .bearer_auth(&owner)
        .json(&body);
    assert_eq!(status(revoked.send().await.unwrap()), 200);
    assert_eq!(
        call(&b.url, Some(&bob), encrypt(&uid)).await.0,
        404,
        "revoked on b at once"
    );
    a.server.stop().await;
    b.server.stop().await;
    db.drop_now().await.unwrap();
}

/// A CA, and certificates it signs for users.
struct Ca {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    /// A client certificate for `user` (its CN, and `user@example.com` as its email), valid
    /// now unless `expired`; PEM cert + key.
    fn client(&self, user: &str, expired: bool) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, user);
        params.subject_alt_names = vec![rcgen::SanType::Rfc822Name(
            format!("{user}@example.com").try_into().unwrap(),
        )];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        format!("{}{}", cert.pem(), key.serialize_pem())
    }
}

fn tls_client(identity: Option<&str>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().danger_accept_invalid_certs(true);
    if let Some(pem) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// Client certificates: no certificate, one from another CA, an expired one, valid ones (the
/// user is the CN); with a JWT provider configured too, a certificate-less client may use a
/// token instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let (p12, _) =
        kms_server::tls::self_signed_pkcs12(&["localhost", "127.0.0.1"], "pw", true).unwrap();
    std::fs::write(dir.path().join("kms.p12"), p12).unwrap();
    let (ca, other_ca) = (Ca::new("Test CA"), Ca::new("Other CA"));
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
    let key = SigningKey::new("c");
    let idp = idp(&[&key]).await;
    let t = TestServer::builder()
        .https(
            dir.path().join("kms.p12"),
            "pw",
            Some(dir.path().join("ca.pem")),
        )
        .jwt(vec![provider(&idp, false)])
        .start()
        .await;
    let send = |client: reqwest::Client, body: Value| {
        let url = format!("{}/kmip/2_1", t.url);
        async move { client.post(url).json(&body).send().await }
    };

    let alice = tls_client(Some(&ca.client("alice", false)));
    let created = send(alice.clone(), create_key("mtls")).await.unwrap();
    assert_eq!(created.status(), 200);
    let uid = uid_of(&created.text().await.unwrap());
    // The CN is the user: alice's key is hers, not bob's.
    let owned = alice
        .get(format!("{}/access/owned", t.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(owned.contains(&uid), "{owned}");
    let bob = tls_client(Some(&ca.client("bob", false)));
    let r = send(bob, uid_request("Get", &uid)).await.unwrap();
    assert_eq!(r.status(), 404);

    // No certificate and no token: 401. A token instead of a certificate: fine.
    let anonymous = tls_client(None);
    let r = send(anonymous.clone(), uid_request("Get", &uid))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let token = key.sign(&claims(&idp.url, "alice"));
    let r = anonymous
        .post(format!("{}/kmip/2_1", t.url))
        .bearer_auth(token)
        .json(&uid_request("Get", &uid))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the same user through a JWT");

    // Another CA's certificate and an expired one do not get through the handshake.
    let stranger = tls_client(Some(&other_ca.client("alice", false)));
    assert!(send(stranger, uid_request("Get", &uid)).await.is_err());
    let expired = tls_client(Some(&ca.client("alice", true)));
    assert!(send(expired, uid_request("Get", &uid)).await.is_err());
    t.server.stop().await;
}

/// With `--client-certificate-email`, the user of a certificate is its email address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_email_as_user() {
    let dir = tempfile::tempdir().unwrap();
    let (p12, _) =
        kms_server::tls::self_signed_pkcs12(&["localhost", "127.0.0.1"], "pw", true).unwrap();
    std::fs::write(dir.path().join("kms.p12"), p12).unwrap();
    let ca = Ca::new("Mail CA");
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
    let key = SigningKey::new("e");
    let idp = idp(&[&key]).await;
    let t = TestServer::builder()
        .https(
            dir.path().join("kms.p12"),
            "pw",
            Some(dir.path().join("ca.pem")),
        )
        .client_certificate_email()
        .jwt(vec![provider(&idp, false)])
        .start()
        .await;
    let alice = tls_client(Some(&ca.client("alice", false)));
    let created = alice
        .post(format!("{}/kmip/2_1", t.url))
        .json(&create_key("mail"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let uid = uid_of(&created.text().await.unwrap());
    // The owner is alice@example.com, not alice.
    let by_token = |user: &str| {
        let request = tls_client(None)
            .post(format!("{}/kmip/2_1", t.url))
            .bearer_auth(key.sign(&claims(&idp.url, user)))
            .json(&uid_request("Get", &uid));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(by_token("alice@example.com").await, 200);
    assert_eq!(by_token("alice").await, 404);
    t.server.stop().await;
}
