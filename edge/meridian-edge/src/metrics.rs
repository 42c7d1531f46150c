//! Request metrics, registered in the default Prometheus registry that Pingora's Prometheus
//! service serves on the ops listener.
//!
//! Labelled by status class only: per-path labels would let clients create unbounded series.

use std::time::Duration;

use pingora_prometheus::prometheus::{
    HistogramVec, IntCounterVec, register_histogram_vec, register_int_counter_vec,
};

pub struct Metrics {
    requests: IntCounterVec,
    duration: HistogramVec,
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
        Ok(Metrics { requests, duration })
    }

    /// Records one finished request; `status` 0 means no response was sent.
    pub fn observe(&self, status: u16, duration: Duration) {
        let class = status_class(status);
        self.requests.with_label_values(&[class]).inc();
        self.duration
            .with_label_values(&[class])
            .observe(duration.as_secs_f64());
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
    }
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
