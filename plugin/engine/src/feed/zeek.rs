//! Zeek intel files: a `#fields` header naming tab-separated columns (`indicator`,
//! `indicator_type`, `meta.source`, `meta.desc`, `meta.url`), `-` for nothing.

use super::{FeedEntry, FeedLoader};
use crate::indicator::{Context, IndicatorInfo};

type ReadResult = Result<(), (Option<u32>, String)>;

/// The feed type an `Intel::` type stands for; hashes are told apart by length.
fn ioc_type(intel_type: &str, value: &str) -> String {
    match intel_type {
        "Intel::ADDR" => "ip".into(),
        "Intel::SUBNET" => "cidr".into(),
        "Intel::DOMAIN" => "domain".into(),
        "Intel::URL" => "url".into(),
        "Intel::FILE_HASH" => match value.trim().len() {
            32 => "md5".into(),
            40 => "sha1".into(),
            64 => "sha256".into(),
            _ => "file_hash".into(),
        },
        other => other.to_string(),
    }
}

pub(super) fn read(text: &str, loader: &mut FeedLoader<'_>) -> ReadResult {
    let mut columns: Option<Vec<&str>> = None;
    for (n, line) in super::lines(text).enumerate() {
        let line = line.trim_end_matches('\r');
        if let Some(fields) = line.strip_prefix("#fields") {
            columns = Some(fields.trim_start_matches(['\t', ' ']).split('\t').collect());
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some(columns) = &columns else {
            return Err((Some(n as u32 + 1), "a row before the #fields header".into()));
        };
        let fields: Vec<&str> = line.split('\t').collect();
        let get = |name: &str| {
            columns
                .iter()
                .position(|c| *c == name)
                .and_then(|i| fields.get(i).copied())
                .filter(|v| !v.is_empty() && *v != "-")
        };
        let (Some(value), Some(kind)) = (get("indicator"), get("indicator_type")) else {
            loader.skip_entry("row without indicator or indicator_type", line);
            continue;
        };
        let tags = [get("meta.source"), get("meta.desc")]
            .into_iter()
            .flatten()
            .map(Box::from)
            .collect();
        loader.add(FeedEntry {
            ioc_type: ioc_type(kind, value).into(),
            value: value.into(),
            info: IndicatorInfo {
                context: Context {
                    tags,
                    reference: get("meta.url").unwrap_or_default().into(),
                    ..Context::default()
                },
                ..IndicatorInfo::default()
            },
        });
    }
    Ok(())
}
