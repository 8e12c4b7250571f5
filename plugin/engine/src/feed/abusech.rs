//! abuse.ch's other feeds: the URLhaus CSV dump and API answer, and the Feodo Tracker
//! blocklist as CSV and JSON.

use std::borrow::Cow;

use serde::Deserialize;

use super::{FeedEntry, FeedLoader, split_quoted_csv};
use crate::indicator::{Context, IndicatorInfo};
use crate::normalize::format_ip_port;
use crate::timestamp::parse_feed_time;

type ReadResult = Result<(), (Option<u32>, String)>;

/// A time as abuse.ch writes it, or a bare date (`2024-04-01`, midnight UTC).
fn time(text: Option<&str>) -> Option<i64> {
    let text = text?.trim();
    parse_feed_time(text).or_else(|| {
        (text.len() == 10)
            .then(|| parse_feed_time(&format!("{text} 00:00:00")))
            .flatten()
    })
}

fn field_text(value: Option<&str>) -> Box<str> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() && v != "None" && v != "null" => v.into(),
        _ => Box::default(),
    }
}

fn tags<'a>(tags: impl Iterator<Item = &'a str>) -> Box<[Box<str>]> {
    tags.map(str::trim)
        .filter(|t| !t.is_empty() && *t != "None")
        .map(Box::from)
        .collect()
}

/// A CSV row with its column names.
struct Row<'a> {
    columns: &'a [Cow<'a, str>],
    fields: &'a [Cow<'a, str>],
}

impl<'a> Row<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        self.columns
            .iter()
            .position(|c| c == name)
            .map(|i| &*self.fields[i])
    }
}

/// The rows of an abuse.ch CSV: `#` comments, a header (commented or not) naming the
/// columns, then quoted rows. A row with the wrong number of fields is counted, not fatal.
fn read_csv<'t>(
    text: &'t str,
    loader: &mut FeedLoader<'_>,
    header_marker: &str,
    mut columns: Vec<Cow<'t, str>>,
    mut row: impl FnMut(&Row<'_>, &mut FeedLoader<'_>),
) -> ReadResult {
    let mut fields = Vec::new();
    for (n, line) in super::lines(text).enumerate() {
        let line_no = Some(n as u32 + 1);
        let line = line.trim_end_matches('\r');
        let uncommented = line.strip_prefix('#').map(str::trim);
        let candidate = uncommented.unwrap_or(line);
        if candidate.contains(header_marker) && candidate.contains(',') {
            split_quoted_csv(candidate, &mut fields).map_err(|e| (line_no, e))?;
            columns = std::mem::take(&mut fields);
            continue;
        }
        if uncommented.is_some() || line.trim().is_empty() {
            continue;
        }
        if split_quoted_csv(line, &mut fields).is_err() || fields.len() != columns.len() {
            loader.skip_entry("malformed row", line);
            continue;
        }
        let current = Row {
            columns: &columns,
            fields: &fields,
        };
        row(&current, loader);
    }
    Ok(())
}

/// URLhaus `csv_recent` / `csv_online`: id,dateadded,url,url_status,last_online,threat,
/// tags,urlhaus_link,reporter.
pub(super) fn read_urlhaus_csv(text: &str, loader: &mut FeedLoader<'_>) -> ReadResult {
    let columns = [
        "id",
        "dateadded",
        "url",
        "url_status",
        "last_online",
        "threat",
        "tags",
        "urlhaus_link",
        "reporter",
    ];
    read_csv(
        text,
        loader,
        "dateadded",
        columns.iter().map(|&c| c.into()).collect(),
        |row, loader| {
            loader.add(FeedEntry {
                ioc_type: "url".into(),
                value: row.get("url").unwrap_or_default().into(),
                info: IndicatorInfo {
                    context: Context {
                        threat_type: field_text(row.get("threat")),
                        tags: tags(row.get("tags").unwrap_or_default().split(',')),
                        reference: field_text(row.get("urlhaus_link")),
                        ..Context::default()
                    },
                    id: row.get("id").unwrap_or_default().to_string(),
                    first_seen: time(row.get("dateadded")),
                    last_seen: time(row.get("last_online")),
                    ..IndicatorInfo::default()
                },
            });
        },
    )
}

#[derive(Deserialize)]
struct UrlhausAnswer {
    #[serde(default)]
    query_status: Option<String>,
    #[serde(default)]
    urls: Option<Vec<UrlhausUrl>>,
}

#[derive(Deserialize)]
struct UrlhausUrl {
    #[serde(default)]
    id: Option<serde_json::Value>,
    url: String,
    #[serde(default)]
    dateadded: Option<String>,
    #[serde(default)]
    last_online: Option<String>,
    #[serde(default)]
    threat: Option<String>,
    #[serde(default)]
    tags: Option<Vec<Option<String>>>,
    #[serde(default)]
    urlhaus_link: Option<String>,
}

/// The URLhaus API answer to `urls/recent`: `{"query_status":"ok","urls":[..]}`.
pub(super) fn read_urlhaus_json(text: &str, loader: &mut FeedLoader<'_>) -> ReadResult {
    let answer: UrlhausAnswer =
        serde_json::from_str(text).map_err(|e| (Some(e.line() as u32), e.to_string()))?;
    if let Some(status) = answer.query_status.as_deref()
        && status != "ok"
    {
        return Err((
            None,
            format!("the API answered query_status {status:?}, not \"ok\""),
        ));
    }
    for u in answer.urls.unwrap_or_default() {
        let id = match u.id {
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let tag_list = u.tags.unwrap_or_default();
        loader.add(FeedEntry {
            ioc_type: "url".into(),
            value: u.url.into(),
            info: IndicatorInfo {
                context: Context {
                    threat_type: field_text(u.threat.as_deref()),
                    tags: tags(tag_list.iter().flatten().map(String::as_str)),
                    reference: field_text(u.urlhaus_link.as_deref()),
                    ..Context::default()
                },
                id,
                first_seen: time(u.dateadded.as_deref()),
                last_seen: time(u.last_online.as_deref()),
                ..IndicatorInfo::default()
            },
        });
    }
    Ok(())
}

fn feodo_entry(
    ip: &str,
    port: &str,
    malware: Option<&str>,
    first: Option<&str>,
    last: Option<&str>,
) -> FeedEntry<'static> {
    let value = match (
        crate::normalize::parse_ip(ip),
        crate::normalize::parse_port(port),
    ) {
        (Some(addr), Some(port)) => format_ip_port(addr, port),
        _ => format!("{ip}:{port}"),
    };
    FeedEntry {
        ioc_type: "ip:port".into(),
        value: value.into(),
        info: IndicatorInfo {
            context: Context {
                threat_type: "botnet_cc".into(),
                malware_printable: field_text(malware),
                ..Context::default()
            },
            first_seen: time(first),
            last_seen: time(last),
            ..IndicatorInfo::default()
        },
    }
}

/// Feodo Tracker `ipblocklist.csv`: first_seen_utc,dst_ip,dst_port,c2_status,last_online,
/// malware; each row an ip:port botnet C2.
pub(super) fn read_feodo_csv(text: &str, loader: &mut FeedLoader<'_>) -> ReadResult {
    let columns = [
        "first_seen_utc",
        "dst_ip",
        "dst_port",
        "c2_status",
        "last_online",
        "malware",
    ];
    read_csv(
        text,
        loader,
        "dst_ip",
        columns.iter().map(|&c| c.into()).collect(),
        |row, loader| {
            loader.add(feodo_entry(
                row.get("dst_ip").unwrap_or_default(),
                row.get("dst_port").unwrap_or_default(),
                row.get("malware"),
                row.get("first_seen_utc"),
                row.get("last_online"),
            ));
        },
    )
}

#[derive(Deserialize)]
struct FeodoRow {
    ip_address: String,
    port: serde_json::Value,
    #[serde(default)]
    malware: Option<String>,
    #[serde(default)]
    first_seen: Option<String>,
    #[serde(default)]
    last_online: Option<String>,
}

/// Feodo Tracker `ipblocklist.json`: a list of `{"ip_address", "port", "malware", ..}`.
pub(super) fn read_feodo_json(text: &str, loader: &mut FeedLoader<'_>) -> ReadResult {
    let rows: Vec<FeodoRow> =
        serde_json::from_str(text).map_err(|e| (Some(e.line() as u32), e.to_string()))?;
    for row in rows {
        let port = match &row.port {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.clone(),
            _ => String::new(),
        };
        loader.add(feodo_entry(
            &row.ip_address,
            &port,
            row.malware.as_deref(),
            row.first_seen.as_deref(),
            row.last_online.as_deref(),
        ));
    }
    Ok(())
}
