//! The wasmtime host of iocsieve: runs the detector component for the `iocsieve` command,
//! the conformance tests and the benchmarks.
//!
//! - [`component`]: compiling and instantiating the component, with trap recovery.
//! - [`scan`]: the main job, log records in and tagged records out.
//! - [`bench`]: records per second natively and through the component.
//! - [`serve`]: `iocsieve serve`, the sidecar that runs the component beside Vector.
//! - [`bench_fluent_bit`]: the Fluent Bit module's cost next to a copy-through module.
//! - [`input`]: reading feeds, settings and records (NDJSON or a JSON array).
//! - [`rule`]: the Sentinel hunting rule for a feed (native engine).
//! - [`cases`]: the shared cases with expected verdicts, for conformance tests.
//! - [`fluent_bit`]: the Fluent Bit module run the way Fluent Bit's `wasm` filter runs it.

pub mod bench;
pub mod bench_fluent_bit;
pub mod cases;
pub mod component;
pub mod fluent_bit;
pub mod input;
pub mod rule;
pub mod scale;
pub mod scan;
pub mod serve;
