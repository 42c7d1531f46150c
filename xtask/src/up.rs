//! `cargo xtask up`: services, build, migrate, seed, core(s) and edge, then wait for Ctrl-C.

use std::time::Duration;

use anyhow::{Result, bail};

use crate::admin::{self, AdminLogin};
use crate::apt;
use crate::cargo::{self, Profile};
use crate::layout::Layout;
use crate::model;
use crate::platform::{self, Binaries, Launch, Platform, Ports};
use crate::services::{Mail, Services};
use crate::shutdown;

pub struct Options {
    profile: Profile,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut profile = Profile::Debug;
        for arg in args {
            match arg.as_str() {
                "--release" => profile = Profile::Release,
                other => bail!("`up` takes only --release, not `{other}`"),
            }
        }
        Ok(Self { profile })
    }
}

pub fn run(layout: &Layout, options: &Options) -> Result<()> {
    apt::ensure(apt::BUILD_TOOLS)?;
    let regions = platform::regions()?;
    let ports = Ports::standard(regions.len())?;
    ports.ensure_free()?;
    let mut services = Services::ensure(layout, Mail::PreferEnv)?;
    shutdown::check()?;
    cargo::build_binaries(layout, options.profile)?;
    shutdown::check()?;
    let binaries = Binaries::locate(layout, options.profile)?;
    let admin = admin::resolve(layout)?;
    let embed_model = model::ensure(layout)?;
    platform::migrate_and_seed(layout, &binaries, &services, &regions[0], &admin)?;
    shutdown::check()?;
    let mut platform = Platform::start(&Launch {
        layout,
        binaries: &binaries,
        services: &services,
        regions: &regions,
        ports: &ports,
        name_prefix: "",
        rate_limits: true,
        edge_cache: true,
        embed_model: &embed_model,
    })?;
    print_summary(&platform, &services, &admin);

    while !shutdown::sleep(Duration::from_millis(500)) {
        // A dead process ends `up` with its log tail; the rest is stopped by the drops.
        platform.ensure_running()?;
        services.ensure_running()?;
    }
    platform.stop();
    services.stop();
    println!("xtask: everything stopped; the data stays for the next `cargo xtask up`");
    Ok(())
}

fn print_summary(platform: &Platform, services: &Services, admin: &AdminLogin) {
    let edge = &platform.edge;
    println!();
    println!("Meridian is up (profile dev). Through the edge:");
    println!("  edge            {}   {}", edge.http, edge.https);
    println!("  edge ops        {}/metrics", edge.ops);
    for core in &platform.cores {
        println!(
            "  core {:<10} {}   ops {}/metrics",
            core.region, core.http, core.ops
        );
    }
    let monitor = services
        .nats
        .monitor
        .as_deref()
        .map(|url| format!("   monitoring {url}"))
        .unwrap_or_default();
    println!("  NATS            {}{monitor}", services.nats.url.display());
    println!("  Postgres        {}", services.postgres.display());
    println!("  Redis           {}", services.redis.display());
    match &services.smtp {
        Some(smtp) => println!(
            "  mail catcher    {}   (Maildir {})",
            smtp.url,
            smtp.maildir.display()
        ),
        None => println!("  mail            MERIDIAN_SMTP_URL  (from env)"),
    }
    let stored = admin
        .stored_in
        .as_ref()
        .map(|file| format!("   (kept in {})", file.display()))
        .unwrap_or_default();
    println!(
        "  admin login     {} / {}{stored}",
        admin.email, admin.password
    );
    println!("  logs            .meridian/logs/");
    for (name, log) in platform.logs() {
        println!("    {name:<14} {}", log.display());
    }
    println!();
    println!("Press Ctrl-C to stop.");
}
