//! Output for humans by default, JSON with `--json`, and the exit code of a failure.
//!
//! Every command prints its result through [`Output`]: one line (or block) of text, or with
//! `--json` one JSON document on stdout. Notes and warnings go to stderr, as text or as one
//! JSON object per line; so does the error that ends a command, with its [`ErrorKind`], whose
//! [`ErrorKind::exit_code`] is the exit code of `ckms`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use kms_client::ClientError;
use serde_json::{Map, Value, json};

/// The exit codes, as `ckms --help` prints them.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  any other error: a local one (file not found, bad input file, bad configuration), an
     invalid signature or certificate chain, an answer the client cannot understand
  2  usage error: unknown command or flag, missing or inconsistent arguments
  3  the server refused the request (a KMIP failure, or an HTTP error status it answered:
     unknown object, permission denied, invalid request...)
  4  network error: the server could not be reached (connection refused, DNS, TLS failure or
     certificate mismatch, timeout, connection lost)

With --json, the result is one JSON document on stdout, and an error is a JSON object on
stderr: {\"error\": \"...\", \"kind\": \"usage|server|network|local|invalid|protocol\", \"exit_code\": N}.";

/// Hides progress bars (`--json`: stderr holds JSON only).
static QUIET: AtomicBool = AtomicBool::new(false);

/// Whether progress bars may be drawn.
pub fn progress_enabled() -> bool {
    !QUIET.load(Ordering::Relaxed)
}

pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Output {
        QUIET.store(json, Ordering::Relaxed);
        Output { json }
    }

    /// One named value.
    pub fn value(&self, name: &str, value: &str) {
        self.report(value, json!({ name: value }));
    }

    /// The result of a command: a message for humans, or a JSON document for scripts.
    pub fn report(&self, text: &str, data: Value) {
        if self.json {
            stdout(&data.to_string());
        } else if !text.is_empty() {
            stdout(text);
        }
    }

    /// A file the command wrote: `data` (an object) plus where (`output_file`), what
    /// (`content`) and how many bytes (`bytes`).
    pub fn wrote(&self, text: &str, path: &Path, content: &str, data: Value) {
        let mut object = match data {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            other => Map::from_iter([("result".to_owned(), other)]),
        };
        object.insert("output_file".into(), json!(path));
        object.insert("content".into(), json!(content));
        if let Ok(meta) = std::fs::metadata(path) {
            object.insert("bytes".into(), json!(meta.len()));
        }
        self.report(text, Value::Object(object));
    }

    /// A note or warning on stderr: `text`, or with `--json` `data` on one line.
    pub fn note(&self, text: &str, data: Value) {
        if self.json {
            eprintln!("{data}");
        } else {
            eprintln!("{text}");
        }
    }

    /// A warning on stderr: `warning: TEXT`, or `{"warning": TEXT}`.
    pub fn warn(&self, text: &str) {
        self.note(&format!("warning: {text}"), json!({ "warning": text }));
    }

    /// The error that ends the command, on stderr; answers the exit code.
    pub fn error(&self, e: &anyhow::Error) -> i32 {
        let kind = classify(e);
        let message = message(e);
        if self.json {
            let mut object = json!({
                "error": message,
                "kind": kind.name(),
                "exit_code": kind.exit_code(),
            });
            if let Some(client) = e.chain().find_map(|c| c.downcast_ref::<ClientError>()) {
                match client {
                    ClientError::Server { status, .. } => object["http_status"] = json!(status),
                    ClientError::Operation { reason, .. } => {
                        object["result_reason"] = json!(reason)
                    }
                    _ => {}
                }
            }
            eprintln!("{object}");
        } else {
            eprintln!("error: {message}");
        }
        kind.exit_code()
    }

    /// A usage error found by clap: exits 2 (0 for `--help` and `--version`), with the error
    /// as JSON on stderr when `--json` is among the arguments.
    pub fn clap_exit(e: &clap::Error, json: bool) -> ! {
        use clap::error::ErrorKind as K;
        if !json || e.exit_code() == 0 {
            if json && e.kind() == K::DisplayVersion {
                stdout(
                    &json!({ "name": "ckms", "version": env!("CARGO_PKG_VERSION") }).to_string(),
                );
                std::process::exit(0);
            }
            e.exit()
        }
        let text = e.render().to_string();
        let text = text.trim().trim_start_matches("error: ");
        let message = text.split("\n\n").next().unwrap_or(text).trim();
        let kind = ErrorKind::Usage;
        eprintln!(
            "{}",
            json!({ "error": message, "kind": kind.name(), "exit_code": kind.exit_code() })
        );
        std::process::exit(kind.exit_code())
    }
}

/// Writes `text` and a newline to stdout. A closed pipe (`ckms ... | head`) ends the output
/// quietly; another failure (a full disk) ends `ckms` with exit code 1.
fn stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            std::process::exit(ErrorKind::Local.exit_code());
        }
    }
}

/// The message of an error and its causes, each cause once: a cause whose text its wrapper
/// already quotes is not repeated.
pub fn message(e: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

/// What went wrong, and so the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command line is wrong (clap's errors, and arguments that do not go together).
    Usage,
    /// The server answered and refused the request.
    Server,
    /// The server could not be reached, or the exchange broke off.
    Network,
    /// A signature or a certificate chain is not valid.
    Invalid,
    /// The server answered something the client cannot understand.
    Protocol,
    /// Anything else: files, configuration, input.
    Local,
}

impl ErrorKind {
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Usage => 2,
            ErrorKind::Server => 3,
            ErrorKind::Network => 4,
            ErrorKind::Invalid | ErrorKind::Protocol | ErrorKind::Local => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Usage => "usage",
            ErrorKind::Server => "server",
            ErrorKind::Network => "network",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Local => "local",
        }
    }
}

/// An error of a known kind, for the errors that do not come typed from `kms-client`.
#[derive(Debug)]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

fn failure(kind: ErrorKind, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        kind,
        message: message.into(),
    })
}

/// Arguments that do not go together, or a value that is not one of the accepted ones.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    failure(ErrorKind::Usage, message)
}

/// The server refused (outside `kms-client`: bootstrap, bench).
pub fn refused(message: impl Into<String>) -> anyhow::Error {
    failure(ErrorKind::Server, message)
}

/// The server could not be reached (outside `kms-client`: bootstrap, bench).
pub fn network(message: impl Into<String>) -> anyhow::Error {
    failure(ErrorKind::Network, message)
}

/// A signature or a chain that does not verify.
pub fn invalid(message: impl Into<String>) -> anyhow::Error {
    failure(ErrorKind::Invalid, message)
}

/// The kind of an error: the first typed error of its chain, outermost first.
pub fn classify(e: &anyhow::Error) -> ErrorKind {
    for cause in e.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.kind;
        }
        if let Some(c) = cause.downcast_ref::<ClientError>() {
            return if c.is_network() {
                ErrorKind::Network
            } else if c.is_refusal() {
                ErrorKind::Server
            } else if matches!(c, ClientError::Config(_)) {
                ErrorKind::Local
            } else {
                ErrorKind::Protocol
            };
        }
        if let Some(r) = cause.downcast_ref::<reqwest::Error>() {
            return if r.is_builder() {
                ErrorKind::Local
            } else if r.is_status() {
                ErrorKind::Server
            } else if r.is_decode() {
                ErrorKind::Protocol
            } else {
                ErrorKind::Network
            };
        }
        if let Some(c) = cause.downcast_ref::<clap::Error>() {
            return if c.exit_code() == 0 {
                ErrorKind::Local
            } else {
                ErrorKind::Usage
            };
        }
    }
    ErrorKind::Local
}

/// Attributes as plain JSON: a TTLV node `{"tag", "type", "value"}` becomes its value, a
/// structure an object of its children by tag (a tag seen more than once: an array).
pub fn plain_ttlv(node: &Value) -> Value {
    match (node.get("type").and_then(Value::as_str), node.get("value")) {
        (Some("Structure"), Some(Value::Array(children))) => {
            let mut by_tag: Vec<(&str, Vec<Value>)> = Vec::new();
            for child in children {
                let Some(tag) = child.get("tag").and_then(Value::as_str) else {
                    continue;
                };
                let value = plain_ttlv(child);
                match by_tag.iter_mut().find(|(t, _)| *t == tag) {
                    Some((_, values)) => values.push(value),
                    None => by_tag.push((tag, vec![value])),
                }
            }
            let object = by_tag
                .into_iter()
                .map(|(tag, mut values)| {
                    let value = if values.len() == 1 {
                        values.remove(0)
                    } else {
                        Value::Array(values)
                    };
                    (tag.to_owned(), value)
                })
                .collect();
            Value::Object(object)
        }
        (_, Some(v)) => v.clone(),
        _ => node.clone(),
    }
}

/// Attributes that may have several instances (`Attribute`: vendor attributes, user tags among
/// them): always arrays in [`plain_attributes`].
fn repeated(tag: &str) -> bool {
    matches!(
        tag,
        "Link" | "Name" | "Attribute" | "VendorAttribute" | "ObjectGroup" | "AlternativeName"
    )
}

/// An `Attributes` structure (JSON TTLV) as an object of attribute name to value; the
/// attributes that may have several instances are arrays.
pub fn plain_attributes(tree: &Value) -> Value {
    let mut plain = plain_ttlv(tree);
    if let Value::Object(object) = &mut plain {
        for (tag, value) in object.iter_mut() {
            if repeated(tag) && !value.is_array() {
                *value = Value::Array(vec![value.take()]);
            }
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn client_errors_are_classified() {
        let refused = anyhow::Error::new(ClientError::Server {
            status: 404,
            message: "no such object".into(),
        })
        .context("getting the key");
        assert_eq!(classify(&refused), ErrorKind::Server);
        let operation = anyhow::Error::new(ClientError::Operation {
            reason: "ItemNotFound".into(),
            message: String::new(),
        });
        assert_eq!(classify(&operation), ErrorKind::Server);
        let decode = anyhow::Error::new(ClientError::Unexpected("?".into()));
        assert_eq!(classify(&decode), ErrorKind::Protocol);
        let config = anyhow::Error::new(ClientError::Config("bad".into()));
        assert_eq!(classify(&config), ErrorKind::Local);
    }

    #[test]
    fn marked_and_local_errors_are_classified() {
        assert_eq!(classify(&usage("give a FILE")), ErrorKind::Usage);
        assert_eq!(
            classify(&network("down").context("bootstrap")),
            ErrorKind::Network
        );
        assert_eq!(classify(&refused("no")), ErrorKind::Server);
        assert_eq!(classify(&invalid("bad signature")), ErrorKind::Invalid);
        let io = std::fs::read("/nonexistent/ckms-test").unwrap_err();
        let e = anyhow::Error::new(io).context("cannot read /nonexistent/ckms-test");
        assert_eq!(
            message(&e),
            "cannot read /nonexistent/ckms-test: No such file or directory (os error 2)"
        );
        let io = std::fs::read("/nonexistent/ckms-test").unwrap_err();
        assert_eq!(
            classify(&anyhow::Error::new(io).context("cannot read")),
            ErrorKind::Local
        );
        assert_eq!(classify(&anyhow::anyhow!("plain")), ErrorKind::Local);
        for (kind, code) in [
            (ErrorKind::Usage, 2),
            (ErrorKind::Server, 3),
            (ErrorKind::Network, 4),
            (ErrorKind::Local, 1),
        ] {
            assert_eq!(kind.exit_code(), code);
        }
    }

    #[test]
    fn attributes_become_plain_json() {
        let tree = json!({"tag": "Attributes", "type": "Structure", "value": [
            {"tag": "CryptographicAlgorithm", "type": "Enumeration", "value": "AES"},
            {"tag": "CryptographicLength", "type": "Integer", "value": 256},
            {"tag": "Link", "type": "Structure", "value": [
                {"tag": "LinkType", "type": "Enumeration", "value": "PublicKeyLink"},
                {"tag": "LinkedObjectIdentifier", "type": "TextString", "value": "pk"}
            ]}
        ]});
        assert_eq!(
            plain_attributes(&tree),
            json!({
                "CryptographicAlgorithm": "AES",
                "CryptographicLength": 256,
                "Link": [{"LinkType": "PublicKeyLink", "LinkedObjectIdentifier": "pk"}]
            })
        );
    }
}
