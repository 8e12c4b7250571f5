//! The iocsieve engine for JavaScript hosts (Node.js, browsers), built with wasm-bindgen for
//! `wasm32-unknown-unknown`.
//!
//! Thin glue, like the component: one [`RawDetector`] keeps one [`Engine`]. Results cross
//! the boundary as JSON text in the shapes of `wit/iocsieve.wit` (camelCase names, a `type`
//! field for variants); the package's JavaScript wrapper (`js/package/core.js`) parses them
//! into plain objects, and its `index.d.ts` types them. One JSON string per call is much
//! cheaper than building objects field by field across the boundary.
//!
//! Build it with `./dev js` (cargo for `wasm32-unknown-unknown`, then `wasm-bindgen`).

use std::collections::BTreeMap;

use iocsieve_engine::{
    self as engine, Detector, Emit, Engine, FeedFormat, FeedInput, LoadError, LoadStats,
    MatchReport, Mode, Verdict,
};
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// A feed waiting for the next [`RawDetector::load`].
struct StagedFeed {
    name: String,
    format: FeedFormat,
    content: Vec<u8>,
}

/// The detector as wasm-bindgen exports it. Use the package's `Detector` class instead:
/// it wraps this one and parses its JSON.
#[wasm_bindgen]
pub struct RawDetector {
    engine: Option<Engine>,
    staged: Vec<StagedFeed>,
    /// Lines of a byte batch that were not UTF-8: passed through unchanged without the
    /// engine, and added to its counters as unreadable, as `iocsieve scan` does.
    not_utf8: u64,
}

impl Default for RawDetector {
    fn default() -> Self {
        RawDetector::new()
    }
}

#[wasm_bindgen]
impl RawDetector {
    /// A detector with nothing loaded: evaluating before a load uses the built-in feed.
    #[wasm_bindgen(constructor)]
    pub fn new() -> RawDetector {
        RawDetector {
            engine: None,
            staged: Vec::new(),
            not_utf8: 0,
        }
    }

    /// Adds a feed to the next load. `format` is `auto`, `threatfox-json`, `threatfox-csv`
    /// or `threatfox-api`.
    #[wasm_bindgen(js_name = stageFeed)]
    pub fn stage_feed(
        &mut self,
        name: String,
        format: &str,
        content: Vec<u8>,
    ) -> Result<(), JsValue> {
        let Some(format) = feed_format(format) else {
            // A load never follows a failed stage: drop what was staged with it.
            self.staged.clear();
            return Err(load_error(&LoadError {
                message: format!(
                    "unknown feed format {format:?}; use auto, threatfox-json, threatfox-csv or \
                     threatfox-api"
                ),
                input: name,
                line: None,
            }));
        };
        self.staged.push(StagedFeed {
            name,
            format,
            content,
        });
        Ok(())
    }

    /// Builds the indicator set from the staged feeds (the built-in Mirai feed when none
    /// was staged) and `settings` (TOML or JSON; empty for the defaults), and swaps it in.
    /// Returns the load statistics as JSON. On error the previous set stays in force and
    /// the thrown `Error` names the bad input (`input`, `line` properties too).
    pub fn load(&mut self, settings: &str) -> Result<String, JsValue> {
        let staged = std::mem::take(&mut self.staged);
        let inputs: Vec<FeedInput<'_>> = if staged.is_empty() {
            vec![default_feed()]
        } else {
            staged
                .iter()
                .map(|f| FeedInput {
                    name: &f.name,
                    format: f.format,
                    content: &f.content,
                })
                .collect()
        };
        let (detector, stats) = Detector::build(&inputs, settings).map_err(|e| load_error(&e))?;
        match &mut self.engine {
            Some(engine) => {
                engine.replace(detector);
            }
            None => self.engine = Some(Engine::new(detector)),
        }
        Ok(to_json(&StatsOut::from(&stats)))
    }

    /// Evaluates one record (a JSON object as text) at `now` (seconds since the Unix epoch).
    /// Returns the outcome as JSON.
    pub fn evaluate(&mut self, record: &str, now: f64) -> String {
        let engine = self.engine();
        let outcome = engine.evaluate(record.as_bytes(), seconds(now));
        to_json(&OutcomeOut::new(outcome.verdict, outcome.emit))
    }

    /// Evaluates newline-delimited records; returns a JSON array with one outcome per line.
    /// A line that is not UTF-8 passes through unchanged as unreadable.
    #[wasm_bindgen(js_name = evaluateBatch)]
    pub fn evaluate_batch(&mut self, records: &[u8], now: f64) -> String {
        let now = seconds(now);
        let mut out = String::from("[");
        for (i, line) in lines(records).enumerate() {
            if i > 0 {
                out.push(',');
            }
            let json = match std::str::from_utf8(line) {
                Ok(_) => {
                    let outcome = self.engine().evaluate(line, now);
                    to_json(&OutcomeOut::new(outcome.verdict, outcome.emit))
                }
                Err(_) => {
                    self.not_utf8 += 1;
                    to_json(&OutcomeOut {
                        verdict: VerdictOut::Unreadable {
                            error: "not UTF-8".into(),
                        },
                        emit: EmitOut::Unchanged,
                    })
                }
            };
            out.push_str(&json);
        }
        out.push(']');
        out
    }

    /// Evaluates newline-delimited records and returns what to send on, as `iocsieve scan`
    /// writes it: each record unchanged or enriched, followed by a newline; dropped records
    /// left out.
    pub fn filter(&mut self, records: &[u8], now: f64) -> Vec<u8> {
        let now = seconds(now);
        let mut out = Vec::with_capacity(records.len() + records.len() / 4);
        for line in lines(records) {
            if std::str::from_utf8(line).is_err() {
                self.not_utf8 += 1;
                out.extend_from_slice(line);
                out.push(b'\n');
                continue;
            }
            match self.engine().evaluate(line, now).emit {
                Emit::Unchanged => out.extend_from_slice(line),
                Emit::Enriched(bytes) => out.extend_from_slice(bytes),
                Emit::Dropped => continue,
            }
            out.push(b'\n');
        }
        out
    }

    /// The counters since the detector was created, as JSON.
    pub fn counters(&self) -> String {
        let mut c = self
            .engine
            .as_ref()
            .map(Engine::counters)
            .unwrap_or_default();
        c.records_in += self.not_utf8;
        c.records_out += self.not_utf8;
        c.unreadable += self.not_utf8;
        to_json(&CountersOut::from(c))
    }

    /// The counters as the one summary line `iocsieve scan` prints.
    #[wasm_bindgen(js_name = countersLine)]
    pub fn counters_line(&self) -> String {
        let mut c = self
            .engine
            .as_ref()
            .map(Engine::counters)
            .unwrap_or_default();
        c.records_in += self.not_utf8;
        c.records_out += self.not_utf8;
        c.unreadable += self.not_utf8;
        c.to_string()
    }
}

/// The built-in feed (the ThreatFox Mirai indicators) as ThreatFox JSON export text.
#[wasm_bindgen(js_name = defaultFeed)]
pub fn default_feed_text() -> String {
    String::from_utf8_lossy(engine::DEFAULT_FEED).into_owned()
}

/// The name hits from the built-in feed report as their feed.
#[wasm_bindgen(js_name = defaultFeedName)]
pub fn default_feed_name() -> String {
    engine::DEFAULT_FEED_NAME.to_string()
}

/// The built-in profiles and exclusions, as a settings file would write them.
#[wasm_bindgen(js_name = builtinSettings)]
pub fn builtin_settings() -> String {
    include_str!("../../engine/src/defaults.toml").to_string()
}

/// `settings` (TOML or JSON) with `mode` (`tag` or `hits-only`) set, as `iocsieve scan
/// --only-hits` does. Throws an `Error` naming the settings when they do not parse.
#[wasm_bindgen(js_name = settingsWithMode)]
pub fn settings_with_mode(settings: &str, mode: &str) -> Result<String, JsValue> {
    let mode = match mode {
        "tag" => Mode::Tag,
        "hits-only" => Mode::HitsOnly,
        other => {
            return Err(js_sys::Error::new(&format!(
                "unknown mode {other:?}; use tag or hits-only"
            ))
            .into());
        }
    };
    engine::settings::with_mode(settings, mode).map_err(|e| {
        load_error(&LoadError {
            input: "settings".into(),
            line: e.line,
            message: e.message,
        })
    })
}

impl RawDetector {
    /// The engine, with the built-in feed and default settings if nothing was loaded yet.
    fn engine(&mut self) -> &mut Engine {
        self.engine.get_or_insert_with(|| {
            let (detector, _) =
                Detector::build(&[default_feed()], "").expect("the built-in feed loads");
            Engine::new(detector)
        })
    }
}

/// The records of a batch: one per line; a final newline ends the last record rather than
/// starting an empty one.
fn lines(records: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = records.strip_suffix(b"\n").unwrap_or(records);
    let empty = records.is_empty();
    body.split(|&b| b == b'\n')
        .take(if empty { 0 } else { usize::MAX })
}

fn default_feed() -> FeedInput<'static> {
    FeedInput {
        name: engine::DEFAULT_FEED_NAME,
        format: FeedFormat::ThreatfoxJson,
        content: engine::DEFAULT_FEED,
    }
}

/// JavaScript numbers are doubles; the engine counts whole seconds.
fn seconds(now: f64) -> i64 {
    if now.is_finite() {
        now.floor() as i64
    } else {
        0
    }
}

fn feed_format(name: &str) -> Option<FeedFormat> {
    Some(match name {
        "" | "auto" => FeedFormat::Auto,
        "threatfox-json" => FeedFormat::ThreatfoxJson,
        "threatfox-csv" => FeedFormat::ThreatfoxCsv,
        "threatfox-api" => FeedFormat::ThreatfoxApi,
        _ => return None,
    })
}

/// A JavaScript `Error` whose message names the bad input, with `input` and `line`
/// properties for callers that point at it.
fn load_error(e: &LoadError) -> JsValue {
    let error = js_sys::Error::new(&e.to_string());
    error.set_name("IocsieveLoadError");
    let _ = js_sys::Reflect::set(&error, &"input".into(), &e.input.as_str().into());
    let line = e.line.map_or(JsValue::NULL, JsValue::from);
    let _ = js_sys::Reflect::set(&error, &"line".into(), &line);
    error.into()
}

fn to_json(value: &impl Serialize) -> String {
    // Our own types of strings, numbers and maps with string keys always serialise.
    serde_json::to_string(value).expect("serialisable")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FeedStatsOut<'a> {
    name: &'a str,
    format: &'a str,
    entries: u64,
    loaded: &'a BTreeMap<String, u64>,
    skipped: &'a BTreeMap<String, u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatsOut<'a> {
    indicators: u64,
    feeds: Vec<FeedStatsOut<'a>>,
    exclusions: &'a [String],
    profiles: &'a [String],
}

impl<'a> From<&'a LoadStats> for StatsOut<'a> {
    fn from(s: &'a LoadStats) -> Self {
        StatsOut {
            indicators: s.indicators,
            feeds: s
                .feeds
                .iter()
                .map(|f| FeedStatsOut {
                    name: &f.name,
                    format: &f.format,
                    entries: f.entries,
                    loaded: &f.loaded,
                    skipped: &f.skipped,
                })
                .collect(),
            exclusions: &s.exclusions,
            profiles: &s.profiles,
        }
    }
}

/// `indicator-match` of the WIT contract.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MatchOut {
    kind: &'static str,
    indicator: String,
    field: String,
    role: String,
    observed: String,
    address_only: bool,
    feed: String,
    id: String,
    threat_type: String,
    malware: String,
    malware_printable: String,
    malware_alias: String,
    confidence: Option<u8>,
    first_seen: Option<String>,
    last_seen: Option<String>,
    tags: Vec<String>,
    reference: String,
}

impl From<MatchReport> for MatchOut {
    fn from(m: MatchReport) -> Self {
        MatchOut {
            kind: m.kind.name(),
            indicator: m.indicator,
            field: m.field,
            role: m.role,
            observed: m.observed,
            address_only: m.address_only,
            feed: m.feed,
            id: m.id,
            threat_type: m.threat_type,
            malware: m.malware,
            malware_printable: m.malware_printable,
            malware_alias: m.malware_alias,
            confidence: m.confidence,
            first_seen: m.first_seen.map(engine::timestamp::format_rfc3339),
            last_seen: m.last_seen.map(engine::timestamp::format_rfc3339),
            tags: m.tags,
            reference: m.reference,
        }
    }
}

/// `verdict` of the WIT contract.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum VerdictOut {
    Miss,
    Hit {
        matches: Vec<MatchOut>,
    },
    Suppressed {
        matches: Vec<MatchOut>,
        exclusion: String,
        reason: String,
    },
    Unreadable {
        error: String,
    },
}

/// `emit` of the WIT contract.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum EmitOut {
    Unchanged,
    Enriched { record: String },
    Dropped,
}

#[derive(Serialize)]
struct OutcomeOut {
    verdict: VerdictOut,
    emit: EmitOut,
}

impl OutcomeOut {
    fn new(verdict: Verdict, emit: Emit<'_>) -> Self {
        let verdict = match verdict {
            Verdict::Miss => VerdictOut::Miss,
            Verdict::Hit(matches) => VerdictOut::Hit {
                matches: matches.into_iter().map(MatchOut::from).collect(),
            },
            Verdict::Suppressed {
                matches,
                exclusion,
                reason,
            } => VerdictOut::Suppressed {
                matches: matches.into_iter().map(MatchOut::from).collect(),
                exclusion,
                reason,
            },
            Verdict::Unreadable(error) => VerdictOut::Unreadable {
                error: error.to_string(),
            },
        };
        let emit = match emit {
            Emit::Unchanged => EmitOut::Unchanged,
            Emit::Dropped => EmitOut::Dropped,
            // The engine writes only valid UTF-8 around a record that was valid UTF-8.
            Emit::Enriched(bytes) => EmitOut::Enriched {
                record: String::from_utf8_lossy(bytes).into_owned(),
            },
        };
        OutcomeOut { verdict, emit }
    }
}

/// `counters` of the WIT contract, with the named counts as objects.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CountersOut {
    records_in: u64,
    records_out: u64,
    unreadable: u64,
    without_profile: u64,
    hits: u64,
    suppressed: u64,
    address_only_hits: u64,
    dropped_misses: u64,
    dropped_suppressed: u64,
    output_key_collisions: u64,
    hits_by_kind: BTreeMap<String, u64>,
    suppressions_by_exclusion: BTreeMap<String, u64>,
    records_by_profile: BTreeMap<String, u64>,
}

impl From<engine::Counters> for CountersOut {
    fn from(c: engine::Counters) -> Self {
        CountersOut {
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
            hits_by_kind: c.hits_by_kind,
            suppressions_by_exclusion: c.suppressions_by_exclusion,
            records_by_profile: c.records_by_profile,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_lines_end_at_newlines() {
        let split = |s: &[u8]| lines(s).map(|l| l.to_vec()).collect::<Vec<_>>();
        assert!(split(b"").is_empty());
        assert_eq!(split(b"a\nb\n"), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(
            split(b"a\n\nb"),
            vec![b"a".to_vec(), b"".to_vec(), b"b".to_vec()]
        );
        assert_eq!(split(b"\n"), vec![b"".to_vec()]);
    }

    #[test]
    fn filter_tags_hits_and_passes_the_rest_unchanged() {
        let mut d = RawDetector::new();
        let hit = br#"{"RemoteIP":"194.48.251.24","RemotePort":80}"#;
        let miss = br#"{"RemoteIP":"10.0.0.1","RemotePort":80}"#;
        let mut input = hit.to_vec();
        input.push(b'\n');
        input.extend_from_slice(miss);
        input.extend_from_slice(b"\n\xff\xfe\n");
        let out = d.filter(&input, 1_790_000_000.0);
        let text = String::from_utf8_lossy(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].contains("\"iocsieve\""), "{}", lines[0]);
        assert_eq!(lines[1].as_bytes(), miss);
        let c: serde_json::Value = serde_json::from_str(&d.counters()).unwrap();
        assert_eq!(c["recordsIn"], 3);
        assert_eq!(c["hits"], 1);
        assert_eq!(c["unreadable"], 1);
    }

    #[test]
    fn outcomes_have_the_contract_shape() {
        let mut d = RawDetector::new();
        let json = d.evaluate_batch(
            b"{\"RemoteIP\":\"194.48.251.24\",\"RemotePort\":80}\n[]\n",
            1_790_000_000.0,
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v[0]["verdict"]["type"], "hit");
        assert_eq!(
            v[0]["verdict"]["matches"][0]["indicator"],
            "194.48.251.24:80"
        );
        assert_eq!(v[0]["verdict"]["matches"][0]["malwarePrintable"], "Mirai");
        assert_eq!(v[0]["emit"]["type"], "enriched");
        assert_eq!(v[1]["verdict"]["type"], "unreadable");
        assert_eq!(v[1]["emit"]["type"], "unchanged");
    }
}
