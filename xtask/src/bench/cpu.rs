//! Where a benchmark's CPU goes: a thread samples, once a second, the CPU time of every process on
//! the machine (grouped by command name) and the machine's busy time, from `/proc`. A benchmark
//! then reads the use over a window it knows to be steady, and divides it by the work done there.
//!
//! Linux only; elsewhere the sampler records nothing and every window is `None`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_secs(1);

/// The kernel's unit of CPU time in `/proc` (USER_HZ, 100 on every Linux architecture in use).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time in clock ticks of every process (its command name and ticks, by pid), and the
/// machine's busy ticks (every CPU: user, nice, system, irq and softirq; not idle, iowait, or
/// steal, which another guest used).
#[derive(Debug, Clone, Default, PartialEq)]
struct Snapshot {
    by_pid: HashMap<u32, (String, u64)>,
    busy: u64,
}

#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    snapshot: Snapshot,
}

pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Sample>>,
}

/// The samples of one run, to read windows from.
pub struct Samples {
    samples: Vec<Sample>,
}

/// CPU seconds used over a window, by command name (largest first), and by the whole machine.
#[derive(Debug, PartialEq)]
pub struct Usage {
    pub seconds: f64,
    pub by_command: Vec<(String, f64)>,
    pub busy: f64,
}

impl Sampler {
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                if let Some(snapshot) = read_snapshot() {
                    samples.push(Sample {
                        at: Instant::now(),
                        snapshot,
                    });
                }
                std::thread::sleep(INTERVAL);
            }
            samples
        });
        Self { stop, thread }
    }

    pub fn stop(self) -> Samples {
        self.stop.store(true, Ordering::Relaxed);
        Samples {
            samples: self.thread.join().unwrap_or_default(),
        }
    }
}

impl Samples {
    /// The use between the last sample taken by `end - length` and the last taken by `end`.
    pub fn window(&self, end: Instant, length: Duration) -> Option<Usage> {
        let start = end.checked_sub(length)?;
        let last_by = |t: Instant| self.samples.iter().rev().find(|s| s.at <= t);
        let (first, last) = (last_by(start)?, last_by(end)?);
        let seconds = last.at.duration_since(first.at).as_secs_f64();
        if seconds <= 0.0 {
            return None;
        }
        Some(usage(&first.snapshot, &last.snapshot, seconds))
    }
}

fn usage(first: &Snapshot, last: &Snapshot, seconds: f64) -> Usage {
    // Ticks are small whole numbers; f64 holds them exactly.
    #[allow(clippy::cast_precision_loss)]
    let to_seconds = |ticks: u64| ticks as f64 / TICKS_PER_SECOND;
    // Per process, so that one ending inside the window takes nothing from the others: it
    // counts for nothing (its last ticks are lost), one starting inside counts whole.
    let mut ticks: HashMap<&str, u64> = HashMap::new();
    for (pid, (command, now)) in &last.by_pid {
        let before = match first.by_pid.get(pid) {
            Some((same, before)) if same == command => *before,
            _ => 0,
        };
        *ticks.entry(command).or_default() += now.saturating_sub(before);
    }
    let mut by_command: Vec<(String, f64)> = ticks
        .into_iter()
        .filter(|(_, used)| *used > 0)
        .map(|(command, used)| (command.to_owned(), to_seconds(used)))
        .collect();
    by_command.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Usage {
        seconds,
        by_command,
        busy: to_seconds(last.busy.saturating_sub(first.busy)),
    }
}

impl Usage {
    /// `used` CPU seconds per unit of work, for work done at `rate` units per second over this
    /// window (0 when nothing was done).
    pub fn per_unit(&self, rate: f64, used: f64) -> f64 {
        let units = rate * self.seconds;
        if units > 0.0 { used / units } else { 0.0 }
    }

    /// The CPU of each of `commands`, then of the whole machine, in µs per request at `rate`
    /// requests per second, as table cells.
    pub fn micros_per_request(&self, rate: f64, commands: &[&str]) -> Vec<String> {
        commands
            .iter()
            .map(|command| self.of(command))
            .chain(std::iter::once(self.busy))
            .map(|used| format!("{:.0}", self.per_unit(rate, used) * 1e6))
            .collect()
    }

    /// CPU seconds of `command` (0 if it did not run).
    pub fn of(&self, command: &str) -> f64 {
        self.by_command
            .iter()
            .find(|(name, _)| name == command)
            .map_or(0.0, |(_, used)| *used)
    }
}

/// A table row of [`Usage::micros_per_request`] (`?` where the window could not be read),
/// right-aligned in 6 columns each.
pub fn micros_row(usage: Option<&Usage>, rate: f64, commands: &[&str]) -> String {
    let cells = match usage {
        Some(usage) => usage.micros_per_request(rate, commands),
        None => vec!["?".to_owned(); commands.len() + 1],
    };
    cells.iter().map(|cell| format!("{cell:>6}")).collect()
}

#[cfg(target_os = "linux")]
fn read_snapshot() -> Option<Snapshot> {
    let busy = parse_busy(&std::fs::read_to_string("/proc/stat").ok()?)?;
    let mut by_pid = HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may exit between the listing and the read: skip it.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((command, ticks)) = parse_process(&stat) {
            by_pid.insert(pid, (command.to_owned(), ticks));
        }
    }
    Some(Snapshot { by_pid, busy })
}

#[cfg(not(target_os = "linux"))]
fn read_snapshot() -> Option<Snapshot> {
    None
}

/// The command name and utime + stime of a `/proc/PID/stat` line. The name sits in parentheses
/// and may itself hold spaces and parentheses, so the fields are counted after the last `)`.
fn parse_process(stat: &str) -> Option<(&str, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let command = stat.get(open + 1..close)?;
    // After the name: state (field 3), ..., utime (14), stime (15).
    let mut fields = stat.get(close + 1..)?.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((command, utime + stime))
}

/// Busy ticks of the `cpu` line of `/proc/stat`: user, nice, system, irq, softirq (modes 1, 2, 3,
/// 6, 7 of user nice system idle iowait irq softirq steal guest guest_nice; guest time is already
/// in user and nice).
fn parse_busy(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [user, nice, system, _idle, _iowait, irq, softirq, ..] = ticks[..] else {
        return None;
    };
    Some(user + nice + system + irq + softirq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_process_whose_name_holds_spaces_and_parentheses() {
        let stat = "4242 (tokio (rt) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 \
                    4 0 123 456 789";
        assert_eq!(parse_process(stat), Some(("tokio (rt) 1", 325)));
        assert_eq!(parse_process("4242 (short) S 1"), None);
        assert_eq!(parse_process("garbage"), None);
    }

    #[test]
    fn busy_time_leaves_out_idle_and_iowait() {
        let stat = "cpu  100 5 50 1000 20 1 9 3 7 0\ncpu0 50 2 25 500 10 0 4 1 0 0\n";
        assert_eq!(parse_busy(stat), Some(100 + 5 + 50 + 1 + 9));
        assert_eq!(parse_busy("cpu  1 2 3\n"), None);
        assert_eq!(parse_busy("intr 1 2 3\n"), None);
    }

    fn sample(at: Instant, processes: &[(u32, &str, u64)], busy: u64) -> Sample {
        Sample {
            at,
            snapshot: Snapshot {
                by_pid: processes
                    .iter()
                    .map(|(pid, command, ticks)| (*pid, ((*command).to_owned(), *ticks)))
                    .collect(),
                busy,
            },
        }
    }

    #[test]
    fn a_window_is_read_between_the_samples_that_bracket_it() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let samples = Samples {
            samples: vec![
                sample(at(0), &[(1, "postgres", 0), (2, "k6", 0)], 0),
                sample(
                    at(1),
                    &[(1, "postgres", 100), (2, "k6", 10), (3, "postgres", 900)],
                    150,
                ),
                sample(
                    at(2),
                    &[(1, "postgres", 250), (2, "k6", 30), (4, "pgbench", 40)],
                    400,
                ),
                // pid 3 (a postgres backend) ended; pid 5 started.
                sample(
                    at(3),
                    &[(1, "postgres", 400), (2, "k6", 50), (5, "postgres", 20)],
                    600,
                ),
            ],
        };
        // From the sample at 1 s to the one at 3 s.
        let usage = samples
            .window(at(3) + Duration::from_millis(500), Duration::from_secs(2))
            .unwrap();
        assert!((usage.seconds - 2.0).abs() < 1e-9);
        assert_eq!(
            usage.by_command,
            vec![("postgres".to_owned(), 3.2), ("k6".to_owned(), 0.4)]
        );
        assert!((usage.busy - 4.5).abs() < 1e-9);
        assert!((usage.of("k6") - 0.4).abs() < 1e-9);
        assert!(usage.of("nginx").abs() < 1e-9);
        // 100 requests a second for 2 s: postgres' 3.2 s is 16 ms a request, the machine 22.5.
        assert!((usage.per_unit(100.0, usage.of("postgres")) - 0.016).abs() < 1e-12);
        assert_eq!(
            usage.micros_per_request(100.0, &["postgres", "nginx"]),
            ["16000", "0", "22500"]
        );
        assert!(usage.per_unit(0.0, 1.0).abs() < 1e-12);
        // Nothing was sampled before the window began.
        assert_eq!(samples.window(at(3), Duration::from_secs(10)), None);
    }
}
