//! The log output: text or JSON lines on stdout, written in batches. Formatting a line happens on
//! the request's thread; writing it does not: lines below WARN are appended to a buffer that a
//! thread of its own writes out every [`FLUSH_EVERY`] (or sooner when it grows past
//! [`FLUSH_AT`]), so the access log's line per request costs no system call and no thread
//! wake-up. A WARN or ERROR line is written at once, with everything queued before it, and
//! dropping the [`LogGuard`] at exit writes what remains.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Longest a line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Buffer size that triggers a write at once.
const FLUSH_AT: usize = 256 * 1024;

/// Capacity of the buffer kept from one write-out to the next, at most (see [`Shared::spare`]).
const KEEP: usize = 4 * FLUSH_AT;

#[derive(Default)]
struct Shared {
    buffer: Mutex<(Vec<u8>, bool)>,
    /// The buffer written out last, emptied: swapped in for the next round, so that its pages
    /// are not given back and faulted in again every round (a buffer past glibc's mmap
    /// threshold is its own mapping). Held while writing out: rounds are written in order.
    spare: Mutex<Vec<u8>>,
    wake: Condvar,
}

impl Shared {
    /// Queues `data`; the flushing thread is woken when the buffer is full.
    fn append(&self, data: &[u8]) -> std::io::Result<()> {
        let full = match self.buffer.lock() {
            Ok(mut b) => {
                b.0.extend_from_slice(data);
                b.0.len() >= FLUSH_AT
            }
            Err(_) => return Err(std::io::Error::other("the log buffer is poisoned")),
        };
        if full {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Writes out what is buffered.
    fn flush(&self) {
        let Ok(mut pending) = self.spare.lock() else {
            return;
        };
        match self.buffer.lock() {
            Ok(mut b) => std::mem::swap(&mut b.0, &mut *pending),
            Err(_) => return,
        }
        if !pending.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&pending);
            let _ = out.flush();
        }
        pending.clear();
        if pending.capacity() > KEEP {
            *pending = Vec::new();
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
        self.shared.append(data)?;
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

/// The fields of the access line, one per request (see [`crate::observe`]).
pub struct AccessLine<'a> {
    pub user: &'a str,
    pub method: &'a str,
    pub route: &'a str,
    pub operation: &'a str,
    pub operations: u32,
    pub object: &'a str,
    pub result: &'a str,
    pub status: u16,
    pub duration_ms: f64,
}

/// Where [`write_access_line`] writes, and whether in JSON.
static ACCESS_LINES: OnceLock<(Arc<Shared>, bool)> = OnceLock::new();

/// Has [`write_access_line`] write the access lines straight to `writer`, as [`LineFormat`]
/// without colours (`json` or text) writes them, rather than through tracing's dispatch,
/// field visits and formatter (6.7k instructions a line through them, 3.7k this way, by
/// callgrind). For a process whose
/// only subscriber writes through [`LineFormat`] to `writer` (the binary's): a line written
/// this way reaches no other layer. The filter still decides whether the line is written.
pub fn access_lines_to(writer: &BatchedStdout, json: bool) {
    let _ = ACCESS_LINES.set((writer.0.clone(), json));
}

/// Writes the access line of request `id` as [`access_lines_to`] set up; false when it was not
/// (the caller logs it through tracing).
pub fn write_access_line(id: crate::error::RequestId, line: &AccessLine<'_>) -> bool {
    let Some((shared, json)) = ACCESS_LINES.get() else {
        return false;
    };
    thread_local! {
        static TEXT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    TEXT.with_borrow_mut(|text| {
        text.clear();
        if format_access_line(text, id, line, *json).is_ok() {
            let _ = shared.append(text.as_bytes());
        }
        // A line of a huge user name is not kept for every later one.
        if text.capacity() > 4096 {
            *text = String::new();
        }
    });
    true
}

/// A field of the access line: text, quoted, or a number.
enum AccessField<'a> {
    Text(&'a str),
    Number(u64),
}

/// The access line as [`LineFormat`] writes the event of `crate::observe::access_event`.
pub(crate) fn format_access_line(
    out: &mut String,
    id: crate::error::RequestId,
    line: &AccessLine<'_>,
    json: bool,
) -> std::fmt::Result {
    use AccessField::{Number, Text};
    use std::fmt::Write as _;
    let target = crate::observe::ACCESS_TARGET;
    let fields = [
        ("user", Text(line.user)),
        ("method", Text(line.method)),
        ("route", Text(line.route)),
        ("operation", Text(line.operation)),
        ("operations", Number(u64::from(line.operations))),
        ("object", Text(line.object)),
        ("result", Text(line.result)),
        ("status", Number(u64::from(line.status))),
    ];
    if json {
        out.push_str("{\"timestamp\":\"");
        write_time(&mut tracing_subscriber::fmt::format::Writer::new(out))?;
        out.push_str("\",\"level\":\"INFO\",\"fields\":{\"message\":\"access\"");
        for (name, value) in fields {
            out.push_str(",\"");
            out.push_str(name);
            out.push_str("\":");
            match value {
                Text(s) => json_str(out, s)?,
                Number(n) => write!(out, "{n}")?,
            }
        }
        out.push_str(",\"duration_ms\":");
        if line.duration_ms.is_finite() {
            write!(out, "{}", line.duration_ms)?;
        } else {
            json_str(out, &line.duration_ms.to_string())?;
        }
        writeln!(
            out,
            "}},\"target\":\"{target}\",\"span\":{{\"id\":\"{id}\",\"name\":\"request\"}}}}"
        )
    } else {
        write_time(&mut tracing_subscriber::fmt::format::Writer::new(out))?;
        out.push_str("  INFO request{id=");
        out.push_str(std::str::from_utf8(&id.hex()).map_err(|_| std::fmt::Error)?);
        out.push_str("}: ");
        out.push_str(target);
        out.push_str(": access");
        for (name, value) in fields {
            out.push(' ');
            out.push_str(name);
            out.push('=');
            match value {
                Text(s) => text_str(out, s)?,
                Number(n) => write!(out, "{n}")?,
            }
        }
        writeln!(out, " duration_ms={:?}", line.duration_ms)
    }
}

/// `s` as tracing's text format writes a string field: quoted, escaped as `{:?}` escapes.
fn text_str(w: &mut impl std::fmt::Write, s: &str) -> std::fmt::Result {
    // What `{:?}` writes for a string that needs no escape, without looking at it one
    // character at a time.
    if s.bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
    {
        w.write_char('"')?;
        w.write_str(s)?;
        w.write_char('"')
    } else {
        write!(w, "{s:?}")
    }
}

/// The format of a log line: tracing's `Full` text format or its JSON format, with the request
/// in place of a span. The request's id comes from its record (a task-local, see
/// [`crate::observe`]) as `request{id=...}:` in text and `"span":{"id":...,"name":"request"}` in
/// JSON, as a `request` span would show it, without the cost of a span per request (made,
/// formatted, entered and left on every poll).
pub struct LineFormat {
    pub json: bool,
    pub ansi: bool,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for LineFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use tracing_subscriber::fmt::FormatFields as _;
        let meta = event.metadata();
        let request = crate::observe::current_request_id();
        if self.json {
            writer.write_str("{\"timestamp\":\"")?;
            write_time(&mut writer)?;
            write!(writer, "\",\"level\":\"{}\",\"fields\":{{", meta.level())?;
            let mut fields = JsonFields {
                out: &mut writer,
                first: true,
                result: Ok(()),
            };
            event.record(&mut fields);
            fields.result?;
            writer.write_str("},\"target\":")?;
            json_str(&mut writer, meta.target())?;
            if let Some(id) = request {
                write!(writer, ",\"span\":{{\"id\":\"{id}\",\"name\":\"request\"}}")?;
            }
            writer.write_str("}\n")
        } else {
            write_time(&mut writer)?;
            let level = meta.level();
            if self.ansi {
                let colour = match *level {
                    tracing::Level::ERROR => 31,
                    tracing::Level::WARN => 33,
                    tracing::Level::INFO => 32,
                    tracing::Level::DEBUG => 34,
                    tracing::Level::TRACE => 35,
                };
                write!(writer, " \x1b[{colour}m{level:>5}\x1b[0m ")?;
            } else {
                write!(writer, " {level:>5} ")?;
            }
            if let Some(id) = request {
                write!(writer, "request{{id={id}}}: ")?;
            }
            write!(writer, "{}: ", meta.target())?;
            if !self.ansi && meta.target() == crate::observe::ACCESS_TARGET {
                // The line of every request: its fields written directly, as tracing's own
                // field formatter writes them (which costs a `Debug` escape of every string).
                let mut fields = TextFields {
                    out: &mut writer,
                    first: true,
                    result: Ok(()),
                };
                event.record(&mut fields);
                fields.result?;
            } else {
                ctx.format_fields(writer.by_ref(), event)?;
            }
            writer.write_char('\n')
        }
    }
}

/// The current time as tracing's `SystemTime` writes it (`2026-11-29T09:15:02.123456Z`), the
/// part up to the second formatted once a second on each thread.
fn write_time(w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
    use std::fmt::Write as _;
    use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
    thread_local! {
        static SECOND: std::cell::RefCell<(u64, String)> =
            const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) else {
        return SystemTime.format_time(w);
    };
    SECOND.with_borrow_mut(|(second, prefix)| {
        if *second != now.as_secs() {
            let Some(t) = i64::try_from(now.as_secs())
                .ok()
                .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
                .filter(|t| (0..=9999).contains(&t.year()))
            else {
                return SystemTime.format_time(w);
            };
            prefix.clear();
            write!(
                prefix,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )?;
            *second = now.as_secs();
        }
        w.write_str(prefix)?;
        let mut digits = *b"000000Z";
        let mut micros = now.subsec_micros();
        for d in digits[..6].iter_mut().rev() {
            *d = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        w.write_str(std::str::from_utf8(&digits).map_err(|_| std::fmt::Error)?)
    })
}

/// Writes the fields of an event as `name=value` separated by spaces, the message alone and
/// first, strings quoted and escaped: what tracing-subscriber's default field formatter writes
/// without colours, for the events whose fields are strings, numbers and the message (the
/// access line: see `text_fields_are_written_as_tracing_writes_them`).
struct TextFields<'a, 'w> {
    out: &'a mut tracing_subscriber::fmt::format::Writer<'w>,
    first: bool,
    result: std::fmt::Result,
}

impl TextFields<'_, '_> {
    fn field(
        &mut self,
        field: &tracing::field::Field,
        value: impl FnOnce(&mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result,
    ) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            if !std::mem::take(&mut self.first) {
                self.out.write_char(' ')?;
            }
            let name = field.name();
            if name != "message" {
                self.out
                    .write_str(name.strip_prefix("r#").unwrap_or(name))?;
                self.out.write_char('=')?;
            }
            value(self.out)
        })();
    }
}

impl tracing::field::Visit for TextFields<'_, '_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            return self.record_debug(field, &format_args!("{value}"));
        }
        self.field(field, |w| text_str(w, value));
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.field(field, |w| write!(w, "{value:?}"));
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name().starts_with("log.") {
            return;
        }
        self.field(field, |w| write!(w, "{value:?}"));
    }
}

/// Writes the fields of an event as the members of a JSON object.
struct JsonFields<'a, 'w> {
    out: &'a mut tracing_subscriber::fmt::format::Writer<'w>,
    first: bool,
    result: std::fmt::Result,
}

impl JsonFields<'_, '_> {
    fn member(
        &mut self,
        field: &tracing::field::Field,
        value: impl FnOnce(&mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result,
    ) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            if !std::mem::take(&mut self.first) {
                self.out.write_char(',')?;
            }
            json_str(self.out, field.name())?;
            self.out.write_char(':')?;
            value(self.out)
        })();
    }
}

impl tracing::field::Visit for JsonFields<'_, '_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.member(field, |w| json_str(w, value));
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.member(field, |w| write!(w, "{value}"));
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.member(field, |w| write!(w, "{value}"));
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.member(field, |w| write!(w, "{value}"));
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        if value.is_finite() {
            self.member(field, |w| write!(w, "{value}"));
        } else {
            self.member(field, |w| json_str(w, &value.to_string()));
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.member(field, |w| json_str(w, &format!("{value:?}")));
    }
}

/// `s` as a JSON string.
fn json_str(w: &mut impl std::fmt::Write, s: &str) -> std::fmt::Result {
    w.write_char('"')?;
    let mut rest = s;
    while let Some(i) = rest.find(|c: char| c == '"' || c == '\\' || c < ' ') {
        w.write_str(&rest[..i])?;
        let c = rest[i..].chars().next().unwrap_or(' ');
        match c {
            '"' => w.write_str("\\\"")?,
            '\\' => w.write_str("\\\\")?,
            '\n' => w.write_str("\\n")?,
            '\r' => w.write_str("\\r")?,
            '\t' => w.write_str("\\t")?,
            c => write!(w, "\\u{:04x}", c as u32)?,
        }
        rest = &rest[i + c.len_utf8()..];
    }
    w.write_str(rest)?;
    w.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_is_written_as_tracing_writes_it() {
        use tracing_subscriber::fmt::format::Writer;
        use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
        for _ in 0..3 {
            let (mut ours, mut theirs) = (String::new(), String::new());
            write_time(&mut Writer::new(&mut ours)).unwrap();
            SystemTime
                .format_time(&mut Writer::new(&mut theirs))
                .unwrap();
            // The same second but for a tick of the clock between the two (then again).
            if ours[..19] != theirs[..19] {
                continue;
            }
            assert_eq!(ours.len(), theirs.len(), "{ours} {theirs}");
            assert!(ours <= theirs, "{ours} {theirs}");
            assert_eq!(ours.as_bytes()[19], b'.');
            assert!(ours.ends_with('Z'), "{ours}");
            assert!(ours[20..26].bytes().all(|b| b.is_ascii_digit()), "{ours}");
            // Later in the same second: the prefix comes from the cache.
            std::thread::sleep(std::time::Duration::from_millis(3));
            let mut again = String::new();
            write_time(&mut Writer::new(&mut again)).unwrap();
            assert!(again > ours, "{again} {ours}");
            return;
        }
        panic!("the second changed between the two clocks three times");
    }

    /// The access line's fields come out as tracing-subscriber's own formatter writes them,
    /// strings that need escapes included.
    #[test]
    fn text_fields_are_written_as_tracing_writes_them() {
        use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};
        use tracing_subscriber::layer::SubscriberExt as _;

        type Lines = Arc<Mutex<Vec<(String, String)>>>;
        struct Both(Lines);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Both {
            fn on_event(
                &self,
                event: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                let mut ours = String::new();
                let mut out = Writer::new(&mut ours);
                let mut fields = TextFields {
                    out: &mut out,
                    first: true,
                    result: Ok(()),
                };
                event.record(&mut fields);
                assert!(fields.result.is_ok());
                let mut theirs = String::new();
                event.record(&mut DefaultVisitor::new(Writer::new(&mut theirs), true));
                self.0.lock().unwrap().push((ours, theirs));
            }
        }
        let lines = Lines::default();
        let subscriber = tracing_subscriber::registry().with(Both(lines.clone()));
        tracing::subscriber::with_default(subscriber, || {
            for (user, object) in [
                ("alice", "3f0c-key"),
                ("-", "-"),
                ("a \"quoted\" user\\", "tab\there, line\nbreak"),
                ("ünïcode ✓", "bell\u{7} del\u{7f} 'single'"),
            ] {
                tracing::info!(
                    target: crate::observe::ACCESS_TARGET,
                    user,
                    method = "POST",
                    route = "/kmip/2_1",
                    operation = "Encrypt",
                    operations = 1_usize,
                    object,
                    result = "Success",
                    status = 200_u16,
                    duration_ms = 0.1234_f64,
                    "access"
                );
            }
            tracing::info!(target: crate::observe::ACCESS_TARGET, r#type = "x", duration_ms = 2.0_f64, "access");
        });
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 5);
        for (ours, theirs) in lines.iter() {
            assert_eq!(ours, theirs);
        }
        assert!(
            lines[0]
                .0
                .starts_with("access user=\"alice\" method=\"POST\""),
            "{}",
            lines[0].0
        );
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        json_str(&mut out, "a\"b\\c\nd\u{1}é").unwrap();
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
        let parsed: String = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    }
}
