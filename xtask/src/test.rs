//! `cargo xtask test [-- ARGS]`: services as for `up`, stale test databases and JetStream streams
//! dropped, then `cargo test --workspace ARGS` with `DATABASE_URL`, `REDIS_URL` and `NATS_URL`
//! exported, and the local SMTP server's `MERIDIAN_SMTP_URL` and Maildir
//! (`MERIDIAN_TEST_MAILDIR`), and the embedding model's directory (`MERIDIAN_EMBED_MODEL_DIR`).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;

use crate::apt;
use crate::cmd;
use crate::layout::Layout;
use crate::model;
use crate::services::{Mail, Services, postgres, test_streams};
use crate::shutdown;

pub fn run(layout: &Layout, args: &[String]) -> Result<ExitCode> {
    let started = Instant::now();
    apt::ensure(apt::BUILD_TOOLS)?;
    let mut services = Services::ensure(layout, Mail::Local)?;
    let (dropped, kept) = postgres::drop_test_databases(&services.postgres.url)?;
    if dropped + kept > 0 {
        println!("xtask: dropped {dropped} stale test database(s); kept {kept} in use or not ours");
    }
    // Only on our own server: one named by NATS_URL may be shared with others.
    if !services.nats.url.from_env {
        let (deleted, kept) = test_streams::delete_stale(&services.nats.url.url)?;
        if deleted + kept > 0 {
            println!(
                "xtask: deleted {deleted} stale test stream(s); kept {kept} created in the last {} min",
                test_streams::STALE_AFTER.as_secs() / 60
            );
        }
    }
    shutdown::check()?;
    let model = model::ensure(layout)?;
    shutdown::check()?;

    let mut command = cmd::cargo();
    command
        .current_dir(layout.root())
        .arg("test")
        .args(cargo_test_args(args));
    services.export_to(&mut command);
    command
        .env("MERIDIAN_EMBED_MODEL_DIR", &model)
        .env(model::SPIN_LIMIT.0, model::SPIN_LIMIT.1);
    println!("xtask: {}", cmd::describe(&command));
    let status = cmd::status(&mut command)?;
    services.stop();

    let elapsed = started.elapsed().as_secs();
    let took = format!("{}m{:02}s", elapsed / 60, elapsed % 60);
    if status.success() {
        println!("xtask test: PASSED in {took}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("xtask test: FAILED ({status}) in {took}; service logs in .meridian/logs/");
    let code = match status.code() {
        Some(code) => u8::try_from(code).unwrap_or(1).max(1),
        None if shutdown::requested() => 130,
        None => 1,
    };
    Ok(ExitCode::from(code))
}

/// The arguments for `cargo test`: a leading `--` is dropped (`cargo xtask test -- --nocapture`
/// would otherwise reach cargo as `-- -- --nocapture`), and `--workspace` is added unless a package
/// was chosen with `-p`/`--package`.
fn cargo_test_args(args: &[String]) -> Vec<String> {
    let args = match args.split_first() {
        Some((first, rest)) if first == "--" => rest,
        _ => args,
    };
    let cargo_part = args.iter().take_while(|arg| *arg != "--");
    let picks_package = cargo_part
        .into_iter()
        .any(|arg| arg.starts_with("-p") || arg.starts_with("--package"));
    let mut out = Vec::with_capacity(args.len() + 1);
    if !picks_package {
        out.push("--workspace".to_owned());
    }
    out.extend(args.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::cargo_test_args;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn adds_workspace_and_drops_a_leading_separator() {
        assert_eq!(cargo_test_args(&[]), args(&["--workspace"]));
        assert_eq!(
            cargo_test_args(&args(&["--", "--nocapture"])),
            args(&["--workspace", "--nocapture"])
        );
        assert_eq!(
            cargo_test_args(&args(&["--", "tidy", "--", "--nocapture"])),
            args(&["--workspace", "tidy", "--", "--nocapture"])
        );
    }

    #[test]
    fn respects_a_chosen_package() {
        assert_eq!(
            cargo_test_args(&args(&["-p", "meridian-users"])),
            args(&["-p", "meridian-users"])
        );
        assert_eq!(
            cargo_test_args(&args(&["--", "--package=meridian-xtask", "--", "-p"])),
            args(&["--package=meridian-xtask", "--", "-p"])
        );
        // `-p` after the test binary separator is not a package choice.
        assert_eq!(
            cargo_test_args(&args(&["x", "--", "-p"])),
            args(&["--workspace", "x", "--", "-p"])
        );
    }
}
