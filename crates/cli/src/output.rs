//! Output for humans by default, JSON with `--json`.

use serde_json::{Value, json};

pub struct Output {
    pub json: bool,
}

impl Output {
    /// One named value.
    pub fn value(&self, name: &str, value: &str) {
        if self.json {
            println!("{}", json!({ name: value }));
        } else {
            println!("{value}");
        }
    }

    /// A message for humans, or a JSON object for scripts.
    pub fn report(&self, text: &str, data: Value) {
        if self.json {
            println!("{data}");
        } else {
            println!("{text}");
        }
    }

    pub fn error(&self, e: &anyhow::Error) {
        if self.json {
            eprintln!("{}", json!({ "error": format!("{e:#}") }));
        } else {
            eprintln!("error: {e:#}");
        }
    }
}
