//! `iocsieve bench`: records per second natively, through the component one record per
//! call, and through the component in batches, on the same records and indicators.
//!
//! Loading and instantiation stay outside the timed loops; each loop runs `repeat` times and
//! the fastest run is reported. Time is the calling thread's CPU time, so the figures are
//! records per second per core and hold on a machine busy with other work; wall-clock time
//! is printed beside it. Time is the calling thread's CPU time, so the figures are
//! records per second per core and hold on a machine busy with other work; wall-clock time
//! is printed beside it. Every mode must find the same hits, or the bench fails:
//! a fast wrong answer is not a result.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use iocsieve_engine::{Detector, Engine, FeedInput, Verdict};

use crate::component::{ComponentRuntime, Execution, Feed, feed_format};
use crate::input::{read_feeds, read_settings};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub feeds: Vec<PathBuf>,
    pub settings: Option<PathBuf>,
    pub records: PathBuf,
    pub batch_size: usize,
    pub repeat: usize,
    pub now: i64,
    /// Also measure the component under wasmtime's Pulley interpreter.
    pub interpreted: bool,
}

/// One measured mode.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub mode: String,
    /// The fastest run, in thread CPU time.
    pub best: Duration,
    /// The wall-clock time of that run.
    pub wall: Duration,
    pub records: usize,
    pub bytes: usize,
    pub hits: u64,
}

impl Measurement {
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.best.as_secs_f64()
    }

    pub fn megabytes_per_second(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.best.as_secs_f64()
    }
}

/// Runs the bench and prints a table to `out`.
pub fn bench(
    runtime_of: &dyn Fn(Execution) -> Result<ComponentRuntime>,
    options: &BenchOptions,
    out: &mut dyn Write,
) -> Result<Vec<Measurement>> {
    let feeds = read_feeds(
        &options.feeds,
        feed_format("auto").expect("auto is a format"),
    )?;
    let settings = read_settings(options.settings.as_deref())?;
    let text = std::fs::read_to_string(&options.records)?;
    let lines: Vec<&str> = text.lines().collect();
    ensure!(
        !lines.is_empty(),
        "{} holds no records",
        options.records.display()
    );
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    let batches: Vec<String> = lines
        .chunks(options.batch_size.max(1))
        .map(|chunk| {
            let mut s = chunk.join("\n");
            s.push('\n');
            s
        })
        .collect();
    let repeat = options.repeat.max(1);
    writeln!(
        out,
        "iocsieve bench: {} records ({:.1} MB, {:.0} bytes each) from {}",
        lines.len(),
        bytes as f64 / 1e6,
        bytes as f64 / lines.len() as f64,
        options.records.display()
    )?;

    // Native engine.
    let inputs: Vec<FeedInput<'_>> = feeds
        .iter()
        .map(|f| FeedInput {
            name: &f.name,
            format: iocsieve_engine::FeedFormat::Auto,
            content: &f.content,
        })
        .collect();
    let started = Instant::now();
    let (detector, stats) =
        Detector::build(&inputs, &settings).map_err(|e| anyhow::anyhow!("{e}"))?;
    let native_load = started.elapsed();
    writeln!(
        out,
        "indicators: {} ({}), native load {:.1} ms, {:.1} MB indicator memory",
        stats.indicators,
        stats
            .loaded_by_kind()
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect::<Vec<_>>()
            .join(" "),
        native_load.as_secs_f64() * 1e3,
        detector.indicators().heap_bytes() as f64 / 1e6
    )?;
    let mut engine = Engine::new(detector);
    let native = measure("native", repeat, lines.len(), bytes, || {
        let mut hits = 0;
        for line in &lines {
            let outcome = engine.evaluate(line.as_bytes(), options.now);
            hits += u64::from(matches!(
                outcome.verdict,
                Verdict::Hit(_) | Verdict::Suppressed { .. }
            ));
        }
        Ok(hits)
    })?;
    let mut results = vec![native];

    let mut executions = vec![Execution::Compiled];
    if options.interpreted {
        executions.push(Execution::Interpreted);
    }
    for execution in executions {
        let runtime = runtime_of(execution)?;
        let suffix = match execution {
            Execution::Compiled => "",
            Execution::Interpreted => ", interpreted (pulley)",
        };
        let started = Instant::now();
        let mut instance = runtime.instantiate()?;
        load(&mut instance, &feeds, &settings)?;
        writeln!(
            out,
            "component{suffix}: instantiate + load {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        )?;

        // Interpreted runs are slow: one pass over a slice is enough to compare.
        let (per_record_lines, per_record_repeat) = match execution {
            Execution::Compiled => (&lines[..], repeat),
            Execution::Interpreted => (&lines[..lines.len().min(20_000)], 1),
        };
        let per_record_bytes: usize = per_record_lines.iter().map(|l| l.len()).sum();
        results.push(measure(
            &format!("component, one record per call{suffix}"),
            per_record_repeat,
            per_record_lines.len(),
            per_record_bytes,
            || {
                let mut hits = 0;
                for line in per_record_lines {
                    hits += u64::from(is_hit(&instance.evaluate(line, options.now)?.verdict));
                }
                Ok(hits)
            },
        )?);
        results.push(measure(
            &format!("component, batches of {}{suffix}", options.batch_size),
            match execution {
                Execution::Compiled => repeat,
                Execution::Interpreted => 1,
            },
            lines.len(),
            bytes,
            || {
                let mut hits = 0;
                for batch in &batches {
                    for outcome in instance.evaluate_batch(batch, options.now)? {
                        hits += u64::from(is_hit(&outcome.verdict));
                    }
                }
                Ok(hits)
            },
        )?);
    }

    // Every mode saw the same records and must agree on the hits.
    let native_hits = results[0].hits;
    for r in &results {
        let expected = if r.records == lines.len() {
            native_hits
        } else {
            count_native_hits(&inputs, &settings, &lines[..r.records], options.now)?
        };
        if r.hits != expected {
            bail!(
                "{} found {} hits where the native engine found {}",
                r.mode,
                r.hits,
                expected
            );
        }
    }

    writeln!(
        out,
        "{:<52} {:>14} {:>8} {:>6} {:>8} {:>14}",
        "mode", "records/s/core", "MB/s", "hits", "x native", "wall records/s"
    )?;
    let native_rate = results[0].records_per_second();
    for r in &results {
        let wall_rate = r.records as f64 / r.wall.as_secs_f64();
        writeln!(
            out,
            "{:<52} {:>14.0} {:>8.1} {:>6} {:>8.2} {:>14.0}",
            r.mode,
            r.records_per_second(),
            r.megabytes_per_second(),
            r.hits,
            r.records_per_second() / native_rate,
            wall_rate,
        )?;
    }
    Ok(results)
}

fn is_hit(verdict: &crate::component::Verdict) -> bool {
    matches!(
        verdict,
        crate::component::Verdict::Hit(_) | crate::component::Verdict::Suppressed(_)
    )
}

fn count_native_hits(
    inputs: &[FeedInput<'_>],
    settings: &str,
    lines: &[&str],
    now: i64,
) -> Result<u64> {
    let (detector, _) = Detector::build(inputs, settings).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut engine = Engine::new(detector);
    Ok(lines
        .iter()
        .filter(|l| {
            matches!(
                engine.evaluate(l.as_bytes(), now).verdict,
                Verdict::Hit(_) | Verdict::Suppressed { .. }
            )
        })
        .count() as u64)
}

fn load(
    instance: &mut crate::component::DetectorInstance,
    feeds: &[Feed],
    settings: &str,
) -> Result<()> {
    match instance.load(feeds.to_vec(), settings)? {
        Ok(_) => Ok(()),
        Err(e) => bail!("{}: {}", e.input, e.message),
    }
}

fn measure(
    mode: &str,
    repeat: usize,
    records: usize,
    bytes: usize,
    mut run: impl FnMut() -> Result<u64>,
) -> Result<Measurement> {
    let (mut best, mut wall) = (Duration::MAX, Duration::ZERO);
    let mut hits = 0;
    for _ in 0..repeat {
        let (cpu_started, wall_started) = (thread_cpu_time(), Instant::now());
        hits = run()?;
        let cpu = thread_cpu_time().saturating_sub(cpu_started);
        if cpu < best {
            (best, wall) = (cpu, wall_started.elapsed());
        }
    }
    Ok(Measurement {
        mode: mode.to_string(),
        best,
        wall,
        records,
        bytes,
        hits,
    })
}

/// The CPU time the calling thread has used.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID is available on Linux");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
