//! Start-up warnings that an operator must not miss, read from the real binary's output.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// The server's output up to the line saying it listens.
fn start_output(hostname: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kms-server"))
        .args(["--hostname", hostname, "--port", &free_port().to_string()])
        .arg("--sqlite-path")
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut output = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let done = line.contains("KMS listening");
                output.push_str(&line);
                output.push('\n');
                if done {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        output.contains("KMS listening"),
        "the server started: {output}"
    );
    output
}

#[test]
fn plain_http_on_a_network_address_is_warned_about() {
    let open = start_output("0.0.0.0");
    assert!(
        open.contains("PLAIN HTTP WITHOUT AUTHENTICATION") && open.contains("--https-p12-file"),
        "{open}"
    );
    let loopback = start_output("127.0.0.1");
    assert!(
        !loopback.contains("PLAIN HTTP WITHOUT AUTHENTICATION"),
        "{loopback}"
    );
}
