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
use std::path::PathBuf;
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

    // iocsieve scan on the same records, output discarded.
    let mut best_scan = f64::MAX;
    for _ in 0..args.repeat.max(1) {
        let mut instance = runtime.instantiate()?;
        let started = Instant::now();
        scan(
            &mut instance,
            &load,
            &mut std::io::sink(),
            &mut std::io::sink(),
        )?;
        best_scan = best_scan.min(started.elapsed().as_secs_f64());
    }
    println!(
        "iocsieve scan:  {:>9.0} records/s ({:.2} s, one thread)",
        records.len() as f64 / best_scan,
        best_scan
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
    let mut options = ServeOptions::new(load, receiver.url.clone());
    options.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    options.workers = args.workers;
    options.queue = args.workers.max(args.senders);
    let sidecar = Sidecar::start(&runtime, options)?;
    let addr = sidecar.local_addr();
    let mut best: Option<Run> = None;
    for _ in 0..args.repeat.max(1) {
        let run = send_all(addr, &bodies, args.senders, args.gzip);
        if best.as_ref().is_none_or(|b| run.seconds < b.seconds) {
            best = Some(run);
        }
    }
    let run = best.expect("one run");
    let delivered = receiver.records.load(Ordering::Relaxed);
    sidecar.stop();
    let mut latencies = run.latencies;
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize] * 1e3;
    println!(
        "iocsieve serve: {:>9.0} records/s ({:.2} s; per batch p50 {:.1} ms, p99 {:.1} ms, \
         max {:.1} ms; {} retried after 429/503)",
        records.len() as f64 / run.seconds,
        run.seconds,
        at(0.5),
        at(0.99),
        at(1.0),
        run.retries
    );
    println!(
        "delivered {} records over {} runs",
        delivered,
        args.repeat.max(1)
    );
    Ok(())
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
