//! `iocsieve serve`: the detector as a sidecar beside Vector, which cannot load a wasm
//! module.
//!
//! Vector's `http` sink posts batches of records here (newline-delimited JSON or a JSON
//! array, plain or gzip); each batch goes through the component's batch call and the
//! records it passes on are posted, as newline-delimited JSON, to a downstream URL (a Vector
//! `http_server` source). The sender is answered 200 only once the downstream accepted them:
//! a downstream failure or timeout answers 503, so Vector retries the batch and nothing is
//! dropped in between. Delivery is at-least-once: a batch the downstream accepted after the
//! sidecar gave up waiting arrives again when the sender retries it.
//!
//! Threads: one dispatcher takes requests from the HTTP server and answers health, metrics
//! and refusals (401, 429, 503 while stopping) itself; it hands batches to a bounded queue.
//! Workers each own a [`DetectorInstance`] (an instance is not `Sync`) made from the shared
//! [`ComponentRuntime`], so batches run in parallel without a lock around the engine. When
//! the queue is full the dispatcher answers 429 at once: backpressure reaches Vector's
//! buffers instead of piling up here.
//!
//! Best effort: with [`SocketOptions`] the sidecar also takes NDJSON over plain TCP (Vector's
//! `socket` sink) and writes the results to a `socket` source, with no acknowledgement in
//! either direction; see the `socket` module.
//!
//! Reload: the feeds and settings are read again and built in a probe instance first; only a
//! set that loaded is published, and each worker swaps it in between two batches, so every
//! batch is evaluated against one whole set. A bad set is reported (a log line and
//! `iocsieve_feed_reloads_total{result="failed"}`) and the last good one stays in force.

mod body;
pub mod cli;
pub mod metrics;
mod socket;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result, anyhow};
use tiny_http::{Header, Method, Request, Response};

pub use body::{Batch, BodyError, read_body};
pub use metrics::{BatchResult, DownstreamError, Metrics};

use crate::component::{ComponentRuntime, DetectorInstance, Emit, Feed};
use crate::scan::{ScanOptions, describe_load, load_inputs, read_load_inputs, system_now};

/// What `iocsieve serve` was asked to do.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Feeds, settings and `only_hits`, as for `iocsieve scan` (the other fields are unused).
    pub load: ScanOptions,
    /// Where to listen; port 0 picks a free port (see [`Sidecar::local_addr`]).
    pub listen: SocketAddr,
    /// Where to post the results: the URL of a Vector `http_server` source. Empty when
    /// records come by socket only; HTTP batches then get 404.
    pub downstream: String,
    /// An `Authorization` header value for the downstream (e.g. `Basic ...`).
    pub downstream_authorization: Option<String>,
    /// The bearer token every request must carry; none to accept any request.
    pub token: Option<String>,
    /// Threads that evaluate and deliver batches, each with its own instance.
    pub workers: usize,
    /// Batches that may wait for a worker; beyond them requests get 429.
    pub queue: usize,
    /// How long to wait for the downstream before answering 503.
    pub downstream_timeout: Duration,
    /// The largest request body accepted, after decompression.
    pub max_body_bytes: usize,
    /// Also reload when a feed or settings file changes, checked at this interval.
    pub watch: Option<Duration>,
    /// A fixed evaluation time (seconds since 1970), for tests; none: the clock.
    pub now: Option<i64>,
    /// Also take NDJSON over plain TCP (Vector's `socket` sink), best effort.
    pub socket: Option<SocketOptions>,
}

/// The best-effort path: NDJSON over TCP in, NDJSON over TCP out.
#[derive(Debug, Clone)]
pub struct SocketOptions {
    /// Where Vector's `socket` sink connects.
    pub listen: SocketAddr,
    /// `host:port` of Vector's `socket` source.
    pub downstream: String,
}

impl ServeOptions {
    /// Defaults for everything but the feeds and the downstream.
    pub fn new(load: ScanOptions, downstream: String) -> ServeOptions {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ServeOptions {
            load,
            listen: SocketAddr::from(([127, 0, 0, 1], 9680)),
            downstream,
            downstream_authorization: None,
            token: None,
            workers: cores,
            queue: cores,
            downstream_timeout: Duration::from_secs(30),
            max_body_bytes: 64 << 20,
            watch: None,
            now: None,
            socket: None,
        }
    }
}

/// An indicator set that loaded, with what is needed to load it into another instance.
struct FeedSet {
    generation: u64,
    feeds: Vec<Feed>,
    settings: String,
}

/// What the dispatcher, the workers and the reloader share.
struct Shared {
    options: ServeOptions,
    runtime: ComponentRuntime,
    feed_set: Mutex<Arc<FeedSet>>,
    generation: AtomicU64,
    stopping: AtomicBool,
    metrics: Metrics,
    log: LogLimiter,
}

impl Shared {
    fn current_set(&self) -> Arc<FeedSet> {
        self.feed_set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// A batch waiting for a worker.
struct Job {
    request: Request,
    received: Instant,
}

/// Tells a running sidecar to reload or stop; cheap to clone, usable from a signal thread.
#[derive(Clone)]
pub struct Control {
    shared: Arc<Shared>,
    reload: mpsc::Sender<()>,
}

impl Control {
    /// Reads the feeds and settings again and swaps them in if they load.
    pub fn reload(&self) {
        let _ = self.reload.send(());
    }

    /// Stops taking batches; those already taken are finished and answered.
    pub fn stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
    }

    /// The sidecar's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }
}

/// A running sidecar.
pub struct Sidecar {
    addr: SocketAddr,
    socket: Option<(SocketAddr, JoinHandle<()>)>,
    control: Control,
    dispatcher: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
    reloader: JoinHandle<()>,
}

impl Sidecar {
    /// Loads the feeds, starts the workers and listens. Fails, naming the bad input, when
    /// the feeds or settings do not load or the address cannot be bound.
    pub fn start(runtime: &ComponentRuntime, options: ServeOptions) -> Result<Sidecar> {
        let (feeds, settings) = read_load_inputs(&options.load)?;
        let mut probe = runtime.instantiate()?;
        let stats = load_inputs(&mut probe, feeds.clone(), &settings, &options.load)?;
        drop(probe);
        eprintln!("iocsieve serve: {}", describe_load(&stats));

        let metrics = Metrics::default();
        metrics.generation.store(1, Ordering::Relaxed);
        metrics
            .indicators
            .store(stats.indicators, Ordering::Relaxed);
        metrics.last_reload_ok.store(1, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            runtime: runtime.clone(),
            feed_set: Mutex::new(Arc::new(FeedSet {
                generation: 1,
                feeds,
                settings,
            })),
            generation: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            metrics,
            log: LogLimiter::default(),
            options,
        });

        let workers_wanted = shared.options.workers.max(1);
        let (queue_tx, queue_rx) = mpsc::sync_channel::<Job>(shared.options.queue);
        let queue_rx = Arc::new(Mutex::new(queue_rx));
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut workers = Vec::new();
        for id in 0..workers_wanted {
            let shared = shared.clone();
            let queue_rx = queue_rx.clone();
            let ready_tx = ready_tx.clone();
            workers.push(
                std::thread::Builder::new()
                    .name(format!("iocsieve-worker-{id}"))
                    .spawn(move || work(id, &shared, &queue_rx, ready_tx))?,
            );
        }
        drop(ready_tx);
        for _ in 0..workers_wanted {
            ready_rx
                .recv()
                .map_err(|_| anyhow!("a worker stopped while starting"))?
                .context("starting a worker")?;
        }

        let server = tiny_http::Server::http(shared.options.listen)
            .map_err(|e| anyhow!("cannot listen on {}: {e}", shared.options.listen))?;
        let addr = server
            .server_addr()
            .to_ip()
            .context("the server has no IP address")?;

        let (reload_tx, reload_rx) = mpsc::channel();
        let control = Control {
            shared: shared.clone(),
            reload: reload_tx,
        };
        let reloader = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("iocsieve-reload".into())
                .spawn(move || reload_loop(&shared, &reload_rx))?
        };
        let socket = match shared.options.socket.clone() {
            Some(options) => Some(socket::start(
                shared.clone(),
                options.listen,
                options.downstream,
            )?),
            None => None,
        };
        let dispatcher = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("iocsieve-dispatch".into())
                .spawn(move || dispatch(server, &shared, queue_tx))?
        };
        Ok(Sidecar {
            addr,
            socket,
            control,
            dispatcher,
            workers,
            reloader,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the best-effort socket listener, if there is one.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.socket.as_ref().map(|(addr, _)| *addr)
    }

    /// A handle to reload or stop it.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// Waits until [`Control::stop`] was called and every batch taken was answered.
    pub fn wait(self) {
        let _ = self.dispatcher.join();
        if let Some((_, acceptor)) = self.socket {
            let _ = acceptor.join();
        }
        for worker in self.workers {
            let _ = worker.join();
        }
        let _ = self.reloader.join();
    }

    /// Stops and waits.
    pub fn stop(self) {
        self.control.stop();
        self.wait();
    }
}

/// Takes requests until stopped; then refuses what is left with 503 and closes the queue,
/// so the workers finish the batches they have and end.
fn dispatch(server: tiny_http::Server, shared: &Shared, queue: SyncSender<Job>) {
    while !shared.stopping.load(Ordering::SeqCst) {
        match server.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(request)) => route(request, shared, &queue),
            Ok(None) => {}
            Err(e) => {
                shared
                    .log
                    .line(format_args!("accepting a request failed: {e}"));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    while let Ok(Some(request)) = server.try_recv() {
        answer(request, 503, "iocsieve is stopping; retry");
    }
    drop(queue);
    // Keeping `server` until here keeps the port bound, so senders see 503, not refusals,
    // until the queue is closed.
    drop(server);
}

fn route(request: Request, shared: &Shared, queue: &SyncSender<Job>) {
    if let Some(token) = &shared.options.token
        && !has_bearer_token(&request, token)
    {
        shared.metrics.unauthorized.fetch_add(1, Ordering::Relaxed);
        let response = text_response(401, "a valid bearer token is required")
            .with_header(Header::from_bytes("WWW-Authenticate", "Bearer").expect("a valid header"));
        let _ = request.respond(response);
        return;
    }
    let path = request.url().split('?').next().unwrap_or_default();
    match (request.method(), path) {
        (Method::Get, "/health") => {
            let set = shared.generation.load(Ordering::Relaxed);
            let indicators = shared.metrics.indicators.load(Ordering::Relaxed);
            let body =
                format!("{{\"status\":\"ok\",\"generation\":{set},\"indicators\":{indicators}}}\n");
            let response = Response::from_string(body).with_header(
                Header::from_bytes("Content-Type", "application/json").expect("a valid header"),
            );
            let _ = request.respond(response);
        }
        (Method::Get, "/metrics") => {
            let response = Response::from_string(shared.metrics.render()).with_header(
                Header::from_bytes("Content-Type", "text/plain; version=0.0.4")
                    .expect("a valid header"),
            );
            let _ = request.respond(response);
        }
        (Method::Post | Method::Put, _) if shared.options.downstream.is_empty() => {
            answer(
                request,
                404,
                "no --downstream: this sidecar takes records by socket only",
            );
        }
        (Method::Post | Method::Put, _) => {
            shared.metrics.in_flight.fetch_add(1, Ordering::SeqCst);
            let job = Job {
                request,
                received: Instant::now(),
            };
            match queue.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(job)) => {
                    shared.metrics.in_flight.fetch_sub(1, Ordering::SeqCst);
                    shared.metrics.overloaded.fetch_add(1, Ordering::Relaxed);
                    answer(
                        job.request,
                        429,
                        "iocsieve is at its limit of batches; retry",
                    );
                }
                Err(TrySendError::Disconnected(job)) => {
                    shared.metrics.in_flight.fetch_sub(1, Ordering::SeqCst);
                    answer(job.request, 503, "iocsieve is stopping; retry");
                }
            }
        }
        _ => answer(
            request,
            404,
            "POST batches to any path; GET /health or /metrics",
        ),
    }
}

/// Whether the request carries `Authorization: Bearer <token>`.
fn has_bearer_token(request: &Request, token: &str) -> bool {
    request
        .headers()
        .iter()
        .filter(|h| h.field.equiv("Authorization"))
        .any(|h| {
            let value = h.value.as_str().trim();
            match (value.get(..7), value.get(7..)) {
                (Some(scheme), Some(presented)) => {
                    scheme.eq_ignore_ascii_case("bearer ")
                        && same_bytes(presented.trim().as_bytes(), token.as_bytes())
                }
                _ => false,
            }
        })
}

/// Compares without stopping at the first difference, so timing tells nothing about the
/// token.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn text_response(status: u16, message: &str) -> Response<Cursor> {
    Response::from_string(format!("{message}\n")).with_status_code(status)
}

type Cursor = std::io::Cursor<Vec<u8>>;

/// Answers with a plain-text message; retryable refusals tell the sender when to retry.
fn answer(request: Request, status: u16, message: &str) {
    let mut response = text_response(status, message);
    if status == 429 || status == 503 {
        response.add_header(Header::from_bytes("Retry-After", "1").expect("a valid header"));
    }
    let _ = request.respond(response);
}

/// One worker: its own instance, loaded with the set in force, and batches from the queue
/// until it is closed.
fn work(id: usize, shared: &Shared, queue: &Mutex<Receiver<Job>>, ready: mpsc::Sender<Result<()>>) {
    let started = (|| -> Result<(DetectorInstance, u64)> {
        let mut instance = shared.runtime.instantiate()?;
        let set = shared.current_set();
        load_inputs(
            &mut instance,
            set.feeds.clone(),
            &set.settings,
            &shared.options.load,
        )?;
        Ok((instance, set.generation))
    })();
    let (mut instance, mut generation) = match started {
        Ok(s) => {
            let _ = ready.send(Ok(()));
            s
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    drop(ready);
    let agent = downstream_agent(&shared.options);
    loop {
        let job = match queue.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => break,
        };
        refresh_set(
            shared,
            &mut instance,
            &mut generation,
            &format!("worker {id}"),
        );
        let result = handle(job, shared, &mut instance, &agent);
        shared.metrics.in_flight.fetch_sub(1, Ordering::SeqCst);
        if result != BatchResult::Rejected
            && let Ok(counters) = instance.counters()
        {
            shared
                .metrics
                .worker_counters(id, &counters, instance.traps());
        }
    }
}

/// Swaps the published indicator set into `instance` if it holds an older one.
fn refresh_set(shared: &Shared, instance: &mut DetectorInstance, generation: &mut u64, who: &str) {
    if shared.generation.load(Ordering::SeqCst) == *generation {
        return;
    }
    let set = shared.current_set();
    match load_inputs(
        instance,
        set.feeds.clone(),
        &set.settings,
        &shared.options.load,
    ) {
        Ok(_) => *generation = set.generation,
        // The probe loaded this very set; should this instance still refuse it, it keeps
        // its previous set and tries again before the next batch.
        Err(e) => shared.log.line(format_args!(
            "{who} could not swap in feed set {}: {e:#}",
            set.generation
        )),
    }
}

fn downstream_agent(options: &ServeOptions) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(options.downstream_timeout))
        .http_status_as_error(false)
        // The downstream is named explicitly; a proxy from the environment is not wanted
        // between two local processes.
        .proxy(None)
        .build()
        .into()
}

/// Why a batch was not delivered: the status for the sender and a message.
struct Failure {
    result: BatchResult,
    status: u16,
    message: String,
}

/// Evaluates one batch, delivers it and answers the sender.
fn handle(
    mut job: Job,
    shared: &Shared,
    instance: &mut DetectorInstance,
    agent: &ureq::Agent,
) -> BatchResult {
    let outcome = deliver(&mut job.request, shared, instance, agent);
    let result = match outcome {
        Ok(records) => {
            let response = Response::from_string(format!("{{\"records\":{records}}}\n"))
                .with_header(
                    Header::from_bytes("Content-Type", "application/json").expect("a valid header"),
                );
            let _ = job.request.respond(response);
            BatchResult::Delivered
        }
        Err(failure) => {
            answer(job.request, failure.status, &failure.message);
            failure.result
        }
    };
    shared.metrics.batch_done(result, job.received.elapsed());
    result
}

/// Reads, evaluates and posts one batch; the number of records the downstream accepted.
fn deliver(
    request: &mut Request,
    shared: &Shared,
    instance: &mut DetectorInstance,
    agent: &ureq::Agent,
) -> Result<usize, Failure> {
    let options = &shared.options;
    let rejected = |e: BodyError| {
        shared
            .log
            .line(format_args!("refused a batch ({}): {e}", e.status()));
        Failure {
            result: BatchResult::Rejected,
            status: e.status(),
            message: e.to_string(),
        }
    };
    let encoding = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Content-Encoding"))
        .map(|h| h.value.as_str().to_string());
    let body = read_body(
        request.as_reader(),
        encoding.as_deref(),
        options.max_body_bytes,
    )
    .map_err(rejected)?;
    let batch = Batch::parse(body).map_err(rejected)?;
    let m = &shared.metrics;
    m.records_received
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    m.records_not_utf8
        .fetch_add(batch.not_utf8, Ordering::Relaxed);
    if batch.is_empty() {
        return Ok(0);
    }

    let now = options.now.unwrap_or_else(system_now);
    let outcomes = instance.evaluate_batch(&batch.text, now).map_err(|e| {
        shared
            .log
            .line(format_args!("the component failed on a batch: {e:#}"));
        Failure {
            result: BatchResult::EngineFailed,
            status: 503,
            message: "the detector failed on this batch; retry".into(),
        }
    })?;
    if outcomes.len() != batch.len() {
        return Err(Failure {
            result: BatchResult::EngineFailed,
            status: 503,
            message: format!(
                "the component returned {} outcomes for {} records",
                outcomes.len(),
                batch.len()
            ),
        });
    }
    let mut output = Vec::with_capacity(batch.text.len() + batch.text.len() / 4);
    let mut records = 0;
    for (index, outcome) in outcomes.iter().enumerate() {
        match &outcome.emit {
            Emit::Unchanged => output.extend_from_slice(batch.original(index)),
            Emit::Enriched(text) => output.extend_from_slice(text.as_bytes()),
            Emit::Dropped => continue,
        }
        output.push(b'\n');
        records += 1;
    }
    if records == 0 {
        return Ok(0);
    }

    post_downstream(shared, agent, &output)?;
    m.records_delivered
        .fetch_add(records as u64, Ordering::Relaxed);
    Ok(records)
}

fn post_downstream(shared: &Shared, agent: &ureq::Agent, output: &[u8]) -> Result<(), Failure> {
    let options = &shared.options;
    let started = Instant::now();
    let mut post = agent
        .post(&options.downstream)
        .header("Content-Type", "application/x-ndjson");
    if let Some(authorization) = &options.downstream_authorization {
        post = post.header("Authorization", authorization);
    }
    let sent = post.send(output);
    shared.metrics.downstream_took(started.elapsed());
    let (error, message) = match sent {
        Ok(mut response) if response.status().is_success() => {
            // Read to the end so the connection can be used again.
            let _ = response
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_vec();
            return Ok(());
        }
        Ok(mut response) => {
            let detail = response
                .body_mut()
                .with_config()
                .limit(4096)
                .read_to_string()
                .unwrap_or_default();
            (
                DownstreamError::Status,
                format!(
                    "the downstream answered {}: {}",
                    response.status(),
                    detail.trim()
                ),
            )
        }
        Err(ureq::Error::Timeout(what)) => (
            DownstreamError::Timeout,
            format!(
                "the downstream did not answer within {:?} ({what})",
                options.downstream_timeout
            ),
        ),
        Err(e) => (
            DownstreamError::Transport,
            format!("cannot post to the downstream: {e}"),
        ),
    };
    shared.metrics.downstream_failed(error);
    shared.log.line(format_args!(
        "{message} ({}); the sender is told to retry",
        options.downstream
    ));
    Err(Failure {
        result: BatchResult::DownstreamFailed,
        status: 503,
        message,
    })
}

/// Reloads on request, and on a change of the input files when watching, until stopped.
fn reload_loop(shared: &Shared, requests: &Receiver<()>) {
    let watch = shared.options.watch;
    let mut stamps = file_stamps(&shared.options.load);
    let mut checked = Instant::now();
    while !shared.stopping.load(Ordering::SeqCst) {
        let requested = match requests.recv_timeout(Duration::from_millis(200)) {
            Ok(()) => true,
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut changed = false;
        if let Some(interval) = watch
            && checked.elapsed() >= interval
        {
            checked = Instant::now();
            let now = file_stamps(&shared.options.load);
            changed = now != stamps;
            stamps = now;
        }
        if requested || changed {
            reload(shared);
        }
    }
}

/// The modification times of the feed and settings files, to notice a change.
fn file_stamps(options: &ScanOptions) -> Vec<Option<SystemTime>> {
    let paths: Vec<&PathBuf> = options.feeds.iter().chain(&options.settings).collect();
    paths
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

fn reload(shared: &Shared) {
    let m = &shared.metrics;
    let attempt = || -> Result<(Vec<Feed>, String, u64)> {
        let (feeds, settings) = read_load_inputs(&shared.options.load)?;
        let mut probe = shared.runtime.instantiate()?;
        let stats = load_inputs(&mut probe, feeds.clone(), &settings, &shared.options.load)?;
        eprintln!("iocsieve serve: reloaded: {}", describe_load(&stats));
        Ok((feeds, settings, stats.indicators))
    };
    match attempt() {
        Ok((feeds, settings, indicators)) => {
            let mut slot = shared.feed_set.lock().unwrap_or_else(|p| p.into_inner());
            let generation = slot.generation + 1;
            *slot = Arc::new(FeedSet {
                generation,
                feeds,
                settings,
            });
            shared.generation.store(generation, Ordering::SeqCst);
            drop(slot);
            m.generation.store(generation, Ordering::Relaxed);
            m.indicators.store(indicators, Ordering::Relaxed);
            m.reloads_ok.fetch_add(1, Ordering::Relaxed);
            m.last_reload_ok.store(1, Ordering::Relaxed);
        }
        Err(e) => {
            m.reloads_failed.fetch_add(1, Ordering::Relaxed);
            m.last_reload_ok.store(0, Ordering::Relaxed);
            eprintln!(
                "iocsieve serve: reload failed, keeping feed set {}: {e:#}",
                shared.generation.load(Ordering::SeqCst)
            );
        }
    }
}

/// Log lines about batches, at most one per second with a count of the ones left out:
/// a downstream that is down must not flood the log.
#[derive(Default)]
struct LogLimiter {
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogLimiter {
    fn line(&self, message: std::fmt::Arguments<'_>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (last, skipped) = &mut *state;
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            *skipped += 1;
            return;
        }
        *last = Some(Instant::now());
        if *skipped > 0 {
            eprintln!("iocsieve serve: {message} (and {skipped} more lines left out)");
            *skipped = 0;
        } else {
            eprintln!("iocsieve serve: {message}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_bytes(b"secret", b"secret"));
        assert!(!same_bytes(b"secret", b"secreT"));
        assert!(!same_bytes(b"secret", b"secret2"));
        assert!(!same_bytes(b"", b"x"));
    }
}
