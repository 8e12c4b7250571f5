//! The iocsieve engine: matches log records against threat indicators at the edge.
//!
//! A [`Detector`] is built once from feeds ([`FeedInput`]) and a settings file
//! ([`SettingsConfig`]): indicators are normalised at load and stored by how they are
//! matched (one hash index per kind), exclusion rules and field profiles are compiled. An
//! [`Engine`] then evaluates records one at a time: it reads only the fields its profiles
//! and exclusions name, without building a JSON tree, and returns a [`Verdict`] with what
//! to [`Emit`]: the record unchanged, the record with enrichment fields, or nothing.
//!
//! The engine is plain Rust with no wasm dependency: the WebAssembly component, the Fluent
//! Bit module and the native benchmarks all wrap this crate. It reads no clock; callers pass
//! the current time.
//!
//! ```
//! use iocsieve_engine::{Detector, Emit, Engine, FeedFormat, FeedInput, Verdict};
//!
//! let feed = br#"{"1": [{"ioc_value": "194.48.251.24:80", "ioc_type": "ip:port",
//!                        "threat_type": "botnet_cc", "malware_printable": "Mirai"}]}"#;
//! let input = FeedInput { name: "threatfox", format: FeedFormat::Auto, content: feed };
//! let (detector, stats) = Detector::build(&[input], "").unwrap();
//! assert_eq!(stats.indicators, 1);
//!
//! let mut engine = Engine::new(detector);
//! let record = br#"{"RemoteIP":"194.48.251.24","RemotePort":80}"#;
//! let outcome = engine.evaluate(record, 1_790_000_000);
//! assert!(matches!(outcome.verdict, Verdict::Hit(_)));
//! assert!(matches!(outcome.emit, Emit::Enriched(_)));
//! ```

pub mod cef;
mod detector;
mod engine;
pub mod exclusion;
pub mod feed;
pub mod indicator;
pub mod logtext;
pub mod normalize;
mod output;
pub mod record;
pub mod rule;
pub mod settings;
mod textrecord;
pub mod timestamp;

pub use detector::{DEFAULT_OUTPUT_KEY, Detector, LoadError, LoadStats, Profile};
pub use engine::{Counters, Emit, Engine, MatchReport, Outcome, Verdict, output_key};
pub use feed::{FeedFormat, FeedInput, FeedStats};
pub use indicator::Kind;
pub use output::FLAT_FIELD_NAMES;
pub use settings::{Mode, SettingsConfig};

/// The built-in default feed: the two indicators of the ThreatFox Mirai hunting rule
/// (`194.48.251.24:80`, botnet_cc, confidence 75; a SHA-256 payload, confidence 80), as a
/// ThreatFox JSON export.
pub const DEFAULT_FEED: &[u8] = include_bytes!("default-feed.json");

/// The name hits from the built-in default feed report.
pub const DEFAULT_FEED_NAME: &str = "builtin:threatfox-mirai";
