//! The Fluent Bit module, called the way Fluent Bit's `wasm` filter calls it: the same
//! verdicts and output as the component, records in equal records out, and the edge cases
//! Fluent Bit's calling convention brings (null records, large and broken records, reloads).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{NOW, loaded};
use iocsieve_host::cases::{Expected, load_case, load_cases, shared_dir};
use iocsieve_host::component::{Emit, Execution};
use iocsieve_host::fluent_bit::{
    FilterInstance, FilterModule, FilterOptions, ManualClock, Returned, locate_module,
};

/// The heap size the shipped configs set (`wasm_heap_size 256K`).
const SHIPPED_HEAP: u32 = 256 * 1024;

fn module() -> &'static FilterModule {
    static MODULE: OnceLock<FilterModule> = OnceLock::new();
    MODULE.get_or_init(|| {
        let path = locate_module().expect("the module is built (run ./dev test)");
        FilterModule::from_file(&path, Execution::Compiled).expect("the module compiles")
    })
}

/// A fresh iocsieve directory named `name` with these files.
fn stage(name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("fluent-bit")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, content) in files {
        std::fs::write(dir.join(file), content).unwrap();
    }
    dir
}

fn seed_feed() -> Vec<u8> {
    std::fs::read(shared_dir().join("cases/seed-mirai/feed-threatfox.json")).unwrap()
}

/// Starts the filter on `dir` with the clock at `NOW`.
fn start(dir: &Path) -> (FilterInstance, ManualClock) {
    let clock = ManualClock::new(NOW as u64);
    let options = FilterOptions {
        clock: Some(clock.clone()),
        ..FilterOptions::iocsieve(dir, SHIPPED_HEAP)
    };
    let instance = module().start(&options).expect("the filter starts");
    (instance, clock)
}

/// Calls the filter and checks what Fluent Bit requires of what the module wrote: an empty
/// string or one JSON object. (The record's own pointer passes Fluent Bit's text back.)
fn call(instance: &mut FilterInstance, record: &str) -> Returned {
    let time = instance.live_time();
    let returned = instance
        .call("app", time, record.as_bytes())
        .expect("no trap");
    if !returned.is_dropped() && !returned.is_record_pointer {
        let value: serde_json::Value = serde_json::from_str(&returned.text)
            .unwrap_or_else(|e| panic!("returned invalid JSON ({e}): {}", returned.text));
        assert!(
            value.is_object(),
            "returned a non-object: {}",
            returned.text
        );
    }
    returned
}

/// The counters before the next record: the summary line that the next call prints once the
/// clock is past the summary interval.
fn counters(instance: &mut FilterInstance, clock: &ManualClock) -> BTreeMap<String, u64> {
    clock.advance(3600);
    call(instance, "{}");
    let stderr = instance.stderr();
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("[iocsieve] records_in="))
        .unwrap_or_else(|| panic!("no summary line in: {stderr}"));
    line.split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

fn verdict_of(returned: &Returned) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(&returned.text).ok()?;
    value["iocsieve"]["Verdict"].as_str().map(str::to_string)
}

#[test]
fn every_case_gives_the_components_verdicts_and_output() {
    let mut checked = 0;
    for case in load_cases().expect("the shared cases read") {
        let mut files: Vec<(&str, &[u8])> = case
            .feeds
            .iter()
            .map(|(name, content)| (name.as_str(), content.as_slice()))
            .collect();
        assert!(files.iter().all(|(name, _)| name.starts_with("feed")));
        files.push(("iocsieve.toml", case.settings.as_bytes()));
        let dir = stage(&format!("case-{}", case.name), &files);
        let (mut filter, _) = start(&dir);
        let mut component = loaded(&case.feeds, &case.settings);
        for log in &case.logs {
            for (n, (record, expected)) in log.records.iter().zip(&log.expected).enumerate() {
                let at = format!("{} {} line {}", case.name, log.file, n + 1);
                let returned = call(&mut filter, record);
                match component.evaluate(record, NOW).unwrap().emit {
                    Emit::Unchanged => {
                        assert!(returned.is_record_pointer, "{at}: not passed as is");
                        assert_eq!(&returned.text, record, "{at}");
                    }
                    Emit::Enriched(text) => assert_eq!(returned.text, text, "{at}"),
                    Emit::Dropped => assert!(returned.is_dropped(), "{at}"),
                }
                let verdict = verdict_of(&returned);
                match expected {
                    Expected::Hit => assert_eq!(verdict.as_deref(), Some("hit"), "{at}"),
                    Expected::Excluded => {
                        assert_eq!(verdict.as_deref(), Some("suppressed"), "{at}")
                    }
                    Expected::Miss => assert_eq!(verdict, None, "{at}"),
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 23, "only {checked} records checked");
}

#[test]
fn hits_only_passes_hits_and_drops_the_rest() {
    let case = load_case(&shared_dir().join("cases/seed-mirai")).unwrap();
    let settings = "mode = \"hits-only\"\n";
    let dir = stage(
        "hits-only",
        &[
            ("feed-seed.json", &seed_feed()),
            ("iocsieve.toml", settings.as_bytes()),
        ],
    );
    let (mut filter, clock) = start(&dir);
    let (mut hits, mut records) = (0, 0);
    for log in &case.logs {
        for (record, expected) in log.records.iter().zip(&log.expected) {
            let returned = call(&mut filter, record);
            records += 1;
            if *expected == Expected::Hit {
                hits += 1;
                assert_eq!(verdict_of(&returned).as_deref(), Some("hit"));
            } else {
                assert!(returned.is_dropped(), "passed {record}");
            }
        }
    }
    let c = counters(&mut filter, &clock);
    assert_eq!(c["records_in"], records);
    assert_eq!(c["records_out"], hits);
}

/// JSON-lines logs of ../shared/realdata: every record comes out, as the component says.
#[test]
fn real_logs_in_tag_mode_give_records_in_equal_records_out() {
    let logs = shared_dir().join("realdata/logs");
    let feed =
        std::fs::read(shared_dir().join("realdata/feeds/threatfox/threatfox_export_recent.json"))
            .unwrap();
    let feeds = vec![
        ("feed-seed.json".to_string(), seed_feed()),
        ("feed-threatfox.json".to_string(), feed),
    ];
    let mut files: Vec<(&str, &[u8])> = feeds
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_slice()))
        .collect();
    files.push(("iocsieve.toml", b""));
    let dir = stage("real-logs", &files);
    let (mut filter, clock) = start(&dir);
    let mut component = loaded(&feeds, "");
    let mut records = 0u64;
    for file in [
        "sysmon/sysmon_eid1_3_11_22_otrf.jsonl",
        "zeek_json/conn.log",
        "zeek_json/dns.log",
        "zeek_json/http.log",
        "zeek_json/files.log",
        "suricata/eve.json",
        "cowrie/cowrie.json.2018-05-24.jsonl",
    ] {
        let text = std::fs::read_to_string(logs.join(file)).unwrap();
        for (n, record) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let returned = call(&mut filter, record);
            assert!(!returned.is_dropped(), "{file} line {}: dropped", n + 1);
            match component.evaluate(record, NOW).unwrap().emit {
                Emit::Unchanged => assert!(returned.is_record_pointer, "{file} line {}", n + 1),
                Emit::Enriched(text) => assert_eq!(returned.text, text, "{file} line {}", n + 1),
                Emit::Dropped => panic!("the component dropped a record in tag mode"),
            }
            records += 1;
        }
    }
    assert!(records > 7000, "only {records} records");
    let c = counters(&mut filter, &clock);
    assert_eq!(c["records_in"], records);
    assert_eq!(c["records_out"], records);
    assert_eq!(c["unreadable"], 0);
}

fn seed_filter(name: &str) -> (FilterInstance, ManualClock) {
    let dir = stage(
        name,
        &[("feed-seed.json", &seed_feed()), ("iocsieve.toml", b"")],
    );
    start(&dir)
}

const HIT: &str = r#"{"DeviceName":"web-01","RemoteIP":"194.48.251.24","RemotePort":80}"#;

/// How many summary lines the module has printed.
fn summaries(instance: &FilterInstance) -> usize {
    instance
        .stderr()
        .lines()
        .filter(|l| l.starts_with("[iocsieve] records_in="))
        .count()
}

#[test]
fn a_clock_set_back_does_not_hold_off_the_summary() {
    let (mut filter, clock) = seed_filter("clock-back");
    // The module started with the clock a day ahead; it is then corrected.
    clock.advance(86_400);
    call(&mut filter, HIT);
    let before = summaries(&filter);
    clock.set(NOW as u64);
    call(&mut filter, HIT);
    clock.advance(3600);
    call(&mut filter, HIT);
    assert_eq!(summaries(&filter), before + 1);
}

#[test]
fn the_clock_is_read_for_each_new_record_time_and_at_least_every_1024_records() {
    let (mut filter, clock) = seed_filter("clock");
    let stamped = |filter: &mut FilterInstance, seconds: u64| {
        let record = HIT.as_bytes();
        filter.call("app", (seconds as u32, 0), record).unwrap();
    };
    stamped(&mut filter, NOW as u64);
    // The summary is due, but records keep the stamp the clock was last read for: the
    // reading is reused, for 1024 records at most.
    clock.advance(3600);
    let mut calls = 0;
    while summaries(&filter) == 0 && calls < 2000 {
        stamped(&mut filter, NOW as u64);
        calls += 1;
    }
    assert!(calls > 1 && calls <= 1024, "summary after {calls} calls");
    // A record of a new second reads the clock at once.
    clock.advance(3600);
    stamped(&mut filter, NOW as u64 + 7200);
    assert_eq!(summaries(&filter), 2);
}

/// A record of `size` bytes: `HIT`'s fields, padded by a long string field.
fn padded_record(size: usize, hit: bool) -> String {
    let head = if hit {
        r#"{"RemoteIP":"194.48.251.24","RemotePort":80,"pad":""#
    } else {
        r#"{"RemoteIP":"10.1.2.3","RemotePort":80,"pad":""#
    };
    let mut record = head.to_string();
    record.push_str(&"x".repeat(size - head.len() - 2));
    record.push_str("\"}");
    assert_eq!(record.len(), size);
    record
}

#[test]
fn a_64_kib_record_fits_the_shipped_heap() {
    let (mut filter, clock) = seed_filter("large");
    let miss = padded_record(64 * 1024, false);
    let returned = call(&mut filter, &miss);
    assert!(returned.is_record_pointer);
    assert_eq!(returned.text.len(), miss.len());
    let hit = padded_record(64 * 1024, true);
    assert_eq!(verdict_of(&call(&mut filter, &hit)).as_deref(), Some("hit"));
    assert_eq!(counters(&mut filter, &clock)["null_records"], 0);
}

#[test]
fn a_record_the_heap_cannot_hold_arrives_null_and_is_counted() {
    let dir = stage(
        "small-heap",
        &[("feed-seed.json", &seed_feed()), ("iocsieve.toml", b"")],
    );
    let clock = ManualClock::new(NOW as u64);
    let options = FilterOptions {
        clock: Some(clock.clone()),
        ..FilterOptions::iocsieve(&dir, 8192)
    };
    let mut filter = module().start(&options).unwrap();
    let returned = call(&mut filter, &padded_record(9000, true));
    assert!(returned.is_dropped(), "a null record cannot be returned");
    assert!(filter.stderr().contains("arrived as a null pointer"));
    assert_eq!(counters(&mut filter, &clock)["null_records"], 1);
}

#[test]
fn a_null_record_pointer_is_dropped_and_counted() {
    let (mut filter, clock) = seed_filter("null");
    let returned = filter.call_with_null_record(70_000).unwrap();
    assert!(returned.is_dropped());
    assert_eq!(verdict_of(&call(&mut filter, HIT)).as_deref(), Some("hit"));
    let c = counters(&mut filter, &clock);
    assert_eq!(c["null_records"], 1);
    assert_eq!(c["hits"], 1);
}

#[test]
fn what_is_not_a_json_object_comes_out_as_one_wrapped_under_log() {
    let (mut filter, clock) = seed_filter("unreadable");
    for text in [
        "{\"RemoteIP\":",
        "not json",
        "[1,2,{\"a\":3}]",
        "\"194.48.251.24\"",
    ] {
        let returned = call(&mut filter, text);
        assert!(!returned.is_record_pointer);
        let value: serde_json::Value = serde_json::from_str(&returned.text).unwrap();
        assert_eq!(value, serde_json::json!({ "log": text }));
    }
    let c = counters(&mut filter, &clock);
    // Broken JSON is unreadable; other text is read as a text line (and found clean).
    assert_eq!(c["unreadable"], 2);
    assert_eq!(c["text_lines"], 2);
    assert_eq!(c["wrapped_unreadable"], 4);
    assert_eq!(c["records_out"], c["records_in"]);
}

#[test]
fn an_empty_object_passes_as_is() {
    let (mut filter, _) = seed_filter("empty-object");
    let returned = call(&mut filter, "{}");
    assert!(returned.is_record_pointer);
    assert_eq!(returned.text, "{}");
}

#[test]
fn deeply_nested_json_passes_as_is_and_the_next_record_still_matches() {
    let (mut filter, _) = seed_filter("deep");
    for depth in [100, 600, 100_000] {
        let record = format!(
            "{{\"RemoteIP\":\"194.48.251.24\",\"RemotePort\":80,\"deep\":{}1{}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let returned = call(&mut filter, &record);
        if depth < 512 {
            assert_eq!(
                verdict_of(&returned).as_deref(),
                Some("hit"),
                "depth {depth}"
            );
        } else {
            assert!(returned.is_record_pointer, "depth {depth}");
        }
    }
    assert_eq!(verdict_of(&call(&mut filter, HIT)).as_deref(), Some("hit"));
}

#[test]
fn unicode_escapes_are_decoded_before_matching() {
    let (mut filter, _) = seed_filter("escapes");
    // Fluent Bit's json format escapes every non-ASCII character, surrogate pairs too.
    let record = r#"{"DeviceName":"caf\u00e9 \ud83d\ude00","RemoteIP":"194.48.251.\u0032\u0034","RemotePort":80}"#;
    let returned = call(&mut filter, record);
    assert_eq!(verdict_of(&returned).as_deref(), Some("hit"));
    let value: serde_json::Value = serde_json::from_str(&returned.text).unwrap();
    assert_eq!(value["DeviceName"], "café 😀");
}

fn refresh_dir(name: &str) -> PathBuf {
    stage(
        name,
        &[
            ("feed-seed.json", &seed_feed()),
            ("iocsieve.toml", b""),
            (
                "iocsieve-fluent-bit.toml",
                b"refresh_seconds = 60\nsummary_seconds = 600\n",
            ),
        ],
    )
}

/// A ThreatFox export holding one ip:port indicator.
fn feed_with(address: &str) -> Vec<u8> {
    format!(
        r#"{{"7": [{{"ioc_value": "{address}", "ioc_type": "ip:port", "threat_type": "botnet_cc",
           "malware": "elf.mirai", "malware_printable": "Mirai", "confidence_level": 90,
           "first_seen_utc": "2026-11-01 00:00:00"}}]}}"#
    )
    .into_bytes()
}

fn record_to(address: &str, port: u16) -> String {
    format!(r#"{{"RemoteIP":"{address}","RemotePort":{port}}}"#)
}

#[test]
fn a_changed_feed_is_reloaded_after_the_refresh_interval() {
    let dir = refresh_dir("reload");
    let (mut filter, clock) = start(&dir);
    let new_target = record_to("45.9.148.9", 443);
    assert_eq!(verdict_of(&call(&mut filter, &new_target)), None);

    std::fs::write(dir.join("feed-seed.json"), feed_with("45.9.148.9:443")).unwrap();
    clock.advance(30);
    assert_eq!(
        verdict_of(&call(&mut filter, &new_target)),
        None,
        "checked too early"
    );
    clock.advance(31);
    assert_eq!(
        verdict_of(&call(&mut filter, &new_target)).as_deref(),
        Some("hit")
    );
    assert_eq!(
        verdict_of(&call(&mut filter, HIT)),
        None,
        "the old set is gone"
    );
    assert!(filter.stderr().contains("[iocsieve] reloaded 1 indicators"));
    let c = counters(&mut filter, &clock);
    assert_eq!(
        (c["reloads"], c["reload_failures"], c["indicators"]),
        (1, 0, 1)
    );
}

#[test]
fn a_bad_feed_on_reload_keeps_the_last_good_set() {
    let dir = refresh_dir("reload-bad");
    let (mut filter, clock) = start(&dir);
    std::fs::write(dir.join("feed-seed.json"), b"{\"7\": [{\"ioc_value\": ").unwrap();
    clock.advance(61);
    assert_eq!(verdict_of(&call(&mut filter, HIT)).as_deref(), Some("hit"));
    assert!(
        filter
            .stderr()
            .contains("reload failed, keeping the 2 indicators in force")
    );
    assert!(filter.stderr().contains("feed-seed.json"));

    // A bad set is not retried until the files change again; a good one then loads.
    clock.advance(61);
    call(&mut filter, HIT);
    std::fs::write(dir.join("feed-seed.json"), feed_with("45.9.148.9:443")).unwrap();
    clock.advance(61);
    assert_eq!(
        verdict_of(&call(&mut filter, &record_to("45.9.148.9", 443))).as_deref(),
        Some("hit")
    );
    let c = counters(&mut filter, &clock);
    assert_eq!((c["reloads"], c["reload_failures"]), (1, 1));
}

#[test]
fn a_new_feed_file_is_picked_up_and_a_removed_one_dropped() {
    let dir = refresh_dir("reload-files");
    let (mut filter, clock) = start(&dir);
    std::fs::write(dir.join("feed-more.json"), feed_with("45.9.148.9:443")).unwrap();
    clock.advance(61);
    assert_eq!(
        verdict_of(&call(&mut filter, &record_to("45.9.148.9", 443))).as_deref(),
        Some("hit")
    );
    assert_eq!(verdict_of(&call(&mut filter, HIT)).as_deref(), Some("hit"));
    std::fs::remove_file(dir.join("feed-seed.json")).unwrap();
    clock.advance(61);
    assert_eq!(verdict_of(&call(&mut filter, HIT)), None);
}

fn start_error(name: &str, files: &[(&str, &[u8])]) -> String {
    let dir = stage(name, files);
    match module().start(&FilterOptions::iocsieve(&dir, SHIPPED_HEAP)) {
        Ok(_) => panic!("{name}: the filter started"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn start_up_fails_with_a_message_naming_what_is_missing_or_bad() {
    let feed = seed_feed();
    let e = start_error("no-settings", &[("feed-seed.json", &feed)]);
    assert!(e.contains("[iocsieve] fatal: no iocsieve.toml"), "{e}");
    let e = start_error("no-feed", &[("iocsieve.toml", b"")]);
    assert!(e.contains("no feed file in"), "{e}");
    let e = start_error(
        "bad-feed",
        &[("feed-bad.json", b"{\"1\": ["), ("iocsieve.toml", b"")],
    );
    assert!(e.contains("feed-bad.json"), "{e}");
    let e = start_error(
        "bad-settings",
        &[
            ("feed-seed.json", &feed),
            ("iocsieve.toml", b"mode = \"loud\""),
        ],
    );
    assert!(e.contains("iocsieve.toml") && e.contains("loud"), "{e}");
    let e = start_error(
        "bad-module-settings",
        &[
            ("feed-seed.json", &feed),
            ("iocsieve.toml", b""),
            ("iocsieve-fluent-bit.toml", b"refresh = 5"),
        ],
    );
    assert!(
        e.contains("iocsieve-fluent-bit.toml") && e.contains("refresh"),
        "{e}"
    );
}

#[test]
fn feeds_listed_in_the_module_settings_are_the_only_ones_read() {
    let dir = stage(
        "listed-feeds",
        &[
            ("seed.json", &seed_feed()),
            ("feed-other.json", &feed_with("45.9.148.9:443")),
            ("iocsieve.toml", b""),
            ("iocsieve-fluent-bit.toml", b"feeds = [\"seed.json\"]\n"),
        ],
    );
    let (mut filter, _) = start(&dir);
    assert_eq!(verdict_of(&call(&mut filter, HIT)).as_deref(), Some("hit"));
    assert_eq!(
        verdict_of(&call(&mut filter, &record_to("45.9.148.9", 443))),
        None
    );
}

#[test]
fn the_copy_through_module_returns_the_record_pointer() {
    let path = iocsieve_host::fluent_bit::locate_copy_through().unwrap();
    let module = FilterModule::from_file(&path, Execution::Compiled).unwrap();
    let options = FilterOptions {
        function: iocsieve_host::fluent_bit::COPY_THROUGH_FUNCTION.to_string(),
        accessible_paths: Vec::new(),
        heap_size: SHIPPED_HEAP,
        clock: None,
    };
    let mut filter = module.start(&options).unwrap();
    let returned = call(&mut filter, HIT);
    assert!(returned.is_record_pointer);
    assert_eq!(returned.text, HIT);
}
