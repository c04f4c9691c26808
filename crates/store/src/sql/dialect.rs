//! Every SQL statement of the store, written once with `:N` parameter markers, and the
//! differences between PostgreSQL, MySQL/MariaDB and SQLite that the [`Dialect`] renders. The
//! backends only run these statements; none of them writes SQL of its own.

use kmip::{KmipEnum, ObjectType, State};

use super::{Kind, OnZeroRows, Row, SqlValue, Stmt};
use crate::model::{decode_attributes, decode_object, encode_attributes, encode_object};
use crate::{LocateQuery, Result, StoreError, StoredObject};

/// SQL differences between the servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Mysql,
    Sqlite,
}

/// The schema state, as the `context` table records it.
pub const READY: &str = "ready";
pub const UPGRADING: &str = "upgrading";

/// The kinds of the object columns (`uid, object_type, state, owner, object, attributes,
/// revision`), in the order [`Dialect::decode`] reads them.
pub(crate) const OBJECT_KINDS: &[Kind] = &[
    Kind::Text,
    Kind::Int,
    Kind::Int,
    Kind::Text,
    Kind::Bytes,
    Kind::Bytes,
    Kind::Int,
];

pub(crate) fn int(v: u32) -> SqlValue {
    SqlValue::Int(Some(i64::from(v)))
}

pub(crate) fn text(s: &str) -> SqlValue {
    SqlValue::Text(Some(s.to_owned()))
}

impl Dialect {
    /// Renders `:N` markers (1-based) as `$N` (PostgreSQL), `?N` (SQLite) or `?` with the
    /// parameters repeated in order of appearance (MySQL).
    pub fn render(self, sql: &str, params: &[SqlValue]) -> (String, Vec<SqlValue>) {
        self.render_owned(sql, params.to_vec())
    }

    /// [`Dialect::render`], taking the parameters: moved as they are, or for MySQL copied in the
    /// order their markers appear (a marker may repeat).
    fn render_owned(self, sql: &str, params: Vec<SqlValue>) -> (String, Vec<SqlValue>) {
        match self.render_sql(sql) {
            (sql, None) => (sql, params),
            (sql, Some(order)) => {
                let ordered = order
                    .iter()
                    .filter_map(|k| params.get(*k).cloned())
                    .collect();
                (sql, ordered)
            }
        }
    }

    /// The statement's text for this server, and for MySQL the (0-based) parameter of each `?`.
    fn render_sql(self, sql: &str) -> (String, Option<Vec<usize>>) {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(sql.len() + 8);
        let mut order = (self == Dialect::Mysql).then(Vec::new);
        let mut rest = sql;
        while let Some(colon) = rest.find(':') {
            out.push_str(&rest[..colon]);
            let after = &rest[colon + 1..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                out.push(':');
                rest = after;
                continue;
            }
            let n: usize = after[..digits].parse().unwrap_or(0);
            // Writing to a String cannot fail.
            let _ = match self {
                Dialect::Postgres => write!(out, "${n}"),
                Dialect::Sqlite => write!(out, "?{n}"),
                Dialect::Mysql => {
                    out.push('?');
                    if let (Some(k), Some(order)) = (n.checked_sub(1), order.as_mut()) {
                        order.push(k);
                    }
                    Ok(())
                }
            };
            rest = &after[digits..];
        }
        out.push_str(rest);
        (out, order)
    }

    /// One statement, rendered.
    pub fn stmt(
        self,
        sql: &str,
        params: impl Into<Vec<SqlValue>>,
        on_zero_rows: OnZeroRows,
    ) -> Stmt {
        let (sql, params) = self.render_owned(sql, params.into());
        Stmt {
            sql: sql.into(),
            params,
            on_zero_rows,
        }
    }

    /// One statement whose text is already rendered for this dialect, with its parameters in
    /// the order of their markers (so MySQL needs no reordering).
    fn stmt_rendered(
        sql: &'static str,
        params: impl Into<Vec<SqlValue>>,
        on_zero_rows: OnZeroRows,
    ) -> Stmt {
        Stmt {
            sql: sql.into(),
            params: params.into(),
            on_zero_rows,
        }
    }

    /// [`Dialect::create`]'s insert of the object, rendered: written out here rather than
    /// formatted and rendered on every create (`rendered_statements_are_what_rendering_gives`
    /// checks that they are the same).
    fn create_object_sql(self) -> &'static str {
        match self {
            Dialect::Postgres => {
                "INSERT INTO objects (uid, object_type, state, owner, object, attributes, revision) VALUES ($1, $2, $3, $4, $5, $6, 1) ON CONFLICT (uid) DO NOTHING"
            }
            Dialect::Mysql => {
                "INSERT IGNORE INTO objects (uid, object_type, state, owner, object, attributes, revision) VALUES (?, ?, ?, ?, ?, ?, 1)"
            }
            Dialect::Sqlite => {
                "INSERT INTO objects (uid, object_type, state, owner, object, attributes, revision) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1) ON CONFLICT (uid) DO NOTHING"
            }
        }
    }

    /// The insert of one tag, rendered (see [`Dialect::create_object_sql`]).
    fn insert_tag_sql(self) -> &'static str {
        match self {
            Dialect::Postgres => {
                "INSERT INTO tags (uid, tag) VALUES ($1, $2) ON CONFLICT (uid, tag) DO NOTHING"
            }
            Dialect::Mysql => "INSERT IGNORE INTO tags (uid, tag) VALUES (?, ?)",
            Dialect::Sqlite => {
                "INSERT INTO tags (uid, tag) VALUES (?1, ?2) ON CONFLICT (uid, tag) DO NOTHING"
            }
        }
    }

    fn insert_ignore(self, table_and_columns: &str, values: &str, conflict: &str) -> String {
        match self {
            Dialect::Postgres | Dialect::Sqlite => format!(
                "INSERT INTO {table_and_columns} VALUES {values} ON CONFLICT ({conflict}) DO NOTHING"
            ),
            Dialect::Mysql => format!("INSERT IGNORE INTO {table_and_columns} VALUES {values}"),
        }
    }

    /// The schema steps, in order; each is idempotent, so an interrupted upgrade can run them
    /// all again from the start.
    pub fn schema_steps(self) -> Vec<(&'static str, Vec<&'static str>)> {
        match self {
            Dialect::Postgres => vec![
                (
                    "objects and tags",
                    vec![
                        "CREATE TABLE IF NOT EXISTS objects (
                            seq BIGSERIAL PRIMARY KEY,
                            uid TEXT NOT NULL UNIQUE,
                            object_type BIGINT NOT NULL,
                            state BIGINT NOT NULL,
                            owner TEXT NOT NULL,
                            object BYTEA,
                            attributes BYTEA NOT NULL,
                            revision BIGINT NOT NULL DEFAULT 1)",
                        "CREATE TABLE IF NOT EXISTS tags (uid TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (uid, tag))",
                    ],
                ),
                (
                    "locate indexes",
                    vec![
                        "CREATE INDEX IF NOT EXISTS objects_owner_type_state ON objects (owner, object_type, state)",
                        "CREATE INDEX IF NOT EXISTS tags_tag ON tags (tag, uid)",
                    ],
                ),
                (
                    "grants",
                    vec![
                        "CREATE TABLE IF NOT EXISTS grants (uid TEXT NOT NULL, user_id TEXT NOT NULL,
                            operation TEXT NOT NULL, PRIMARY KEY (uid, user_id, operation))",
                        "CREATE INDEX IF NOT EXISTS grants_user ON grants (user_id, uid)",
                    ],
                ),
                (
                    "change log",
                    vec![
                        "CREATE TABLE IF NOT EXISTS change_counter (id INT PRIMARY KEY, seq BIGINT NOT NULL)",
                        "INSERT INTO change_counter (id, seq) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
                        "CREATE TABLE IF NOT EXISTS changes (seq BIGINT PRIMARY KEY, uid TEXT NOT NULL)",
                    ],
                ),
            ],
            Dialect::Mysql => vec![
                (
                    "objects and tags",
                    vec![
                        "CREATE TABLE IF NOT EXISTS objects (
                            seq BIGINT AUTO_INCREMENT PRIMARY KEY,
                            uid VARCHAR(255) NOT NULL UNIQUE,
                            object_type BIGINT NOT NULL,
                            state BIGINT NOT NULL,
                            owner VARCHAR(255) NOT NULL,
                            object LONGBLOB,
                            attributes LONGBLOB NOT NULL,
                            revision BIGINT NOT NULL DEFAULT 1) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                        "CREATE TABLE IF NOT EXISTS tags (uid VARCHAR(255) NOT NULL, tag VARCHAR(255) NOT NULL,
                            PRIMARY KEY (uid, tag)) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                    ],
                ),
                (
                    "locate indexes",
                    vec![
                        "CREATE INDEX objects_owner_type_state ON objects (owner, object_type, state)",
                        "CREATE INDEX tags_tag ON tags (tag, uid)",
                    ],
                ),
                (
                    "grants",
                    vec![
                        "CREATE TABLE IF NOT EXISTS grants (uid VARCHAR(255) NOT NULL, user_id VARCHAR(255) NOT NULL,
                            operation VARCHAR(64) NOT NULL, PRIMARY KEY (uid, user_id, operation))
                            CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                        "CREATE INDEX grants_user ON grants (user_id, uid)",
                    ],
                ),
                (
                    "change log",
                    vec![
                        "CREATE TABLE IF NOT EXISTS change_counter (id INT PRIMARY KEY, seq BIGINT NOT NULL)",
                        "INSERT IGNORE INTO change_counter (id, seq) VALUES (1, 0)",
                        "CREATE TABLE IF NOT EXISTS changes (seq BIGINT PRIMARY KEY, uid VARCHAR(255) NOT NULL)
                            CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                    ],
                ),
            ],
            // `seq` without AUTOINCREMENT: that keeps the highest value ever used in
            // `sqlite_sequence`, one more page written by every commit that creates (a sixteenth
            // of a durable create's pages). A new row still takes the highest `seq` + 1, so
            // `ORDER BY seq` stays creation order; only the number of a newest object destroyed
            // and deleted can come back. Databases made before keep AUTOINCREMENT, to the same
            // effect for the server.
            Dialect::Sqlite => vec![
                (
                    "objects and tags",
                    vec![
                        "CREATE TABLE IF NOT EXISTS objects (
                            seq INTEGER PRIMARY KEY,
                            uid TEXT NOT NULL UNIQUE,
                            object_type INTEGER NOT NULL,
                            state INTEGER NOT NULL,
                            owner TEXT NOT NULL,
                            object BLOB,
                            attributes BLOB NOT NULL,
                            revision INTEGER NOT NULL DEFAULT 1)",
                        "CREATE TABLE IF NOT EXISTS tags (uid TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (uid, tag))",
                    ],
                ),
                (
                    "locate indexes",
                    vec![
                        "CREATE INDEX IF NOT EXISTS objects_owner_type_state ON objects (owner, object_type, state)",
                        "CREATE INDEX IF NOT EXISTS tags_tag ON tags (tag, uid)",
                    ],
                ),
                (
                    "grants",
                    vec![
                        "CREATE TABLE IF NOT EXISTS grants (uid TEXT NOT NULL, user_id TEXT NOT NULL,
                            operation TEXT NOT NULL, PRIMARY KEY (uid, user_id, operation))",
                        "CREATE INDEX IF NOT EXISTS grants_user ON grants (user_id, uid)",
                    ],
                ),
            ],
        }
    }

    /// The table of the schema version and state.
    pub fn context_table(self) -> &'static str {
        match self {
            Dialect::Postgres | Dialect::Sqlite => {
                "CREATE TABLE IF NOT EXISTS context (id BIGINT PRIMARY KEY, version TEXT NOT NULL, state TEXT NOT NULL)"
            }
            Dialect::Mysql => {
                "CREATE TABLE IF NOT EXISTS context (id BIGINT PRIMARY KEY, version VARCHAR(64) NOT NULL, state VARCHAR(16) NOT NULL)"
            }
        }
    }

    /// Reads `(version, state)` from the context table.
    pub const CONTEXT: &'static str = "SELECT version, state FROM context WHERE id = 1";

    /// Records the schema version and state.
    pub fn set_context(self, version: &str, state: &str) -> Stmt {
        let upsert = match self {
            Dialect::Postgres | Dialect::Sqlite => {
                "INSERT INTO context (id, version, state) VALUES (1, :1, :2)
                 ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, state = EXCLUDED.state"
            }
            Dialect::Mysql => {
                "INSERT INTO context (id, version, state) VALUES (1, :1, :2)
                 ON DUPLICATE KEY UPDATE version = VALUES(version), state = VALUES(state)"
            }
        };
        self.stmt(upsert, &[text(version), text(state)], OnZeroRows::Ignore)
    }

    fn tag_inserts(self, o: &StoredObject) -> impl Iterator<Item = Stmt> + '_ {
        let sql = self.insert_tag_sql();
        o.tags
            .iter()
            .map(move |t| Self::stmt_rendered(sql, [text(&o.uid), text(t)], OnZeroRows::Ignore))
    }

    /// Inserts a new object and its tags; zero rows means the uid is taken.
    pub fn create(self, o: &StoredObject) -> Vec<Stmt> {
        let mut stmts = Vec::with_capacity(1 + o.tags.len());
        stmts.push(Self::stmt_rendered(
            self.create_object_sql(),
            [
                text(&o.uid),
                int(o.object_type.to_u32()),
                int(o.state.to_u32()),
                text(&o.owner),
                SqlValue::Bytes(o.object.as_ref().map(encode_object)),
                SqlValue::Bytes(Some(encode_attributes(&o.attributes))),
            ],
            OnZeroRows::AlreadyExists(o.uid.clone()),
        ));
        stmts.extend(self.tag_inserts(o));
        stmts
    }

    /// Replaces an object at the revision it was read, and its tags; zero rows means it is
    /// missing or changed since (see [`Dialect::EXISTS`]).
    pub fn update(self, o: &StoredObject) -> Vec<Stmt> {
        let mut stmts = vec![
            self.stmt(
                "UPDATE objects SET object_type = :2, state = :3, owner = :4, object = :5, attributes = :6,
                 revision = revision + 1 WHERE uid = :1 AND revision = :7",
                [
                    text(&o.uid),
                    int(o.object_type.to_u32()),
                    int(o.state.to_u32()),
                    text(&o.owner),
                    SqlValue::Bytes(o.object.as_ref().map(encode_object)),
                    SqlValue::Bytes(Some(encode_attributes(&o.attributes))),
                    SqlValue::Int(Some(o.revision as i64)),
                ],
                OnZeroRows::Missing(o.uid.clone()),
            ),
            self.stmt(
                "DELETE FROM tags WHERE uid = :1",
                &[text(&o.uid)],
                OnZeroRows::Ignore,
            ),
        ];
        stmts.extend(self.tag_inserts(o));
        stmts
    }

    /// Whether an object exists (to tell a conflict from a missing object).
    pub const EXISTS: &'static str = "SELECT 1 FROM objects WHERE uid = :1";

    /// Removes an object, its tags and its grants.
    pub fn delete(self, uid: &str) -> Vec<Stmt> {
        vec![
            self.stmt(
                "DELETE FROM tags WHERE uid = :1",
                &[text(uid)],
                OnZeroRows::Ignore,
            ),
            self.stmt(
                "DELETE FROM grants WHERE uid = :1",
                &[text(uid)],
                OnZeroRows::Ignore,
            ),
            self.stmt(
                "DELETE FROM objects WHERE uid = :1",
                &[text(uid)],
                OnZeroRows::Missing(uid.to_owned()),
            ),
        ]
    }

    /// Removes every object, tag and grant.
    pub fn clear(self) -> Vec<Stmt> {
        vec![
            self.stmt("DELETE FROM tags", &[], OnZeroRows::Ignore),
            self.stmt("DELETE FROM grants", &[], OnZeroRows::Ignore),
            self.stmt("DELETE FROM objects", &[], OnZeroRows::Ignore),
        ]
    }

    /// Grants each of `operations` on `uid` to `user`.
    pub fn grant(self, uid: &str, user: &str, operations: &[String]) -> Vec<Stmt> {
        let sql = self.insert_ignore(
            "grants (uid, user_id, operation)",
            "(:1, :2, :3)",
            "uid, user_id, operation",
        );
        operations
            .iter()
            .map(|op| self.stmt(&sql, &[text(uid), text(user), text(op)], OnZeroRows::Ignore))
            .collect()
    }

    /// Takes each of `operations` on `uid` back from `user`.
    pub fn revoke_grant(self, uid: &str, user: &str, operations: &[String]) -> Vec<Stmt> {
        operations
            .iter()
            .map(|op| {
                self.stmt(
                    "DELETE FROM grants WHERE uid = :1 AND user_id = :2 AND operation = :3",
                    &[text(uid), text(user), text(op)],
                    OnZeroRows::Ignore,
                )
            })
            .collect()
    }

    /// `(user_id, operation)` rows of the grants on `:1`.
    pub const GRANTS: &'static str =
        "SELECT user_id, operation FROM grants WHERE uid = :1 ORDER BY user_id, operation";

    /// `operation` rows granted on `:1` to `:2` or to every user.
    pub const RIGHTS: &'static str = "SELECT DISTINCT operation FROM grants
         WHERE uid = :1 AND (user_id = :2 OR user_id = '*') ORDER BY operation";

    /// `(uid, owner, state, operation)` rows of the objects `:1` holds rights on without owning
    /// them, in creation order.
    pub const OBTAINED: &'static str = "SELECT o.uid, o.owner, o.state, g.operation
         FROM grants g JOIN objects o ON o.uid = g.uid
         WHERE (g.user_id = :1 OR g.user_id = '*') AND o.owner <> :1
         ORDER BY o.seq, g.operation";

    /// One round trip for a Get: the schema state, the object (if any) and its tags as a JSON
    /// array; the columns are [`Dialect::GET_KINDS`], read by [`Dialect::decode_get`].
    pub fn get(self) -> String {
        let tags_json = match self {
            Dialect::Postgres => "(SELECT json_agg(t.tag)::text FROM tags t WHERE t.uid = o.uid)",
            Dialect::Mysql => "(SELECT JSON_ARRAYAGG(t.tag) FROM tags t WHERE t.uid = o.uid)",
            Dialect::Sqlite => "(SELECT json_group_array(t.tag) FROM tags t WHERE t.uid = o.uid)",
        };
        format!(
            "SELECT c.state, o.uid, o.object_type, o.state, o.owner, o.object, o.attributes, o.revision, {tags_json}
             FROM context c LEFT JOIN objects o ON o.uid = :1 WHERE c.id = 1"
        )
    }

    pub const GET_KINDS: &'static [Kind] = &[
        Kind::Text,
        Kind::Text,
        Kind::Int,
        Kind::Int,
        Kind::Text,
        Kind::Bytes,
        Kind::Bytes,
        Kind::Int,
        Kind::Text,
    ];

    /// The object of a [`Dialect::get`] answer.
    pub fn decode_get(uid: &str, rows: &[Row]) -> Result<Option<StoredObject>> {
        let Some(row) = rows.first() else {
            // No context row: the schema was never set up by this server's migration.
            return Err(StoreError::Upgrading);
        };
        if matches!(row.first(), Some(SqlValue::Text(Some(s))) if s == UPGRADING) {
            return Err(StoreError::Upgrading);
        }
        if matches!(row.get(1), Some(SqlValue::Text(None)) | None) {
            return Ok(None);
        }
        let mut tags: Vec<String> = match row.get(8) {
            Some(SqlValue::Text(Some(j))) => {
                serde_json::from_str(j).map_err(|e| StoreError::Corrupt {
                    uid: uid.to_owned(),
                    reason: format!("tags: {e}"),
                })?
            }
            _ => Vec::new(),
        };
        tags.sort();
        Self::decode(row.get(1..8).unwrap_or(&[]), tags).map(Some)
    }

    /// A Locate: the filters SQL can apply (owner, type, state, uid, destroyed, tags) with their
    /// parameters, in creation order. The key material is not read: Locate answers identifiers.
    /// [`LocateQuery::select`] applies the rest.
    pub fn locate(self, query: &LocateQuery) -> (String, Vec<SqlValue>) {
        let no_material = match self {
            Dialect::Postgres => "CAST(NULL AS BYTEA)",
            Dialect::Mysql | Dialect::Sqlite => "NULL",
        };
        // PostgreSQL types each parameter from its first use: the column comparison comes first.
        let mut sql = format!(
            "SELECT uid, object_type, state, owner, {no_material}, attributes, revision FROM objects
             WHERE (owner = :1 OR :1 IS NULL) AND (object_type = :2 OR :2 IS NULL) AND (state = :3 OR :3 IS NULL)
               AND (uid = :4 OR :4 IS NULL) AND (:5 OR state NOT IN ({}, {}))",
            State::Destroyed.to_u32(),
            State::DestroyedCompromised.to_u32()
        );
        let mut params = vec![
            SqlValue::Text(query.owner.clone()),
            SqlValue::Int(query.object_type.map(|t| i64::from(t.to_u32()))),
            SqlValue::Int(query.state.map(|s| i64::from(s.to_u32()))),
            SqlValue::Text(query.uid.clone()),
            SqlValue::Bool(query.include_destroyed),
        ];
        if let Some(user) = &query.visible_to {
            let n = params.len() + 1;
            sql.push_str(&format!(
                " AND (owner = :{n} OR uid IN (SELECT uid FROM grants WHERE user_id = :{n} OR user_id = '*'))"
            ));
            params.push(text(user));
        }
        if !query.tags.is_empty() {
            let first = params.len() + 1;
            let markers: Vec<String> = (0..query.tags.len())
                .map(|i| format!(":{}", i + first))
                .collect();
            sql.push_str(&format!(
                " AND uid IN (SELECT uid FROM tags WHERE tag IN ({}) GROUP BY uid HAVING COUNT(DISTINCT tag) = {})",
                markers.join(", "),
                query.tags.len()
            ));
            params.extend(query.tags.iter().map(|t| text(t)));
        }
        sql.push_str(" ORDER BY seq");
        self.render(&sql, &params)
    }

    /// Decodes the object columns of a row (see [`OBJECT_KINDS`]).
    pub fn decode(row: &[SqlValue], tags: Vec<String>) -> Result<StoredObject> {
        let get_int = |i: usize| match row.get(i) {
            Some(SqlValue::Int(Some(v))) => Some(*v),
            _ => None,
        };
        let uid = match row.first() {
            Some(SqlValue::Text(Some(u))) => u.clone(),
            _ => {
                return Err(StoreError::Corrupt {
                    uid: "?".into(),
                    reason: "row without uid".into(),
                });
            }
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            uid: uid.clone(),
            reason,
        };
        let object_type = get_int(1)
            .and_then(|v| u32::try_from(v).ok())
            .and_then(ObjectType::from_u32)
            .ok_or_else(|| corrupt("object type".into()))?;
        let state = get_int(2)
            .and_then(|v| u32::try_from(v).ok())
            .and_then(State::from_u32)
            .ok_or_else(|| corrupt("state".into()))?;
        let owner = match row.get(3) {
            Some(SqlValue::Text(Some(o))) => o.clone(),
            _ => return Err(corrupt("owner".into())),
        };
        let object = match row.get(4) {
            Some(SqlValue::Bytes(Some(b))) => Some(decode_object(b).map_err(corrupt)?),
            _ => None,
        };
        let attributes = match row.get(5) {
            Some(SqlValue::Bytes(Some(b))) => decode_attributes(b).map_err(corrupt)?,
            _ => return Err(corrupt("attributes".into())),
        };
        let revision = get_int(6)
            .and_then(|r| u64::try_from(r).ok())
            .ok_or_else(|| corrupt("revision".into()))?;
        Ok(StoredObject {
            uid,
            object_type,
            object,
            attributes,
            state,
            owner,
            tags,
            revision,
            schedules: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_markers() {
        let p = [text("a"), SqlValue::Bool(true)];
        let (pg, pp) = Dialect::Postgres.render("x = :1 OR (:1 IS NULL AND :2)", &p);
        assert_eq!(pg, "x = $1 OR ($1 IS NULL AND $2)");
        assert_eq!(pp, p.to_vec());
        let (my, mp) = Dialect::Mysql.render("x = :1 OR (:1 IS NULL AND :2)", &p);
        assert_eq!(my, "x = ? OR (? IS NULL AND ?)");
        assert_eq!(mp, vec![text("a"), text("a"), SqlValue::Bool(true)]);
        let (lite, lp) = Dialect::Sqlite.render("x = :1 OR (:1 IS NULL AND :2)", &p);
        assert_eq!(lite, "x = ?1 OR (?1 IS NULL AND ?2)");
        assert_eq!(lp, p.to_vec());
        // Casts, a lone colon, a marker last, a marker of no parameter (MySQL drops it).
        let sql = "SELECT :2::text, 'a:b' WHERE y = :12 AND z = :";
        assert_eq!(
            Dialect::Postgres.render(sql, &p).0,
            "SELECT $2::text, 'a:b' WHERE y = $12 AND z = :"
        );
        assert_eq!(
            Dialect::Mysql.render(sql, &p),
            (
                "SELECT ?::text, 'a:b' WHERE y = ? AND z = :".to_owned(),
                vec![SqlValue::Bool(true)]
            )
        );
        let owned = Dialect::Mysql.stmt("v = :2 OR w = :1", p.clone(), OnZeroRows::Ignore);
        assert_eq!(owned.sql, "v = ? OR w = ?");
        assert_eq!(owned.params, vec![SqlValue::Bool(true), text("a")]);
    }

    /// The statements written out rendered (a create's inserts) are what formatting and
    /// rendering them gives, in every dialect, and need no reordering of parameters.
    #[test]
    fn rendered_statements_are_what_rendering_gives() {
        for d in [Dialect::Postgres, Dialect::Mysql, Dialect::Sqlite] {
            let objects = d.insert_ignore(
                "objects (uid, object_type, state, owner, object, attributes, revision)",
                "(:1, :2, :3, :4, :5, :6, 1)",
                "uid",
            );
            let (sql, order) = d.render_sql(&objects);
            assert_eq!(d.create_object_sql(), sql, "{d:?}");
            if let Some(order) = order {
                assert_eq!(order, (0..6).collect::<Vec<_>>(), "{d:?}");
            }
            let tags = d.insert_ignore("tags (uid, tag)", "(:1, :2)", "uid, tag");
            let (sql, order) = d.render_sql(&tags);
            assert_eq!(d.insert_tag_sql(), sql, "{d:?}");
            if let Some(order) = order {
                assert_eq!(order, vec![0, 1], "{d:?}");
            }
        }
    }
}
