//! Cosmian's own CLI, the released `ckms` 5.28 binary (crates.io; `scripts/setup.sh` installs it
//! under `~/.cache/kms-tools`, `COSMIAN_CKMS` names another), driven against a real server over
//! HTTP, each command checked by its output. Its absence is a failure, never a skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::TestServer;

/// The Cosmian CLI binary.
fn cosmian_ckms() -> PathBuf {
    let path = std::env::var_os("COSMIAN_CKMS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".cache/kms-tools/bin/ckms")
        });
    assert!(
        path.is_file(),
        "Cosmian's ckms 5.28 is not at {}: run scripts/setup.sh (it runs `cargo install ckms \
         --version 5.28.0 --locked --root ~/.cache/kms-tools`), or set COSMIAN_CKMS",
        path.display()
    );
    path
}

/// Cosmian's CLI configured for one server, working in a folder of its own.
struct Ckms {
    bin: PathBuf,
    conf: PathBuf,
    dir: tempfile::TempDir,
}

impl Ckms {
    fn new(url: &str) -> Ckms {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("ckms.toml");
        std::fs::write(&conf, format!("[http_config]\nserver_url = \"{url}\"\n")).expect("conf");
        Ckms {
            bin: cosmian_ckms(),
            conf,
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn file(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    async fn run(&self, args: &[&str]) -> Output {
        let mut command = std::process::Command::new(&self.bin);
        command
            .arg("--conf-path")
            .arg(&self.conf)
            .args(args)
            .current_dir(self.dir.path())
            // Nothing from the developer's own configuration.
            .env_remove("KMS_DEFAULT_URL")
            .env_remove("CKMS_CONF_PATH")
            .env("HOME", self.dir.path());
        tokio::task::spawn_blocking(move || command.output().expect("ckms runs"))
            .await
            .expect("join")
    }

    /// Runs a command that must succeed; answers its output (stdout then stderr).
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        let text = text(&out);
        assert!(out.status.success(), "ckms {args:?} failed:\n{text}");
        assert!(!text.contains("ERROR"), "ckms {args:?}:\n{text}");
        text
    }

    /// Runs a command that must fail; answers its output.
    async fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        let text = text(&out);
        assert!(
            !out.status.success() || text.contains("ERROR"),
            "ckms {args:?} should have failed:\n{text}"
        );
        text
    }

    /// Creates a symmetric key with these extra arguments; answers its identifier.
    async fn create_key(&self, args: &[&str]) -> String {
        let mut all = vec!["sym", "keys", "create"];
        all.extend_from_slice(args);
        uid_in(&self.ok(&all).await)
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The identifier a ckms command printed (`Unique identifier: X`, or `... with id: X.`).
fn uid_in(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Unique identifier: "))
        .map(|u| u.trim().to_owned())
        .unwrap_or_else(|| panic!("no identifier in:\n{output}"))
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Data that is not all the same byte, so that a wrong decryption cannot pass by chance.
fn data(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// The `Attributes` JSON that `ckms attributes get` prints.
fn attributes_json(output: &str) -> serde_json::Value {
    let start = output
        .find('{')
        .unwrap_or_else(|| panic!("no JSON in:\n{output}"));
    let end = output.rfind('}').expect("closing brace");
    serde_json::from_str(&output[start..=end]).unwrap_or_else(|e| panic!("{e}:\n{output}"))
}

async fn server() -> TestServer {
    // A 5 MiB file travels as 10 MiB of hex in JSON TTLV.
    TestServer::builder()
        .max_request_size(32 * 1024 * 1024)
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_commands() {
    let t = server().await;
    let ckms = Ckms::new(&t.url);
    let version = ckms.ok(&["server", "version"]).await;
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
    let versions = ckms.ok(&["server", "discover-versions"]).await;
    assert!(
        versions.contains("2.1") && versions.contains("1.0"),
        "{versions}"
    );
    let query = ckms.ok(&["server", "query"]).await;
    assert!(query.contains("kms-server"), "{query}");
    let hash = ckms.ok(&["hash", "-a", "sha256", "-d", "616263"]).await;
    assert!(
        hash.contains("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        "{hash}"
    );
    let rng = ckms.ok(&["rng", "retrieve", "-l", "16"]).await;
    let hex = rng.trim().rsplit(' ').next().unwrap_or_default();
    assert_eq!(hex.len(), 32, "{rng}");
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symmetric_key_lifecycle_by_id_and_by_tag() {
    let t = server().await;
    let ckms = Ckms::new(&t.url);
    let k1 = ckms.create_key(&["-t", "interop", "-t", "k1"]).await;
    let k2 = ckms.create_key(&["-t", "interop"]).await;

    // Locate by tags: every tag must match.
    let both = ckms.ok(&["locate", "-t", "interop"]).await;
    assert!(both.contains(&k1) && both.contains(&k2), "{both}");
    let one = ckms.ok(&["locate", "-t", "interop", "-t", "k1"]).await;
    assert!(one.contains(&k1) && !one.contains(&k2), "{one}");
    let none = ckms.ok(&["locate", "-t", "no-such-tag"]).await;
    assert!(!none.contains(&k1) && !none.contains(&k2), "{none}");

    // Export as JSON TTLV and raw: the same 32 bytes.
    ckms.ok(&["sym", "keys", "export", "-k", &k1, &ckms.file("k1.json")])
        .await;
    ckms.ok(&[
        "sym",
        "keys",
        "export",
        "-k",
        &k1,
        "-f",
        "raw",
        &ckms.file("k1.raw"),
    ])
    .await;
    let raw = read(&ckms.path("k1.raw"));
    assert_eq!(raw.len(), 32);
    let json: serde_json::Value =
        serde_json::from_slice(&read(&ckms.path("k1.json"))).expect("exported JSON");
    assert_eq!(json["tag"], "SymmetricKey");
    let exported = json.to_string();
    let hex: String = raw.iter().map(|b| format!("{b:02X}")).collect();
    assert!(
        exported.contains(&hex),
        "the JSON export carries the raw key"
    );

    // Import: a new identifier when none is given, the one given otherwise, then replace.
    let imported = uid_in(
        &ckms
            .ok(&[
                "sym",
                "keys",
                "import",
                "-f",
                "aes",
                &ckms.file("k1.raw"),
                "-t",
                "imported",
            ])
            .await,
    );
    assert_ne!(imported, k1);
    ckms.ok(&[
        "sym",
        "keys",
        "export",
        "-k",
        &imported,
        "-f",
        "raw",
        &ckms.file("imp.raw"),
    ])
    .await;
    assert_eq!(read(&ckms.path("imp.raw")), raw);
    let named = ckms
        .ok(&[
            "sym",
            "keys",
            "import",
            &ckms.file("k1.json"),
            "my-key",
            "-t",
            "named",
        ])
        .await;
    assert_eq!(uid_in(&named), "my-key");
    let again = ckms
        .fails(&["sym", "keys", "import", &ckms.file("k1.json"), "my-key"])
        .await;
    assert!(again.contains("already exists"), "{again}");
    ckms.ok(&[
        "sym",
        "keys",
        "import",
        &ckms.file("k1.json"),
        "my-key",
        "-r",
        "-t",
        "renamed",
    ])
    .await;
    let renamed = ckms.ok(&["locate", "-t", "renamed"]).await;
    assert!(renamed.contains("my-key"), "{renamed}");

    // Server-side encryption of a small file by identifier and of 5 MiB by tag.
    for (name, len, selector) in [
        ("small", 100, vec!["-k", k1.as_str()]),
        ("large", 5 * 1024 * 1024, vec!["-t", "k1"]),
    ] {
        let plain = data(len);
        std::fs::write(ckms.path(name), &plain).expect("write");
        let (input, sealed, opened) = (
            ckms.file(name),
            format!("{name}.enc"),
            format!("{name}.dec"),
        );
        let mut encrypt = vec!["sym", "encrypt"];
        encrypt.extend_from_slice(&selector);
        encrypt.extend_from_slice(&[input.as_str(), "-o", sealed.as_str()]);
        ckms.ok(&encrypt).await;
        let ciphertext = read(&ckms.path(&sealed));
        assert!(ciphertext.len() > len && !ciphertext.windows(16).any(|w| w == &plain[..16]));
        let mut decrypt = vec!["sym", "decrypt"];
        decrypt.extend_from_slice(&selector);
        let sealed_path = ckms.file(&sealed);
        decrypt.extend_from_slice(&[sealed_path.as_str(), "-o", opened.as_str()]);
        ckms.ok(&decrypt).await;
        assert_eq!(read(&ckms.path(&opened)), plain, "{name} round trip");
    }

    // A tag two keys carry designates neither.
    let small = ckms.file("small");
    let ambiguous = ckms
        .fails(&["sym", "encrypt", "-t", "interop", &small])
        .await;
    assert!(ambiguous.contains("2 objects"), "{ambiguous}");
    let unknown = ckms
        .fails(&["sym", "encrypt", "-t", "nobody", &small])
        .await;
    assert!(unknown.contains("no object"), "{unknown}");

    // Revoke and destroy by tag; the key no longer encrypts, then its material is gone.
    ckms.ok(&["sym", "keys", "revoke", "-t", "k1", "rotated out"])
        .await;
    let refused = ckms.fails(&["sym", "encrypt", "-k", &k1, &small]).await;
    assert!(refused.contains("active"), "{refused}");
    ckms.ok(&["sym", "keys", "destroy", "-t", "k1"]).await;
    let gone = ckms
        .fails(&[
            "sym",
            "keys",
            "export",
            "-k",
            &k1,
            "-i",
            &ckms.file("gone.json"),
        ])
        .await;
    assert!(gone.contains("destroyed"), "{gone}");
    // Destroy with --remove deletes the record too.
    ckms.ok(&["sym", "keys", "revoke", "-k", &imported, "done"])
        .await;
    ckms.ok(&["sym", "keys", "destroy", "-k", &imported, "--remove"])
        .await;
    let removed = ckms
        .fails(&[
            "sym",
            "keys",
            "export",
            "-k",
            &imported,
            "-i",
            &ckms.file("r.json"),
        ])
        .await;
    assert!(removed.contains("not found"), "{removed}");
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_envelope_encryption() {
    let t = server().await;
    let ckms = Ckms::new(&t.url);
    for (kek_algorithm, tag) in [
        ("rfc5649", "kek-kwp"),
        ("rfc3394", "kek-kw"),
        ("aes-gcm", "kek-gcm"),
    ] {
        let kek = ckms.create_key(&["-t", tag]).await;
        let plain = data(70_000);
        std::fs::write(ckms.path("plain"), &plain).expect("write");
        let (input, sealed) = (ckms.file("plain"), ckms.file("plain.env"));
        ckms.ok(&[
            "sym",
            "encrypt",
            "-k",
            &kek,
            "-e",
            kek_algorithm,
            &input,
            "-o",
            &sealed,
        ])
        .await;
        let envelope = read(&ckms.path("plain.env"));
        assert!(
            envelope.len() > plain.len(),
            "{kek_algorithm}: a wrapped key in front"
        );
        // Decrypted by tag: the server unwraps the data key, the client decrypts the data.
        let opened = ckms.file("plain.dec");
        ckms.ok(&[
            "sym",
            "decrypt",
            "-t",
            tag,
            "-e",
            kek_algorithm,
            &sealed,
            "-o",
            &opened,
        ])
        .await;
        assert_eq!(read(&ckms.path("plain.dec")), plain, "{kek_algorithm}");
    }
    t.server.stop().await;
}

/// Server-side encryption with the other data algorithms ckms offers: AES-CBC, and AES-XTS with
/// a 512-bit key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_cbc_and_xts() {
    let t = server().await;
    let ckms = Ckms::new(&t.url);
    for (algorithm, length) in [("aes-cbc", "256"), ("aes-xts", "512")] {
        let key = ckms.create_key(&["-l", length]).await;
        let plain = data(100_000);
        std::fs::write(ckms.path("p"), &plain).expect("write");
        let (input, sealed, opened) = (ckms.file("p"), ckms.file("p.enc"), ckms.file("p.dec"));
        ckms.ok(&[
            "sym", "encrypt", "-k", &key, "-d", algorithm, &input, "-o", &sealed,
        ])
        .await;
        assert_ne!(read(&ckms.path("p.enc")), plain);
        ckms.ok(&[
            "sym", "decrypt", "-k", &key, "-d", algorithm, &sealed, "-o", &opened,
        ])
        .await;
        assert_eq!(read(&ckms.path("p.dec")), plain, "{algorithm}");
    }
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_get_set_delete() {
    let t = server().await;
    let ckms = Ckms::new(&t.url);
    let k = ckms.create_key(&["-t", "attrs", "-t", "second"]).await;
    let all = attributes_json(&ckms.ok(&["attributes", "get", "-i", &k]).await);
    let mut tags: Vec<&str> = all["Tag"]
        .as_array()
        .expect("tags among all attributes")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    tags.sort_unstable();
    assert_eq!(tags, ["attrs", "second"]);
    assert_eq!(all["CryptographicAlgorithm"], "AES");
    assert_eq!(all["CryptographicLength"], 256);
    // Only the tags, when only they are asked for.
    let only = attributes_json(&ckms.ok(&["attributes", "get", "-i", &k, "-a", "Tag"]).await);
    assert!(
        only["Tag"].is_array() && only.get("CryptographicLength").is_none(),
        "{only}"
    );

    ckms.ok(&["attributes", "set", "-i", &k, "--name", "payroll"])
        .await;
    ckms.ok(&[
        "attributes",
        "set",
        "-t",
        "attrs",
        "-v",
        "acme",
        "-n",
        "color",
        "--attribute-value",
        "626c7565",
    ])
    .await;
    let set = attributes_json(&ckms.ok(&["attributes", "get", "-i", &k]).await);
    assert_eq!(set["Name"][0]["NameValue"], "payroll", "{set}");
    let vendor = set["VendorExtension"].to_string();
    assert!(vendor.contains("acme") && vendor.contains("color"), "{set}");
    // Setting a name again replaces it (one instance).
    ckms.ok(&["attributes", "set", "-i", &k, "--name", "payroll-2"])
        .await;
    let renamed = attributes_json(&ckms.ok(&["attributes", "get", "-i", &k]).await);
    assert_eq!(
        renamed["Name"].as_array().map(Vec::len),
        Some(1),
        "{renamed}"
    );
    assert_eq!(renamed["Name"][0]["NameValue"], "payroll-2");

    ckms.ok(&["attributes", "delete", "-i", &k, "--name", "payroll-2"])
        .await;
    let deleted = attributes_json(&ckms.ok(&["attributes", "get", "-i", &k]).await);
    assert!(deleted.get("Name").is_none(), "{deleted}");
    let missing = ckms
        .fails(&["attributes", "delete", "-i", &k, "--name", "payroll-2"])
        .await;
    assert!(missing.contains("not found"), "{missing}");
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_data_and_opaque_objects() {
    let t = server().await;
    let ckms = Ckms::new(&t.url);
    // A secret the server generates, and one the client gives.
    let generated = uid_in(&ckms.ok(&["secret-data", "create", "-t", "sd-gen"]).await);
    ckms.ok(&[
        "secret-data",
        "export",
        "-k",
        &generated,
        "-f",
        "raw",
        &ckms.file("gen.raw"),
    ])
    .await;
    assert_eq!(read(&ckms.path("gen.raw")).len(), 32);
    let given = uid_in(
        &ckms
            .ok(&[
                "secret-data",
                "create",
                "-v",
                "correct horse battery",
                "-t",
                "sd-given",
            ])
            .await,
    );
    ckms.ok(&[
        "secret-data",
        "export",
        "-t",
        "sd-given",
        "-f",
        "raw",
        &ckms.file("given.raw"),
    ])
    .await;
    assert_eq!(read(&ckms.path("given.raw")), b"correct horse battery");
    ckms.ok(&["secret-data", "revoke", "-t", "sd-given", "no longer used"])
        .await;
    ckms.ok(&["secret-data", "destroy", "-t", "sd-given"]).await;
    let gone = ckms
        .fails(&[
            "secret-data",
            "export",
            "-k",
            &given,
            "-f",
            "raw",
            &ckms.file("x.raw"),
        ])
        .await;
    assert!(gone.contains("destroyed"), "{gone}");

    let opaque = uid_in(
        &ckms
            .ok(&["opaque-object", "create", "-d", "68656c6c6f", "-t", "op"])
            .await,
    );
    ckms.ok(&[
        "opaque-object",
        "export",
        "-k",
        &opaque,
        &ckms.file("op.json"),
    ])
    .await;
    let exported = String::from_utf8(read(&ckms.path("op.json"))).expect("utf-8");
    assert!(exported.contains("OpaqueObject"), "{exported}");
    ckms.ok(&["opaque-object", "revoke", "-t", "op", "done"])
        .await;
    ckms.ok(&["opaque-object", "destroy", "-t", "op", "--remove"])
        .await;
    let removed = ckms.ok(&["locate", "-t", "op"]).await;
    assert!(!removed.contains(&opaque), "{removed}");
    // A destroy for one kind of object does not touch another kind.
    ckms.ok(&["secret-data", "revoke", "-s", &generated, "x"])
        .await;
    let wrong = ckms
        .fails(&["sym", "keys", "destroy", "-k", &generated])
        .await;
    assert!(wrong.contains("not SymmetricKey"), "{wrong}");
    ckms.ok(&[
        "secret-data",
        "export",
        "-k",
        &generated,
        "-i",
        "-f",
        "raw",
        &ckms.file("still.raw"),
    ])
    .await;
    t.server.stop().await;
}

/// `access-rights`: the owner grants, lists, revokes; owned and obtained lists parse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_rights_commands() {
    let t = server().await;
    let ckms = Ckms::new(&t.url);
    let k = ckms.create_key(&["-t", "acl"]).await;
    let granted = ckms
        .ok(&[
            "access-rights",
            "grant",
            "bob",
            "encrypt",
            "decrypt",
            "-i",
            &k,
        ])
        .await;
    assert!(granted.contains("bob"), "{granted}");
    ckms.ok(&["access-rights", "grant", "*", "get", "-i", &k])
        .await;
    let list = ckms.ok(&["access-rights", "list", &k]).await;
    assert!(list.contains("bob: {decrypt, encrypt}"), "{list}");
    assert!(list.contains("*: {get}"), "{list}");
    ckms.ok(&["access-rights", "revoke", "bob", "encrypt", "-i", &k])
        .await;
    let list = ckms.ok(&["access-rights", "list", &k]).await;
    assert!(list.contains("bob: {decrypt}"), "{list}");
    let owned = ckms.ok(&["access-rights", "owned"]).await;
    assert!(owned.contains(&format!("[Active] {k}")), "{owned}");
    let obtained = ckms.ok(&["access-rights", "obtained"]).await;
    assert!(obtained.contains("No access right obtained"), "{obtained}");
    let missing = ckms
        .fails(&[
            "access-rights",
            "grant",
            "bob",
            "get",
            "-i",
            "no-such-object",
        ])
        .await;
    assert!(missing.contains("not found"), "{missing}");
    t.server.stop().await;
}

/// The two identifiers `ckms rsa|ec keys create` prints: (private, public).
fn pair_in(output: &str) -> (String, String) {
    let find = |prefix: &str| {
        output
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .map(|u| u.trim().to_owned())
            .unwrap_or_else(|| panic!("no `{prefix}` in:\n{output}"))
    };
    (
        find("Private key unique identifier: "),
        find("Public key unique identifier: "),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_and_ec_key_pairs_wrapped_export_and_re_key() {
    let t = server().await;
    let ckms = Ckms::new(&t.url);
    let plain = data(100);
    std::fs::write(ckms.path("m"), &plain).expect("write");
    // RSA: create, encrypt with the public key and decrypt with the private one, sign (PSS)
    // and verify, export the public key as PEM (openssl reads it and checks the signature).
    let (private, public) = pair_in(&ckms.ok(&["rsa", "keys", "create"]).await);
    ckms.ok(&[
        "rsa",
        "encrypt",
        "-k",
        &public,
        &ckms.file("m"),
        "-o",
        &ckms.file("m.enc"),
    ])
    .await;
    ckms.ok(&[
        "rsa",
        "decrypt",
        "-k",
        &private,
        &ckms.file("m.enc"),
        "-o",
        &ckms.file("m.dec"),
    ])
    .await;
    assert_eq!(read(&ckms.path("m.dec")), plain);
    ckms.ok(&[
        "rsa",
        "sign",
        "-k",
        &private,
        &ckms.file("m"),
        "-o",
        &ckms.file("m.sig"),
    ])
    .await;
    let verified = ckms
        .ok(&[
            "rsa",
            "sign-verify",
            "-k",
            &public,
            &ckms.file("m"),
            &ckms.file("m.sig"),
        ])
        .await;
    assert!(verified.contains("Valid"), "{verified}");
    ckms.ok(&[
        "rsa",
        "keys",
        "export",
        "-k",
        &public,
        "-f",
        "pkcs8-pem",
        &ckms.file("pub.pem"),
    ])
    .await;
    let openssl = std::process::Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:-2",
            "-verify",
        ])
        .arg(ckms.path("pub.pem"))
        .arg("-signature")
        .arg(ckms.path("m.sig"))
        .arg(ckms.path("m"))
        .output()
        .expect("openssl runs");
    assert!(
        String::from_utf8_lossy(&openssl.stdout).contains("Verified OK"),
        "{openssl:?}"
    );

    // EC: sign and verify.
    let (ec_private, ec_public) = pair_in(&ckms.ok(&["ec", "keys", "create"]).await);
    ckms.ok(&[
        "ec",
        "sign",
        "-k",
        &ec_private,
        &ckms.file("m"),
        "-o",
        &ckms.file("m.ecsig"),
    ])
    .await;
    let verified = ckms
        .ok(&[
            "ec",
            "sign-verify",
            "-k",
            &ec_public,
            &ckms.file("m"),
            &ckms.file("m.ecsig"),
        ])
        .await;
    assert!(verified.contains("Valid"), "{verified}");

    // A symmetric key exported wrapped by the RSA public key, imported back unwrapped (by
    // the linked private key): the same key bytes.
    let key = ckms.create_key(&[]).await;
    ckms.ok(&[
        "sym",
        "keys",
        "export",
        "-k",
        &key,
        "-w",
        &public,
        &ckms.file("wrapped.json"),
    ])
    .await;
    let wrapped = String::from_utf8_lossy(&read(&ckms.path("wrapped.json"))).into_owned();
    assert!(wrapped.contains("KeyWrappingData"), "{wrapped}");
    ckms.ok(&[
        "sym",
        "keys",
        "import",
        "-u",
        &ckms.file("wrapped.json"),
        "unwrapped",
    ])
    .await;
    ckms.ok(&[
        "sym",
        "keys",
        "export",
        "-k",
        &key,
        "-f",
        "raw",
        &ckms.file("k1"),
    ])
    .await;
    ckms.ok(&[
        "sym",
        "keys",
        "export",
        "-k",
        "unwrapped",
        "-f",
        "raw",
        &ckms.file("k2"),
    ])
    .await;
    assert_eq!(read(&ckms.path("k1")), read(&ckms.path("k2")));

    // Re-key: a new key replaces the old one.
    let renewed = uid_in(&ckms.ok(&["sym", "keys", "re-key", "-k", &key]).await);
    assert_ne!(renewed, key);
    ckms.ok(&[
        "sym",
        "keys",
        "export",
        "-k",
        &renewed,
        "-f",
        "raw",
        &ckms.file("k3"),
    ])
    .await;
    assert_ne!(read(&ckms.path("k3")), read(&ckms.path("k1")));
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_certify_export_and_pkcs12() {
    let t = server().await;
    let ckms = Ckms::new(&t.url);
    std::fs::write(
        ckms.path("ca.ext"),
        "[v3_ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign,cRLSign\n",
    )
    .expect("write");
    // A CA and a leaf, each with a key pair the server generates (`-g`).
    let ca = uid_in(
        &ckms
            .ok(&[
                "certificates",
                "certify",
                "-g",
                "-a",
                "nist-p256",
                "-s",
                "CN=Interop CA,O=Example",
                "-e",
                &ckms.file("ca.ext"),
                "-d",
                "30",
            ])
            .await,
    );
    let leaf = uid_in(
        &ckms
            .ok(&[
                "certificates",
                "certify",
                "-g",
                "-a",
                "nist-p256",
                "-s",
                "CN=leaf.example.com",
                "-i",
                &ca,
                "-d",
                "10",
            ])
            .await,
    );
    ckms.ok(&[
        "certificates",
        "export",
        "-c",
        &ca,
        "-f",
        "pem",
        &ckms.file("ca.pem"),
    ])
    .await;
    ckms.ok(&[
        "certificates",
        "export",
        "-c",
        &leaf,
        "-f",
        "pem",
        &ckms.file("leaf.pem"),
    ])
    .await;
    let verify = std::process::Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(ckms.path("ca.pem"))
        .arg(ckms.path("leaf.pem"))
        .output()
        .expect("openssl runs");
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains(": OK"),
        "{verify:?}"
    );
    // PKCS#12 out (the password as Cosmian's client sends it) and back in.
    ckms.ok(&[
        "certificates",
        "export",
        "-c",
        &leaf,
        "-f",
        "pkcs12",
        "-p",
        "s3cret",
        &ckms.file("leaf.p12"),
    ])
    .await;
    let opened = std::process::Command::new("openssl")
        .args(["pkcs12", "-passin", "pass:s3cret", "-nodes", "-in"])
        .arg(ckms.path("leaf.p12"))
        .output()
        .expect("openssl runs");
    let pem = String::from_utf8_lossy(&opened.stdout);
    assert!(
        pem.contains("BEGIN PRIVATE KEY") && pem.matches("BEGIN CERTIFICATE").count() == 2,
        "{opened:?}"
    );
    let imported = uid_in(
        &ckms
            .ok(&[
                "certificates",
                "import",
                "-f",
                "pkcs12",
                "-p",
                "s3cret",
                &ckms.file("leaf.p12"),
                "from-p12",
            ])
            .await,
    );
    assert_eq!(imported, "from-p12");
    // The imported key signs.
    std::fs::write(ckms.path("m"), data(64)).expect("write");
    ckms.ok(&[
        "ec",
        "sign",
        "-k",
        "from-p12",
        &ckms.file("m"),
        "-o",
        &ckms.file("m.sig"),
    ])
    .await;
    t.server.stop().await;
}
