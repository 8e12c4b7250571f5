//! Feeds: reading indicator files into an [`IndicatorSet`].
//!
//! Each format module turns its entries into [`FeedEntry`] values (the feed's own type name,
//! its value and the metadata), and [`FeedLoader`] normalises them into indicators, counting
//! every entry by what became of it: loaded by kind, or skipped with a reason. Nothing is
//! dropped without a count.

mod threatfox;

use std::collections::BTreeMap;

use crate::indicator::{EntryId, IndicatorInfo, IndicatorSet, IndicatorValue, Kind};
use crate::normalize::{parse_hex, parse_ip, parse_ip_port, refang};

/// How a feed is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedFormat {
    /// Detect the format from the content.
    Auto,
    /// ThreatFox JSON export: `{"<id>": [{"ioc_value": ..}], ..}`.
    ThreatfoxJson,
    /// ThreatFox CSV export, with its `#` banner.
    ThreatfoxCsv,
    /// ThreatFox API records: `{"query_status":..,"data":[..]}` or one record per line.
    ThreatfoxApi,
}

impl FeedFormat {
    /// The format's name, as settings and the command line write it.
    pub fn name(self) -> &'static str {
        match self {
            FeedFormat::Auto => "auto",
            FeedFormat::ThreatfoxJson => "threatfox-json",
            FeedFormat::ThreatfoxCsv => "threatfox-csv",
            FeedFormat::ThreatfoxApi => "threatfox-api",
        }
    }

    /// Reads a format name.
    pub fn from_name(name: &str) -> Option<FeedFormat> {
        [
            Self::Auto,
            Self::ThreatfoxJson,
            Self::ThreatfoxCsv,
            Self::ThreatfoxApi,
        ]
        .into_iter()
        .find(|f| f.name() == name)
    }
}

/// A feed to load: its name (reported with every hit), its format and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct FeedInput<'a> {
    pub name: &'a str,
    pub format: FeedFormat,
    pub content: &'a [u8],
}

/// A feed that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedError {
    /// The feed's name.
    pub feed: String,
    /// The 1-based line where reading failed, when known.
    pub line: Option<u32>,
    pub message: String,
}

impl std::fmt::Display for FeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "feed {}, line {line}: {}", self.feed, self.message),
            None => write!(f, "feed {}: {}", self.feed, self.message),
        }
    }
}

impl std::error::Error for FeedError {}

/// What one feed contributed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedStats {
    pub name: String,
    /// The format read, after detection.
    pub format: String,
    /// Entries read, whatever became of them.
    pub entries: u64,
    /// Indicators loaded, by kind name.
    pub loaded: BTreeMap<String, u64>,
    /// Entries not loaded, by reason.
    pub skipped: BTreeMap<String, u64>,
}

impl FeedStats {
    /// How many indicators of `kind` this feed loaded.
    pub fn loaded_of(&self, kind: Kind) -> u64 {
        self.loaded.get(kind.name()).copied().unwrap_or(0)
    }
}

/// One entry of a feed, as its format module read it.
#[derive(Debug, Clone, Default)]
pub struct FeedEntry {
    /// The feed's type name (`ip:port`, `sha256_hash`, `domain`).
    pub ioc_type: String,
    pub value: String,
    pub info: IndicatorInfo,
}

/// What became of one feed entry: loaded as an indicator of a kind, or skipped for a reason.
pub type EntryOutcome<'r> = Result<Kind, &'r str>;

/// Sees every entry a feed has, with what became of it (see [`observe_feed`]).
pub type EntryObserver<'o> = dyn FnMut(&FeedEntry, EntryOutcome<'_>) + 'o;

/// Normalises feed entries into an indicator set and counts what became of each.
pub struct FeedLoader<'s> {
    set: &'s mut IndicatorSet,
    stats: FeedStats,
    feed_index: u16,
    observer: Option<&'s mut EntryObserver<'s>>,
    /// The reason the entry being added was skipped, kept only while observing.
    last_skip: Option<String>,
    observing: bool,
}

impl<'s> FeedLoader<'s> {
    fn new(set: &'s mut IndicatorSet, name: &str, feed_index: u16) -> Self {
        let stats = FeedStats {
            name: name.to_string(),
            ..FeedStats::default()
        };
        FeedLoader {
            set,
            stats,
            feed_index,
            observer: None,
            last_skip: None,
            observing: false,
        }
    }

    /// Adds one entry (see [`FeedLoader::add_entry`]), telling the observer, if any, what
    /// became of it.
    pub fn add(&mut self, entry: FeedEntry) {
        let Some(observer) = self.observer.take() else {
            return self.add_entry(entry);
        };
        let seen = entry.clone();
        let before = self.set.len();
        self.last_skip = None;
        self.add_entry(entry);
        match self.last_skip.take() {
            Some(reason) => observer(&seen, Err(&reason)),
            None if self.set.len() > before => {
                let id = EntryId::try_from(before).expect("fewer than 2^32 indicators");
                observer(&seen, Ok(self.set.get(id).kind));
            }
            None => observer(&seen, Err("not loaded")),
        }
        self.observer = Some(observer);
    }

    /// Adds one entry; values are normalised here (refanged, trimmed, addresses and hashes
    /// parsed into their binary form).
    fn add_entry(&mut self, mut entry: FeedEntry) {
        self.stats.entries += 1;
        let value = refang(&entry.value);
        if value.is_empty() {
            self.skip("empty value");
            return;
        }
        let parsed = match entry.ioc_type.trim().to_ascii_lowercase().as_str() {
            "ip:port" => parse_ip_port(&value).map(|(a, p)| IndicatorValue::IpPort(a, p)),
            "ip" | "ipv4" | "ipv6" | "ip-dst" | "ip-src" => {
                parse_ip(&value).map(IndicatorValue::Ip)
            }
            "md5_hash" | "md5" => parse_hex(&value).map(IndicatorValue::Md5),
            "sha1_hash" | "sha1" => parse_hex(&value).map(IndicatorValue::Sha1),
            "sha256_hash" | "sha256" => parse_hex(&value).map(IndicatorValue::Sha256),
            "domain" | "url" | "hostname" => {
                self.skip(&format!("unsupported kind: {}", entry.ioc_type.trim()));
                return;
            }
            other => {
                self.skip(&format!("unknown type: {other}"));
                return;
            }
        };
        let Some(parsed) = parsed else {
            self.skip(&format!("unreadable {} value", entry.ioc_type.trim()));
            return;
        };
        entry.info.context.feed = self.feed_index;
        if self.set.insert(parsed, entry.info) {
            *self
                .stats
                .loaded
                .entry(parsed.kind().name().to_string())
                .or_default() += 1;
        } else {
            self.skip("duplicate entry");
        }
    }

    /// Counts an entry that was not loaded.
    pub fn skip(&mut self, reason: &str) {
        *self.stats.skipped.entry(reason.to_string()).or_default() += 1;
        if self.observing {
            self.last_skip = Some(reason.to_string());
        }
    }
}

/// Reads `input` into `set`; `feed_index` is the feed's position in the detector's list.
pub fn load_feed(
    input: &FeedInput<'_>,
    feed_index: u16,
    set: &mut IndicatorSet,
) -> Result<FeedStats, FeedError> {
    read_feed(input, feed_index, set, None)
}

/// Reads `input` as [`load_feed`] does, calling `observer` with every entry and what
/// became of it, so a report can count the entries the engine did not load (a kind it does
/// not support, an unreadable value) by their metadata.
pub fn observe_feed(
    input: &FeedInput<'_>,
    observer: &mut EntryObserver<'_>,
) -> Result<FeedStats, FeedError> {
    let mut set = IndicatorSet::default();
    read_feed(input, 0, &mut set, Some(observer))
}

fn read_feed<'s>(
    input: &FeedInput<'_>,
    feed_index: u16,
    set: &'s mut IndicatorSet,
    observer: Option<&'s mut EntryObserver<'s>>,
) -> Result<FeedStats, FeedError> {
    let error = |line: Option<u32>, message: String| FeedError {
        feed: input.name.to_string(),
        line,
        message,
    };
    let text = std::str::from_utf8(input.content).map_err(|e| {
        let line = input.content[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        error(Some(line as u32), "not UTF-8 text".into())
    })?;
    let format = match input.format {
        FeedFormat::Auto => detect_format(text).ok_or_else(|| {
            error(
                None,
                "format not recognised (expected a ThreatFox JSON export, CSV export or API \
                 records); name it explicitly if it is one of these"
                    .into(),
            )
        })?,
        given => given,
    };
    let mut loader = FeedLoader::new(set, input.name, feed_index);
    loader.observing = observer.is_some();
    loader.observer = observer;
    loader.stats.format = format.name().to_string();
    let result = match format {
        FeedFormat::ThreatfoxJson => threatfox::read_export_json(text, &mut loader),
        FeedFormat::ThreatfoxCsv => threatfox::read_export_csv(text, &mut loader),
        FeedFormat::ThreatfoxApi => threatfox::read_api(text, &mut loader),
        FeedFormat::Auto => unreachable!("detected above"),
    };
    result.map_err(|(line, message)| error(line, message))?;
    if loader.stats.entries == 0 {
        return Err(error(None, "the feed has no entries".into()));
    }
    Ok(loader.stats)
}

/// Detects a feed's format from its first bytes.
pub fn detect_format(text: &str) -> Option<FeedFormat> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('#') || trimmed.starts_with("\"first_seen_utc\"") {
        return text
            .contains("ioc_value")
            .then_some(FeedFormat::ThreatfoxCsv);
    }
    if trimmed.starts_with('{') {
        let head = &trimmed[..trimmed.len().min(4096)];
        if head.contains("\"query_status\"") || head.contains("\"ioc\"") {
            return Some(FeedFormat::ThreatfoxApi);
        }
        if head.contains("\"ioc_value\"") {
            return Some(FeedFormat::ThreatfoxJson);
        }
    }
    None
}

/// Splits a line of a ThreatFox-style CSV export: fields quoted with `"` (a doubled `""`
/// inside), separated by `,` with optional spaces. Hand-written because the `", "`
/// separator defeats strict CSV readers (a space before a quote makes the quote literal).
pub(crate) fn split_quoted_csv(line: &str, fields: &mut Vec<String>) -> Result<(), String> {
    fields.clear();
    let bytes = line.as_bytes();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let mut field = String::new();
        if bytes.get(i) == Some(&b'"') {
            i += 1;
            loop {
                let Some(rel) = line[i..].find('"') else {
                    return Err("unterminated quoted field".into());
                };
                field.push_str(&line[i..i + rel]);
                i += rel + 1;
                if bytes.get(i) == Some(&b'"') {
                    field.push('"');
                    i += 1;
                } else {
                    break;
                }
            }
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
        } else {
            let end = line[i..].find(',').map_or(line.len(), |rel| i + rel);
            field.push_str(line[i..end].trim());
            i = end;
        }
        fields.push(field);
        match bytes.get(i) {
            None => return Ok(()),
            Some(b',') => i += 1,
            Some(_) => return Err(format!("expected a comma at column {}", i + 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_threatfox_csv_lines() {
        let mut f = Vec::new();
        split_quoted_csv(r#""a", "b ""c""", "None",x , "1""#, &mut f).unwrap();
        assert_eq!(f, ["a", "b \"c\"", "None", "x", "1"]);
        assert!(split_quoted_csv(r#""a", "b"#, &mut f).is_err());
    }

    #[test]
    fn detects_formats() {
        assert_eq!(
            detect_format("{\n \"1\": [{\"ioc_value\": \"x\"}]}"),
            Some(FeedFormat::ThreatfoxJson)
        );
        assert_eq!(
            detect_format("{\"query_status\":\"ok\",\"data\":[]}"),
            Some(FeedFormat::ThreatfoxApi)
        );
        assert_eq!(
            detect_format("{\"id\":\"1\",\"ioc\":\"1.2.3.4:80\"}\n"),
            Some(FeedFormat::ThreatfoxApi)
        );
        assert_eq!(
            detect_format("####\n# \"first_seen_utc\",\"ioc_id\",\"ioc_value\"\n"),
            Some(FeedFormat::ThreatfoxCsv)
        );
        assert_eq!(detect_format("hello"), None);
    }

    #[test]
    fn observing_a_feed_reports_what_became_of_each_entry() {
        let content = br#"{
          "1": [{"ioc_value": "1.2.3.4:80", "ioc_type": "ip:port", "malware": "a"}],
          "2": [{"ioc_value": "1.2.3.4:80", "ioc_type": "ip:port", "malware": "b"}],
          "3": [{"ioc_value": "x", "ioc_type": "ja3_fingerprint", "malware": "c"}],
          "4": [{"ioc_value": "not-a-hash", "ioc_type": "md5_hash", "malware": "d"}]
        }"#;
        let input = FeedInput {
            name: "f",
            format: FeedFormat::Auto,
            content,
        };
        let mut seen = Vec::new();
        let stats = observe_feed(&input, &mut |entry, outcome| {
            let outcome = outcome.map_err(str::to_string);
            seen.push((entry.info.context.malware.to_string(), outcome));
        })
        .unwrap();
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            seen,
            [
                ("a".to_string(), Ok(Kind::IpPort)),
                ("b".to_string(), Ok(Kind::IpPort)),
                (
                    "c".to_string(),
                    Err("unknown type: ja3_fingerprint".to_string())
                ),
                (
                    "d".to_string(),
                    Err("unreadable md5_hash value".to_string())
                ),
            ]
        );
        assert_eq!(stats.entries, 4);
    }

    #[test]
    fn an_unrecognised_feed_is_an_error_naming_it() {
        let mut set = IndicatorSet::default();
        let input = FeedInput {
            name: "feeds/x.txt",
            format: FeedFormat::Auto,
            content: b"hello",
        };
        let err = load_feed(&input, 0, &mut set).unwrap_err();
        assert_eq!(err.feed, "feeds/x.txt");
        assert!(err.message.contains("format not recognised"), "{err}");
    }
}
