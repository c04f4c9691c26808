//! Server configuration: command-line flags, environment variables and `kms.toml`, merged once
//! at start-up into a validated [`Config`]. Precedence: flag > environment > file > default.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use serde::Deserialize;

/// Raw command line (each flag also readable from its environment variable). No `Debug`: it
/// holds passwords and database URLs as given.
#[derive(Parser, Default)]
#[command(name = "kms-server", version, about = "KMIP key management server")]
pub struct Args {
    /// Configuration file (TOML).
    #[arg(long = "config", short = 'c', env = "KMS_CONF")]
    pub config: Option<PathBuf>,

    /// Database type: sqlite (default), postgresql, mysql or redis-findex.
    #[arg(long, env = "KMS_DATABASE_TYPE")]
    pub database_type: Option<String>,

    /// Database URL (postgresql, mysql, redis-findex); it may hold a password.
    #[arg(long, env = "KMS_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Directory of the SQLite database (default ./sqlite-data).
    #[arg(long, env = "KMS_SQLITE_PATH")]
    pub sqlite_path: Option<PathBuf>,

    /// Most connections to the database (PostgreSQL, MySQL).
    #[arg(long, env = "KMS_DATABASE_POOL_SIZE")]
    pub database_pool_size: Option<usize>,

    /// redis-findex: the password the keys sealing Redis data and index are derived from
    /// (Argon2id). Losing it loses every object.
    #[arg(long, env = "KMS_REDIS_MASTER_PASSWORD", hide_env_values = true)]
    pub redis_master_password: Option<String>,

    /// redis-findex: change the master password: this server re-encrypts everything under
    /// this one while it serves; then restart every server with it as --redis-master-password.
    #[arg(long, env = "KMS_REDIS_NEW_MASTER_PASSWORD", hide_env_values = true)]
    pub redis_new_master_password: Option<String>,

    /// redis-findex: a public label of the index; changing it re-keys the index at start.
    #[arg(long, env = "KMS_REDIS_FINDEX_LABEL")]
    pub redis_findex_label: Option<String>,

    /// redis-findex: prefix of every Redis key (default kms), for several deployments on one
    /// Redis.
    #[arg(long, env = "KMS_REDIS_KEY_PREFIX")]
    pub redis_key_prefix: Option<String>,

    /// mysql: a PKCS#12 file (client certificate and key) authenticating the server to
    /// MySQL/MariaDB over TLS.
    #[arg(long, env = "KMS_MYSQL_USER_CERT_FILE")]
    pub mysql_user_cert_file: Option<PathBuf>,

    /// mysql: the password of --mysql-user-cert-file.
    #[arg(long, env = "KMS_MYSQL_USER_CERT_PASSWORD", hide_env_values = true)]
    pub mysql_user_cert_password: Option<String>,

    /// Delete every object and its tags at start-up (loudly logged).
    #[arg(long, alias = "clear-database", env = "KMS_CLEANUP_ON_STARTUP")]
    pub cleanup_on_startup: bool,

    /// Address to listen on (default 0.0.0.0).
    #[arg(long, env = "KMS_HOSTNAME")]
    pub hostname: Option<String>,

    /// Port to listen on (default 9998).
    #[arg(long, env = "KMS_PORT")]
    pub port: Option<u16>,

    /// User name when no authentication is configured (default admin).
    #[arg(long, env = "KMS_DEFAULT_USERNAME")]
    pub default_username: Option<String>,

    /// Issuer of the JWTs of an OpenID Connect identity provider (repeat, or separate with
    /// commas, for several providers); a JWT is accepted from these issuers only.
    #[arg(long, env = "KMS_JWT_ISSUER_URI", value_delimiter = ',')]
    pub jwt_issuer_uri: Option<Vec<String>>,

    /// JWKS address of each issuer, in the same order (default: discovered from the issuer's
    /// `.well-known/openid-configuration`).
    #[arg(long, env = "KMS_JWKS_URI", value_delimiter = ',')]
    pub jwks_uri: Option<Vec<String>>,

    /// Audience (`aud`) each issuer's tokens must name, in the same order; one value applies to
    /// every issuer (default: not checked).
    #[arg(long, env = "KMS_JWT_AUDIENCE", value_delimiter = ',')]
    pub jwt_audience: Option<Vec<String>>,

    /// Identifier of a symmetric key stored in the KMS whose value, in base64, is the API token:
    /// a bearer token equal to it authenticates as the default user.
    #[arg(long, env = "KMS_API_TOKEN_ID")]
    pub api_token_id: Option<String>,

    /// Every caller is the default user, whatever it sends (a single-user deployment behind a
    /// trusted proxy).
    #[arg(long, env = "KMS_FORCE_DEFAULT_USERNAME")]
    pub force_default_username: bool,

    /// Only these users (comma-separated) may create, register or import objects; the others
    /// work with what is granted to them. Default: every user may.
    #[arg(long, env = "KMS_PRIVILEGED_USERS", value_delimiter = ',')]
    pub privileged_users: Option<Vec<String>>,

    /// HSM model: softhsm2, utimaco, proteccio, or other (with --hsm-library).
    #[arg(long, env = "KMS_HSM_MODEL")]
    pub hsm_model: Option<String>,

    /// PKCS#11 library of the HSM (default: the usual path of --hsm-model).
    #[arg(long, env = "KMS_HSM_LIBRARY")]
    pub hsm_library: Option<PathBuf>,

    /// HSM slot to use; repeat for several, each paired in order with a --hsm-password.
    #[arg(long, env = "KMS_HSM_SLOT", value_delimiter = ',')]
    pub hsm_slot: Option<Vec<u64>>,

    /// User PIN of each --hsm-slot, in the same order (repeat the flag).
    #[arg(long, env = "KMS_HSM_PASSWORD", hide_env_values = true)]
    pub hsm_password: Option<Vec<String>>,

    /// Users who may create and destroy HSM keys (comma-separated or repeated); other users
    /// need grants on them.
    #[arg(long, env = "KMS_HSM_ADMIN", value_delimiter = ',')]
    pub hsm_admin: Option<Vec<String>>,

    /// Key that wraps every key the KMS stores: hsm::<slot>::<label> (an AES key in the HSM).
    #[arg(long, env = "KMS_KEY_ENCRYPTION_KEY")]
    pub key_encryption_key: Option<String>,

    /// Seconds an unwrapped key stays in memory after use (default 60; 0 keeps none).
    #[arg(long, env = "KMS_UNWRAPPED_KEY_CACHE_SECONDS")]
    pub unwrapped_key_cache_seconds: Option<u64>,

    /// Serve KMIP over a TLS socket too (binary TTLV, client certificates required): needs
    /// --https-p12-file and --authority-cert-file.
    #[arg(long, env = "KMS_SOCKET_SERVER_START")]
    pub socket_server_start: bool,

    /// Port of the KMIP socket (default 5696).
    #[arg(long, env = "KMS_SOCKET_SERVER_PORT")]
    pub socket_server_port: Option<u16>,

    /// Address of the KMIP socket (default 0.0.0.0).
    #[arg(long, env = "KMS_SOCKET_SERVER_HOSTNAME")]
    pub socket_server_hostname: Option<String>,

    /// PKCS#12 file with the certificate and key of the HTTPS port (plain HTTP without it).
    #[arg(long, env = "KMS_HTTPS_P12_FILE")]
    pub https_p12_file: Option<PathBuf>,

    /// PEM bundle of the CAs that client certificates must chain to (HTTPS only): a client
    /// presenting a valid certificate is the user named by its subject CN.
    #[arg(long, env = "KMS_AUTHORITY_CERT_FILE")]
    pub authority_cert_file: Option<PathBuf>,

    /// The user of a client certificate is its email address (subject alternative name, else
    /// subject emailAddress) instead of its subject CN.
    #[arg(long, env = "KMS_CLIENT_CERTIFICATE_EMAIL")]
    pub client_certificate_email: bool,

    /// Password of the PKCS#12 file.
    #[arg(long, env = "KMS_HTTPS_P12_PASSWORD", hide_env_values = true)]
    pub https_p12_password: Option<String>,

    /// Start a TLS bootstrap server that receives the configuration before the KMS starts.
    #[arg(long, env = "KMS_USE_BOOTSTRAP_SERVER")]
    pub use_bootstrap_server: bool,

    /// Port of the bootstrap server (default 9998).
    #[arg(long, env = "KMS_BOOTSTRAP_SERVER_PORT")]
    pub bootstrap_server_port: Option<u16>,

    /// Common name of the bootstrap server's self-signed certificate (default cosmian.kms).
    #[arg(
        long,
        alias = "bootstrap-server-subject",
        env = "KMS_BOOTSTRAP_SERVER_COMMON_NAME"
    )]
    pub bootstrap_server_common_name: Option<String>,

    /// Token every bootstrap request must carry (`Authorization: Bearer TOKEN`). Given without
    /// a value, the server generates one and logs it once. Use it whenever others can reach the
    /// bootstrap port before you do.
    #[arg(
        long,
        env = "KMS_BOOTSTRAP_TOKEN",
        hide_env_values = true,
        num_args = 0..=1,
        default_missing_value = ""
    )]
    pub bootstrap_token: Option<String>,

    /// Put a remote-attestation quote in the bootstrap certificate (confidential VMs only).
    #[arg(long, env = "KMS_ENSURE_RA_TLS")]
    pub ensure_ra_tls: bool,

    /// Most batch items in one request message (default 10000).
    #[arg(long, env = "KMS_MAX_BATCH_ITEMS")]
    pub max_batch_items: Option<usize>,

    /// Most bytes of responses one request may produce, checked before generating them where
    /// the size is known (default 67108864, 64 MiB).
    #[arg(long, env = "KMS_MAX_RESPONSE_SIZE")]
    pub max_response_size: Option<usize>,

    /// Most connections open at once on each listener (default 4096).
    #[arg(long, env = "KMS_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Seconds a client has to send a request's headers before its connection is closed
    /// (default 10).
    #[arg(long, env = "KMS_HEADER_READ_TIMEOUT")]
    pub header_read_timeout: Option<u64>,

    /// Seconds a request may take before the client is told its outcome is unknown (default
    /// 120).
    #[arg(long, env = "KMS_REQUEST_TIMEOUT")]
    pub request_timeout: Option<u64>,

    /// Largest accepted request body in bytes (default 64 MiB).
    #[arg(long, env = "KMS_MAX_REQUEST_SIZE")]
    pub max_request_size: Option<usize>,

    /// Seconds the requests in flight have to finish after SIGTERM or SIGINT before the server
    /// exits anyway (default 30).
    #[arg(long, env = "KMS_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout: Option<u64>,

    /// Log format: text (default) or json (one JSON object per line).
    #[arg(long, env = "KMS_LOG_FORMAT")]
    pub log_format: Option<String>,

    /// What to log, in `RUST_LOG` syntax (`info`, `kms_server=debug,kms::access=off`); default
    /// `RUST_LOG`, else info.
    #[arg(long, env = "KMS_LOG_FILTER")]
    pub log_filter: Option<String>,

    /// Do not record metrics (`/metrics` answers 404).
    #[arg(long, env = "KMS_DISABLE_METRICS")]
    pub disable_metrics: bool,

    /// Serve `/metrics` on this port only (same address as --hostname), not on the KMS port.
    #[arg(long, env = "KMS_METRICS_PORT")]
    pub metrics_port: Option<u16>,

    /// Print a complete, commented kms.toml with every setting and its default, and exit.
    #[arg(long)]
    pub print_default_config: bool,
}

/// The `[db]` section of `kms.toml`; accepts snake_case and kebab-case keys.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct DbSection {
    #[serde(alias = "database-type")]
    database_type: Option<String>,
    #[serde(alias = "database-url")]
    database_url: Option<String>,
    #[serde(alias = "sqlite-path")]
    sqlite_path: Option<PathBuf>,
    #[serde(
        alias = "cleanup-on-startup",
        alias = "clear_database",
        alias = "clear-database"
    )]
    cleanup_on_startup: Option<bool>,
    #[serde(alias = "database-pool-size")]
    database_pool_size: Option<usize>,
    #[serde(alias = "redis-master-password")]
    redis_master_password: Option<String>,
    #[serde(alias = "redis-new-master-password")]
    redis_new_master_password: Option<String>,
    #[serde(alias = "redis-findex-label")]
    redis_findex_label: Option<String>,
    #[serde(alias = "redis-key-prefix")]
    redis_key_prefix: Option<String>,
    #[serde(alias = "mysql-user-cert-file")]
    mysql_user_cert_file: Option<PathBuf>,
    #[serde(alias = "mysql-user-cert-password")]
    mysql_user_cert_password: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct BootstrapSection {
    #[serde(alias = "use-bootstrap-server")]
    use_bootstrap_server: Option<bool>,
    #[serde(alias = "bootstrap-server-port")]
    bootstrap_server_port: Option<u16>,
    #[serde(
        alias = "bootstrap-server-common-name",
        alias = "bootstrap_server_subject",
        alias = "bootstrap-server-subject"
    )]
    bootstrap_server_common_name: Option<String>,
    #[serde(alias = "ensure-ra-tls")]
    ensure_ra_tls: Option<bool>,
    #[serde(alias = "bootstrap-token")]
    bootstrap_token: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct HttpSection {
    #[serde(alias = "https-p12-file")]
    https_p12_file: Option<PathBuf>,
    #[serde(alias = "https-p12-password")]
    https_p12_password: Option<String>,
    #[serde(alias = "authority-cert-file")]
    authority_cert_file: Option<PathBuf>,
    #[serde(alias = "client-certificate-email")]
    client_certificate_email: Option<bool>,
    hostname: Option<String>,
    port: Option<u16>,
    #[serde(alias = "max-request-size")]
    max_request_size: Option<usize>,
    #[serde(alias = "max-batch-items")]
    max_batch_items: Option<usize>,
    #[serde(alias = "max-response-size")]
    max_response_size: Option<usize>,
    #[serde(alias = "max-connections")]
    max_connections: Option<usize>,
    #[serde(alias = "header-read-timeout")]
    header_read_timeout: Option<u64>,
    #[serde(alias = "request-timeout")]
    request_timeout: Option<u64>,
    #[serde(alias = "shutdown-timeout")]
    shutdown_timeout: Option<u64>,
}

/// The `[logging]` section of `kms.toml`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct LoggingSection {
    #[serde(alias = "log-format")]
    log_format: Option<String>,
    #[serde(alias = "log-filter")]
    log_filter: Option<String>,
}

/// The `[metrics]` section of `kms.toml`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct MetricsSection {
    #[serde(alias = "disable-metrics")]
    disable_metrics: Option<bool>,
    #[serde(alias = "metrics-port")]
    metrics_port: Option<u16>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct AuthSection {
    #[serde(alias = "jwt-issuer-uri")]
    jwt_issuer_uri: Option<Vec<String>>,
    #[serde(alias = "jwks-uri")]
    jwks_uri: Option<Vec<String>>,
    #[serde(alias = "jwt-audience")]
    jwt_audience: Option<Vec<String>>,
    #[serde(alias = "api-token-id")]
    api_token_id: Option<String>,
    #[serde(alias = "force-default-username")]
    force_default_username: Option<bool>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    auth: AuthSection,
    #[serde(default)]
    db: DbSection,
    #[serde(default)]
    http: HttpSection,
    #[serde(default, alias = "bootstrap-server")]
    bootstrap_server: BootstrapSection,
    #[serde(alias = "default-username")]
    default_username: Option<String>,
    #[serde(alias = "privileged-users")]
    privileged_users: Option<Vec<String>>,
    #[serde(default)]
    hsm: HsmSection,
    #[serde(default, alias = "socket-server")]
    socket_server: SocketSection,
    #[serde(alias = "key-encryption-key")]
    key_encryption_key: Option<String>,
    #[serde(alias = "unwrapped-key-cache-seconds")]
    unwrapped_key_cache_seconds: Option<u64>,
    #[serde(default)]
    logging: LoggingSection,
    #[serde(default)]
    metrics: MetricsSection,
}

/// The `[socket_server]` section of `kms.toml`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct SocketSection {
    #[serde(alias = "socket-server-start")]
    socket_server_start: Option<bool>,
    #[serde(alias = "socket-server-port")]
    socket_server_port: Option<u16>,
    #[serde(alias = "socket-server-hostname")]
    socket_server_hostname: Option<String>,
}

/// The `[hsm]` section of `kms.toml`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct HsmSection {
    #[serde(alias = "hsm-model")]
    hsm_model: Option<String>,
    #[serde(alias = "hsm-library")]
    hsm_library: Option<PathBuf>,
    #[serde(alias = "hsm-slot")]
    hsm_slot: Option<Vec<u64>>,
    #[serde(alias = "hsm-password")]
    hsm_password: Option<Vec<String>>,
    #[serde(alias = "hsm-admin")]
    hsm_admin: Option<Vec<String>>,
}

/// Where each flag lives in `kms.toml` (section and key; kebab-case spellings are accepted too).
/// The configuration reference (`docs/configuration.md`) is generated from the flags and this
/// table; a test checks that every flag is listed and every key is one the parser knows.
pub const TOML_KEYS: &[(&str, &str)] = &[
    ("database_type", "[db] database_type"),
    ("database_url", "[db] database_url"),
    ("sqlite_path", "[db] sqlite_path"),
    ("database_pool_size", "[db] database_pool_size"),
    ("redis_master_password", "[db] redis_master_password"),
    (
        "redis_new_master_password",
        "[db] redis_new_master_password",
    ),
    ("redis_findex_label", "[db] redis_findex_label"),
    ("redis_key_prefix", "[db] redis_key_prefix"),
    ("mysql_user_cert_file", "[db] mysql_user_cert_file"),
    ("mysql_user_cert_password", "[db] mysql_user_cert_password"),
    ("cleanup_on_startup", "[db] cleanup_on_startup"),
    ("hostname", "[http] hostname"),
    ("port", "[http] port"),
    ("default_username", "default_username"),
    ("privileged_users", "privileged_users"),
    ("jwt_issuer_uri", "[auth] jwt_issuer_uri"),
    ("jwks_uri", "[auth] jwks_uri"),
    ("jwt_audience", "[auth] jwt_audience"),
    ("api_token_id", "[auth] api_token_id"),
    ("force_default_username", "[auth] force_default_username"),
    ("https_p12_file", "[http] https_p12_file"),
    ("https_p12_password", "[http] https_p12_password"),
    ("authority_cert_file", "[http] authority_cert_file"),
    (
        "client_certificate_email",
        "[http] client_certificate_email",
    ),
    (
        "use_bootstrap_server",
        "[bootstrap_server] use_bootstrap_server",
    ),
    (
        "bootstrap_server_port",
        "[bootstrap_server] bootstrap_server_port",
    ),
    (
        "bootstrap_server_common_name",
        "[bootstrap_server] bootstrap_server_common_name",
    ),
    ("ensure_ra_tls", "[bootstrap_server] ensure_ra_tls"),
    ("bootstrap_token", "[bootstrap_server] bootstrap_token"),
    ("max_request_size", "[http] max_request_size"),
    ("socket_server_start", "[socket_server] socket_server_start"),
    ("socket_server_port", "[socket_server] socket_server_port"),
    (
        "socket_server_hostname",
        "[socket_server] socket_server_hostname",
    ),
    ("hsm_model", "[hsm] hsm_model"),
    ("hsm_library", "[hsm] hsm_library"),
    ("hsm_slot", "[hsm] hsm_slot"),
    ("hsm_password", "[hsm] hsm_password"),
    ("hsm_admin", "[hsm] hsm_admin"),
    ("key_encryption_key", "key_encryption_key"),
    ("unwrapped_key_cache_seconds", "unwrapped_key_cache_seconds"),
    ("max_batch_items", "[http] max_batch_items"),
    ("max_response_size", "[http] max_response_size"),
    ("max_connections", "[http] max_connections"),
    ("header_read_timeout", "[http] header_read_timeout"),
    ("request_timeout", "[http] request_timeout"),
    ("shutdown_timeout", "[http] shutdown_timeout"),
    ("log_format", "[logging] log_format"),
    ("log_filter", "[logging] log_filter"),
    ("disable_metrics", "[metrics] disable_metrics"),
    ("metrics_port", "[metrics] metrics_port"),
];

/// The default of each setting that has one, as a TOML value (`--print-default-config`).
const DEFAULTS: &[(&str, &str)] = &[
    ("database_type", "\"sqlite\""),
    ("sqlite_path", "\"./sqlite-data\""),
    ("database_pool_size", "16"),
    ("redis_key_prefix", "\"kms\""),
    ("cleanup_on_startup", "false"),
    ("hostname", "\"0.0.0.0\""),
    ("port", "9998"),
    ("default_username", "\"admin\""),
    ("force_default_username", "false"),
    ("client_certificate_email", "false"),
    ("use_bootstrap_server", "false"),
    ("bootstrap_server_port", "9998"),
    ("bootstrap_server_common_name", "\"cosmian.kms\""),
    ("ensure_ra_tls", "false"),
    ("max_request_size", "67108864"),
    ("socket_server_start", "false"),
    ("socket_server_port", "5696"),
    ("socket_server_hostname", "\"0.0.0.0\""),
    ("unwrapped_key_cache_seconds", "60"),
    ("max_batch_items", "10000"),
    ("max_response_size", "67108864"),
    ("max_connections", "4096"),
    ("header_read_timeout", "10"),
    ("request_timeout", "120"),
    ("shutdown_timeout", "30"),
    ("log_format", "\"text\""),
    ("disable_metrics", "false"),
];

/// A complete `kms.toml` (`--print-default-config`): every setting the file may hold, in its
/// section, with its meaning, its flag and environment variable, and its default. The settings
/// are commented out, so the file as printed configures nothing but the defaults; uncomment
/// and change what you need.
pub fn default_config_toml() -> String {
    use clap::CommandFactory;
    use std::fmt::Write;
    let command = Args::command();
    let mut out = String::from(
        "# kms.toml: the configuration of kms-server (`kms-server --config kms.toml`, or KMS_CONF).\n\
         # Printed by `kms-server --print-default-config`. Every setting is shown with its default\n\
         # and commented out; a flag or an environment variable overrides the file.\n\
         # Unknown keys are refused. Keys may also be written in kebab-case.\n",
    );
    let mut sections: Vec<&str> = Vec::new();
    for (_, place) in TOML_KEYS {
        let section = place.split_once(' ').map_or("", |(s, _)| s);
        if !sections.contains(&section) {
            sections.push(section);
        }
    }
    // Top-level keys first: TOML puts every key after a [section] header into that section.
    sections.sort_by_key(|s| !s.is_empty());
    for section in sections {
        if !section.is_empty() {
            let _ = write!(out, "\n{section}\n");
        }
        for (id, place) in TOML_KEYS {
            let (s, key) = place.split_once(' ').unwrap_or(("", place));
            if s != section {
                continue;
            }
            let Some(arg) = command.get_arguments().find(|a| a.get_id() == *id) else {
                continue;
            };
            let _ = writeln!(out);
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            for line in wrap(&help, 96) {
                let _ = writeln!(out, "# {line}");
            }
            let env = arg
                .get_env()
                .map(|e| format!(", env {}", e.to_string_lossy()))
                .unwrap_or_default();
            let flag = arg.get_long().unwrap_or(id);
            let _ = writeln!(out, "# (flag --{flag}{env})");
            match DEFAULTS.iter().find(|(k, _)| k == id) {
                Some((_, value)) => {
                    let _ = writeln!(out, "# {key} = {value}");
                }
                None => {
                    let _ = writeln!(out, "# {key} =  (no default)");
                }
            }
        }
    }
    out
}

/// Splits `text` into lines of at most `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// For serde's "unknown field `prot`, expected one of `port`, ..." the closest valid key:
/// "; did you mean `port`?".
fn unknown_key_hint(message: &str) -> String {
    let Some(rest) = message.split("unknown field `").nth(1) else {
        return String::new();
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return String::new();
    };
    let best = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|candidate| (edit_distance(unknown, candidate), candidate))
        .min();
    match best {
        Some((d, candidate)) if d <= 3.max(unknown.len() / 3) => {
            format!("; did you mean `{candidate}`?")
        }
        _ => String::new(),
    }
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb {
                previous
            } else {
                1 + previous.min(current).min(row[j])
            };
            previous = current;
        }
    }
    row[b.len()]
}

/// Pairs issuers with their JWKS addresses and audiences, in order.
fn jwt_providers(
    issuers: Option<Vec<String>>,
    jwks: Option<Vec<String>>,
    audiences: Option<Vec<String>>,
) -> Result<Vec<JwtProvider>, ConfigError> {
    let clean = |v: Option<Vec<String>>| -> Vec<String> {
        v.unwrap_or_default()
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let (issuers, jwks, audiences) = (clean(issuers), clean(jwks), clean(audiences));
    if jwks.len() > issuers.len() || (audiences.len() > 1 && audiences.len() != issuers.len()) {
        return Err(ConfigError::Invalid(format!(
            "{} JWT issuers, {} JWKS addresses and {} audiences: give one JWKS address (or none) per issuer, in the same order, and one audience per issuer or one for all",
            issuers.len(),
            jwks.len(),
            audiences.len()
        )));
    }
    Ok(issuers
        .into_iter()
        .enumerate()
        .map(|(i, issuer)| JwtProvider {
            issuer,
            jwks_uri: jwks.get(i).cloned(),
            audience: audiences
                .get(i)
                .or_else(|| (audiences.len() == 1).then(|| &audiences[0]))
                .cloned(),
        })
        .collect())
}

/// The configuration reference in Markdown, generated from the flags: `docs/configuration.md`.
pub fn reference_markdown() -> String {
    use clap::CommandFactory;
    use std::fmt::Write;
    // Values from this machine's environment never show in the reference.
    let mut command = Args::command().mut_args(|a| a.hide_env_values(true));
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from the server's flags by `KMS_UPDATE_DOCS=1 cargo test -p kms-server \
         --test config_reference`; do not edit by hand. -->\n\n\
         Every setting is a flag, an environment variable, or a key of the TOML file given with \
         `--config` (or `KMS_CONF`). Precedence: flag > environment > file > default. In the \
         file, keys are snake_case in the section shown; the kebab-case spelling of a key is \
         accepted too.\n\n\
         | flag | environment | `kms.toml` | meaning |\n|---|---|---|---|\n",
    );
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        if matches!(id, "help" | "version") {
            continue;
        }
        let mut flag = arg
            .get_long()
            .map(|l| format!("`--{l}`"))
            .unwrap_or_default();
        if let Some(short) = arg.get_short() {
            let _ = write!(flag, ", `-{short}`");
        }
        for alias in arg.get_visible_aliases().into_iter().flatten() {
            let _ = write!(flag, ", `--{alias}`");
        }
        for alias in arg.get_all_aliases().into_iter().flatten() {
            if !flag.contains(&format!("`--{alias}`")) {
                let _ = write!(flag, ", `--{alias}` (alias)");
            }
        }
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_default();
        let toml = TOML_KEYS
            .iter()
            .find(|(k, _)| *k == id)
            .map(|(_, v)| format!("`{v}`"))
            .unwrap_or_else(|| "—".into());
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let _ = writeln!(out, "| {flag} | {env} | {toml} | {help} |");
    }
    let _ = write!(
        out,
        "\n## `kms-server --help`\n\n```text\n{}```\n",
        command.render_long_help()
    );
    out
}

pub use kms_store::{Backend, Secret};

/// The HTTPS identity of the KMS port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Https {
    pub p12_file: PathBuf,
    pub p12_password: Secret,
}

/// The bootstrap server's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bootstrap {
    pub port: u16,
    pub common_name: String,
    pub ensure_ra_tls: bool,
    /// The token bootstrap requests must carry; empty: generate one at start.
    pub token: Option<Secret>,
}

/// One OpenID Connect identity provider whose JWTs are accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtProvider {
    pub issuer: String,
    /// `None`: discovered from the issuer's `.well-known/openid-configuration`.
    pub jwks_uri: Option<String>,
    /// `None`: the audience is not checked.
    pub audience: Option<String>,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// HTTPS from a PKCS#12 file; plain HTTP when `None`.
    pub https: Option<Https>,
    /// Receive the configuration through the bootstrap server first.
    pub bootstrap: Option<Bootstrap>,
    /// Whether the database was chosen explicitly (flag, environment or file), rather than the
    /// default SQLite: in bootstrap mode the default does not count as configured.
    pub database_given: bool,
    pub database: Backend,
    /// The database settings as configured, which bootstrap uploads complete.
    pub database_settings: kms_store::Settings,
    pub cleanup_on_startup: bool,
    pub listen: SocketAddr,
    pub default_username: String,
    /// When set, only these users may create, register or import objects.
    pub privileged_users: Option<Vec<String>>,
    /// Identity providers whose JWTs authenticate users.
    pub jwt_providers: Vec<JwtProvider>,
    /// The symmetric key whose value is the API token.
    pub api_token_id: Option<String>,
    /// Every caller is the default user.
    pub force_default_username: bool,
    /// CAs that client certificates must chain to (HTTPS): the certificate's CN is the user.
    pub authority_cert_file: Option<PathBuf>,
    /// The user of a client certificate is its email address rather than its CN.
    pub client_certificate_email: bool,
    pub max_request_size: usize,
    /// What one request may ask of the server.
    pub limits: crate::kms::Limits,
    /// Connections and header timeouts of every listener.
    pub connections: crate::listener::ConnectionLimits,
    /// Longest a request may take before the client is told its outcome is unknown.
    pub request_timeout: std::time::Duration,
    /// Where the KMIP socket listens, when started.
    pub socket_server: Option<SocketAddr>,
    /// The HSM, when one is configured.
    pub hsm: Option<HsmConfig>,
    /// `--key-encryption-key`: what wraps every stored key.
    pub key_encryption_key: Option<String>,
    /// How long an unwrapped key stays in memory.
    pub unwrapped_key_cache: std::time::Duration,
    /// How long requests in flight have to finish at shutdown.
    pub shutdown_timeout: std::time::Duration,
    pub log_format: LogFormat,
    /// `RUST_LOG`-style filter; `None`: `RUST_LOG`, else info.
    pub log_filter: Option<String>,
    /// Whether metrics are recorded and served.
    pub metrics: bool,
    /// Where `/metrics` is served when not on the KMS port.
    pub metrics_listen: Option<SocketAddr>,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// A PKCS#11 library and the slots to log in to.
#[derive(Clone, Debug)]
pub struct HsmConfig {
    pub model: String,
    pub library: PathBuf,
    /// Slot and user PIN, paired in the order given.
    pub slots: Vec<(u64, Secret)>,
    /// Who may create and destroy HSM objects.
    pub admins: Vec<String>,
}

/// Why the configuration is not usable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path} is not valid: {source}{hint}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
        /// `did you mean ...?` for an unknown key.
        hint: String,
    },
    #[error(
        "`{hostname}:{port}` is not a valid listen address; give an IP address with --hostname"
    )]
    Listen { hostname: String, port: u16 },
    #[error(transparent)]
    Database(#[from] kms_store::BackendError),
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Merges flags, environment (already folded into `args` by clap), file and defaults.
    pub fn from_args(args: Args) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|source| ConfigError::Parse {
                    path: path.clone(),
                    hint: unknown_key_hint(source.message()),
                    source: Box::new(source),
                })?
            }
            None => FileConfig::default(),
        };
        let database_given = args.database_type.is_some()
            || args.sqlite_path.is_some()
            || file.db.database_type.is_some()
            || file.db.sqlite_path.is_some();
        let database_settings = kms_store::Settings {
            kind: args.database_type.or(file.db.database_type),
            url: args.database_url.or(file.db.database_url).map(Secret::new),
            sqlite_dir: args.sqlite_path.or(file.db.sqlite_path),
            pool_size: args.database_pool_size.or(file.db.database_pool_size),
            redis_master_password: args
                .redis_master_password
                .or(file.db.redis_master_password)
                .map(Secret::new),
            redis_new_master_password: args
                .redis_new_master_password
                .or(file.db.redis_new_master_password)
                .map(Secret::new),
            redis_findex_label: args.redis_findex_label.or(file.db.redis_findex_label),
            redis_key_prefix: args.redis_key_prefix.or(file.db.redis_key_prefix),
            mysql_user_cert_file: args.mysql_user_cert_file.or(file.db.mysql_user_cert_file),
            mysql_user_cert_password: args
                .mysql_user_cert_password
                .or(file.db.mysql_user_cert_password)
                .map(Secret::new),
        };
        let database = Backend::from_settings(database_settings.clone())?;
        let socket_server = if args.socket_server_start
            || file.socket_server.socket_server_start.unwrap_or(false)
        {
            let host = args
                .socket_server_hostname
                .or(file.socket_server.socket_server_hostname)
                .unwrap_or_else(|| "0.0.0.0".into());
            let port = args
                .socket_server_port
                .or(file.socket_server.socket_server_port)
                .unwrap_or(5696);
            Some(
                format!("{host}:{port}")
                    .parse::<SocketAddr>()
                    .map_err(|_| ConfigError::Listen {
                        hostname: host.clone(),
                        port,
                    })?,
            )
        } else {
            None
        };
        let hsm = hsm_config(
            args.hsm_model.or(file.hsm.hsm_model),
            args.hsm_library.or(file.hsm.hsm_library),
            args.hsm_slot.or(file.hsm.hsm_slot).unwrap_or_default(),
            args.hsm_password
                .or(file.hsm.hsm_password)
                .unwrap_or_default(),
            args.hsm_admin.or(file.hsm.hsm_admin).unwrap_or_default(),
        )?;
        let key_encryption_key = args.key_encryption_key.or(file.key_encryption_key);
        if let Some(kek) = &key_encryption_key {
            match kms_hsm::HsmRef::parse(kek) {
                Some(Ok(r))
                    if hsm
                        .as_ref()
                        .is_some_and(|h| h.slots.iter().any(|(s, _)| *s == r.slot)) => {}
                Some(Ok(r)) => {
                    return Err(ConfigError::Invalid(format!(
                        "--key-encryption-key {kek} names HSM slot {}, which is not configured: \
                         add --hsm-model, --hsm-slot {} and its --hsm-password",
                        r.slot, r.slot
                    )));
                }
                Some(Err(e)) => return Err(ConfigError::Invalid(e.to_string())),
                None => {
                    return Err(ConfigError::Invalid(format!(
                        "--key-encryption-key `{kek}` must be an HSM key, hsm::<slot>::<label>"
                    )));
                }
            }
        }
        let unwrapped_key_cache = std::time::Duration::from_secs(
            args.unwrapped_key_cache_seconds
                .or(file.unwrapped_key_cache_seconds)
                .unwrap_or(60),
        );
        let hostname = args
            .hostname
            .or(file.http.hostname)
            .unwrap_or_else(|| "0.0.0.0".into());
        let port = args.port.or(file.http.port).unwrap_or(9998);
        let listen = format!("{hostname}:{port}")
            .parse::<SocketAddr>()
            .or_else(|_| format!("[{hostname}]:{port}").parse::<SocketAddr>())
            .map_err(|_| ConfigError::Listen {
                hostname: hostname.clone(),
                port,
            })?;
        let https = match args.https_p12_file.or(file.http.https_p12_file) {
            Some(p12_file) => Some(Https {
                p12_file,
                p12_password: Secret::new(
                    args.https_p12_password
                        .or(file.http.https_p12_password)
                        .unwrap_or_default(),
                ),
            }),
            None => None,
        };
        let log_format = match args
            .log_format
            .or(file.logging.log_format)
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::Invalid(format!(
                    "--log-format `{other}` is not known: use text or json"
                )));
            }
        };
        let metrics_listen = args
            .metrics_port
            .or(file.metrics.metrics_port)
            .map(|port| SocketAddr::new(listen.ip(), port));
        let b = file.bootstrap_server;
        let bootstrap = (args.use_bootstrap_server || b.use_bootstrap_server.unwrap_or(false))
            .then(|| Bootstrap {
                port: args
                    .bootstrap_server_port
                    .or(b.bootstrap_server_port)
                    .unwrap_or(9998),
                common_name: args
                    .bootstrap_server_common_name
                    .or(b.bootstrap_server_common_name)
                    .unwrap_or_else(|| "cosmian.kms".into()),
                ensure_ra_tls: args.ensure_ra_tls || b.ensure_ra_tls.unwrap_or(false),
                token: args.bootstrap_token.or(b.bootstrap_token).map(Secret::new),
            });
        Ok(Config {
            https,
            bootstrap,
            database_given,
            database,
            database_settings,
            cleanup_on_startup: args.cleanup_on_startup
                || file.db.cleanup_on_startup.unwrap_or(false),
            listen,
            default_username: args
                .default_username
                .or(file.default_username)
                .unwrap_or_else(|| "admin".into()),
            jwt_providers: jwt_providers(
                args.jwt_issuer_uri.or(file.auth.jwt_issuer_uri),
                args.jwks_uri.or(file.auth.jwks_uri),
                args.jwt_audience.or(file.auth.jwt_audience),
            )?,
            api_token_id: args.api_token_id.or(file.auth.api_token_id),
            authority_cert_file: args.authority_cert_file.or(file.http.authority_cert_file),
            client_certificate_email: args.client_certificate_email
                || file.http.client_certificate_email.unwrap_or(false),
            force_default_username: args.force_default_username
                || file.auth.force_default_username.unwrap_or(false),
            privileged_users: args
                .privileged_users
                .or(file.privileged_users)
                .map(|users| {
                    users
                        .into_iter()
                        .map(|u| u.trim().to_owned())
                        .filter(|u| !u.is_empty())
                        .collect()
                }),
            max_request_size: args
                .max_request_size
                .or(file.http.max_request_size)
                .unwrap_or(64 * 1024 * 1024),
            limits: crate::kms::Limits {
                max_batch_items: args
                    .max_batch_items
                    .or(file.http.max_batch_items)
                    .unwrap_or(crate::kms::Limits::default().max_batch_items),
                max_response_size: args
                    .max_response_size
                    .or(file.http.max_response_size)
                    .unwrap_or(crate::kms::Limits::default().max_response_size),
            },
            request_timeout: std::time::Duration::from_secs(
                args.request_timeout
                    .or(file.http.request_timeout)
                    .unwrap_or(120),
            ),
            socket_server,
            hsm,
            key_encryption_key,
            unwrapped_key_cache,
            shutdown_timeout: std::time::Duration::from_secs(
                args.shutdown_timeout
                    .or(file.http.shutdown_timeout)
                    .unwrap_or(30),
            ),
            log_format,
            log_filter: args.log_filter.or(file.logging.log_filter),
            metrics: !(args.disable_metrics || file.metrics.disable_metrics.unwrap_or(false)),
            metrics_listen,
            connections: crate::listener::ConnectionLimits {
                max_connections: args
                    .max_connections
                    .or(file.http.max_connections)
                    .unwrap_or(crate::listener::ConnectionLimits::default().max_connections),
                header_read_timeout: args
                    .header_read_timeout
                    .or(file.http.header_read_timeout)
                    .map(std::time::Duration::from_secs)
                    .unwrap_or(crate::listener::ConnectionLimits::default().header_read_timeout),
            },
        })
    }
}

/// Checks the HSM settings: a model (or a library), slots paired with passwords.
fn hsm_config(
    model: Option<String>,
    library: Option<PathBuf>,
    slots: Vec<u64>,
    passwords: Vec<String>,
    admins: Vec<String>,
) -> Result<Option<HsmConfig>, ConfigError> {
    if model.is_none() && library.is_none() && slots.is_empty() && passwords.is_empty() {
        return Ok(None);
    }
    let model = model.unwrap_or_else(|| "other".into());
    if !["softhsm2", "utimaco", "proteccio", "other"].contains(&model.as_str()) {
        return Err(ConfigError::Invalid(format!(
            "--hsm-model `{model}` is not one of softhsm2, utimaco, proteccio, other"
        )));
    }
    let library = match library.or_else(|| kms_hsm::default_library(&model).map(PathBuf::from)) {
        Some(l) => l,
        None => {
            return Err(ConfigError::Invalid(
                "--hsm-model other needs --hsm-library PATH (the PKCS#11 library)".into(),
            ));
        }
    };
    if slots.is_empty() || slots.len() != passwords.len() {
        return Err(ConfigError::Invalid(format!(
            "give one --hsm-password for each --hsm-slot, in the same order ({} slots, {} \
             passwords)",
            slots.len(),
            passwords.len()
        )));
    }
    Ok(Some(HsmConfig {
        model,
        library,
        slots: slots
            .into_iter()
            .zip(passwords.into_iter().map(Secret::new))
            .collect(),
        admins: admins
            .into_iter()
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::from_args(Args::default()).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9998");
        assert_eq!(
            c.database,
            Backend::Sqlite {
                path: PathBuf::from("./sqlite-data/kms.db")
            }
        );
        assert_eq!(c.default_username, "admin");
    }

    #[test]
    fn file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kms.toml");
        std::fs::write(
            &path,
            "[db]\ndatabase-type = \"sqlite\"\nsqlite_path = \"/tmp/x\"\n[http]\nport = 1234\n",
        )
        .unwrap();
        let c = Config::from_args(Args {
            config: Some(path.clone()),
            ..Args::default()
        })
        .unwrap();
        assert_eq!(c.listen.port(), 1234);
        assert_eq!(
            c.database,
            Backend::Sqlite {
                path: PathBuf::from("/tmp/x/kms.db")
            }
        );
        let c = Config::from_args(Args {
            config: Some(path),
            port: Some(42),
            ..Args::default()
        })
        .unwrap();
        assert_eq!(c.listen.port(), 42, "flag beats file");
    }

    #[test]
    fn privileged_users_from_file_and_flag() {
        assert_eq!(
            Config::from_args(Args::default()).unwrap().privileged_users,
            None
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kms.toml");
        std::fs::write(&path, "privileged-users = [\"alice\", \"bob\"]\n").unwrap();
        let from_file = Config::from_args(Args {
            config: Some(path.clone()),
            ..Args::default()
        })
        .unwrap();
        assert_eq!(
            from_file.privileged_users,
            Some(vec!["alice".into(), "bob".into()])
        );
        use clap::Parser;
        let args =
            Args::try_parse_from(["kms-server", "--privileged-users", "carol, dave"]).unwrap();
        let from_flag = Config::from_args(Args {
            config: Some(path),
            ..args
        })
        .unwrap();
        assert_eq!(
            from_flag.privileged_users,
            Some(vec!["carol".into(), "dave".into()])
        );
    }

    #[test]
    fn database_url_is_secret() {
        let c = Config::from_args(Args {
            database_type: Some("postgresql".into()),
            database_url: Some("postgres://kms:hunter2@db/kms".into()),
            ..Args::default()
        })
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        let e = Config::from_args(Args {
            database_type: Some("mysql".into()),
            ..Args::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("--database-url"), "{e}");
    }

    /// Every flag has its place in `kms.toml`, and every key of [`TOML_KEYS`] is one the file
    /// parser knows (a wrong-typed value is a type error, not an unknown field).
    #[test]
    fn toml_keys_cover_every_flag_and_exist() {
        use clap::CommandFactory;
        for arg in Args::command().get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version" | "config" | "print_default_config") {
                continue;
            }
            assert!(
                TOML_KEYS.iter().any(|(k, _)| *k == id),
                "flag `{id}` has no entry in TOML_KEYS"
            );
        }
        for (_, path) in TOML_KEYS {
            let text = match path.split_once(' ') {
                Some((section, key)) => format!("{section}\n{key} = [[]]\n"),
                None => format!("{path} = [[]]\n"),
            };
            let error = toml::from_str::<FileConfig>(&text).unwrap_err().to_string();
            assert!(
                !error.contains("unknown field"),
                "`{path}` is not a key of kms.toml: {error}"
            );
        }
    }

    #[test]
    fn unknown_key_names_the_closest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kms.toml");
        std::fs::write(&path, "[http]\nprot = 9000\n").unwrap();
        let args = Args {
            config: Some(path),
            ..Default::default()
        };
        let error = Config::from_args(args).unwrap_err().to_string();
        assert!(error.contains("`prot`"), "{error}");
        assert!(error.contains("did you mean `port`?"), "{error}");
    }

    /// The printed configuration, every default uncommented, is a valid file that configures
    /// exactly the defaults; every key of the file is in it.
    #[test]
    fn default_config_is_complete_and_valid() {
        let printed = default_config_toml();
        for (id, place) in TOML_KEYS {
            let key = place.rsplit(' ').next().unwrap();
            assert!(printed.contains(&format!("# {key} =")), "{id} missing");
        }
        let uncommented: String = printed
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if !rest.contains("(no default)") && rest.contains(" = ") => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kms.toml");
        std::fs::write(&path, &uncommented).unwrap();
        let from_file = Config::from_args(Args {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        let defaults = Config::from_args(Args::default()).unwrap();
        // The raw settings say what was given; what they resolve to must be the same.
        let mut from_file = from_file;
        from_file.database_settings = defaults.database_settings.clone();
        from_file.database_given = defaults.database_given;
        assert_eq!(format!("{from_file:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn unknown_database() {
        let e = Config::from_args(Args {
            database_type: Some("oracle".into()),
            ..Args::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("unknown database type"), "{e}");
    }
}
