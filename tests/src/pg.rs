//! A private, throwaway PostgreSQL cluster started from the system's binaries (works as root: the server runs
//! as the `postgres` user). Stopped and deleted on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    as_postgres: bool,
}

fn pg_bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries in /usr/lib/postgresql (apt-get install postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin")
}

impl PgCluster {
    pub fn start() -> PgCluster {
        let bin = pg_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("syncflow-pg-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let as_postgres = crate::is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(
                ok.success(),
                "chown of the cluster folder to postgres failed"
            );
        }
        let cluster = PgCluster {
            port: crate::free_port(),
            dir,
            bin,
            as_postgres,
        };
        let data = cluster.data_dir();
        cluster.pg_command(
            "initdb",
            &[
                "--no-sync",
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "-D",
            ],
            Some(&data),
        );
        let options = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50",
            cluster.dir.path().display(),
            cluster.port
        );
        let log = cluster.dir.path().join("server.log");
        cluster.pg_command(
            "pg_ctl",
            &[
                "-w",
                "-t",
                "60",
                "-l",
                &log.display().to_string(),
                "-o",
                &options,
                "start",
                "-D",
            ],
            Some(&data),
        );
        cluster
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_command(&self, tool: &str, args: &[&str], path_arg: Option<&Path>) {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args);
        if let Some(p) = path_arg {
            cmd.arg(p);
        }
        cmd.current_dir("/tmp");
        let out = cmd.output().unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Restarts the server the way a maintenance window or a failover does: `pg_ctl restart -m fast` (every
    /// connection is cut, the server is down for a moment, then accepts connections again).
    pub fn restart_fast(&self) {
        let data = self.data_dir();
        // The log file as at start: a server writing to pg_ctl's own output would hold that pipe open forever.
        let log = self.dir.path().join("server.log").display().to_string();
        self.pg_command(
            "pg_ctl",
            &["-w", "-t", "60", "-l", &log, "-m", "fast", "restart", "-D"],
            Some(&data),
        );
    }

    /// Turns TLS on with a certificate for `localhost` and 127.0.0.1 signed by a CA made for the test, and makes
    /// `role` (created, may log in, no password) connect only over TLS (`hostssl`; `hostnossl … reject`). Returns
    /// the CA certificate's path.
    pub async fn enable_tls(&self, role: &str) -> PathBuf {
        let tls = self.dir.path().join("tls");
        std::fs::create_dir_all(&tls).expect("tls dir");
        let sh = |script: &str| {
            let out = Command::new("sh")
                .arg("-c")
                .arg(script)
                .current_dir(&tls)
                .output()
                .expect("sh");
            assert!(
                out.status.success(),
                "{script}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        sh(
            "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=SyncFlow test CA' \
            -keyout ca.key -out ca.pem 2>/dev/null",
        );
        sh("openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' -keyout server.key -out server.csr 2>/dev/null");
        sh("printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > ext.cnf && \
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile ext.cnf -out server.pem 2>/dev/null");
        let data = self.data_dir();
        for file in ["server.pem", "server.key"] {
            std::fs::copy(tls.join(file), data.join(file)).expect("copy the server's certificate");
        }
        if self.as_postgres {
            sh(&format!(
                "chown postgres:postgres {0}/server.pem {0}/server.key",
                data.display()
            ));
        }
        sh(&format!("chmod 600 {}/server.key", data.display()));
        let hba = data.join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
        std::fs::write(
            &hba,
            format!("hostnossl all {role} all reject\nhostssl all {role} all trust\n{rules}"),
        )
        .expect("write pg_hba.conf");
        self.sql(&[
            &format!("CREATE ROLE \"{role}\" LOGIN"),
            "ALTER SYSTEM SET ssl = on",
            "ALTER SYSTEM SET ssl_cert_file = 'server.pem'",
            "ALTER SYSTEM SET ssl_key_file = 'server.key'",
            "ALTER SYSTEM SET log_connections = on",
            "SELECT pg_reload_conf()",
        ])
        .await;
        tls.join("ca.pem")
    }

    /// Runs statements as the superuser, each on its own (ALTER SYSTEM cannot run in a transaction).
    pub async fn sql(&self, statements: &[&str]) {
        let pool = sqlx::PgPool::connect(&self.url("postgres"))
            .await
            .expect("connect to the throwaway cluster");
        for statement in statements {
            sqlx::query(statement)
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        pool.close().await;
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A connection URL (user postgres, no password) for `database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a database and returns its URL.
    pub async fn create_database(&self, name: &str) -> String {
        let pool = sqlx::PgPool::connect(&self.url("postgres"))
            .await
            .expect("connect to the throwaway cluster");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&pool)
            .await
            .expect("create database");
        pool.close().await;
        self.url(name)
    }
}

/// Rows of `table` in the database at `url`, or None while they cannot be read (the server down, the table not
/// made yet).
async fn committed(url: &str, table: &str) -> Option<i64> {
    let pool = sqlx::PgPool::connect(url).await.ok()?;
    let n = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&pool)
        .await
        .ok();
    pool.close().await;
    n
}

/// Waits until a running sync has committed rows into `table` and at least `after` has passed (so it is well
/// under way); returns the rows committed by then. Fails after two minutes.
pub async fn rows_landed(url: &str, table: &str, after: std::time::Duration) -> i64 {
    let started = std::time::Instant::now();
    loop {
        let n = committed(url, table).await.unwrap_or(0);
        if n > 0 && started.elapsed() > after {
            return n;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the sync never got going"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Restarts `cluster` fast (off the async threads) while `run` — a spawned CLI — goes on, asserts the restart
/// happened mid-run (the CLI had not exited, the server logged the shutdown), and waits for the run's output.
pub async fn restart_during(
    cluster: PgCluster,
    run: std::process::Child,
    progress: &str,
) -> (PgCluster, std::process::Output) {
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.restart_fast();
        cluster
    })
    .await
    .expect("the restart's thread");
    let mut run = run;
    assert!(
        run.try_wait().expect("the CLI's status").is_none(),
        "the restart happened while the run went on ({progress})"
    );
    let log = cluster.log();
    assert!(log.contains("received fast shutdown request"), "{log}");
    (cluster, crate::finished(run).await)
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        let exe = self.bin.join("pg_ctl");
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        let _ = cmd
            .args(["-m", "immediate", "stop", "-D"])
            .arg(data)
            .current_dir("/tmp")
            .output();
    }
}

/// The backend pid of the engine's target connection (application `syncflow`) once it waits on a lock; panics
/// after a minute.
pub async fn engine_waiting_on_a_lock(pool: &sqlx::PgPool) -> i32 {
    let since = std::time::Instant::now();
    loop {
        let pid: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'syncflow %' AND wait_event_type = 'Lock' LIMIT 1",
        )
        .fetch_optional(pool)
        .await
        .expect("read pg_stat_activity");
        if let Some(pid) = pid {
            return pid;
        }
        assert!(
            since.elapsed() < std::time::Duration::from_secs(60),
            "the engine never waited on the lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A cluster that admits `role` only over TLS (see [`PgCluster::enable_tls`]), with a database `src` holding a table
/// `parts (id, name, price)` of `rows` rows the role may read, and an empty database `dst` the role owns. Returns the
/// cluster and the CA certificate's path.
pub async fn tls_cluster_with_parts(role: &str, rows: u32) -> (PgCluster, PathBuf) {
    let pg = PgCluster::start();
    let ca = pg.enable_tls(role).await;
    pg.sql(&[
        "CREATE DATABASE src",
        &format!("CREATE DATABASE dst OWNER {role}"),
    ])
    .await;
    let src = sqlx::PgPool::connect(&pg.url("src"))
        .await
        .expect("connect to src");
    for statement in [
        "CREATE TABLE parts (id int PRIMARY KEY, name text, price numeric(10,2))".to_owned(),
        format!(
            "INSERT INTO parts SELECT i, 'part ' || i, i * 1.25 FROM generate_series(1, {rows}) i"
        ),
        format!("GRANT SELECT ON parts TO {role}"),
    ] {
        sqlx::query(&statement)
            .execute(&src)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    src.close().await;
    (pg, ca)
}
