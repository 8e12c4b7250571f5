//! `iocsieve scan`: log records in, tagged (or filtered) records out, through the component.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::component::{DetectorInstance, Emit, Feed, FeedFormat, LoadStats, NamedCount};
use crate::input::{RecordSource, read_feeds, read_settings};

/// What `iocsieve scan` was asked to do.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub feeds: Vec<PathBuf>,
    pub feed_format: FeedFormat,
    pub settings: Option<PathBuf>,
    pub only_hits: bool,
    /// Records per call into the component.
    pub batch_size: usize,
    /// Seconds since the Unix epoch, passed to the engine as the current time.
    pub now: i64,
    /// Log files; `-` or none for standard input.
    pub inputs: Vec<PathBuf>,
}

/// Loads the feeds and settings into `instance`, failing with the name of a bad input.
pub fn load(instance: &mut DetectorInstance, options: &ScanOptions) -> Result<LoadStats> {
    let (feeds, settings) = read_load_inputs(options)?;
    load_inputs(instance, feeds, &settings, options)
}

/// Reads the feed and settings files that `options` names, applying `only_hits`.
pub fn read_load_inputs(options: &ScanOptions) -> Result<(Vec<Feed>, String)> {
    let feeds = read_feeds(&options.feeds, options.feed_format)?;
    let mut settings = read_settings(options.settings.as_deref())?;
    if options.only_hits {
        settings = iocsieve_engine::settings::with_mode(&settings, iocsieve_engine::Mode::HitsOnly)
            .map_err(|e| anyhow::anyhow!("{}: {e}", settings_name(options)))?;
    }
    Ok((feeds, settings))
}

/// Loads feeds and settings already read by [`read_load_inputs`] into `instance`, failing
/// with the name of a bad input.
pub fn load_inputs(
    instance: &mut DetectorInstance,
    feeds: Vec<Feed>,
    settings: &str,
    options: &ScanOptions,
) -> Result<LoadStats> {
    match instance.load(feeds, settings)? {
        Ok(stats) => Ok(stats),
        Err(e) => {
            let input = if e.input == "settings" {
                settings_name(options)
            } else {
                e.input
            };
            match e.line {
                Some(line) => bail!("{input}, line {line}: {}", e.message),
                None => bail!("{input}: {}", e.message),
            }
        }
    }
}

fn settings_name(options: &ScanOptions) -> String {
    options
        .settings
        .as_ref()
        .map_or("settings".into(), |p| p.display().to_string())
}

/// Runs the scan: records from the inputs to `out`, the summary to `err`.
pub fn scan(
    instance: &mut DetectorInstance,
    options: &ScanOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<iocsieve_engine::Counters> {
    let stats = load(instance, options)?;
    writeln!(err, "iocsieve: {}", describe_load(&stats))?;

    let inputs = if options.inputs.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        options.inputs.clone()
    };
    let mut batch = Batch::default();
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let mut record = Vec::new();
    for path in &inputs {
        let mut source = RecordSource::open(path)?;
        while source.next_record(&mut record)? {
            batch.push(&record);
            if batch.len() >= options.batch_size.max(1) {
                batch.flush(instance, options.now, out)?;
                progress.tick(instance, err)?;
            }
        }
    }
    batch.flush(instance, options.now, out)?;
    out.flush()?;
    progress.finish(err)?;

    // Lines that are not UTF-8 crossed as empty lines, which the engine counted as
    // unreadable; the host wrote the original bytes back.
    let counters = instance.counters()?;
    writeln!(err, "iocsieve: {counters}")?;
    Ok(counters)
}

/// Records gathered for one call into the component.
#[derive(Default)]
struct Batch {
    /// The records as sent: one per line.
    text: String,
    /// The records as read, to write back unchanged.
    originals: Vec<u8>,
    ranges: Vec<(usize, usize)>,
}

impl Batch {
    fn len(&self) -> usize {
        self.ranges.len()
    }

    fn push(&mut self, record: &[u8]) {
        let start = self.originals.len();
        self.originals.extend_from_slice(record);
        self.ranges.push((start, self.originals.len()));
        // A record that is not UTF-8 cannot cross as text: an empty line stands in for it,
        // which the engine counts as unreadable, and the original bytes are written back.
        if let Ok(text) = std::str::from_utf8(record) {
            self.text.push_str(text);
        }
        self.text.push('\n');
    }

    fn flush(
        &mut self,
        instance: &mut DetectorInstance,
        now: i64,
        out: &mut dyn Write,
    ) -> Result<()> {
        if self.ranges.is_empty() {
            return Ok(());
        }
        let outcomes = instance.evaluate_batch(&self.text, now)?;
        if outcomes.len() != self.ranges.len() {
            bail!(
                "the component returned {} outcomes for {} records",
                outcomes.len(),
                self.ranges.len()
            );
        }
        for (outcome, &(start, end)) in outcomes.iter().zip(&self.ranges) {
            match &outcome.emit {
                Emit::Unchanged => out.write_all(&self.originals[start..end])?,
                Emit::Enriched(text) => out.write_all(text.as_bytes())?,
                Emit::Dropped => continue,
            }
            out.write_all(b"\n")?;
        }
        self.text.clear();
        self.originals.clear();
        self.ranges.clear();
        Ok(())
    }
}

/// A progress line on standard error, when it is a terminal.
struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
    shown: bool,
}

impl Progress {
    fn new(enabled: bool) -> Progress {
        let now = Instant::now();
        Progress {
            enabled,
            started: now,
            last: now,
            shown: false,
        }
    }

    fn tick(&mut self, instance: &mut DetectorInstance, err: &mut dyn Write) -> Result<()> {
        if !self.enabled || self.last.elapsed() < Duration::from_secs(1) {
            return Ok(());
        }
        self.last = Instant::now();
        let c = instance.counters()?;
        let rate = c.records_in as f64 / self.started.elapsed().as_secs_f64();
        write!(
            err,
            "\riocsieve: {} records, {} hits, {} suppressed, {:.0} records/s ",
            c.records_in, c.hits, c.suppressed, rate
        )?;
        self.shown = true;
        Ok(())
    }

    fn finish(&mut self, err: &mut dyn Write) -> Result<()> {
        if self.shown {
            writeln!(err)?;
        }
        Ok(())
    }
}

/// One line on what a load built.
pub fn describe_load(stats: &LoadStats) -> String {
    let feeds: Vec<String> = stats
        .feeds
        .iter()
        .map(|f| {
            let mut s = format!(
                "{} ({}, {} entries: {}",
                f.name,
                f.format,
                f.entries,
                counts(&f.loaded)
            );
            if !f.skipped.is_empty() {
                s.push_str(&format!("; skipped {}", counts(&f.skipped)));
                // Name a few skipped values so the warning can be checked.
                for e in &f.skipped_examples {
                    s.push_str(&format!("; {}: e.g. {}", e.name, e.values.join(" ")));
                }
            }
            s.push(')');
            s
        })
        .collect();
    format!(
        "loaded {} indicators from {}; exclusions: {}; profiles: {}",
        stats.indicators,
        feeds.join(", "),
        if stats.exclusions.is_empty() {
            "none".into()
        } else {
            stats.exclusions.join(", ")
        },
        stats.profiles.join(", "),
    )
}

fn counts(list: &[NamedCount]) -> String {
    if list.is_empty() {
        return "none".into();
    }
    list.iter()
        .map(|c| format!("{}={}", c.name, c.count))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses `--now`: RFC 3339, or seconds since the Unix epoch.
pub fn parse_now(text: &str) -> Result<i64> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    iocsieve_engine::timestamp::parse_feed_time(text)
        .with_context(|| format!("--now {text:?} is neither RFC 3339 nor seconds since 1970"))
}

/// The current time in seconds since the Unix epoch.
pub fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
