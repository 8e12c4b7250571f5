//! Feeds: reading indicator files into an [`IndicatorSet`].
//!
//! Each format module turns its entries into [`FeedEntry`] values (the feed's own type name,
//! its value and the metadata), and [`FeedLoader`] normalises them into indicators, counting
//! every entry by what became of it: loaded by kind, or skipped with a reason. Nothing is
//! dropped without a count.

mod abusech;
pub mod guard;
pub mod misp;
mod stix;
mod threatfox;
mod zeek;

use std::borrow::Cow;
use std::collections::BTreeMap;

use ipnet::IpNet;

pub use guard::Guard;

use crate::indicator::{EntryId, IndicatorInfo, IndicatorSet, IndicatorValue, Kind};
use crate::normalize::{
    NormalizedUrl, canonical_ip, normalize_domain, normalize_url, parse_hex, parse_ip,
    parse_ip_port, refang,
};
use crate::settings::{FeedConfig, MinConfidenceConfig};

/// How many examples each skip reason keeps.
pub const EXAMPLES_PER_REASON: usize = 3;

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
    /// URLhaus CSV dump, with its `#` banner.
    UrlhausCsv,
    /// URLhaus API answer: `{"urls":[..]}`.
    UrlhausJson,
    /// Feodo Tracker blocklist as CSV, with its `#` banner.
    FeodoCsv,
    /// Feodo Tracker blocklist as JSON: a list of `{"ip_address", "port", ..}`.
    FeodoJson,
    /// MISP: one event (`{"Event":..}`), the REST `{"response":[..]}` wrapper, or a feed
    /// manifest with its event files (see [`misp::bundle_feed`]).
    Misp,
    /// A STIX 2.0 or 2.1 bundle: its indicator patterns.
    Stix,
    /// A Zeek intel file: `#fields` header and tab-separated rows.
    ZeekIntel,
    /// One value per line, of the kind named (`list:ip`, `list:domain`, ..).
    List(ListKind),
}

/// The kind a plain list declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Addresses, or networks written `a.b.c.d/n`.
    Ip,
    IpPort,
    Cidr,
    Domain,
    Url,
    Md5,
    Sha1,
    Sha256,
}

impl ListKind {
    const ALL: [ListKind; 8] = [
        ListKind::Ip,
        ListKind::IpPort,
        ListKind::Cidr,
        ListKind::Domain,
        ListKind::Url,
        ListKind::Md5,
        ListKind::Sha1,
        ListKind::Sha256,
    ];

    /// The type name entries of the list get.
    fn ioc_type(self) -> &'static str {
        match self {
            ListKind::Ip => "ip",
            ListKind::IpPort => "ip:port",
            ListKind::Cidr => "cidr",
            ListKind::Domain => "domain",
            ListKind::Url => "url",
            ListKind::Md5 => "md5",
            ListKind::Sha1 => "sha1",
            ListKind::Sha256 => "sha256",
        }
    }
}

impl FeedFormat {
    /// The format's name, as settings and the command line write it.
    pub fn name(self) -> &'static str {
        match self {
            FeedFormat::Auto => "auto",
            FeedFormat::ThreatfoxJson => "threatfox-json",
            FeedFormat::ThreatfoxCsv => "threatfox-csv",
            FeedFormat::ThreatfoxApi => "threatfox-api",
            FeedFormat::UrlhausCsv => "urlhaus-csv",
            FeedFormat::UrlhausJson => "urlhaus-json",
            FeedFormat::FeodoCsv => "feodo-csv",
            FeedFormat::FeodoJson => "feodo-json",
            FeedFormat::Misp => "misp",
            FeedFormat::Stix => "stix",
            FeedFormat::ZeekIntel => "zeek-intel",
            FeedFormat::List(ListKind::Ip) => "list:ip",
            FeedFormat::List(ListKind::IpPort) => "list:ip:port",
            FeedFormat::List(ListKind::Cidr) => "list:cidr",
            FeedFormat::List(ListKind::Domain) => "list:domain",
            FeedFormat::List(ListKind::Url) => "list:url",
            FeedFormat::List(ListKind::Md5) => "list:md5",
            FeedFormat::List(ListKind::Sha1) => "list:sha1",
            FeedFormat::List(ListKind::Sha256) => "list:sha256",
        }
    }

    /// Every format, `auto` first.
    pub fn all() -> impl Iterator<Item = FeedFormat> {
        [
            Self::Auto,
            Self::ThreatfoxJson,
            Self::ThreatfoxCsv,
            Self::ThreatfoxApi,
            Self::UrlhausCsv,
            Self::UrlhausJson,
            Self::FeodoCsv,
            Self::FeodoJson,
            Self::Misp,
            Self::Stix,
            Self::ZeekIntel,
        ]
        .into_iter()
        .chain(ListKind::ALL.into_iter().map(FeedFormat::List))
    }

    /// Reads a format name.
    pub fn from_name(name: &str) -> Option<FeedFormat> {
        Self::all().find(|f| f.name() == name)
    }
}

/// A feed to load: its name (reported with every hit), its format and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct FeedInput<'a> {
    pub name: &'a str,
    pub format: FeedFormat,
    pub content: &'a [u8],
}

impl<'a> FeedInput<'a> {
    /// A feed whose format is detected from its content.
    pub fn detected(name: &'a str, content: &'a [u8]) -> FeedInput<'a> {
        FeedInput {
            name,
            format: FeedFormat::Auto,
            content,
        }
    }
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
    /// A few of the values skipped for each reason (up to [`EXAMPLES_PER_REASON`]), so a
    /// warning can name them.
    pub examples: BTreeMap<String, Vec<String>>,
}

impl FeedStats {
    /// How many indicators of `kind` this feed loaded.
    pub fn loaded_of(&self, kind: Kind) -> u64 {
        self.loaded.get(kind.name()).copied().unwrap_or(0)
    }
}

/// One entry of a feed, as its format module read it.
/// Type and value are borrowed from the feed's text where the format allows: a feed of a
/// million entries would otherwise make two million short strings only to drop them.
#[derive(Debug, Clone, Default)]
pub struct FeedEntry<'a> {
    /// The feed's type name (`ip:port`, `sha256_hash`, `domain`).
    pub ioc_type: Cow<'a, str>,
    pub value: Cow<'a, str>,
    pub info: IndicatorInfo,
}

/// What became of one feed entry: loaded as an indicator of a kind, or skipped for a reason.
pub type EntryOutcome<'r> = Result<Kind, &'r str>;

/// Sees every entry a feed has, with what became of it (see [`observe_feed`]).
pub type EntryObserver<'o> = dyn FnMut(&FeedEntry<'_>, EntryOutcome<'_>) + 'o;

/// What a feed is loaded with, beside its bytes: its options, the minimum confidences and
/// the guard.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub feed: FeedConfig,
    pub min_confidence: MinConfidenceConfig,
    pub guard: Guard,
}

/// A value parsed from a feed entry.
enum Parsed {
    Value(IndicatorValue),
    Domain(String),
    Url(NormalizedUrl),
}

/// Normalises feed entries into an indicator set and counts what became of each.
pub struct FeedLoader<'s> {
    set: &'s mut IndicatorSet,
    stats: FeedStats,
    feed_index: u16,
    observer: Option<&'s mut EntryObserver<'s>>,
    /// The reason the entry being added was skipped, kept only while observing.
    last_skip: Option<String>,
    observing: bool,
    options: &'s LoadOptions,
}

impl<'s> FeedLoader<'s> {
    fn new(
        set: &'s mut IndicatorSet,
        name: &str,
        feed_index: u16,
        options: &'s LoadOptions,
    ) -> Self {
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
            options,
        }
    }

    /// Whether MISP attributes without `to_ids` are loaded too.
    pub fn misp_all_attributes(&self) -> bool {
        self.options.feed.misp_all_attributes
    }

    /// Adds one entry (see [`FeedLoader::add_entry`]), telling the observer, if any, what
    /// became of it.
    pub fn add(&mut self, entry: FeedEntry<'_>) {
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
    /// parsed into their binary form, domains and URLs into their canonical text), then
    /// checked against the guard and the minimum confidence.
    fn add_entry(&mut self, mut entry: FeedEntry<'_>) {
        self.stats.entries += 1;
        let value = refang(&entry.value);
        if value.is_empty() {
            self.skip("empty value");
            return;
        }
        let ioc_type = entry.ioc_type.trim();
        if ioc_type.is_empty() {
            self.skip_with("entry without a type", &value);
            return;
        }
        let lowered;
        let ioc_type = if ioc_type.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = ioc_type.to_ascii_lowercase();
            lowered.as_str()
        } else {
            ioc_type
        };
        let parsed = match ioc_type {
            "ip:port" => {
                parse_ip_port(&value).map(|(a, p)| Parsed::Value(IndicatorValue::IpPort(a, p)))
            }
            "ip" | "ipv4" | "ipv6" | "ip-dst" | "ip-src" | "ipv4-addr" | "ipv6-addr" | "addr"
            | "cidr" | "subnet" | "ip-net" => parse_ip_or_net(&value).map(Parsed::Value),
            "md5_hash" | "md5" => parse_hex(&value).map(|h| Parsed::Value(IndicatorValue::Md5(h))),
            "sha1_hash" | "sha1" => {
                parse_hex(&value).map(|h| Parsed::Value(IndicatorValue::Sha1(h)))
            }
            "sha256_hash" | "sha256" => {
                parse_hex(&value).map(|h| Parsed::Value(IndicatorValue::Sha256(h)))
            }
            "domain" | "hostname" | "domain-name" | "fqdn" => {
                normalize_domain(&value).map(Parsed::Domain)
            }
            "url" => normalize_url(&value).map(Parsed::Url),
            other => {
                self.skip_with(&format!("unsupported type: {other}"), &value);
                return;
            }
        };
        let Some(parsed) = parsed else {
            self.skip_with(
                &format!("unreadable {} value", entry.ioc_type.trim()),
                &value,
            );
            return;
        };
        let kind = match &parsed {
            Parsed::Value(v) => v.kind(),
            Parsed::Domain(_) => Kind::Domain,
            Parsed::Url(_) => Kind::Url,
        };
        let guard = &self.options.guard;
        let refused = match &parsed {
            Parsed::Value(v) => guard.check_value(v),
            Parsed::Domain(d) => guard.check_domain(d),
            Parsed::Url(url) => guard.check_url_host(url.host()),
        };
        if let Some(reason) = refused {
            self.skip_with(&reason, &value);
            return;
        }
        if let Some(min) = self.min_confidence(kind)
            && entry.info.confidence.is_some_and(|c| c < min)
        {
            self.skip_with(&format!("below minimum confidence {min}"), &value);
            return;
        }
        entry.info.context.feed = self.feed_index;
        if let Some(days) = self.options.feed.ttl_days
            && let Some(seen) = entry.info.last_seen.or(entry.info.first_seen)
        {
            let until = seen.saturating_add((days * 86_400.0) as i64);
            entry.info.valid_until = Some(entry.info.valid_until.map_or(until, |u| u.min(until)));
        }
        let host = match &parsed {
            Parsed::Url(url) if self.options.feed.url_hosts => Some(url.host().to_string()),
            _ => None,
        };
        let info = if host.is_some() {
            entry.info.clone()
        } else {
            IndicatorInfo::default()
        };
        let inserted = match parsed {
            Parsed::Value(v) => self.set.insert(v, entry.info),
            Parsed::Domain(name) => self.set.insert_text(Kind::Domain, &name, entry.info),
            Parsed::Url(url) => self.set.insert_text(Kind::Url, &url.text, entry.info),
        };
        if inserted {
            // Counted without a new key string for each entry: a feed has a few kinds.
            match self.stats.loaded.get_mut(kind.name()) {
                Some(n) => *n += 1,
                None => {
                    self.stats.loaded.insert(kind.name().to_string(), 1);
                }
            }
        } else {
            self.skip_with("duplicate entry", &value);
        }
        if let Some(host) = host {
            self.add_url_host(&host, info);
        }
    }

    /// The host of a URL indicator, loaded on its own when the feed asks for it; counted
    /// under `<kind> (url host)`.
    fn add_url_host(&mut self, host: &str, info: IndicatorInfo) {
        let guard = &self.options.guard;
        let (kind, inserted) = if let Some(addr) = parse_ip(host) {
            let value = IndicatorValue::Ip(addr);
            if let Some(reason) = guard.check_value(&value) {
                self.skip_with(&format!("url host: {reason}"), host);
                return;
            }
            (value.kind(), self.set.insert(value, info))
        } else {
            if let Some(reason) = guard.check_domain(host) {
                self.skip_with(&format!("url host: {reason}"), host);
                return;
            }
            (Kind::Domain, self.set.insert_text(Kind::Domain, host, info))
        };
        if inserted {
            *self
                .stats
                .loaded
                .entry(format!("{} (url host)", kind.name()))
                .or_default() += 1;
        }
    }

    fn min_confidence(&self, kind: Kind) -> Option<u8> {
        let global = &self.options.min_confidence;
        let by_kind = match kind.confidence_group() {
            "ip" => global.ip,
            "domain" => global.domain,
            "url" => global.url,
            _ => global.hash,
        };
        by_kind.max(self.options.feed.min_confidence)
    }

    /// Counts an entry that was not loaded.
    pub fn skip(&mut self, reason: &str) {
        *self.stats.skipped.entry(reason.to_string()).or_default() += 1;
        if self.observing {
            self.last_skip = Some(reason.to_string());
        }
    }

    /// Counts an entry that was not loaded and keeps its value as an example of `reason`.
    pub fn skip_with(&mut self, reason: &str, value: &str) {
        self.skip(reason);
        let examples = self.stats.examples.entry(reason.to_string()).or_default();
        if examples.len() < EXAMPLES_PER_REASON {
            examples.push(value.chars().take(200).collect());
        }
    }

    /// Counts an entry read from the feed that was skipped before it became a value.
    pub fn skip_entry(&mut self, reason: &str, example: &str) {
        self.stats.entries += 1;
        self.skip_with(reason, example);
    }
}

/// Parses an address, or a network (`a.b.c.d/n`); a network of one address is that
/// address, host bits of a network are cleared.
pub fn parse_ip_or_net(value: &str) -> Option<IndicatorValue> {
    if !value.contains('/') {
        return parse_ip(value).map(IndicatorValue::Ip);
    }
    let net: IpNet = value.trim().parse().ok()?;
    let net = net.trunc();
    if net.prefix_len() == net.max_prefix_len() {
        return Some(IndicatorValue::Ip(canonical_ip(net.addr())));
    }
    Some(IndicatorValue::Net(net))
}

/// Reads `input` into `set` with the default options; `feed_index` is the feed's position
/// in the detector's list.
pub fn load_feed(
    input: &FeedInput<'_>,
    feed_index: u16,
    set: &mut IndicatorSet,
) -> Result<FeedStats, FeedError> {
    load_feed_with(input, feed_index, set, &LoadOptions::default())
}

/// Reads `input` into `set` with `options`.
pub fn load_feed_with(
    input: &FeedInput<'_>,
    feed_index: u16,
    set: &mut IndicatorSet,
    options: &LoadOptions,
) -> Result<FeedStats, FeedError> {
    read_feed(input, feed_index, set, options, None)
}

/// Reads `input` as [`load_feed`] does, calling `observer` with every entry and what
/// became of it, so a report can count the entries the engine did not load (a kind it does
/// not support, an unreadable value) by their metadata.
pub fn observe_feed(
    input: &FeedInput<'_>,
    observer: &mut EntryObserver<'_>,
) -> Result<FeedStats, FeedError> {
    let options = LoadOptions::default();
    let mut set = IndicatorSet::default();
    read_feed(input, 0, &mut set, &options, Some(observer))
}

fn read_feed<'s>(
    input: &FeedInput<'_>,
    feed_index: u16,
    set: &'s mut IndicatorSet,
    options: &'s LoadOptions,
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
    // A byte order mark is no part of any format.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let configured =
        match options.feed.format.as_deref() {
            Some(name) => Some(FeedFormat::from_name(name).ok_or_else(|| {
                error(None, format!("feeds.format: unknown feed format {name:?}"))
            })?),
            None => None,
        };
    let format = match (input.format, configured) {
        (FeedFormat::Auto, Some(f)) => f,
        (FeedFormat::Auto, None) => detect_format(text).ok_or_else(|| {
            error(
                None,
                "format not recognised (expected ThreatFox, URLhaus, Feodo Tracker, MISP, \
                 STIX 2 or Zeek intel); name it explicitly, or set the kind of a plain list \
                 with format = \"list:<kind>\" in its [[feeds]] settings"
                    .into(),
            )
        })?,
        (given, _) => given,
    };
    let mut loader = FeedLoader::new(set, input.name, feed_index, options);
    loader.observing = observer.is_some();
    loader.observer = observer;
    loader.stats.format = format.name().to_string();
    let result = match format {
        FeedFormat::ThreatfoxJson => threatfox::read_export_json(text, &mut loader),
        FeedFormat::ThreatfoxCsv => threatfox::read_export_csv(text, &mut loader),
        FeedFormat::ThreatfoxApi => threatfox::read_api(text, &mut loader),
        FeedFormat::UrlhausCsv => abusech::read_urlhaus_csv(text, &mut loader),
        FeedFormat::UrlhausJson => abusech::read_urlhaus_json(text, &mut loader),
        FeedFormat::FeodoCsv => abusech::read_feodo_csv(text, &mut loader),
        FeedFormat::FeodoJson => abusech::read_feodo_json(text, &mut loader),
        FeedFormat::Misp => misp::read(text, &mut loader),
        FeedFormat::Stix => stix::read(text, &mut loader),
        FeedFormat::ZeekIntel => zeek::read(text, &mut loader),
        FeedFormat::List(kind) => read_list(text, kind, &mut loader),
        FeedFormat::Auto => unreachable!("detected above"),
    };
    result.map_err(|(line, message)| error(line, message))?;
    if loader.stats.entries == 0 {
        return Err(error(None, "the feed has no entries".into()));
    }
    Ok(loader.stats)
}

/// One value per line; `#`, `;` and `//` start comments, the first word of a line is
/// the value.
fn read_list(
    text: &str,
    kind: ListKind,
    loader: &mut FeedLoader<'_>,
) -> Result<(), (Option<u32>, String)> {
    for line in lines(text) {
        let line = line.trim();
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with(';')
            || line.starts_with("//")
        {
            continue;
        }
        let value = line.split_whitespace().next().unwrap_or_default();
        loader.add(FeedEntry {
            ioc_type: kind.ioc_type().into(),
            value: value.into(),
            info: IndicatorInfo::default(),
        });
    }
    Ok(())
}

/// Detects a feed's format from its first bytes. Plain lists are never guessed: their
/// kind is declared.
pub fn detect_format(text: &str) -> Option<FeedFormat> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let head = &trimmed[..floor_char_boundary(trimmed, 8192)];
    if trimmed.starts_with('#') || trimmed.starts_with('"') {
        if head.contains("ioc_value") {
            return Some(FeedFormat::ThreatfoxCsv);
        }
        if head
            .lines()
            .any(|l| l.starts_with("#fields") && l.contains("indicator_type"))
        {
            return Some(FeedFormat::ZeekIntel);
        }
        if head.contains("dst_ip") {
            return Some(FeedFormat::FeodoCsv);
        }
        if head.contains("URLhaus") || head.contains("id,dateadded,url") {
            return Some(FeedFormat::UrlhausCsv);
        }
        return None;
    }
    if trimmed.starts_with('[') {
        return head
            .contains("\"ip_address\"")
            .then_some(FeedFormat::FeodoJson);
    }
    if trimmed.starts_with('{') {
        if head.contains("\"bundle--") || head.contains("\"spec_version\"") {
            return Some(FeedFormat::Stix);
        }
        if head.contains("\"Event\"")
            || head.contains("\"response\"")
            || head.contains(misp::MANIFEST_KEY)
            || (head.contains("\"Orgc\"") && head.contains("\"info\""))
        {
            return Some(FeedFormat::Misp);
        }
        if head.contains("\"urls\"") {
            return Some(FeedFormat::UrlhausJson);
        }
        if has_key(head, "query_status") || has_key(head, "ioc") {
            return Some(FeedFormat::ThreatfoxApi);
        }
        if has_key(head, "ioc_value") {
            return Some(FeedFormat::ThreatfoxJson);
        }
    }
    None
}

/// Whether `name` appears in the JSON text `head` as a key (quoted, then a colon), not
/// only as a value: a tag or reporter spelled `ioc` says nothing of the format.
fn has_key(head: &str, name: &str) -> bool {
    let quoted = format!("\"{name}\"");
    head.match_indices(&quoted)
        .any(|(at, _)| head[at + quoted.len()..].trim_start().starts_with(':'))
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// The lines of a feed, split as `str::lines` splits them (at `\n`, with a `\r` before it
/// dropped), found with `memchr`: exports run to hundreds of megabytes.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, next) = match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, ""),
        };
        rest = next;
        Some(line.strip_suffix('\r').unwrap_or(line))
    })
}

/// Splits a line of a ThreatFox-style CSV export: fields quoted with `"` (a doubled `""`
/// inside), separated by `,` with optional spaces. Hand-written because the `", "`
/// separator defeats strict CSV readers (a space before a quote makes the quote literal).
pub(crate) fn split_quoted_csv<'a>(
    line: &'a str,
    fields: &mut Vec<Cow<'a, str>>,
) -> Result<(), String> {
    // Fields are slices of the line; only one with a doubled quote inside is copied.
    fields.clear();
    let bytes = line.as_bytes();
    let mut i = 0;
    loop {
        while bytes.get(i) == Some(&b' ') {
            i += 1;
        }
        if bytes.get(i) == Some(&b'"') {
            i += 1;
            // Where the text not yet copied starts; a doubled quote stands for one.
            let mut segment = i;
            let mut unquoted: Option<String> = None;
            let field = loop {
                let Some(rel) = memchr::memchr(b'"', &bytes[i..]) else {
                    return Err("unterminated quoted field".into());
                };
                let quote = i + rel;
                if bytes.get(quote + 1) == Some(&b'"') {
                    unquoted
                        .get_or_insert_with(String::new)
                        .push_str(&line[segment..=quote]);
                    i = quote + 2;
                    segment = i;
                    continue;
                }
                i = quote + 1;
                break match unquoted {
                    None => Cow::Borrowed(&line[segment..quote]),
                    Some(mut text) => {
                        text.push_str(&line[segment..quote]);
                        Cow::Owned(text)
                    }
                };
            };
            fields.push(field);
            while bytes.get(i) == Some(&b' ') {
                i += 1;
            }
        } else {
            let end = memchr::memchr(b',', &bytes[i..]).map_or(line.len(), |rel| i + rel);
            fields.push(Cow::Borrowed(line[i..end].trim()));
            i = end;
        }
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
    fn lines_split_as_the_standard_library_splits_them() {
        for text in ["", "a", "a\n", "a\r\nb", "\n\nx\r\n", "a\rb\n", "a\n\r\n"] {
            assert_eq!(
                lines(text).collect::<Vec<_>>(),
                text.lines().collect::<Vec<_>>(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn splits_threatfox_csv_lines() {
        let mut f = Vec::new();
        split_quoted_csv(r#""a", "b ""c""", "None",x , "1""#, &mut f).unwrap();
        assert_eq!(f, ["a", "b \"c\"", "None", "x", "1"]);
        split_quoted_csv(r#""""a""", "", """", "x""y""z""#, &mut f).unwrap();
        assert_eq!(f, ["\"a\"", "", "\"", "x\"y\"z"]);
        assert!(split_quoted_csv(r#""a", "b"#, &mut f).is_err());
    }

    #[test]
    fn a_key_named_like_another_format_s_is_told_from_a_value() {
        let export = r#"{"1":[{"ioc_value":"1.2.3.4:80","ioc_type":"ip:port","tags":"ioc","reporter":"query_status"}]}"#;
        assert_eq!(detect_format(export), Some(FeedFormat::ThreatfoxJson));
        let api = r#"{"ioc" : "1.2.3.4:80", "ioc_type": "ip:port"}"#;
        assert_eq!(detect_format(api), Some(FeedFormat::ThreatfoxApi));
    }

    #[test]
    fn a_byte_order_mark_is_no_part_of_the_feed() {
        let csv = "\u{feff}####\n# \"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\"\n\"2026-04-12 04:49:28\", \"17\", \"1.2.3.4:80\", \"ip:port\"\n";
        let json = "\u{feff}{\"1\":[{\"ioc_value\":\"1.2.3.4:80\",\"ioc_type\":\"ip:port\"}]}";
        for text in [csv, json] {
            let mut set = IndicatorSet::default();
            let input = FeedInput {
                name: "bom",
                format: FeedFormat::Auto,
                content: text.as_bytes(),
            };
            let stats = load_feed(&input, 0, &mut set).expect("loads");
            assert_eq!(stats.loaded_of(Kind::IpPort), 1, "{text:?}");
        }
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
                    Err("unsupported type: ja3_fingerprint".to_string())
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
