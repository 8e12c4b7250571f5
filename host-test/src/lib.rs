//! The wasmtime host of iocsieve: runs the detector component for the `iocsieve` command,
//! the conformance tests and the benchmarks.
//!
//! - [`component`]: compiling and instantiating the component, with trap recovery.
//! - [`scan`]: the main job, log records in and tagged records out.
//! - [`bench`]: records per second natively and through the component.
//! - [`input`]: reading feeds, settings and records (NDJSON or a JSON array).
//! - [`cases`]: the shared cases with expected verdicts, for conformance tests.

pub mod bench;
pub mod cases;
pub mod component;
pub mod input;
pub mod scale;
pub mod scan;
