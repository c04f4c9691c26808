//! The OpenAPI 3.1 description of every HTTP route (`GET /openapi.json`) and the Swagger UI
//! that reads it (`GET /swagger-ui/`, files compiled in: nothing is downloaded).
//!
//! The functions below only carry the description of the handlers of [`crate::http`]; a test
//! (`tests/operations_http.rs`) checks that each documented route answers on a real server.
#![allow(dead_code)]

use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "kms-server",
        description = "KMIP key management server. The KMIP routes take and answer TTLV (JSON \
                       TTLV as Cosmian's clients send it, binary TTLV, or the OASIS XML \
                       encoding); the other routes are plain JSON. With authentication \
                       configured, the KMIP and access routes need a bearer token (a JWT or \
                       the API token) or a TLS client certificate.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        kmip_2_1,
        kmip,
        access_grant,
        access_revoke,
        access_list,
        access_owned,
        objects_owned,
        access_obtained,
        new_database,
        rotate_database_secret,
        version,
        health,
        server_info,
        metrics
    ),
    components(schemas(crate::http::ServerInfo, AccessRequest, Grant, Owned, Obtained, Health, Success)),
    modifiers(&BearerAuth),
    tags(
        (name = "KMIP", description = "KMIP operations in TTLV"),
        (name = "access", description = "Rights granted on objects"),
        (name = "databases", description = "Per-tenant encrypted databases (sqlite-enc)"),
        (name = "operations", description = "Health, version, metrics, server information")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document, built once.
pub fn document_json() -> &'static str {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_pretty_json().unwrap_or_default())
}

/// `GET /openapi.json`.
pub async fn document() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
        .into_response()
}

/// The Swagger UI at `/swagger-ui/`, reading `/openapi.json`.
pub fn swagger_ui<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    utoipa_swagger_ui::SwaggerUi::new("/swagger-ui")
        .config(utoipa_swagger_ui::Config::from("/openapi.json"))
        .into()
}

/// The body of `/access/grant` and `/access/revoke`.
#[derive(utoipa::ToSchema)]
struct AccessRequest {
    /// The object.
    unique_identifier: String,
    /// Who receives (or loses) the rights; `*` is every user.
    user_id: String,
    /// KMIP operation names in lower case: `get`, `encrypt`, `decrypt`, ...
    operation_types: Vec<String>,
}

/// One user's rights on an object.
#[derive(utoipa::ToSchema)]
struct Grant {
    user_id: String,
    operations: Vec<String>,
}

/// An object the caller owns.
#[derive(utoipa::ToSchema)]
struct Owned {
    object_id: String,
    /// KMIP state: PreActive, Active, Deactivated, Compromised, Destroyed, ...
    state: String,
    /// ObjectType, CryptographicAlgorithm, CryptographicLength.
    attributes: std::collections::BTreeMap<String, String>,
    is_wrapped: bool,
}

/// An object others granted the caller rights on.
#[derive(utoipa::ToSchema)]
struct Obtained {
    object_id: String,
    owner_id: String,
    state: String,
    operations: Vec<String>,
    is_wrapped: bool,
}

/// The answer of `/health`.
#[derive(utoipa::ToSchema)]
struct Health {
    /// `ok`, or `unavailable` (with the database kind and the error).
    status: String,
    database: Option<String>,
    error: Option<String>,
}

/// A change that succeeded.
#[derive(utoipa::ToSchema)]
struct Success {
    success: String,
}

#[utoipa::path(
    post, path = "/kmip/2_1", tag = "KMIP",
    description = "One KMIP operation (`{\"tag\": \"Encrypt\", ...}`) or a RequestMessage, in \
                   JSON TTLV; answers the operation's response (or a ResponseMessage) in JSON \
                   TTLV, or an error status with a text message.",
    request_body(content = Object, content_type = "application/json",
                 description = "JSON TTLV: {\"tag\", \"type\", \"value\"} trees"),
    responses(
        (status = 200, description = "The response in JSON TTLV", body = Object,
         content_type = "application/json"),
        (status = 400, description = "Not JSON TTLV, or not a valid request"),
        (status = 401, description = "No valid credentials"),
        (status = 403, description = "The caller may not do this on this object"),
        (status = 404, description = "No such object"),
        (status = 413, description = "The body is larger than --max-request-size")
    ),
    security((), ("bearer" = []))
)]
fn kmip_2_1() {}

#[utoipa::path(
    post, path = "/kmip", tag = "KMIP",
    description = "A KMIP RequestMessage of any version (1.0 to 2.1) in binary TTLV \
                   (application/octet-stream), JSON TTLV (application/json) or XML (text/xml); \
                   always answers 200 with a ResponseMessage in the same encoding, failures \
                   being failed batch items.",
    request_body(content(
        (Vec<u8> = "application/octet-stream"),
        (Object = "application/json"),
        (String = "text/xml")
    )),
    responses(
        (status = 200, description = "A ResponseMessage in the request's encoding", content(
            (Vec<u8> = "application/octet-stream"),
            (Object = "application/json"),
            (String = "text/xml")
        )),
        (status = 401, description = "No valid credentials"),
        (status = 413, description = "The body is larger than --max-request-size")
    ),
    security((), ("bearer" = []))
)]
fn kmip() {}

#[utoipa::path(
    post, path = "/access/grant", tag = "access",
    description = "The owner of an object grants rights on it to a user (`*`: every user).",
    request_body = AccessRequest,
    responses(
        (status = 200, body = Success, description = "Granted"),
        (status = 403, description = "The caller does not own the object"),
        (status = 404, description = "No such object")
    ),
    security((), ("bearer" = []))
)]
fn access_grant() {}

#[utoipa::path(
    post, path = "/access/revoke", tag = "access",
    description = "The owner takes rights back.",
    request_body = AccessRequest,
    responses(
        (status = 200, body = Success, description = "Revoked"),
        (status = 403, description = "The caller does not own the object"),
        (status = 404, description = "No such object")
    ),
    security((), ("bearer" = []))
)]
fn access_revoke() {}

#[utoipa::path(
    get, path = "/access/list/{uid}", tag = "access",
    description = "Who may do what on an object; its owner asks.",
    params(("uid" = String, Path, description = "The object's unique identifier")),
    responses(
        (status = 200, body = [Grant], description = "One entry per user"),
        (status = 403, description = "The caller does not own the object"),
        (status = 404, description = "No such object")
    ),
    security((), ("bearer" = []))
)]
fn access_list() {}

#[utoipa::path(
    get, path = "/access/owned", tag = "access",
    description = "The caller's objects.",
    responses((status = 200, body = [Owned], description = "The objects the caller owns")),
    security((), ("bearer" = []))
)]
fn access_owned() {}

#[utoipa::path(
    get, path = "/objects/owned", tag = "access",
    description = "The caller's objects (the same as /access/owned).",
    responses((status = 200, body = [Owned], description = "The objects the caller owns")),
    security((), ("bearer" = []))
)]
fn objects_owned() {}

#[utoipa::path(
    get, path = "/access/obtained", tag = "access",
    description = "The objects others granted the caller rights on.",
    responses((status = 200, body = [Obtained], description = "Objects and their rights")),
    security((), ("bearer" = []))
)]
fn access_obtained() {}

#[utoipa::path(
    post, path = "/new_database", tag = "databases",
    description = "sqlite-enc only: creates an encrypted database and answers its secret, once, \
                   as a JSON string; send it in the `DatabaseSecret` header of every request.",
    responses(
        (status = 200, body = String, description = "The new database's secret"),
        (status = 422, description = "The server does not run on sqlite-enc")
    )
)]
fn new_database() {}

#[utoipa::path(
    post, path = "/rotate_database_secret", tag = "databases",
    description = "sqlite-enc only: re-encrypts the database of the `DatabaseSecret` header \
                   under the secret of the `NewDatabaseSecret` header.",
    params(
        ("DatabaseSecret" = String, Header, description = "The current secret"),
        ("NewDatabaseSecret" = String, Header, description = "The new secret")
    ),
    responses(
        (status = 200, body = Success, description = "Re-encrypted"),
        (status = 401, description = "Unknown or malformed secret")
    )
)]
fn rotate_database_secret() {}

#[utoipa::path(
    get, path = "/version", tag = "operations",
    responses((status = 200, body = String, description = "The version, as a JSON string"))
)]
fn version() {}

#[utoipa::path(
    get, path = "/health", tag = "operations",
    description = "Whether the server and its database answer.",
    responses(
        (status = 200, body = Health, description = "Healthy"),
        (status = 503, body = Health, description = "The database does not answer")
    )
)]
fn health() {}

#[utoipa::path(
    get, path = "/server-info", tag = "operations",
    description = "Version, database kind, FIPS mode, HSM model and enabled features; nothing \
                   secret.",
    responses((status = 200, body = crate::http::ServerInfo, description = "The server"))
)]
fn server_info() {}

#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    description = "Prometheus metrics (text exposition format 0.0.4); absent with \
                   --disable-metrics, and on its own port with --metrics-port.",
    responses(
        (status = 200, body = String, content_type = "text/plain",
         description = "Counters, gauges and histograms")
    )
)]
fn metrics() {}
