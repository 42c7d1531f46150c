//! Scores the WAF against a labelled corpus of requests, one JSON object per line:
//!
//! ```json
//! {"id": "...", "category": "sqli", "pl": 1, "attack": true, "method": "GET",
//!  "uri": "/path?query", "headers": [["Name", "value"]], "body_b64": ""}
//! ```
//!
//! `pl` (optional) is the paranoia level at which the request is expected to be caught; attacks
//! above the level under test are left out, benign requests always count.
//!
//! `cargo run --release -p meridian-edge --example waf-eval -- CORPUS.jsonl [--paranoia N] [--misses] [--disable ID|LO-HI]...`
//!
//! The corpus is not part of the repository: build it from any public attack collection in this
//! format. `examples/waf-corpus/` converts three from their checkouts: gotestwaf's test cases
//! (attacks and benign texts), the OWASP CRS regression tests (attacks, with their levels) and
//! openappsec's mgm-web-attack-payloads (attacks and benign texts).

use std::collections::BTreeMap;
use std::io::BufRead;

use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use meridian_edge::waf::{Config, Request, Waf};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    id: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    pl: Option<u8>,
    attack: bool,
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    #[serde(default)]
    body_b64: String,
}

#[derive(Default)]
struct Tally {
    attacks: usize,
    caught: usize,
    benign: usize,
    blocked: usize,
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or_else(|| {
        anyhow::anyhow!(
            "usage: waf-eval CORPUS.jsonl [--paranoia N] [--misses] [--disable ID|LO-HI]..."
        )
    })?;
    let mut paranoia = 1;
    let mut show_misses = false;
    let mut disabled = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--paranoia" => paranoia = args.next().unwrap_or_default().parse()?,
            "--misses" => show_misses = true,
            "--disable" => disabled.push(format!("{:?}", args.next().unwrap_or_default())),
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let text = Config::default_file()
        .replace(
            "paranoia_level = 1",
            &format!("paranoia_level = {paranoia}"),
        )
        .replace(
            "disabled_rules = []",
            &format!("disabled_rules = [{}]", disabled.join(",")),
        );
    let waf =
        Waf::new(Config::parse(&text).map_err(anyhow::Error::msg)?).map_err(anyhow::Error::msg)?;

    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut skipped = 0;
    let file = std::io::BufReader::new(std::fs::File::open(&path)?);
    let started = std::time::Instant::now();
    let mut inspected = 0u32;
    for line in file.lines() {
        let case: Case = serde_json::from_str(&line?)?;
        if case.attack && case.pl.is_some_and(|pl| pl > paranoia) {
            continue;
        }
        let Ok(method) = Method::from_bytes(case.method.as_bytes()) else {
            skipped += 1;
            continue;
        };
        let mut headers = HeaderMap::new();
        let mut bad_header = false;
        for (name, value) in &case.headers {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value.as_bytes()),
            ) {
                (Ok(name), Ok(value)) => {
                    headers.append(name, value);
                }
                _ => bad_header = true,
            }
        }
        if bad_header {
            // The HTTP parser refuses these before any phase runs.
            skipped += 1;
            continue;
        }
        let body = base64::engine::general_purpose::STANDARD.decode(&case.body_b64)?;
        let (path, query) = match case.uri.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (case.uri.as_str(), None),
        };
        let verdict = waf.inspect(&Request {
            method: &method,
            path,
            query,
            headers: &headers,
            body: &body,
        });
        inspected += 1;
        let tally = tallies.entry(case.category.clone()).or_default();
        if case.attack {
            tally.attacks += 1;
            tally.caught += usize::from(verdict.anomalous);
            if !verdict.anomalous {
                misses.push(format!(
                    "MISS {} {} {}",
                    case.id,
                    case.method,
                    case.uri.chars().take(160).collect::<String>()
                ));
            }
        } else {
            tally.benign += 1;
            tally.blocked += usize::from(verdict.anomalous);
            if verdict.anomalous {
                misses.push(format!(
                    "FP   {} {} {} [{}]",
                    case.id,
                    case.method,
                    case.uri.chars().take(120).collect::<String>(),
                    verdict.rule_ids()
                ));
            }
        }
    }
    let elapsed = started.elapsed();
    let mut total = Tally::default();
    println!("paranoia level {paranoia}: {path}");
    println!(
        "{:<10} {:>8} {:>8} {:>9} {:>8} {:>8} {:>7}",
        "category", "attacks", "caught", "detection", "benign", "blocked", "FP"
    );
    for (category, t) in &tallies {
        println!(
            "{category:<10} {:>8} {:>8} {:>8.1}% {:>8} {:>8} {:>6.1}%",
            t.attacks,
            t.caught,
            pct(t.caught, t.attacks),
            t.benign,
            t.blocked,
            pct(t.blocked, t.benign)
        );
        total.attacks += t.attacks;
        total.caught += t.caught;
        total.benign += t.benign;
        total.blocked += t.blocked;
    }
    println!(
        "{:<10} {:>8} {:>8} {:>8.1}% {:>8} {:>8} {:>6.1}%",
        "all",
        total.attacks,
        total.caught,
        pct(total.caught, total.attacks),
        total.benign,
        total.blocked,
        pct(total.blocked, total.benign)
    );
    println!(
        "{inspected} requests in {:.0} ms ({:.1} us each); {skipped} skipped (unparseable method or header)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / f64::from(inspected.max(1))
    );
    if show_misses {
        for miss in misses {
            println!("{miss}");
        }
    }
    Ok(())
}

fn pct(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}
