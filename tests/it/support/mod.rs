//! Test desks: a temporary folder with a config, a SQLite database and the real pipeline.

pub mod cyrus;
pub mod flaky;
pub mod postgres;
pub mod slow_smtp;
pub mod stack;
pub mod token_server;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use helpdesk::app::{self, App};
use helpdesk::config::{Config, ProcessEnv};
use helpdesk::pipeline::{Processed, SourceRef};
use helpdesk::store::Store;
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnectOptions;
use tempfile::TempDir;

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

pub fn embedded_config() -> String {
    helpdesk::config::embedded_default_toml().to_string()
}

pub struct Desk {
    pub dir: TempDir,
    pub app: Arc<App>,
    pub config_path: PathBuf,
    /// The PostgreSQL database the desk is kept in (SQLite's file in `dir` otherwise).
    pub postgres: Option<Arc<postgres::Database>>,
}

/// Which store a test desk is kept in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

/// `toml` with its `[database]` table pointing at `db`.
pub fn on_database(toml: &str, db: &postgres::Database) -> String {
    let (before, after) = toml
        .split_once("[database]")
        .expect("a config with a [database] table");
    let rest = after
        .split_once("\n[")
        .map(|(_, r)| format!("\n[{r}"))
        .unwrap_or_default();
    format!("{before}{}{rest}", db.toml())
}

impl Desk {
    /// The embedded default (Maildir in, .eml files out) in a fresh folder.
    pub async fn new() -> Desk {
        Desk::with_config(&embedded_config()).await
    }

    pub async fn with_config(toml: &str) -> Desk {
        Desk::with_store(toml, |s| s).await
    }

    /// A desk whose store is `wrap` around the real one (to inject failures).
    pub async fn with_store(
        toml: &str,
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
    ) -> Desk {
        let dir = tempfile::tempdir().expect("tempdir");
        Desk::in_dir(dir, toml, wrap).await
    }

    /// The desk of `toml` kept in `store`.
    pub async fn on(store: StoreKind, toml: &str) -> Desk {
        match store {
            StoreKind::Sqlite => Desk::with_config(toml).await,
            StoreKind::Postgres => Desk::on_postgres(toml).await,
        }
    }

    /// The same desk kept in PostgreSQL: a fresh database of the test binary's cluster.
    pub async fn on_postgres(toml: &str) -> Desk {
        Desk::sharing(toml, Arc::new(postgres::database())).await
    }

    /// A desk (one gateway instance) kept in the PostgreSQL database `db`, which other
    /// desks of the test may share.
    pub async fn sharing(toml: &str, db: Arc<postgres::Database>) -> Desk {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut desk = Desk::build(
            dir,
            &on_database(toml, &db),
            |s| s,
            Arc::new(helpdesk::clock::SystemClock),
        )
        .await;
        desk.postgres = Some(db);
        desk
    }

    /// A desk whose time is `clock`'s (tests move it instead of sleeping).
    pub async fn with_clock(toml: &str, clock: Arc<dyn helpdesk::clock::Clock>) -> Desk {
        let dir = tempfile::tempdir().expect("tempdir");
        Desk::build(dir, toml, |s| s, clock).await
    }

    pub async fn in_dir(
        dir: TempDir,
        toml: &str,
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
    ) -> Desk {
        Desk::build(dir, toml, wrap, Arc::new(helpdesk::clock::SystemClock)).await
    }

    async fn build(
        dir: TempDir,
        toml: &str,
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
        clock: Arc<dyn helpdesk::clock::Clock>,
    ) -> Desk {
        let config_path = dir.path().join("helpdesk.toml");
        std::fs::write(&config_path, toml).unwrap();
        let mut config = Config::from_toml(toml, &config_path, dir.path(), &ProcessEnv)
            .expect("valid test config");
        // Every test desk has the starter knowledge base, as `helpdesk init` writes it.
        helpdesk::kb::starter::write(&config.desk.knowledge.dir).expect("starter articles");
        config.load_knowledge().expect("knowledge base loads");
        let store = wrap(app::open_store(&config).await.expect("store opens"));
        let app = Arc::new(
            App::build_with_clock(config, store, clock)
                .await
                .expect("app builds"),
        );
        Desk {
            dir,
            app,
            config_path,
            postgres: None,
        }
    }

    pub async fn file(&self, raw: &[u8]) -> Processed {
        self.app
            .pipeline
            .process(&SourceRef::none(), raw)
            .await
            .expect("store error")
    }

    /// A second connection to the desk's database, for asserting on what was stored.
    pub async fn db(&self) -> SqlitePool {
        // As patient as the gateway: it writes often, and SQLite's busy handler does not queue.
        let opts = SqliteConnectOptions::new()
            .filename(self.dir.path().join("helpdesk.db"))
            .busy_timeout(std::time::Duration::from_secs(30));
        SqlitePool::connect_with(opts).await.unwrap()
    }

    /// A count, from whichever database the desk is kept in (the SQL is the same).
    pub async fn count(&self, sql: &'static str) -> i64 {
        let (n,): (i64,) = match &self.postgres {
            Some(db) => sqlx::query_as(sql)
                .fetch_one(&db.pool().await)
                .await
                .unwrap(),
            None => sqlx::query_as(sql)
                .fetch_one(&self.db().await)
                .await
                .unwrap(),
        };
        n
    }
}

/// Runs the `helpdesk` binary with `args`, logs at warn.
pub fn helpdesk(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .args(args)
        .env("HELPDESK_LOG", "warn")
        .output()
        .expect("run helpdesk")
}

pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A plain customer mail.
pub fn customer_mail(from: &str, subject: &str, message_id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@example.test\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\
         Date: Mon, 2 Mar 2026 10:00:00 +0100\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}
