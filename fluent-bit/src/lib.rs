//! The iocsieve engine as a core WebAssembly module for Fluent Bit's `wasm` filter.
//!
//! Fluent Bit (4.2 or later, `event_format json`) calls [`iocsieve_filter`] once per record
//! with the record as NUL-terminated JSON text and copies back the NUL-terminated JSON it
//! returns. The module answers with:
//!
//! - the record's own pointer when it passes unchanged (a miss in `tag` mode): no copy;
//! - the record with the enrichment fields, written into one reused output buffer, on a hit;
//! - an empty string when the record is to be dropped (`hits-only` mode, no hit), or when
//!   the host could not copy the record in (a null pointer: nothing is left to return).
//!
//! It never returns anything but a JSON object or an empty string: Fluent Bit aborts when a
//! chunk mixes valid objects and invalid JSON.
//!
//! [`_initialize`] runs once at filter start-up and loads the indicators from the first
//! `accessible_paths` directory holding `iocsieve.toml` (see [`files`]); it traps on a
//! missing or bad file, so Fluent Bit refuses to start rather than run without indicators.
//! The filter call then checks the files' modification times at most every
//! `refresh_seconds` and swaps a new indicator set in whole, keeping the last good one when
//! the new files are bad; it prints a counters line to stderr every `summary_seconds`.
//!
//! All matching is the engine's ([`iocsieve_engine`]); this crate is the glue.

pub mod files;
pub mod filter;

use std::cell::UnsafeCell;

use filter::Filter;

/// The one filter of this instance.
///
/// Not a `RefCell`: a trap in the middle of a call (Fluent Bit drops that record and keeps
/// the instance) would leave a borrow flag set for good. Wasm here is single-threaded and
/// Fluent Bit never re-enters the module.
struct Global(UnsafeCell<Option<Filter>>);

// SAFETY: wasm32-wasip1 modules run on one thread; the host test calls one instance from
// one thread at a time.
unsafe impl Sync for Global {}

static FILTER: Global = Global(UnsafeCell::new(None));

/// The empty string: "drop this record".
static EMPTY: [u8; 1] = [0];

/// Fluent Bit's start-up hook for WASI reactors: runs the module's static constructors,
/// then loads the indicators. Traps (after a message on stderr) when they cannot be loaded.
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    #[cfg(target_family = "wasm")]
    {
        unsafe extern "C" {
            fn __wasm_call_ctors();
        }
        // SAFETY: the linker's constructor list, run once before any other code of ours.
        unsafe { __wasm_call_ctors() };
    }
    match Filter::start(filter::wall_clock_seconds()) {
        Ok(f) => {
            // SAFETY: see `Global`; nothing else holds a reference.
            unsafe { *FILTER.0.get() = Some(f) };
        }
        Err(message) => {
            eprintln!("[iocsieve] fatal: {message}");
            // A trap: Fluent Bit reports the failed instantiation and does not start.
            std::process::abort();
        }
    }
}

/// The filter function Fluent Bit calls for each record (`function_name iocsieve_filter`).
///
/// # Safety
///
/// `record` is null or points to `record_len` readable bytes followed by a NUL, as Fluent
/// Bit's json event format passes it. The tag and the time are not used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iocsieve_filter(
    _tag: *const u8,
    _tag_len: u32,
    time_sec: u32,
    _time_nsec: u32,
    record: *const u8,
    record_len: u32,
) -> *const u8 {
    // SAFETY: see `Global`.
    let Some(filter) = (unsafe { &mut *FILTER.0.get() }) else {
        // `_initialize` did not run (a host that skips it): pass records through untouched.
        return if record.is_null() {
            EMPTY.as_ptr()
        } else {
            record
        };
    };
    let now = filter.now(time_sec);
    filter.tick(now);
    if record.is_null() {
        filter.count_null_record(record_len);
        return EMPTY.as_ptr();
    }
    // SAFETY: the caller's contract.
    let bytes = unsafe { std::slice::from_raw_parts(record, record_len as usize) };
    match filter.evaluate(bytes, now) {
        filter::Answer::Unchanged => record,
        filter::Answer::Drop => EMPTY.as_ptr(),
        filter::Answer::Written(text) => text.as_ptr(),
    }
}
