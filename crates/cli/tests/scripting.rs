//! `ckms` in scripts: shell completions, `--json` output of results and errors, and the exit
//! codes (0 success, 1 local error, 2 usage, 3 refused by the server, 4 network), against a real
//! KMS where a server is needed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use std::path::Path;
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

/// A configuration file naming `url`, so that no `~/.cosmian/kms.json` is read.
fn conf(dir: &Path, name: &str, url: &str) -> std::path::PathBuf {
    let conf = dir.join(format!("{name}.json"));
    std::fs::write(&conf, format!(r#"{{"kms_server_url": "{url}"}}"#)).unwrap();
    conf
}

fn ckms_sync(conf: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ckms"));
    if let Some(conf) = conf {
        command.arg("--conf").arg(conf);
    }
    command.args(args).env_remove("KMS_SERVER_URL");
    command.output().unwrap()
}

/// Runs ckms without blocking the server's runtime.
async fn ckms(conf: &Path, args: &[&str]) -> Output {
    let conf = conf.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ckms_sync(Some(&conf), &args)
    })
    .await
    .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one JSON document of a successful `--json` command.
fn json_ok(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The JSON error of a failed `--json` command: its exit code is `code`, its kind `kind`,
/// and stdout is empty.
fn json_error(out: &Output, code: i32, kind: &str) -> Value {
    assert_eq!(out.status.code(), Some(code), "{}", stderr(out));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let last = stderr(out).lines().last().unwrap_or_default().to_owned();
    let error: Value = serde_json::from_str(&last)
        .unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {}", stderr(out)));
    assert_eq!(error["kind"], kind, "{error}");
    assert_eq!(error["exit_code"], code, "{error}");
    assert!(error["error"].as_str().is_some_and(|m| !m.is_empty()));
    error
}

#[test]
fn completions_for_each_shell_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = ckms_sync(None, &["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.len() > 1000, "{shell}: {script}");
        for word in ["ckms", "locate", "sym", "access-rights", "completions"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    let json = json_ok(&ckms_sync(None, &["--json", "completions", "bash"]));
    assert_eq!(json["shell"], "bash");
    assert!(json["script"].as_str().unwrap().contains("locate"));
    // An unknown shell is a usage error.
    let out = ckms_sync(None, &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn usage_errors_exit_2_and_help_documents_the_codes() {
    let out = ckms_sync(None, &["--bogus"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--bogus"));
    let error = json_error(
        &ckms_sync(None, &["sym", "keys", "create", "--json", "--bogus"]),
        2,
        "usage",
    );
    assert!(
        error["error"].as_str().unwrap().contains("--bogus"),
        "{error}"
    );
    // A missing subcommand, and arguments that do not go together once parsed.
    assert_eq!(ckms_sync(None, &["sym"]).status.code(), Some(2));
    json_error(
        &ckms_sync(None, &["--json", "--url", "http://127.0.0.1:1", "hash"]),
        2,
        "usage",
    );

    let help = ckms_sync(None, &["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let help = String::from_utf8(help.stdout).unwrap();
    for line in [
        "Exit codes:",
        "  2  usage error",
        "  3  the server refused",
        "  4  network",
    ] {
        assert!(help.contains(line), "{line} missing from --help:\n{help}");
    }
    let version = json_ok(&ckms_sync(None, &["--json", "--version"]));
    assert_eq!(version["name"], "ckms");
}

#[test]
fn unreachable_servers_exit_4_and_local_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let nobody = conf(dir.path(), "nobody", "http://127.0.0.1:1");
    let out = ckms_sync(Some(&nobody), &["sym", "keys", "create"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("error: cannot reach the KMS"));
    let error = json_error(
        &ckms_sync(Some(&nobody), &["--json", "locate", "--tag", "x"]),
        4,
        "network",
    );
    assert!(error["error"].as_str().unwrap().contains("127.0.0.1:1"));
    json_error(
        &ckms_sync(Some(&nobody), &["--json", "server", "version"]),
        4,
        "network",
    );

    // A file that is not there: a local error, before any request.
    let missing = dir.path().join("missing.key");
    json_error(
        &ckms_sync(
            Some(&nobody),
            &["--json", "sym", "keys", "import", missing.to_str().unwrap()],
        ),
        1,
        "local",
    );
    // So is a configuration file that is not there.
    let out = ckms_sync(
        Some(&dir.path().join("absent.json")),
        &["server", "version"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_results_and_server_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let kms = server(dir.path()).await;
    let conf = conf(dir.path(), "kms", &format!("http://{}", kms.addr));

    let created = json_ok(
        &ckms(
            &conf,
            &["--json", "sym", "keys", "create", "--tag", "scripted"],
        )
        .await,
    );
    let uid = created["unique_identifier"].as_str().unwrap().to_owned();
    assert!(!uid.is_empty(), "{created}");
    assert_eq!(created.as_object().unwrap().len(), 1, "{created}");

    let attributes = json_ok(&ckms(&conf, &["--json", "attributes", "get", "--id", &uid]).await);
    assert_eq!(
        attributes["unique_identifier"],
        uid.as_str(),
        "{attributes}"
    );
    assert_eq!(attributes["attributes"]["CryptographicAlgorithm"], "AES");
    assert_eq!(attributes["attributes"]["CryptographicLength"], 256);
    assert_eq!(attributes["attributes"]["State"], "PreActive");
    assert_eq!(attributes["tags"], serde_json::json!(["scripted"]));

    let located = json_ok(&ckms(&conf, &["--json", "locate", "--tag", "scripted"]).await);
    assert_eq!(
        located["unique_identifiers"],
        serde_json::json!([uid]),
        "{located}"
    );

    json_ok(&ckms(&conf, &["--json", "sym", "keys", "activate", &uid]).await);
    // A file written: what, where, how many bytes.
    let file = dir.path().join("exported.key");
    let exported = json_ok(
        &ckms(
            &conf,
            &[
                "--json",
                "sym",
                "keys",
                "export",
                "-k",
                &uid,
                file.to_str().unwrap(),
            ],
        )
        .await,
    );
    assert_eq!(
        exported["output_file"],
        file.to_str().unwrap(),
        "{exported}"
    );
    assert_eq!(exported["bytes"], 32, "{exported}");
    assert_eq!(exported["unique_identifier"], uid.as_str());
    assert!(exported["content"].as_str().unwrap().contains("key"));
    assert_eq!(std::fs::read(&file).unwrap().len(), 32);

    let plain = dir.path().join("notes.txt");
    std::fs::write(&plain, b"hello").unwrap();
    let encrypted = json_ok(
        &ckms(
            &conf,
            &[
                "--json",
                "sym",
                "encrypt",
                "-k",
                &uid,
                plain.to_str().unwrap(),
            ],
        )
        .await,
    );
    let enc = dir.path().join("notes.txt.enc");
    assert_eq!(
        encrypted["output_file"],
        enc.to_str().unwrap(),
        "{encrypted}"
    );
    assert_eq!(encrypted["input_file"], plain.to_str().unwrap());
    assert_eq!(encrypted["content"], "ciphertext");
    assert!(encrypted["bytes"].as_u64().unwrap() > 5);
    // Without --json: text, and exit code 0.
    let text = ckms(&conf, &["locate", "--tag", "scripted"]).await;
    assert_eq!(text.status.code(), Some(0));
    assert_eq!(String::from_utf8(text.stdout).unwrap().trim(), uid);

    // The server refuses: an unknown object, in text and in JSON.
    let out = ckms(&conf, &["attributes", "get", "--id", "no-such-key"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    json_error(
        &ckms(
            &conf,
            &["--json", "attributes", "get", "--id", "no-such-key"],
        )
        .await,
        3,
        "server",
    );
    let out_file = dir.path().join("never.key");
    json_error(
        &ckms(
            &conf,
            &[
                "--json",
                "sym",
                "keys",
                "export",
                "-k",
                "no-such-key",
                out_file.to_str().unwrap(),
            ],
        )
        .await,
        3,
        "server",
    );
    assert!(!out_file.exists());
    // Destroying an active key is refused too.
    json_error(
        &ckms(&conf, &["--json", "sym", "keys", "destroy", &uid]).await,
        3,
        "server",
    );

    // TLS to a plain HTTP port: a network error.
    let tls = self::conf(dir.path(), "tls", &format!("https://{}/", kms.addr));
    json_error(
        &ckms(&tls, &["--json", "sym", "keys", "create"]).await,
        4,
        "network",
    );
    kms.stop().await;
}
