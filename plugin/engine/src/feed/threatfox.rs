//! ThreatFox's three shapes: the JSON export, the CSV export and the API records.
//!
//! They carry the same fields under different names: `ioc_value` or `ioc`,
//! `first_seen_utc` or `first_seen` (with ` UTC`), tags as one comma-joined string or as a
//! list, `None` or `null` for nothing.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{FeedEntry, FeedLoader, split_quoted_csv};
use crate::indicator::{Context, IndicatorInfo};
use crate::timestamp::parse_feed_time;

type ReadResult = Result<(), (Option<u32>, String)>;

/// A number the feed may write as a number or as a string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Flexible {
    Number(f64),
    Text(String),
}

/// Tags as one comma-joined string (export) or as a list (API).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Tags {
    Joined(String),
    List(Vec<Option<String>>),
}

/// An entry under both names the formats use for each field.
#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(alias = "ioc")]
    ioc_value: String,
    ioc_type: String,
    #[serde(default)]
    id: Option<Flexible>,
    #[serde(default)]
    threat_type: Option<String>,
    #[serde(default)]
    malware: Option<String>,
    #[serde(default)]
    malware_alias: Option<String>,
    #[serde(default)]
    malware_printable: Option<String>,
    #[serde(default, alias = "first_seen")]
    first_seen_utc: Option<String>,
    #[serde(default, alias = "last_seen")]
    last_seen_utc: Option<String>,
    #[serde(default)]
    confidence_level: Option<Flexible>,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    tags: Option<Tags>,
}

impl Entry {
    fn into_feed_entry(self, id: Option<String>) -> FeedEntry {
        let tags = match self.tags {
            Some(Tags::Joined(s)) => split_tags(&s),
            Some(Tags::List(list)) => list
                .into_iter()
                .flatten()
                .map(String::into_boxed_str)
                .collect(),
            None => Box::default(),
        };
        let id = id.or_else(|| match self.id {
            Some(Flexible::Number(n)) => Some(format!("{n}")),
            Some(Flexible::Text(s)) => Some(s),
            None => None,
        });
        FeedEntry {
            ioc_type: self.ioc_type,
            value: self.ioc_value,
            info: IndicatorInfo {
                context: Context {
                    feed: 0,
                    threat_type: text(self.threat_type),
                    malware: text(self.malware),
                    malware_printable: text(self.malware_printable),
                    malware_alias: text(self.malware_alias),
                    tags,
                    reference: text(self.reference),
                },
                id: id.unwrap_or_default(),
                confidence: match self.confidence_level {
                    Some(Flexible::Number(n)) => confidence(n),
                    Some(Flexible::Text(s)) => s.trim().parse().ok().and_then(confidence),
                    None => None,
                },
                first_seen: self.first_seen_utc.as_deref().and_then(parse_feed_time),
                last_seen: self.last_seen_utc.as_deref().and_then(parse_feed_time),
                valid_from: None,
                valid_until: None,
            },
        }
    }
}

/// A confidence from 0 to 100; anything else is not a confidence.
fn confidence(n: f64) -> Option<u8> {
    (0.0..=100.0).contains(&n).then_some(n.round() as u8)
}

/// Empty and `None` mean nothing.
fn text(value: Option<String>) -> Box<str> {
    match value {
        Some(s) if !is_none(&s) => s.trim().into(),
        _ => Box::default(),
    }
}

fn is_none(s: &str) -> bool {
    let s = s.trim();
    s.is_empty() || s == "None" || s == "null"
}

fn split_tags(joined: &str) -> Box<[Box<str>]> {
    if is_none(joined) {
        return Box::default();
    }
    joined
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Into::into)
        .collect()
}

fn json_error(e: &serde_json::Error) -> (Option<u32>, String) {
    (Some(e.line() as u32), e.to_string())
}

/// The JSON export: `{"<id>": [entry, ..], ..}`.
pub(super) fn read_export_json(text: &str, loader: &mut FeedLoader<'_>) -> ReadResult {
    let export: BTreeMap<String, Vec<Entry>> =
        serde_json::from_str(text).map_err(|e| json_error(&e))?;
    for (id, entries) in export {
        for entry in entries {
            loader.add(entry.into_feed_entry(Some(id.clone())));
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
struct ApiResponse {
    #[serde(default)]
    query_status: Option<String>,
    #[serde(default)]
    data: Option<Vec<Entry>>,
}

/// API records: the `get_iocs` response object, or one record per line.
pub(super) fn read_api(text: &str, loader: &mut FeedLoader<'_>) -> ReadResult {
    let head = &text[..text.len().min(4096)];
    if head.contains("\"query_status\"") {
        let response: ApiResponse = serde_json::from_str(text).map_err(|e| json_error(&e))?;
        let status = response.query_status.unwrap_or_default();
        if status != "ok" {
            return Err((
                None,
                format!("the API answered query_status {status:?}, not \"ok\""),
            ));
        }
        for entry in response.data.unwrap_or_default() {
            loader.add(entry.into_feed_entry(None));
        }
        return Ok(());
    }
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let entry: Entry =
            serde_json::from_str(line).map_err(|e| (Some(n as u32 + 1), e.to_string()))?;
        loader.add(entry.into_feed_entry(None));
    }
    Ok(())
}

/// The columns of the CSV export, in the order ThreatFox writes them; a commented header
/// line, when present, overrides this.
const CSV_COLUMNS: [&str; 15] = [
    "first_seen_utc",
    "ioc_id",
    "ioc_value",
    "ioc_type",
    "threat_type",
    "fk_malware",
    "malware_alias",
    "malware_printable",
    "last_seen_utc",
    "confidence_level",
    "is_compromised",
    "reference",
    "tags",
    "anonymous",
    "reporter",
];

/// The CSV export: a `#` banner, a commented header, then `"v", "v", ..` rows.
pub(super) fn read_export_csv(text: &str, loader: &mut FeedLoader<'_>) -> ReadResult {
    /// The columns read, in the order of `at` below.
    const WANTED: [&str; 13] = [
        "ioc_value",
        "ioc_type",
        "ioc_id",
        "threat_type",
        "fk_malware",
        "malware",
        "malware_alias",
        "malware_printable",
        "first_seen_utc",
        "last_seen_utc",
        "confidence_level",
        "reference",
        "tags",
    ];
    // Where each wanted column is, found once per header rather than once per field.
    let positions = |columns: &[String]| -> [Option<usize>; 13] {
        WANTED.map(|name| columns.iter().position(|c| c == name))
    };
    let mut columns: Vec<String> = CSV_COLUMNS.iter().map(|c| c.to_string()).collect();
    let mut at = positions(&columns);
    let mut fields = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = Some(n as u32 + 1);
        let line = line.trim_end_matches('\r');
        if let Some(comment) = line.strip_prefix('#') {
            if comment.contains("\"ioc_value\"") {
                split_quoted_csv(comment.trim(), &mut fields).map_err(|e| (line_no, e))?;
                columns = std::mem::take(&mut fields);
                at = positions(&columns);
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        split_quoted_csv(line, &mut fields).map_err(|e| (line_no, e))?;
        if fields.len() != columns.len() {
            return Err((
                line_no,
                format!(
                    "{} fields where the header has {}",
                    fields.len(),
                    columns.len()
                ),
            ));
        }
        let get = |i: usize| at[i].map(|i| fields[i].as_str()).filter(|v| !is_none(v));
        let (Some(value), Some(ioc_type)) = (get(0), get(1)) else {
            loader.skip("row without ioc_value or ioc_type");
            continue;
        };
        // Built directly, without the intermediate owned row: one allocation per value.
        let boxed = |i: usize| get(i).map_or_else(Box::default, |v| Box::from(v.trim()));
        let info = IndicatorInfo {
            context: Context {
                feed: 0,
                threat_type: boxed(3),
                malware: get(4)
                    .or_else(|| get(5))
                    .map_or_else(Box::default, |v| Box::from(v.trim())),
                malware_printable: boxed(7),
                malware_alias: boxed(6),
                tags: get(12).map_or_else(Box::default, split_tags),
                reference: boxed(11),
            },
            id: get(2).unwrap_or_default().to_string(),
            confidence: get(10)
                .and_then(|v| v.trim().parse().ok())
                .and_then(confidence),
            first_seen: get(8).and_then(parse_feed_time),
            last_seen: get(9).and_then(parse_feed_time),
            valid_from: None,
            valid_until: None,
        };
        loader.add(FeedEntry {
            ioc_type: ioc_type.to_string(),
            value: value.to_string(),
            info,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::feed::{FeedFormat, FeedInput, load_feed};
    use crate::indicator::{IndicatorSet, IndicatorValue, Kind};

    fn load(format: FeedFormat, text: &str) -> (IndicatorSet, crate::feed::FeedStats) {
        let mut set = IndicatorSet::default();
        let input = FeedInput {
            name: "test",
            format,
            content: text.as_bytes(),
        };
        let stats = load_feed(&input, 0, &mut set).expect("feed loads");
        (set, stats)
    }

    #[test]
    fn reads_the_api_shape_with_tag_lists_and_utc_suffix() {
        let line = r#"{"id":"841508","ioc":"2a02:cf40:1::5:40669","ioc_type":"ip:port","threat_type":"botnet_cc","malware":"win.redline_stealer","malware_printable":"RedLine Stealer","malware_alias":null,"confidence_level":100,"first_seen":"2022-08-05 11:40:15 UTC","last_seen":null,"reference":null,"tags":["RedLineStealer"]}"#;
        let (set, stats) = load(FeedFormat::Auto, line);
        assert_eq!(stats.format, "threatfox-api");
        assert_eq!(stats.loaded_of(Kind::IpPort), 1);
        let value = IndicatorValue::IpPort("2a02:cf40:1::5".parse().unwrap(), 40669);
        let got = set.get(set.lookup(&value).unwrap());
        assert_eq!(got.id, "841508");
        assert_eq!(got.confidence, Some(100));
        assert_eq!(got.first_seen, Some(1_659_699_615));
        assert_eq!(&*got.context.tags, ["RedLineStealer".into()]);
        assert_eq!(&*got.context.malware_alias, "");
    }

    #[test]
    fn reads_the_csv_shape_with_none_and_string_numbers() {
        let csv = "####\n# \"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\",\"threat_type\",\"fk_malware\",\"malware_alias\",\"malware_printable\",\"last_seen_utc\",\"confidence_level\",\"is_compromised\",\"reference\",\"tags\",\"anonymous\",\"reporter\"\n\"2026-04-12 04:49:28\", \"17\", \"0CC175B9C0F1B6A831C399E269772661\", \"md5_hash\", \"payload\", \"elf.mirai\", \"None\", \"Mirai\", \"\", \"50\", \"False\", \"None\", \"a,b\", \"0\", \"x\"\n";
        let (set, stats) = load(FeedFormat::Auto, csv);
        assert_eq!(stats.format, "threatfox-csv");
        let value = IndicatorValue::Md5(
            crate::normalize::parse_hex("0cc175b9c0f1b6a831c399e269772661").unwrap(),
        );
        let got = set.get(set.lookup(&value).unwrap());
        assert_eq!(
            (got.id, got.confidence, got.last_seen),
            ("17", Some(50), None)
        );
        assert_eq!(got.context.tags.len(), 2);
        assert_eq!(&*got.context.reference, "");
    }

    #[test]
    fn counts_unsupported_and_unreadable_entries() {
        let json = r#"{"1":[{"ioc_value":"evil.example","ioc_type":"email"}],
                       "2":[{"ioc_value":"1.2.3.4:99999","ioc_type":"ip:port"}],
                       "3":[{"ioc_value":"194[.]48[.]251[.]24:80","ioc_type":"ip:port"}],
                       "4":[{"ioc_value":"  ","ioc_type":"ip:port"}]}"#;
        let (_, stats) = load(FeedFormat::ThreatfoxJson, json);
        assert_eq!(stats.entries, 4);
        assert_eq!(stats.loaded_of(Kind::IpPort), 1);
        assert_eq!(stats.skipped["unsupported type: email"], 1);
        assert_eq!(stats.skipped["unreadable ip:port value"], 1);
        assert_eq!(stats.skipped["empty value"], 1);
    }

    #[test]
    fn a_broken_json_feed_names_the_line() {
        let mut set = IndicatorSet::default();
        let text = "{\n \"1\": [{\"ioc_value\": \"1.2.3.4:80\",\n \"ioc_type\": }]}";
        let input = FeedInput {
            name: "f.json",
            format: FeedFormat::ThreatfoxJson,
            content: text.as_bytes(),
        };
        let err = load_feed(&input, 0, &mut set).unwrap_err();
        assert_eq!((err.feed.as_str(), err.line), ("f.json", Some(3)));
    }

    #[test]
    fn an_api_error_status_is_a_load_error() {
        let mut set = IndicatorSet::default();
        let text = r#"{"query_status":"illegal_search_term","data":null}"#;
        let input = FeedInput {
            name: "api",
            format: FeedFormat::ThreatfoxApi,
            content: text.as_bytes(),
        };
        let err = load_feed(&input, 0, &mut set).unwrap_err();
        assert!(err.message.contains("illegal_search_term"), "{err}");
    }
}
