//! Prometheus metrics: requests and latency by route pattern, upstream errors, and (read at
//! scrape time from the database) signatures by state and the outbox's depth and age.
use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    upstream_errors: IntCounterVec,
    pub signatures: IntGaugeVec,
    pub outbox: IntGaugeVec,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let requests = IntCounterVec::new(Opts::new("rally_http_requests_total", "HTTP requests by route, method and status"), &["route", "method", "status"]).expect("metric");
    let latency = HistogramVec::new(
        HistogramOpts::new("rally_http_request_duration_seconds", "HTTP latency by route")
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
        &["route"],
    )
    .expect("metric");
    let upstream_errors = IntCounterVec::new(Opts::new("rally_upstream_errors_total", "Failed calls to outside services"), &["service"]).expect("metric");
    let signatures = IntGaugeVec::new(Opts::new("rally_signatures", "Signatures by state"), &["state"]).expect("metric");
    let outbox = IntGaugeVec::new(Opts::new("rally_outbox", "Outbox: pending emails (depth) and the age of the oldest in seconds (oldest_age_seconds)"), &["measure"]).expect("metric");
    for m in [Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>, Box::new(latency.clone()), Box::new(upstream_errors.clone()), Box::new(signatures.clone()), Box::new(outbox.clone())] {
        registry.register(m).expect("unique metric names");
    }
    Metrics { registry, requests, latency, upstream_errors, signatures, outbox }
});

pub fn observe_request(route: &str, method: &str, status: u16, elapsed: Duration) {
    let m = &*METRICS;
    m.requests.with_label_values(&[route, method, &status.to_string()]).inc();
    m.latency.with_label_values(&[route]).observe(elapsed.as_secs_f64());
}

pub fn upstream_error(service: &str) {
    METRICS.upstream_errors.with_label_values(&[service]).inc();
}

pub fn render() -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&METRICS.registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}
