//! Running `wrk --latency` and reading its report.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// One wrk run.
pub struct Load {
    pub url: String,
    pub threads: u32,
    pub connections: u32,
    pub duration: Duration,
    /// A Lua script (`-s`), e.g. for POST bodies.
    pub script: Option<PathBuf>,
    /// An extra request header (`-H`), e.g. `Authorization: Bearer ...`.
    pub header: Option<String>,
}

impl Load {
    pub fn get(url: impl Into<String>, threads: u32, connections: u32, seconds: u64) -> Self {
        Self {
            url: url.into(),
            threads,
            connections,
            duration: Duration::from_secs(seconds),
            script: None,
            header: None,
        }
    }

    pub fn with_header(mut self, header: String) -> Self {
        self.header = Some(header);
        self
    }

    pub fn with_script(mut self, script: PathBuf) -> Self {
        self.script = Some(script);
        self
    }

    pub fn run(&self) -> Result<Report> {
        self.spawn()?.finish()
    }

    /// Starts wrk in the background (for two loads at once); [`Running::finish`] collects it.
    pub fn spawn(&self) -> Result<Running> {
        let mut command = cmd::command("wrk");
        command
            .arg(format!("--threads={}", self.threads))
            .arg(format!("--connections={}", self.connections))
            .arg(format!("--duration={}s", self.duration.as_secs().max(1)))
            .args(["--timeout=5s", "--latency"]);
        if let Some(script) = &self.script {
            command.arg("--script").arg(script);
        }
        if let Some(header) = &self.header {
            command.arg("--header").arg(header);
        }
        command
            .arg(&self.url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let description = cmd::describe(&command);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start `{description}`"))?;
        Ok(Running { child, description })
    }
}

pub struct Running {
    child: Child,
    description: String,
}

impl Running {
    pub fn finish(self) -> Result<Report> {
        let output = self
            .child
            .wait_with_output()
            .with_context(|| format!("`{}` did not finish", self.description))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "`{}` failed ({}): {}{}",
                self.description,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim(),
                stdout.trim()
            );
        }
        parse(&stdout).with_context(|| {
            format!(
                "cannot read the report of `{}`:\n{stdout}",
                self.description
            )
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    /// Non-2xx/3xx responses plus socket errors (connect, read, write, timeout).
    pub failed: u64,
}

/// Reads wrk's text report (`--latency` is required for the percentiles).
pub fn parse(report: &str) -> Result<Report> {
    let mut requests_per_sec = None;
    let mut p50_ms = None;
    let mut p99_ms = None;
    let mut requests = None;
    let mut failed = 0;
    for line in report.lines().map(str::trim) {
        if let Some(value) = line.strip_prefix("Requests/sec:") {
            requests_per_sec = Some(value.trim().parse::<f64>()?);
        } else if let Some(value) = line.strip_prefix("50%") {
            p50_ms = Some(duration_ms(value.trim())?);
        } else if let Some(value) = line.strip_prefix("99%") {
            p99_ms = Some(duration_ms(value.trim())?);
        } else if let Some(value) = line.strip_prefix("Non-2xx or 3xx responses:") {
            failed += value.trim().parse::<u64>()?;
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 12"
            for part in errors.split(',') {
                if let Some(count) = part.split_whitespace().nth(1) {
                    failed += count.parse::<u64>()?;
                }
            }
        } else if line.contains(" requests in ") {
            requests = line
                .split_whitespace()
                .next()
                .and_then(|count| count.parse().ok());
        }
    }
    Ok(Report {
        requests_per_sec: requests_per_sec.context("no Requests/sec line")?,
        p50_ms: p50_ms.context("no 50% latency (was --latency given?)")?,
        p99_ms: p99_ms.context("no 99% latency (was --latency given?)")?,
        requests: requests.context("no request count")?,
        failed,
    })
}

/// wrk's durations: `635.00us`, `1.03ms`, `2.50s`, `1.00m`.
fn duration_ms(text: &str) -> Result<f64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .with_context(|| format!("duration `{text}` has no unit"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .with_context(|| format!("bad duration `{text}`"))?;
    let factor = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1_000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => bail!("unknown duration unit in `{text}`"),
    };
    Ok(number * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "\
Running 10s test @ http://127.0.0.1:8081/products/1
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.23ms    2.00ms  40.00ms   90.00%
    Req/Sec    12.34k     1.00k   14.00k    70.00%
  Latency Distribution
     50%  635.00us
     75%    1.03ms
     90%    1.84ms
     99%    5.38ms
  245678 requests in 10.00s, 120.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 5
Requests/sec:  24567.80
Transfer/sec:     12.00MB
";

    #[test]
    fn parses_a_report() {
        let report = parse(REPORT).unwrap();
        assert_eq!(report.requests, 245_678);
        assert_eq!(report.failed, 10);
        assert!((report.requests_per_sec - 24_567.8).abs() < 1e-6);
        assert!((report.p50_ms - 0.635).abs() < 1e-9);
        assert!((report.p99_ms - 5.38).abs() < 1e-9);
    }

    #[test]
    fn rejects_a_report_without_percentiles() {
        let without = REPORT
            .lines()
            .filter(|line| !line.trim_start().starts_with("99%"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(parse(&without).is_err());
    }

    #[test]
    fn converts_units() {
        assert!((duration_ms("2.50s").unwrap() - 2500.0).abs() < 1e-9);
        assert!((duration_ms("1.00m").unwrap() - 60_000.0).abs() < 1e-9);
        assert!(duration_ms("12").is_err());
        assert!(duration_ms("3.0xs").is_err());
    }
}
