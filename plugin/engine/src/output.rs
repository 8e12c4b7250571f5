//! The enrichment a hit adds to its record, named after the threat fields of Sentinel's
//! ASIM schemas where one fits (`ThreatIpAddr`, `ThreatField`, `ThreatName`, ..), with the
//! fields ASIM lacks added (`SourceField`, `MatchedValue`, `Feed`, `Matches`, ..).
//!
//! The record itself is never re-serialised: the enrichment is written before its closing
//! brace. A name the record already has is never overwritten; the enrichment then goes
//! under the first free fallback name (`iocsieve_1`, ..).

use std::io::Write;

use crate::detector::OutputPlacement;
use crate::engine::{MatchReport, Verdict};
use crate::indicator::Kind;
use crate::record::ScannedRecord;
use crate::timestamp::format_rfc3339;

/// The fields of the enrichment, in the order they are written.
pub const FLAT_FIELD_NAMES: [&str; 25] = [
    "Verdict",
    "Profile",
    "ThreatField",
    "ThreatIpAddr",
    "ThreatName",
    "ThreatCategory",
    "ThreatConfidence",
    "ThreatOriginalConfidence",
    "ThreatIsActive",
    "ThreatFirstReportedTime",
    "ThreatLastReportedTime",
    "ThreatId",
    "SourceField",
    "MatchedValue",
    "Indicator",
    "IndicatorKind",
    "AddressOnly",
    "Feed",
    "MalwareFamily",
    "MalwareAlias",
    "Tags",
    "Reference",
    "Matches",
    "SuppressedBy",
    "SuppressionReason",
];

/// The names tried in turn for an output field, so none overwrites the record's own.
pub fn fallback_names(name: &str) -> [String; 4] {
    [
        name.to_string(),
        format!("{name}_1"),
        format!("{name}_2"),
        format!("{name}_3"),
    ]
}

/// Writes `record` with the enrichment of `verdict` into `out`. Returns whether a name had
/// to fall back because the record already used it.
pub(crate) fn write_enriched(
    out: &mut Vec<u8>,
    record: &[u8],
    scanned: &ScannedRecord<'_>,
    placement: &OutputPlacement,
    is_present: &dyn Fn(&str) -> bool,
    profile: &str,
    verdict: &Verdict,
) -> bool {
    out.clear();
    out.extend_from_slice(&record[..scanned.closing_brace()]);
    let mut collided = false;
    let mut first = scanned.top_level_keys() == 0;
    let mut field = |out: &mut Vec<u8>, name: &str, write_value: &dyn Fn(&mut Vec<u8>)| {
        if !first {
            out.push(b',');
        }
        first = false;
        write_json_string(out, name);
        out.push(b':');
        write_value(out);
    };

    match placement {
        OutputPlacement::Nested { names } => {
            let free = names.iter().position(|(name, _)| !is_present(name));
            collided = free != Some(0);
            // With every fallback taken, the last one is written as a duplicate key rather
            // than losing the hit; JSON readers keep the last value.
            let (name, _) = &names[free.unwrap_or(names.len() - 1)];
            field(out, name, &|out| {
                out.push(b'{');
                let mut inner_first = true;
                write_fields(profile, verdict, &mut |name, value| {
                    if !inner_first {
                        out.push(b',');
                    }
                    inner_first = false;
                    write_json_string(out, name);
                    out.push(b':');
                    value(out);
                });
                out.push(b'}');
            });
        }
        OutputPlacement::Flat { prefix } => {
            write_fields(profile, verdict, &mut |name, value| {
                let candidates = fallback_names(&format!("{prefix}{name}"));
                let free = candidates.iter().position(|c| !is_present(c));
                collided |= free != Some(0);
                field(
                    out,
                    &candidates[free.unwrap_or(candidates.len() - 1)],
                    value,
                );
            });
        }
    }
    out.push(b'}');
    collided
}

type ValueWriter<'a> = &'a dyn Fn(&mut Vec<u8>);

/// Calls `emit` for each enrichment field of `verdict`, in [`FLAT_FIELD_NAMES`] order;
/// absent values (no last-seen time, no reference) are left out.
fn write_fields(profile: &str, verdict: &Verdict, emit: &mut dyn FnMut(&str, ValueWriter<'_>)) {
    let (matches, suppression) = match verdict {
        Verdict::Hit(m) => (m, None),
        Verdict::Suppressed {
            matches,
            exclusion,
            reason,
        } => (matches, Some((exclusion, reason))),
        Verdict::Miss | Verdict::Unreadable(_) => return,
    };
    let Some(top) = matches.first() else { return };
    let text = |s: &str| {
        let s = s.to_string();
        move |out: &mut Vec<u8>| write_json_string(out, &s)
    };

    emit(
        "Verdict",
        &text(if suppression.is_some() {
            "suppressed"
        } else {
            "hit"
        }),
    );
    if !profile.is_empty() {
        emit("Profile", &text(profile));
    }
    emit("ThreatField", &text(&top.role));
    if matches!(top.kind, Kind::Ipv4 | Kind::Ipv6 | Kind::IpPort) {
        let addr = top
            .indicator
            .rsplit_once(':')
            .filter(|_| top.kind == Kind::IpPort);
        let addr = addr.map_or(top.indicator.as_str(), |(a, _)| a);
        emit(
            "ThreatIpAddr",
            &text(addr.trim_start_matches('[').trim_end_matches(']')),
        );
    }
    if matches!(top.kind, Kind::Ipv4Cidr | Kind::Ipv6Cidr) {
        // A network matched: the threat address is the one the record holds.
        emit("ThreatIpAddr", &text(&top.observed));
    }
    if !top.malware_printable.is_empty() {
        emit("ThreatName", &text(&top.malware_printable));
    }
    if !top.threat_type.is_empty() {
        emit("ThreatCategory", &text(&top.threat_type));
    }
    if let Some(c) = top.effective_confidence() {
        emit("ThreatConfidence", &move |out: &mut Vec<u8>| {
            write!(out, "{c}").expect("vec write")
        });
    }
    if let Some(c) = top.confidence {
        emit("ThreatOriginalConfidence", &text(&c.to_string()));
    }
    emit("ThreatIsActive", &|out: &mut Vec<u8>| {
        out.extend_from_slice(b"true")
    });
    if let Some(t) = top.first_seen {
        emit("ThreatFirstReportedTime", &text(&format_rfc3339(t)));
    }
    if let Some(t) = top.last_seen {
        emit("ThreatLastReportedTime", &text(&format_rfc3339(t)));
    }
    if !top.id.is_empty() {
        emit("ThreatId", &text(&top.id));
    }
    emit("SourceField", &text(&top.field));
    emit("MatchedValue", &text(&top.observed));
    emit("Indicator", &text(&top.indicator));
    emit("IndicatorKind", &text(top.kind.name()));
    let address_only = top.address_only;
    emit("AddressOnly", &move |out: &mut Vec<u8>| {
        out.extend_from_slice(if address_only { b"true" } else { b"false" })
    });
    emit("Feed", &text(&top.feed));
    if !top.malware.is_empty() {
        emit("MalwareFamily", &text(&top.malware));
    }
    if !top.malware_alias.is_empty() {
        emit("MalwareAlias", &text(&top.malware_alias));
    }
    emit("Tags", &|out: &mut Vec<u8>| {
        write_string_list(out, &top.tags)
    });
    if !top.reference.is_empty() {
        emit("Reference", &text(&top.reference));
    }
    emit("Matches", &|out: &mut Vec<u8>| write_matches(out, matches));
    if let Some((exclusion, reason)) = suppression {
        emit("SuppressedBy", &text(exclusion));
        emit("SuppressionReason", &text(reason));
    }
}

/// Every match, so a record that hits several indicators lists them all.
fn write_matches(out: &mut Vec<u8>, matches: &[MatchReport]) {
    out.push(b'[');
    for (i, m) in matches.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"Indicator\":");
        write_json_string(out, &m.indicator);
        out.extend_from_slice(b",\"IndicatorKind\":");
        write_json_string(out, m.kind.name());
        out.extend_from_slice(b",\"SourceField\":");
        write_json_string(out, &m.field);
        out.extend_from_slice(b",\"ThreatField\":");
        write_json_string(out, &m.role);
        out.extend_from_slice(b",\"MatchedValue\":");
        write_json_string(out, &m.observed);
        out.extend_from_slice(b",\"AddressOnly\":");
        out.extend_from_slice(if m.address_only { b"true" } else { b"false" });
        out.extend_from_slice(b",\"Feed\":");
        write_json_string(out, &m.feed);
        out.extend_from_slice(b",\"ThreatId\":");
        write_json_string(out, &m.id);
        out.extend_from_slice(b",\"ThreatName\":");
        write_json_string(out, &m.malware_printable);
        out.extend_from_slice(b",\"ThreatCategory\":");
        write_json_string(out, &m.threat_type);
        if let Some(c) = m.effective_confidence() {
            write!(out, ",\"ThreatConfidence\":{c}").expect("vec write");
        }
        out.push(b'}');
    }
    out.push(b']');
}

fn write_string_list(out: &mut Vec<u8>, items: &[String]) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_string(out, item);
    }
    out.push(b']');
}

/// Writes `s` as a JSON string, escaped.
fn write_json_string(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(out, s).expect("writing a string to a Vec cannot fail");
}
