//! What operators see of the server: one request id per request (in the `X-Request-Id` answer
//! header and in every log line of the request), an access log line per request, and the
//! Prometheus metrics served on `/metrics`.
//!
//! A request runs in the scope of a [`RequestRecord`] (a task-local), which the layers below
//! fill in as they learn who is calling ([`set_user`]) and what ran ([`operation_done`]); the
//! outer layer ([`http_request`], or [`socket_message`] on the KMIP socket) writes the access line
//! and the route's metrics from it. Nothing written here holds key material or a credential:
//! the user name, the operation, the object's identifier, the result reason and the duration.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use axum::response::Response;
use kmip::{KmipEnum, Operation, Tag};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::{KmsError, RequestId};

/// The answer header naming the request.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The latency buckets (seconds) of every histogram: from 50 µs (a cached encrypt) to 10 s.
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// What one request did, filled in while it runs.
pub struct RequestRecord {
    pub id: RequestId,
    access: Mutex<Access>,
}

#[derive(Default)]
struct Access {
    user: Option<String>,
    /// The first operation, and how many ran (a batch runs several).
    operation: Option<&'static str>,
    operations: u32,
    object: Option<String>,
    /// The first failure's reason, or `Success`.
    result: Option<&'static str>,
}

tokio::task_local! {
    static REQUEST: Arc<RequestRecord>;
}

/// The id of the request being served, if any (see [`RequestId::next`]).
pub fn current_request_id() -> Option<RequestId> {
    REQUEST.try_with(|r| r.id).ok()
}

fn with_access(f: impl FnOnce(&mut Access)) {
    let _ = REQUEST.try_with(|r| {
        if let Ok(mut access) = r.access.lock() {
            f(&mut access);
        }
    });
}

/// Records who the request was authenticated as.
pub fn set_user(user: &str) {
    with_access(|a| a.user = Some(user.to_owned()));
}

/// The name of a KMIP operation as a label (`Encrypt`, `Create`).
pub fn operation_name(op: Operation) -> &'static str {
    kmip::enums::enum_domain(Tag::OPERATION)
        .and_then(|d| kmip::enums::enum_name(d, op.to_u32(), true))
        .unwrap_or("Unknown")
}

/// The name of a failure's result reason as a label (`ItemNotFound`).
pub fn reason_name(error: &KmsError) -> &'static str {
    kmip::enums::enum_domain(Tag::RESULT_REASON)
        .and_then(|d| kmip::enums::enum_name(d, error.reason().to_u32(), false))
        .unwrap_or("GeneralFailure")
}

/// Records an operation's outcome: its counter and latency, and the request's access record.
pub fn operation_done<T>(
    op: Operation,
    object: Option<&str>,
    result: &Result<T, KmsError>,
    elapsed: Duration,
) {
    let name = operation_name(op);
    let reason = match result {
        Ok(_) => "Success",
        Err(e) => reason_name(e),
    };
    match (result, SUCCESS.get(op.to_u32() as usize)) {
        // The common case, without a registry lookup.
        (Ok(_), Some(cell)) => {
            let (count, latency) = cell.get_or_init(|| {
                (
                    metrics::counter!("kms_operations_total", "operation" => name, "result" => "Success"),
                    metrics::histogram!("kms_operation_duration_seconds", "operation" => name),
                )
            });
            count.increment(1);
            latency.record(elapsed.as_secs_f64());
        }
        _ => {
            metrics::counter!("kms_operations_total", "operation" => name, "result" => reason)
                .increment(1);
            metrics::histogram!("kms_operation_duration_seconds", "operation" => name)
                .record(elapsed.as_secs_f64());
        }
    }
    with_access(|a| {
        a.operations += 1;
        if a.operation.is_none() {
            a.operation = Some(name);
            a.object = object.map(str::to_owned);
        }
        if a.result.is_none() || (reason != "Success" && a.result == Some("Success")) {
            a.result = Some(reason);
        }
    });
}

/// The metric handles of successful operations, by operation number: looked up in the
/// registry once, then used without a lookup (the registry hashes the labels on every use).
static SUCCESS: [OnceLock<(metrics::Counter, metrics::Histogram)>; 64] =
    [const { OnceLock::new() }; 64];

/// The routes as labels; any other path is `other` (a 404 must not make a new series per path
/// a scanner tries).
const ROUTES: [&str; 17] = [
    "/kmip/2_1",
    "/kmip",
    "/access/grant",
    "/access/revoke",
    "/access/list/{uid}",
    "/access/owned",
    "/objects/owned",
    "/access/obtained",
    "/new_database",
    "/rotate_database_secret",
    "/version",
    "/health",
    "/server-info",
    "/metrics",
    "/openapi.json",
    "/swagger-ui",
    "other",
];

/// The handles of each route's 200 answers (see [`SUCCESS`]).
static ROUTE_OK: [OnceLock<(metrics::Counter, metrics::Histogram)>; ROUTES.len()] =
    [const { OnceLock::new() }; ROUTES.len()];

/// The route of a request as its metrics and access line name it: an index in [`ROUTES`].
#[derive(Clone, Copy)]
pub struct Route(usize);

/// The route of `path` (computed from the path: this runs before routing, and before the
/// request, path included, moves into its handler).
pub fn route(path: &str) -> Route {
    let other = ROUTES.len() - 1;
    if path.starts_with("/swagger-ui") {
        return Route(other - 1);
    }
    if path.starts_with("/access/list/") {
        return Route(4);
    }
    Route(ROUTES.iter().position(|r| *r == path).unwrap_or(other))
}

/// Serves one HTTP request in its record (see the module; log lines name it as a `request` span
/// would, see [`crate::logs::LineFormat`]): `serve` runs it; then the
/// answer gets its `X-Request-Id`, the route its metrics and the log its access line. (A
/// function returning its future rather than an async fn, which would hold `serve` twice: see
/// [`crate::http::App`].)
pub fn http_request<'a, F>(
    route: Route,
    method: &'a str,
    serve: F,
) -> impl std::future::Future<Output = Response> + 'a
where
    F: std::future::Future<Output = Response> + 'a,
{
    use futures_util::FutureExt;
    let start = Instant::now();
    let index = route.0;
    let record = Arc::new(RequestRecord {
        id: RequestId::fresh(),
        access: Mutex::new(Access::default()),
    });
    REQUEST
        .scope(record.clone(), serve)
        .map(move |response| http_done(&record, index, method, start.elapsed(), response))
}

/// What follows an HTTP request's answer (see [`http_request`]).
fn http_done(
    record: &Arc<RequestRecord>,
    index: usize,
    method: &str,
    elapsed: Duration,
    mut response: Response,
) -> Response {
    let route = ROUTES[index];
    if let Ok(value) = HeaderValue::from_bytes(&record.id.hex()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let status = response.status().as_u16();
    if status == 200 {
        let (count, latency) = ROUTE_OK[index].get_or_init(|| {
            (
                metrics::counter!("kms_http_requests_total", "route" => route, "status" => "200"),
                metrics::histogram!("kms_http_request_duration_seconds", "route" => route),
            )
        });
        count.increment(1);
        latency.record(elapsed.as_secs_f64());
    } else {
        metrics::counter!("kms_http_requests_total", "route" => route, "status" => status.to_string())
            .increment(1);
        metrics::histogram!("kms_http_request_duration_seconds", "route" => route)
            .record(elapsed.as_secs_f64());
    }
    // The probes and the scrapes are not accesses to keys: they would drown the log.
    if !matches!(route, "/health" | "/metrics" | "/version") {
        access_line(record, method, route, status, elapsed);
    }
    response
}

/// Runs one KMIP socket message in its own record, then writes its access line.
pub async fn socket_message<F: std::future::Future>(fut: F) -> F::Output {
    let start = Instant::now();
    let record = Arc::new(RequestRecord {
        id: RequestId::fresh(),
        access: Mutex::new(Access::default()),
    });
    let out = REQUEST.scope(record.clone(), fut).await;
    let elapsed = start.elapsed();
    metrics::histogram!("kms_socket_message_duration_seconds").record(elapsed.as_secs_f64());
    access_line(&record, "KMIP", "socket", 0, elapsed);
    out
}

/// The target of the access line, one per request.
pub const ACCESS_TARGET: &str = "kms::access";

fn access_line(
    record: &Arc<RequestRecord>,
    method: &str,
    route: &str,
    status: u16,
    elapsed: Duration,
) {
    if !tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO) {
        return;
    }
    let Ok(access) = record.access.lock() else {
        return;
    };
    let line = crate::logs::AccessLine {
        user: access.user.as_deref().unwrap_or("-"),
        method,
        route,
        operation: access.operation.unwrap_or("-"),
        operations: access.operations,
        object: access.object.as_deref().unwrap_or("-"),
        result: access.result.unwrap_or("-"),
        status,
        duration_ms: elapsed.as_secs_f64() * 1000.0,
    };
    if !crate::logs::write_access_line(record.id, &line) {
        REQUEST.sync_scope(record.clone(), || access_event(&line));
    }
}

/// The access line as a tracing event (what [`crate::logs::write_access_line`] writes
/// directly, in the binary).
pub(crate) fn access_event(line: &crate::logs::AccessLine<'_>) {
    tracing::info!(
        target: ACCESS_TARGET,
        user = line.user,
        method = line.method,
        route = line.route,
        operation = line.operation,
        operations = line.operations,
        object = line.object,
        result = line.result,
        status = line.status,
        duration_ms = line.duration_ms,
        "access"
    );
}

/// One connection open on a listener (`http`, `socket`), counted in
/// `kms_open_connections` while it lives.
pub struct OpenConnection(&'static str);

impl OpenConnection {
    pub fn new(listener: &'static str) -> Self {
        metrics::gauge!("kms_open_connections", "listener" => listener).increment(1.0);
        OpenConnection(listener)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!("kms_open_connections", "listener" => self.0).decrement(1.0);
    }
}

/// How often histogram samples are drained into their buckets (see [`prometheus`]).
const UPKEEP_EVERY: Duration = Duration::from_millis(200);

/// The process's Prometheus recorder, installed on first use (one per process: every server
/// of a test process shares it).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    metrics::gauge!(
                        "kms_build_info",
                        "version" => env!("CARGO_PKG_VERSION"),
                        "fips" => if cfg!(feature = "fips") { "true" } else { "false" },
                    )
                    .set(1.0);
                    let upkeep = handle.clone();
                    // Histograms are drained into their buckets by the upkeep; without the
                    // exporter's own HTTP listener it is ours to run. Until drained, every
                    // sample is kept: at a million a second (batches of encrypts, each timed
                    // twice), draining every 5 s held 40 MB of them; every 200 ms holds about
                    // 2 MB, for the same total work.
                    std::thread::Builder::new()
                        .name("metrics-upkeep".into())
                        .spawn(move || {
                            loop {
                                std::thread::sleep(UPKEEP_EVERY);
                                upkeep.run_upkeep();
                            }
                        })
                        .ok()?;
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics disabled: cannot install the recorder");
                    None
                }
            }
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::logs::{AccessLine, LineFormat, format_access_line};

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The access line the binary writes directly is, but for its time, the line tracing
    /// writes through [`LineFormat`] for [`access_event`], in text and in JSON.
    #[test]
    fn the_direct_access_line_is_the_line_tracing_writes() {
        let record = Arc::new(RequestRecord {
            id: RequestId::fresh(),
            access: Mutex::new(Access::default()),
        });
        let line = |user, object, duration_ms| AccessLine {
            user,
            method: "POST",
            route: "/kmip/2_1",
            operation: "Encrypt",
            operations: 3,
            object,
            result: "Success",
            status: 200,
            duration_ms,
        };
        let lines = [
            line("alice", "3f0c-key", 0.1234),
            line("-", "-", 2.0),
            line("a \"quoted\" user\\", "tab\there, line\nbreak", 1e-7),
            line("ünïcode ✓", "bell\u{7} del\u{7f} 'single'", 12345.678),
            line("x", "y", f64::NAN),
        ];
        for json in [false, true] {
            let written = Lines::default();
            let sink = written.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || sink.clone())
                .with_ansi(false)
                .event_format(LineFormat { json, ansi: false })
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                for line in &lines {
                    REQUEST.sync_scope(record.clone(), || access_event(line));
                }
            });
            let theirs = String::from_utf8(written.0.lock().unwrap().clone()).unwrap();
            let mut ours = String::new();
            for line in &lines {
                format_access_line(&mut ours, record.id, line, json).unwrap();
            }
            // The time (27 characters: 2026-11-29T09:15:02.123456Z) aside.
            let skip = if json { 14 } else { 0 };
            let untimed = |text: &str| -> Vec<String> {
                text.lines()
                    .map(|l| format!("{}{}", &l[..skip], &l[skip + 27..]))
                    .collect()
            };
            assert_eq!(untimed(&ours), untimed(&theirs));
            assert_eq!(untimed(&ours).len(), lines.len());
            assert!(ours.contains(&record.id.to_string()), "{ours}");
        }
    }
}
