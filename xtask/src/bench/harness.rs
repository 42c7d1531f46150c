//! What most benchmarks stand on: services, a release build, migrated and seeded (dev profile), one
//! core (the first region) and the edge on free ports. Everything stops when the harness drops.

use anyhow::Result;

use crate::admin;
use crate::apt::{self, Need};
use crate::cargo::{self, Profile};
use crate::layout::Layout;
use crate::model;
use crate::platform::{self, Binaries, Launch, Platform, Ports};
use crate::services::{Mail, Services};
use crate::shutdown;

pub struct Harness {
    // Field order is drop order: the platform stops before the services it uses.
    pub platform: Platform,
    pub services: Services,
}

impl Harness {
    pub fn start(layout: &Layout) -> Result<Self> {
        Self::start_with_cache(layout, false)
    }

    /// [`Harness::start`], with the edge's response cache on or off.
    pub fn start_with_cache(layout: &Layout, edge_cache: bool) -> Result<Self> {
        let mut tools = apt::BUILD_TOOLS.to_vec();
        tools.push(Need::new("wrk", "wrk"));
        apt::ensure(&tools)?;
        let services = Services::ensure(layout, Mail::Off)?;
        shutdown::check()?;
        cargo::build_binaries(layout, Profile::Release)?;
        shutdown::check()?;
        let binaries = Binaries::locate(layout, Profile::Release)?;
        let admin = admin::resolve(layout)?;
        let embed_model = model::ensure(layout)?;
        let regions = platform::regions()?;
        let regions = &regions[..1];
        platform::migrate_and_seed(layout, &binaries, &services, &regions[0], &admin)?;
        let ports = Ports::free(regions.len())?;
        let platform = Platform::start(&Launch {
            layout,
            binaries: &binaries,
            services: &services,
            regions,
            ports: &ports,
            name_prefix: "bench-",
            rate_limits: false,
            edge_cache,
            embed_model: &embed_model,
        })?;
        Ok(Self { platform, services })
    }

    /// Base URL of the (first) core, e.g. `http://127.0.0.1:40123`.
    pub fn core(&self) -> &str {
        &self.platform.cores[0].http
    }

    pub fn edge(&self) -> &str {
        &self.platform.edge.http
    }

    /// Fails when a process died during a measurement (its numbers would be meaningless).
    pub fn ensure_running(&mut self) -> Result<()> {
        self.platform.ensure_running()?;
        self.services.ensure_running()
    }
}
