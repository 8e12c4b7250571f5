//! The hunting rule for a feed: the document an analyst publishes so that a hunt over
//! Microsoft Sentinel history finds what the edge filter finds.
//!
//! [`write_rule`] builds a [`Detector`] from the feeds and settings exactly as the edge
//! does, reads its indicators and exclusions back, and turns them into a [`Rule`]: the
//! indicators of the [`Selection`] (one malware family, one threat type, or all), KQL
//! queries for the Sentinel tables the built-in profiles describe ([`kql`]), and the
//! document around them ([`Rule::markdown`]). A second pass over the feeds
//! ([`census`]) counts every entry of the selection by the feed's type name, so entries
//! the engine does not load (a kind it does not support) are stated, not dropped.
//!
//! Which indicator goes into which query list is decided in one place,
//! [`HuntList::of`]: a new kind becomes hunted by giving it a list there (and, if it needs
//! new columns, a condition in [`kql`]).

pub mod kql;
mod markdown;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::detector::{Detector, LoadError};
use crate::feed::{FeedInput, observe_feed};
use crate::indicator::{Context, IndicatorValue, Kind, StoredValue};
use crate::normalize::format_ip_port;
use crate::settings::SettingsConfig;

pub use kql::{Query, SentinelTable, TABLES};

/// The list size a query holds by default; larger feeds are split into several queries.
pub const DEFAULT_MAX_LIST: usize = 1000;

/// Which indicators a rule covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Selection {
    /// Every indicator of the feeds.
    #[default]
    All,
    /// One malware family, matched ignoring case against its printable name (`Mirai`),
    /// its id (`elf.mirai`) and each of its aliases (`Katana`).
    Malware(String),
    /// One threat type (`botnet_cc`, `payload`), ignoring case.
    ThreatType(String),
}

impl Selection {
    /// Whether an indicator with this metadata is selected.
    pub fn matches(&self, context: &Context) -> bool {
        match self {
            Selection::All => true,
            Selection::Malware(name) => {
                let name = name.trim();
                context.malware_printable.trim().eq_ignore_ascii_case(name)
                    || context.malware.trim().eq_ignore_ascii_case(name)
                    || context
                        .malware_alias
                        .split(',')
                        .any(|alias| alias.trim().eq_ignore_ascii_case(name))
            }
            Selection::ThreatType(t) => context.threat_type.trim().eq_ignore_ascii_case(t.trim()),
        }
    }
}

/// What the rule is written for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleOptions {
    pub selection: Selection,
    /// The most values one query's lists hold together (at least 1).
    pub max_list: usize,
}

impl Default for RuleOptions {
    fn default() -> Self {
        RuleOptions {
            selection: Selection::All,
            max_list: DEFAULT_MAX_LIST,
        }
    }
}

/// The entries of one feed type (`ip:port`, `url`) in the selection, and what became of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeCensus {
    pub entries: u64,
    pub loaded: u64,
    /// Entries not loaded, by reason (`unsupported kind: url`).
    pub not_loaded: BTreeMap<String, u64>,
}

/// The feed entries of a selection, counted independently of what the engine loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedCensus {
    /// By the feed's own type name, lower-cased.
    pub by_type: BTreeMap<String, TypeCensus>,
    /// Entries by malware family: (printable name, id, aliases).
    pub families: BTreeMap<(String, String, String), u64>,
}

impl FeedCensus {
    /// Entries of the selection, loaded or not.
    pub fn entries(&self) -> u64 {
        self.by_type.values().map(|t| t.entries).sum()
    }

    /// Entries of the selection the engine loaded.
    pub fn loaded(&self) -> u64 {
        self.by_type.values().map(|t| t.loaded).sum()
    }
}

/// Reads the feeds once more and counts the entries of `selection` by type and outcome.
pub fn census(feeds: &[FeedInput<'_>], selection: &Selection) -> Result<FeedCensus, LoadError> {
    census_with(feeds, &SettingsConfig::default(), selection)
}

/// [`census`], reading each feed in the format its `[[feeds]]` settings give it (a plain
/// list is read only so), as the detector does.
pub fn census_with(
    feeds: &[FeedInput<'_>],
    config: &SettingsConfig,
    selection: &Selection,
) -> Result<FeedCensus, LoadError> {
    let mut census = FeedCensus::default();
    for feed in feeds {
        let configured = crate::detector::feed_config(&config.feeds, feed.name)
            .format
            .as_deref()
            .and_then(crate::FeedFormat::from_name);
        let feed = &match (feed.format, configured) {
            (crate::FeedFormat::Auto, Some(format)) => FeedInput { format, ..*feed },
            _ => *feed,
        };
        let mut count = |entry: &crate::feed::FeedEntry<'_>, outcome: Result<Kind, &str>| {
            let context = &entry.info.context;
            if !selection.matches(context) {
                return;
            }
            let family = (
                context.malware_printable.to_string(),
                context.malware.to_string(),
                context.malware_alias.to_string(),
            );
            *census.families.entry(family).or_default() += 1;
            let t = census
                .by_type
                .entry(entry.ioc_type.trim().to_ascii_lowercase())
                .or_default();
            t.entries += 1;
            match outcome {
                Ok(_) => t.loaded += 1,
                Err(reason) => *t.not_loaded.entry(reason.to_string()).or_default() += 1,
            }
        };
        observe_feed(feed, &mut count).map_err(|e| LoadError {
            input: e.feed,
            line: e.line,
            message: e.message,
        })?;
    }
    Ok(census)
}

/// One indicator as the rule lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleIndicator {
    pub value: StoredValue,
    pub kind: Kind,
    pub feed: String,
    pub id: String,
    pub threat_type: String,
    pub malware_printable: String,
    /// 0-100, as the feed gives it.
    pub confidence: Option<u8>,
    /// Seconds since the Unix epoch.
    pub first_seen: Option<i64>,
}

/// The query list an indicator goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HuntList {
    /// Addresses matched on any port (`IocAddresses`).
    Addresses,
    /// address:port pairs matched with the port on the same side (`IocEndpoints`).
    Endpoints,
    /// MD5, SHA-1 and SHA-256 hashes matched against every hash column (`IocHashes`).
    Hashes,
    /// IPv4 networks, tested on every address and URL host (`IocNetworksV4`).
    NetworksV4,
    /// IPv6 networks, tested on every address and URL host (`IocNetworksV6`).
    NetworksV6,
    /// Domain names, compared with domain columns and URL hosts (`IocDomains`).
    Domains,
    /// Normalised URLs, compared with URL columns (`IocUrls`).
    Urls,
}

impl HuntList {
    /// Every list, in the order queries declare them.
    pub const ALL: [HuntList; 7] = [
        HuntList::Addresses,
        HuntList::Endpoints,
        HuntList::Hashes,
        HuntList::NetworksV4,
        HuntList::NetworksV6,
        HuntList::Domains,
        HuntList::Urls,
    ];

    /// The list an indicator is hunted in and its value there, or None for a kind the
    /// queries cannot hunt yet (the document counts those). With address-only matching
    /// an ip:port indicator matches its address on any port, as at the edge.
    pub fn of(value: &StoredValue, match_address_only: bool) -> Option<(HuntList, String)> {
        let value = match value {
            StoredValue::Value(value) => value,
            StoredValue::Text(Kind::Domain, name) => {
                return Some((HuntList::Domains, name.clone()));
            }
            StoredValue::Text(Kind::Url, url) => return Some((HuntList::Urls, url.clone())),
            StoredValue::Text(..) => return None,
        };
        #[allow(
            unreachable_patterns,
            reason = "kinds added to the engine later are reported as not hunted until they \
                      get a list here"
        )]
        match *value {
            IndicatorValue::Ip(addr) => Some((HuntList::Addresses, addr.to_string())),
            IndicatorValue::IpPort(addr, _) if match_address_only => {
                Some((HuntList::Addresses, addr.to_string()))
            }
            IndicatorValue::IpPort(addr, port) => {
                Some((HuntList::Endpoints, format_ip_port(addr, port)))
            }
            IndicatorValue::Md5(_) | IndicatorValue::Sha1(_) | IndicatorValue::Sha256(_) => {
                Some((HuntList::Hashes, value.to_string()))
            }
            IndicatorValue::Net(net @ IpNet::V4(_)) => {
                Some((HuntList::NetworksV4, net.trunc().to_string()))
            }
            IndicatorValue::Net(net @ IpNet::V6(_)) => {
                Some((HuntList::NetworksV6, net.trunc().to_string()))
            }
            _ => None,
        }
    }

    /// The name of the `let` list in the queries.
    pub fn let_name(self) -> &'static str {
        match self {
            HuntList::Addresses => "IocAddresses",
            HuntList::Endpoints => "IocEndpoints",
            HuntList::Hashes => "IocHashes",
            HuntList::NetworksV4 => "IocNetworksV4",
            HuntList::NetworksV6 => "IocNetworksV6",
            HuntList::Domains => "IocDomains",
            HuntList::Urls => "IocUrls",
        }
    }
}

/// An exclusion rule as the document writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleExclusion {
    pub name: String,
    pub reason: String,
}

/// The hunting rule for a feed: everything the document says.
#[derive(Debug, Clone)]
pub struct Rule {
    pub selection: Selection,
    pub feeds: Vec<String>,
    /// The selected indicators the engine loaded, by kind and value.
    pub indicators: Vec<RuleIndicator>,
    pub census: FeedCensus,
    /// Loaded indicators no query hunts (a kind without a [`HuntList`]), by kind name.
    pub not_hunted: BTreeMap<String, u64>,
    pub exclusions: Vec<RuleExclusion>,
    /// The hunting queries, table by table, part by part.
    pub queries: Vec<Query>,
    /// Tables without a query, and why.
    pub tables_without_query: Vec<(&'static str, String)>,
    pub match_address_only: bool,
    pub max_list: usize,
    /// Feeds whose domain indicators match subdomains at the edge
    /// (`domain_match = "subdomains"`) and have domains in this rule.
    pub subdomain_feeds: Vec<String>,
}

/// Builds the detector from `feeds` and `settings` (TOML or JSON, empty for the defaults)
/// as the edge does, and writes the rule for `options.selection`.
pub fn write_rule(
    feeds: &[FeedInput<'_>],
    settings: &str,
    options: &RuleOptions,
) -> Result<Rule, LoadError> {
    let config = SettingsConfig::parse(settings)?;
    let (detector, _) = Detector::build_with(feeds, &config)?;
    let census = census_with(feeds, &config, &options.selection)?;
    if census.entries() == 0 {
        let what = match &options.selection {
            Selection::All => "any indicator".to_string(),
            Selection::Malware(m) => format!("malware {m:?}"),
            Selection::ThreatType(t) => format!("threat type {t:?}"),
        };
        return Err(LoadError {
            input: feeds.iter().map(|f| f.name).collect::<Vec<_>>().join(", "),
            line: None,
            message: format!("no entry of the feeds is of {what}"),
        });
    }
    Ok(generate(&detector, census, options))
}

/// Writes the rule for the indicators of `detector` that `options.selection` selects.
pub fn generate(detector: &Detector, census: FeedCensus, options: &RuleOptions) -> Rule {
    let set = detector.indicators();
    let mut indicators: Vec<RuleIndicator> = set
        .iter()
        .filter(|(_, entry)| options.selection.matches(entry.context))
        .map(|(value, entry)| RuleIndicator {
            value,
            kind: entry.kind,
            feed: detector
                .feed_names()
                .get(usize::from(entry.context.feed))
                .cloned()
                .unwrap_or_default(),
            id: entry.id.to_string(),
            threat_type: entry.context.threat_type.to_string(),
            malware_printable: entry.context.malware_printable.to_string(),
            confidence: entry.confidence,
            first_seen: entry.first_seen,
        })
        .collect();
    indicators.sort_by(|a, b| {
        (a.kind, sort_key(&a.value), &a.feed, &a.id).cmp(&(
            b.kind,
            sort_key(&b.value),
            &b.feed,
            &b.id,
        ))
    });

    // The lists, each value once.
    let address_only = detector.match_address_only();
    let mut lists: BTreeMap<HuntList, BTreeSet<(Vec<u8>, String)>> = BTreeMap::new();
    let mut not_hunted: BTreeMap<String, u64> = BTreeMap::new();
    for indicator in &indicators {
        match HuntList::of(&indicator.value, address_only) {
            Some((list, text)) => {
                lists
                    .entry(list)
                    .or_default()
                    .insert((sort_key(&indicator.value), text));
            }
            None => {
                *not_hunted
                    .entry(indicator.kind.name().to_string())
                    .or_default() += 1
            }
        }
    }
    let lists: BTreeMap<HuntList, Vec<String>> = lists
        .into_iter()
        .map(|(list, values)| (list, values.into_iter().map(|(_, text)| text).collect()))
        .collect();

    let mut subdomain_feeds: Vec<String> = indicators
        .iter()
        .filter(|i| i.kind == Kind::Domain)
        .filter(|i| {
            let feed = detector.feed_names().iter().position(|f| *f == i.feed);
            feed.is_some_and(|n| detector.feed_subdomains.get(n).copied().unwrap_or(false))
        })
        .map(|i| i.feed.clone())
        .collect();
    subdomain_feeds.sort();
    subdomain_feeds.dedup();

    let title = title(&options.selection, &census);
    let (queries, tables_without_query) =
        kql::queries(detector, &lists, &title, options.max_list.max(1));
    Rule {
        selection: options.selection.clone(),
        feeds: detector.feed_names().to_vec(),
        indicators,
        census,
        not_hunted,
        exclusions: detector
            .exclusions()
            .iter()
            .map(|e| RuleExclusion {
                name: e.name.clone(),
                reason: e.reason.clone(),
            })
            .collect(),
        queries,
        tables_without_query,
        match_address_only: address_only,
        max_list: options.max_list.max(1),
        subdomain_feeds,
    }
}

impl Rule {
    /// The document, in Markdown.
    pub fn markdown(&self) -> String {
        markdown::document(self)
    }

    /// The queries alone, one after another; each starts with a
    /// `// iocsieve hunting query:` comment line.
    pub fn kql(&self) -> String {
        let mut out = String::new();
        for (n, q) in self.queries.iter().enumerate() {
            if n > 0 {
                out.push('\n');
            }
            out.push_str(&q.text);
        }
        out
    }

    /// What the rule is for, as titles write it: a family name, a threat type, or "all".
    pub fn title(&self) -> String {
        title(&self.selection, &self.census)
    }
}

fn title(selection: &Selection, census: &FeedCensus) -> String {
    match selection {
        Selection::Malware(name) => census.family_name().unwrap_or_else(|| name.clone()),
        Selection::ThreatType(t) => format!("threat type {t}"),
        Selection::All => census
            .family_name()
            .unwrap_or_else(|| "all feed".to_string()),
    }
}

impl FeedCensus {
    /// The printable name of the family, when the entries have one (`elf.mirai` and
    /// `win.mirai` are both "Mirai").
    pub fn family_name(&self) -> Option<String> {
        let mut names: Vec<&str> = self
            .families
            .keys()
            .map(|(printable, _, _)| printable.as_str())
            .filter(|p| !p.is_empty())
            .collect();
        names.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        match names.as_slice() {
            [name] => Some(name.to_string()),
            _ => None,
        }
    }
}

/// Orders values numerically (addresses by their bytes, then port) rather than as text.
fn sort_key(value: &StoredValue) -> Vec<u8> {
    let StoredValue::Value(value) = value else {
        return value.to_string().into_bytes();
    };
    fn ip(addr: IpAddr) -> Vec<u8> {
        match addr {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        }
    }
    match value {
        IndicatorValue::Ip(addr) => ip(*addr),
        IndicatorValue::IpPort(addr, port) => {
            let mut key = ip(*addr);
            key.extend_from_slice(&port.to_be_bytes());
            key
        }
        other => other.to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DEFAULT_FEED, DEFAULT_FEED_NAME, FeedFormat};

    fn feed(content: &[u8]) -> FeedInput<'_> {
        FeedInput {
            name: "test-feed",
            format: FeedFormat::Auto,
            content,
        }
    }

    const MIXED: &[u8] = br#"{
      "1": [{"ioc_value": "1.2.3.4:80", "ioc_type": "ip:port", "threat_type": "botnet_cc",
             "malware": "elf.mirai", "malware_alias": "Katana,Other", "malware_printable": "Mirai",
             "confidence_level": 50}],
      "2": [{"ioc_value": "http://x.example/a", "ioc_type": "url", "threat_type": "payload_delivery",
             "malware": "elf.mirai", "malware_printable": "Mirai"}],
      "3": [{"ioc_value": "5.6.7.8:443", "ioc_type": "ip:port", "threat_type": "botnet_cc",
             "malware": "win.cobalt_strike", "malware_printable": "Cobalt Strike"}],
      "4": [{"ioc_value": "0cc175b9c0f1b6a831c399e269772661", "ioc_type": "md5_hash",
             "threat_type": "payload", "malware": "elf.mirai", "malware_printable": "Mirai"}],
      "5": [{"ioc_value": "771,4865-4866,0-23", "ioc_type": "ja3_fingerprint",
             "threat_type": "botnet_cc", "malware": "elf.mirai", "malware_printable": "Mirai"}]
    }"#;

    #[test]
    fn malware_matches_name_id_and_alias_ignoring_case() {
        // Only the first Mirai entry carries the aliases.
        for (name, entries) in [
            ("mirai", 4),
            ("ELF.MIRAI", 4),
            ("katana", 1),
            (" Other ", 1),
        ] {
            let options = RuleOptions {
                selection: Selection::Malware(name.into()),
                ..RuleOptions::default()
            };
            let rule = write_rule(&[feed(MIXED)], "", &options).unwrap();
            assert!(rule.indicators.len() <= entries, "{name}");
            assert!(
                rule.indicators
                    .iter()
                    .all(|i| i.malware_printable == "Mirai")
            );
            assert_eq!(rule.indicators.len() as u64, rule.census.loaded(), "{name}");
            assert_eq!(rule.census.entries(), entries as u64, "{name}");
        }
        let options = RuleOptions {
            selection: Selection::Malware("mira".into()),
            ..RuleOptions::default()
        };
        let err = write_rule(&[feed(MIXED)], "", &options).unwrap_err();
        assert!(err.message.contains("\"mira\""), "{err}");
    }

    #[test]
    fn threat_type_selects_across_families() {
        let options = RuleOptions {
            selection: Selection::ThreatType("BOTNET_CC".into()),
            ..RuleOptions::default()
        };
        let rule = write_rule(&[feed(MIXED)], "", &options).unwrap();
        let values: Vec<String> = rule
            .indicators
            .iter()
            .map(|i| i.value.to_string())
            .collect();
        assert_eq!(values, ["1.2.3.4:80", "5.6.7.8:443"]);
    }

    #[test]
    fn census_counts_entries_the_engine_did_not_load() {
        let census = census(&[feed(MIXED)], &Selection::Malware("mirai".into())).unwrap();
        let unknown = &census.by_type["ja3_fingerprint"];
        assert_eq!((unknown.entries, unknown.loaded), (1, 0));
        assert_eq!(
            unknown.not_loaded.get("unsupported type: ja3_fingerprint"),
            Some(&1),
            "{unknown:?}"
        );
        // Whether the engine loads URLs or not, each entry is counted once.
        let url = &census.by_type["url"];
        assert_eq!(url.entries, 1);
        assert_eq!(url.loaded + url.not_loaded.values().sum::<u64>(), 1);
        assert_eq!(census.by_type["ip:port"].loaded, 1);
        assert_eq!(census.by_type["md5_hash"].loaded, 1);
        assert_eq!(census.entries(), 4);
        assert!(!census.by_type.contains_key("sha256_hash"));
    }

    #[test]
    fn address_only_hunts_the_address_of_ip_port_indicators() {
        let rule = write_rule(
            &[feed(MIXED)],
            "match_address_only = true",
            &RuleOptions::default(),
        )
        .unwrap();
        let kql = rule.kql();
        assert!(kql.contains("\"1.2.3.4\""), "{kql}");
        assert!(!kql.contains("IocEndpoints"), "{kql}");
        let exact = write_rule(&[feed(MIXED)], "", &RuleOptions::default()).unwrap();
        assert!(exact.kql().contains("\"1.2.3.4:80\""));
    }

    #[test]
    fn large_lists_are_split_into_parts() {
        let mut text = String::from("{");
        for n in 0..25u32 {
            if n > 0 {
                text.push(',');
            }
            text.push_str(&format!(
                r#""{n}": [{{"ioc_value": "45.9.{}.{}:80", "ioc_type": "ip:port",
                    "malware_printable": "M", "malware": "m"}}]"#,
                n / 250,
                n % 250
            ));
        }
        text.push('}');
        let options = RuleOptions {
            max_list: 10,
            ..RuleOptions::default()
        };
        let rule = write_rule(&[feed(text.as_bytes())], "", &options).unwrap();
        let network: Vec<&Query> = rule
            .queries
            .iter()
            .filter(|q| q.table == "DeviceNetworkEvents")
            .collect();
        assert_eq!(network.len(), 3);
        assert!(network.iter().all(|q| q.parts == 3));
        let listed: usize = network
            .iter()
            .map(|q| q.text.matches(":80\"").count())
            .sum();
        assert_eq!(listed, 25);
        assert!(
            network
                .iter()
                .all(|q| q.text.matches(":80\"").count() <= 10)
        );
    }

    #[test]
    fn networks_domains_and_urls_are_hunted() {
        let nets = FeedInput {
            name: "nets.txt",
            format: FeedFormat::Auto,
            content: b"45.9.148.0/24\n2a0e:1c80:1::/48\n",
        };
        let settings = "[[feeds]]\nname = \"nets.txt\"\nformat = \"list:cidr\"\n\
                        [[feeds]]\nname = \"test-feed\"\ndomain_match = \"subdomains\"\n";
        let feed = feed(
            br#"{"1": [{"ioc_value": "Evil-Mirai-CC.xyz", "ioc_type": "domain",
                        "malware": "elf.mirai", "malware_printable": "Mirai"}],
                 "2": [{"ioc_value": "HTTP://Evil-Mirai-CC.xyz:80/bins/Mips", "ioc_type": "url",
                        "malware": "elf.mirai", "malware_printable": "Mirai"}]}"#,
        );
        let rule = write_rule(&[feed, nets], settings, &RuleOptions::default()).unwrap();
        assert!(rule.not_hunted.is_empty(), "{:?}", rule.not_hunted);
        assert_eq!(rule.census.loaded(), 4);
        assert_eq!(rule.subdomain_feeds, ["test-feed"]);
        let kql = rule.kql();
        for wanted in [
            "let IocNetworksV4 = dynamic([\"45.9.148.0/24\"]);",
            "let IocNetworksV6 = dynamic([\"2a0e:1c80:1::/48\"]);",
            "let IocDomains = dynamic([\"evil-mirai-cc.xyz\"]);",
            "let IocUrls = dynamic([\"http://evil-mirai-cc.xyz/bins/Mips\"]);",
            "coalesce(ipv4_is_in_any_range(IocAddress(RemoteIP), IocNetworksV4), false)",
            "coalesce(ipv6_is_in_any_range(IocAddress(IocUrlHost(RemoteUrl)), IocNetworksV6), false)",
            "IocUrlHost(RemoteUrl) in~ (IocDomains)",
            "trim_end(\"\\\\.\", DestinationDnsDomain) in~ (IocDomains)",
            "IocUrl(RequestURL) in (IocUrls)",
            "IocUrl(RemoteUrl) in (IocUrls)",
        ] {
            assert!(kql.contains(wanted), "{wanted} in\n{kql}");
        }
        // DeviceFileEvents holds no address, domain or URL column.
        let tables: Vec<&str> = rule.queries.iter().map(|q| q.table).collect();
        assert_eq!(tables, ["CommonSecurityLog", "DeviceNetworkEvents"]);
        let doc = rule.markdown();
        assert!(doc.contains("`45[.]9[.]148[.]0/24`"), "{doc}");
        assert!(doc.contains("The queries match the exact names only"));
        assert!(doc.contains("`IocUrl()`"));
        assert!(doc.contains("A bare host name in a URL column"));
        assert!(!doc.contains("no query of this rule hunts"));
    }

    #[test]
    fn each_kind_has_its_list() {
        let net: IpNet = "45.9.148.7/24".parse().unwrap();
        assert_eq!(
            HuntList::of(&StoredValue::Value(IndicatorValue::Net(net)), false),
            Some((HuntList::NetworksV4, "45.9.148.0/24".to_string()))
        );
        let url = StoredValue::Text(Kind::Url, "http://x.example/".into());
        assert_eq!(
            HuntList::of(&url, false),
            Some((HuntList::Urls, "http://x.example/".to_string()))
        );
        let domain = StoredValue::Text(Kind::Domain, "x.example".into());
        assert_eq!(
            HuntList::of(&domain, true).map(|(l, _)| l),
            Some(HuntList::Domains)
        );
        assert_eq!(
            HuntList::of(&StoredValue::Text(Kind::Md5, "x".into()), false),
            None
        );
    }

    #[test]
    fn default_feed_gets_a_query_per_table() {
        let input = FeedInput {
            name: DEFAULT_FEED_NAME,
            format: FeedFormat::Auto,
            content: DEFAULT_FEED,
        };
        let rule = write_rule(&[input], "", &RuleOptions::default()).unwrap();
        let tables: Vec<&str> = rule.queries.iter().map(|q| q.table).collect();
        assert_eq!(
            tables,
            [
                "CommonSecurityLog",
                "DeviceNetworkEvents",
                "DeviceFileEvents"
            ]
        );
        assert_eq!(rule.exclusions.len(), 5);
        assert!(rule.not_hunted.is_empty());
    }
}
