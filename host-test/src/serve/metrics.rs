//! The sidecar's metrics, written in the Prometheus text format: the engine's counters
//! (summed over the workers), batches, refusals, downstream errors, reloads and latency.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use iocsieve_engine::Counters;

/// How a batch ended, as counted in `iocsieve_batches_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchResult {
    /// The downstream accepted the results (or there were none to send); the sender got 200.
    Delivered,
    /// The body could not be read as records (400, 413 or 415): retrying cannot help.
    Rejected,
    /// The downstream failed or timed out; the sender got 503 and retries.
    DownstreamFailed,
    /// The component could not be run; the sender got 503 and retries.
    EngineFailed,
}

impl BatchResult {
    const ALL: [BatchResult; 4] = [
        BatchResult::Delivered,
        BatchResult::Rejected,
        BatchResult::DownstreamFailed,
        BatchResult::EngineFailed,
    ];

    fn label(self) -> &'static str {
        match self {
            BatchResult::Delivered => "delivered",
            BatchResult::Rejected => "rejected",
            BatchResult::DownstreamFailed => "downstream_failed",
            BatchResult::EngineFailed => "engine_failed",
        }
    }
}

/// Why a post to the downstream failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownstreamError {
    /// It answered with a status other than 2xx.
    Status,
    /// It did not answer within the timeout.
    Timeout,
    /// The connection failed (refused, reset, ..).
    Transport,
}

impl DownstreamError {
    const ALL: [DownstreamError; 3] = [
        DownstreamError::Status,
        DownstreamError::Timeout,
        DownstreamError::Transport,
    ];

    fn label(self) -> &'static str {
        match self {
            DownstreamError::Status => "status",
            DownstreamError::Timeout => "timeout",
            DownstreamError::Transport => "transport",
        }
    }
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A Prometheus histogram of durations.
#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(&mut self.counts) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

/// One worker's engine counters. An instance's counters restart from zero after a trap;
/// what it had counted before is carried so that the totals never go down.
#[derive(Default, Clone)]
struct WorkerCounters {
    carried: iocsieve_engine::Counters,
    last: iocsieve_engine::Counters,
    traps: u64,
}

/// Every metric of the sidecar. Shared by the dispatcher and the workers.
#[derive(Default)]
pub struct Metrics {
    batches: [AtomicU64; 4],
    downstream_errors: [AtomicU64; 3],
    /// Records in the request bodies, as received.
    pub records_received: AtomicU64,
    /// Records posted to the downstream and accepted by it.
    pub records_delivered: AtomicU64,
    /// Records the best-effort socket path could not write downstream.
    pub records_lost: AtomicU64,
    /// Lines that were not UTF-8: passed on unchanged without evaluation.
    pub records_not_utf8: AtomicU64,
    /// Requests refused with 429 because the queue was full.
    pub overloaded: AtomicU64,
    /// Requests refused with 401.
    pub unauthorized: AtomicU64,
    /// Batches queued or being evaluated or delivered.
    pub in_flight: AtomicI64,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// 1 when the last reload succeeded (or none was tried), 0 when it failed.
    pub last_reload_ok: AtomicI64,
    /// The generation of the indicator set in force (1 at start, +1 per good reload).
    pub generation: AtomicU64,
    /// Indicators in the set in force.
    pub indicators: AtomicU64,
    batch_seconds: Mutex<Histogram>,
    downstream_seconds: Mutex<Histogram>,
    workers: Mutex<BTreeMap<usize, WorkerCounters>>,
}

impl Metrics {
    /// Counts a finished batch and how long it took from receipt to answer.
    pub fn batch_done(&self, result: BatchResult, elapsed: Duration) {
        self.batches[result as usize].fetch_add(1, Ordering::Relaxed);
        lock(&self.batch_seconds).observe(elapsed.as_secs_f64());
    }

    /// Batches that ended with `result` so far.
    pub fn batches(&self, result: BatchResult) -> u64 {
        self.batches[result as usize].load(Ordering::Relaxed)
    }

    pub fn downstream_failed(&self, error: DownstreamError) {
        self.downstream_errors[error as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Records how long a post to the downstream took, whatever its result.
    pub fn downstream_took(&self, elapsed: Duration) {
        lock(&self.downstream_seconds).observe(elapsed.as_secs_f64());
    }

    /// Stores worker `id`'s latest counters from its instance.
    pub fn worker_counters(&self, id: usize, counters: &Counters, traps: u64) {
        let now = counters.clone();
        let mut workers = lock(&self.workers);
        let slot = workers.entry(id).or_default();
        if now.records_in < slot.last.records_in {
            let last = std::mem::take(&mut slot.last);
            slot.carried.add(&last);
        }
        slot.last = now;
        slot.traps = traps;
    }

    /// The engine's counters summed over the workers, and the records that trapped.
    pub fn engine_totals(&self) -> (iocsieve_engine::Counters, u64) {
        let workers = lock(&self.workers);
        let mut total = iocsieve_engine::Counters::default();
        let mut traps = 0;
        for w in workers.values() {
            total.add(&w.carried);
            total.add(&w.last);
            traps += w.traps;
        }
        (total, traps)
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 << 10);
        let (engine, traps) = self.engine_totals();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);

        counter(
            &mut out,
            "iocsieve_records_in_total",
            "Records the engine evaluated.",
            engine.records_in,
        );
        counter(
            &mut out,
            "iocsieve_records_out_total",
            "Records the engine passed on.",
            engine.records_out,
        );
        counter(
            &mut out,
            "iocsieve_hits_total",
            "Records with a hit no exclusion suppressed.",
            engine.hits,
        );
        counter(
            &mut out,
            "iocsieve_suppressed_total",
            "Records whose hits an exclusion suppressed.",
            engine.suppressed,
        );
        counter(
            &mut out,
            "iocsieve_unreadable_total",
            "Records that were not JSON objects (passed on unchanged).",
            engine.unreadable,
        );
        counter(
            &mut out,
            "iocsieve_without_profile_total",
            "Records no profile applied to.",
            engine.without_profile,
        );
        counter(
            &mut out,
            "iocsieve_address_only_hits_total",
            "Hits on an ip:port indicator's address alone.",
            engine.address_only_hits,
        );
        counter(
            &mut out,
            "iocsieve_dropped_misses_total",
            "Misses dropped in hits-only mode.",
            engine.dropped_misses,
        );
        counter(
            &mut out,
            "iocsieve_dropped_suppressed_total",
            "Suppressed hits dropped in hits-only mode.",
            engine.dropped_suppressed,
        );
        counter(
            &mut out,
            "iocsieve_output_key_collisions_total",
            "Records whose enrichment key already existed.",
            engine.output_key_collisions,
        );
        counter(
            &mut out,
            "iocsieve_expired_total",
            "Matches on indicators past their end of validity, not reported.",
            engine.expired,
        );
        counter(
            &mut out,
            "iocsieve_not_yet_valid_total",
            "Matches on indicators not valid yet, not reported.",
            engine.not_yet_valid,
        );
        counter(
            &mut out,
            "iocsieve_text_lines_total",
            "Records that were a line of text rather than JSON.",
            engine.text_lines,
        );
        counter(
            &mut out,
            "iocsieve_cef_messages_total",
            "Records read as a CEF message.",
            engine.cef_messages,
        );
        counter(
            &mut out,
            "iocsieve_traps_total",
            "Records that made the engine trap (passed on unchanged).",
            traps,
        );
        labelled(
            &mut out,
            "iocsieve_hits_by_kind_total",
            "Matching values by indicator kind.",
            "kind",
            &engine.hits_by_kind,
        );
        labelled(
            &mut out,
            "iocsieve_suppressions_total",
            "Suppressed hits by exclusion rule.",
            "exclusion",
            &engine.suppressions_by_exclusion,
        );
        labelled(
            &mut out,
            "iocsieve_records_by_profile_total",
            "Records by field profile.",
            "profile",
            &engine.records_by_profile,
        );

        let batches: BTreeMap<String, u64> = BatchResult::ALL
            .iter()
            .map(|r| (r.label().to_string(), self.batches(*r)))
            .collect();
        labelled(
            &mut out,
            "iocsieve_batches_total",
            "Batches received, by how they ended.",
            "result",
            &batches,
        );
        counter(
            &mut out,
            "iocsieve_records_received_total",
            "Records received in batches.",
            load(&self.records_received),
        );
        counter(
            &mut out,
            "iocsieve_records_delivered_total",
            "Records the downstream accepted.",
            load(&self.records_delivered),
        );
        counter(
            &mut out,
            "iocsieve_records_lost_total",
            "Records the best-effort socket path could not write downstream (the HTTP path loses none).",
            load(&self.records_lost),
        );
        counter(
            &mut out,
            "iocsieve_records_not_utf8_total",
            "Lines that were not UTF-8, passed on unchanged.",
            load(&self.records_not_utf8),
        );
        let refused: BTreeMap<String, u64> = [
            ("overload".to_string(), load(&self.overloaded)),
            ("unauthorized".to_string(), load(&self.unauthorized)),
        ]
        .into_iter()
        .collect();
        labelled(
            &mut out,
            "iocsieve_requests_refused_total",
            "Requests refused: 429 when the queue is full, 401 without the token.",
            "reason",
            &refused,
        );
        let errors: BTreeMap<String, u64> = DownstreamError::ALL
            .iter()
            .map(|e| {
                (
                    e.label().to_string(),
                    load(&self.downstream_errors[*e as usize]),
                )
            })
            .collect();
        labelled(
            &mut out,
            "iocsieve_downstream_errors_total",
            "Failed posts to the downstream, by kind.",
            "error",
            &errors,
        );
        gauge(
            &mut out,
            "iocsieve_batches_in_flight",
            "Batches queued or in progress.",
            self.in_flight.load(Ordering::Relaxed),
        );
        let reloads: BTreeMap<String, u64> = [
            ("ok".to_string(), load(&self.reloads_ok)),
            ("failed".to_string(), load(&self.reloads_failed)),
        ]
        .into_iter()
        .collect();
        labelled(
            &mut out,
            "iocsieve_feed_reloads_total",
            "Feed reloads, by result.",
            "result",
            &reloads,
        );
        gauge(
            &mut out,
            "iocsieve_feed_last_reload_ok",
            "1 if the last reload succeeded or none was tried, 0 if it failed and the previous set stays in force.",
            self.last_reload_ok.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "iocsieve_feed_generation",
            "Generation of the indicator set in force.",
            load(&self.generation) as i64,
        );
        gauge(
            &mut out,
            "iocsieve_indicators",
            "Indicators in the set in force.",
            load(&self.indicators) as i64,
        );
        lock(&self.batch_seconds).write(
            &mut out,
            "iocsieve_batch_duration_seconds",
            "Time from receiving a batch to answering it, downstream included.",
        );
        lock(&self.downstream_seconds).write(
            &mut out,
            "iocsieve_downstream_duration_seconds",
            "Time of each post to the downstream.",
        );
        out
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a metrics lock leaves consistent numbers behind; keep serving.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

fn gauge(out: &mut String, name: &str, help: &str, value: i64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

fn labelled(out: &mut String, name: &str, help: &str, label: &str, values: &BTreeMap<String, u64>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (key, value) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {value}", escape_label(key));
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::default();
        h.observe(0.003);
        h.observe(0.3);
        let mut out = String::new();
        h.write(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"0.0025\"} 0\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.5\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 2\n"), "{out}");
        assert!(out.contains("x_count 2\n"), "{out}");
    }

    fn counters(records_in: u64, hits: u64, kind: &str) -> Counters {
        Counters {
            records_in,
            records_out: records_in,
            hits,
            hits_by_kind: [(kind.to_string(), hits)].into(),
            ..Counters::default()
        }
    }

    #[test]
    fn worker_totals_add_up_and_survive_an_instance_restart() {
        let metrics = Metrics::default();
        metrics.worker_counters(0, &counters(10, 2, "ipv4"), 0);
        metrics.worker_counters(1, &counters(5, 1, "sha256"), 0);
        metrics.worker_counters(0, &counters(12, 3, "ipv4"), 0);
        // Worker 1's instance trapped and restarted from zero.
        metrics.worker_counters(1, &counters(4, 0, "sha256"), 1);
        let (total, traps) = metrics.engine_totals();
        assert_eq!(total.records_in, 12 + 5 + 4);
        assert_eq!(total.hits, 3 + 1);
        assert_eq!(total.hits_by_kind["ipv4"], 3);
        assert_eq!(total.hits_by_kind["sha256"], 1);
        assert_eq!(traps, 1);
        let text = metrics.render();
        assert!(text.contains("iocsieve_records_in_total 21\n"), "{text}");
        assert!(
            text.contains("iocsieve_hits_by_kind_total{kind=\"ipv4\"} 3\n"),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
