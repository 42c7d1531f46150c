//! `cargo xtask reindex`: rebuilds the search index of every region's core that `cargo xtask up`
//! runs, from its catalog, signed in as the dev admin. Each core keeps answering searches from
//! its old index until the new one is complete.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::{admin, http, layout::Layout, platform};

/// A rebuild of a large catalog takes a while; the core answers when it is done.
const REINDEX_TIMEOUT: Duration = Duration::from_secs(600);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(layout: &Layout) -> Result<()> {
    let admin = admin::resolve(layout)?;
    let regions = platform::regions()?;
    let ports = platform::Ports::standard(regions.len())?;
    let credentials = serde_json::json!({"email": admin.email, "password": admin.password});
    for (region, port) in regions.iter().zip(&ports.core_http) {
        let base = format!("http://127.0.0.1:{port}");
        let login = http::post_json(
            &format!("{base}/users/login"),
            &credentials.to_string(),
            CALL_TIMEOUT,
        )
        .with_context(|| format!("is `cargo xtask up` running? (no core of {region} at {base})"))?;
        if !login.is_success() {
            bail!(
                "signing in as {} failed: {} {}",
                admin.email,
                login.status,
                login.body
            );
        }
        let login: serde_json::Value = serde_json::from_str(&login.body)?;
        let token = login["access_token"]
            .as_str()
            .context("the login answer has no access_token")?;
        println!("xtask: reindexing search in {region} ...");
        let answer =
            http::post_authorized(&format!("{base}/search/reindex"), token, REINDEX_TIMEOUT)?;
        if !answer.is_success() {
            bail!(
                "reindex in {region} failed: {} {}",
                answer.status,
                answer.body
            );
        }
        let rebuilt: serde_json::Value = serde_json::from_str(&answer.body)?;
        println!(
            "xtask: {region}: {} products indexed in {} ms",
            rebuilt["products"], rebuilt["duration_ms"]
        );
    }
    Ok(())
}
