//! Postgres: `DATABASE_URL`, or the local server on 127.0.0.1:5432 (installed and started when
//! missing) with role and database `meridian`.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{ServiceUrl, port_open, wait_until};
use crate::apt::{self, Need};
use crate::cmd;

pub const LOCAL_URL: &str = "postgres://meridian:meridian@127.0.0.1:5432/meridian?sslmode=disable";
const PORT: u16 = 5432;
/// Integration tests create their databases with this prefix; `cargo xtask test` drops leftovers.
const TEST_DATABASE_PREFIX: &str = "meridian_test_";

pub fn ensure() -> Result<ServiceUrl> {
    apt::ensure(&[Need::new("psql", "postgresql-client")])?;
    if let Some(url) = ServiceUrl::from_env("DATABASE_URL") {
        println!("xtask: Postgres: using DATABASE_URL");
        return Ok(url);
    }
    if !port_open(PORT) {
        start_local_server().context("cannot start a local Postgres")?;
    }
    ensure_role_and_database().context("cannot prepare role and database `meridian`")?;
    println!("xtask: Postgres ready on 127.0.0.1:{PORT} (database meridian)");
    Ok(ServiceUrl::local(LOCAL_URL))
}

/// `psql` for one database URL: never prompts, stops at the first error, prints bare values.
pub fn psql(url: &str) -> Command {
    let mut command = cmd::command("psql");
    command.args([
        "-X",
        "-w",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-A",
        "-t",
        "-d",
        url,
    ]);
    command
}

/// Drops databases named `meridian_test_*` that earlier test runs left behind. Databases that are
/// in use are kept: they belong to a test run in progress (another checkout, another terminal), and
/// a plain `DROP DATABASE` refuses them. Returns (dropped, kept).
pub fn drop_test_databases(url: &str) -> Result<(usize, usize)> {
    let query = format!(
        "SELECT datname FROM pg_database WHERE starts_with(datname, '{TEST_DATABASE_PREFIX}')"
    );
    let names =
        cmd::output(psql(url).args(["-c", &query])).context("cannot list test databases")?;
    let (mut dropped, mut kept) = (0, 0);
    for name in names.lines().map(str::trim).filter(|name| !name.is_empty()) {
        let statement = format!("DROP DATABASE IF EXISTS {}", quote_ident(name));
        match cmd::output(psql(url).args(["-c", &statement])) {
            Ok(_) => dropped += 1,
            Err(_) => kept += 1,
        }
    }
    Ok((dropped, kept))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn start_local_server() -> Result<()> {
    if cmd::find_program("pg_ctlcluster").is_none() {
        apt::install(&["postgresql"])?;
        if port_open(PORT) {
            return Ok(()); // the package's scripts started it
        }
    }
    let listing = cmd::output(cmd::command("pg_lsclusters").arg("--no-header"))?;
    let cluster = match parse_clusters(&listing)
        .into_iter()
        .find(|cluster| cluster.port == PORT)
    {
        Some(cluster) => cluster,
        None => create_cluster()?,
    };
    if !cluster.online {
        println!(
            "xtask: starting Postgres cluster {} {}",
            cluster.version, cluster.name
        );
        cmd::run(cmd::command("pg_ctlcluster").args([
            "--skip-systemctl-redirect",
            &cluster.version,
            &cluster.name,
            "start",
        ]))?;
    }
    wait_until(
        "Postgres on 127.0.0.1:5432",
        Duration::from_secs(30),
        || port_open(PORT),
    )
}

#[derive(Debug, PartialEq)]
struct Cluster {
    version: String,
    name: String,
    port: u16,
    online: bool,
}

/// Parses `pg_lsclusters --no-header`: `15 main 5432 online postgres /var/lib/... /var/log/...`.
fn parse_clusters(listing: &str) -> Vec<Cluster> {
    listing
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [version, name, port, status, ..] = fields.as_slice() else {
                return None;
            };
            Some(Cluster {
                version: (*version).to_owned(),
                name: (*name).to_owned(),
                port: port.parse().ok()?,
                online: status.starts_with("online"),
            })
        })
        .collect()
}

/// `pg_createcluster` for the newest installed server version, on port 5432.
fn create_cluster() -> Result<Cluster> {
    let versions = std::fs::read_dir("/usr/lib/postgresql")
        .context("no Postgres server under /usr/lib/postgresql")?;
    let version = versions
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .max()
        .context("no Postgres server version under /usr/lib/postgresql")?
        .to_string();
    println!("xtask: creating Postgres cluster {version} main");
    cmd::run(cmd::command("pg_createcluster").args(["--port", "5432", &version, "main"]))?;
    Ok(Cluster {
        version,
        name: "main".to_owned(),
        port: PORT,
        online: false,
    })
}

const ROLE_SQL: &str = "DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'meridian') THEN
    CREATE ROLE meridian LOGIN CREATEDB PASSWORD 'meridian';
  ELSE
    ALTER ROLE meridian LOGIN CREATEDB PASSWORD 'meridian';
  END IF;
END $$;";

fn ensure_role_and_database() -> Result<()> {
    if role_is_ready() {
        return Ok(());
    }
    let superuser = Superuser::find()?;
    cmd::output(superuser.psql().args(["-c", ROLE_SQL]))?;
    let exists = cmd::output(
        superuser
            .psql()
            .args(["-c", "SELECT 1 FROM pg_database WHERE datname = 'meridian'"]),
    )?;
    if exists.trim().is_empty() {
        cmd::output(
            superuser
                .psql()
                .args(["-c", "CREATE DATABASE meridian OWNER meridian"]),
        )?;
    }
    if !role_is_ready() {
        bail!("role `meridian` still cannot log in to database `meridian` with CREATEDB over TCP");
    }
    Ok(())
}

/// `meridian` logs in over TCP with its password and may create (test) databases.
fn role_is_ready() -> bool {
    cmd::output(psql(LOCAL_URL).args([
        "-c",
        "SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user",
    ]))
    .map(|answer| answer.trim() == "t")
    .unwrap_or(false)
}

/// How we reach Postgres as its superuser: peer authentication through `runuser` (Debian's default on
/// a fresh machine), else TCP as `postgres` (trust or `.pgpass`).
enum Superuser {
    Runuser,
    Tcp,
}

impl Superuser {
    fn find() -> Result<Self> {
        let mut failures = Vec::new();
        for candidate in [Self::Runuser, Self::Tcp] {
            if matches!(candidate, Self::Runuser)
                && (!cmd::is_root() || cmd::find_program("runuser").is_none())
            {
                failures.push("runuser: needs root".to_owned());
                continue;
            }
            match cmd::output(candidate.psql().args(["-c", "SELECT 1"])) {
                Ok(_) => return Ok(candidate),
                Err(error) => failures.push(format!("{error:#}")),
            }
        }
        bail!(
            "cannot reach Postgres as superuser to create role `meridian` (set DATABASE_URL to use \
             another server):\n  {}",
            failures.join("\n  ")
        )
    }

    fn psql(&self) -> Command {
        let flags = ["-X", "-w", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t"];
        let mut command = match self {
            Self::Runuser => {
                let mut command = cmd::command("runuser");
                command.args(["-u", "postgres", "--", "psql"]);
                command
            }
            Self::Tcp => {
                let mut command = cmd::command("psql");
                command.args(["-h", "127.0.0.1", "-U", "postgres"]);
                command
            }
        };
        // `/`: the postgres user may not be allowed into the checkout.
        command
            .current_dir("/")
            .args(flags)
            .args(["-d", "postgres"]);
        command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pg_lsclusters() {
        let listing = "15  main    5432 online postgres /var/lib/postgresql/15/main /var/log/p.log\n\
                       16  other   5433 down   postgres /var/lib/postgresql/16/other /var/log/q.log\n\
                       garbage\n";
        assert_eq!(
            parse_clusters(listing),
            vec![
                Cluster {
                    version: "15".into(),
                    name: "main".into(),
                    port: 5432,
                    online: true
                },
                Cluster {
                    version: "16".into(),
                    name: "other".into(),
                    port: 5433,
                    online: false
                },
            ]
        );
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_ident("meridian_test_1"), "\"meridian_test_1\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
