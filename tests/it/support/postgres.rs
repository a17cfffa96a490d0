//! A private PostgreSQL on loopback, started once per test binary by
//! `scripts/postgres.sh` and stopped when the binary ends (its watchdog), with a fresh
//! empty database for each test that asks. A missing package or a failed start panics:
//! these tests never skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use secrecy::SecretString;

pub struct Cluster {
    pub port: u16,
    dir: PathBuf,
    password: String,
}

/// One test's database: its URL (no password in it, as the config wants) and password.
pub struct Database {
    pub url: String,
    pub password: String,
    /// The password in a file, for `[database] password_file`.
    pub password_file: PathBuf,
}

impl Database {
    pub fn secret(&self) -> SecretString {
        SecretString::from(self.password.clone())
    }

    /// A connection pool of the test's own, for asserting on what was stored.
    pub async fn pool(&self) -> sqlx::PgPool {
        use std::str::FromStr;
        let options = sqlx::postgres::PgConnectOptions::from_str(&self.url)
            .unwrap()
            .password(&self.password);
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .unwrap()
    }

    /// The `[database]` table of a config for this database.
    pub fn toml(&self) -> String {
        format!(
            "[database]\nurl = \"{}\"\npassword_file = \"{}\"\n",
            self.url,
            self.password_file.display()
        )
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres.sh")
}

pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("helpdesk-pg-{}", std::process::id()));
        let [port] = super::stack::free_ports();
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(&dir)
            .arg(port.to_string())
            .arg(std::process::id().to_string())
            .output()
            .expect("run scripts/postgres.sh");
        assert!(
            out.status.success(),
            "PostgreSQL did not start (scripts/test installs it): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let password = std::fs::read_to_string(dir.join("password"))
            .expect("the cluster's password")
            .trim()
            .to_string();
        Cluster {
            port,
            dir,
            password,
        }
    })
}

impl Cluster {
    /// Runs SQL as the superuser, through the cluster's own socket.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let bin = Command::new("sh")
            .arg("-c")
            .arg("ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1")
            .output()
            .expect("find PostgreSQL");
        let bin = String::from_utf8_lossy(&bin.stdout).trim().to_string();
        let out = Command::new(format!("{bin}/psql"))
            .args([
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                "postgres",
                "-h",
            ])
            .arg(self.dir.join("data"))
            .args(["-p", &self.port.to_string(), "-d", database, "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A fresh, empty database owned by the gateway's user.
    pub fn database(&self) -> Database {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("desk_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.psql(
            "postgres",
            &format!("CREATE DATABASE {name} OWNER helpdesk"),
        );
        let password_file = self.dir.join(format!("{name}.password"));
        std::fs::write(&password_file, &self.password).expect("password file");
        Database {
            url: format!("postgres://helpdesk@127.0.0.1:{}/{name}", self.port),
            password: self.password.clone(),
            password_file,
        }
    }
}

/// A fresh database on this binary's cluster.
pub fn database() -> Database {
    cluster().database()
}
