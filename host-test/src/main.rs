//! `iocsieve`: match log records against threat indicators through the WebAssembly
//! component. Run `iocsieve --help`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use iocsieve_host::bench::{BenchOptions, bench};
use iocsieve_host::bench_fluent_bit::{FluentBitBenchOptions, bench_fluent_bit};
use iocsieve_host::component::{ComponentRuntime, Execution, feed_format, locate_component};
use iocsieve_host::rule::{RuleCommand, RuleFormat, rule};
use iocsieve_host::scan::{ScanOptions, parse_now, scan, system_now};

#[derive(Parser)]
#[command(
    name = "iocsieve",
    version,
    about = "Match log records against threat indicators at the edge"
)]
struct Cli {
    /// The detector component (default: IOCSIEVE_COMPONENT, next to this program, or the
    /// workspace build).
    #[arg(long, global = true)]
    component: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Tag log records (NDJSON, or a JSON array) that match indicators; NDJSON to stdout,
    /// a summary of the counters to stderr.
    Scan {
        /// An indicator feed (repeat for several). Default: the built-in Mirai feed.
        #[arg(long = "feed", value_name = "FILE")]
        feeds: Vec<PathBuf>,
        /// The feeds' format: auto, threatfox-json, threatfox-csv, threatfox-api.
        #[arg(long, default_value = "auto", value_parser = parse_feed_format)]
        feed_format: String,
        /// Settings file (TOML or JSON): mode, exclusions, profiles, output.
        #[arg(long, value_name = "FILE")]
        settings: Option<PathBuf>,
        /// Pass only hits (overrides the settings' mode).
        #[arg(long)]
        only_hits: bool,
        /// Records per call into the component.
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
        /// The time to evaluate at (RFC 3339 or Unix seconds); default: now.
        #[arg(long)]
        now: Option<String>,
        /// Log files; standard input when none or `-`.
        #[arg(value_name = "LOG_FILE")]
        inputs: Vec<PathBuf>,
    },
    /// Print records per second natively and through the component (per record and in
    /// batches) on the same records and indicators.
    Bench {
        #[arg(long = "feed", value_name = "FILE")]
        feeds: Vec<PathBuf>,
        #[arg(long, value_name = "FILE")]
        settings: Option<PathBuf>,
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
        /// Timed runs per mode; the fastest is reported.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Also run the component under wasmtime's Pulley interpreter.
        #[arg(long)]
        interpreted: bool,
        /// Instead of RECORDS: generate a ThreatFox CSV export of 1,000,000 indicators and
        /// report load time, memory and matching speed at 1k, 100k and 1M indicators.
        #[arg(long)]
        scale: bool,
        /// NDJSON records, e.g. from ../shared/tools/gen_bench.py.
        #[arg(value_name = "RECORDS", required_unless_present = "scale")]
        records: Option<PathBuf>,
    },
    /// Write the Sentinel hunting rule for a feed: description, indicators, KQL queries
    /// and exclusions, agreeing with the edge filter. Runs the native engine (no component).
    Rule {
        /// An indicator feed (repeat for several). Default: the built-in Mirai feed.
        #[arg(long = "feed", value_name = "FILE")]
        feeds: Vec<PathBuf>,
        /// The feeds' format: auto, threatfox-json, threatfox-csv, threatfox-api.
        #[arg(long, default_value = "auto", value_parser = parse_feed_format)]
        feed_format: String,
        /// Settings file (TOML or JSON): the exclusions, profiles and address-only matching
        /// the edge uses.
        #[arg(long, value_name = "FILE")]
        settings: Option<PathBuf>,
        /// Only this malware family: its name, id (elf.mirai) or an alias, any case.
        #[arg(long, value_name = "NAME", conflicts_with = "threat_type")]
        malware: Option<String>,
        /// Only this threat type (botnet_cc, payload, ...), any case.
        #[arg(long, value_name = "TYPE")]
        threat_type: Option<String>,
        /// markdown (the document) or kql (the queries alone).
        #[arg(long, default_value = "markdown", value_parser = ["markdown", "kql"])]
        format: String,
        /// The most indicator values one query holds; longer lists are split.
        #[arg(long, default_value_t = iocsieve_engine::rule::DEFAULT_MAX_LIST)]
        max_list: usize,
    },
    /// Run beside Vector: take batches from its `http` sink, post the results to its
    /// `http_server` source, answer only once they were accepted. SIGHUP reloads the feeds.
    Serve(iocsieve_host::serve::cli::ServeArgs),
    /// Print the Fluent Bit module's cost per record next to a copy-through module's,
    /// compiled and interpreted; with --fluent-bit, the whole pipeline's CPU time too.
    BenchFluentBit {
        #[arg(long = "feed", value_name = "FILE")]
        feeds: Vec<PathBuf>,
        #[arg(long, value_name = "FILE")]
        settings: Option<PathBuf>,
        /// Timed runs per compiled mode; the fastest is reported.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Records for the interpreted modes.
        #[arg(long, default_value_t = 20_000)]
        interpreted_records: usize,
        /// A fluent-bit binary (built with wasm support) for the whole-pipeline CPU time.
        #[arg(long, value_name = "BIN")]
        fluent_bit: Option<PathBuf>,
        /// flb-wamrc, to also run the pipeline with both modules compiled ahead of time.
        #[arg(long, value_name = "BIN")]
        wamrc: Option<PathBuf>,
        /// Scratch directory for the staged feeds and configs.
        #[arg(long, default_value = "target/bench-fluent-bit")]
        work_dir: PathBuf,
        /// NDJSON records, e.g. from ../shared/tools/gen_bench.py.
        #[arg(value_name = "RECORDS")]
        records: PathBuf,
    },
}

fn parse_feed_format(name: &str) -> Result<String, String> {
    feed_format(name).map(|_| name.to_string()).ok_or_else(|| {
        format!(
            "unknown feed format {name:?}; use auto, threatfox-json, threatfox-csv, threatfox-api, \
             urlhaus-csv, urlhaus-json, feodo-csv, feodo-json, misp, stix, zeek-intel or \
             list:<ip|ip:port|cidr|domain|url|md5|sha1|sha256>"
        )
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iocsieve: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Command::Rule {
        feeds,
        feed_format: format,
        settings,
        malware,
        threat_type,
        format: output,
        max_list,
    } = cli.command
    {
        let selection = match (malware, threat_type) {
            (Some(m), _) => iocsieve_engine::rule::Selection::Malware(m),
            (None, Some(t)) => iocsieve_engine::rule::Selection::ThreatType(t),
            (None, None) => iocsieve_engine::rule::Selection::All,
        };
        let command = RuleCommand {
            feeds,
            feed_format: iocsieve_engine::FeedFormat::from_name(&format).context("feed format")?,
            settings,
            selection,
            format: if output == "kql" {
                RuleFormat::Kql
            } else {
                RuleFormat::Markdown
            },
            max_list,
        };
        let mut out = std::io::stdout().lock();
        rule(&command, &mut out)?;
        return Ok(out.flush()?);
    }
    let component_path = match cli.component {
        Some(path) => path,
        None => locate_component()?,
    };
    let runtime_of = |execution| ComponentRuntime::from_file(&component_path, execution);
    match cli.command {
        Command::Scan {
            feeds,
            feed_format: format,
            settings,
            only_hits,
            batch_size,
            now,
            inputs,
        } => {
            let now = now
                .as_deref()
                .map(parse_now)
                .transpose()?
                .unwrap_or_else(system_now);
            let options = ScanOptions {
                feeds,
                feed_format: feed_format(&format).context("feed format")?,
                settings,
                only_hits,
                batch_size,
                now,
                inputs,
            };
            let mut instance = runtime_of(Execution::Compiled)?.instantiate()?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            let mut err = std::io::stderr();
            scan(&mut instance, &options, &mut out, &mut err)?;
            out.flush()?;
        }
        Command::Bench {
            feeds,
            settings,
            batch_size,
            repeat,
            interpreted,
            scale,
            records,
        } => {
            if scale {
                let sizes = [1_000, 100_000, 1_000_000];
                let out = &mut std::io::stdout();
                iocsieve_host::scale::scale_bench(&runtime_of, &sizes, 200_000, system_now(), out)?;
                return Ok(());
            }
            let records = records.context("RECORDS is needed without --scale")?;
            let options = BenchOptions {
                feeds,
                settings,
                records,
                batch_size,
                repeat,
                now: system_now(),
                interpreted,
            };
            bench(&runtime_of, &options, &mut std::io::stdout())?;
        }
        Command::Rule { .. } => unreachable!("handled above"),
        Command::Serve(args) => {
            iocsieve_host::serve::cli::run(&runtime_of(Execution::Compiled)?, &args)?;
        }
        Command::BenchFluentBit {
            feeds,
            settings,
            repeat,
            interpreted_records,
            fluent_bit,
            wamrc,
            work_dir,
            records,
        } => {
            std::fs::create_dir_all(&work_dir)?;
            let options = FluentBitBenchOptions {
                feeds,
                settings,
                records,
                repeat,
                interpreted_records,
                fluent_bit,
                wamrc,
                work_dir: std::path::absolute(&work_dir)?,
                now: system_now(),
            };
            bench_fluent_bit(&options, &mut std::io::stdout())?;
        }
    }
    Ok(())
}
