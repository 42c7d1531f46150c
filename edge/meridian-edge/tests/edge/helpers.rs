//! The test harness: a fake core that echoes requests as JSON, and the edge process under test.

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A port nothing listens on (bound, then released): for a listener the test starts there.
pub fn free_port() -> u16 {
    let [port] = free_ports();
    port
}

/// An address that refuses connections, for a dead core or Redis: port 1 (tcpmux), where
/// nothing on the machine listens. A released ephemeral port could be taken meanwhile by a
/// listener of a test running beside.
pub const DEAD_ADDR: &str = "127.0.0.1:1";

/// `N` different ports nothing listens on: all bound at once, then released (one at a time,
/// the system may hand out the same port twice).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners = [(); N].map(|()| StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap());
    listeners.map(|listener| listener.local_addr().unwrap().port())
}

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TestDir(PathBuf);

impl TestDir {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "meridian-edge-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).unwrap();
        TestDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a fake core received, as it echoes it back.
#[derive(Debug, Deserialize)]
pub struct Echo {
    pub core: String,
    pub path: String,
    headers: Vec<(String, String)>,
    /// The body received (by Content-Length), lossily as text.
    #[serde(default)]
    pub body: String,
    /// Which forwarded request this answered (1 for the first).
    #[serde(default)]
    pub hit: usize,
}

impl Echo {
    /// Every value received under `name` (lowercase).
    pub fn header(&self, name: &str) -> Vec<&str> {
        let matching = self.headers.iter().filter(|(n, _)| n == name);
        matching.map(|(_, value)| value.as_str()).collect()
    }

    pub fn header_names(&self) -> impl Iterator<Item = &str> {
        self.headers.iter().map(|(name, _)| name.as_str())
    }
}

/// A fake core: answers every request with an [`Echo`] of it, and counts them (the edge's own
/// `/readyz` probes and JWKS fetches aside); with a JWKS,
/// it serves that at `/.well-known/jwks.json` as the users service does.
pub struct EchoCore {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

/// How a fake core's answers may be cached.
#[derive(Clone, Copy)]
pub struct Caching {
    pub cache_control: &'static str,
    pub vary: Option<&'static str>,
    /// How long each answer takes, so that concurrent requests overlap.
    pub delay: Duration,
}

impl Caching {
    /// Public for a minute, after 300 ms.
    pub const MINUTE: Caching = Caching {
        cache_control: "public, max-age=60",
        vary: None,
        delay: Duration::from_millis(300),
    };
}

impl EchoCore {
    pub async fn start(name: &'static str) -> Self {
        Self::start_with_jwks(name, None).await
    }

    pub async fn start_with_jwks(name: &'static str, jwks: Option<String>) -> Self {
        Self::start_with(name, jwks, None).await
    }

    /// A core whose answers may be cached for a minute, and come slowly (300 ms), so that
    /// concurrent requests overlap.
    pub async fn start_cacheable(name: &'static str) -> Self {
        Self::start_caching(name, Caching::MINUTE).await
    }

    /// A core whose answers may be cached as `caching` says.
    pub async fn start_caching(name: &'static str, caching: Caching) -> Self {
        Self::start_with(name, None, Some(caching)).await
    }

    async fn start_with(
        name: &'static str,
        jwks: Option<String>,
        caching: Option<Caching>,
    ) -> Self {
        let jwks: Option<Arc<str>> = jwks.map(Into::into);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let failing = Arc::new(AtomicBool::new(false));
        let (counter, fails) = (Arc::clone(&hits), Arc::clone(&failing));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(echo(
                    stream,
                    name,
                    (Arc::clone(&counter), Arc::clone(&fails)),
                    jwks.clone(),
                    caching,
                ));
            }
        });
        EchoCore {
            addr,
            hits,
            failing,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// From now on, answer every forwarded request with a 503 (or, `false`, normally again).
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

/// Answers one request per connection (`Connection: close`), reading a body by its
/// Content-Length.
async fn echo(
    mut stream: TcpStream,
    name: &'static str,
    (hits, failing): (Arc<AtomicUsize>, Arc<AtomicBool>),
    jwks: Option<Arc<str>>,
    caching: Option<Caching>,
) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    let end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(head.len())
        + 4;
    let mut received_body = head.split_off(end.min(head.len()));
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.split("\r\n");
    let request_line: Vec<&str> = lines.next().unwrap_or_default().split(' ').collect();
    // The edge's own health probes and key fetches are not requests it forwarded.
    let forwarded = !matches!(
        request_line.get(1),
        Some(&"/readyz" | &"/.well-known/jwks.json")
    );
    let hit = if forwarded {
        hits.fetch_add(1, Ordering::SeqCst) + 1
    } else {
        0
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    while received_body.len() < length {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => received_body.extend_from_slice(&buffer[..n]),
        }
    }
    let received_body = String::from_utf8_lossy(&received_body);
    let path = request_line.get(1).copied().unwrap_or_default();
    let body = match &jwks {
        Some(jwks) if path == "/.well-known/jwks.json" => jwks.to_string(),
        _ => serde_json::json!({"core": name, "path": path, "headers": headers, "body": received_body, "hit": hit})
            .to_string(),
    };
    let mut cache_headers = String::new();
    if let Some(caching) = caching {
        tokio::time::sleep(caching.delay).await;
        cache_headers = format!("cache-control: {}\r\n", caching.cache_control);
        if let Some(vary) = caching.vary {
            cache_headers.push_str(&format!("vary: {vary}\r\n"));
        }
    }
    let status = if forwarded && failing.load(Ordering::SeqCst) {
        cache_headers.clear();
        "503 Service Unavailable"
    } else {
        "200 OK"
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         {cache_headers}connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
}

/// A `Host` of `shop.example` and what a client might forge in the headers the edge asserts:
/// its address, scheme and host, and an identity.
pub fn forged_forwarding() -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in [
        ("host", "shop.example"),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-real-ip", "6.6.6.6"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
        ("x-meridian-user-id", "admin"),
    ] {
        headers.insert(name, reqwest::header::HeaderValue::from_static(value));
    }
    headers
}

/// How to start an edge.
pub struct EdgeConfig {
    pub upstreams: String,
    /// The development certificate directory; `None` disables HTTPS.
    pub tls_dir: Option<PathBuf>,
    /// More environment for the edge.
    pub env: Vec<(&'static str, String)>,
}

impl EdgeConfig {
    pub fn with_upstreams(upstreams: String) -> Self {
        EdgeConfig {
            upstreams,
            tls_dir: None,
            env: Vec::new(),
        }
    }

    pub fn in_front_of(core: &EchoCore) -> Self {
        Self::with_upstreams(format!("local={}", core.addr))
    }

    pub fn with_env(mut self, name: &'static str, value: &str) -> Self {
        self.env.push((name, value.to_owned()));
        self
    }

    pub fn with_tls_dir(mut self, dir: &Path) -> Self {
        self.tls_dir = Some(dir.to_owned());
        self
    }
}

/// The environment shared by every edge the tests start: nothing inherited from the caller.
pub fn edge_command(workdir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_meridian-edge"));
    command
        .env_clear()
        .env("RUST_LOG", "info")
        .env("MERIDIAN_EDGE_THREADS", "1")
        .current_dir(workdir);
    command
}

/// Runs a command that must exit by itself, and returns what it printed.
pub fn run_to_exit(mut command: Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the edge did not exit on a bad configuration");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A running edge; killed when dropped, its log printed if the test failed.
pub struct TestEdge {
    child: Child,
    log: PathBuf,
    pub http: SocketAddr,
    pub https: Option<SocketAddr>,
    pub ops: SocketAddr,
    pub client: reqwest::Client,
}

impl TestEdge {
    pub async fn start(config: EdgeConfig, workdir: &Path) -> Self {
        let localhost = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let [http, ops, https] = free_ports().map(localhost);
        let https = config.tls_dir.as_ref().map(|_| https);
        let log = workdir.join(format!("edge-{}.log", http.port()));

        let mut command = edge_command(workdir);
        command
            .env("MERIDIAN_EDGE_HTTP_ADDR", http.to_string())
            .env("MERIDIAN_EDGE_OPS_ADDR", ops.to_string())
            .env("MERIDIAN_EDGE_UPSTREAMS", &config.upstreams)
            .env(
                "MERIDIAN_EDGE_HTTPS_ADDR",
                https.map(|a| a.to_string()).unwrap_or_default(),
            );
        if let Some(dir) = &config.tls_dir {
            command.env("MERIDIAN_EDGE_TLS_DIR", dir);
        }
        command.envs(config.env.iter().map(|(name, value)| (name, value)));
        let output = std::fs::File::create(&log).unwrap();
        let child = command
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .unwrap();

        let client = reqwest::Client::builder()
            .no_proxy()
            .danger_accept_invalid_certs(true)
            .tls_info(true)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut edge = TestEdge {
            child,
            log,
            http,
            https,
            ops,
            client,
        };
        edge.wait_until_serving().await;
        edge
    }

    /// What the edge has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    pub fn https_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.https.expect("HTTPS is enabled"))
    }

    pub fn ops_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.ops)
    }

    async fn wait_until_serving(&mut self) {
        let mut probes = vec![self.url("/healthz"), self.ops_url("/metrics")];
        probes.extend(self.https.map(|_| self.https_url("/healthz")));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        for probe in probes {
            loop {
                if let Some(status) = self.exited() {
                    panic!("the edge exited with {status} while starting");
                }
                let response = self.client.get(&probe).send().await;
                if response.is_ok_and(|r| r.status().is_success()) {
                    break;
                }
                assert!(Instant::now() < deadline, "{probe} never answered");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }
}

impl Drop for TestEdge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- edge log ({}) ---\n{log}", self.log.display());
        }
    }
}
