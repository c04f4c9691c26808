//! Keys in an HSM, over the HTTP API of a real `kms-server` process, on SoftHSM2: a token is
//! initialised by the test in a temporary directory (`SOFTHSM2_CONF` given to the server
//! process). Every operation on HSM keys is checked, and its output cross-checked in software;
//! the rights of HSM admins and other users (client certificates: the user is the CN); a server
//! whose HSM configuration does not work refuses to start and says why.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kmip::model::*;
use kmip::{
    BlockCipherMode, CryptographicAlgorithm, HashingAlgorithm, KeyFormatType, ObjectType,
    PaddingMethod, ValidityIndicator,
};
use kms_client::{ClientConfig, KmsClient};
use kms_crypto::asymmetric::{Curve, KeyKind, Message, SignatureScheme};

mod common;

use common::socket::{Pki, pki};

pub const PIN: &str = "1234-user-pin";

/// A SoftHSM2 token of the test's own: its configuration file and slot.
pub struct Token {
    pub dir: tempfile::TempDir,
    pub conf: PathBuf,
    pub slot: u64,
}

impl Token {
    pub fn init() -> Token {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args(["--init-token", "--free", "--label", "kms-test"])
            .args(["--pin", PIN, "--so-pin", "0000-so-pin"])
            .output()
            .expect("softhsm2-util (Debian package softhsm2, installed by scripts/setup.sh)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let slot = text
            .split_whitespace()
            .last()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no slot in `{text}`"));
        Token { dir, conf, slot }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// A client of `url` presenting a certificate for `user` (signed by the CA of `pki`).
fn client(pki: &Pki, url: &str, user: &str) -> KmsClient {
    let (cert, key) = pki.client_pem(user);
    KmsClient::new(ClientConfig {
        server_url: url.to_owned(),
        accept_invalid_certs: true,
        client_identity_pem: Some(zeroize::Zeroizing::new(format!("{cert}{key}").into_bytes())),
        ..ClientConfig::default()
    })
    .unwrap()
}

/// A `kms-server` process on the token, killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn server_command(token: &Token, dir: &Path, port: u16, password: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kms-server"));
    c.env("SOFTHSM2_CONF", &token.conf)
        .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
        .arg("--sqlite-path")
        .arg(dir.join("data"))
        .args([
            "--hsm-model",
            "softhsm2",
            "--hsm-slot",
            &token.slot.to_string(),
        ])
        .args(["--hsm-password", password, "--hsm-admin", "hsm-admin"])
        .arg("--https-p12-file")
        .arg(dir.join("kms.p12"))
        .args(["--https-p12-password", "pw"])
        .arg("--authority-cert-file")
        .arg(dir.join("ca.pem"));
    c
}

pub async fn start(mut command: Command, port: u16) -> Server {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}");
    let server = Server { child, url };
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    for _ in 0..200 {
        if http
            .get(format!("{}/version", server.url))
            .send()
            .await
            .is_ok()
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not start");
}

fn with_uid(attributes: Attributes, uid: &str) -> Attributes {
    let mut a = attributes;
    a.set(Attribute::UniqueIdentifier(uid.into()));
    a
}

fn destroy(uid: &str) -> Destroy {
    Destroy {
        unique_identifier: Some(uid.into()),
        remove: None,
        cascade: None,
        expected_object_type: None,
    }
}

fn key_pair(algorithm: CryptographicAlgorithm, length: i32) -> CreateKeyPair {
    CreateKeyPair {
        common_attributes: Some(Attributes(vec![
            Attribute::CryptographicAlgorithm(algorithm),
            Attribute::CryptographicLength(length),
        ])),
        private_key_attributes: None,
        public_key_attributes: None,
        common_protection_storage_masks: None,
        private_protection_storage_masks: None,
        public_protection_storage_masks: None,
    }
}

fn sign(uid: &str) -> Sign {
    Sign {
        unique_identifier: Some(uid.into()),
        cryptographic_parameters: None,
        data: None,
        digested_data: None,
        correlation_value: None,
        init_indicator: None,
        final_indicator: None,
    }
}

fn verify(uid: &str) -> SignatureVerify {
    SignatureVerify {
        unique_identifier: Some(uid.into()),
        cryptographic_parameters: None,
        data: None,
        digested_data: None,
        signature_data: None,
        correlation_value: None,
        init_indicator: None,
        final_indicator: None,
    }
}

fn params(f: impl FnOnce(&mut CryptographicParameters)) -> Option<CryptographicParameters> {
    let mut p = CryptographicParameters::default();
    f(&mut p);
    Some(p)
}

async fn public_spki(client: &KmsClient, uid: &str) -> Vec<u8> {
    let got = client
        .call(Get {
            key_format_type: Some(KeyFormatType::X_509),
            ..Get::new(uid)
        })
        .await
        .unwrap();
    assert_eq!(got.object_type, ObjectType::PublicKey);
    got.object
        .key_block()
        .and_then(|kb| kb.symmetric_key_bytes())
        .expect("SPKI bytes")
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsm_keys_over_the_api() {
    let token = Token::init();
    let dir = token.dir.path().to_owned();
    let pki = pki(&dir);
    let port = free_port();
    let server = start(server_command(&token, &dir, port, PIN), port).await;
    let admin = client(&pki, &server.url, "hsm-admin");
    let bob = client(&pki, &server.url, "bob");
    let slot = token.slot;
    let aes = format!("hsm::{slot}::aes-sensitive");
    let aes_x = format!("hsm::{slot}::aes-extractable");

    // Create: AES keys, one that stays in the HSM and one that may leave it.
    let c = admin
        .call(Create {
            attributes: with_uid(Attributes::new(), &aes),
            ..Create::symmetric_key(CryptographicAlgorithm::AES, 256)
        })
        .await
        .unwrap();
    assert_eq!(c.unique_identifier.as_text(), Some(aes.as_str()));
    let mut extractable = with_uid(Attributes::new(), &aes_x);
    extractable.set(Attribute::Extractable(true));
    extractable.set(Attribute::Sensitive(false));
    extractable.set(Attribute::CryptographicLength(128));
    admin
        .call(Create {
            attributes: extractable,
            ..Create::symmetric_key(CryptographicAlgorithm::AES, 128)
        })
        .await
        .unwrap();
    let e = admin
        .call(Create {
            attributes: with_uid(Attributes::new(), &aes),
            ..Create::symmetric_key(CryptographicAlgorithm::AES, 256)
        })
        .await
        .expect_err("the label is taken");
    assert!(e.to_string().contains("exists"), "{e}");

    // GetAttributes.
    let a = admin
        .call(GetAttributes::all(aes.as_str()))
        .await
        .unwrap()
        .attributes;
    assert_eq!(
        a.cryptographic_algorithm(),
        Some(CryptographicAlgorithm::AES)
    );
    assert_eq!(a.cryptographic_length(), Some(256));

    // AES-GCM and AES-CBC inside the HSM.
    for p in [
        None,
        params(|p| {
            p.block_cipher_mode = Some(BlockCipherMode::CBC);
            p.padding_method = Some(PaddingMethod::PKCS5);
        }),
    ] {
        let gcm = p.is_none();
        let enc = admin
            .call(Encrypt {
                cryptographic_parameters: p.clone(),
                authenticated_encryption_additional_data: gcm.then(|| b"aad".to_vec()),
                ..Encrypt::new(Some(aes.as_str().into()), b"in the HSM".to_vec())
            })
            .await
            .unwrap();
        assert_ne!(enc.data.as_deref(), Some(&b"in the HSM"[..]));
        let dec = admin
            .call(Decrypt {
                cryptographic_parameters: p,
                iv_counter_nonce: enc.iv_counter_nonce.clone(),
                authenticated_encryption_additional_data: gcm.then(|| b"aad".to_vec()),
                authenticated_encryption_tag: enc.authenticated_encryption_tag.clone(),
                ..Decrypt::new(Some(aes.as_str().into()), enc.data.clone().unwrap())
            })
            .await
            .unwrap();
        assert_eq!(dec.data.as_deref(), Some(&b"in the HSM"[..]));
    }
    // A wrong tag is refused.
    let enc = admin
        .call(Encrypt::new(Some(aes.as_str().into()), b"x".to_vec()))
        .await
        .unwrap();
    let mut tag = enc.authenticated_encryption_tag.clone().unwrap();
    tag[0] ^= 1;
    assert!(
        admin
            .call(Decrypt {
                iv_counter_nonce: enc.iv_counter_nonce.clone(),
                authenticated_encryption_tag: Some(tag),
                ..Decrypt::new(Some(aes.as_str().into()), enc.data.clone().unwrap())
            })
            .await
            .is_err()
    );

    // Get: the sensitive key stays in; the extractable one comes out and decrypts in software
    // what the HSM encrypted.
    let e = admin
        .call(Get::new(aes.as_str()))
        .await
        .expect_err("sensitive");
    assert!(e.to_string().contains("HSM"), "{e}");
    let key = admin.call(Get::new(aes_x.as_str())).await.unwrap();
    let key_bytes = key
        .object
        .key_block()
        .and_then(|kb| kb.symmetric_key_bytes())
        .unwrap()
        .to_vec();
    assert_eq!(key_bytes.len(), 16);
    let enc = admin
        .call(Encrypt {
            authenticated_encryption_additional_data: Some(b"ad".to_vec()),
            ..Encrypt::new(Some(aes_x.as_str().into()), b"cross-checked".to_vec())
        })
        .await
        .unwrap();
    let plain = kms_crypto::decrypt(&kms_crypto::DecryptRequest {
        iv: enc.iv_counter_nonce.as_deref(),
        aad: b"ad",
        tag: enc.authenticated_encryption_tag.as_deref(),
        ..kms_crypto::DecryptRequest::new(
            kms_crypto::SymmetricCipher::AesGcm,
            &key_bytes,
            enc.data.as_deref().unwrap(),
        )
    })
    .unwrap();
    assert_eq!(plain.as_slice(), b"cross-checked");

    // RSA and EC key pairs: signatures verified in software with the exported public key and
    // inside the HSM; RSA encryption in software decrypted by the HSM.
    let rsa = format!("hsm::{slot}::rsa");
    let pair = admin
        .call(CreateKeyPair {
            private_key_attributes: Some(with_uid(Attributes::new(), &rsa)),
            ..key_pair(CryptographicAlgorithm::RSA, 2048)
        })
        .await
        .unwrap();
    let rsa_pk = pair
        .public_key_unique_identifier
        .as_text()
        .unwrap()
        .to_owned();
    assert_eq!(rsa_pk, format!("{rsa}_pk"));
    let spki = public_spki(&admin, &rsa_pk).await;
    for (p, scheme) in [
        (
            None,
            SignatureScheme::RsaPss {
                hash: kms_crypto::HashAlgorithm::Sha256,
                salt: None,
            },
        ),
        (
            params(|p| {
                p.padding_method = Some(PaddingMethod::PKCS1V1_5);
                p.hashing_algorithm = Some(HashingAlgorithm::SHA_384);
            }),
            SignatureScheme::RsaPkcs1v15(kms_crypto::HashAlgorithm::Sha384),
        ),
    ] {
        let signed = admin
            .call(Sign {
                cryptographic_parameters: p.clone(),
                data: Some(b"signed in the HSM".to_vec()),
                ..sign(&rsa)
            })
            .await
            .unwrap();
        let signature = signed.signature_data.unwrap();
        assert!(
            kms_crypto::asymmetric::verify(
                KeyKind::Rsa,
                &spki,
                scheme,
                Message::Data(b"signed in the HSM"),
                &signature
            )
            .unwrap()
        );
        for (data, expected) in [
            (&b"signed in the HSM"[..], ValidityIndicator::Valid),
            (&b"something else"[..], ValidityIndicator::Invalid),
        ] {
            let v = admin
                .call(SignatureVerify {
                    cryptographic_parameters: p.clone(),
                    data: Some(data.to_vec()),
                    signature_data: Some(signature.clone()),
                    ..verify(&rsa_pk)
                })
                .await
                .unwrap();
            assert_eq!(v.validity_indicator, expected);
        }
    }
    for (padding, p) in [
        (
            // SoftHSM2 does OAEP with SHA-1 only (vendor HSMs take SHA-256 too).
            kms_crypto::asymmetric::RsaEncryption::Oaep {
                hash: kms_crypto::HashAlgorithm::Sha1,
                mgf1: kms_crypto::HashAlgorithm::Sha1,
                label: &[],
            },
            params(|p| {
                p.padding_method = Some(PaddingMethod::OAEP);
                p.hashing_algorithm = Some(HashingAlgorithm::SHA_1);
            }),
        ),
        (
            kms_crypto::asymmetric::RsaEncryption::Pkcs1v15,
            params(|p| p.padding_method = Some(PaddingMethod::PKCS1V1_5)),
        ),
    ] {
        let ct = kms_crypto::asymmetric::rsa_encrypt(&spki, padding, b"wrapped key").unwrap();
        let dec = admin
            .call(Decrypt {
                cryptographic_parameters: p.clone(),
                ..Decrypt::new(Some(rsa.as_str().into()), ct)
            })
            .await
            .unwrap();
        assert_eq!(dec.data.as_deref(), Some(&b"wrapped key"[..]));
        // And the other way: the HSM encrypts with the public half, the HSM decrypts.
        let enc = admin
            .call(Encrypt {
                cryptographic_parameters: p.clone(),
                ..Encrypt::new(Some(rsa_pk.as_str().into()), b"round trip".to_vec())
            })
            .await
            .unwrap();
        let dec = admin
            .call(Decrypt {
                cryptographic_parameters: p,
                ..Decrypt::new(Some(rsa.as_str().into()), enc.data.unwrap())
            })
            .await
            .unwrap();
        assert_eq!(dec.data.as_deref(), Some(&b"round trip"[..]));
    }
    assert!(
        admin.call(Get::new(rsa.as_str())).await.is_err(),
        "a private key stays in"
    );

    let ec = format!("hsm::{slot}::ec");
    admin
        .call(CreateKeyPair {
            private_key_attributes: Some(with_uid(Attributes::new(), &ec)),
            ..key_pair(CryptographicAlgorithm::EC, 384)
        })
        .await
        .unwrap();
    let ec_spki = public_spki(&admin, &format!("{ec}_pk")).await;
    let signed = admin
        .call(Sign {
            data: Some(b"ecdsa".to_vec()),
            ..sign(&ec)
        })
        .await
        .unwrap();
    assert!(
        kms_crypto::asymmetric::verify(
            KeyKind::Ec(Curve::P384),
            &ec_spki,
            SignatureScheme::Ecdsa(kms_crypto::HashAlgorithm::Sha384),
            Message::Data(b"ecdsa"),
            signed.signature_data.as_deref().unwrap()
        )
        .unwrap()
    );

    // Locate: the admin finds the HSM keys; bob nothing yet.
    let aes_keys = Locate::matching(Attributes(vec![Attribute::CryptographicAlgorithm(
        CryptographicAlgorithm::AES,
    )]));
    let found: Vec<String> = admin
        .call(aes_keys.clone())
        .await
        .unwrap()
        .unique_identifier
        .iter()
        .filter_map(|u| u.as_text().map(str::to_owned))
        .collect();
    assert!(found.contains(&aes) && found.contains(&aes_x), "{found:?}");
    assert!(
        bob.call(aes_keys.clone())
            .await
            .unwrap()
            .unique_identifier
            .is_empty()
    );

    // Rights: bob may not create or destroy HSM keys, nor use one without a grant.
    let e = bob
        .call(Create {
            attributes: with_uid(Attributes::new(), &format!("hsm::{slot}::bobs")),
            ..Create::symmetric_key(CryptographicAlgorithm::AES, 256)
        })
        .await
        .expect_err("not an HSM admin");
    assert!(e.to_string().contains("HSM admins"), "{e}");
    let e = bob
        .call(Encrypt::new(Some(aes.as_str().into()), b"x".to_vec()))
        .await
        .expect_err("no grant");
    assert!(e.to_string().contains("not found"), "{e}");
    admin
        .access(
            "/access/grant",
            Some(serde_json::json!({
                "unique_identifier": aes, "user_id": "bob", "operation_types": ["encrypt"]
            })),
        )
        .await
        .unwrap();
    bob.call(Encrypt::new(Some(aes.as_str().into()), b"x".to_vec()))
        .await
        .expect("granted");
    let e = bob
        .call(Decrypt::new(Some(aes.as_str().into()), vec![0; 16]))
        .await
        .expect_err("decrypt not granted");
    assert!(e.to_string().contains("may not"), "{e}");
    let bobs: Vec<String> = bob
        .call(aes_keys)
        .await
        .unwrap()
        .unique_identifier
        .iter()
        .filter_map(|u| u.as_text().map(str::to_owned))
        .collect();
    assert_eq!(
        bobs,
        std::slice::from_ref(&aes),
        "bob finds what he was granted"
    );
    let e = bob.call(destroy(&aes)).await.expect_err("not an HSM admin");
    assert!(e.to_string().contains("HSM admins"), "{e}");

    // Destroy.
    admin.call(destroy(&aes_x)).await.unwrap();
    assert!(
        admin
            .call(GetAttributes::all(aes_x.as_str()))
            .await
            .is_err()
    );
}

/// A wrong password or slot, or a missing library, stops the start with what to fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_hsm_configuration_refuses_to_start() {
    let token = Token::init();
    let dir = token.dir.path().to_owned();
    pki(&dir);
    let run = |mut c: Command| {
        let out = c.output().unwrap();
        assert!(!out.status.success(), "must not start");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let text = run(server_command(&token, &dir, free_port(), "wrong-pin"));
    assert!(
        text.contains("--hsm-password") && !text.contains("wrong-pin"),
        "{text}"
    );
    let mut c = server_command(&token, &dir, free_port(), PIN);
    c.args(["--hsm-slot", "4242", "--hsm-password", PIN]);
    let text = run(c);
    assert!(
        text.contains("4242") && text.contains("--hsm-slot"),
        "{text}"
    );
    let mut c = server_command(&token, &dir, free_port(), PIN);
    c.args(["--hsm-library", "/nonexistent/libpkcs11.so"]);
    let text = run(c);
    assert!(text.contains("--hsm-library"), "{text}");
}

fn register_aes(bytes: &[u8]) -> Register {
    Register {
        object_type: ObjectType::SymmetricKey,
        // Encrypt | Decrypt.
        attributes: Attributes(vec![Attribute::CryptographicUsageMask(0x4 | 0x8)]),
        object: Object::symmetric_key(CryptographicAlgorithm::AES, 256, bytes.to_vec()),
        protection_storage_masks: None,
    }
}

fn files_contain(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap_or_default();
        if bytes.windows(needle.len()).any(|w| w == needle) {
            found.push(path.display().to_string());
        }
    }
    found
}

/// `--key-encryption-key`: keys stored under it are wrapped by the HSM key on disk, survive a
/// restart and still work; a key stored before the option was set is wrapped at start; a wrong
/// HSM password refuses to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_keys_are_wrapped_by_the_hsm_key_across_restarts() {
    let token = Token::init();
    let dir = token.dir.path().to_owned();
    let pki = pki(&dir);
    let kek = format!("hsm::{}::kek", token.slot);
    let with_kek = |password: &str, port: u16| {
        let mut c = server_command(&token, &dir, port, password);
        c.args(["--key-encryption-key", &kek]);
        c
    };
    let early_bytes: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(29).wrapping_add(3))
        .collect();
    let late_bytes: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(17).wrapping_add(101))
        .collect();

    // Before the option: the KEK is created in the HSM, and a key stored in clear.
    let port = free_port();
    let server = start(server_command(&token, &dir, port, PIN), port).await;
    let admin = client(&pki, &server.url, "hsm-admin");
    admin
        .call(Create {
            attributes: with_uid(Attributes(vec![Attribute::CryptographicLength(256)]), &kek),
            ..Create::symmetric_key(CryptographicAlgorithm::AES, 256)
        })
        .await
        .unwrap();
    let early = admin
        .call(register_aes(&early_bytes))
        .await
        .unwrap()
        .unique_identifier;
    drop(server);

    // With the option: the early key is wrapped at start, a new one is stored wrapped.
    let port = free_port();
    let server = start(with_kek(PIN, port), port).await;
    let admin = client(&pki, &server.url, "hsm-admin");
    let late = admin
        .call(register_aes(&late_bytes))
        .await
        .unwrap()
        .unique_identifier;
    for uid in [&early, &late] {
        admin
            .call(kms_client::op::Activate::new(uid.clone()))
            .await
            .unwrap();
    }
    let mut sealed = Vec::new();
    for uid in [&early, &late] {
        let enc = admin
            .call(Encrypt::new(Some(uid.clone()), b"under the KEK".to_vec()))
            .await
            .unwrap();
        sealed.push((uid.clone(), enc));
    }
    let got = admin.call(Get::new(late.clone())).await.unwrap();
    assert_eq!(
        got.object
            .key_block()
            .and_then(|kb| kb.symmetric_key_bytes()),
        Some(late_bytes.as_slice()),
        "served unwrapped"
    );
    drop(server);
    let on_disk = files_contain(&dir.join("data"), &late_bytes);
    assert!(on_disk.is_empty(), "key bytes in clear in {on_disk:?}");

    // After a restart: both decrypt.
    let port = free_port();
    let server = start(with_kek(PIN, port), port).await;
    let admin = client(&pki, &server.url, "hsm-admin");
    for (uid, enc) in sealed {
        let dec = admin
            .call(Decrypt {
                iv_counter_nonce: enc.iv_counter_nonce.clone(),
                authenticated_encryption_tag: enc.authenticated_encryption_tag.clone(),
                ..Decrypt::new(Some(uid), enc.data.clone().unwrap())
            })
            .await
            .unwrap();
        assert_eq!(dec.data.as_deref(), Some(&b"under the KEK"[..]));
    }
    drop(server);

    // A wrong HSM password: no start.
    let out = with_kek("not-the-pin", free_port()).output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("--hsm-password"), "{text}");
}

/// The `ckms` next to this `kms-server` (both built by `cargo test --workspace`).
fn ckms_binary() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_kms-server")).with_file_name("ckms")
}

fn run_ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ckms` on HSM keys with their `hsm::` identifiers: a file encrypted and decrypted under an
/// HSM AES key, an HSM RSA key pair whose signature OpenSSL verifies with the exported public key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ckms_commands_take_hsm_identifiers() {
    let ckms = ckms_binary();
    assert!(
        ckms.exists(),
        "{} is built by cargo test --workspace",
        ckms.display()
    );
    let token = Token::init();
    let dir = token.dir.path().to_owned();
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_kms-server"));
    command
        .env("SOFTHSM2_CONF", &token.conf)
        .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
        .arg("--sqlite-path")
        .arg(dir.join("data"))
        .args([
            "--hsm-model",
            "softhsm2",
            "--hsm-slot",
            &token.slot.to_string(),
        ])
        .args(["--hsm-password", PIN, "--hsm-admin", "admin"]);
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let conf = dir.join("ckms.json");
    std::fs::write(
        &conf,
        format!(r#"{{"kms_server_url": "http://127.0.0.1:{port}"}}"#),
    )
    .unwrap();
    let ckms_cmd = |args: &[&str]| {
        let mut c = Command::new(&ckms);
        c.arg("--conf").arg(&conf).args(args);
        c
    };
    for _ in 0..100 {
        if ckms_cmd(&["server", "version"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let slot = token.slot;
    let aes = format!("hsm::{slot}::cli-aes");
    run_ok(&mut ckms_cmd(&["sym", "keys", "create", &aes]));
    let plain = dir.join("file.txt");
    std::fs::write(&plain, b"a file under an HSM key").unwrap();
    let p = |x: &Path| x.display().to_string();
    run_ok(&mut ckms_cmd(&["sym", "encrypt", "-k", &aes, &p(&plain)]));
    let out = dir.join("file.out");
    run_ok(&mut ckms_cmd(&[
        "sym",
        "decrypt",
        "-k",
        &aes,
        &p(&dir.join("file.txt.enc")),
        "-o",
        &p(&out),
    ]));
    assert_eq!(std::fs::read(&out).unwrap(), b"a file under an HSM key");

    let rsa = format!("hsm::{slot}::cli-rsa");
    run_ok(&mut ckms_cmd(&["rsa", "keys", "create", &rsa]));
    run_ok(&mut ckms_cmd(&[
        "rsa",
        "sign",
        "-k",
        &rsa,
        "--pkcs1",
        &p(&plain),
    ]));
    let public = dir.join("public.pem");
    run_ok(&mut ckms_cmd(&[
        "rsa",
        "keys",
        "export",
        "-k",
        &format!("{rsa}_pk"),
        &p(&public),
        "-f",
        "pkcs8-pem",
    ]));
    let verified = run_ok(
        Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(&public)
            .arg("-signature")
            .arg(dir.join("file.txt.sig"))
            .arg(&plain),
    );
    assert!(verified.contains("Verified OK"), "{verified}");
}
