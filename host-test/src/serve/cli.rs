//! The `iocsieve serve` command line: options, signals, and the run until SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use super::{ServeOptions, Sidecar, SocketOptions};
use crate::component::{ComponentRuntime, feed_format};
use crate::scan::{ScanOptions, parse_now};

/// The environment variable that may hold the bearer token senders must present.
pub const TOKEN_ENV: &str = "IOCSIEVE_SERVE_TOKEN";
/// The environment variable that may hold the `Authorization` value for the downstream.
pub const DOWNSTREAM_AUTHORIZATION_ENV: &str = "IOCSIEVE_DOWNSTREAM_AUTHORIZATION";

/// Options of `iocsieve serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// An indicator feed (repeat for several). Default: the built-in Mirai feed.
    #[arg(long = "feed", value_name = "FILE")]
    pub feeds: Vec<PathBuf>,
    /// The feeds' format: auto, threatfox-json, threatfox-csv, threatfox-api.
    #[arg(long, default_value = "auto")]
    pub feed_format: String,
    /// Settings file (TOML or JSON): mode, exclusions, profiles, output.
    #[arg(long, value_name = "FILE")]
    pub settings: Option<PathBuf>,
    /// Pass only hits (overrides the settings' mode).
    #[arg(long)]
    pub only_hits: bool,
    /// Address to listen on for batches from Vector's `http` sink (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:9680")]
    pub listen: SocketAddr,
    /// Where to post the results: the URL of Vector's `http_server` source.
    #[arg(long, value_name = "URL", required_unless_present = "socket_listen")]
    pub downstream: Option<String>,
    /// Best effort: also take NDJSON over plain TCP here (Vector's `socket` sink).
    #[arg(long, value_name = "ADDR", requires = "socket_downstream")]
    pub socket_listen: Option<SocketAddr>,
    /// Best effort: write the results as NDJSON over TCP to HOST:PORT (a `socket` source).
    #[arg(long, value_name = "HOST:PORT", requires = "socket_listen")]
    pub socket_downstream: Option<String>,
    /// File holding the bearer token every request must carry (or set IOCSIEVE_SERVE_TOKEN).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Threads evaluating batches, each with its own instance (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Batches that may wait for a worker; beyond them requests get 429 (default: workers).
    #[arg(long)]
    pub queue: Option<usize>,
    /// Seconds to wait for the downstream before telling the sender to retry (503).
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub downstream_timeout: f64,
    /// The largest request body accepted, after decompression, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_body_bytes: usize,
    /// Also reload when a feed or settings file changes, checked every SECONDS.
    #[arg(long, value_name = "SECONDS")]
    pub watch: Option<f64>,
    /// A fixed time to evaluate at (RFC 3339 or Unix seconds); default: the clock.
    #[arg(long)]
    pub now: Option<String>,
}

impl ServeArgs {
    /// The options these arguments and the environment describe.
    pub fn options(&self) -> Result<ServeOptions> {
        let load = ScanOptions {
            feeds: self.feeds.clone(),
            feed_format: feed_format(&self.feed_format).with_context(|| {
                format!(
                    "unknown feed format {:?}; use auto, threatfox-json, threatfox-csv or \
                     threatfox-api",
                    self.feed_format
                )
            })?,
            settings: self.settings.clone(),
            only_hits: self.only_hits,
            batch_size: 0,
            now: 0,
            inputs: Vec::new(),
        };
        let downstream = self.downstream.clone().unwrap_or_default();
        if self.downstream.is_some() && !downstream.starts_with("http://") {
            // Built without TLS: the downstream is a Vector on the same host or network.
            bail!(
                "--downstream {downstream:?} is not an http:// URL (https is not supported: \
                 run the sidecar next to the Vector it posts to)"
            );
        }
        let mut options = ServeOptions::new(load, downstream);
        if let (Some(listen), Some(downstream)) = (self.socket_listen, &self.socket_downstream) {
            options.socket = Some(SocketOptions {
                listen,
                downstream: downstream.clone(),
            });
        }
        options.listen = self.listen;
        options.token = match &self.token_file {
            Some(path) => Some(read_secret(path)?),
            None => std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty()),
        };
        options.downstream_authorization = std::env::var(DOWNSTREAM_AUTHORIZATION_ENV)
            .ok()
            .filter(|t| !t.is_empty());
        if let Some(workers) = self.workers {
            options.workers = workers.max(1);
        }
        options.queue = self.queue.unwrap_or(options.workers);
        options.downstream_timeout = seconds(self.downstream_timeout, "--downstream-timeout")?;
        options.max_body_bytes = self.max_body_bytes;
        options.watch = self.watch.map(|s| seconds(s, "--watch")).transpose()?;
        options.now = self.now.as_deref().map(parse_now).transpose()?;
        Ok(options)
    }
}

fn seconds(value: f64, name: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{name} {value} is not a positive number of seconds"))
}

fn read_secret(path: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    let token = text.trim().to_string();
    if token.is_empty() {
        bail!("the token file {} is empty", path.display());
    }
    Ok(token)
}

/// Runs the sidecar until SIGTERM or SIGINT; SIGHUP reloads the feeds and settings.
pub fn run(runtime: &ComponentRuntime, args: &ServeArgs) -> Result<()> {
    let options = args.options()?;
    if options.token.is_none() && !options.listen.ip().is_loopback() {
        eprintln!(
            "iocsieve serve: warning: listening on {} without a token: anyone who can reach it \
             can inject records into the pipeline (set {TOKEN_ENV} or --token-file)",
            options.listen
        );
    }
    let downstream = options.downstream.clone();
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGTERM, SIGINT])
        .context("cannot install the signal handlers")?;
    let sidecar = Sidecar::start(runtime, options)?;
    // Tests and scripts read this line to learn the port when listening on port 0.
    eprintln!(
        "iocsieve serve: listening on {}, delivering to {downstream}",
        sidecar.local_addr()
    );
    if let (Some(addr), Some(socket)) = (sidecar.socket_addr(), &args.socket_downstream) {
        eprintln!("iocsieve serve: best effort: socket on {addr}, writing to {socket}");
    }
    let control = sidecar.control();
    std::thread::Builder::new()
        .name("iocsieve-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if signal == SIGHUP {
                    control.reload();
                } else {
                    eprintln!("iocsieve serve: stopping after the batches in flight");
                    control.stop();
                    break;
                }
            }
        })?;
    sidecar.wait();
    eprintln!("iocsieve serve: stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> Result<ServeOptions> {
        let command =
            Command::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))?;
        command.serve.options()
    }

    #[test]
    fn the_downstream_is_plain_http() {
        let options = parse(&["--downstream", "http://127.0.0.1:9681/"]).unwrap();
        assert_eq!(options.downstream, "http://127.0.0.1:9681/");
        assert!(options.listen.ip().is_loopback(), "loopback by default");
        assert!(options.socket.is_none());
        let error = parse(&["--downstream", "https://siem.example/"]).unwrap_err();
        assert!(
            error.to_string().contains("https is not supported"),
            "{error}"
        );
    }

    #[test]
    fn the_socket_path_needs_both_ends_and_no_http_downstream() {
        assert!(parse(&[]).is_err(), "no downstream at all");
        assert!(parse(&["--socket-listen", "127.0.0.1:9690"]).is_err());
        let options = parse(&[
            "--socket-listen",
            "127.0.0.1:9690",
            "--socket-downstream",
            "127.0.0.1:9691",
        ])
        .unwrap();
        assert_eq!(options.downstream, "");
        assert_eq!(options.socket.unwrap().downstream, "127.0.0.1:9691");
    }

    #[test]
    fn limits_must_be_positive() {
        let error = parse(&["--downstream", "http://h/", "--downstream-timeout", "0"]).unwrap_err();
        assert!(
            error.to_string().contains("--downstream-timeout"),
            "{error}"
        );
        let options = parse(&["--downstream", "http://h/", "--workers", "3"]).unwrap();
        assert_eq!((options.workers, options.queue), (3, 3));
    }
}
