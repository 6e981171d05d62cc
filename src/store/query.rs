//! The `skill-fleet sql` passthrough: a user's own read-only query on the tracker.

use super::Store;
use crate::error::{Error, Result};
use rusqlite::types::ValueRef;

/// Column names and rows of a query result, values as JSON for printing/exports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueryOutput {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// Why a statement was refused before it ran.
#[derive(Debug, thiserror::Error)]
#[error("refused: `{statement}` {reason}; `skill-fleet sql` only reads (SELECT, WITH, EXPLAIN, read-only PRAGMA)")]
pub struct ReadOnlyQueryError {
    pub statement: String,
    pub reason: &'static str,
}

impl Store {
    /// Runs one read-only statement and returns all its rows.
    ///
    /// Three layers keep the file untouched: the connection is opened read-only
    /// with `query_only`, statements SQLite reports as writing are refused, and
    /// ATTACH/DETACH/VACUUM/assigning PRAGMAs (which SQLite counts as read-only
    /// because they change the connection, not the file) are refused by keyword.
    pub fn query_read_only(&self, sql: &str) -> Result<QueryOutput> {
        let trimmed = sql.trim().trim_end_matches(';').trim();
        let short: String = trimmed.chars().take(60).collect();
        let first = trimmed
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let refuse = |reason| {
            Error::Invalid(
                ReadOnlyQueryError {
                    statement: short.clone(),
                    reason,
                }
                .to_string(),
            )
        };
        match first.as_str() {
            "ATTACH" | "DETACH" => return Err(refuse("attaches or detaches a database")),
            "VACUUM" => return Err(refuse("rewrites the database file")),
            "PRAGMA" if trimmed.contains('=') => return Err(refuse("assigns a PRAGMA")),
            _ => {}
        }
        let mut stmt = self.conn.prepare(trimmed).map_err(|e| match e {
            rusqlite::Error::MultipleStatement => {
                Error::Invalid("give one statement at a time".to_string())
            }
            other => Error::Db(other),
        })?;
        if !stmt.readonly() {
            return Err(refuse("writes to the database"));
        }
        let columns: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let n = columns.len();
        let mut rows = Vec::new();
        let mut cursor = stmt.query([])?;
        while let Some(row) = cursor.next()? {
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                out.push(match row.get_ref(i)? {
                    ValueRef::Null => serde_json::Value::Null,
                    ValueRef::Integer(v) => v.into(),
                    ValueRef::Real(v) => serde_json::Number::from_f64(v)
                        .map(serde_json::Value::Number)
                        .unwrap_or(serde_json::Value::Null),
                    ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
                    ValueRef::Blob(b) => format!("<{} bytes>", b.len()).into(),
                });
            }
            rows.push(out);
        }
        Ok(QueryOutput { columns, rows })
    }
}
