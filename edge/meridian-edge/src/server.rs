//! Assembles the Pingora server from [`Settings`]: the public proxy service (HTTP, and HTTPS
//! with HTTP/2 offered through ALPN) and the ops service with Prometheus `/metrics`.
//!
//! Nothing runs yet: [`build`] does every fallible step first (ports, certificates, metric
//! registration) so `main` can report a failure and exit before Pingora takes over the process
//! with `run_forever`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use pingora::listeners::TcpSocketOptions;
use pingora::listeners::tls::TlsSettings;
use pingora::proxy::HttpProxy;
use pingora::server::Server;
use pingora::server::ShutdownWatch;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::services::background::{BackgroundService, background_service};
use pingora::services::listening::Service;
use tokio::net::TcpSocket;

use crate::auth::{KeySet, Verifier};
use crate::forward::Forwarder;
use crate::front::{CacheHits, CleanHeads, FrontDoor};
use crate::global_limits::GlobalLimiter;
use crate::metrics::Metrics;
use crate::phases::Phases;
use crate::proxy::EdgeProxy;
use crate::ratelimit::Limits;
use crate::settings::Settings;
use crate::tls;
use crate::upstreams::Upstreams;

/// The ops listener serves a scrape every few seconds; one thread is plenty.
const OPS_THREADS: usize = 1;
/// Then the runtimes get this long to stop before the process exits anyway.
const SHUTDOWN_TIMEOUT_S: u64 = 5;

pub fn build(settings: Settings) -> anyhow::Result<Server> {
    tracing::info!(
        home_region = settings.upstreams.home().as_str(),
        http = %settings.http_addr,
        https = ?settings.https.as_ref().map(|https| https.addr),
        ops = %settings.ops_addr,
        threads = settings.threads.get(),
        "starting the edge"
    );
    check_can_listen(settings.http_addr, "public HTTP")?;
    check_can_listen(settings.ops_addr, "ops")?;
    let https = match &settings.https {
        Some(https) => {
            check_can_listen(https.addr, "public HTTPS")?;
            Some((https.addr, tls::prepare(&https.certificate)?))
        }
        None => None,
    };
    let metrics = Metrics::register().context("cannot register the metrics")?;

    let conf = ServerConf {
        threads: settings.threads.get(),
        // By default one runtime per thread, as nginx runs one event loop per worker: a
        // connection and its tasks stay on the thread they were given, so their I/O never
        // wakes another thread. With work stealing, a proxied request cost about a fifth more
        // CPU (wake-ups across threads, one reactor shared by all of them); it only pays when
        // a few connections carry uneven, heavy work.
        work_stealing: settings.work_stealing,
        grace_period_seconds: Some(settings.grace_period_s),
        graceful_shutdown_timeout_seconds: Some(SHUTDOWN_TIMEOUT_S),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None::<Opt>, conf);
    server.bootstrap();

    let keys = KeySet::new(settings.jwks_url.clone());
    let verifier = Arc::new(Verifier::new(keys.clone()));
    let limits = settings.quotas.map(|quotas| Arc::new(Limits::new(quotas)));
    let upstreams = Arc::new(settings.upstreams);
    let global = settings
        .redis_url
        .map(|url| Arc::new(GlobalLimiter::new(url, settings.redis_prefix)));
    let https_redirect = settings
        .https
        .as_ref()
        .filter(|_| settings.https_redirect)
        .map(|https| https.addr.port());
    let waf = match settings.waf.mode {
        crate::waf::Mode::Off => None,
        mode => {
            tracing::info!(
                ?mode,
                paranoia_level = settings.waf.paranoia_level,
                "WAF on"
            );
            let waf = crate::waf::Waf::new(settings.waf.clone())
                .map_err(|e| anyhow::anyhow!("the WAF's rules do not compile: {e}"))?;
            Some(Arc::new(waf))
        }
    };
    let purger = match settings.cache_bytes {
        Some(bytes) => {
            crate::cache::init(bytes);
            let naming = meridian_jetstream::Naming::new(&settings.nats_prefix)
                .map_err(|e| anyhow::anyhow!("MERIDIAN_NATS_PREFIX: {e}"))?;
            Some(CachePurger {
                nats_url: settings.nats_url.clone(),
                naming,
            })
        }
        None => None,
    };
    // Without work stealing, one service per thread, each with a single-threaded runtime and
    // its own listening sockets (SO_REUSEPORT; the kernel spreads new connections among them),
    // so a connection is accepted, read and answered on one thread, as by an nginx worker.
    // (One service of several threads accepts on one of them and hands each connection to a
    // random thread, while the socket stays registered with the accepting thread's event loop:
    // a request on it cost a wake-up across threads.) An ephemeral port (0) would give each
    // service a port of its own, so it keeps the one service.
    let fixed_ports =
        settings.http_addr.port() != 0 && https.as_ref().is_none_or(|(addr, _)| addr.port() != 0);
    let (services, threads_each) = if settings.work_stealing || !fixed_ports {
        (1, settings.threads.get())
    } else {
        (settings.threads.get(), 1)
    };
    // The front door answers fresh cache hits itself, as the phases would; a shared rate
    // limit needs Redis for every request, so with one every request takes the phases.
    let answers_hits = settings.cache_bytes.is_some() && global.is_none();
    let mut socket_options = TcpSocketOptions::default();
    socket_options.so_reuseport = Some(services > 1);
    for index in 0..services {
        let phases = Phases::standard(
            settings.trusted_hops,
            https_redirect,
            Arc::clone(&upstreams),
            Arc::clone(&verifier),
            limits.clone(),
            global.clone(),
            waf.clone(),
        );
        let proxy = EdgeProxy::new(
            phases,
            Arc::clone(&upstreams),
            metrics.clone(),
            settings.cache_bytes.is_some(),
            Forwarder::new(),
        );
        let mut proxy = HttpProxy::new(proxy, Arc::clone(&server.configuration));
        proxy.handle_init_modules();
        let hits = answers_hits.then(|| CacheHits {
            waf: waf.clone(),
            limits: limits.clone(),
            trusted_hops: settings.trusted_hops,
            plain_http_redirected: https_redirect.is_some(),
            metrics: metrics.clone(),
            clean: CleanHeads::new(),
        });
        let mut public = Service::new("meridian-edge".to_owned(), FrontDoor::new(proxy, hits));
        public.threads = Some(threads_each);
        public.add_tcp_with_settings(
            &listen_key(settings.http_addr, index),
            socket_options.clone(),
        );
        if let Some((addr, files)) = &https {
            let mut tls_settings = TlsSettings::intermediate(&files.cert, &files.key)
                .context("cannot configure TLS")?;
            tls_settings.enable_h2();
            public.add_tls_with_settings(
                &listen_key(*addr, index),
                Some(socket_options.clone()),
                tls_settings,
            );
        }
        server.add_service(public);
    }

    let mut ops = pingora_prometheus::prometheus_http_service();
    ops.threads = Some(OPS_THREADS);
    ops.add_tcp(&settings.ops_addr.to_string());

    server.add_service(ops);
    server.add_service(background_service("signing keys", KeyRefresher(keys)));
    server.add_service(background_service(
        "upstream health",
        HealthChecks(upstreams),
    ));

    if let Some(purger) = purger {
        server.add_service(background_service("cache purge", purger));
    }
    Ok(server)
}

/// `addr` as the `index`-th service listens on it: the port written with `index` leading zeros
/// (`127.0.0.1:8080`, `127.0.0.1:08080`, ...), the same address once parsed. Pingora 0.9 keys
/// its table of listening sockets by the address as written and hands a socket already in the
/// table to any later listener of the same key; two services sharing one socket would each
/// close it at shutdown, the second time closing whatever descriptor reused its number.
fn listen_key(addr: SocketAddr, index: usize) -> String {
    let written = addr.to_string();
    let host = written
        .rsplit_once(':')
        .map_or(written.as_str(), |(host, _)| host);
    format!("{host}:{}{}", "0".repeat(index), addr.port())
}

/// Fails if `addr` cannot be listened on. Pingora retries a busy port for 30 s and then panics
/// inside its service thread, leaving a half-started process; this check turns the common case
/// (a wrong or taken port) into a startup error that names the address.
fn check_can_listen(addr: SocketAddr, listener: &str) -> anyhow::Result<()> {
    let cannot_listen = || format!("cannot listen on {addr} ({listener})");
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .with_context(cannot_listen)?;
    // As Pingora does, so connections of a previous run in TIME_WAIT do not block a restart.
    socket.set_reuseaddr(true).with_context(cannot_listen)?;
    socket.bind(addr).with_context(cannot_listen)
}

/// Keeps the signing keys fresh for as long as the server runs.
struct KeyRefresher(KeySet);

#[async_trait::async_trait]
impl BackgroundService for KeyRefresher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        tokio::select! {
            () = self.0.clone().run_refresher() => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Probes every core every [`PROBE_EVERY`](crate::upstreams::PROBE_EVERY).
struct HealthChecks(Arc<Upstreams>);

#[async_trait::async_trait]
impl BackgroundService for HealthChecks {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let client = reqwest::Client::new();
        loop {
            self.0.check_health(&client).await;
            tokio::select! {
                () = tokio::time::sleep(crate::upstreams::PROBE_EVERY) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Follows the catalog's events and purges the response cache.
struct CachePurger {
    nats_url: String,
    naming: meridian_jetstream::Naming,
}

#[async_trait::async_trait]
impl BackgroundService for CachePurger {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        tokio::select! {
            () = crate::cache::purge::follow_catalog(self.nats_url.clone(), self.naming.clone()) => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_writes_the_same_address_its_own_way() {
        for addr in [
            "127.0.0.1:8080",
            "0.0.0.0:80",
            "[::1]:8443",
            "[fe80::1%2]:443",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            let keys: Vec<String> = (0..4).map(|index| listen_key(addr, index)).collect();
            assert_eq!(keys[0], addr.to_string());
            for key in &keys {
                let parsed: SocketAddr = key.parse().unwrap();
                assert_eq!(parsed, addr, "{key}");
            }
            let mut distinct = keys.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), keys.len(), "{keys:?}");
        }
    }
}
