//! The iocsieve engine as a WebAssembly component implementing `wit/iocsieve.wit`.
//!
//! Thin glue: the component keeps one [`Engine`] and converts between the engine's types
//! and the contract's. Build it with
//! `cargo build -p iocsieve-component --target wasm32-wasip2 --profile wasm-release`.

use std::cell::RefCell;

use iocsieve_engine::{self as engine, Detector, Engine, FeedFormat, FeedInput};

wit_bindgen::generate!({
    path: "../../wit",
    world: "iocsieve",
});

use exports::iocsieve::detector::detector as wit;

thread_local! {
    /// The engine: created by the first successful load, replaced whole by later ones.
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

struct Component;

impl wit::Guest for Component {
    fn load(feeds: Vec<wit::Feed>, settings: String) -> Result<wit::LoadStats, wit::LoadError> {
        let inputs: Vec<FeedInput<'_>> = feeds
            .iter()
            .map(|f| FeedInput {
                name: &f.name,
                format: feed_format(f.format),
                content: &f.content,
            })
            .collect();
        let (detector, stats) =
            Detector::build(&inputs, &settings).map_err(|e| wit::LoadError {
                input: e.input,
                line: e.line,
                message: e.message,
            })?;
        ENGINE.with_borrow_mut(|slot| match slot {
            Some(engine) => {
                engine.replace(detector);
            }
            None => *slot = Some(Engine::new(detector)),
        });
        Ok(wit::LoadStats {
            indicators: stats.indicators,
            feeds: stats
                .feeds
                .into_iter()
                .map(|f| wit::FeedStats {
                    name: f.name,
                    format: f.format,
                    entries: f.entries,
                    loaded: named_counts(f.loaded),
                    skipped: named_counts(f.skipped),
                    skipped_examples: f
                        .examples
                        .into_iter()
                        .map(|(name, values)| wit::NamedValues { name, values })
                        .collect(),
                })
                .collect(),
            exclusions: stats.exclusions,
            profiles: stats.profiles,
        })
    }

    fn evaluate(record: String, now: i64) -> wit::Outcome {
        with_engine(|engine| outcome(engine, &record, now))
    }

    fn evaluate_batch(records: String, now: i64) -> wit::BatchOutcome {
        let body = records.strip_suffix('\n').unwrap_or(&records);
        with_engine(|engine| {
            let misses = match engine.detector().mode() {
                engine::Mode::Tag => wit::Emit::Unchanged,
                engine::Mode::HitsOnly => wit::Emit::Dropped,
            };
            let mut listed = Vec::new();
            if records.is_empty() {
                return wit::BatchOutcome {
                    lines: 0,
                    misses,
                    listed,
                };
            }
            let mut start = 0;
            // memchr searches with wasm SIMD where the runtime has it; `str::split` would not.
            let ends = memchr::memchr_iter(b'\n', body.as_bytes()).chain([body.len()]);
            let mut lines = 0;
            for (line, end) in ends.enumerate() {
                let result = engine.evaluate(&body.as_bytes()[start..end], now);
                start = end + 1;
                lines = line as u32 + 1;
                if matches!(result.verdict, engine::Verdict::Miss) {
                    continue;
                }
                listed.push(wit::LineOutcome {
                    line: line as u32,
                    outcome: convert(result),
                });
            }
            wit::BatchOutcome {
                lines,
                misses,
                listed,
            }
        })
    }

    fn read_counters() -> wit::Counters {
        ENGINE.with_borrow(|slot| {
            let c = slot.as_ref().map(Engine::counters).unwrap_or_default();
            wit::Counters {
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
                hits_by_kind: named_counts(c.hits_by_kind),
                suppressions_by_exclusion: named_counts(c.suppressions_by_exclusion),
                records_by_profile: named_counts(c.records_by_profile),
            }
        })
    }
}

/// Runs `f` on the engine, loading the defaults first if the host never called `load`.
fn with_engine<T>(f: impl FnOnce(&mut Engine) -> T) -> T {
    ENGINE.with_borrow_mut(|slot| {
        let engine = slot.get_or_insert_with(|| {
            let feed = FeedInput {
                name: engine::DEFAULT_FEED_NAME,
                format: FeedFormat::ThreatfoxJson,
                content: engine::DEFAULT_FEED,
            };
            let (detector, _) = Detector::build(&[feed], "").expect("the built-in feed loads");
            Engine::new(detector)
        });
        f(engine)
    })
}

fn outcome(engine: &mut Engine, record: &str, now: i64) -> wit::Outcome {
    convert(engine.evaluate(record.as_bytes(), now))
}

fn convert(result: engine::Outcome<'_>) -> wit::Outcome {
    let emit = match result.emit {
        engine::Emit::Unchanged => wit::Emit::Unchanged,
        engine::Emit::Dropped => wit::Emit::Dropped,
        // The engine writes only valid UTF-8 around a record that was valid UTF-8.
        engine::Emit::Enriched(bytes) => {
            wit::Emit::Enriched(String::from_utf8_lossy(bytes).into_owned())
        }
    };
    let verdict = match result.verdict {
        engine::Verdict::Miss => wit::Verdict::Miss,
        engine::Verdict::Hit(matches) => {
            wit::Verdict::Hit(matches.into_iter().map(report).collect())
        }
        engine::Verdict::Suppressed {
            matches,
            exclusion,
            reason,
        } => wit::Verdict::Suppressed(wit::SuppressedHit {
            matches: matches.into_iter().map(report).collect(),
            exclusion,
            reason,
        }),
        engine::Verdict::Unreadable(error) => wit::Verdict::Unreadable(error.to_string()),
    };
    wit::Outcome { verdict, emit }
}

fn report(m: engine::MatchReport) -> wit::IndicatorMatch {
    wit::IndicatorMatch {
        kind: m.kind.name().to_string(),
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

fn feed_format(format: wit::FeedFormat) -> FeedFormat {
    use engine::feed::ListKind;
    use wit::FeedFormat as W;
    match format {
        W::Auto => FeedFormat::Auto,
        W::ThreatfoxJson => FeedFormat::ThreatfoxJson,
        W::ThreatfoxCsv => FeedFormat::ThreatfoxCsv,
        W::ThreatfoxApi => FeedFormat::ThreatfoxApi,
        W::UrlhausCsv => FeedFormat::UrlhausCsv,
        W::UrlhausJson => FeedFormat::UrlhausJson,
        W::FeodoCsv => FeedFormat::FeodoCsv,
        W::FeodoJson => FeedFormat::FeodoJson,
        W::Misp => FeedFormat::Misp,
        W::Stix => FeedFormat::Stix,
        W::ZeekIntel => FeedFormat::ZeekIntel,
        W::ListIp => FeedFormat::List(ListKind::Ip),
        W::ListIpPort => FeedFormat::List(ListKind::IpPort),
        W::ListCidr => FeedFormat::List(ListKind::Cidr),
        W::ListDomain => FeedFormat::List(ListKind::Domain),
        W::ListUrl => FeedFormat::List(ListKind::Url),
        W::ListMd5 => FeedFormat::List(ListKind::Md5),
        W::ListSha1 => FeedFormat::List(ListKind::Sha1),
        W::ListSha256 => FeedFormat::List(ListKind::Sha256),
    }
}

fn named_counts(map: std::collections::BTreeMap<String, u64>) -> Vec<wit::NamedCount> {
    map.into_iter()
        .map(|(name, count)| wit::NamedCount { name, count })
        .collect()
}

export!(Component);
