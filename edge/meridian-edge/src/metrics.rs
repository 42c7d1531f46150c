//! Request metrics, registered in the default Prometheus registry that Pingora's Prometheus
//! service serves on the ops listener.
//!
//! Labelled by status class only: per-path labels would let clients create unbounded series.

use std::time::Duration;

use pingora_prometheus::prometheus::{
    Histogram, IntCounter, register_histogram_vec, register_int_counter_vec,
};

/// The status classes, in the order of [`status_class_index`].
const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

/// The series of every class, resolved once: a label lookup per request costs a hash and a lock.
/// Clones share the series.
#[derive(Clone)]
pub struct Metrics {
    requests: [IntCounter; 6],
    duration: [Histogram; 6],
}

impl Metrics {
    /// Registers the metrics; called once per process (a second registration fails).
    pub fn register() -> anyhow::Result<Self> {
        let requests = register_int_counter_vec!(
            "meridian_edge_requests_total",
            "Requests handled by the edge, by response status class.",
            &["status_class"]
        )?;
        let duration = register_histogram_vec!(
            "meridian_edge_request_duration_seconds",
            "Time from request start to the end of the response, by response status class.",
            &["status_class"]
        )?;
        Ok(Metrics {
            requests: CLASSES.map(|class| requests.with_label_values(&[class])),
            duration: CLASSES.map(|class| duration.with_label_values(&[class])),
        })
    }

    /// Records one finished request; `status` 0 means no response was sent.
    pub fn observe(&self, status: u16, duration: Duration) {
        let class = status_class_index(status);
        self.requests[class].inc();
        self.duration[class].observe(duration.as_secs_f64());
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
    use super::status_class;

    #[test]
    fn statuses_fall_into_their_class() {
        assert_eq!(status_class(200), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(status_class(0), "none");
    }
}
