//! `meridian-core [serve|migrate|seed-dev|openapi]`: see the README for the environment.

use meridian_platform::settings::{Profile, Settings};
use tokio::net::TcpListener;

/// The services allocate many short-lived buffers per request (JSON, SQL rows, NATS messages);
/// mimalloc serves them with less CPU than glibc's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: meridian-core [serve|migrate|seed-dev|openapi]";

fn main() -> std::process::ExitCode {
    meridian_platform::telemetry::init_tracing();
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("meridian-core: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("meridian-core {command}: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: &str) -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    match command {
        "serve" => serve(settings).await,
        "migrate" => meridian_core::app::migrate(&settings).await,
        "seed-dev" => seed_dev(settings).await,
        "openapi" => {
            let services = meridian_core::registry::select(&settings.services)?;
            let document = meridian_core::openapi::of(&services);
            println!("{}", serde_json::to_string_pretty(&document)?);
            Ok(())
        }
        other => anyhow::bail!("unknown command {other:?}\n{USAGE}"),
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    tracing::info!(?settings, "starting");
    let listener = TcpListener::bind(settings.http_addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding {}: {e}", settings.http_addr))?;
    let ops_listener = TcpListener::bind(settings.ops_addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding {}: {e}", settings.ops_addr))?;
    let core = meridian_core::app::build(&settings).await?;
    tracing::info!(http = %settings.http_addr, ops = %settings.ops_addr, "serving");
    core.serve(listener, ops_listener, shutdown_signal()).await
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down");
}

/// The dev profile's data: the admin account and the demo catalog. Refuses to run unless the
/// dev profile was chosen explicitly.
async fn seed_dev(settings: Settings) -> anyhow::Result<()> {
    anyhow::ensure!(
        settings.profile == Profile::Dev,
        "seed-dev runs only with MERIDIAN_PROFILE=dev"
    );
    let email =
        std::env::var("MERIDIAN_ADMIN_EMAIL").unwrap_or_else(|_| "admin@meridian.local".into());
    let password = std::env::var("MERIDIAN_ADMIN_PASSWORD").map_err(|_| {
        anyhow::anyhow!("set MERIDIAN_ADMIN_PASSWORD (cargo xtask up generates one)")
    })?;
    meridian_core::app::migrate(&settings).await?;
    let users =
        meridian_platform::db::connect(&settings.database_url, meridian_users::SCHEMA, 2).await?;
    let admin_id = meridian_users::seed::ensure_admin(&users, &email, &password).await?;
    let catalog =
        meridian_platform::db::connect(&settings.database_url, meridian_catalog::SCHEMA, 2).await?;
    let seeded = meridian_catalog::seed::seed_demo(&catalog, &settings.region, admin_id).await?;
    let inventory =
        meridian_platform::db::connect(&settings.database_url, meridian_inventory::SCHEMA, 2)
            .await?;
    let stocked =
        meridian_inventory::seed::ensure_stock(&inventory, &seeded.product_ids, &settings.regions)
            .await?;
    println!(
        "seeded: admin {email}; {} new categories, {} new products, {stocked} new stock rows in {}",
        seeded.categories,
        seeded.products,
        settings.regions.join(", ")
    );
    Ok(())
}
