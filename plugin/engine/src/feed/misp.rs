//! MISP: single events (`{"Event":..}`, as feed event files hold them), the REST
//! `{"response":[{"Event":..}]}` wrapper, and feeds (a `manifest.json` listing event uuids
//! with the event files next to it). The engine reads no files, so a host bundles a feed
//! with [`bundle_feed`]; a manifest given alone counts each of its events as missing.
//!
//! Only attributes marked `to_ids` are loaded unless the feed's settings say
//! `misp_all_attributes = true`; attributes inside objects count like flat ones.

use serde_json::{Map, Value};

use super::{FeedEntry, FeedLoader};
use crate::indicator::{Context, IndicatorInfo};
use crate::timestamp::parse_feed_time;

type ReadResult = Result<(), (Option<u32>, String)>;

/// The key of the bundle [`bundle_feed`] writes, by which the format is detected.
pub const MANIFEST_KEY: &str = "\"misp_manifest\"";

/// Bundles a MISP feed for loading: the manifest and every event file it lists that
/// `read_event` (given `<uuid>.json`) can read, as one JSON document. Events that cannot be
/// read are left out and counted as missing when the bundle loads.
pub fn bundle_feed(
    manifest: &[u8],
    mut read_event: impl FnMut(&str) -> Option<Vec<u8>>,
) -> Result<Vec<u8>, String> {
    let manifest: Map<String, Value> = serde_json::from_slice(manifest)
        .map_err(|e| format!("not a MISP manifest (line {}): {e}", e.line()))?;
    let mut out = String::from("{\"misp_manifest\":");
    out.push_str(&serde_json::to_string(&manifest).map_err(|e| e.to_string())?);
    out.push_str(",\"misp_events\":[");
    let mut first = true;
    for uuid in manifest.keys() {
        // A uuid is all the file name may be made of: no path separators.
        if uuid.contains(['/', '\\']) || uuid.contains("..") {
            continue;
        }
        let Some(bytes) = read_event(&format!("{uuid}.json")) else {
            continue;
        };
        let Ok(event) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&event.to_string());
    }
    out.push_str("]}");
    Ok(out.into_bytes())
}

/// Whether a JSON object looks like a feed manifest: uuid keys, each with `info`.
fn is_manifest(object: &Map<String, Value>) -> bool {
    !object.is_empty()
        && object
            .values()
            .all(|v| v.get("info").is_some() && v.get("Event").is_none())
}

pub(super) fn read(text: &str, loader: &mut FeedLoader<'_>) -> ReadResult {
    let document: Value =
        serde_json::from_str(text).map_err(|e| (Some(e.line() as u32), e.to_string()))?;
    let Value::Object(top) = document else {
        return Err((None, "a MISP document is a JSON object".into()));
    };
    if let Some(Value::Object(manifest)) = top.get("misp_manifest") {
        let events: Vec<&Value> = match top.get("misp_events") {
            Some(Value::Array(list)) => list.iter().collect(),
            _ => Vec::new(),
        };
        for uuid in manifest.keys() {
            let event = events
                .iter()
                .map(|e| e.get("Event").unwrap_or(e))
                .find(|e| e.get("uuid").and_then(Value::as_str) == Some(uuid.as_str()));
            match event {
                Some(event) => read_event(event, loader),
                None => loader.skip_entry("MISP event file missing", uuid),
            }
        }
        return Ok(());
    }
    if let Some(response) = top.get("response") {
        let events: Vec<&Value> = match response {
            Value::Array(list) => list.iter().collect(),
            other => vec![other],
        };
        for e in events {
            read_event(e.get("Event").unwrap_or(e), loader);
        }
        return Ok(());
    }
    if let Some(event) = top.get("Event") {
        read_event(event, loader);
        return Ok(());
    }
    if is_manifest(&top) {
        for uuid in top.keys() {
            loader.skip_entry("MISP event file missing", uuid);
        }
        return Ok(());
    }
    Err((
        None,
        "not a MISP event, REST response or feed manifest (no Event or response key)".into(),
    ))
}

fn string<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn read_event(event: &Value, loader: &mut FeedLoader<'_>) {
    let tags: Box<[Box<str>]> = event
        .get("Tag")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .map(Box::from)
        .collect();
    let uuid = string(event, "uuid");
    let info = string(event, "info");
    let context = Context {
        threat_type: String::new().into(),
        tags,
        reference: format!("MISP event {uuid}: {info}").into(),
        ..Context::default()
    };
    let flat = event.get("Attribute").and_then(Value::as_array);
    let in_objects = event
        .get("Object")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| o.get("Attribute").and_then(Value::as_array))
        .flatten();
    for attribute in flat.into_iter().flatten().chain(in_objects) {
        read_attribute(attribute, &context, loader);
    }
}

fn read_attribute(a: &Value, context: &Context, loader: &mut FeedLoader<'_>) {
    let kind = string(a, "type");
    let value = string(a, "value");
    if a.get("deleted").and_then(Value::as_bool) == Some(true) {
        loader.skip_entry("MISP attribute deleted", value);
        return;
    }
    let to_ids = match a.get("to_ids") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "1" || s == "true",
        Some(Value::Number(n)) => n.as_u64() == Some(1),
        _ => false,
    };
    if !to_ids && !loader.misp_all_attributes() {
        loader.skip_entry("MISP attribute not marked to_ids", value);
        return;
    }
    let info = IndicatorInfo {
        context: context.clone(),
        id: string(a, "uuid").to_string(),
        first_seen: a
            .get("first_seen")
            .and_then(Value::as_str)
            .and_then(parse_feed_time),
        last_seen: a
            .get("last_seen")
            .and_then(Value::as_str)
            .and_then(parse_feed_time),
        ..IndicatorInfo::default()
    };
    let entry = |ioc_type: &str, value: String| FeedEntry {
        ioc_type: ioc_type.to_string().into(),
        value: value.into(),
        info: info.clone(),
    };
    // Composite types: `left|right`.
    let split = value.split_once('|');
    match (kind, split) {
        ("ip-dst|port" | "ip-src|port", Some((ip, port))) => {
            let value = if ip.contains(':') {
                format!("[{ip}]:{port}")
            } else {
                format!("{ip}:{port}")
            };
            loader.add(entry("ip:port", value));
        }
        ("domain|ip", Some((domain, ip))) => {
            loader.add(entry("domain", domain.to_string()));
            loader.add(entry("ip", ip.to_string()));
        }
        ("hostname|port", Some((host, _port))) => loader.add(entry("hostname", host.to_string())),
        (
            "filename|md5" | "filename|sha1" | "filename|sha256" | "malware-sample",
            Some((_name, hash)),
        ) => {
            let hash_kind = match hash.trim().len() {
                32 => "md5",
                40 => "sha1",
                _ => "sha256",
            };
            loader.add(entry(hash_kind, hash.to_string()));
        }
        _ => loader.add(entry(kind, value.to_string())),
    }
}
