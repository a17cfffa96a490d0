//! Statements a SQLite transaction sends together.
//!
//! sqlx runs SQLite on a worker thread of its own: every statement is a hand-off to that
//! thread and back, two wake-ups that cost more than most of our statements (a profile of
//! `ingest` showed a third of its time in futex wake-ups and task switches). A write whose
//! result nobody reads (an UPDATE, an INSERT whose id the transaction chose itself) therefore
//! waits in a [`Script`], and goes to SQLite in one hand-off with the next statement whose
//! answer is needed, or at commit. sqlx runs a string of several statements in one call and
//! binds positional parameters across them in order, which is what makes this work.

use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, AssertSqlSafe, SqliteConnection};

use super::StoreError;

/// One bound value, owned, so a statement can wait for the next one.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Int(i64::from(v))
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}
impl From<&[u8]> for Arg {
    fn from(v: &[u8]) -> Self {
        Arg::Blob(v.to_vec())
    }
}
impl<T: Into<Arg>> From<Option<T>> for Arg {
    fn from(v: Option<T>) -> Self {
        v.map_or(Arg::Null, Into::into)
    }
}

/// One statement with its parameters (positional `?` only).
#[derive(Debug)]
pub(crate) struct Stmt {
    sql: String,
    args: Vec<Arg>,
}

impl Stmt {
    pub fn new(sql: impl Into<String>) -> Self {
        Stmt {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    pub fn bind(mut self, value: impl Into<Arg>) -> Self {
        self.args.push(value.into());
        self
    }
}

/// Writes waiting to be sent, in order.
#[derive(Debug, Default)]
pub(crate) struct Script {
    sql: String,
    args: Vec<Arg>,
}

/// SQLite refuses a statement with more than 32,766 parameters; a script is sent before it
/// comes near that (a long script also keeps a failing write's error close to its cause).
const MAX_WAITING_ARGS: usize = 4_000;

impl Script {
    pub fn is_empty(&self) -> bool {
        self.sql.is_empty()
    }

    fn push(&mut self, stmt: Stmt) {
        if !self.sql.is_empty() {
            self.sql.push_str(";\n");
        }
        self.sql.push_str(&stmt.sql);
        self.args.extend(stmt.args);
    }

    /// Keeps a write for later; sends what waits when the script grows long.
    pub async fn defer(
        &mut self,
        conn: &mut SqliteConnection,
        stmt: Stmt,
    ) -> Result<(), StoreError> {
        self.push(stmt);
        if self.args.len() > MAX_WAITING_ARGS {
            self.flush(conn).await?;
        }
        Ok(())
    }

    /// Sends the waiting writes, if any.
    pub async fn flush(&mut self, conn: &mut SqliteConnection) -> Result<(), StoreError> {
        if self.is_empty() {
            return Ok(());
        }
        let (sql, args) = self.take();
        query(sql, args).execute(conn).await?;
        Ok(())
    }

    /// Runs `stmt` after the waiting writes, in one hand-off, and returns `stmt`'s rows
    /// (the waiting writes return none).
    pub async fn fetch_all(
        &mut self,
        conn: &mut SqliteConnection,
        stmt: Stmt,
    ) -> Result<Vec<SqliteRow>, StoreError> {
        self.push(stmt);
        let (sql, args) = self.take();
        Ok(query(sql, args).fetch_all(conn).await?)
    }

    pub async fn fetch_optional(
        &mut self,
        conn: &mut SqliteConnection,
        stmt: Stmt,
    ) -> Result<Option<SqliteRow>, StoreError> {
        Ok(self.fetch_all(conn, stmt).await?.into_iter().next())
    }

    pub async fn fetch_one(
        &mut self,
        conn: &mut SqliteConnection,
        stmt: Stmt,
    ) -> Result<SqliteRow, StoreError> {
        self.fetch_optional(conn, stmt)
            .await?
            .ok_or_else(|| sqlx::Error::RowNotFound.into())
    }

    fn take(&mut self) -> (String, Vec<Arg>) {
        (
            std::mem::take(&mut self.sql),
            std::mem::take(&mut self.args),
        )
    }
}

fn query(
    sql: String,
    args: Vec<Arg>,
) -> sqlx::query::Query<'static, sqlx::Sqlite, SqliteArguments> {
    let mut bound = SqliteArguments::default();
    for arg in args {
        // Adding an owned value to SQLite's arguments cannot fail.
        let _ = match arg {
            Arg::Null => bound.add(None::<i64>),
            Arg::Int(v) => bound.add(v),
            Arg::Text(v) => bound.add(v),
            Arg::Blob(v) => bound.add(v),
        };
    }
    sqlx::query_with(AssertSqlSafe(sql), bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{Connection, Row};

    /// A connection to a fresh in-memory database holding the table `t`.
    async fn with_table(create: &str) -> SqliteConnection {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query(AssertSqlSafe(create.to_string()))
            .execute(&mut conn)
            .await
            .unwrap();
        conn
    }

    #[tokio::test]
    async fn waiting_writes_run_in_order_before_the_read_that_carries_them() {
        let mut conn =
            with_table("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, b BLOB, n INTEGER)").await;
        let mut script = Script::default();
        script
            .defer(
                &mut conn,
                Stmt::new("INSERT INTO t (id, v, b, n) VALUES (?, ?, ?, ?)")
                    .bind(7)
                    .bind("seven")
                    .bind(&b"\x00\x01"[..])
                    .bind(None::<i64>),
            )
            .await
            .unwrap();
        script
            .defer(
                &mut conn,
                Stmt::new("UPDATE t SET v = v || ? WHERE id = ?")
                    .bind("!")
                    .bind(7),
            )
            .await
            .unwrap();
        assert!(!script.is_empty());
        let rows = script
            .fetch_all(
                &mut conn,
                Stmt::new("SELECT v, b, n FROM t WHERE id = ?").bind(7),
            )
            .await
            .unwrap();
        assert!(script.is_empty());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<String, _>(0), "seven!");
        assert_eq!(rows[0].get::<Vec<u8>, _>(1), vec![0, 1]);
        assert_eq!(rows[0].get::<Option<i64>, _>(2), None);
    }

    #[tokio::test]
    async fn a_failing_waiting_write_fails_the_statement_that_sends_it() {
        let mut conn = with_table("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)").await;
        let mut script = Script::default();
        script
            .defer(
                &mut conn,
                Stmt::new("INSERT INTO t (id, v) VALUES (?, ?)")
                    .bind(1)
                    .bind(None::<String>),
            )
            .await
            .unwrap();
        let failed = script
            .fetch_all(&mut conn, Stmt::new("SELECT COUNT(*) FROM t"))
            .await;
        assert!(failed.is_err(), "the NOT NULL violation is reported");
        assert!(script.is_empty());
    }
}
