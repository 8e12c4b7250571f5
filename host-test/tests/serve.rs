//! `iocsieve serve` over loopback, with the tests playing Vector's two roles: a sender that
//! posts batches the way the `http` sink does (NDJSON without a final newline, or a JSON
//! array, gzip or not, retrying 429, 5xx and connection errors) and a receiver standing in
//! for the `http_server` source.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{NOW, loaded, runtime};
use iocsieve_host::cases::{Case, Expected, load_cases};
use iocsieve_host::component::{Emit, FeedFormat, locate_component};
use iocsieve_host::scan::ScanOptions;
use iocsieve_host::serve::{ServeOptions, Sidecar, SocketOptions};

// ---------------------------------------------------------------------------------------
// The receiver: a stand-in for Vector's `http_server` source.
// ---------------------------------------------------------------------------------------

/// What the receiver does with one request.
#[derive(Debug, Clone, Copy)]
enum Reply {
    /// Keep the records and answer 200.
    Accept,
    /// Answer 500 without keeping anything.
    Fail,
    /// Keep the records, then answer 200 only after this long.
    SlowAccept(Duration),
}

struct Receiver {
    url: String,
    /// Every record received, in order, duplicates included.
    records: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<usize>>,
}

impl Receiver {
    /// Serves `script` one reply per request, then accepts everything.
    fn start(script: Vec<Reply>) -> Receiver {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("binds");
        let addr = server.server_addr().to_ip().expect("an IP address");
        let records = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0));
        let script = Arc::new(Mutex::new(std::collections::VecDeque::from(script)));
        {
            let (records, requests) = (records.clone(), requests.clone());
            std::thread::spawn(move || {
                for mut request in server.incoming_requests() {
                    let reply = script.lock().unwrap().pop_front().unwrap_or(Reply::Accept);
                    let mut body = String::new();
                    request.as_reader().read_to_string(&mut body).unwrap();
                    *requests.lock().unwrap() += 1;
                    let records = records.clone();
                    std::thread::spawn(move || {
                        let lines = body.lines().filter(|l| !l.is_empty()).map(String::from);
                        match reply {
                            Reply::Fail => {
                                let _ = request.respond(
                                    tiny_http::Response::from_string("down").with_status_code(500),
                                );
                            }
                            Reply::Accept => {
                                records.lock().unwrap().extend(lines);
                                let _ = request.respond(tiny_http::Response::empty(200));
                            }
                            Reply::SlowAccept(delay) => {
                                records.lock().unwrap().extend(lines);
                                std::thread::sleep(delay);
                                let _ = request.respond(tiny_http::Response::empty(200));
                            }
                        }
                    });
                }
            });
        }
        Receiver {
            url: format!("http://{addr}/"),
            records,
            requests,
        }
    }

    fn records(&self) -> Vec<String> {
        self.records.lock().unwrap().clone()
    }

    fn requests(&self) -> usize {
        *self.requests.lock().unwrap()
    }

    fn wait_for_requests(&self, n: usize) {
        wait_until("the receiver's requests", || self.requests() >= n);
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------
// The sender: a stand-in for Vector's `http` sink.
// ---------------------------------------------------------------------------------------

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// Posts `body` to the sidecar; the status, or 0 for a connection error.
fn post(addr: SocketAddr, body: &[u8], headers: &[(&str, &str)]) -> u16 {
    let mut request = agent()
        .post(format!("http://{addr}/"))
        .header("Content-Type", "application/x-ndjson");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    match request.send(body) {
        Ok(mut response) => {
            let _ = response.body_mut().read_to_string();
            response.status().as_u16()
        }
        Err(_) => 0,
    }
}

fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut request = agent().get(format!("http://{addr}{path}"));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let mut response = request.call().expect("the sidecar answers");
    let body = response.body_mut().read_to_string().unwrap_or_default();
    (response.status().as_u16(), body)
}

/// Whether Vector's `http` sink retries a response with this status (0: no response).
fn retryable(status: u16) -> bool {
    status == 0 || status == 408 || status == 429 || (status >= 500 && status != 501)
}

/// Posts until the sidecar answers 200, as the `http` sink does; the statuses seen.
fn send_until_accepted(addr: SocketAddr, body: &[u8]) -> Vec<u16> {
    let mut seen = Vec::new();
    loop {
        let status = post(addr, body, &[]);
        seen.push(status);
        if status == 200 {
            return seen;
        }
        assert!(
            retryable(status),
            "status {status} would make Vector drop the batch"
        );
        assert!(seen.len() < 50, "never accepted: {seen:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// NDJSON as the `http` sink frames it: one record per line, no final newline.
fn ndjson(records: &[String]) -> Vec<u8> {
    records.join("\n").into_bytes()
}

fn json_array(records: &[String]) -> Vec<u8> {
    format!("[{}]", records.join(",")).into_bytes()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

// ---------------------------------------------------------------------------------------
// The sidecar.
// ---------------------------------------------------------------------------------------

fn scan_options(feeds: Vec<PathBuf>, settings: Option<PathBuf>, only_hits: bool) -> ScanOptions {
    ScanOptions {
        feeds,
        feed_format: FeedFormat::Auto,
        settings,
        only_hits,
        batch_size: 0,
        now: NOW,
        inputs: Vec::new(),
    }
}

fn case_options(case: &Case, only_hits: bool) -> ScanOptions {
    let feeds = case.feeds.iter().map(|(n, _)| case.dir.join(n)).collect();
    let settings = Some(case.dir.join("settings.toml")).filter(|p| p.is_file());
    scan_options(feeds, settings, only_hits)
}

fn sidecar_options(load: ScanOptions, receiver: &Receiver) -> ServeOptions {
    let mut options = ServeOptions::new(load, receiver.url.clone());
    options.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    options.now = Some(NOW);
    options.workers = 2;
    options.queue = 4;
    options.downstream_timeout = Duration::from_secs(10);
    options
}

fn seed() -> Case {
    load_cases()
        .expect("the shared cases read")
        .into_iter()
        .find(|c| c.name == "seed-mirai")
        .expect("the seed case")
}

fn verdict_of(record: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(record).expect("JSON downstream");
    value["iocsieve"]["Verdict"].as_str().map(String::from)
}

/// What the component itself emits for `records`: the records the sidecar must deliver.
fn component_output(case: &Case, only_hits: bool, records: &[String]) -> Vec<String> {
    let mut settings = case.settings.clone();
    if only_hits {
        settings = iocsieve_engine::settings::with_mode(&settings, iocsieve_engine::Mode::HitsOnly)
            .unwrap();
    }
    // Named as the sidecar names them: by their path.
    let feeds: Vec<(String, Vec<u8>)> = case
        .feeds
        .iter()
        .map(|(name, bytes)| (case.dir.join(name).display().to_string(), bytes.clone()))
        .collect();
    let mut instance = loaded(&feeds, &settings);
    let outcomes = instance
        .evaluate_batch(&(records.join("\n") + "\n"), NOW)
        .expect("no trap");
    outcomes
        .iter()
        .zip(records)
        .filter_map(|(outcome, record)| match &outcome.emit {
            Emit::Unchanged => Some(record.clone()),
            Emit::Enriched(text) => Some(text.clone()),
            Emit::Dropped => None,
        })
        .collect()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
}

// ---------------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------------

#[test]
fn seed_cases_come_back_with_the_components_verdicts() {
    let case = seed();
    for only_hits in [false, true] {
        let receiver = Receiver::start(Vec::new());
        let sidecar = Sidecar::start(
            runtime(),
            sidecar_options(case_options(&case, only_hits), &receiver),
        )
        .expect("starts");
        let addr = sidecar.local_addr();
        let mut expected = Vec::new();
        let mut hits = 0;
        let mut posted = 0;
        for (n, log) in case.logs.iter().enumerate() {
            // Each log in another of the framings Vector's `http` sink can send.
            let body = match n % 3 {
                0 => ndjson(&log.records),
                1 => gzip(&json_array(&log.records)),
                _ => json_array(&log.records),
            };
            let headers: &[(&str, &str)] = if n % 3 == 1 {
                &[("Content-Encoding", "gzip")]
            } else {
                &[]
            };
            assert_eq!(post(addr, &body, headers), 200, "{}", log.file);
            expected.extend(component_output(&case, only_hits, &log.records));
            hits += log.expected.iter().filter(|e| **e == Expected::Hit).count();
            posted += log.records.len();
        }
        let received = receiver.records();
        assert_eq!(received.len(), expected.len(), "only_hits={only_hits}");
        for (n, (got, want)) in received.iter().zip(&expected).enumerate() {
            assert_eq!(got, want, "record {n}, only_hits={only_hits}");
        }
        let received_hits = received
            .iter()
            .filter(|r| verdict_of(r).as_deref() == Some("hit"))
            .count();
        assert_eq!(received_hits, hits, "only_hits={only_hits}");
        if only_hits {
            assert_eq!(received.len(), hits);
        } else {
            assert_eq!(received.len(), posted);
        }

        let (status, text) = get(addr, "/metrics", None);
        assert_eq!(status, 200);
        assert_eq!(metric(&text, "iocsieve_records_in_total"), posted as f64);
        assert_eq!(metric(&text, "iocsieve_hits_total"), hits as f64);
        assert_eq!(
            metric(&text, "iocsieve_batches_total{result=\"delivered\"}"),
            case.logs.len() as f64
        );
        assert_eq!(
            metric(&text, "iocsieve_records_delivered_total"),
            received.len() as f64
        );
        assert_eq!(
            metric(&text, "iocsieve_batch_duration_seconds_count"),
            case.logs.len() as f64
        );
        let (status, health) = get(addr, "/health", None);
        assert_eq!(status, 200);
        assert!(health.contains("\"status\":\"ok\""), "{health}");
        sidecar.stop();
    }
}

#[test]
fn each_record_is_checked_against_its_expected_verdict() {
    let case = seed();
    let receiver = Receiver::start(Vec::new());
    let sidecar = Sidecar::start(
        runtime(),
        sidecar_options(case_options(&case, false), &receiver),
    )
    .expect("starts");
    for log in &case.logs {
        let before = receiver.records().len();
        assert_eq!(post(sidecar.local_addr(), &ndjson(&log.records), &[]), 200);
        let received = receiver.records();
        let received = &received[before..];
        assert_eq!(received.len(), log.records.len(), "{}", log.file);
        for (n, (record, expected)) in received.iter().zip(&log.expected).enumerate() {
            let verdict = verdict_of(record);
            let at = format!("{} line {}", log.file, n + 1);
            match expected {
                Expected::Hit => assert_eq!(verdict.as_deref(), Some("hit"), "{at}"),
                Expected::Excluded => assert_ne!(verdict.as_deref(), Some("hit"), "{at}"),
                Expected::Miss => assert_eq!(verdict, None, "{at}"),
            }
        }
    }
    sidecar.stop();
}

#[test]
fn failing_and_slow_downstream_lose_nothing_and_duplicate_only_retried_batches() {
    const BATCHES: usize = 12;
    const PER_BATCH: usize = 25;
    let case = seed();
    let base = &case.logs[0].records;
    // Downstream: fails twice, takes too long once (but keeps what it got), and fails
    // once more later; otherwise accepts.
    // Generous against the timeout, so that a loaded machine does not add timeouts.
    let slow = Duration::from_millis(3000);
    let script = vec![
        Reply::Accept,
        Reply::Fail,
        Reply::Accept,
        Reply::SlowAccept(slow),
        Reply::Accept,
        Reply::Fail,
        Reply::Fail,
        Reply::Accept,
        Reply::SlowAccept(slow),
    ];
    let fails = script.iter().filter(|r| matches!(r, Reply::Fail)).count();
    let slows = script
        .iter()
        .filter(|r| matches!(r, Reply::SlowAccept(_)))
        .count();
    let receiver = Receiver::start(script);
    let mut options = sidecar_options(case_options(&case, false), &receiver);
    options.downstream_timeout = Duration::from_millis(1000);
    let sidecar = Sidecar::start(runtime(), options).expect("starts");

    // Records numbered batch-record, each a seed record with a sequence field.
    let mut attempts = BTreeMap::new();
    for batch in 0..BATCHES {
        let records: Vec<String> = (0..PER_BATCH)
            .map(|i| {
                let record = &base[i % base.len()];
                format!("{{\"TestSeq\":\"{batch}-{i}\",{}", &record[1..])
            })
            .collect();
        let statuses = send_until_accepted(sidecar.local_addr(), &ndjson(&records));
        attempts.insert(batch, statuses);
    }

    let received = receiver.records();
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    for record in &received {
        let value: serde_json::Value = serde_json::from_str(record).unwrap();
        *copies
            .entry(value["TestSeq"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    // None lost.
    for batch in 0..BATCHES {
        for i in 0..PER_BATCH {
            assert!(
                copies.contains_key(&format!("{batch}-{i}")),
                "{batch}-{i} was lost"
            );
        }
    }
    // Duplicates only from batches the sender retried, and all of those from the slow
    // replies the downstream kept after the sidecar stopped waiting.
    let retried: BTreeSet<usize> = attempts
        .iter()
        .filter(|(_, s)| s.len() > 1)
        .map(|(b, _)| *b)
        .collect();
    let mut duplicates = 0;
    for (seq, n) in &copies {
        if *n > 1 {
            let batch: usize = seq.split('-').next().unwrap().parse().unwrap();
            assert!(
                retried.contains(&batch),
                "{seq} duplicated but never retried"
            );
            duplicates += n - 1;
        }
    }
    let refusals: usize = attempts.values().map(|s| s.len() - 1).sum();
    eprintln!(
        "{} records sent in {BATCHES} batches, {} received, {duplicates} duplicates, \
         {refusals} retries ({:?})",
        BATCHES * PER_BATCH,
        received.len(),
        attempts
            .values()
            .filter(|s| s.len() > 1)
            .collect::<Vec<_>>()
    );
    assert_eq!(received.len(), BATCHES * PER_BATCH + duplicates);
    assert_eq!(duplicates, slows * PER_BATCH);
    assert_eq!(refusals, fails + slows);
    assert!(attempts.values().flatten().all(|s| *s == 200 || *s == 503));

    let (_, text) = get(sidecar.local_addr(), "/metrics", None);
    assert_eq!(
        metric(&text, "iocsieve_downstream_errors_total{error=\"status\"}"),
        fails as f64
    );
    assert_eq!(
        metric(&text, "iocsieve_downstream_errors_total{error=\"timeout\"}"),
        slows as f64
    );
    assert_eq!(
        metric(
            &text,
            "iocsieve_batches_total{result=\"downstream_failed\"}"
        ),
        (fails + slows) as f64
    );
    sidecar.stop();
}

#[test]
fn a_full_queue_answers_too_many_requests() {
    let case = seed();
    let hold = Duration::from_millis(3000);
    let receiver = Receiver::start(vec![Reply::SlowAccept(hold), Reply::SlowAccept(hold)]);
    let mut options = sidecar_options(case_options(&case, false), &receiver);
    options.workers = 1;
    options.queue = 1;
    let sidecar = Sidecar::start(runtime(), options).expect("starts");
    let addr = sidecar.local_addr();
    let control = sidecar.control();
    let body = ndjson(&case.logs[0].records);

    // One batch with the worker (held by the downstream), one in the queue.
    let first = {
        let body = body.clone();
        std::thread::spawn(move || post(addr, &body, &[]))
    };
    receiver.wait_for_requests(1);
    let second = {
        let body = body.clone();
        std::thread::spawn(move || post(addr, &body, &[]))
    };
    wait_until("two batches in flight", || {
        control.metrics().in_flight.load(Ordering::SeqCst) == 2
    });
    assert_eq!(
        post(addr, &body, &[]),
        429,
        "a third batch is over the limit"
    );
    assert_eq!(first.join().unwrap(), 200);
    assert_eq!(second.join().unwrap(), 200);
    assert_eq!(
        post(addr, &body, &[]),
        200,
        "room again once the batches are done"
    );
    assert_eq!(control.metrics().overloaded.load(Ordering::Relaxed), 1);
    assert_eq!(receiver.records().len(), 3 * case.logs[0].records.len());
    sidecar.stop();
}

#[test]
fn a_wrong_or_missing_token_is_refused() {
    let case = seed();
    let receiver = Receiver::start(Vec::new());
    let mut options = sidecar_options(case_options(&case, false), &receiver);
    options.token = Some("s3cret-token".into());
    let sidecar = Sidecar::start(runtime(), options).expect("starts");
    let addr = sidecar.local_addr();
    let body = ndjson(&case.logs[0].records);

    assert_eq!(post(addr, &body, &[]), 401, "no token");
    assert_eq!(
        post(addr, &body, &[("Authorization", "Bearer wrong")]),
        401,
        "wrong token"
    );
    assert_eq!(
        post(addr, &body, &[("Authorization", "Basic czNjcmV0LXRva2Vu")]),
        401,
        "not a bearer token"
    );
    assert_eq!(get(addr, "/metrics", None).0, 401, "metrics need it too");
    assert_eq!(
        get(addr, "/health", Some("nope")).0,
        401,
        "health needs it too"
    );
    assert_eq!(receiver.requests(), 0, "nothing refused went downstream");

    assert_eq!(
        post(addr, &body, &[("Authorization", "Bearer s3cret-token")]),
        200
    );
    let (status, text) = get(addr, "/metrics", Some("s3cret-token"));
    assert_eq!(status, 200);
    assert_eq!(
        metric(
            &text,
            "iocsieve_requests_refused_total{reason=\"unauthorized\"}"
        ),
        5.0
    );
    assert_eq!(receiver.records().len(), case.logs[0].records.len());
    sidecar.stop();
}

#[test]
fn bodies_that_are_not_records_are_refused_without_retry() {
    let case = seed();
    let receiver = Receiver::start(Vec::new());
    let sidecar = Sidecar::start(
        runtime(),
        sidecar_options(case_options(&case, false), &receiver),
    )
    .expect("starts");
    let addr = sidecar.local_addr();
    assert_eq!(post(addr, b"[{\"a\":1},", &[]), 400, "a broken JSON array");
    assert_eq!(
        post(addr, b"{}", &[("Content-Encoding", "gzip")]),
        400,
        "not gzip"
    );
    assert_eq!(post(addr, b"{}", &[("Content-Encoding", "zstd")]), 415);
    assert_eq!(
        post(addr, b"", &[]),
        200,
        "an empty batch has nothing to deliver"
    );
    assert_eq!(receiver.requests(), 0);
    sidecar.stop();
}

#[test]
fn an_unreachable_downstream_is_a_retryable_error() {
    let case = seed();
    // A port that was free a moment ago: nothing listens there.
    let url = format!("http://127.0.0.1:{}/", free_port());
    let mut options = ServeOptions::new(case_options(&case, false), url);
    options.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    options.now = Some(NOW);
    let sidecar = Sidecar::start(runtime(), options).expect("starts");
    let addr = sidecar.local_addr();
    assert_eq!(post(addr, &ndjson(&case.logs[0].records), &[]), 503);
    let (_, text) = get(addr, "/metrics", None);
    assert_eq!(
        metric(
            &text,
            "iocsieve_downstream_errors_total{error=\"transport\"}"
        ),
        1.0
    );
    assert_eq!(metric(&text, "iocsieve_records_delivered_total"), 0.0);
    sidecar.stop();
}

#[test]
fn watching_reloads_a_changed_feed() {
    let case = seed();
    let dir = temp_dir("watch");
    let feed = dir.join("feed.json");
    std::fs::write(&feed, seed_feed(&case)).unwrap();
    let receiver = Receiver::start(Vec::new());
    let mut options = sidecar_options(scan_options(vec![feed.clone()], None, true), &receiver);
    options.watch = Some(Duration::from_millis(50));
    let sidecar = Sidecar::start(runtime(), options).expect("starts");
    let control = sidecar.control();
    let hit = case.logs[0].records[0].clone();
    assert_eq!(post(sidecar.local_addr(), hit.as_bytes(), &[]), 200);
    assert_eq!(
        receiver.records().len(),
        1,
        "a hit passes in hits-only mode"
    );

    let other = String::from_utf8(seed_feed(&case))
        .unwrap()
        .replace("194.48.251.24", "198.51.100.77");
    // A modification time the watcher cannot miss, even on a coarse clock.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&feed, other).unwrap();
    let file = std::fs::File::options().write(true).open(&feed).unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    wait_until("the watcher's reload", || {
        control.metrics().reloads_ok.load(Ordering::Relaxed) == 1
    });
    assert_eq!(post(sidecar.local_addr(), hit.as_bytes(), &[]), 200);
    assert_eq!(receiver.records().len(), 1, "no longer a hit, so dropped");
    sidecar.stop();
    let _ = std::fs::remove_dir_all(dir);
}

/// Lines received on a TCP listener, as Vector's `socket` source would take them.
fn socket_receiver() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let lines = lines.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(stream.unwrap()).lines() {
                        lines.lock().unwrap().push(line.unwrap());
                    }
                });
            }
        });
    }
    (addr, lines)
}

fn socket_sidecar(case: &Case, downstream: String) -> Sidecar {
    let mut options = ServeOptions::new(case_options(case, false), String::new());
    options.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    options.now = Some(NOW);
    options.socket = Some(SocketOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        downstream,
    });
    Sidecar::start(runtime(), options).expect("starts")
}

#[test]
fn the_socket_path_gives_the_same_records_best_effort() {
    let case = seed();
    let (receiver, lines) = socket_receiver();
    let sidecar = socket_sidecar(&case, receiver.to_string());
    let records: Vec<String> = case.logs.iter().flat_map(|l| l.records.clone()).collect();
    let mut expected = Vec::new();
    for log in &case.logs {
        expected.extend(component_output(&case, false, &log.records));
    }
    // As Vector's `socket` sink writes: one record per line, in pieces.
    let mut stream = std::net::TcpStream::connect(sidecar.socket_addr().unwrap()).unwrap();
    let text = records.join("\n") + "\n";
    let (first, second) = text.as_bytes().split_at(text.len() / 2);
    stream.write_all(first).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(second).unwrap();
    drop(stream);
    wait_until("every record on the socket", || {
        lines.lock().unwrap().len() >= records.len()
    });
    assert_eq!(*lines.lock().unwrap(), expected);
    // HTTP batches have no downstream here.
    assert_eq!(post(sidecar.local_addr(), b"{}", &[]), 404);
    sidecar.stop();
}

#[test]
fn the_socket_path_counts_what_it_could_not_deliver() {
    let case = seed();
    let sidecar = socket_sidecar(&case, format!("127.0.0.1:{}", free_port()));
    let records = &case.logs[0].records;
    let mut stream = std::net::TcpStream::connect(sidecar.socket_addr().unwrap()).unwrap();
    stream
        .write_all((records.join("\n") + "\n").as_bytes())
        .unwrap();
    drop(stream);
    let control = sidecar.control();
    wait_until("the records counted as lost", || {
        control.metrics().records_lost.load(Ordering::Relaxed) == records.len() as u64
    });
    let (_, text) = get(sidecar.local_addr(), "/metrics", None);
    assert_eq!(
        metric(&text, "iocsieve_records_lost_total"),
        records.len() as f64
    );
    sidecar.stop();
}

// ---------------------------------------------------------------------------------------
// The real binary, for signals.
// ---------------------------------------------------------------------------------------

struct Process {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Process {
    fn start(args: &[&str]) -> Process {
        let component = locate_component().expect("the component is built");
        let mut command = Command::new(env!("CARGO_BIN_EXE_iocsieve"));
        command
            .arg("--component")
            .arg(component)
            .arg("serve")
            .args(["--now", &NOW.to_string()]);
        if !args.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("iocsieve starts");
        let (tx, rx) = mpsc::channel();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        {
            let stderr = stderr.clone();
            let pipe = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(rest) = line.strip_prefix("iocsieve serve: listening on ") {
                        let addr = rest.split(',').next().unwrap().parse::<SocketAddr>();
                        let _ = tx.send(addr.unwrap());
                    }
                    stderr.lock().unwrap().push(line);
                }
            });
        }
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("iocsieve serve did not start: {:?}", stderr.lock()));
        Process {
            child,
            addr,
            stderr,
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    fn metric(&self, name: &str) -> f64 {
        metric(&get(self.addr, "/metrics", None).1, name)
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("iocsieve-serve-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn seed_feed(case: &Case) -> Vec<u8> {
    case.feeds[0].1.clone()
}

#[test]
fn sighup_with_a_broken_feed_keeps_serving_the_old_one() {
    let case = seed();
    let dir = temp_dir("sighup");
    let feed = dir.join("feed.json");
    std::fs::write(&feed, seed_feed(&case)).unwrap();
    let receiver = Receiver::start(Vec::new());
    let process = Process::start(&[
        "--downstream",
        &receiver.url,
        "--feed",
        feed.to_str().unwrap(),
        "--workers",
        "2",
    ]);
    // CommonSecurityLog line 1 hits 194.48.251.24:80.
    let hit = case
        .logs
        .iter()
        .find(|l| l.file == "CommonSecurityLog.ndjson")
        .unwrap()
        .records[0]
        .clone();
    let verdict_now = |process: &Process| {
        let before = receiver.records().len();
        for _ in 0..4 {
            // Several batches, so that every worker has answered one.
            assert_eq!(post(process.addr, hit.as_bytes(), &[]), 200);
        }
        let received = receiver.records();
        let verdicts: BTreeSet<Option<String>> =
            received[before..].iter().map(|r| verdict_of(r)).collect();
        assert_eq!(verdicts.len(), 1, "the workers disagree: {verdicts:?}");
        verdicts.into_iter().next().unwrap()
    };
    assert_eq!(verdict_now(&process).as_deref(), Some("hit"));

    std::fs::write(&feed, b"{ \"1530001\": [ { \"ioc_value\": ").unwrap();
    process.signal("HUP");
    wait_until("the failed reload", || {
        process.metric("iocsieve_feed_reloads_total{result=\"failed\"}") == 1.0
    });
    assert_eq!(
        verdict_now(&process).as_deref(),
        Some("hit"),
        "the old set is still used"
    );
    assert_eq!(process.metric("iocsieve_feed_last_reload_ok"), 0.0);
    assert_eq!(process.metric("iocsieve_feed_generation"), 1.0);
    assert!(
        process
            .stderr()
            .contains("reload failed, keeping feed set 1"),
        "{}",
        process.stderr()
    );

    // A good feed without that address is swapped in on the next SIGHUP.
    let other = String::from_utf8(seed_feed(&case))
        .unwrap()
        .replace("194.48.251.24", "198.51.100.77");
    std::fs::write(&feed, other).unwrap();
    process.signal("HUP");
    wait_until("the good reload", || {
        process.metric("iocsieve_feed_reloads_total{result=\"ok\"}") == 1.0
    });
    assert_eq!(
        verdict_now(&process),
        None,
        "the new set is used by every worker"
    );
    assert_eq!(process.metric("iocsieve_feed_last_reload_ok"), 1.0);
    assert_eq!(process.metric("iocsieve_feed_generation"), 2.0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sigterm_finishes_the_batch_in_flight_then_exits() {
    let case = seed();
    let receiver = Receiver::start(vec![Reply::SlowAccept(Duration::from_millis(1500))]);
    let mut process = Process::start(&["--downstream", &receiver.url]);
    let addr = process.addr;
    let body = ndjson(&case.logs[0].records);
    let in_flight = std::thread::spawn(move || post(addr, &body, &[]));
    receiver.wait_for_requests(1);
    process.signal("TERM");
    assert_eq!(
        in_flight.join().unwrap(),
        200,
        "the batch in flight is finished"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = process.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "iocsieve serve did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}\n{}", process.stderr());
    assert_eq!(receiver.records().len(), case.logs[0].records.len());
    assert!(process.stderr().contains("iocsieve serve: stopped"));
}

// ---------------------------------------------------------------------------------------
// With a real Vector, when one is given.
// ---------------------------------------------------------------------------------------

/// A `vector` binary from VECTOR_BIN or the PATH.
fn vector_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("VECTOR_BIN") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("vector"))
            .find(|p| p.is_file())
    })
}

fn skipped(test: &str, why: &str) {
    // Written past the test harness's capture, so that a skip shows in CI's output.
    let _ = writeln!(std::io::stderr().lock(), "test {test} ... SKIPPED: {why}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn vector_end_to_end_when_a_vector_binary_is_given() {
    let Some(vector) = vector_binary() else {
        skipped(
            "vector_end_to_end_when_a_vector_binary_is_given",
            "no vector binary (set VECTOR_BIN or put vector on the PATH)",
        );
        return;
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // The shipped config is valid for this Vector.
    let shipped = repo.join("vector/iocsieve.yaml");
    let status = Command::new(&vector)
        .args(["validate", "--no-environment"])
        .arg(&shipped)
        .envs([
            ("IOCSIEVE_SERVE_TOKEN", "token"),
            (
                "SENTINEL_DCE",
                "https://example-dce.westeurope-1.ingest.monitor.azure.com",
            ),
            ("SENTINEL_DCR_ID", "dcr-00000000000000000000000000000000"),
            ("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000000"),
            ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000000"),
            ("AZURE_CLIENT_SECRET", "secret"),
            ("ARCHIVE_BUCKET", "archive"),
            ("AWS_REGION", "eu-west-1"),
        ])
        .status()
        .expect("vector runs");
    assert!(status.success(), "vector validate {}", shipped.display());

    // A pipeline of the same shape with local files at both ends.
    let case = seed();
    let dir = temp_dir("vector");
    let input = dir.join("in.ndjson");
    let hits = dir.join("hits.ndjson");
    let rest = dir.join("rest.ndjson");
    let records: Vec<String> = case.logs.iter().flat_map(|l| l.records.clone()).collect();
    let expected_hits: usize = case
        .logs
        .iter()
        .flat_map(|l| &l.expected)
        .filter(|e| **e == Expected::Hit)
        .count();
    std::fs::write(&input, records.join("\n") + "\n").unwrap();
    let (sidecar_port, return_port) = (free_port(), free_port());
    let config = format!(
        r#"
data_dir: {data}
sources:
  logs:
    type: file
    include: ["{input}"]
    read_from: beginning
  from_iocsieve:
    type: http_server
    address: 127.0.0.1:{return_port}
    decoding: {{ codec: json }}
    framing: {{ method: newline_delimited }}
transforms:
  parse:
    type: remap
    inputs: [logs]
    source: '. = parse_json!(string!(.message))'
  verdict:
    type: route
    inputs: [from_iocsieve]
    route:
      hit: '.iocsieve.Verdict == "hit"'
sinks:
  to_iocsieve:
    type: http
    inputs: [parse]
    uri: http://127.0.0.1:{sidecar_port}/
    encoding: {{ codec: json }}
    framing: {{ method: newline_delimited }}
    acknowledgements: {{ enabled: true }}
  hits:
    type: file
    inputs: [verdict.hit]
    path: "{hits}"
    encoding: {{ codec: json }}
    acknowledgements: {{ enabled: true }}
  rest:
    type: file
    inputs: [verdict._unmatched]
    path: "{rest}"
    encoding: {{ codec: json }}
    acknowledgements: {{ enabled: true }}
"#,
        data = dir.display(),
        input = input.display(),
        hits = hits.display(),
        rest = rest.display(),
    );
    let config_path = dir.join("vector.yaml");
    std::fs::write(&config_path, config).unwrap();
    let feeds: Vec<String> = case
        .feeds
        .iter()
        .map(|(n, _)| case.dir.join(n).display().to_string())
        .collect();
    let mut args = vec![
        "--downstream".to_string(),
        format!("http://127.0.0.1:{return_port}/"),
        "--listen".to_string(),
        format!("127.0.0.1:{sidecar_port}"),
    ];
    for feed in &feeds {
        args.extend(["--feed".to_string(), feed.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _sidecar = Process::start(&args);
    let mut vector = Command::new(&vector)
        .args(["--config"])
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("vector starts");
    let count = |path: &Path| {
        std::fs::read_to_string(path)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(&hits) + count(&rest) < records.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = vector.kill();
    let _ = vector.wait();
    assert_eq!(count(&hits), expected_hits);
    assert_eq!(count(&hits) + count(&rest), records.len());
    let _ = std::fs::remove_dir_all(dir);
}
