//! Running the Fluent Bit module (`fluent-bit/`, a core wasm module) the way Fluent Bit's
//! `wasm` filter does, so it can be tested and measured without Fluent Bit.
//!
//! What is reproduced (see ../shared/PIPELINES.md): WASI preview1 with empty arguments and
//! environment and the `accessible_paths` directories preopened under their own names;
//! `_initialize` called once at start-up, its trap failing the start; per record, the tag
//! and the record copied into guest memory with a trailing NUL (the lengths without it),
//! the time as two u32, the NUL-terminated result read back. The copies go through the
//! module's exported `malloc`/`free` when it has them, and otherwise into a heap of
//! `heap_size` bytes in linear memory; a record that does not fit arrives as a null pointer
//! with its length, as it does in Fluent Bit. (Fluent Bit's heap allocator has some
//! overhead per block that this bump allocator lacks: safe heap sizes are measured against
//! Fluent Bit itself.)

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use wasmtime::{Config, Engine, Instance, Linker, Memory, Module, Store, TypedFunc};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, HostWallClock, WasiCtxBuilder};

use crate::component::Execution;

/// The file name of the iocsieve module as the build writes it.
pub const MODULE_FILE: &str = "iocsieve_fluent_bit.wasm";
/// The file name of the copy-through module (an example of the same crate).
pub const COPY_THROUGH_FILE: &str = "copy_through.wasm";
/// The iocsieve module's filter function.
pub const FILTER_FUNCTION: &str = "iocsieve_filter";
/// The copy-through module's filter function.
pub const COPY_THROUGH_FUNCTION: &str = "copy_through";
/// Fluent Bit's default `wasm_heap_size`.
pub const DEFAULT_HEAP_SIZE: u32 = 8192;

/// Finds a wasm32-wasip1 build output: `target/wasm32-wasip1/wasm-release/<relative>`.
pub fn locate_wasip1(relative: &str) -> Result<PathBuf> {
    crate::component::locate_build_output(
        Path::new("wasm32-wasip1")
            .join("wasm-release")
            .join(relative),
        "`./dev build` (wasm32-wasip1, wasm-release)",
    )
}

/// The iocsieve module: `IOCSIEVE_FLUENT_BIT_MODULE` or the workspace build.
pub fn locate_module() -> Result<PathBuf> {
    match std::env::var_os("IOCSIEVE_FLUENT_BIT_MODULE") {
        Some(path) => Ok(PathBuf::from(path)),
        None => locate_wasip1(MODULE_FILE),
    }
}

/// The copy-through module of the workspace build.
pub fn locate_copy_through() -> Result<PathBuf> {
    locate_wasip1(&format!("examples/{COPY_THROUGH_FILE}"))
}

/// A wall clock the test moves by hand (seconds since the Unix epoch).
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    pub fn new(seconds: u64) -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(seconds)))
    }

    pub fn advance(&self, seconds: u64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }

    /// Sets the clock, backwards too (as NTP corrects a clock that ran ahead).
    pub fn set(&self, seconds: u64) {
        self.0.store(seconds, Ordering::SeqCst);
    }
}

impl HostWallClock for ManualClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::from_secs(self.0.load(Ordering::SeqCst))
    }
}

/// How to start a filter instance: the `wasm` filter's settings.
#[derive(Debug, Clone)]
pub struct FilterOptions {
    /// `function_name`.
    pub function: String,
    /// `accessible_paths`: host directories, preopened under these names.
    pub accessible_paths: Vec<(PathBuf, String)>,
    /// `wasm_heap_size`: used when the module exports no `malloc`/`free`.
    pub heap_size: u32,
    /// A clock to use instead of the system's.
    pub clock: Option<ManualClock>,
}

impl FilterOptions {
    /// The iocsieve filter reading its files from `dir` (preopened under its own path),
    /// with a heap of `heap_size` bytes.
    pub fn iocsieve(dir: &Path, heap_size: u32) -> FilterOptions {
        FilterOptions {
            function: FILTER_FUNCTION.to_string(),
            accessible_paths: vec![(dir.to_path_buf(), dir.display().to_string())],
            heap_size,
            clock: None,
        }
    }
}

/// A compiled core module, ready to instantiate.
pub struct FilterModule {
    engine: Engine,
    module: Module,
    linker: Linker<WasiP1Ctx>,
}

impl FilterModule {
    /// Compiles the module at `path`.
    pub fn from_file(path: &Path, execution: Execution) -> Result<FilterModule> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the module {}", path.display()))?;
        let mut config = Config::new();
        if execution == Execution::Interpreted {
            config.target("pulley64")?;
        }
        let engine = Engine::new(&config)?;
        let module = Module::new(&engine, &bytes)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("cannot compile the module {}", path.display()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx)?;
        Ok(FilterModule {
            engine,
            module,
            linker,
        })
    }

    /// Starts an instance as Fluent Bit starts a filter: preopens, instantiation,
    /// `_initialize`. A trap there is an error that includes what the module wrote to stderr.
    pub fn start(&self, options: &FilterOptions) -> Result<FilterInstance> {
        let stderr = MemoryOutputPipe::new(1 << 20);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stderr(stderr.clone());
        for (host, guest) in &options.accessible_paths {
            wasi.preopened_dir(host, guest, FsPerms::ReadOnly)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("accessible path {}", host.display()))?;
        }
        if let Some(clock) = &options.clock {
            wasi.wall_clock(clock.clone());
        }
        let mut store = Store::new(&self.engine, wasi.build_p1());
        let instance = self.linker.instantiate(&mut store, &self.module)?;
        if let Some(init) = instance.get_func(&mut store, "_initialize") {
            let init = init.typed::<(), ()>(&store)?;
            if let Err(trap) = init.call(&mut store, ()) {
                let text = String::from_utf8_lossy(&stderr.contents()).into_owned();
                bail!("_initialize trapped ({trap}); stderr: {text}");
            }
        }
        let memory = instance
            .get_memory(&mut store, "memory")
            .context("the module exports no memory")?;
        let filter = instance
            .get_typed_func::<(u32, u32, u32, u32, u32, u32), u32>(&mut store, &options.function)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("the module exports no filter {:?}", options.function))?;
        let heap = match exported_allocator(&instance, &mut store) {
            Some((malloc, free)) => Heap::Exported { malloc, free },
            None => {
                // Like Fluent Bit's runtime, a heap of its own in linear memory.
                let pages = u64::from(options.heap_size).div_ceil(65536);
                let base = memory.grow(&mut store, pages)? * 65536;
                Heap::Fixed {
                    base: u32::try_from(base)?,
                    size: options.heap_size,
                }
            }
        };
        Ok(FilterInstance {
            clock: options.clock.clone(),
            store,
            memory,
            filter,
            heap,
            stderr,
        })
    }
}

fn exported_allocator(
    instance: &Instance,
    store: &mut Store<WasiP1Ctx>,
) -> Option<(TypedFunc<u32, u32>, TypedFunc<u32, ()>)> {
    let malloc = instance
        .get_typed_func::<u32, u32>(&mut *store, "malloc")
        .ok()?;
    let free = instance
        .get_typed_func::<u32, ()>(&mut *store, "free")
        .ok()?;
    Some((malloc, free))
}

enum Heap {
    Exported {
        malloc: TypedFunc<u32, u32>,
        free: TypedFunc<u32, ()>,
    },
    Fixed {
        base: u32,
        size: u32,
    },
}

/// What the filter function returned for a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Returned {
    /// The NUL-terminated text it pointed to (empty: the record is dropped).
    pub text: String,
    /// It pointed at the record's own copy (a pass-through without a copy).
    pub is_record_pointer: bool,
}

impl Returned {
    /// Whether Fluent Bit would drop the record.
    pub fn is_dropped(&self) -> bool {
        self.text.is_empty()
    }
}

/// One filter instance with its store.
pub struct FilterInstance {
    clock: Option<ManualClock>,
    store: Store<WasiP1Ctx>,
    memory: Memory,
    filter: TypedFunc<(u32, u32, u32, u32, u32, u32), u32>,
    heap: Heap,
    stderr: MemoryOutputPipe,
}

impl FilterInstance {
    /// Calls the filter on one record as Fluent Bit does. An error is a trap (Fluent Bit
    /// drops that record), or a returned pointer outside memory.
    pub fn call(&mut self, tag: &str, time: (u32, u32), record: &[u8]) -> Result<Returned> {
        let tag_ptr = self.copy_in(tag.as_bytes(), 0)?;
        let tag_end = tag_ptr + tag.len() as u32 + 1;
        let record_ptr = self.copy_in(record, tag_end)?;
        self.invoke(
            (tag_ptr, tag.len() as u32),
            time,
            (record_ptr, record.len() as u32),
        )
    }

    /// The time Fluent Bit's live inputs stamp a record with: the wall clock the module
    /// sees (the manual one, when the instance has it), as seconds and nanoseconds.
    pub fn live_time(&self) -> (u32, u32) {
        let now = match &self.clock {
            Some(clock) => clock.now(),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default(),
        };
        (now.as_secs() as u32, now.subsec_nanos())
    }

    /// Calls the filter with a null record pointer and `length`, as Fluent Bit does when
    /// its copy of the record into the module failed.
    pub fn call_with_null_record(&mut self, length: u32) -> Result<Returned> {
        let tag_ptr = self.copy_in(b"app", 0)?;
        self.invoke((tag_ptr, 3), (0, 0), (0, length))
    }

    /// What the module wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).into_owned()
    }

    /// Copies `bytes` and a NUL in; returns 0 when there is no room.
    fn copy_in(&mut self, bytes: &[u8], after: u32) -> Result<u32> {
        let needed = bytes.len() as u32 + 1;
        let ptr = match &self.heap {
            Heap::Exported { malloc, .. } => malloc.call(&mut self.store, needed)?,
            Heap::Fixed { base, size } => {
                let start = if after == 0 {
                    *base
                } else {
                    after.next_multiple_of(8)
                };
                if start + needed > base + size {
                    return Ok(0);
                }
                start
            }
        };
        if ptr != 0 {
            let data = self.memory.data_mut(&mut self.store);
            data[ptr as usize..][..bytes.len()].copy_from_slice(bytes);
            data[(ptr + needed - 1) as usize] = 0;
        }
        Ok(ptr)
    }

    fn invoke(
        &mut self,
        (tag_ptr, tag_len): (u32, u32),
        (sec, nsec): (u32, u32),
        (record_ptr, record_len): (u32, u32),
    ) -> Result<Returned> {
        let called = self.filter.call(
            &mut self.store,
            (tag_ptr, tag_len, sec, nsec, record_ptr, record_len),
        );
        let result = called.map_err(anyhow::Error::from).and_then(|ptr| {
            let data = self.memory.data(&self.store);
            let text = data
                .get(ptr as usize..)
                .and_then(|rest| rest.iter().position(|&b| b == 0).map(|n| &rest[..n]))
                .with_context(|| format!("returned pointer {ptr} is outside memory"))?;
            ensure!(ptr != 0, "returned a null pointer");
            Ok(Returned {
                text: String::from_utf8_lossy(text).into_owned(),
                is_record_pointer: ptr == record_ptr,
            })
        });
        // The host frees its copies after the call, whatever happened.
        if let Heap::Exported { free, .. } = &self.heap {
            for ptr in [tag_ptr, record_ptr] {
                if ptr != 0 {
                    free.call(&mut self.store, ptr)?;
                }
            }
        }
        result
    }
}
