//! The copy-through module: a Fluent Bit wasm filter that passes every record unchanged by
//! returning its own pointer. The baseline the iocsieve module's cost is measured against.
//! Build: `cargo build -p iocsieve-fluent-bit --example copy_through --target wasm32-wasip1
//! --profile wasm-release`; `function_name copy_through`.

/// Returns the record as it came (an empty string for a record the host could not copy).
#[unsafe(no_mangle)]
pub extern "C" fn copy_through(
    _tag: *const u8,
    _tag_len: u32,
    _time_sec: u32,
    _time_nsec: u32,
    record: *const u8,
    _record_len: u32,
) -> *const u8 {
    static EMPTY: u8 = 0;
    if record.is_null() { &EMPTY } else { record }
}
