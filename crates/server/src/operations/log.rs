//! Log: a client's message for the server's log. The message is written escaped (`Debug`), so a
//! client cannot forge log lines with newlines or control characters, and cut to 1024 characters.

use kmip::{Tag, Ttlv};

use crate::error::KResult;
use crate::kms::{Kms, RequestContext};

/// Longest client message written to the log, in characters.
const MAX_CHARS: usize = 1024;

pub async fn log(_kms: &Kms, ctx: &mut RequestContext, request: Ttlv) -> KResult<Ttlv> {
    let text = request
        .child(Tag::LOG_MESSAGE)
        .and_then(|m| m.as_str().ok())
        .unwrap_or("");
    tracing::info!(user = %ctx.user, message = ?escaped(text), "client log message");
    Ok(Ttlv::structure(Tag::RESPONSE_PAYLOAD, vec![]))
}

/// The message as it goes to the log: at most [`MAX_CHARS`] characters, to be written with
/// `Debug` so that line breaks and control characters appear escaped.
fn escaped(text: &str) -> String {
    text.chars().take(MAX_CHARS).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_message_cannot_forge_a_log_line() {
        let forged = "hello\n2026-01-01T00:00:00Z  INFO kms: user admin destroyed every key\r";
        let logged = format!("{:?}", super::escaped(forged));
        assert!(!logged.contains('\n') && !logged.contains('\r'), "{logged}");
        assert!(logged.contains("\\n"), "{logged}");
        assert_eq!(super::escaped(&"x".repeat(5000)).len(), super::MAX_CHARS);
    }
}
