//! ThreatFox's three shapes: the JSON export, the CSV export and the API records.
//!
//! They carry the same fields under different names: `ioc_value` or `ioc`,
//! `first_seen_utc` or `first_seen` (with ` UTC`), tags as one comma-joined string or as a
//! list, `None` or `null` for nothing.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::{FeedEntry, FeedLoader, split_quoted_csv};
use crate::indicator::{Context, IndicatorInfo};
use crate::record::{
    FieldTable, ReadError, RecordScanner, ScalarKind, ScannedRecord, Slot, read_json_string,
    skip_ws,
};
use crate::timestamp::parse_feed_time;

type ReadResult = Result<(), (Option<u32>, String)>;

/// A scalar field as text, borrowed from the feed unless it has escapes: the exports give
/// numbers as numbers or as strings, and nothing as `null`.
#[derive(Debug, Default)]
struct Text<'de>(Option<Cow<'de, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a number or null")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'a>, E> {
                Ok(Text(Some(Cow::Owned(v))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text<'a>, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text<'a>, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text<'a>, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Text<'a>, E> {
                Ok(Text(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Text<'a>, E> {
                Ok(Text(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Text<'a>, D::Error> {
                d.deserialize_any(self)
            }
        }
        deserializer.deserialize_any(TextVisitor(std::marker::PhantomData))
    }
}

impl Text<'_> {
    /// The trimmed text, unless it is empty or spells nothing (`None`, `null`).
    fn get(&self) -> Option<&str> {
        self.0.as_deref().map(str::trim).filter(|s| !is_none(s))
    }

    fn boxed(&self) -> Box<str> {
        self.get().map_or_else(Box::default, Box::from)
    }
}

/// Tags as one comma-joined string (export) or as a list (API).
#[derive(Debug, Default)]
struct Tags(Box<[Box<str>]>);

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TagsVisitor;
        impl<'de> Visitor<'de> for TagsVisitor {
            type Value = Tags;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("tags as a comma-joined string or a list")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Tags, E> {
                Ok(Tags(split_tags(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tags, A::Error> {
                let mut tags = Vec::new();
                while let Some(tag) = seq.next_element::<Text<'de>>()? {
                    tags.extend(tag.get().map(Box::from));
                }
                Ok(Tags(tags.into_boxed_slice()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Tags, E> {
                Ok(Tags::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Tags, E> {
                Ok(Tags::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Tags, D::Error> {
                d.deserialize_any(self)
            }
        }
        deserializer.deserialize_any(TagsVisitor)
    }
}

/// An entry under both names the formats use for each field. Fields no indicator needs
/// (`reporter`, `anonymous`, `is_compromised`) are skipped unread.
#[derive(Debug, Deserialize)]
struct Entry<'t> {
    #[serde(borrow, alias = "ioc")]
    ioc_value: Text<'t>,
    #[serde(borrow)]
    ioc_type: Text<'t>,
    #[serde(borrow, default)]
    id: Text<'t>,
    #[serde(borrow, default)]
    threat_type: Text<'t>,
    #[serde(borrow, default)]
    malware: Text<'t>,
    #[serde(borrow, default)]
    malware_alias: Text<'t>,
    #[serde(borrow, default)]
    malware_printable: Text<'t>,
    #[serde(borrow, default, alias = "first_seen")]
    first_seen_utc: Text<'t>,
    #[serde(borrow, default, alias = "last_seen")]
    last_seen_utc: Text<'t>,
    #[serde(borrow, default)]
    confidence_level: Text<'t>,
    #[serde(borrow, default)]
    reference: Text<'t>,
    #[serde(default)]
    tags: Tags,
}

impl Entry<'_> {
    fn into_feed_entry<'t>(self, id: Option<&str>) -> FeedEntry<'t>
    where
        Self: 't,
    {
        FeedEntry {
            ioc_type: self.ioc_type.0.unwrap_or_default(),
            value: self.ioc_value.0.unwrap_or_default(),
            info: IndicatorInfo {
                context: Context {
                    feed: 0,
                    threat_type: self.threat_type.boxed(),
                    malware: self.malware.boxed(),
                    malware_printable: self.malware_printable.boxed(),
                    malware_alias: self.malware_alias.boxed(),
                    tags: self.tags.0,
                    reference: self.reference.boxed(),
                },
                id: id.or_else(|| self.id.get()).unwrap_or_default().to_string(),
                confidence: self
                    .confidence_level
                    .get()
                    .and_then(|v| v.parse::<f64>().ok())
                    .and_then(confidence),
                first_seen: self.first_seen_utc.get().and_then(parse_feed_time),
                last_seen: self.last_seen_utc.get().and_then(parse_feed_time),
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

fn is_none(s: &str) -> bool {
    let s = s.trim_ascii();
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

/// The fields of a JSON export entry, read by the record scanner: an entry is a flat
/// object like a log record, and the scanner reads one without a tree or a string per field.
struct ExportFields {
    table: FieldTable,
    ioc_value: [Slot; 2],
    ioc_type: Slot,
    threat_type: Slot,
    malware: Slot,
    malware_alias: Slot,
    malware_printable: Slot,
    first_seen: [Slot; 2],
    last_seen: [Slot; 2],
    confidence: Slot,
    reference: Slot,
    tags: Slot,
}

impl ExportFields {
    fn new() -> ExportFields {
        let mut table = FieldTable::default();
        let mut slot = |name: &str| table.intern(name);
        ExportFields {
            ioc_value: [slot("ioc_value"), slot("ioc")],
            ioc_type: slot("ioc_type"),
            threat_type: slot("threat_type"),
            malware: slot("malware"),
            malware_alias: slot("malware_alias"),
            malware_printable: slot("malware_printable"),
            first_seen: [slot("first_seen_utc"), slot("first_seen")],
            last_seen: [slot("last_seen_utc"), slot("last_seen")],
            confidence: slot("confidence_level"),
            reference: slot("reference"),
            tags: slot("tags"),
            table,
        }
    }

    /// The entry the scanned object describes, under the ThreatFox `id`.
    fn entry<'t>(&self, scanned: &ScannedRecord<'t>, id: &str) -> FeedEntry<'t> {
        // A scalar's text, unless it is null, empty or spells nothing.
        let text = |slot: Slot| -> Option<&'t str> {
            match scanned.first(slot)? {
                (ScalarKind::Null, _) => None,
                (_, t) => Some(t.trim()).filter(|t| !is_none(t)),
            }
        };
        let either = |[a, b]: [Slot; 2]| text(a).or_else(|| text(b));
        let boxed = |slot: Slot| text(slot).map_or_else(Box::default, Box::from);
        let tags: Box<[Box<str>]> = scanned
            .values(self.tags)
            .filter(|(kind, _)| *kind == ScalarKind::String)
            .flat_map(|(_, t)| split_tags(t))
            .collect();
        FeedEntry {
            ioc_type: text(self.ioc_type).unwrap_or_default().into(),
            value: either(self.ioc_value).unwrap_or_default().into(),
            info: IndicatorInfo {
                context: Context {
                    feed: 0,
                    threat_type: boxed(self.threat_type),
                    malware: boxed(self.malware),
                    malware_printable: boxed(self.malware_printable),
                    malware_alias: boxed(self.malware_alias),
                    tags,
                    reference: boxed(self.reference),
                },
                id: id.to_string(),
                confidence: text(self.confidence)
                    .and_then(|v| v.parse::<f64>().ok())
                    .and_then(confidence),
                first_seen: either(self.first_seen).and_then(parse_feed_time),
                last_seen: either(self.last_seen).and_then(parse_feed_time),
                valid_from: None,
                valid_until: None,
            },
        }
    }
}

/// The JSON export: `{"<id>": [entry, ..], ..}`, read entry by entry into the loader as it
/// streams past, with no copy of the whole export in between. Tags are a comma-joined
/// string or a list; numbers may be written as strings; fields of no use are skipped.
/// An entry without a value or a type is counted as skipped, not refused.
pub(super) fn read_export_json(text: &str, loader: &mut FeedLoader<'_>) -> ReadResult {
    let bytes = text.as_bytes();
    let fields = ExportFields::new();
    let mut scanner = RecordScanner::default();
    let mut id = String::new();
    let invalid = |offset: usize| {
        let before = &bytes[..offset.min(bytes.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = before.len()
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |n| n + 1)
            + 1;
        let found = match bytes.get(offset) {
            Some(&b) if b.is_ascii_graphic() => format!("`{}`", b as char),
            Some(_) => "a byte that is not JSON here".to_string(),
            None => "the end of the text".to_string(),
        };
        (
            Some(line as u32),
            format!("invalid JSON at line {line} column {column}: found {found}"),
        )
    };
    let scan_error = |e: ReadError| match e {
        ReadError::Invalid { offset } => invalid(offset),
        ReadError::TooDeep => (None, e.to_string()),
        ReadError::NotAnObject => (None, "an entry is not a JSON object".to_string()),
    };
    let ws = |pos: usize| skip_ws(bytes, pos);
    // `byte` at `pos`, then the offset of what follows it.
    let expect = |pos: usize, byte: u8| match bytes.get(pos) {
        Some(&b) if b == byte => Ok(ws(pos + 1)),
        _ => Err(invalid(pos)),
    };
    // After an element of a container closed by `close`: the offset of the next element,
    // or `None` and the offset after the container.
    let next = |pos: usize, close: u8| {
        let pos = ws(pos);
        match bytes.get(pos) {
            Some(b',') => Ok((Some(ws(pos + 1)), pos)),
            Some(&b) if b == close => Ok((None, pos + 1)),
            _ => Err(invalid(pos)),
        }
    };
    let mut pos = expect(ws(0), b'{')?;
    let mut member = (bytes.get(pos) != Some(&b'}')).then_some(pos);
    if member.is_none() {
        pos += 1;
    }
    while let Some(at) = member {
        pos = read_json_string(bytes, at, &mut id).map_err(scan_error)?;
        pos = expect(ws(pos), b':')?;
        pos = expect(pos, b'[')?;
        let mut entry = (bytes.get(pos) != Some(&b']')).then_some(pos);
        if entry.is_none() {
            pos += 1;
        }
        while let Some(at) = entry {
            let (scanned, end) = scanner
                .scan_object_at(&fields.table, bytes, at)
                .map_err(scan_error)?;
            loader.add(fields.entry(&scanned, id.trim()));
            (entry, pos) = next(end, b']')?;
        }
        (member, pos) = next(pos, b'}')?;
    }
    let rest = ws(pos);
    if rest != bytes.len() {
        return Err(invalid(rest));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
struct ApiResponse<'t> {
    #[serde(borrow, default)]
    query_status: Text<'t>,
    #[serde(borrow, default)]
    data: Option<Vec<Entry<'t>>>,
}

/// API records: the `get_iocs` response object, or one record per line.
pub(super) fn read_api(text: &str, loader: &mut FeedLoader<'_>) -> ReadResult {
    let head = &text[..text.len().min(4096)];
    if head.contains("\"query_status\"") {
        let response: ApiResponse = serde_json::from_str(text).map_err(|e| json_error(&e))?;
        let status = response.query_status.get().unwrap_or_default();
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
    for (n, line) in super::lines(text).enumerate() {
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
    let positions = |columns: &[Cow<'_, str>]| -> [Option<usize>; 13] {
        WANTED.map(|name| columns.iter().position(|c| c == name))
    };
    let mut columns: Vec<Cow<'_, str>> = CSV_COLUMNS.iter().map(|&c| c.into()).collect();
    let mut at = positions(&columns);
    let mut fields = Vec::new();
    for (n, line) in super::lines(text).enumerate() {
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
        let get = |i: usize| at[i].map(|i| &*fields[i]).filter(|v| !is_none(v));
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
            ioc_type: ioc_type.into(),
            value: value.into(),
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
    fn reads_the_json_export_in_all_its_spellings() {
        let json = "\u{feff}{\n \"41\": [{\"ioc_value\": \"194.48.251.24:80\", \"ioc_type\": \"ip:port\",
              \"malware_printable\": \"Mira\\u0069 \\u00e9\", \"confidence_level\": \"75\",
              \"tags\": \"a, b\", \"reporter\": {\"nested\": [1, {\"x\": null}]},
              \"first_seen_utc\": \"2026-04-12 04:49:28\", \"last_seen_utc\": null}],
          \"4\\u0032\": [{\"ioc\": \"evil-domain.top\", \"ioc_type\": \"domain\", \"tags\": [\"x\", null, \"y\"],
              \"confidence_level\": 100, \"malware\": \"None\"},
              {\"ioc_type\": \"domain\"}, {\"ioc_value\": \"1.2.3.4\", \"ioc_type\": null}],
          \"43\": []}";
        let (set, stats) = load(FeedFormat::ThreatfoxJson, json);
        assert_eq!((stats.entries, set.len()), (4, 2), "{:?}", stats.skipped);
        assert_eq!(stats.skipped["empty value"], 1);
        assert_eq!(stats.skipped["entry without a type"], 1);
        let value = IndicatorValue::IpPort("194.48.251.24".parse().unwrap(), 80);
        let got = set.get(set.lookup(&value).unwrap());
        assert_eq!((got.id, got.confidence), ("41", Some(75)));
        assert_eq!(&*got.context.malware_printable, "Mirai é");
        assert_eq!(&*got.context.tags, ["a".into(), "b".into()]);
        assert_eq!(got.first_seen, Some(1_775_969_368));
        assert_eq!(got.last_seen, None);
        let got = set.get(set.lookup_text(Kind::Domain, "evil-domain.top").unwrap());
        assert_eq!((got.id, got.confidence), ("42", Some(100)));
        assert_eq!(&*got.context.tags, ["x".into(), "y".into()]);
        assert_eq!(&*got.context.malware, "");
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
