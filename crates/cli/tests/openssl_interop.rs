//! Key pairs against `openssl`, a client this project does not write, through `ckms` and a real
//! KMS over HTTP: keys the server makes are read by openssl, what openssl encrypts and signs
//! the server decrypts and verifies and the other way round, keys openssl generates import and
//! work, and a key wrapped by the server with AES-KWP unwraps with `openssl enc
//! -id-aes256-wrap-pad`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kms_server::config::{Args, Config};
use serde_json::Value;

async fn server(dir: &Path) -> kms_server::RunningServer {
    let config = Config::from_args(Args {
        sqlite_path: Some(dir.join("data")),
        hostname: Some("127.0.0.1".into()),
        port: Some(0),
        ..Args::default()
    })
    .unwrap();
    kms_server::start(config).await.expect("the KMS starts")
}

struct Env {
    dir: PathBuf,
    conf: PathBuf,
}

impl Env {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }

    /// Runs ckms (JSON output) and answers its JSON; fails the test if it fails.
    async fn ckms(&self, args: &[&str]) -> Value {
        let out = self.ckms_raw(args).await;
        assert!(
            out.status.success(),
            "ckms {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    async fn ckms_raw(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ckms"));
        command
            .arg("--conf")
            .arg(&self.conf)
            .arg("--json")
            .args(args);
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }

    /// Runs openssl in the test directory; fails the test if it fails.
    fn openssl(&self, args: &[&str]) -> String {
        let out = Command::new("openssl")
            .current_dir(&self.dir)
            .args(args)
            .output()
            .expect("openssl is installed (Debian package openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Creates a key pair with `ckms FAMILY keys create ARGS`; answers (private, public).
    async fn pair(&self, family: &str, args: &[&str]) -> (String, String) {
        let mut all = vec![family, "keys", "create"];
        all.extend_from_slice(args);
        let v = self.ckms(&all).await;
        (
            v["private_key_unique_identifier"]
                .as_str()
                .unwrap()
                .to_owned(),
            v["public_key_unique_identifier"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    }

    /// Exports `id` as PKCS#8/SPKI PEM to `file`.
    async fn export_pem(&self, family: &str, id: &str, file: &str) {
        self.ckms(&[
            family,
            "keys",
            "export",
            "-k",
            id,
            "-f",
            "pkcs8-pem",
            &self.path(file),
        ])
        .await;
    }
}

async fn env() -> (Env, kms_server::RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let kms = server(dir.path()).await;
    let conf = dir.path().join("kms.json");
    std::fs::write(
        &conf,
        format!(r#"{{"kms_server_url": "http://{}"}}"#, kms.addr),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("msg"),
        b"the quick brown fox jumps over the lazy dog",
    )
    .unwrap();
    (
        Env {
            dir: dir.path().to_owned(),
            conf,
        },
        kms,
        dir,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_keys_are_read_by_openssl_and_rsa_oaep_from_openssl_decrypts() {
    let (e, _kms, _dir) = env().await;
    let (private, public) = e.pair("rsa", &["--size-in-bits", "2048"]).await;
    e.export_pem("rsa", &private, "priv.pem").await;
    e.export_pem("rsa", &public, "pub.pem").await;
    e.ckms(&[
        "rsa",
        "keys",
        "export",
        "-k",
        &private,
        "-f",
        "pkcs1-pem",
        &e.path("priv1.pem"),
    ])
    .await;
    // openssl reads all three, and they are the same key.
    let text = e.openssl(&["pkey", "-in", "priv.pem", "-noout", "-text"]);
    assert!(text.contains("Private-Key: (2048 bit"), "{text}");
    e.openssl(&["pkey", "-in", "priv1.pem", "-noout"]);
    let from_private = e.openssl(&["pkey", "-in", "priv.pem", "-pubout"]);
    let from_public = e.openssl(&["pkey", "-pubin", "-in", "pub.pem"]);
    assert_eq!(from_private, from_public);

    // OAEP SHA-256 by openssl, decrypted by the server.
    e.openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        "pub.pem",
        "-in",
        "msg",
        "-out",
        "msg.oaep",
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
        "-pkeyopt",
        "rsa_mgf1_md:sha256",
    ]);
    e.ckms(&[
        "rsa",
        "decrypt",
        "-k",
        &private,
        &e.path("msg.oaep"),
        "-o",
        &e.path("msg.back"),
    ])
    .await;
    assert_eq!(
        std::fs::read(e.dir.join("msg.back")).unwrap(),
        std::fs::read(e.dir.join("msg")).unwrap()
    );
    // And the other way: the server encrypts, openssl decrypts with the exported key.
    e.ckms(&[
        "rsa",
        "encrypt",
        "-k",
        &public,
        &e.path("msg"),
        "-o",
        &e.path("msg.srv"),
    ])
    .await;
    e.openssl(&[
        "pkeyutl",
        "-decrypt",
        "-inkey",
        "priv.pem",
        "-in",
        "msg.srv",
        "-out",
        "msg.srv.back",
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
        "-pkeyopt",
        "rsa_mgf1_md:sha256",
    ]);
    assert_eq!(
        std::fs::read(e.dir.join("msg.srv.back")).unwrap(),
        std::fs::read(e.dir.join("msg")).unwrap()
    );
    // A key that only signs does not decrypt.
    let (signer, _) = e.pair("ec", &["--curve", "ed25519"]).await;
    let out = e
        .ckms_raw(&[
            "rsa",
            "decrypt",
            "-k",
            &signer,
            &e.path("msg.oaep"),
            "-o",
            &e.path("x"),
        ])
        .await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("decrypt"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_signatures_verify_with_openssl() {
    let (e, _kms, _dir) = env().await;
    // RSA-PSS (salt: the hash length), ECDSA P-256 and P-384 (DER), Ed25519.
    let (rsa, rsa_pub) = e.pair("rsa", &[]).await;
    e.export_pem("rsa", &rsa_pub, "rsa.pem").await;
    e.ckms(&[
        "rsa",
        "sign",
        "-k",
        &rsa,
        &e.path("msg"),
        "-o",
        &e.path("rsa.sig"),
    ])
    .await;
    let ok = e.openssl(&[
        "dgst",
        "-sha256",
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:-1",
        "-verify",
        "rsa.pem",
        "-signature",
        "rsa.sig",
        "msg",
    ]);
    assert!(ok.contains("Verified OK"), "{ok}");
    // PKCS#1 v1.5 with SHA-512.
    e.ckms(&[
        "rsa",
        "sign",
        "-k",
        &rsa,
        "--pkcs1",
        "--hash",
        "sha512",
        &e.path("msg"),
        "-o",
        &e.path("rsa1.sig"),
    ])
    .await;
    let ok = e.openssl(&[
        "dgst",
        "-sha512",
        "-verify",
        "rsa.pem",
        "-signature",
        "rsa1.sig",
        "msg",
    ]);
    assert!(ok.contains("Verified OK"), "{ok}");

    for (curve, digest) in [
        ("nist-p256", "-sha256"),
        ("nist-p384", "-sha384"),
        ("secp256k1", "-sha256"),
    ] {
        let (ec, ec_pub) = e.pair("ec", &["--curve", curve]).await;
        let pem = format!("{curve}.pem");
        let sig = format!("{curve}.sig");
        e.export_pem("ec", &ec_pub, &pem).await;
        e.ckms(&["ec", "sign", "-k", &ec, &e.path("msg"), "-o", &e.path(&sig)])
            .await;
        let ok = e.openssl(&["dgst", digest, "-verify", &pem, "-signature", &sig, "msg"]);
        assert!(ok.contains("Verified OK"), "{curve}: {ok}");
    }

    let (ed, ed_pub) = e.pair("ec", &["--curve", "ed25519"]).await;
    e.export_pem("ec", &ed_pub, "ed.pem").await;
    e.ckms(&[
        "ec",
        "sign",
        "-k",
        &ed,
        &e.path("msg"),
        "-o",
        &e.path("ed.sig"),
    ])
    .await;
    let ok = e.openssl(&[
        "pkeyutl", "-verify", "-pubin", "-inkey", "ed.pem", "-rawin", "-in", "msg", "-sigfile",
        "ed.sig",
    ]);
    assert!(ok.contains("Signature Verified Successfully"), "{ok}");

    // A signature of a digest made by the client verifies on the data.
    e.openssl(&["dgst", "-sha256", "-binary", "-out", "msg.sha256", "msg"]);
    let (ec, ec_pub) = e.pair("ec", &["--curve", "nist-p256"]).await;
    e.export_pem("ec", &ec_pub, "ecd.pem").await;
    e.ckms(&[
        "ec",
        "sign",
        "-k",
        &ec,
        "--digested",
        &e.path("msg.sha256"),
        "-o",
        &e.path("ecd.sig"),
    ])
    .await;
    let ok = e.openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        "ecd.pem",
        "-signature",
        "ecd.sig",
        "msg",
    ]);
    assert!(ok.contains("Verified OK"), "{ok}");
    // A changed message does not verify on the server.
    e.ckms(&[
        "ec",
        "sign-verify",
        "-k",
        &ec_pub,
        &e.path("msg"),
        &e.path("ecd.sig"),
    ])
    .await;
    let out = e
        .ckms_raw(&[
            "ec",
            "sign-verify",
            "-k",
            &ec_pub,
            &e.path("msg.sha256"),
            &e.path("ecd.sig"),
        ])
        .await;
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_keys_import_and_their_signatures_verify_on_the_server() {
    let (e, _kms, _dir) = env().await;
    // RSA: openssl signs (PKCS#1 v1.5 and PSS with its default salt), the server verifies.
    e.openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "o-rsa.pem",
    ]);
    e.openssl(&["pkey", "-in", "o-rsa.pem", "-pubout", "-out", "o-rsa.pub"]);
    let public = e
        .ckms(&["rsa", "keys", "import", &e.path("o-rsa.pub")])
        .await["unique_identifier"]
        .as_str()
        .unwrap()
        .to_owned();
    e.openssl(&[
        "dgst",
        "-sha256",
        "-sign",
        "o-rsa.pem",
        "-out",
        "o1.sig",
        "msg",
    ]);
    e.ckms(&[
        "rsa",
        "sign-verify",
        "-k",
        &public,
        "--pkcs1",
        &e.path("msg"),
        &e.path("o1.sig"),
    ])
    .await;
    e.openssl(&[
        "dgst",
        "-sha256",
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sign",
        "o-rsa.pem",
        "-out",
        "opss.sig",
        "msg",
    ]);
    e.ckms(&[
        "rsa",
        "sign-verify",
        "-k",
        &public,
        &e.path("msg"),
        &e.path("opss.sig"),
    ])
    .await;
    // The openssl private key imported (PKCS#8 PEM) signs on the server; openssl verifies.
    let private = e
        .ckms(&["rsa", "keys", "import", &e.path("o-rsa.pem")])
        .await["unique_identifier"]
        .as_str()
        .unwrap()
        .to_owned();
    e.ckms(&[
        "rsa",
        "sign",
        "-k",
        &private,
        &e.path("msg"),
        "-o",
        &e.path("srv.sig"),
    ])
    .await;
    let ok = e.openssl(&[
        "dgst",
        "-sha256",
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:-1",
        "-verify",
        "o-rsa.pub",
        "-signature",
        "srv.sig",
        "msg",
    ]);
    assert!(ok.contains("Verified OK"), "{ok}");

    // EC keys generated by openssl, in PKCS#8 and in SEC1 ("EC PRIVATE KEY").
    e.openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "o-ec.pem",
    ]);
    e.openssl(&["ec", "-in", "o-ec.pem", "-out", "o-ec-sec1.pem"]);
    e.openssl(&["pkey", "-in", "o-ec.pem", "-pubout", "-out", "o-ec.pub"]);
    for file in ["o-ec.pem", "o-ec-sec1.pem"] {
        let id = e.ckms(&["ec", "keys", "import", &e.path(file)]).await["unique_identifier"]
            .as_str()
            .unwrap()
            .to_owned();
        e.ckms(&[
            "ec",
            "sign",
            "-k",
            &id,
            &e.path("msg"),
            "-o",
            &e.path("o-ec.sig"),
        ])
        .await;
        let ok = e.openssl(&[
            "dgst",
            "-sha256",
            "-verify",
            "o-ec.pub",
            "-signature",
            "o-ec.sig",
            "msg",
        ]);
        assert!(ok.contains("Verified OK"), "{file}: {ok}");
    }
    // openssl's ECDSA signature verifies on the server with the imported public key.
    let ec_pub = e.ckms(&["ec", "keys", "import", &e.path("o-ec.pub")]).await["unique_identifier"]
        .as_str()
        .unwrap()
        .to_owned();
    e.openssl(&[
        "dgst",
        "-sha256",
        "-sign",
        "o-ec.pem",
        "-out",
        "o-ec2.sig",
        "msg",
    ]);
    e.ckms(&[
        "ec",
        "sign-verify",
        "-k",
        &ec_pub,
        &e.path("msg"),
        &e.path("o-ec2.sig"),
    ])
    .await;
    // Ed25519 from openssl.
    e.openssl(&["genpkey", "-algorithm", "ed25519", "-out", "o-ed.pem"]);
    e.openssl(&["pkey", "-in", "o-ed.pem", "-pubout", "-out", "o-ed.pub"]);
    let ed_pub = e.ckms(&["ec", "keys", "import", &e.path("o-ed.pub")]).await["unique_identifier"]
        .as_str()
        .unwrap()
        .to_owned();
    e.openssl(&[
        "pkeyutl", "-sign", "-inkey", "o-ed.pem", "-rawin", "-in", "msg", "-out", "o-ed.sig",
    ]);
    e.ckms(&[
        "ec",
        "sign-verify",
        "-k",
        &ed_pub,
        &e.path("msg"),
        &e.path("o-ed.sig"),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_wrapped_with_aes_kwp_unwraps_with_openssl() {
    let (e, _kms, _dir) = env().await;
    e.ckms(&["sym", "keys", "create", "kek"]).await;
    e.ckms(&["sym", "keys", "activate", "kek"]).await;
    e.ckms(&["sym", "keys", "export", "-k", "kek", &e.path("kek.bin")])
        .await;
    let kek_hex: String = std::fs::read(e.dir.join("kek.bin"))
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (private, _) = e.pair("rsa", &[]).await;
    e.ckms(&[
        "rsa",
        "keys",
        "export",
        "-k",
        &private,
        "-f",
        "pkcs8-der",
        &e.path("plain.der"),
    ])
    .await;
    e.ckms(&[
        "rsa",
        "keys",
        "export",
        "-k",
        &private,
        "-f",
        "pkcs8-der",
        "-w",
        "kek",
        &e.path("wrapped.bin"),
    ])
    .await;
    let wrapped = std::fs::read(e.dir.join("wrapped.bin")).unwrap();
    let plain = std::fs::read(e.dir.join("plain.der")).unwrap();
    assert!(
        !wrapped
            .windows(32)
            .any(|w| plain.windows(32).any(|p| p == w)),
        "the wrapped file holds the key in clear"
    );
    e.openssl(&[
        "enc",
        "-d",
        "-id-aes256-wrap-pad",
        "-K",
        &kek_hex,
        "-iv",
        "A65959A6",
        "-in",
        "wrapped.bin",
        "-out",
        "unwrapped.der",
    ]);
    assert_eq!(std::fs::read(e.dir.join("unwrapped.der")).unwrap(), plain);
    // And openssl reads what came out as the key.
    e.openssl(&["pkey", "-inform", "DER", "-in", "unwrapped.der", "-noout"]);
    // A wrapped key cannot be asked for as PEM (it is not one).
    let out = e
        .ckms_raw(&[
            "rsa",
            "keys",
            "export",
            "-k",
            &private,
            "-w",
            "kek",
            &e.path("w.pem"),
        ])
        .await;
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec_x25519_and_post_quantum_keys_encrypt_and_sign_through_ckms() {
    let (e, _kms, _dir) = env().await;
    let msg = std::fs::read(e.dir.join("msg")).unwrap();
    for (family, args) in [
        ("ec", vec!["--curve", "nist-p256"]),
        ("ec", vec!["--curve", "nist-p521"]),
        ("ec", vec!["--curve", "x25519"]),
        ("pqc", vec!["--algorithm", "ml-kem-512"]),
        ("pqc", vec!["--algorithm", "ml-kem-768"]),
        ("pqc", vec!["--algorithm", "ml-kem-1024"]),
    ] {
        let (private, public) = e.pair(family, &args).await;
        e.ckms(&[
            family,
            "encrypt",
            "-k",
            &public,
            &e.path("msg"),
            "-o",
            &e.path("c"),
        ])
        .await;
        let c = std::fs::read(e.dir.join("c")).unwrap();
        assert!(c.len() > msg.len() + 16, "{args:?}");
        e.ckms(&[
            family,
            "decrypt",
            "-k",
            &private,
            &e.path("c"),
            "-o",
            &e.path("p"),
        ])
        .await;
        assert_eq!(std::fs::read(e.dir.join("p")).unwrap(), msg, "{args:?}");
        // X25519 and ML-KEM keys encrypt only: they do not sign.
        if args[1] != "nist-p256" && args[1] != "nist-p521" {
            let out = e
                .ckms_raw(&[family, "sign", "-k", &private, &e.path("msg")])
                .await;
            assert!(!out.status.success(), "{args:?}");
        }
    }
    for algorithm in ["ml-dsa-44", "ml-dsa-65", "ml-dsa-87"] {
        let (private, public) = e.pair("pqc", &["--algorithm", algorithm]).await;
        e.ckms(&[
            "pqc",
            "sign",
            "-k",
            &private,
            &e.path("msg"),
            "-o",
            &e.path("s"),
        ])
        .await;
        e.ckms(&[
            "pqc",
            "sign-verify",
            "-k",
            &public,
            &e.path("msg"),
            &e.path("s"),
        ])
        .await;
        // The exported public key is an X.509 SubjectPublicKeyInfo.
        e.export_pem("pqc", &public, "mldsa.pem").await;
        let pem = std::fs::read_to_string(e.dir.join("mldsa.pem")).unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_issued_by_the_server_verify_with_openssl() {
    let (e, _kms, _dir) = env().await;
    let id = |v: Value| v["unique_identifier"].as_str().unwrap().to_owned();
    // A root CA (RSA, self-signed), an intermediate CA (P-384) and a leaf (P-256).
    let (ca_private, ca_public) = e.pair("rsa", &[]).await;
    let ca = id(e
        .ckms(&[
            "certificates",
            "certify",
            "-p",
            &ca_public,
            "--subject-cn",
            "Test Root CA",
            "--subject-o",
            "Example",
            "--ca",
        ])
        .await);
    let (sub_private, sub_public) = e.pair("ec", &["--curve", "nist-p384"]).await;
    let sub = id(e
        .ckms(&[
            "certificates",
            "certify",
            "-p",
            &sub_public,
            "--subject-cn",
            "Test Intermediate CA",
            "--ca",
            "--pathlen",
            "0",
            "--issuer-private-key-id",
            &ca_private,
            "--issuer-certificate-id",
            &ca,
        ])
        .await);
    let (_, leaf_public) = e.pair("ec", &["--curve", "nist-p256"]).await;
    let leaf = id(e
        .ckms(&[
            "certificates",
            "certify",
            "-p",
            &leaf_public,
            "--subject-cn",
            "leaf.example.com",
            "--san",
            "leaf.example.com",
            "--san",
            "127.0.0.1",
            "--days",
            "30",
            "--issuer-private-key-id",
            &sub_private,
            "--issuer-certificate-id",
            &sub,
        ])
        .await);
    for (cert, file) in [(&ca, "ca.pem"), (&sub, "sub.pem"), (&leaf, "leaf.pem")] {
        e.ckms(&["certificates", "export", "-c", cert, &e.path(file)])
            .await;
    }
    let ok = e.openssl(&[
        "verify",
        "-CAfile",
        "ca.pem",
        "-untrusted",
        "sub.pem",
        "leaf.pem",
    ]);
    assert!(ok.contains("leaf.pem: OK"), "{ok}");
    let text = e.openssl(&["x509", "-in", "leaf.pem", "-noout", "-text"]);
    assert!(
        text.contains("DNS:leaf.example.com") && text.contains("IP Address:127.0.0.1"),
        "{text}"
    );
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    let text = e.openssl(&["x509", "-in", "sub.pem", "-noout", "-text"]);
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");

    // A request made by openssl, certified by the intermediate CA.
    e.openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "csr.key",
        "-subj",
        "/CN=csr.example.com/O=Requester",
        "-out",
        "csr.pem",
    ]);
    let from_csr = id(e
        .ckms(&[
            "certificates",
            "certify",
            "-r",
            &e.path("csr.pem"),
            "--issuer-private-key-id",
            &sub_private,
            "--issuer-certificate-id",
            &sub,
        ])
        .await);
    e.ckms(&[
        "certificates",
        "export",
        "-c",
        &from_csr,
        "-f",
        "der",
        &e.path("csr-cert.der"),
    ])
    .await;
    e.openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        "csr-cert.der",
        "-out",
        "csr-cert.pem",
    ]);
    let ok = e.openssl(&[
        "verify",
        "-CAfile",
        "ca.pem",
        "-untrusted",
        "sub.pem",
        "csr-cert.pem",
    ]);
    assert!(ok.contains("csr-cert.pem: OK"), "{ok}");
    let subject = e.openssl(&["x509", "-in", "csr-cert.pem", "-noout", "-subject"]);
    assert!(
        subject.contains("CN = csr.example.com") && subject.contains("O = Requester"),
        "{subject}"
    );
    // The certificate holds the request's key.
    let from_cert = e.openssl(&["x509", "-in", "csr-cert.pem", "-noout", "-pubkey"]);
    let from_key = e.openssl(&["pkey", "-in", "csr.key", "-pubout"]);
    assert_eq!(from_cert, from_key);

    // Extensions from an OpenSSL extensions file.
    std::fs::write(
        e.dir.join("code.ext"),
        "[code_sign]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = codeSigning\nsubjectAltName = DNS:code.example.com, email:dev@example.com\n",
    )
    .unwrap();
    let (_, code_public) = e.pair("ec", &["--curve", "nist-p256"]).await;
    let code = id(e
        .ckms(&[
            "certificates",
            "certify",
            "-p",
            &code_public,
            "--subject-cn",
            "Code Signer",
            "-e",
            &e.path("code.ext"),
            "--issuer-private-key-id",
            &sub_private,
            "--issuer-certificate-id",
            &sub,
        ])
        .await);
    e.ckms(&["certificates", "export", "-c", &code, &e.path("code.pem")])
        .await;
    let text = e.openssl(&["x509", "-in", "code.pem", "-noout", "-text"]);
    assert!(
        text.contains("Code Signing") && text.contains("DNS:code.example.com"),
        "{text}"
    );
    assert!(
        text.contains("email:dev@example.com") && !text.contains("TLS Web Server"),
        "{text}"
    );
    let ok = e.openssl(&[
        "verify",
        "-CAfile",
        "ca.pem",
        "-untrusted",
        "sub.pem",
        "code.pem",
    ]);
    assert!(ok.contains("code.pem: OK"), "{ok}");

    // The server validates the chain it holds, and the chain given as files.
    let valid = e
        .ckms(&[
            "certificates",
            "validate",
            "-k",
            &leaf,
            "-k",
            &sub,
            "-k",
            &ca,
        ])
        .await;
    assert_eq!(valid["validity"], "Valid", "{valid}");
    let valid = e
        .ckms(&[
            "certificates",
            "validate",
            "-v",
            &e.path("csr-cert.pem"),
            "-v",
            &e.path("sub.pem"),
            "-v",
            &e.path("ca.pem"),
        ])
        .await;
    assert_eq!(valid["validity"], "Valid", "{valid}");
    // Without its intermediate, the leaf does not reach a root.
    let out = e
        .ckms_raw(&["certificates", "validate", "-k", &leaf, "-k", &ca])
        .await;
    assert!(!out.status.success());
    // Re-certified: a new certificate of the same key, verified by openssl; the old one is
    // revoked and destroyed.
    let renewed = id(e.ckms(&["certificates", "re-certify", "-c", &leaf]).await);
    e.ckms(&[
        "certificates",
        "export",
        "-c",
        &renewed,
        &e.path("renewed.pem"),
    ])
    .await;
    let ok = e.openssl(&[
        "verify",
        "-CAfile",
        "ca.pem",
        "-untrusted",
        "sub.pem",
        "renewed.pem",
    ]);
    assert!(ok.contains("renewed.pem: OK"), "{ok}");
    assert_eq!(
        e.openssl(&["x509", "-in", "renewed.pem", "-noout", "-pubkey"]),
        e.openssl(&["x509", "-in", "leaf.pem", "-noout", "-pubkey"])
    );
    e.ckms(&["certificates", "revoke", "-c", &leaf, "superseded"])
        .await;
    e.ckms(&["certificates", "destroy", "-c", &leaf]).await;

    // A certificate made by openssl imports; a non-certificate is refused.
    e.ckms(&[
        "certificates",
        "import",
        &e.path("csr-cert.pem"),
        "imported-cert",
    ])
    .await;
    std::fs::write(e.dir.join("junk.der"), [0x30, 0x03, 1, 2, 3]).unwrap();
    assert!(
        !e.ckms_raw(&["certificates", "import", &e.path("junk.der")])
            .await
            .status
            .success()
    );
    // A self-signed certificate needs a subject name.
    let out = e
        .ckms_raw(&["certificates", "certify", "-p", &leaf_public])
        .await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CertificateSubjectCN"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkcs12_exports_open_with_openssl_imports_keep_the_chain_and_serve_https() {
    let (e, _kms, _dir) = env().await;
    let id = |v: &Value| v["unique_identifier"].as_str().unwrap().to_owned();
    let (ca_private, ca_public) = e.pair("rsa", &[]).await;
    let ca = id(&e
        .ckms(&[
            "certificates",
            "certify",
            "-p",
            &ca_public,
            "--subject-cn",
            "P12 Root",
            "--ca",
        ])
        .await);
    let (_, leaf_public) = e.pair("ec", &["--curve", "nist-p256"]).await;
    let leaf = id(&e
        .ckms(&[
            "certificates",
            "certify",
            "-p",
            &leaf_public,
            "--subject-cn",
            "localhost",
            "--san",
            "127.0.0.1",
            "--san",
            "localhost",
            "--issuer-private-key-id",
            &ca_private,
            "--issuer-certificate-id",
            &ca,
        ])
        .await);
    e.ckms(&["certificates", "export", "-c", &ca, &e.path("root.pem")])
        .await;
    // Modern and legacy PKCS#12, read by openssl with the password (and refused without it).
    e.ckms(&[
        "certificates",
        "export",
        "-c",
        &leaf,
        "-f",
        "pkcs12",
        "-p",
        "p12 secret",
        &e.path("leaf.p12"),
    ])
    .await;
    e.ckms(&[
        "certificates",
        "export",
        "-c",
        &leaf,
        "-f",
        "pkcs12",
        "--legacy",
        "-p",
        "p12 secret",
        &e.path("legacy.p12"),
    ])
    .await;
    e.openssl(&[
        "pkcs12",
        "-in",
        "leaf.p12",
        "-passin",
        "pass:p12 secret",
        "-nodes",
        "-out",
        "leaf-all.pem",
    ]);
    e.openssl(&[
        "pkcs12",
        "-legacy",
        "-in",
        "legacy.p12",
        "-passin",
        "pass:p12 secret",
        "-nodes",
        "-out",
        "legacy-all.pem",
    ]);
    for file in ["leaf-all.pem", "legacy-all.pem"] {
        let all = std::fs::read_to_string(e.dir.join(file)).unwrap();
        assert_eq!(
            all.matches("BEGIN CERTIFICATE").count(),
            2,
            "{file}: the leaf and the root"
        );
        assert_eq!(all.matches("BEGIN PRIVATE KEY").count(), 1, "{file}");
    }
    // `-info` prints the algorithms on standard error.
    let info = Command::new("openssl")
        .current_dir(&e.dir)
        .args([
            "pkcs12",
            "-in",
            "leaf.p12",
            "-passin",
            "pass:p12 secret",
            "-info",
            "-noout",
        ])
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stderr).into_owned();
    assert!(info.contains("AES-256") || info.contains("PBES2"), "{info}");
    let wrong = Command::new("openssl")
        .current_dir(&e.dir)
        .args([
            "pkcs12",
            "-in",
            "leaf.p12",
            "-passin",
            "pass:wrong",
            "-nodes",
        ])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    // The password object used for the export is gone.
    let listed = e.ckms(&["locate"]).await;
    assert!(!listed.to_string().contains("Password"), "{listed}");

    // PKCS#12 files made by openssl (modern and legacy) import with their chain.
    e.openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "oca.key",
        "-subj",
        "/CN=OpenSSL CA",
        "-days",
        "10",
        "-out",
        "oca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=keyCertSign",
    ]);
    e.openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ol.key",
        "-subj",
        "/CN=openssl leaf",
        "-out",
        "ol.csr",
    ]);
    e.openssl(&[
        "x509",
        "-req",
        "-in",
        "ol.csr",
        "-CA",
        "oca.pem",
        "-CAkey",
        "oca.key",
        "-CAcreateserial",
        "-days",
        "5",
        "-out",
        "ol.pem",
    ]);
    for (file, legacy) in [("o.p12", false), ("o-legacy.p12", true)] {
        let mut args = vec![
            "pkcs12",
            "-export",
            "-inkey",
            "ol.key",
            "-in",
            "ol.pem",
            "-certfile",
            "oca.pem",
            "-passout",
            "pass:x",
            "-out",
            file,
        ];
        if legacy {
            args.push("-legacy");
        }
        e.openssl(&args);
        let imported = e
            .ckms(&[
                "certificates",
                "import",
                "-f",
                "pkcs12",
                "-p",
                "x",
                &e.path(file),
            ])
            .await;
        let certificates = imported["certificate_unique_identifiers"]
            .as_array()
            .unwrap();
        assert_eq!(certificates.len(), 2, "{file}: {imported}");
        let key = imported["private_key_unique_identifier"]
            .as_str()
            .unwrap()
            .to_owned();
        // The imported key signs, and the chain exports again as a PKCS#12.
        e.ckms(&[
            "ec",
            "sign",
            "-k",
            &key,
            &e.path("msg"),
            "-o",
            &e.path("o.sig"),
        ])
        .await;
        let ok = e.openssl(&[
            "dgst",
            "-sha256",
            "-prverify",
            "ol.key",
            "-signature",
            "o.sig",
            "msg",
        ]);
        assert!(ok.contains("Verified OK"), "{ok}");
        let again = format!("{file}.again");
        e.ckms(&[
            "certificates",
            "export",
            "-c",
            &key,
            "-f",
            "pkcs12",
            "-p",
            "y",
            &e.path(&again),
        ])
        .await;
        e.openssl(&[
            "pkcs12",
            "-in",
            &again,
            "-passin",
            "pass:y",
            "-nodes",
            "-out",
            "again.pem",
        ]);
        let all = std::fs::read_to_string(e.dir.join("again.pem")).unwrap();
        assert_eq!(all.matches("BEGIN CERTIFICATE").count(), 2, "{file}");
    }

    // The server's own HTTPS runs on a PKCS#12 the server exported.
    let https_dir = tempfile::tempdir().unwrap();
    let config = Config::from_args(Args {
        sqlite_path: Some(https_dir.path().join("data")),
        hostname: Some("127.0.0.1".into()),
        port: Some(0),
        https_p12_file: Some(e.dir.join("leaf.p12")),
        https_p12_password: Some("p12 secret".into()),
        ..Args::default()
    })
    .unwrap();
    let https = kms_server::start(config)
        .await
        .expect("HTTPS with the exported PKCS#12");
    let root =
        reqwest::Certificate::from_pem(&std::fs::read(e.dir.join("root.pem")).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([root])
        .build()
        .unwrap();
    let answer = client
        .get(format!("https://127.0.0.1:{}/version", https.addr.port()))
        .send()
        .await
        .expect("the TLS handshake succeeds against the root CA");
    assert_eq!(answer.status(), 200);
}
