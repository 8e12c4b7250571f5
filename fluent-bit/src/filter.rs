//! The filter's state: the engine, the files it was loaded from, the counters of the
//! module, and the one output buffer.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use iocsieve_engine::record::ReadError;
use iocsieve_engine::{Detector, Emit, Engine, FeedInput, LoadStats, Verdict};

use crate::files::{self, ModuleSettings, Signature};

/// What to return to Fluent Bit for a record.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer<'a> {
    /// The record's own text.
    Unchanged,
    /// Nothing: the record is dropped.
    Drop,
    /// This NUL-terminated JSON object instead.
    Written(&'a [u8]),
}

/// Counts of what the module itself did, next to the engine's counters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ModuleCounters {
    /// Records that arrived as a null pointer (the host could not copy them in): lost.
    pub null_records: u64,
    /// Unreadable records that were not JSON objects, passed on wrapped as `{"log": ...}`.
    pub wrapped_unreadable: u64,
    pub reloads: u64,
    pub reload_failures: u64,
}

/// The filter of one module instance.
#[derive(Debug)]
pub struct Filter {
    dir: PathBuf,
    settings: ModuleSettings,
    engine: Engine,
    indicators: u64,
    /// The files as last seen (loaded or refused): a refused set is not retried until its
    /// files change again.
    seen: Signature,
    next_check: i64,
    next_summary: i64,
    /// The wall clock as last read, the record time it was read for, and the records
    /// that used it since.
    clock: (i64, u32, u32),
    output: Vec<u8>,
    counters: ModuleCounters,
}

/// The most records one reading of the wall clock serves.
pub const CLOCK_READ_EVERY: u32 = 1024;

/// Seconds since the Unix epoch by the wall clock (WASI `clock_time_get` in the module).
pub fn wall_clock_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Filter {
    /// Finds the iocsieve directory and loads it; the error says what is missing or bad.
    pub fn start(now: i64) -> Result<Filter, String> {
        let dir = files::find_directory()?;
        let settings = files::read_module_settings(&dir)?;
        let seen = files::signature(&dir, &settings);
        let (detector, stats) = build(&dir, &settings)?;
        eprintln!(
            "[iocsieve] loaded {} from {}; refresh every {} s, summary every {} s",
            describe(&stats),
            dir.display(),
            settings.refresh_seconds,
            settings.summary_seconds
        );
        Ok(Filter {
            clock: (now, 0, 0),
            next_check: now.saturating_add_unsigned(settings.refresh_seconds),
            next_summary: now.saturating_add_unsigned(settings.summary_seconds),
            dir,
            settings,
            engine: Engine::new(detector),
            indicators: stats.indicators,
            seen,
            output: Vec::new(),
            counters: ModuleCounters::default(),
        })
    }

    /// The wall clock, read again when the record's time (`time_sec`, which Fluent Bit
    /// passes with each record) changed since the last read, and at least every
    /// [`CLOCK_READ_EVERY`] records. A call into the host for every record would cost an
    /// interpreter a sixth of the matching; records stamped within one second mostly
    /// arrive within it.
    pub fn now(&mut self, time_sec: u32) -> i64 {
        let (_, read_for, uses) = &mut self.clock;
        *uses += 1;
        if time_sec == 0 || time_sec != *read_for || *uses >= CLOCK_READ_EVERY {
            self.clock = (wall_clock_seconds(), time_sec, 0);
        }
        self.clock.0
    }

    /// The time-driven work of the filter call: the feed refresh and the summary line.
    pub fn tick(&mut self, now: i64) {
        // A clock set back (it ran ahead before NTP synced) would otherwise hold both off
        // for as long as it was ahead.
        let refresh_due = now.saturating_add_unsigned(self.settings.refresh_seconds);
        self.next_check = self.next_check.min(refresh_due);
        let summary_due = now.saturating_add_unsigned(self.settings.summary_seconds);
        self.next_summary = self.next_summary.min(summary_due);
        if now >= self.next_check {
            self.next_check = now.saturating_add_unsigned(self.settings.refresh_seconds);
            self.refresh();
        }
        if self.settings.summary_seconds > 0 && now >= self.next_summary {
            self.next_summary = now.saturating_add_unsigned(self.settings.summary_seconds);
            eprintln!("[iocsieve] {}", self.summary());
        }
    }

    /// Reloads when the files changed since they were last seen; keeps the set in force
    /// when the new files are bad.
    pub fn refresh(&mut self) {
        let current = files::signature(&self.dir, &self.settings);
        if current == self.seen {
            return;
        }
        self.seen = current;
        match build(&self.dir, &self.settings) {
            Ok((detector, stats)) => {
                self.engine.replace(detector);
                self.indicators = stats.indicators;
                self.counters.reloads += 1;
                eprintln!("[iocsieve] reloaded {}", describe(&stats));
            }
            Err(message) => {
                self.counters.reload_failures += 1;
                eprintln!(
                    "[iocsieve] reload failed, keeping the {} indicators in force: {message}",
                    self.indicators
                );
            }
        }
    }

    /// Counts a record the host could not copy in.
    pub fn count_null_record(&mut self, length: u32) {
        self.counters.null_records += 1;
        if self.counters.null_records == 1 {
            eprintln!(
                "[iocsieve] a record of {length} bytes arrived as a null pointer and is lost: \
                 raise wasm_heap_size (counted as null_records from now on)"
            );
        }
    }

    /// Evaluates one record (without its NUL) at `now`.
    pub fn evaluate(&mut self, record: &[u8], now: i64) -> Answer<'_> {
        let outcome = self.engine.evaluate(record, now);
        match (outcome.emit, outcome.verdict) {
            (Emit::Dropped, _) => Answer::Drop,
            (Emit::Enriched(text), _) => {
                self.output.clear();
                self.output.extend_from_slice(text);
                self.output.push(0);
                Answer::Written(&self.output)
            }
            // Fluent Bit serialised an object deeper than the engine reads: still JSON.
            (Emit::Unchanged, Verdict::Unreadable(ReadError::TooDeep)) => Answer::Unchanged,
            // Not a JSON object, so Fluent Bit cannot take it back: returning it would drop
            // the record, or abort Fluent Bit after a valid record of the same chunk. Wrap
            // it the way Fluent Bit itself carries a line it could not parse.
            (Emit::Unchanged, Verdict::Unreadable(_)) => self.wrap_under_log(record),
            // A line of text the engine read as `{"message": line}` and found nothing in:
            // it is still not an object Fluent Bit could take back.
            (Emit::Unchanged, _) if !starts_an_object(record) => self.wrap_under_log(record),
            (Emit::Unchanged, _) => Answer::Unchanged,
        }
    }

    /// Not a JSON object, so Fluent Bit cannot take it back: returning it would drop the
    /// record, or abort Fluent Bit after a valid record of the same chunk. Wrap it the way
    /// Fluent Bit itself carries a line it could not parse.
    fn wrap_under_log(&mut self, record: &[u8]) -> Answer<'_> {
        self.counters.wrapped_unreadable += 1;
        self.output.clear();
        self.output.extend_from_slice(b"{\"log\":");
        let text = String::from_utf8_lossy(record);
        serde_json::to_writer(&mut self.output, &text).expect("writing to a Vec");
        self.output.extend_from_slice(b"}\0");
        Answer::Written(&self.output)
    }

    /// The module's own counters.
    pub fn module_counters(&self) -> &ModuleCounters {
        &self.counters
    }

    /// One line with every counter, as printed every `summary_seconds`.
    pub fn summary(&self) -> String {
        let c = &self.counters;
        format!(
            "{} null_records={} wrapped_unreadable={} indicators={} reloads={} \
             reload_failures={}",
            self.engine.counters(),
            c.null_records,
            c.wrapped_unreadable,
            self.indicators,
            c.reloads,
            c.reload_failures
        )
    }
}

/// Reads the files and builds a detector from them.
fn build(
    dir: &std::path::Path,
    settings: &ModuleSettings,
) -> Result<(Detector, LoadStats), String> {
    let inputs = files::read_inputs(dir, settings)?;
    let feeds: Vec<FeedInput<'_>> = inputs
        .feeds
        .iter()
        .map(|(name, content)| FeedInput::detected(name, content))
        .collect();
    let settings_name = dir.join(files::SETTINGS_FILE);
    Detector::build(&feeds, &inputs.settings).map_err(|e| {
        if e.input == "settings" {
            format!("{}: {e}", settings_name.display())
        } else {
            format!("{}: {e}", dir.display())
        }
    })
}

fn describe(stats: &LoadStats) -> String {
    let kinds: Vec<String> = stats
        .loaded_by_kind()
        .iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    let feeds: Vec<&str> = stats.feeds.iter().map(|f| f.name.as_str()).collect();
    format!(
        "{} indicators ({}) from {}",
        stats.indicators,
        kinds.join(" "),
        feeds.join(", ")
    )
}

/// Whether the record's first non-blank byte opens a JSON object.
fn starts_an_object(record: &[u8]) -> bool {
    record.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}
