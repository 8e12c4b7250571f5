//! `iocsieve bench-fluent-bit`: the Fluent Bit module's cost per record next to the
//! copy-through module's (which only returns the record pointer), both called the way
//! Fluent Bit calls them, compiled by Cranelift and interpreted by Pulley. With a
//! `fluent-bit` binary, also the whole pipeline's CPU time (user + system) with each
//! module, and without a filter; with `flb-wamrc`, the same with both modules compiled
//! ahead of time for Fluent Bit's runtime.
//!
//! Start-up stays outside the timed loops. The iocsieve module must enrich exactly the
//! records the native engine enriches, and the copy-through module must return every
//! record's own pointer, or the bench fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use iocsieve_engine::{Detector, Emit, Engine, FeedInput};

use crate::component::Execution;
use crate::fluent_bit::{
    COPY_THROUGH_FUNCTION, FILTER_FUNCTION, FilterModule, FilterOptions, locate_copy_through,
    locate_module,
};

/// The heap the shipped configs give the filter.
pub const SHIPPED_HEAP_SIZE: u32 = 256 * 1024;

/// What to measure.
#[derive(Debug, Clone)]
pub struct FluentBitBenchOptions {
    pub feeds: Vec<PathBuf>,
    pub settings: Option<PathBuf>,
    pub records: PathBuf,
    /// Timed runs per compiled mode; the fastest is reported.
    pub repeat: usize,
    /// Records for the interpreted modes (a slice of the file: they are slow).
    pub interpreted_records: usize,
    /// A `fluent-bit` binary for the whole-pipeline measurement.
    pub fluent_bit: Option<PathBuf>,
    /// `flb-wamrc`, to also measure the pipeline with ahead-of-time compiled modules.
    pub wamrc: Option<PathBuf>,
    /// Where to write the iocsieve directory and the pipeline configs.
    pub work_dir: PathBuf,
    pub now: i64,
}

/// One measured mode of the in-process bench.
#[derive(Debug, Clone)]
pub struct ModuleMeasurement {
    pub mode: String,
    pub records: usize,
    pub best: Duration,
    pub enriched: u64,
}

impl ModuleMeasurement {
    pub fn micros_per_record(&self) -> f64 {
        self.best.as_secs_f64() * 1e6 / self.records as f64
    }
}

/// One Fluent Bit run.
#[derive(Debug, Clone)]
pub struct PipelineMeasurement {
    pub mode: String,
    pub cpu: Duration,
    pub records_out: usize,
    pub hits: usize,
}

/// Runs the bench and prints the tables to `out`.
pub fn bench_fluent_bit(options: &FluentBitBenchOptions, out: &mut dyn Write) -> Result<()> {
    let text = std::fs::read_to_string(&options.records)
        .with_context(|| format!("cannot read {}", options.records.display()))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    ensure!(
        !lines.is_empty(),
        "{} holds no records",
        options.records.display()
    );
    let dir = stage(options)?;

    // What the native engine says, for the check.
    let feeds: Vec<(String, Vec<u8>)> = options
        .feeds
        .iter()
        .map(|p| Ok((file_name(p), std::fs::read(p)?)))
        .collect::<Result<_>>()?;
    let settings = match &options.settings {
        Some(p) => std::fs::read_to_string(p)?,
        None => String::new(),
    };
    let inputs: Vec<FeedInput<'_>> = feeds
        .iter()
        .map(|(name, content)| FeedInput::detected(name, content))
        .collect();
    let (detector, stats) =
        Detector::build(&inputs, &settings).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut engine = Engine::new(detector);
    let enriched_prefix: Vec<u64> = {
        let mut n = 0;
        let mut prefix = Vec::with_capacity(lines.len() + 1);
        prefix.push(0);
        for line in &lines {
            n += u64::from(matches!(
                engine.evaluate(line.as_bytes(), options.now).emit,
                Emit::Enriched(_)
            ));
            prefix.push(n);
        }
        prefix
    };
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    writeln!(
        out,
        "iocsieve bench-fluent-bit: {} records ({:.0} bytes each) from {}, {} indicators",
        lines.len(),
        bytes as f64 / lines.len() as f64,
        options.records.display(),
        stats.indicators
    )?;

    // In process, as Fluent Bit calls the modules.
    let iocsieve_path = locate_module()?;
    let copy_path = locate_copy_through()?;
    let mut results = Vec::new();
    for execution in [Execution::Compiled, Execution::Interpreted] {
        let (slice, repeat, suffix) = match execution {
            Execution::Compiled => (&lines[..], options.repeat.max(1), "compiled (cranelift)"),
            Execution::Interpreted => (
                &lines[..lines.len().min(options.interpreted_records.max(1))],
                1,
                "interpreted (pulley)",
            ),
        };
        for (name, path, function) in [
            ("copy-through", &copy_path, COPY_THROUGH_FUNCTION),
            ("iocsieve", &iocsieve_path, FILTER_FUNCTION),
        ] {
            let module = FilterModule::from_file(path, execution)?;
            let filter_options = FilterOptions {
                function: function.to_string(),
                ..FilterOptions::iocsieve(&dir, SHIPPED_HEAP_SIZE)
            };
            let mut instance = module.start(&filter_options)?;
            let mut best = Duration::MAX;
            let mut enriched = 0;
            for _ in 0..repeat {
                enriched = 0;
                let started = Instant::now();
                for line in slice {
                    let returned =
                        instance.call("app", (options.now as u32, 0), line.as_bytes())?;
                    if !returned.is_record_pointer {
                        enriched += 1;
                    }
                }
                best = best.min(started.elapsed());
            }
            let expected = if name == "copy-through" {
                0
            } else {
                enriched_prefix[slice.len()]
            };
            if enriched != expected {
                bail!("{name} {suffix} changed {enriched} records where {expected} were expected");
            }
            results.push(ModuleMeasurement {
                mode: format!("{name}, {suffix}"),
                records: slice.len(),
                best,
                enriched,
            });
        }
    }
    writeln!(
        out,
        "\nper record, called as Fluent Bit calls a wasm filter (record copy included):"
    )?;
    writeln!(
        out,
        "{:<44} {:>9} {:>12} {:>12} {:>10}",
        "module", "records", "µs/record", "records/s", "x copy"
    )?;
    for pair in results.chunks(2) {
        let base = pair[0].micros_per_record();
        for r in pair {
            writeln!(
                out,
                "{:<44} {:>9} {:>12.3} {:>12.0} {:>10.2}",
                r.mode,
                r.records,
                r.micros_per_record(),
                1e6 / r.micros_per_record(),
                r.micros_per_record() / base
            )?;
        }
    }

    // The whole pipeline in Fluent Bit.
    let Some(fluent_bit) = &options.fluent_bit else {
        writeln!(
            out,
            "\nwhole pipeline: skipped (no fluent-bit binary; give --fluent-bit)"
        )?;
        return Ok(());
    };
    let expected_hits = enriched_prefix[lines.len()] as usize;
    let mut runs: Vec<(String, Option<(PathBuf, &str)>)> = vec![
        ("no filter".to_string(), None),
        (
            "copy-through, interpreted".to_string(),
            Some((copy_path.clone(), COPY_THROUGH_FUNCTION)),
        ),
        (
            "iocsieve, interpreted".to_string(),
            Some((iocsieve_path.clone(), FILTER_FUNCTION)),
        ),
    ];
    if let Some(wamrc) = &options.wamrc {
        for (name, path, function) in [
            ("copy-through", &copy_path, COPY_THROUGH_FUNCTION),
            ("iocsieve", &iocsieve_path, FILTER_FUNCTION),
        ] {
            let aot = options.work_dir.join(format!("{name}.aot"));
            let status = Command::new(wamrc)
                .arg("-o")
                .arg(&aot)
                .arg(path)
                .stdout(Stdio::null())
                .status()
                .with_context(|| format!("cannot run {}", wamrc.display()))?;
            ensure!(
                status.success(),
                "{} failed on {}",
                wamrc.display(),
                path.display()
            );
            runs.push((format!("{name}, AOT (flb-wamrc)"), Some((aot, function))));
        }
    }
    let version = Command::new(fluent_bit).arg("--version").output()?;
    writeln!(
        out,
        "\nwhole pipeline, {} (tail -> wasm filter -> stdout), CPU = user + system:",
        String::from_utf8_lossy(&version.stdout)
            .lines()
            .next()
            .unwrap_or("fluent-bit")
    )?;
    let mut measured: Vec<PipelineMeasurement> = Vec::new();
    for (mode, filter) in &runs {
        let config = pipeline_config(
            options,
            &dir,
            filter.as_ref().map(|(p, f)| (p.as_path(), *f)),
        );
        let config_path = options.work_dir.join("pipeline.conf");
        std::fs::write(&config_path, config)?;
        let m = run_pipeline(fluent_bit, &config_path, mode)?;
        ensure!(
            m.records_out == lines.len(),
            "{mode}: {} records out of {}",
            m.records_out,
            lines.len()
        );
        if mode.starts_with("iocsieve") {
            ensure!(
                m.hits == expected_hits,
                "{mode}: {} hits, the engine finds {expected_hits}",
                m.hits
            );
        }
        measured.push(m);
    }
    let copy_cpu = |aot: bool| {
        measured
            .iter()
            .find(|m| m.mode.starts_with("copy-through") && m.mode.contains("AOT") == aot)
            .map(|m| m.cpu.as_secs_f64())
    };
    writeln!(
        out,
        "{:<36} {:>10} {:>12} {:>8} {:>10}",
        "filter", "CPU s", "records out", "hits", "x copy"
    )?;
    for m in &measured {
        let ratio = copy_cpu(m.mode.contains("AOT"))
            .filter(|_| m.mode != "no filter")
            .map_or(String::from("-"), |c| {
                format!("{:.2}", m.cpu.as_secs_f64() / c)
            });
        writeln!(
            out,
            "{:<36} {:>10.2} {:>12} {:>8} {:>10}",
            m.mode,
            m.cpu.as_secs_f64(),
            m.records_out,
            m.hits,
            ratio
        )?;
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// Writes the iocsieve directory: the feeds as `feed-*`, the settings, no summary lines.
fn stage(options: &FluentBitBenchOptions) -> Result<PathBuf> {
    let dir = options.work_dir.join("iocsieve");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    for (i, feed) in options.feeds.iter().enumerate() {
        std::fs::copy(feed, dir.join(format!("feed-{i}-{}", file_name(feed))))
            .with_context(|| format!("cannot copy {}", feed.display()))?;
    }
    let settings = match &options.settings {
        Some(p) => std::fs::read(p)?,
        None => Vec::new(),
    };
    std::fs::write(dir.join("iocsieve.toml"), settings)?;
    std::fs::write(
        dir.join("iocsieve-fluent-bit.toml"),
        "summary_seconds = 0\n",
    )?;
    Ok(dir)
}

/// The shipped pipeline (tail with the json parser, the filter, stdout) reading the bench
/// records once and exiting at their end.
fn pipeline_config(
    options: &FluentBitBenchOptions,
    dir: &Path,
    filter: Option<(&Path, &str)>,
) -> String {
    let parsers = options.work_dir.join("parsers.conf");
    let _ = std::fs::write(&parsers, "[PARSER]\n    Name   json\n    Format json\n");
    let mut config = format!(
        "[SERVICE]\n    Flush 1\n    Log_Level warn\n    Parsers_File {}\n\n\
         [INPUT]\n    Name tail\n    Path {}\n    Parser json\n    Read_from_Head On\n    \
         Exit_On_Eof On\n    Buffer_Max_Size 80k\n    Skip_Long_Lines On\n    Tag app\n\n",
        parsers.display(),
        options.records.display()
    );
    if let Some((wasm, function)) = filter {
        config.push_str(&format!(
            "[FILTER]\n    Name wasm\n    Match *\n    Event_Format json\n    WASM_Path {}\n    \
             Function_Name {function}\n    Accessible_Paths {}\n    wasm_heap_size 256K\n    \
             wasm_stack_size 64K\n\n",
            wasm.display(),
            dir.display()
        ));
    }
    config.push_str("[OUTPUT]\n    Name stdout\n    Match *\n    Format json_lines\n");
    config
}

/// Runs Fluent Bit to the end of the input; its CPU time from the kernel's accounting.
fn run_pipeline(fluent_bit: &Path, config: &Path, mode: &str) -> Result<PipelineMeasurement> {
    let mut child = Command::new(fluent_bit)
        .arg("-c")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", fluent_bit.display()))?;
    let stdout = child.stdout.take().expect("piped");
    let counter = std::thread::spawn(move || {
        use std::io::BufRead as _;
        let (mut records, mut hits) = (0, 0);
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with('{') {
                records += 1;
                hits += usize::from(line.contains("\"Verdict\":\"hit\""));
            }
        }
        (records, hits)
    });
    let (status, cpu) = wait_with_cpu(child.id())?;
    let (records_out, hits) = counter.join().expect("the counting thread");
    ensure!(
        status == 0,
        "{mode}: fluent-bit exited with status {status}"
    );
    Ok(PipelineMeasurement {
        mode: mode.to_string(),
        cpu,
        records_out,
        hits,
    })
}

/// Waits for the child `pid`; its exit status and CPU time (user + system).
fn wait_with_cpu(pid: u32) -> Result<(i32, Duration)> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for; the pointers are valid.
    let waited = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    ensure!(
        waited == pid as libc::pid_t,
        "wait4 failed: {}",
        std::io::Error::last_os_error()
    );
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok((code, tv(usage.ru_utime) + tv(usage.ru_stime)))
}
