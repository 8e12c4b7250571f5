//! Records per second through `iocsieve serve` on loopback, next to `iocsieve scan` on the
//! same records and feeds.
//!
//! Plays Vector's two roles in this process: sender threads post NDJSON batches the way the
//! `http` sink does (retrying 429 and 503), and a receiver counts what the sidecar delivers,
//! as the `http_server` source would. Everything shares the machine's cores, as a sidecar
//! beside Vector does.
//!
//! ```sh
//! python3 ../shared/tools/gen_bench.py target/bench-data
//! cargo run --release --example serve_bench -- --feed target/bench-data/feed.json \
//!     target/bench-data/records.ndjson
//! ```

use std::io::{BufRead, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Parser;
use iocsieve_host::component::{ComponentRuntime, Execution, FeedFormat, locate_component};
use iocsieve_host::scan::{ScanOptions, scan, system_now};
use iocsieve_host::serve::{ServeOptions, Sidecar};

#[derive(Parser)]
struct Args {
    #[arg(long = "feed", value_name = "FILE")]
    feeds: Vec<PathBuf>,
    /// Records per request, as the `http` sink's `batch.max_events`.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Requests in flight at once, as the `http` sink's `request.concurrency`.
    #[arg(long, default_value_t = 2)]
    senders: usize,
    /// Sidecar worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Gzip the request bodies, as the `http` sink's `compression: gzip`.
    #[arg(long)]
    gzip: bool,
    /// Deliver hits only.
    #[arg(long)]
    only_hits: bool,
    /// Run this `iocsieve` binary as a separate `iocsieve serve` process instead of the
    /// sidecar in this process (e.g. target/release/iocsieve).
    #[arg(long, value_name = "IOCSIEVE")]
    spawn: Option<PathBuf>,
    /// Timed runs; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    records: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let component = locate_component()?;
    let runtime = ComponentRuntime::from_file(&component, Execution::Compiled)?;
    let file = std::fs::File::open(&args.records)
        .with_context(|| format!("cannot read {}", args.records.display()))?;
    let records: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()?;
    let bytes: usize = records.iter().map(|r| r.len() + 1).sum();
    let load = ScanOptions {
        feeds: args.feeds.clone(),
        feed_format: FeedFormat::Auto,
        settings: None,
        only_hits: args.only_hits,
        batch_size: args.batch,
        now: system_now(),
        inputs: vec![args.records.clone()],
    };
    println!(
        "{} records ({:.1} MB), batches of {}, {} senders, {} workers{}{}",
        records.len(),
        bytes as f64 / 1e6,
        args.batch,
        args.senders,
        args.workers,
        if args.gzip { ", gzip" } else { "" },
        if args.only_hits { ", hits only" } else { "" },
    );

    // iocsieve scan on the same records, output discarded. It loads the feeds first, which
    // the sidecar did once at start: that time is measured apart and taken out.
    let mut best_scan = f64::MAX;
    let mut best_load = f64::MAX;
    let mut scan_cpu = f64::MAX;
    for _ in 0..args.repeat.max(1) {
        let mut instance = runtime.instantiate()?;
        let started = Instant::now();
        iocsieve_host::scan::load(&mut instance, &load)?;
        best_load = best_load.min(started.elapsed().as_secs_f64());
        let mut instance = runtime.instantiate()?;
        let cpu_before = cpu_seconds("/proc/thread-self/stat");
        let started = Instant::now();
        scan(
            &mut instance,
            &load,
            &mut std::io::sink(),
            &mut std::io::sink(),
        )?;
        best_scan = best_scan.min(started.elapsed().as_secs_f64());
        scan_cpu = scan_cpu.min(cpu_seconds("/proc/thread-self/stat") - cpu_before);
    }
    let scanning = (best_scan - best_load).max(1e-9);
    let scan_cpu_per_record = (scan_cpu - best_load).max(0.0) / records.len() as f64;
    println!(
        "iocsieve scan:  {:>9.0} records/s ({:.2} s, one thread, after {:.2} s loading the feeds)",
        records.len() as f64 / scanning,
        scanning,
        best_load
    );
    println!(
        "                {:>9.2} µs CPU per record (feed loading taken out)",
        scan_cpu_per_record * 1e6
    );

    // The sidecar, fed over loopback.
    let bodies: Vec<Vec<u8>> = records
        .chunks(args.batch.max(1))
        .map(|chunk| {
            let body = chunk.join("\n").into_bytes();
            if args.gzip { gzip(&body) } else { body }
        })
        .collect();
    let receiver = Receiver::start();
    let queue = args.workers.max(args.senders);
    let (addr, sidecar, mut child) = match &args.spawn {
        None => {
            let mut options = ServeOptions::new(load, receiver.url.clone());
            options.listen = SocketAddr::from(([127, 0, 0, 1], 0));
            options.workers = args.workers;
            options.queue = queue;
            let sidecar = Sidecar::start(&runtime, options)?;
            (sidecar.local_addr(), Some(sidecar), None)
        }
        Some(binary) => {
            let (addr, child) = spawn(binary, &args, &component, &receiver.url, queue)?;
            (addr, None, Some(child))
        }
    };
    // CPU of the sidecar alone when it runs as its own process; of this whole process
    // (senders and receiver included) otherwise.
    let stat = match &child {
        Some(child) => format!("/proc/{}/stat", child.id()),
        None => "/proc/self/stat".to_string(),
    };
    let mut serve_cpu = f64::MAX;
    let mut best: Option<Run> = None;
    for _ in 0..args.repeat.max(1) {
        let cpu_before = cpu_seconds(&stat);
        let run = send_all(addr, &bodies, args.senders, args.gzip);
        serve_cpu = serve_cpu.min(cpu_seconds(&stat) - cpu_before);
        if best.as_ref().is_none_or(|b| run.seconds < b.seconds) {
            best = Some(run);
        }
    }
    let run = best.expect("one run");
    let delivered = receiver.records.load(Ordering::Relaxed);
    if let Some(sidecar) = sidecar {
        sidecar.stop();
    }
    if let Some(child) = &mut child {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut latencies = run.latencies;
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize] * 1e3;
    println!(
        "iocsieve serve{}: {:>9.0} records/s ({:.2} s; per batch p50 {:.1} ms, p99 {:.1} ms, \
         max {:.1} ms; {} retried after 429/503)",
        if args.spawn.is_some() {
            " (own process)"
        } else {
            ""
        },
        records.len() as f64 / run.seconds,
        run.seconds,
        at(0.5),
        at(0.99),
        at(1.0),
        run.retries
    );
    println!(
        "                {:>9.2} µs CPU per record ({})",
        serve_cpu / records.len() as f64 * 1e6,
        if child.is_some() {
            "the sidecar process alone"
        } else {
            "sidecar, senders and receiver together"
        }
    );
    println!(
        "delivered {} records over {} runs",
        delivered,
        args.repeat.max(1)
    );
    Ok(())
}

/// Starts `iocsieve serve` as a child process; its address once it listens.
fn spawn(
    binary: &Path,
    args: &Args,
    component: &Path,
    downstream: &str,
    queue: usize,
) -> Result<(SocketAddr, Child)> {
    let mut command = Command::new(binary);
    command
        .arg("--component")
        .arg(component)
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--downstream", downstream])
        .args(["--workers", &args.workers.to_string()])
        .args(["--queue", &queue.to_string()]);
    for feed in &args.feeds {
        command.arg("--feed").arg(feed);
    }
    if args.only_hits {
        command.arg("--only-hits");
    }
    let mut child = command
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(rest) = line.strip_prefix("iocsieve serve: listening on ") {
                let _ = tx.send(rest.split(',').next().unwrap_or_default().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .context("iocsieve serve did not start")?;
    Ok((addr.parse()?, child))
}

/// User and system CPU seconds from a `/proc/.../stat` file (Linux; 100 ticks a second).
fn cpu_seconds(stat: &str) -> f64 {
    let text = std::fs::read_to_string(stat).unwrap_or_default();
    let after_name = text.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of the file: utime and stime, counted from the state (field 3).
    (ticks(11) + ticks(12)) / 100.0
}

struct Run {
    seconds: f64,
    latencies: Vec<f64>,
    retries: u64,
}

/// Posts every body once (retrying refusals), `senders` at a time.
fn send_all(addr: SocketAddr, bodies: &[Vec<u8>], senders: usize, gzip: bool) -> Run {
    let next = AtomicUsize::new(0);
    let retries = AtomicU64::new(0);
    let latencies = Mutex::new(Vec::with_capacity(bodies.len()));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..senders.max(1) {
            scope.spawn(|| {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .proxy(None)
                    .build()
                    .into();
                let url = format!("http://{addr}/");
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else { break };
                    let sent = Instant::now();
                    loop {
                        let mut post = agent
                            .post(&url)
                            .header("Content-Type", "application/x-ndjson");
                        if gzip {
                            post = post.header("Content-Encoding", "gzip");
                        }
                        let status = match post.send(&body[..]) {
                            Ok(mut r) => {
                                let _ = r.body_mut().read_to_vec();
                                r.status().as_u16()
                            }
                            Err(_) => 0,
                        };
                        if status == 200 {
                            break;
                        }
                        assert!(status == 0 || status == 429 || status == 503, "{status}");
                        retries.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    latencies.lock().unwrap().push(sent.elapsed().as_secs_f64());
                }
            });
        }
    });
    Run {
        seconds: started.elapsed().as_secs_f64(),
        latencies: latencies.into_inner().unwrap(),
        retries: retries.into_inner(),
    }
}

/// Counts the records delivered, answering 200 at once.
struct Receiver {
    url: String,
    records: Arc<AtomicU64>,
}

impl Receiver {
    fn start() -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("binds"));
        let addr = server.server_addr().to_ip().expect("an IP address");
        let records = Arc::new(AtomicU64::new(0));
        for _ in 0..2 {
            let (server, records) = (server.clone(), records.clone());
            std::thread::spawn(move || {
                let mut body = Vec::new();
                for mut request in server.incoming_requests() {
                    body.clear();
                    let _ = request.as_reader().read_to_end(&mut body);
                    let lines = body.split(|b| *b == b'\n').filter(|l| !l.is_empty());
                    records.fetch_add(lines.count() as u64, Ordering::Relaxed);
                    let _ = request.respond(tiny_http::Response::empty(200));
                }
            });
        }
        Receiver {
            url: format!("http://{addr}/"),
            records,
        }
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("in memory");
    encoder.finish().expect("in memory")
}
