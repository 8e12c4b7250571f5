//! Running the iocsieve component in wasmtime.
//!
//! [`ComponentRuntime`] compiles the component once; [`DetectorInstance`] is one instance
//! with its store. A trap (a guest panic) leaves an instance that cannot be entered again,
//! so the instance re-instantiates and replays the last good load; a batch that trapped is
//! then evaluated record by record, and a record that traps on its own passes through
//! unchanged and is counted. No record is lost to a trap.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "iocsieve",
    });
}

pub use bindings::exports::iocsieve::detector::detector::{
    BatchOutcome, Counters, Emit, Feed, FeedFormat, FeedStats, IndicatorMatch, LineOutcome,
    LoadError, LoadStats, NamedCount, Outcome, SuppressedHit, Verdict,
};
use bindings::{Iocsieve, IocsievePre};

/// How the host runs the guest's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Execution {
    /// Compiled to native code by Cranelift.
    Compiled,
    /// Interpreted by Pulley, wasmtime's portable interpreter: a stand-in for the
    /// interpreters of collectors such as Fluent Bit's.
    Interpreted,
}

/// The file name of the component as the build writes it.
pub const COMPONENT_FILE: &str = "iocsieve_component.wasm";

/// Finds the component: `IOCSIEVE_COMPONENT`, next to the executable, or where the
/// workspace build writes it.
pub fn locate_component() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("IOCSIEVE_COMPONENT") {
        return Ok(PathBuf::from(path));
    }
    locate_build_output(
        Path::new("wasm32-wasip2")
            .join("wasm-release")
            .join(COMPONENT_FILE),
        "`cargo build -p iocsieve-component --target wasm32-wasip2 --profile wasm-release` \
         (or `./dev build`), or name it with --component or IOCSIEVE_COMPONENT",
    )
}

/// Finds a file the workspace build writes under `target/` (`built`, relative to it): next
/// to the executable, or above it (`target/release/iocsieve`, `target/release/deps/test`),
/// or in this workspace's `target/`. `how_to_build` completes the error message.
pub fn locate_build_output(built: PathBuf, how_to_build: &str) -> Result<PathBuf> {
    let file_name = built
        .file_name()
        .map(Path::new)
        .unwrap_or(&built)
        .to_path_buf();
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        let mut dir = exe.parent().map(Path::to_path_buf);
        for _ in 0..3 {
            let Some(d) = dir else { break };
            candidates.push(d.join(&file_name));
            candidates.push(d.join(&built));
            dir = d.parent().map(Path::to_path_buf);
        }
    }
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target")
            .join(&built),
    );
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "cannot find {}: build it with {how_to_build}",
                built.display()
            )
        })
}

/// The store's state: a WASI context with no files, environment or network (Rust's std
/// asks WASI for a random seed and nothing else).
struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryWatch,
}

/// Follows the size of the guest's linear memory (it only grows), for the load benchmark.
#[derive(Default)]
struct MemoryWatch {
    bytes: usize,
}

impl wasmtime::ResourceLimiter for MemoryWatch {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.bytes = self.bytes.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A compiled component, ready to instantiate.
#[derive(Clone)]
pub struct ComponentRuntime {
    engine: Engine,
    pre: IocsievePre<HostState>,
}

impl ComponentRuntime {
    /// Compiles the component at `path`.
    pub fn from_file(path: &Path, execution: Execution) -> Result<ComponentRuntime> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the component {}", path.display()))?;
        Self::from_bytes(&bytes, execution)
            .with_context(|| format!("cannot load the component {}", path.display()))
    }

    /// Compiles a component from its bytes.
    pub fn from_bytes(bytes: &[u8], execution: Execution) -> Result<ComponentRuntime> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        if execution == Execution::Interpreted {
            config.target("pulley64")?;
        }
        // `IOCSIEVE_PERFMAP=1` names the guest's compiled functions for `perf report`;
        // `IOCSIEVE_PERFMAP=jitdump` writes a jitdump for `perf inject --jit` and annotation.
        match std::env::var("IOCSIEVE_PERFMAP").as_deref() {
            Ok("jitdump") => config.profiler(wasmtime::ProfilingStrategy::JitDump),
            Ok(_) => config.profiler(wasmtime::ProfilingStrategy::PerfMap),
            Err(_) => &mut config,
        };
        let engine = Engine::new(&config)?;
        let component = Component::new(&engine, bytes)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        let pre = IocsievePre::new(linker.instantiate_pre(&component)?)?;
        Ok(ComponentRuntime { engine, pre })
    }

    /// A new instance with no indicators loaded.
    pub fn instantiate(&self) -> Result<DetectorInstance> {
        let (store, bindings) = self.new_store()?;
        Ok(DetectorInstance {
            runtime: self.clone(),
            store,
            bindings,
            last_load: None,
            traps: 0,
            carried: iocsieve_engine::Counters::default(),
            last_counters: None,
        })
    }

    fn new_store(&self) -> Result<(Store<HostState>, Iocsieve)> {
        let state = HostState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            memory: MemoryWatch::default(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        let bindings = self.pre.instantiate(&mut store)?;
        Ok((store, bindings))
    }
}

/// One instance of the detector.
pub struct DetectorInstance {
    runtime: ComponentRuntime,
    store: Store<HostState>,
    bindings: Iocsieve,
    /// The last load that succeeded, replayed after a trap.
    last_load: Option<(Vec<Feed>, String)>,
    traps: u64,
    /// Counters of instances lost to traps, so totals survive a re-instantiation.
    carried: iocsieve_engine::Counters,
    /// The counters after the last successful batch: what a trap would otherwise lose.
    last_counters: Option<iocsieve_engine::Counters>,
}

impl DetectorInstance {
    /// Loads feeds and settings. The outer error is a trap; the inner one the guest's
    /// refusal of the input, after which the previous set stays in force.
    pub fn load(
        &mut self,
        feeds: Vec<Feed>,
        settings: &str,
    ) -> Result<Result<LoadStats, LoadError>> {
        let guest = self.bindings.iocsieve_detector_detector();
        let result = match guest.call_load(&mut self.store, &feeds, settings) {
            Ok(result) => result,
            Err(trap) => {
                self.recover()?;
                return Err(
                    anyhow::Error::from(trap).context("the component trapped while loading")
                );
            }
        };
        if result.is_ok() {
            self.last_load = Some((feeds, settings.to_string()));
        }
        Ok(result)
    }

    /// Evaluates one record.
    pub fn evaluate(&mut self, record: &str, now: i64) -> Result<Outcome> {
        let guest = self.bindings.iocsieve_detector_detector();
        match guest.call_evaluate(&mut self.store, record, now) {
            Ok(outcome) => Ok(outcome),
            Err(trap) => {
                self.traps += 1;
                self.recover()?;
                Ok(Outcome {
                    verdict: Verdict::Unreadable(format!(
                        "the engine trapped on this record: {trap}"
                    )),
                    emit: Emit::Unchanged,
                })
            }
        }
    }

    /// Evaluates newline-delimited records with one call; one outcome per line.
    pub fn evaluate_batch(&mut self, records: &str, now: i64) -> Result<Vec<Outcome>> {
        let guest = self.bindings.iocsieve_detector_detector();
        match guest.call_evaluate_batch(&mut self.store, records, now) {
            Ok(batch) => {
                // One more call per batch keeps what a later trap would otherwise lose.
                self.last_counters = Some(to_engine_counters(
                    &guest.call_read_counters(&mut self.store)?,
                ));
                Ok(expand_batch(batch))
            }
            Err(_) => {
                // Find the record that trapped by going one at a time.
                self.recover()?;
                let body = records.strip_suffix('\n').unwrap_or(records);
                body.split('\n')
                    .map(|line| self.evaluate(line, now))
                    .collect()
            }
        }
    }

    /// The counters since the instance was made, across re-instantiations after traps; a
    /// record that trapped counts as unreadable.
    pub fn counters(&mut self) -> Result<iocsieve_engine::Counters> {
        let guest = self.bindings.iocsieve_detector_detector();
        let mut counters = to_engine_counters(&guest.call_read_counters(&mut self.store)?);
        counters.add(&self.carried);
        counters.records_in += self.traps;
        counters.records_out += self.traps;
        counters.unreadable += self.traps;
        Ok(counters)
    }

    /// The size of the guest's linear memory, in bytes (it grows and never shrinks).
    pub fn linear_memory_bytes(&self) -> usize {
        self.store.data().memory.bytes
    }

    /// Records that made the engine trap (and passed through unchanged).
    pub fn traps(&self) -> u64 {
        self.traps
    }

    fn recover(&mut self) -> Result<()> {
        if let Some(lost) = self.last_counters.take() {
            self.carried.add(&lost);
        }
        let (store, bindings) = self.runtime.new_store()?;
        self.store = store;
        self.bindings = bindings;
        if let Some((feeds, settings)) = self.last_load.clone() {
            let guest = self.bindings.iocsieve_detector_detector();
            guest
                .call_load(&mut self.store, &feeds, &settings)
                .map_err(anyhow::Error::from)
                .context("replaying the last load after a trap")?
                .map_err(|e| {
                    anyhow::anyhow!("replaying the last load after a trap: {}", e.message)
                })?;
        }
        Ok(())
    }
}

/// One outcome per line from the sparse batch outcome: unlisted lines were misses.
fn expand_batch(batch: BatchOutcome) -> Vec<Outcome> {
    let miss = Outcome {
        verdict: Verdict::Miss,
        emit: batch.misses,
    };
    let mut outcomes = vec![miss; batch.lines as usize];
    for listed in batch.listed {
        if let Some(slot) = outcomes.get_mut(listed.line as usize) {
            *slot = listed.outcome;
        }
    }
    outcomes
}

/// The component's counters as the engine's type, which knows how to print itself.
fn to_engine_counters(c: &Counters) -> iocsieve_engine::Counters {
    let map = |list: &[NamedCount]| list.iter().map(|n| (n.name.clone(), n.count)).collect();
    iocsieve_engine::Counters {
        records_in: c.records_in,
        records_out: c.records_out,
        unreadable: c.unreadable,
        without_profile: c.without_profile,
        hits: c.hits,
        suppressed: c.suppressed,
        address_only_hits: c.address_only_hits,
        dropped_misses: c.dropped_misses,
        dropped_suppressed: c.dropped_suppressed,
        output_key_collisions: c.output_key_collisions,
        expired: c.expired,
        not_yet_valid: c.not_yet_valid,
        text_lines: c.text_lines,
        cef_messages: c.cef_messages,
        hits_by_kind: map(&c.hits_by_kind),
        suppressions_by_exclusion: map(&c.suppressions_by_exclusion),
        records_by_profile: map(&c.records_by_profile),
    }
}

/// Converts a feed format name (`auto`, `threatfox-json`, `list:domain`, ..; the names of
/// `iocsieve_engine::FeedFormat`) to the contract's enum.
pub fn feed_format(name: &str) -> Option<FeedFormat> {
    Some(match name {
        "auto" => FeedFormat::Auto,
        "threatfox-json" => FeedFormat::ThreatfoxJson,
        "threatfox-csv" => FeedFormat::ThreatfoxCsv,
        "threatfox-api" => FeedFormat::ThreatfoxApi,
        "urlhaus-csv" => FeedFormat::UrlhausCsv,
        "urlhaus-json" => FeedFormat::UrlhausJson,
        "feodo-csv" => FeedFormat::FeodoCsv,
        "feodo-json" => FeedFormat::FeodoJson,
        "misp" => FeedFormat::Misp,
        "stix" => FeedFormat::Stix,
        "zeek-intel" => FeedFormat::ZeekIntel,
        "list:ip" => FeedFormat::ListIp,
        "list:ip:port" => FeedFormat::ListIpPort,
        "list:cidr" => FeedFormat::ListCidr,
        "list:domain" => FeedFormat::ListDomain,
        "list:url" => FeedFormat::ListUrl,
        "list:md5" => FeedFormat::ListMd5,
        "list:sha1" => FeedFormat::ListSha1,
        "list:sha256" => FeedFormat::ListSha256,
        _ => return None,
    })
}
