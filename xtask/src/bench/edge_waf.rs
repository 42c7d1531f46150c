//! (c) of `bench edge`: what the WAF costs on a shop's mix of requests, and how it compares with
//! nginx running ModSecurity and the OWASP Core Rule Set at paranoia level 1 (Debian's
//! `libnginx-mod-http-modsecurity` and `modsecurity-crs`, installed here), blocking mode.
//!
//! Every proxy stands in front of the same stub upstream (an nginx server answering a fixed
//! JSON document), so the proxies are measured, not the core: the edge with its WAF, the same
//! edge binary with `MERIDIAN_EDGE_WAF=off`, nginx + ModSecurity, and plain nginx for scale.
//! Each gets two loads: GETs with realistic queries, and 1 KB JSON POSTs. Before measuring, every
//! request of both mixes must be answered 200 by every proxy (a WAF that blocks shoppers is not
//! fast, it is broken). Each run's CPU per request is printed by process (from `/proc`, see
//! [`super::cpu`]), which tells the proxy's own cost apart from the machine's noise.
//!
//! The targets are measured in rounds (see [`super::rounds`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use super::cpu::{Sampler, Usage, micros_row};
use super::rounds::{self, ROUNDS, round_seconds};
use super::wrk::{Load, Report};
use crate::apt::{self, Need};
use crate::cmd;
use crate::http;
use crate::layout::{Layout, create_dir};
use crate::process::ManagedChild;
use crate::shutdown;

const WAF_COST_GOAL: f64 = 0.15;
const GET_VS_MODSECURITY_GOAL: f64 = 10.0;
const POST_VS_MODSECURITY_GOAL: f64 = 50.0;
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// GETs a shopper's browser sends: listings and searches with filters, sorts and cursors.
const GET_PATHS: [&str; 6] = [
    "/products?category_id=0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60&limit=20",
    "/search?q=men%27s+running+shoes&min_price=1000&max_price=25000&sort=price_asc",
    "/search?q=usb-c+cable+2m+%28braided%29&limit=20&sort=relevance",
    "/products?cursor=eyJpZCI6IjAxOTZmNWEyIiwidCI6MTcwMDAwMDAwMH0&limit=50",
    "/search?q=caf%C3%A9+cr%C3%A8me+mugs&category_id=0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60",
    "/products/0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60/reviews?limit=10&cursor=MTcwMDAwMDAwMA",
];

/// JSON bodies of about 1 KB, to routes a guest may call (anything else would stop at the
/// edge's route policy, before the WAF): cart lines with gift notes, a registration.
fn post_bodies() -> Vec<(&'static str, String)> {
    let note = "Happy birthday, Sam! I hope these keep your feet dry on the morning runs; \
                the shop says they run half a size small, so I went up one. If they don't fit, \
                the receipt is in the box (exchange within 30 days). Love, Alex & the kids.";
    let review = "Bought these for trail running in the rain: grippy on wet rock, drain fast, \
                  and the toe box is roomy. After 200 km the tread shows some wear near the \
                  heel, which is fine for the price (I paid $89.99 on sale). Sizing: order half \
                  a size up if you're between sizes. Would buy again; 4/5 because the laces \
                  are too short to double-knot.";
    vec![
        (
            "/cart/items",
            serde_json::json!({
                "product_id": "0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60",
                "quantity": 2,
                "gift": {"wrap": true, "message": note, "from": "Alex O'Neill", "to": "Sam"},
                "attributes": {"size": "10.5 US", "color": "slate/orange", "width": "regular"},
                "source": {"page": "running-shoes", "campaign": "autumn-sale", "position": 3},
                "notes": [note, "Please leave at the back door if nobody answers."],
                "card": {"message": note, "printed": true},
            })
            .to_string(),
        ),
        (
            "/cart/items",
            serde_json::json!({
                "product_id": "0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f61",
                "quantity": 1,
                "title": "Great grip, runs small -- size up",
                "review_draft": review,
                "pros": ["grip", "drainage", "roomy toe box"],
                "cons": ["short laces", "heel wear after 200 km"],
                "verified_purchase_hint": "order #A-10023",
                "locale": "en-GB",
                "gift": {"wrap": false, "message": note},
                "photos": ["https://cdn.example/reviews/0196f5a2/1.jpg", "https://cdn.example/reviews/0196f5a2/2.jpg"],
            })
            .to_string(),
        ),
        (
            "/users/register",
            serde_json::json!({
                "email": "siobhan.obrien+shop@example.ie",
                "password": "correct horse battery staple 42!",
                "name": "Siobhán O'Brien-Müller",
                "line1": "12 Rue de l'Église, Bâtiment B",
                "line2": "Apt. #4 (rear entrance, code 1234*)",
                "city": "Saint-Étienne",
                "postal_code": "42000",
                "country": "FR",
                "phone": "+33 4 77 00 00 00",
                "instructions": note,
                "about": review,
                "default": true,
            })
            .to_string(),
        ),
    ]
}

/// One target's two loads, and the CPU each used.
pub struct WafReport {
    pub name: &'static str,
    pub gets: Report,
    pub posts: Report,
    pub gets_cpu: Option<Usage>,
    pub posts_cpu: Option<Usage>,
}

/// The processes whose CPU per request (c) shows: the proxies (the stub upstream is an nginx
/// too, so nginx's column holds the stub's share in every row) and the load generator.
const NAMED: [&str; 3] = ["meridian-edge", "nginx", "wrk"];

/// Measures every target [`ROUNDS`] times; the reports of each round, in target order.
pub fn run(layout: &Layout, edge_binary: &Path, seconds: u64) -> Result<Vec<Vec<WafReport>>> {
    apt::ensure(&[Need::new("nginx", "nginx"), Need::new("wrk", "wrk")])?;
    ensure_packages(&["libnginx-mod-http-modsecurity", "modsecurity-crs"])?;
    let dir = layout.bench().join("waf");
    create_dir(&dir.join("tmp"))?;
    let nginx = Nginx::start(layout, &dir)?;
    let stub = format!("127.0.0.1:{}", nginx.stub_port);
    let mut edge_waf = start_edge(layout, edge_binary, "bench-edge-waf", &stub, "block")?;
    let mut edge_plain = start_edge(layout, edge_binary, "bench-edge-no-waf", &stub, "off")?;

    let gets = dir.join("gets.lua");
    let posts = dir.join("posts.lua");
    std::fs::write(&gets, get_script())?;
    std::fs::write(&posts, post_script(&post_bodies()))?;

    let targets = [
        ("edge+waf", edge_waf.url.clone()),
        ("edge", edge_plain.url.clone()),
        ("nginx+modsec", nginx.modsec_url.clone()),
        ("nginx", nginx.plain_url.clone()),
    ];
    for (name, base) in &targets {
        check_answers(name, base)?;
    }
    let seconds = round_seconds(seconds);
    let sampler = Sampler::start();
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let mut runs = Vec::new();
        for (name, base) in &targets {
            shutdown::check()?;
            let load = |script: &PathBuf, seconds| {
                Load::get(format!("{base}/"), 2, 64, seconds).with_script(script.clone())
            };
            load(&gets, 1).run()?;
            let get_report = load(&gets, seconds).run()?;
            let gets_ended = Instant::now();
            load(&posts, 1).run()?;
            let post_report = load(&posts, seconds).run()?;
            let posts_ended = Instant::now();
            edge_waf.child.ensure_running()?;
            edge_plain.child.ensure_running()?;
            runs.push((*name, get_report, gets_ended, post_report, posts_ended));
        }
        rounds.push(runs);
    }
    let samples = sampler.stop();
    // The first second of each run is left out (connections opening).
    let window = Duration::from_secs(seconds - 1);
    let rounds = rounds
        .into_iter()
        .map(|runs| {
            runs.into_iter()
                .map(|(name, gets, gets_ended, posts, posts_ended)| WafReport {
                    name,
                    gets,
                    posts,
                    gets_cpu: samples.window(gets_ended, window),
                    posts_cpu: samples.window(posts_ended, window),
                })
                .collect()
        })
        .collect();
    Ok(rounds)
}

pub fn print(rounds: &[Vec<WafReport>], seconds: u64) {
    println!();
    println!(
        "(c) WAF: GETs with queries and 1 KB JSON POSTs, each proxy in front of the same stub upstream \
         (wrk: 2 threads, 64 connections, {} s each; every target in turn, {} rounds)",
        round_seconds(seconds),
        rounds.len()
    );
    for (index, reports) in rounds.iter().enumerate() {
        println!(
            "  {:<14} {:>12} {:>10} {:>12} {:>10} {:>8}",
            format!("round {}", index + 1),
            "GETs/s",
            "GET p99",
            "POSTs/s",
            "POST p99",
            "failed"
        );
        for r in reports {
            println!(
                "  {:<14} {:>12.1} {:>8.2}ms {:>12.1} {:>8.2}ms {:>8}",
                r.name,
                r.gets.requests_per_sec,
                r.gets.p99_ms,
                r.posts.requests_per_sec,
                r.posts.p99_ms,
                r.gets.failed + r.posts.failed
            );
        }
    }
    let verdict = |ok: bool| {
        if ok {
            "meets the goal"
        } else {
            "MISSES THE GOAL"
        }
    };
    let rate = |reports: &[WafReport], name: &str, posts: bool| {
        reports.iter().find(|r| r.name == name).map(|r| {
            if posts {
                r.posts.requests_per_sec
            } else {
                r.gets.requests_per_sec
            }
        })
    };
    let cost = |posts: bool| {
        move |reports: &Vec<WafReport>| {
            let (on, off) = (
                rate(reports, "edge+waf", posts)?,
                rate(reports, "edge", posts)?,
            );
            Some(if off > 0.0 {
                (1.0 - on / off) * 100.0
            } else {
                100.0
            })
        }
    };
    let times = |posts: bool| {
        move |reports: &Vec<WafReport>| {
            let (waf, modsec) = (
                rate(reports, "edge+waf", posts)?,
                rate(reports, "nginx+modsec", posts)?,
            );
            Some(if modsec > 0.0 { waf / modsec } else { 0.0 })
        }
    };
    let (Some((get_cost, get_costs)), Some((post_cost, post_costs))) = (
        rounds::median(rounds, 1, cost(false)),
        rounds::median(rounds, 1, cost(true)),
    ) else {
        return;
    };
    println!(
        "  WAF on vs off, median of the rounds: {get_cost:.1}% cost on GETs ({get_costs}), \
         {post_cost:.1}% on POSTs ({post_costs}) (goal <= {:.0}%): {}",
        WAF_COST_GOAL * 100.0,
        verdict(get_cost <= WAF_COST_GOAL * 100.0 && post_cost <= WAF_COST_GOAL * 100.0)
    );
    let (Some((get_ratio, get_ratios)), Some((post_ratio, post_ratios))) = (
        rounds::median(rounds, 1, times(false)),
        rounds::median(rounds, 1, times(true)),
    ) else {
        return;
    };
    println!(
        "  edge+WAF / nginx+ModSecurity (CRS, paranoia level 1), median of the rounds: \
         {get_ratio:.1}x on GETs ({get_ratios}; goal >= {GET_VS_MODSECURITY_GOAL:.0}x): {}; \
         {post_ratio:.1}x on POSTs ({post_ratios}; goal >= {POST_VS_MODSECURITY_GOAL:.0}x): {}",
        verdict(get_ratio >= GET_VS_MODSECURITY_GOAL),
        verdict(post_ratio >= POST_VS_MODSECURITY_GOAL)
    );
    for (index, reports) in rounds.iter().enumerate() {
        print_cpu(index + 1, reports);
    }
}

/// CPU per request by process (µs), GETs then POSTs: what each proxy spends, measured rather
/// than inferred from the throughput of a machine it shares with the load generator.
fn print_cpu(round: usize, reports: &[WafReport]) {
    println!(
        "  CPU per request in round {round}, µs (GETs | POSTs): edge, nginx (the stub's share in \
         every row), wrk, machine"
    );
    for r in reports {
        let gets = micros_row(r.gets_cpu.as_ref(), r.gets.requests_per_sec, &NAMED);
        let posts = micros_row(r.posts_cpu.as_ref(), r.posts.requests_per_sec, &NAMED);
        println!("  {:<14}{gets} |{posts}", r.name);
    }
}

/// Debian packages that bring no program of their own to look for.
fn ensure_packages(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|package| {
            !cmd::command("dpkg-query")
                .args(["-W", "-f=${Status}", package])
                .output()
                .is_ok_and(|out| {
                    String::from_utf8_lossy(&out.stdout).contains("install ok installed")
                })
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    apt::install(&missing)
}

/// Every request of both mixes answered 200 by `base`.
fn check_answers(name: &str, base: &str) -> Result<()> {
    for path in GET_PATHS {
        let response = http::get(&format!("{base}{path}"), CALL_TIMEOUT)?;
        ensure!(
            response.is_success(),
            "{name} answered GET {path} with {}: the mix would not measure a working proxy",
            response.status
        );
    }
    for (path, body) in post_bodies() {
        let response = http::post_json(&format!("{base}{path}"), &body, CALL_TIMEOUT)?;
        ensure!(
            response.is_success(),
            "{name} answered POST {path} with {}: the mix would not measure a working proxy",
            response.status
        );
    }
    Ok(())
}

/// wrk sends `GET_PATHS` in turn, with a browser's headers.
fn get_script() -> String {
    let paths: Vec<String> = GET_PATHS.iter().map(|p| format!("  {p:?},")).collect();
    format!(
        "-- Generated by `cargo xtask bench edge`.\n\
         local paths = {{\n{}\n}}\n\
         local i = 0\n\
         wrk.headers[\"Host\"] = \"shop.example\"\n\
         wrk.headers[\"User-Agent\"] = \"Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0\"\n\
         wrk.headers[\"Accept\"] = \"application/json\"\n\
         wrk.headers[\"Accept-Language\"] = \"en-GB,en;q=0.8\"\n\
         request = function()\n\
         \x20 i = i % #paths + 1\n\
         \x20 return wrk.format(\"GET\", paths[i])\n\
         end\n",
        paths.join("\n")
    )
}

/// wrk sends `bodies` in turn as JSON POSTs.
fn post_script(bodies: &[(&str, String)]) -> String {
    let entries: Vec<String> = bodies
        .iter()
        .map(|(path, body)| format!("  {{ {path:?}, {} }},", lua_string(body)))
        .collect();
    format!(
        "-- Generated by `cargo xtask bench edge`.\n\
         local requests = {{\n{}\n}}\n\
         local i = 0\n\
         wrk.headers[\"Host\"] = \"shop.example\"\n\
         wrk.headers[\"User-Agent\"] = \"Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0\"\n\
         wrk.headers[\"Accept\"] = \"application/json\"\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         request = function()\n\
         \x20 i = i % #requests + 1\n\
         \x20 return wrk.format(\"POST\", requests[i][1], nil, requests[i][2])\n\
         end\n",
        entries.join("\n")
    )
}

/// A Lua long string that cannot be closed by its content.
fn lua_string(text: &str) -> String {
    let mut level = 0;
    while text.contains(&format!("]{}]", "=".repeat(level))) {
        level += 1;
    }
    let eq = "=".repeat(level);
    format!("[{eq}[{text}]{eq}]")
}

struct Edge {
    child: ManagedChild,
    url: String,
}

fn start_edge(
    layout: &Layout,
    binary: &Path,
    name: &str,
    upstream: &str,
    waf: &str,
) -> Result<Edge> {
    let free = || -> Result<u16> {
        Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
            .local_addr()?
            .port())
    };
    let (http, ops) = (free()?, free()?);
    let mut command = cmd::command(binary);
    command
        .current_dir(layout.root())
        .env("MERIDIAN_EDGE_UPSTREAMS", format!("local={upstream}"))
        .env("MERIDIAN_EDGE_HTTP_ADDR", format!("127.0.0.1:{http}"))
        .env("MERIDIAN_EDGE_HTTPS_ADDR", "")
        .env("MERIDIAN_EDGE_OPS_ADDR", format!("127.0.0.1:{ops}"))
        .env("MERIDIAN_EDGE_GRACE_PERIOD_S", "1")
        .env("MERIDIAN_EDGE_RATE_LIMITS", "off")
        .env("MERIDIAN_EDGE_WAF", waf);
    let mut child = ManagedChild::spawn(layout, name, command)?;
    let url = format!("http://127.0.0.1:{http}");
    let readyz = format!("{url}/readyz");
    child.wait_ready(&format!("GET {readyz}"), READY_TIMEOUT, || {
        http::get(&readyz, CALL_TIMEOUT).is_ok_and(|r| r.is_success())
    })?;
    println!("xtask: {name} ready on 127.0.0.1:{http} in front of the stub {upstream}");
    Ok(Edge { child, url })
}

/// One nginx (2 workers): the stub upstream, ModSecurity + CRS in front of it, and a plain proxy.
struct Nginx {
    child: ManagedChild,
    stub_port: u16,
    modsec_url: String,
    plain_url: String,
}

impl Nginx {
    fn start(layout: &Layout, dir: &Path) -> Result<Nginx> {
        let free = || -> Result<u16> {
            Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
                .local_addr()?
                .port())
        };
        let (stub_port, modsec_port, plain_port) = (free()?, free()?, free()?);
        let rules = dir.join("modsecurity.conf");
        std::fs::write(&rules, modsecurity_config(dir))
            .with_context(|| format!("cannot write {}", rules.display()))?;
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, nginx_config(dir, stub_port, modsec_port, plain_port))
            .with_context(|| format!("cannot write {}", conf.display()))?;
        let mut command = cmd::command("nginx");
        command.arg("-p").arg(dir).arg("-c").arg(&conf);
        // Its own process group, stopped as a whole: killing the master alone would leave
        // its workers running.
        let child = ManagedChild::spawn(layout, "bench-nginx-modsecurity", command)?;
        let mut nginx = Nginx {
            child,
            stub_port,
            modsec_url: format!("http://127.0.0.1:{modsec_port}"),
            plain_url: format!("http://127.0.0.1:{plain_port}"),
        };
        // Loading the Core Rule Set takes a moment.
        for _ in 0..200 {
            if http::get(&format!("{}/readyz", nginx.modsec_url), CALL_TIMEOUT)
                .is_ok_and(|r| r.is_success())
            {
                println!(
                    "xtask: nginx ready: stub :{stub_port}, ModSecurity+CRS :{modsec_port}, plain :{plain_port}"
                );
                return Ok(nginx);
            }
            ensure!(
                nginx.child.exit_status().is_none(),
                "nginx exited at start; see {}",
                nginx.child.log().display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        anyhow::bail!("nginx did not answer within 20 s")
    }
}

/// ModSecurity as its recommended configuration sets it up for blocking with the CRS (anomaly
/// scoring, paranoia level 1 by default), minus the audit log.
fn modsecurity_config(dir: &Path) -> String {
    let dir = dir.display();
    format!(
        "# Generated by `cargo xtask bench edge`.\n\
         SecRuleEngine On\n\
         SecRequestBodyAccess On\n\
         SecRule REQUEST_HEADERS:Content-Type \"^(?:application(?:/soap\\+|/)|text/)xml\" \
         \"id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML\"\n\
         SecRule REQUEST_HEADERS:Content-Type \"^application/json\" \
         \"id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON\"\n\
         SecRequestBodyLimit 13107200\n\
         SecRequestBodyNoFilesLimit 131072\n\
         SecRequestBodyLimitAction Reject\n\
         SecRule REQBODY_ERROR \"!@eq 0\" \"id:200002,phase:2,t:none,log,deny,status:400\"\n\
         SecResponseBodyAccess Off\n\
         SecTmpDir {dir}/tmp\n\
         SecDataDir {dir}/tmp\n\
         SecAuditEngine Off\n\
         SecUnicodeMapFile /etc/nginx/unicode.mapping 20127\n\
         Include /etc/modsecurity/crs/crs-setup.conf\n\
         Include /usr/share/modsecurity-crs/rules/*.conf\n"
    )
}

fn nginx_config(dir: &Path, stub_port: u16, modsec_port: u16, plain_port: u16) -> String {
    let dir = dir.display();
    format!(
        "# Generated by `cargo xtask bench edge`.\n\
         load_module /usr/lib/nginx/modules/ndk_http_module.so;\n\
         load_module /usr/lib/nginx/modules/ngx_http_modsecurity_module.so;\n\
         daemon off;\n\
         worker_processes 2;\n\
         pid {dir}/nginx.pid;\n\
         error_log {dir}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n\
         \x20 access_log off;\n\
         \x20 client_body_temp_path {dir}/tmp/body;\n\
         \x20 proxy_temp_path {dir}/tmp/proxy;\n\
         \x20 fastcgi_temp_path {dir}/tmp/fastcgi;\n\
         \x20 uwsgi_temp_path {dir}/tmp/uwsgi;\n\
         \x20 scgi_temp_path {dir}/tmp/scgi;\n\
         \x20 upstream stub {{ server 127.0.0.1:{stub_port}; keepalive 128; }}\n\
         \x20 proxy_http_version 1.1;\n\
         \x20 proxy_set_header Connection \"\";\n\
         \x20 proxy_set_header Host $host;\n\
         \x20 server {{\n\
         \x20   listen 127.0.0.1:{stub_port};\n\
         \x20   location / {{ default_type application/json; return 200 '{{\"ok\":true}}'; }}\n\
         \x20 }}\n\
         \x20 server {{\n\
         \x20   listen 127.0.0.1:{modsec_port};\n\
         \x20   modsecurity on;\n\
         \x20   modsecurity_rules_file {dir}/modsecurity.conf;\n\
         \x20   location / {{ proxy_pass http://stub; }}\n\
         \x20 }}\n\
         \x20 server {{\n\
         \x20   listen 127.0.0.1:{plain_port};\n\
         \x20   location / {{ proxy_pass http://stub; }}\n\
         \x20 }}\n\
         }}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mixes_are_well_formed() {
        for (_, body) in post_bodies() {
            let len = body.len();
            assert!(
                (800..=1400).contains(&len),
                "a body of {len} bytes is not about 1 KB"
            );
            serde_json::from_str::<serde_json::Value>(&body).unwrap();
        }
        assert_eq!(lua_string("a]]b"), "[=[a]]b]=]");
        let script = post_script(&post_bodies());
        assert_eq!(script.matches("{ \"/").count(), 3);
        assert!(get_script().contains("/search?q=men%27s"));
    }
}
