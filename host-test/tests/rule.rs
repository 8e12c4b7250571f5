//! `iocsieve rule`: the default document is the engine's golden file, and a rule for one
//! family of a real ThreatFox export counts what the feed holds, counted here
//! independently from the JSON.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use iocsieve_host::cases::shared_dir;

fn iocsieve(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iocsieve"))
        .args(args)
        .output()
        .expect("iocsieve runs")
}

fn stdout_of(args: &[&str]) -> String {
    let out = iocsieve(args);
    assert!(
        out.status.success(),
        "iocsieve {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn threatfox_export() -> PathBuf {
    shared_dir().join("realdata/feeds/threatfox/threatfox_export_recent.json")
}

/// Entries of the export per `ioc_type` for which `keep` holds, read straight from the JSON.
fn feed_counts(path: &Path, keep: impl Fn(&serde_json::Value) -> bool) -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(path).expect("the export is readable");
    let export: BTreeMap<String, Vec<serde_json::Value>> =
        serde_json::from_str(&text).expect("the export is JSON");
    let mut counts = BTreeMap::new();
    for entry in export.values().flatten() {
        if keep(entry) {
            let ioc_type = entry["ioc_type"].as_str().expect("ioc_type").to_string();
            *counts.entry(ioc_type).or_default() += 1;
        }
    }
    counts
}

fn is_family(entry: &serde_json::Value, name: &str) -> bool {
    let text = |key: &str| entry[key].as_str().unwrap_or("").to_string();
    text("malware_printable").eq_ignore_ascii_case(name)
        || text("malware").eq_ignore_ascii_case(name)
        || text("malware_alias")
            .split(',')
            .any(|a| a.trim().eq_ignore_ascii_case(name))
}

/// The rows of the document's "Feed type" table: type -> (entries, loaded).
fn feed_type_table(doc: &str) -> BTreeMap<String, (u64, u64)> {
    let start = doc
        .find("| Feed type | Entries | Loaded | Not loaded |")
        .expect("the feed type table");
    doc[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|') && !l.starts_with("| **Total**"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let number = |n: usize| cells[n].parse::<u64>().expect("a count");
            (cells[1].to_string(), (number(2), number(3)))
        })
        .collect()
}

/// Rows of the indicator table by their Type column.
fn indicator_rows(doc: &str) -> BTreeMap<String, u64> {
    let start = doc.find("## Indicators\n").expect("the indicator table");
    let end = doc[start..].find("\n## ").map_or(doc.len(), |n| start + n);
    let mut rows = BTreeMap::new();
    for line in doc[start..end].lines().skip(6) {
        let Some(kind) = line.split('|').nth(1) else {
            continue;
        };
        *rows.entry(kind.trim().to_string()).or_default() += 1;
    }
    rows
}

/// The engine's kind for each feed type it loads.
const LOADED_AS: [(&str, &str); 6] = [
    ("ip:port", "ip:port"),
    ("domain", "domain"),
    ("url", "url"),
    ("md5_hash", "md5"),
    ("sha1_hash", "sha1"),
    ("sha256_hash", "sha256"),
];

fn assert_counts_agree(doc: &str, feed: &BTreeMap<String, u64>) {
    let table = feed_type_table(doc);
    let entries: BTreeMap<String, u64> = table.iter().map(|(t, (e, _))| (t.clone(), *e)).collect();
    assert_eq!(&entries, feed, "entries per feed type");
    let rows = indicator_rows(doc);
    for (ioc_type, kind) in LOADED_AS {
        let in_feed = feed.get(ioc_type).copied().unwrap_or(0);
        let loaded = table.get(ioc_type).map_or(0, |(_, loaded)| *loaded);
        // The flooding guard may refuse an address in a private range (the document states
        // it as not loaded); everything else of the feed loads.
        let refused = if ioc_type == "ip:port" {
            in_feed - loaded.min(in_feed)
        } else {
            0
        };
        assert!(refused <= 1, "{ioc_type}: {loaded} of {in_feed} loaded");
        assert_eq!(loaded + refused, in_feed, "{ioc_type} loaded");
        assert_eq!(rows.get(kind).copied().unwrap_or(0), loaded, "{kind} rows");
    }
    assert!(
        !doc.contains("no query of this rule hunts"),
        "every loaded kind is hunted"
    );
    let loaded: u64 = table.values().map(|(_, l)| l).sum();
    assert_eq!(
        rows.values().sum::<u64>(),
        loaded,
        "one row per loaded indicator"
    );
    let total: u64 = feed.values().sum();
    assert!(doc.contains(&format!("| **Total** | **{total}** | **{loaded}** |")));
    if loaded < total {
        assert!(
            doc.contains(&format!("{} ", total - loaded))
                && doc.contains("not loaded by the engine"),
            "entries the engine did not load are stated"
        );
    }
}

#[test]
fn default_rule_is_the_engine_golden_file() {
    let golden =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin/engine/tests/golden/rule-default.md");
    let want = std::fs::read_to_string(golden).expect("the golden file");
    assert_eq!(stdout_of(&["rule"]), want);
}

#[test]
fn mirai_rule_counts_what_the_feed_holds() {
    let path = threatfox_export();
    let feed = feed_counts(&path, |e| is_family(e, "Mirai"));
    assert!(
        feed.values().sum::<u64>() > 10,
        "the export has Mirai entries: {feed:?}"
    );
    let doc = stdout_of(&[
        "rule",
        "--feed",
        path.to_str().unwrap(),
        "--malware",
        "Mirai",
    ]);
    assert_counts_agree(&doc, &feed);
    assert!(doc.starts_with("# Hunting rule: Mirai indicators\n"));
    // The export's Mirai URLs are hunted in both tables with a URL column.
    assert!(feed.get("url").is_some_and(|n| *n > 0), "{feed:?}");
    assert_eq!(doc.matches("let IocUrls = dynamic([").count(), 2);
    assert!(doc.contains("`IocUrl()`"));
}

#[test]
fn malware_id_and_threat_type_select_their_entries() {
    let path = threatfox_export();
    let by_id = feed_counts(&path, |e| e["malware"] == "elf.mirai");
    let doc = stdout_of(&[
        "rule",
        "--feed",
        path.to_str().unwrap(),
        "--malware",
        "ELF.Mirai",
    ]);
    assert_counts_agree(&doc, &by_id);

    let botnet = feed_counts(&path, |e| e["threat_type"] == "botnet_cc");
    let doc = stdout_of(&[
        "rule",
        "--feed",
        path.to_str().unwrap(),
        "--threat-type",
        "botnet_cc",
    ]);
    assert_counts_agree(&doc, &botnet);
}

#[test]
fn kql_format_prints_only_the_queries() {
    let kql = stdout_of(&["rule", "--format", "kql"]);
    assert!(kql.starts_with("// iocsieve hunting query: Mirai indicators in CommonSecurityLog\n"));
    assert_eq!(kql.matches("// iocsieve hunting query:").count(), 3);
    assert!(!kql.contains("```") && !kql.contains("## "));
}

#[test]
fn bad_selections_are_errors() {
    let out = iocsieve(&["rule", "--malware", "NoSuchFamily"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"NoSuchFamily\""));
    let out = iocsieve(&["rule", "--malware", "Mirai", "--threat-type", "payload"]);
    assert!(!out.status.success());
    let out = iocsieve(&["rule", "--max-list", "0"]);
    assert_eq!(out.status.code(), Some(2));
}
