//! Helpers shared by the integration tests.
#![allow(dead_code, reason = "each test binary uses its own subset")]

use std::sync::OnceLock;

use iocsieve_host::component::{
    ComponentRuntime, DetectorInstance, Execution, Feed, FeedFormat, locate_component,
};

/// The compiled component, shared by the tests of one binary.
pub fn runtime() -> &'static ComponentRuntime {
    static RUNTIME: OnceLock<ComponentRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let path = locate_component().expect("the component is built (run ./dev test)");
        ComponentRuntime::from_file(&path, Execution::Compiled).expect("the component compiles")
    })
}

/// An instance with `feeds` and `settings` loaded.
pub fn loaded(feeds: &[(String, Vec<u8>)], settings: &str) -> DetectorInstance {
    let mut instance = runtime().instantiate().expect("instantiates");
    let feeds = feeds
        .iter()
        .map(|(name, content)| Feed {
            name: name.clone(),
            format: FeedFormat::Auto,
            content: content.clone(),
        })
        .collect();
    instance
        .load(feeds, settings)
        .expect("no trap")
        .expect("the feeds and settings load");
    instance
}

/// 2026-12-04T00:00:00Z: the seed indicators carry no end of validity.
pub const NOW: i64 = 1_796_342_400;
