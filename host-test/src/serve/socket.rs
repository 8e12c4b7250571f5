//! The best-effort path: newline-delimited JSON over plain TCP, for Vector's `socket` sink
//! (`mode: tcp`) in and a `socket` source out.
//!
//! There is no answer to wait for on this path: Vector's `socket` sink counts a record as
//! delivered once it is written to the connection. Each inbound connection gets its own
//! thread and instance; records are evaluated in batches of what has arrived (up to
//! [`MAX_BATCH`]) and written to the downstream connection, reconnecting once on failure.
//! A batch that still cannot be written is lost and counted in
//! `iocsieve_records_lost_total`; so is whatever sits in the sockets when either side stops.

use std::io::{BufRead, BufReader, BufWriter, ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::{Batch, BatchResult, DownstreamError, Shared, refresh_set};
use crate::component::{DetectorInstance, Emit};
use crate::scan::{load_inputs, system_now};

/// Records per call into the component at most.
pub const MAX_BATCH: usize = 1000;

/// How often blocked reads and accepts look at the stop flag.
const POLL: Duration = Duration::from_millis(200);

/// Ids of the socket connections' counters, apart from the HTTP workers'.
const CONNECTION_IDS: usize = usize::MAX / 2;

/// Listens on `listen`; returns the bound address and the acceptor thread, which ends, after
/// its connections, once the sidecar stops.
pub(super) fn start(
    shared: Arc<Shared>,
    listen: SocketAddr,
    downstream: String,
) -> Result<(SocketAddr, JoinHandle<()>)> {
    let listener =
        TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let acceptor = std::thread::Builder::new()
        .name("iocsieve-socket".into())
        .spawn(move || accept(&listener, &shared, &downstream))?;
    Ok((addr, acceptor))
}

fn accept(listener: &TcpListener, shared: &Arc<Shared>, downstream: &str) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    let mut next_id = CONNECTION_IDS;
    while !shared.stopping.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (for_thread, downstream) = (shared.clone(), downstream.to_string());
                let id = next_id;
                next_id += 1;
                let spawned = std::thread::Builder::new()
                    .name(format!("iocsieve-socket-{id}"))
                    .spawn(move || serve_connection(id, stream, &for_thread, &downstream));
                match spawned {
                    Ok(handle) => connections.push(handle),
                    Err(e) => shared
                        .log
                        .line(format_args!("cannot start a connection thread: {e}")),
                }
                connections.retain(|c| !c.is_finished());
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL / 4),
            Err(e) => {
                shared
                    .log
                    .line(format_args!("accepting a connection failed: {e}"));
                std::thread::sleep(POLL);
            }
        }
    }
    for connection in connections {
        let _ = connection.join();
    }
}

fn serve_connection(id: usize, stream: TcpStream, shared: &Shared, downstream: &str) {
    let set = shared.current_set();
    let mut generation = set.generation;
    let started = shared.runtime.instantiate().and_then(|mut instance| {
        load_inputs(
            &mut instance,
            set.feeds.clone(),
            &set.settings,
            &shared.options.load,
        )?;
        Ok(instance)
    });
    let mut instance = match started {
        Ok(instance) => instance,
        Err(e) => {
            shared.log.line(format_args!(
                "cannot start an instance for a connection: {e:#}"
            ));
            return;
        }
    };
    drop(set);
    if stream.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let mut reader = BufReader::with_capacity(1 << 20, stream);
    let mut out = Downstream::new(downstream, shared.options.downstream_timeout);
    let mut pending = Vec::new();
    let mut records = 0;
    let mut line_start = 0;
    loop {
        let read = reader.read_until(b'\n', &mut pending);
        let finished = match read {
            Ok(0) => true,
            Ok(_) if pending.last() == Some(&b'\n') => {
                records += 1;
                line_start = pending.len();
                false
            }
            // The last line of a closed connection, without its newline.
            Ok(_) => true,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => true,
        };
        let stopping = shared.stopping.load(Ordering::SeqCst);
        let idle = reader.buffer().is_empty();
        if records > 0 && (finished || stopping || idle || records >= MAX_BATCH) {
            // A partial line stays for the next batch.
            let rest = pending.split_off(line_start);
            refresh_set(
                shared,
                &mut instance,
                &mut generation,
                "a socket connection",
            );
            deliver(id, &pending, shared, &mut instance, &mut out);
            pending = rest;
            records = 0;
            line_start = 0;
        }
        if finished || stopping {
            if finished && !pending.is_empty() {
                refresh_set(
                    shared,
                    &mut instance,
                    &mut generation,
                    "a socket connection",
                );
                deliver(id, &pending, shared, &mut instance, &mut out);
            }
            return;
        }
    }
}

/// Evaluates the complete lines in `lines` and writes what the settings pass on downstream.
fn deliver(
    id: usize,
    lines: &[u8],
    shared: &Shared,
    instance: &mut DetectorInstance,
    out: &mut Downstream,
) {
    let received = Instant::now();
    let m = &shared.metrics;
    let batch = Batch::from_lines(lines);
    if batch.is_empty() {
        return;
    }
    m.records_received
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    m.records_not_utf8
        .fetch_add(batch.not_utf8, Ordering::Relaxed);
    let now = shared.options.now.unwrap_or_else(system_now);
    let mut output = Vec::with_capacity(lines.len() + lines.len() / 4);
    let mut records = 0u64;
    match instance.evaluate_batch(&batch.text, now) {
        Ok(outcomes) if outcomes.len() == batch.len() => {
            for (index, outcome) in outcomes.iter().enumerate() {
                match &outcome.emit {
                    Emit::Unchanged => output.extend_from_slice(batch.original(index)),
                    Emit::Enriched(text) => output.extend_from_slice(text.as_bytes()),
                    Emit::Dropped => continue,
                }
                output.push(b'\n');
                records += 1;
            }
        }
        // Best effort, but not blind: records the engine could not run pass on unchanged.
        _ => {
            shared.log.line(format_args!(
                "the component failed on a batch; passing it on"
            ));
            for index in 0..batch.len() {
                output.extend_from_slice(batch.original(index));
                output.push(b'\n');
                records += 1;
            }
        }
    }
    if let Ok(counters) = instance.counters() {
        m.worker_counters(id, &counters, instance.traps());
    }
    if records == 0 {
        m.batch_done(BatchResult::Delivered, received.elapsed());
        return;
    }
    let started = Instant::now();
    let written = out.write(&output);
    m.downstream_took(started.elapsed());
    match written {
        Ok(()) => {
            m.records_delivered.fetch_add(records, Ordering::Relaxed);
            m.batch_done(BatchResult::Delivered, received.elapsed());
        }
        Err(e) => {
            m.downstream_failed(
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                    DownstreamError::Timeout
                } else {
                    DownstreamError::Transport
                },
            );
            m.records_lost.fetch_add(records, Ordering::Relaxed);
            m.batch_done(BatchResult::DownstreamFailed, received.elapsed());
            shared.log.line(format_args!(
                "lost {records} records: cannot write to {}: {e}",
                out.address
            ));
        }
    }
}

/// The connection to the downstream `socket` source, opened when needed.
struct Downstream {
    address: String,
    timeout: Duration,
    connection: Option<BufWriter<TcpStream>>,
}

impl Downstream {
    fn new(address: &str, timeout: Duration) -> Downstream {
        Downstream {
            address: address.to_string(),
            timeout,
            connection: None,
        }
    }

    /// Writes `bytes`, reconnecting once if the connection broke.
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let mut last_error = None;
        for _ in 0..2 {
            match self.try_write(bytes) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.connection = None;
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.expect("two attempts"))
    }

    fn try_write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.connection.is_none() {
            let address = self.address.to_socket_addrs()?.next().ok_or_else(|| {
                std::io::Error::new(ErrorKind::NotFound, "the address resolves to nothing")
            })?;
            let stream = TcpStream::connect_timeout(&address, self.timeout)?;
            stream.set_write_timeout(Some(self.timeout))?;
            self.connection = Some(BufWriter::with_capacity(1 << 20, stream));
        }
        let connection = self.connection.as_mut().expect("connected above");
        connection.write_all(bytes)?;
        connection.flush()
    }
}
