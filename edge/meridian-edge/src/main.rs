//! Starts the edge. Pingora owns its runtimes, so `main` is a plain function: nothing async runs
//! before `run_forever`, and background work belongs in Pingora background services.

use std::process::ExitCode;

use meridian_edge::{logging, server, settings::Settings};

/// glibc's allocator showed as an eighth of the proxy's CPU profile under load; mimalloc's
/// thread-local free lists make the many small per-request allocations cheap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The exit code for a configuration the edge cannot start with (as `sysexits`' usage errors).
const EXIT_BAD_CONFIGURATION: u8 = 2;

fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("meridian-edge: invalid configuration: {error}");
            return ExitCode::from(EXIT_BAD_CONFIGURATION);
        }
    };
    logging::init();
    match server::build(settings) {
        Ok(server) => server.run_forever(),
        Err(error) => {
            eprintln!("meridian-edge: cannot start: {error:#}");
            ExitCode::from(EXIT_BAD_CONFIGURATION)
        }
    }
}
