//! The log output: text or JSON lines on stdout, written in batches. Formatting a line happens on
//! the request's thread; writing it does not: lines below WARN are appended to a buffer that a
//! thread of its own writes out every [`FLUSH_EVERY`] (or sooner when it grows past
//! [`FLUSH_AT`]), so the access log's line per request costs no system call and no thread
//! wake-up. A WARN or ERROR line is written at once, with everything queued before it, and
//! dropping the [`LogGuard`] at exit writes what remains.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Longest a line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Buffer size that triggers a write at once.
const FLUSH_AT: usize = 256 * 1024;

#[derive(Default)]
struct Shared {
    buffer: Mutex<(Vec<u8>, bool)>,
    wake: Condvar,
}

impl Shared {
    /// Writes out what is buffered.
    fn flush(&self) {
        let pending = match self.buffer.lock() {
            Ok(mut b) => std::mem::take(&mut b.0),
            Err(_) => return,
        };
        if !pending.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&pending);
            let _ = out.flush();
        }
    }
}

/// What the formatter writes to.
#[derive(Clone)]
pub struct BatchedStdout(Arc<Shared>);

/// Writes out the buffer when dropped (at exit) and stops the flushing thread.
pub struct LogGuard(Arc<Shared>);

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Ok(mut b) = self.0.buffer.lock() {
            b.1 = true;
        }
        self.0.wake.notify_all();
        self.0.flush();
    }
}

/// The writer and its guard; starts the thread that writes out the buffer.
pub fn batched_stdout() -> (BatchedStdout, LogGuard) {
    let shared = Arc::new(Shared::default());
    let flusher = shared.clone();
    let _ = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            loop {
                let stop = match flusher.buffer.lock() {
                    Ok(b) => match flusher.wake.wait_timeout(b, FLUSH_EVERY) {
                        Ok((b, _)) => b.1,
                        Err(_) => true,
                    },
                    Err(_) => true,
                };
                flusher.flush();
                if stop {
                    return;
                }
            }
        });
    (BatchedStdout(shared.clone()), LogGuard(shared))
}

/// One line being written: buffered, or written at once with what precedes it when urgent.
pub struct LineWriter {
    shared: Arc<Shared>,
    urgent: bool,
}

impl Write for LineWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let full = match self.shared.buffer.lock() {
            Ok(mut b) => {
                b.0.extend_from_slice(data);
                b.0.len() >= FLUSH_AT
            }
            Err(_) => return Err(std::io::Error::other("the log buffer is poisoned")),
        };
        if full {
            self.shared.wake.notify_one();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.urgent {
            self.shared.flush();
        }
    }
}

impl<'a> MakeWriter<'a> for BatchedStdout {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            shared: self.0.clone(),
            urgent: true,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LineWriter {
        LineWriter {
            shared: self.0.clone(),
            urgent: *meta.level() <= tracing::Level::WARN,
        }
    }
}
