//! HTTP routes: `/kmip/2_1` (JSON TTLV), `/kmip` (binary, JSON or XML, always a
//! ResponseMessage), `/version`, `/health`, and the access rights routes (`/access/...`, with
//! Cosmian's JSON shapes).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kmip::model::{
    RequestMessage, RequestPayload, ResponseBatchItem, ResponseHeader, ResponseMessage,
};
use kmip::{DateTime, KmipEnum, Operation, Tag, Ttlv, binary, json, v1, xml};

use crate::error::KmsError;
use crate::kms::{Kms, RequestContext};

/// Shared state of the routes.
pub struct AppState {
    pub kms: Kms,
    /// Longest a request may take before the client is told its outcome is unknown.
    pub request_timeout: std::time::Duration,
    pub default_username: String,
    pub limits: binary::Limits,
    /// Who is calling (JWT, API token, default user).
    pub auth: crate::auth::Authenticator,
    /// What `/server-info` answers.
    pub info: ServerInfo,
    /// Whether `/metrics` is served on this router (not when metrics are off or on their own
    /// port).
    pub metrics_route: bool,
}

/// What `GET /server-info` says of the server: nothing secret, nothing that locates the
/// database.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ServerInfo {
    /// The server's version.
    pub version: &'static str,
    /// The database kind: sqlite, sqlite-enc, postgresql, mysql, redis-findex.
    pub database_type: &'static str,
    /// Whether the server refuses what NIST no longer approves (built with the `fips` feature).
    pub fips_mode: bool,
    /// The HSM model (softhsm2, utimaco, ...), when an HSM is configured.
    pub hsm_model: Option<String>,
    /// Whether stored keys are wrapped by an HSM key (`--key-encryption-key`).
    pub key_encryption_key: bool,
    /// Whether requests must prove who sends them (client certificates, JWT or API token).
    pub authentication: bool,
    /// Whether the HTTP port serves HTTPS.
    pub https: bool,
    /// Whether the KMIP TLS socket is started.
    pub kmip_socket: bool,
    /// Whether `/metrics` is served.
    pub metrics: bool,
    /// The KMIP versions the server speaks.
    pub kmip_versions: Vec<&'static str>,
}

/// The user a request was authenticated as, set by [`authenticate`].
#[derive(Clone)]
pub struct Caller(pub String);

pub fn router(state: Arc<AppState>) -> App {
    let mut routes = Router::new()
        .route("/kmip/2_1", post(kmip_2_1_route))
        .route("/kmip", post(kmip_any_route))
        .route("/access/grant", post(access_grant))
        .route("/access/revoke", post(access_revoke))
        .route("/access/list/{uid}", get(access_list))
        .route("/access/owned", get(access_owned))
        .route("/objects/owned", get(access_owned))
        .route("/access/obtained", get(access_obtained))
        .route("/new_database", post(new_database))
        .route("/rotate_database_secret", post(rotate_database_secret))
        .route("/version", get(version))
        .route("/health", get(health))
        .route("/server-info", get(server_info))
        .route("/openapi.json", get(crate::openapi::document));
    if state.metrics_route {
        routes = routes.route("/metrics", get(metrics));
    }
    let routes = routes
        .with_state(state.clone())
        .merge(crate::openapi::swagger_ui());
    App { state, routes }
}

/// The service of the KMS port: every request goes through [`front`], once, then to its route.
/// The KMIP routes (`POST /kmip/2_1`, `POST /kmip`), nearly all the traffic, are called
/// directly; the others go through the axum router (which also answers the KMIP paths'
/// other methods with a 405, as it does every route's).
///
/// Written as a service rather than as axum middleware around the router: `from_fn` boxes the
/// middleware's future and the router boxes each route's, and an async fn that awaits a future
/// it was handed holds that future twice (as handed, and as awaited), so that nested layers
/// made every encrypt copy about 35 KB of futures (gdb on `memcpy`). Here the layers are
/// functions that return their future ([`crate::observe::http_request`], [`deadline`]), and a
/// box made where the request's future is made ([`front`]) holds it, so that the layers move
/// only a pointer.
#[derive(Clone)]
pub struct App {
    state: Arc<AppState>,
    routes: Router,
}

impl<B> tower::Service<axum::http::Request<B>> for App
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let request = request.map(axum::body::Body::new);
        let state = self.state.clone();
        let routes = self.routes.clone();
        Box::pin(async move { Ok(front(state, routes, request).await) })
    }
}

/// A request body read whole into one buffer sized by its `Content-Length`: a large body is
/// held once, not as the chunks received plus their copy, as axum's `Bytes` does. A body
/// larger than `--max-request-size` is refused with a 413 that names the limit, before it is
/// read when its length is declared. (The handlers read bodies only through it, or through
/// [`read_body`] for the KMIP routes.)
struct WholeBody(Bytes);

impl axum::extract::FromRequest<Arc<AppState>> for WholeBody {
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &Arc<AppState>,
    ) -> Result<Self, Response> {
        read_body(state, request).await.map(WholeBody)
    }
}

/// The body of `request`, read whole (see [`WholeBody`]).
async fn read_body(state: &AppState, request: axum::extract::Request) -> Result<Bytes, Response> {
    let limit = state.limits.max_message_size;
    let refuse = |error: KmsError| error_response(&error, crate::error::RequestId::next());
    let declared = declared_length(request.headers());
    if declared > limit {
        return Err(refuse(KmsError::BodyTooLarge { max: limit }));
    }
    let mut body = request.into_body();
    let mut whole = Vec::with_capacity(declared);
    let mut body = std::pin::Pin::new(&mut body);
    while let Some(frame) =
        std::future::poll_fn(|cx| http_body::Body::poll_frame(body.as_mut(), cx)).await
    {
        let frame = frame.map_err(|e| refuse(KmsError::BodyUnreadable(e.to_string())))?;
        if let Ok(data) = frame.into_data() {
            if whole.len() + data.len() > limit {
                return Err(refuse(KmsError::BodyTooLarge { max: limit }));
            }
            whole.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(whole))
}

/// The request's `Content-Length`, 0 when absent or malformed.
fn declared_length(headers: &HeaderMap) -> usize {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0)
}

/// A body larger than this is large: it takes its share of [`LARGE_BODY_BUDGET`].
const LARGE_BODY: usize = 64 * 1024;
/// Bytes of large request bodies (declared by `Content-Length`) in process at once; a request
/// larger than the budget runs alone. Decoding costs about three times the body, so this bounds
/// what hostile large bodies cost in memory together, whatever their number, while small
/// requests never wait.
const LARGE_BODY_BUDGET: usize = 16 * 1024 * 1024;
static LARGE_BODIES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(LARGE_BODY_BUDGET);

/// Whether a path needs an authenticated caller (and, with `sqlite-enc`, a tenant database).
fn protected(path: &str) -> bool {
    path.starts_with("/kmip") || path.starts_with("/access/") || path == "/objects/owned"
}

/// Every request: named, logged and counted ([`crate::observe::http_request`]), bounded in time
/// ([`deadline`]), and for the protected routes put in its tenant's database ([`tenant`]) and
/// authenticated ([`authenticate`]) before the route runs.
async fn front(state: Arc<AppState>, routes: Router, request: axum::extract::Request) -> Response {
    let route = crate::observe::route(request.uri().path());
    let method = request.method().clone();
    // Large bodies take turns (see LARGE_BODY_BUDGET) before they are read.
    let declared = declared_length(request.headers());
    // A declared body over the limit is refused here, before it takes a turn it would only
    // spend being refused (`read_body` refuses the ones that say nothing of their length).
    if declared > state.limits.max_message_size {
        let error = KmsError::BodyTooLarge {
            max: state.limits.max_message_size,
        };
        // In the request's record, as every answer: its id is the record's.
        return crate::observe::http_request(route, method.as_str(), async {
            error_response(&error, crate::error::RequestId::next())
        })
        .await;
    }
    let turn = if declared > LARGE_BODY {
        let permits = u32::try_from(declared.min(LARGE_BODY_BUDGET)).unwrap_or(u32::MAX);
        LARGE_BODIES.acquire_many(permits).await.ok()
    } else {
        None
    };
    // Boxed where it is made: the combinators around it (deadline, record, map) and this
    // function's own future then hold and move a pointer, not the request's 3.4 KB future.
    let serve = Box::pin(serve(&state, routes, request));
    let response = crate::observe::http_request(
        route,
        method.as_str(),
        deadline(state.request_timeout, serve),
    )
    .await;
    match turn {
        // The answer to a large request is large too: the turn ends when it is sent.
        Some(turn) => response.map(|body| {
            axum::body::Body::new(HeldBody {
                inner: body,
                _turn: turn,
            })
        }),
        None => response,
    }
}

/// A request inside its record and deadline: the protected routes in their tenant's database,
/// authenticated; the others straight to the router.
async fn serve(state: &AppState, routes: Router, request: axum::extract::Request) -> Response {
    if !protected(request.uri().path()) {
        return call(routes, request).await;
    }
    let store = match tenant(state, request.headers()).await {
        Ok(store) => store,
        Err(refused) => return refused,
    };
    match store {
        None => authenticate(state, routes, request).await,
        Some(store) => {
            Box::pin(kms_store::sqlite_enc::scope(
                store,
                authenticate(state, routes, request),
            ))
            .await
        }
    }
}

/// The router's answer to `request`.
async fn call(routes: Router, request: axum::extract::Request) -> Response {
    match tower::ServiceExt::oneshot(routes, request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// The body of the answer to a large request: holds the request's turn among the large bodies
/// until it is sent (or dropped), then gives the request's freed memory back to the system.
struct HeldBody {
    inner: axum::body::Body,
    _turn: tokio::sync::SemaphorePermit<'static>,
}

impl http_body::Body for HeldBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for HeldBody {
    fn drop(&mut self) {
        drop(std::mem::take(&mut self.inner));
        kms_alloc::release_freed();
    }
}

/// A request that takes longer than `timeout` is stuck (a database that stopped answering): the
/// client is told so instead of waiting forever, and told that a change it asked for may have
/// been made, since a write already handed to the database may still commit. (A function
/// returning its future, not an async fn: see [`App`].)
fn deadline(
    timeout: std::time::Duration,
    serve: impl std::future::Future<Output = Response>,
) -> impl std::future::Future<Output = Response> {
    use futures_util::FutureExt;
    tokio::time::timeout(timeout, serve).map(move |outcome| match outcome {
        Ok(response) => response,
        Err(_) => {
            let error = KmsError::OutcomeUnknown {
                seconds: timeout.as_secs_f64(),
            };
            let request_id = crate::error::RequestId::next();
            tracing::warn!(%request_id, error = %error, "request timed out");
            error_response(&error, request_id)
        }
    })
}

/// Finds who is calling before any protected route runs; a request that proves no identity
/// when authentication is configured is answered 401 here.
async fn authenticate(
    state: &AppState,
    routes: Router,
    mut request: axum::extract::Request,
) -> Response {
    let user = if state.auth.enabled() {
        let authorization = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let peer = request
            .extensions()
            .get::<crate::listener::PeerIdentity>()
            .cloned()
            .unwrap_or_default();
        // Boxed: verifying a JWT may fetch keys, a large future every request would carry.
        Box::pin(state.auth.user(&state.kms, &peer, authorization)).await
    } else {
        Ok(state.default_username.clone())
    };
    let user = match user {
        Ok(user) => user,
        Err(error) => {
            let request_id = crate::error::RequestId::next();
            tracing::info!(%request_id, error = %error, "request refused: not authenticated");
            let mut response = error_response(&error, request_id);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
    };
    crate::observe::set_user(&user);
    if request.method() == axum::http::Method::POST {
        match request.uri().path() {
            "/kmip/2_1" => return kmip_2_1(state, user, request).await,
            // Boxed: a whole message's future is large (see `kmip_2_1`).
            "/kmip" => return Box::pin(kmip_any(state, user, request)).await,
            _ => {}
        }
    }
    request.extensions_mut().insert(Caller(user));
    call(routes, request).await
}

/// `GET /server-info`: version, database kind, FIPS mode, HSM model, what is enabled.
pub(crate) async fn server_info(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(&state.info).into_response()
}

/// `GET /metrics`: the Prometheus text exposition of every metric.
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    render_metrics(state.kms.store.as_ref())
}

fn render_metrics(store: &dyn kms_store::ObjectStore) -> Response {
    crate::metered::publish_pool(store);
    match crate::observe::prometheus() {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are disabled").into_response(),
    }
}

/// The router of `--metrics-port`: `/metrics` only.
pub fn metrics_router(store: Arc<dyn kms_store::ObjectStore>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let store = store.clone();
            async move { render_metrics(store.as_ref()) }
        }),
    )
}

/// The answer to a failed single operation: the status and message [`KmsError`] gives.
fn error_response(error: &KmsError, request_id: crate::error::RequestId) -> Response {
    let status =
        StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        error.client_message(request_id),
    )
        .into_response()
}

fn json_response(tree: &Ttlv) -> Response {
    kmip_answer("application/json", json::to_string(tree))
}

/// A KMIP answer of `content_type`: its header value is static, neither checked nor copied
/// on every answer as a `(headers, body)` tuple's is.
fn kmip_answer(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    let mut response = Response::new(body.into());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(content_type),
    );
    response
}

/// `POST /kmip/2_1` as a route of the router, kept for completeness: [`authenticate`] calls
/// [`kmip_2_1`] itself for a POST to this path.
async fn kmip_2_1_route(
    State(state): State<Arc<AppState>>,
    axum::Extension(Caller(user)): axum::Extension<Caller>,
    request: axum::extract::Request,
) -> Response {
    kmip_2_1(&state, user, request).await
}

/// `POST /kmip/2_1`: one operation (`{"tag": "Create", ...}`) or a RequestMessage, in JSON TTLV.
async fn kmip_2_1(state: &AppState, user: String, request: axum::extract::Request) -> Response {
    let body = match read_body(state, request).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let body_len = body.len();
    let mut ctx = state.kms.context(user).with_body_len(body_len);
    let tree = json::from_slice(&body);
    // The body is no longer needed: a large request does not hold it and its tree at once.
    drop(body);
    let tree = match tree {
        Ok(t) => t,
        Err(e) => return error_response(&KmsError::BadJson(e), ctx.request_id),
    };
    if tree.tag == Tag::REQUEST_MESSAGE {
        // Boxed: a whole message's future is large, and most requests are one operation.
        let response = Box::pin(process_tree(state, &ctx.user, tree, body_len)).await;
        return json_response(&response);
    }
    let Some(op) = tree
        .tag
        .as_operation_request()
        .and_then(Operation::from_u32)
    else {
        let error = KmsError::NotAnOperation(tree.tag.to_string());
        return error_response(&error, ctx.request_id);
    };
    let payload = RequestPayload::decode(op, &tree);
    drop(tree);
    let payload = match payload {
        Ok(p) => p,
        Err(e) => {
            let error = KmsError::InvalidMessage(format!("invalid {op:?} request: {e}"));
            return error_response(&error, ctx.request_id);
        }
    };
    match state.kms.dispatch(&mut ctx, payload).await {
        Ok(response) => {
            let mut out = response.encode();
            out.tag = Tag::operation_response(op.to_u32());
            json_response(&out)
        }
        Err(e) => {
            crate::batch::log_failure(&ctx, op, &e);
            error_response(&e, ctx.request_id)
        }
    }
}

/// Processes a RequestMessage tree of any KMIP version; never fails: problems become a failed
/// batch item.
pub(crate) async fn process_tree(
    state: &AppState,
    user: &str,
    tree: Ttlv,
    body_len: usize,
) -> Ttlv {
    let version = v1::message_version(&tree);
    let (major, minor) = version.unwrap_or((2, 1));
    let shaped = if major == 1 {
        v1::request_to_v2(tree)
    } else {
        Ok(tree)
    };
    // The tree is dropped once decoded, before the request runs.
    let request = shaped.and_then(|t| RequestMessage::decode(&t));
    let response = match request {
        Ok(request) => {
            let ctx = state.kms.context(user).with_body_len(body_len);
            state.kms.process_message(ctx, request).await
        }
        Err(e) => invalid_message(major, minor, &KmsError::Codec(e)),
    };
    let encoded = response.into_encoded();
    if major == 1 {
        // Conversion to 1.x drops only what 1.x cannot express; it does not fail on a
        // well-formed response.
        v1::response_to_v1(encoded.clone(), minor).unwrap_or(encoded)
    } else {
        encoded
    }
}

pub(crate) fn invalid_message(major: i32, minor: i32, error: &KmsError) -> ResponseMessage {
    ResponseMessage {
        response_header: ResponseHeader::new(major, minor, DateTime::now(), 1),
        batch_item: vec![ResponseBatchItem::failure(
            None,
            None,
            error.reason(),
            error.to_string(),
        )],
    }
}

#[derive(Clone, Copy)]
enum Encoding {
    Binary,
    Json,
    Xml,
}

/// `POST /kmip` as a route of the router (see [`kmip_2_1_route`]).
async fn kmip_any_route(
    State(state): State<Arc<AppState>>,
    axum::Extension(Caller(user)): axum::Extension<Caller>,
    request: axum::extract::Request,
) -> Response {
    kmip_any(&state, user, request).await
}

/// `POST /kmip`: a RequestMessage as binary TTLV, JSON or XML (by content type); always 200
/// with a ResponseMessage in the same encoding.
async fn kmip_any(state: &AppState, user: String, request: axum::extract::Request) -> Response {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let encoding = if content_type.contains("json") {
        Encoding::Json
    } else if content_type.contains("xml") {
        Encoding::Xml
    } else {
        Encoding::Binary
    };
    let body = match read_body(state, request).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let body_len = body.len();
    let decoded = match encoding {
        Encoding::Binary => binary::decode(&body, &state.limits),
        Encoding::Json => json::from_slice(&body),
        Encoding::Xml => match std::str::from_utf8(&body) {
            Ok(text) => xml::from_str(text),
            Err(_) => Err(kmip::Error::Xml("the body is not UTF-8".into())),
        },
    };
    drop(body);
    let response = match decoded {
        Ok(tree) if tree.tag == Tag::REQUEST_MESSAGE => {
            process_tree(state, &user, tree, body_len).await
        }
        Ok(tree) => invalid_message(
            2,
            1,
            &KmsError::InvalidMessage(format!("expected a RequestMessage, found {}", tree.tag)),
        )
        .encode(),
        Err(e) => invalid_message(2, 1, &KmsError::Codec(e)).encode(),
    };
    match encoding {
        Encoding::Binary => kmip_answer("application/octet-stream", binary::encode(&response)),
        Encoding::Json => json_response(&response),
        Encoding::Xml => kmip_answer("text/xml", xml::to_string(&response)),
    }
}

/// With `sqlite-enc`, the tenant database the request's `DatabaseSecret` (or
/// `KmsDatabaseSecret`) header opens, for the request to run in its scope; a missing,
/// malformed or unknown secret is a 401 that opens and creates nothing. Other backends have
/// none.
async fn tenant(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Arc<kms_store::sqlite::SqliteStore>>, Response> {
    let Some(tenants) = state.kms.store.tenants() else {
        return Ok(None);
    };
    let header = headers
        .get("DatabaseSecret")
        .or_else(|| headers.get("KmsDatabaseSecret"))
        .map(|v| v.to_str().unwrap_or("?"))
        .unwrap_or("");
    let refused = |e: &dyn std::fmt::Display| {
        let error = KmsError::Unauthenticated(e.to_string());
        let request_id = crate::error::RequestId::next();
        tracing::info!(%request_id, error = %error, "request refused: no tenant database");
        error_response(&error, request_id)
    };
    let secret = match kms_store::sqlite_enc::DatabaseSecret::parse(header) {
        Ok(s) => s,
        Err(e) => return Err(refused(&e)),
    };
    match Box::pin(tenants.open(&secret)).await {
        Ok(store) => Ok(Some(store)),
        Err(kms_store::sqlite_enc::OpenError::Secret(e)) => Err(refused(&e)),
        Err(kms_store::sqlite_enc::OpenError::Store(e)) => {
            let error = KmsError::from(e);
            let request_id = crate::error::RequestId::next();
            tracing::warn!(%request_id, error = %error, "tenant database unavailable");
            Err(error_response(&error, request_id))
        }
    }
}

/// `POST /new_database` (`sqlite-enc` only): creates an encrypted database and answers its
/// secret, once, as a JSON string; the server keeps nothing that could recover it.
async fn new_database(State(state): State<Arc<AppState>>) -> Response {
    let request_id = crate::error::RequestId::next();
    let Some(tenants) = state.kms.store.tenants() else {
        let error = KmsError::InvalidRequest(format!(
            "/new_database creates encrypted databases: this server runs on {}; start it with \
             --database-type sqlite-enc",
            state.kms.store.backend()
        ));
        return error_response(&error, request_id);
    };
    match tenants.create().await {
        Ok(secret) => {
            tracing::info!(%request_id, "new encrypted database created");
            (
                [(header::CONTENT_TYPE, "application/json")],
                format!("\"{}\"", secret.as_str()),
            )
                .into_response()
        }
        Err(e) => {
            let error = KmsError::from(e);
            tracing::warn!(%request_id, error = %error, "cannot create an encrypted database");
            error_response(&error, request_id)
        }
    }
}

/// `POST /rotate_database_secret` (`sqlite-enc` only): re-encrypts the tenant database of the
/// `DatabaseSecret` header under the key of the `NewDatabaseSecret` header, which the client
/// chose (so a lost answer loses nothing: repeating the call with the same two headers finishes
/// or confirms it). Holding the current secret is what allows it, as for every request.
async fn rotate_database_secret(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let request_id = crate::error::RequestId::next();
    let Some(tenants) = state.kms.store.tenants() else {
        let error = KmsError::InvalidRequest(format!(
            "/rotate_database_secret re-encrypts encrypted databases: this server runs on {}",
            state.kms.store.backend()
        ));
        return error_response(&error, request_id);
    };
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("?"))
            .unwrap_or("")
    };
    let current = header("DatabaseSecret");
    let current = if current.is_empty() {
        header("KmsDatabaseSecret")
    } else {
        current
    };
    let parsed = kms_store::sqlite_enc::DatabaseSecret::parse(current).and_then(|c| {
        kms_store::sqlite_enc::DatabaseSecret::parse(header("NewDatabaseSecret")).map(|n| (c, n))
    });
    let outcome = match parsed {
        Ok((current, new)) => tenants.rotate(&current, &new).await,
        Err(e) => Err(kms_store::sqlite_enc::OpenError::Secret(e)),
    };
    match outcome {
        Ok(()) => {
            tracing::info!(%request_id, "tenant database re-encrypted under a new secret");
            axum::Json(serde_json::json!({
                "success": "the database is encrypted under the new secret; use it from now on"
            }))
            .into_response()
        }
        Err(kms_store::sqlite_enc::OpenError::Secret(e)) => {
            error_response(&KmsError::Unauthenticated(e.to_string()), request_id)
        }
        Err(kms_store::sqlite_enc::OpenError::Store(e)) => {
            let error = KmsError::from(e);
            tracing::warn!(%request_id, error = %error, "re-encryption failed");
            error_response(&error, request_id)
        }
    }
}

/// The version as a JSON string (`"0.3.0"`), as Cosmian's clients read it.
async fn version() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        concat!("\"", env!("CARGO_PKG_VERSION"), "\""),
    )
        .into_response()
}

/// The body of `/access/grant` and `/access/revoke`.
#[derive(serde::Deserialize)]
struct AccessRequest {
    unique_identifier: String,
    user_id: String,
    operation_types: Vec<String>,
}

/// A JSON answer, or the error's status and message.
fn json_or_error<T: serde::Serialize>(
    result: crate::error::KResult<T>,
    ctx: &RequestContext,
) -> Response {
    match result {
        Ok(value) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&value).unwrap_or_default(),
        )
            .into_response(),
        Err(e) => error_response(&e, ctx.request_id),
    }
}

fn access_body(body: &Bytes) -> Result<AccessRequest, KmsError> {
    serde_json::from_slice(body).map_err(|e| {
        KmsError::InvalidRequest(format!(
            "the body must be {{\"unique_identifier\": ..., \"user_id\": ..., \"operation_types\": [...]}}: {}",
            e
        ))
    })
}

/// `POST /access/grant`: the owner grants rights on an object.
async fn access_grant(
    State(state): State<Arc<AppState>>,
    caller: axum::Extension<Caller>,
    WholeBody(body): WholeBody,
) -> Response {
    access_change(&state, caller, &body, true).await
}

/// `POST /access/revoke`: the owner takes rights on an object back.
async fn access_revoke(
    State(state): State<Arc<AppState>>,
    caller: axum::Extension<Caller>,
    WholeBody(body): WholeBody,
) -> Response {
    access_change(&state, caller, &body, false).await
}

async fn access_change(
    state: &AppState,
    axum::Extension(Caller(user)): axum::Extension<Caller>,
    body: &Bytes,
    grant: bool,
) -> Response {
    let ctx = state.kms.context(user);
    let r = match access_body(body) {
        Ok(r) => r,
        Err(e) => return error_response(&e, ctx.request_id),
    };
    let (uid, user, ops) = (&r.unique_identifier, &r.user_id, &r.operation_types);
    let result = if grant {
        state.kms.grant_access(&ctx, uid, user, ops).await
    } else {
        state.kms.revoke_access(&ctx, uid, user, ops).await
    };
    let done = if grant { "granted to" } else { "revoked from" };
    let result = result
        .map(|()| serde_json::json!({ "success": format!("access {done} `{user}` on `{uid}`") }));
    json_or_error(result, &ctx)
}

/// `GET /access/list/{uid}`: who may do what on an object (its owner asks).
async fn access_list(
    State(state): State<Arc<AppState>>,
    axum::Extension(Caller(user)): axum::Extension<Caller>,
    axum::extract::Path(uid): axum::extract::Path<String>,
) -> Response {
    let ctx = state.kms.context(user);
    let result = state.kms.list_access(&ctx, &uid).await.map(|grants| {
        grants
            .into_iter()
            .map(|g| serde_json::json!({ "user_id": g.user, "operations": g.operations }))
            .collect::<Vec<_>>()
    });
    json_or_error(result, &ctx)
}

/// The name of a state in Cosmian's JSON.
fn state_json(state: kmip::State) -> &'static str {
    kmip::enums::enum_domain(Tag::STATE)
        .and_then(|d| kmip::enums::enum_name(d, state.to_u32(), true))
        .unwrap_or("Unknown")
}

/// The summary of an object's attributes in `/access/owned`, named as Cosmian's clients read
/// them.
fn owned_attributes(o: &kms_store::StoredObject) -> serde_json::Value {
    let enum_name = |tag: Tag, value: u32| {
        kmip::enums::enum_domain(tag).and_then(|d| kmip::enums::enum_name(d, value, true))
    };
    let mut out = serde_json::Map::new();
    out.insert(
        "ObjectType".into(),
        enum_name(Tag::OBJECT_TYPE, o.object_type.to_u32()).into(),
    );
    if let Some(a) = o.attributes.cryptographic_algorithm() {
        out.insert(
            "CryptographicAlgorithm".into(),
            enum_name(Tag::CRYPTOGRAPHIC_ALGORITHM, a.to_u32()).into(),
        );
    }
    if let Some(l) = o.attributes.cryptographic_length() {
        out.insert("CryptographicLength".into(), l.into());
    }
    serde_json::Value::Object(out)
}

/// `GET /access/owned` (and `/objects/owned`): the caller's objects.
async fn access_owned(
    State(state): State<Arc<AppState>>,
    axum::Extension(Caller(user)): axum::Extension<Caller>,
) -> Response {
    let ctx = state.kms.context(user);
    let result = state.kms.owned(&ctx).await.map(|objects| {
        objects
            .into_iter()
            .map(|o| {
                serde_json::json!({
                    "object_id": o.uid,
                    "state": state_json(o.state),
                    "attributes": owned_attributes(&o),
                    "is_wrapped": false,
                })
            })
            .collect::<Vec<_>>()
    });
    json_or_error(result, &ctx)
}

/// `GET /access/obtained`: the objects others granted the caller rights on.
async fn access_obtained(
    State(state): State<Arc<AppState>>,
    axum::Extension(Caller(user)): axum::Extension<Caller>,
) -> Response {
    let ctx = state.kms.context(user);
    let result = state.kms.obtained(&ctx).await.map(|objects| {
        objects
            .into_iter()
            .map(|o| {
                serde_json::json!({
                    "object_id": o.uid,
                    "owner_id": o.owner,
                    "state": state_json(o.state),
                    "operations": o.operations,
                    "is_wrapped": false,
                })
            })
            .collect::<Vec<_>>()
    });
    json_or_error(result, &ctx)
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.kms.store.health().await {
        Ok(()) => (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"ok"}"#,
        )
            .into_response(),
        Err(e) => {
            // Anyone may ask: the answer names the kind of database, never its address.
            let error = KmsError::from(e);
            let request_id = crate::error::RequestId::next();
            tracing::warn!(%request_id, error = %error, "health check failed");
            let body = serde_json::json!({
                "status": "unavailable",
                "database": state.kms.store.backend(),
                "error": error.client_message(request_id),
            });
            let status = StatusCode::from_u16(error.http_status())
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
    }
}
