//! Request metrics, registered in the default Prometheus registry that Pingora's Prometheus
//! service serves on the ops listener.
//!
//! Labelled by status class only: per-path labels would let clients create unbounded series.
//! Each proxy thread counts in its own slot ([`PerThread`]) and a scrape adds the slots up: a
//! counter that every thread increments sends its cache line between cores with every request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pingora_prometheus::prometheus::core::{Collector, Desc};
use pingora_prometheus::prometheus::proto::{
    Bucket, Counter, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use pingora_prometheus::prometheus::{DEFAULT_BUCKETS, register};

use crate::per_thread::PerThread;

/// The status classes, in the order of [`status_class_index`].
const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];
const REQUESTS: &str = "meridian_edge_requests_total";
const REQUESTS_HELP: &str = "Requests handled by the edge, by response status class.";
const DURATION: &str = "meridian_edge_request_duration_seconds";
const DURATION_HELP: &str =
    "Time from request start to the end of the response, by response status class.";
/// The histogram's upper bounds, in seconds (Prometheus' defaults); `+Inf` is implied.
const BOUNDS: &[f64; 11] = DEFAULT_BUCKETS;

/// One thread's counts of one status class (its requests are the buckets' sum).
#[derive(Default)]
struct Counts {
    /// Requests per bucket (not cumulative): the first bound at or over the duration, or
    /// past the last bound.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    /// The durations' sum, in nanoseconds (exact, unlike a float added to in place).
    nanos: AtomicU64,
}

/// The request counter and duration histogram, by status class. Clones share the counts.
#[derive(Clone)]
pub struct Metrics {
    counts: Arc<PerThread<[Counts; CLASSES.len()]>>,
}

impl Metrics {
    /// Registers the metrics; called once per process (a second registration fails).
    pub fn register() -> anyhow::Result<Self> {
        let metrics = Metrics {
            counts: Arc::new(PerThread::new(Default::default)),
        };
        register(Box::new(Scraped::new(metrics.clone())?))?;
        Ok(metrics)
    }

    /// Records one finished request; `status` 0 means no response was sent.
    pub fn observe(&self, status: u16, duration: Duration) {
        let counts = &self.counts.mine()[status_class_index(status)];
        let seconds = duration.as_secs_f64();
        let bucket = BOUNDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BOUNDS.len());
        // Relaxed: each count is read on its own; a scrape may see a request's bucket and not
        // yet its duration in the sum, as with Prometheus' own histograms.
        counts.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        counts.nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The counts of class `class` (an index of [`CLASSES`]) summed over the threads:
    /// requests, the cumulative bucket counts, and the durations' sum in seconds.
    fn totals(&self, class: usize) -> (u64, [u64; BOUNDS.len()], f64) {
        let mut buckets = [0; BOUNDS.len() + 1];
        let mut nanos: u128 = 0;
        for counts in self.counts.iter() {
            let counts = &counts[class];
            for (total, count) in buckets.iter_mut().zip(&counts.buckets) {
                *total += count.load(Ordering::Relaxed);
            }
            nanos += u128::from(counts.nanos.load(Ordering::Relaxed));
        }
        let mut cumulative = [0; BOUNDS.len()];
        let mut running = 0;
        for (at, count) in buckets[..BOUNDS.len()].iter().enumerate() {
            running += count;
            cumulative[at] = running;
        }
        let requests = running + buckets[BOUNDS.len()];
        (requests, cumulative, nanos as f64 / 1e9)
    }
}

/// What the registry scrapes: both families, summed from the threads' counts.
struct Scraped {
    metrics: Metrics,
    descs: [Desc; 2],
}

impl Scraped {
    fn new(metrics: Metrics) -> anyhow::Result<Self> {
        let desc = |name: &str, help: &str| {
            Desc::new(
                name.to_owned(),
                help.to_owned(),
                vec!["status_class".to_owned()],
                Default::default(),
            )
        };
        Ok(Scraped {
            metrics,
            descs: [
                desc(REQUESTS, REQUESTS_HELP)?,
                desc(DURATION, DURATION_HELP)?,
            ],
        })
    }
}

impl Collector for Scraped {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut requests = Vec::with_capacity(CLASSES.len());
        let mut durations = Vec::with_capacity(CLASSES.len());
        for (class, name) in CLASSES.iter().enumerate() {
            let (count, cumulative, seconds) = self.metrics.totals(class);
            let labelled = || {
                let mut label = LabelPair::default();
                label.set_name("status_class".to_owned());
                label.set_value((*name).to_owned());
                let mut metric = Metric::default();
                metric.set_label(vec![label]);
                metric
            };
            let mut counter = Counter::default();
            counter.set_value(count as f64);
            let mut metric = labelled();
            metric.set_counter(counter);
            requests.push(metric);

            let mut histogram = Histogram::default();
            histogram.set_sample_count(count);
            histogram.set_sample_sum(seconds);
            let buckets = BOUNDS.iter().zip(cumulative).map(|(bound, count)| {
                let mut bucket = Bucket::default();
                bucket.set_upper_bound(*bound);
                bucket.set_cumulative_count(count);
                bucket
            });
            histogram.set_bucket(buckets.collect());
            let mut metric = labelled();
            metric.set_histogram(histogram);
            durations.push(metric);
        }
        let family = |name: &str, help: &str, kind, metrics| {
            let mut family = MetricFamily::default();
            family.set_name(name.to_owned());
            family.set_help(help.to_owned());
            family.set_field_type(kind);
            family.set_metric(metrics);
            family
        };
        vec![
            family(REQUESTS, REQUESTS_HELP, MetricType::COUNTER, requests),
            family(DURATION, DURATION_HELP, MetricType::HISTOGRAM, durations),
        ]
    }
}

fn status_class_index(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100) - 1,
        _ => 5,
    }
}

#[cfg(test)]
fn status_class(status: u16) -> &'static str {
    CLASSES[status_class_index(status)]
}

#[cfg(test)]
mod tests {
    use pingora_prometheus::prometheus::{Encoder, Registry, TextEncoder};

    use super::*;

    #[test]
    fn statuses_fall_into_their_class() {
        assert_eq!(status_class(200), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(status_class(0), "none");
    }

    /// Requests counted on several threads are scraped as their sum, in Prometheus' text
    /// format: the counter, and the histogram's cumulative buckets, count and sum.
    #[test]
    fn a_scrape_adds_up_every_threads_counts() {
        let metrics = Metrics {
            counts: Arc::new(PerThread::new(Default::default)),
        };
        std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| {
                    metrics.observe(200, Duration::from_millis(3));
                    metrics.observe(200, Duration::from_millis(40));
                    metrics.observe(404, Duration::from_secs(20));
                });
            }
        });
        let registry = Registry::new();
        registry
            .register(Box::new(Scraped::new(metrics.clone()).unwrap()))
            .unwrap();
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut text)
            .unwrap();
        let text = String::from_utf8(text).unwrap();
        for line in [
            "# TYPE meridian_edge_requests_total counter",
            "meridian_edge_requests_total{status_class=\"2xx\"} 6",
            "meridian_edge_requests_total{status_class=\"4xx\"} 3",
            "meridian_edge_requests_total{status_class=\"5xx\"} 0",
            "# TYPE meridian_edge_request_duration_seconds histogram",
            "meridian_edge_request_duration_seconds_bucket{status_class=\"2xx\",le=\"0.005\"} 3",
            "meridian_edge_request_duration_seconds_bucket{status_class=\"2xx\",le=\"0.025\"} 3",
            "meridian_edge_request_duration_seconds_bucket{status_class=\"2xx\",le=\"0.05\"} 6",
            "meridian_edge_request_duration_seconds_bucket{status_class=\"2xx\",le=\"+Inf\"} 6",
            "meridian_edge_request_duration_seconds_sum{status_class=\"2xx\"} 0.129",
            "meridian_edge_request_duration_seconds_count{status_class=\"2xx\"} 6",
            "meridian_edge_request_duration_seconds_bucket{status_class=\"4xx\",le=\"10\"} 0",
            "meridian_edge_request_duration_seconds_bucket{status_class=\"4xx\",le=\"+Inf\"} 3",
            "meridian_edge_request_duration_seconds_sum{status_class=\"4xx\"} 60",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
    }
}
