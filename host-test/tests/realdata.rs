//! The real feeds and logs under ../shared/realdata: ThreatFox loads in all three formats
//! with its counts per kind, and the JSON logs pass through `iocsieve scan` record for record.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::loaded;
use iocsieve_host::cases::shared_dir;

fn realdata(path: &str) -> PathBuf {
    shared_dir().join("realdata").join(path)
}

/// The feed's own count of entries per `ioc_type`, read independently of the engine.
fn threatfox_types(path: &Path) -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut types = BTreeMap::new();
    let mut add = |t: &str| *types.entry(t.to_string()).or_default() += 1;
    if path.extension().is_some_and(|e| e == "csv") {
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            add(line.split("\", \"").nth(3).unwrap());
        }
    } else if path.extension().is_some_and(|e| e == "ndjson") {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            add(v["ioc_type"].as_str().unwrap());
        }
    } else {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        for entries in v.as_object().unwrap().values() {
            for e in entries.as_array().unwrap() {
                add(e["ioc_type"].as_str().unwrap());
            }
        }
    }
    types
}

#[test]
fn threatfox_loads_in_all_three_formats_with_counts_per_kind() {
    for (file, format) in [
        (
            "feeds/threatfox/threatfox_export_recent.json",
            "threatfox-json",
        ),
        (
            "feeds/threatfox/threatfox_recent_csv_head.csv",
            "threatfox-csv",
        ),
        (
            "feeds/threatfox/threatfox_api_get_iocs_records.ndjson",
            "threatfox-api",
        ),
    ] {
        let path = realdata(file);
        let types = threatfox_types(&path);
        let mut instance = loaded(&[], "");
        let feed = iocsieve_host::component::Feed {
            name: file.to_string(),
            format: iocsieve_host::component::FeedFormat::Auto,
            content: std::fs::read(&path).unwrap(),
        };
        let stats = instance
            .load(vec![feed], "")
            .unwrap()
            .expect("the real feed loads");
        let feed = &stats.feeds[0];
        assert_eq!(feed.format, format, "{file}");
        let total: u64 = types.values().sum();
        assert_eq!(feed.entries, total, "{file}: entries read");
        let loaded: BTreeMap<_, _> = feed
            .loaded
            .iter()
            .map(|c| (c.name.as_str(), c.count))
            .collect();
        for (feed_type, kind) in [
            ("ip:port", "ip:port"),
            ("md5_hash", "md5"),
            ("sha1_hash", "sha1"),
            ("sha256_hash", "sha256"),
        ] {
            let mut want = types.get(feed_type).copied().unwrap_or(0);
            if kind == "ip:port" {
                // Addresses the flooding guard refuses (a private range) are counted as
                // skipped with a `warninglist:` reason; realdata_feeds.rs pins them.
                want -= feed
                    .skipped
                    .iter()
                    .filter(|c| c.name.starts_with("warninglist:"))
                    .map(|c| c.count)
                    .sum::<u64>();
            }
            assert_eq!(
                loaded.get(kind).copied().unwrap_or(0),
                want,
                "{file}: {kind}"
            );
        }
        // Whatever was not loaded is counted with a reason: nothing vanishes.
        let skipped: u64 = feed.skipped.iter().map(|c| c.count).sum();
        assert_eq!(
            loaded.values().sum::<u64>() + skipped,
            total,
            "{file}: loaded + skipped"
        );
    }
}

fn iocsieve(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iocsieve"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("iocsieve runs");
    let input = stdin.unwrap_or_default().to_vec();
    let mut pipe = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut pipe, &input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    output
}

/// Reads `key=value` from the summary line on stderr.
fn summary_value(stderr: &str, key: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("records_in="))
        .expect("a summary line");
    let field = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{key}=")))
        .unwrap();
    field.parse().unwrap()
}

#[test]
fn real_json_logs_pass_through_record_for_record() {
    // (file, records, read as JSON objects)
    for (file, records, objects) in [
        ("logs/sysmon/sysmon_eid1_3_11_22_otrf.jsonl", 451, 451),
        ("logs/zeek_json/conn.log", 576, 576),
        ("logs/zeek_json/dns.log", 239, 239),
        ("logs/zeek_json/files.log", 936, 936),
        ("logs/zeek_json/http.log", 516, 516),
        ("logs/suricata/eve.json", 3327, 3327),
        ("logs/cowrie/cowrie.json.2018-05-24.jsonl", 1937, 1937),
        ("logs/sentinel/commonsecuritylog_fortigate.json", 2, 2),
    ] {
        let path = realdata(file);
        let out = iocsieve(
            &[
                "scan",
                "--now",
                "2026-12-04T00:00:00Z",
                path.to_str().unwrap(),
            ],
            None,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{file}: {stderr}");
        let lines: Vec<&[u8]> = out
            .stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), records, "{file}: records out");
        assert_eq!(
            summary_value(&stderr, "records_in"),
            records as u64,
            "{file}"
        );
        assert_eq!(
            summary_value(&stderr, "records_out"),
            records as u64,
            "{file}"
        );
        let read = summary_value(&stderr, "records_in") - summary_value(&stderr, "unreadable");
        assert_eq!(read, objects as u64, "{file}: records read as JSON objects");
        // A miss leaves the record byte for byte as it was.
        if !file.ends_with("fortigate.json") {
            let input = std::fs::read(&path).unwrap();
            let first_in = input.split(|&b| b == b'\n').next().unwrap();
            assert_eq!(lines[0], first_in, "{file}: first record unchanged");
        }
    }
}

#[test]
fn unreadable_lines_pass_through_unchanged_and_are_counted() {
    let mut input = Vec::new();
    input.extend_from_slice(b"{\"RemoteIP\":\"194.48.251.24\",\"RemotePort\":80}\n");
    input.extend_from_slice(b"not json at all\n");
    input.extend_from_slice(b"[1,2,3]\n");
    input.extend_from_slice(b"\n");
    input.extend_from_slice(b"{\"truncated\": \n");
    input.extend_from_slice(b"{\"bytes\":\"\xff\xfe\"}\n");
    input.extend_from_slice(b"{}\n");
    let out = iocsieve(&["scan", "-"], Some(&input));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&[u8]> = out.stdout.split(|&b| b == b'\n').collect();
    let inputs: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), inputs.len());
    assert!(
        lines[0].windows(8).any(|w| w == b"iocsieve"),
        "the first record is a hit"
    );
    for n in 1..inputs.len() {
        assert_eq!(lines[n], inputs[n], "line {} passes unchanged", n + 1);
    }
    assert_eq!(summary_value(&stderr, "records_in"), 7);
    assert_eq!(summary_value(&stderr, "records_out"), 7);
    // "not json at all" is a text line (no hit: unchanged), not unreadable.
    assert_eq!(summary_value(&stderr, "unreadable"), 4);
    assert_eq!(summary_value(&stderr, "text_lines"), 1);
    assert_eq!(summary_value(&stderr, "hits"), 1);
}

#[test]
fn hits_only_passes_hits_and_unreadable_records_only() {
    let seed = shared_dir().join("cases/seed-mirai/DeviceNetworkEvents.ndjson");
    let mut input = std::fs::read(&seed).unwrap();
    input.extend_from_slice(b"{garbage\n");
    let out = iocsieve(&["scan", "--only-hits", "-"], Some(&input));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    // Seed lines 1, 9, 10, 11 and 12 are hits; 3-7 are suppressed and dropped.
    assert_eq!(lines.len(), 6, "{stderr}");
    assert_eq!(lines[5], "{garbage");
    assert_eq!(summary_value(&stderr, "dropped_suppressed"), 5);
    assert_eq!(summary_value(&stderr, "dropped_misses"), 2);
}

#[test]
fn a_bad_feed_stops_the_tool_naming_the_file_and_line() {
    let dir = std::env::temp_dir().join(format!("iocsieve-bad-feed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let feed = dir.join("broken.json");
    std::fs::write(
        &feed,
        "{\n  \"1\": [{\"ioc_value\": \"1.2.3.4:80\",\n  \"ioc_type\": }]\n}\n",
    )
    .unwrap();
    let out = iocsieve(&["scan", "--feed", feed.to_str().unwrap(), "-"], Some(b""));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("broken.json, line 3:"), "{stderr}");

    let missing = dir.join("missing.json");
    let out = iocsieve(
        &["scan", "--feed", missing.to_str().unwrap(), "-"],
        Some(b""),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("cannot read feed") && stderr.contains("missing.json"),
        "{stderr}"
    );

    let settings = dir.join("settings.toml");
    std::fs::write(&settings, "mode = \"tag\"\n\n[[exclusions]]\nname = \"x\"\nreason = \"y\"\nwhen = { field = \"a\", equals = \"b\", has = \"c\" }\n").unwrap();
    let out = iocsieve(
        &["scan", "--settings", settings.to_str().unwrap(), "-"],
        Some(b""),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("settings.toml") && stderr.contains("exactly one operator"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_samples_show_hits_exclusions_and_misses() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples");
    let mut args = vec!["scan".to_string()];
    for table in [
        "CommonSecurityLog",
        "DeviceFileEvents",
        "DeviceNetworkEvents",
    ] {
        args.push(
            samples
                .join(format!("{table}.ndjson"))
                .to_string_lossy()
                .into_owned(),
        );
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = iocsieve(&args, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(summary_value(&stderr, "hits") > 0, "{stderr}");
    assert!(summary_value(&stderr, "suppressed") > 0, "{stderr}");
    assert!(
        summary_value(&stderr, "records_in")
            > summary_value(&stderr, "hits") + summary_value(&stderr, "suppressed")
    );
    // The CommonSecurityLog sample's own ThreatConfidence column is kept, not overwritten.
    let first: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["ThreatConfidence"], "low");
    assert_eq!(first["iocsieve"]["ThreatConfidence"], 75);
}
