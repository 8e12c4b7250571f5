//! The compiled detector: indicators, profiles, exclusions and output settings, built in
//! one step from feeds and a settings file and never changed afterwards. A reload builds a
//! new detector and swaps it in whole.

use std::collections::BTreeMap;

use crate::exclusion::Exclusion;
use crate::feed::{FeedInput, FeedStats, Guard, LoadOptions, load_feed_with};
use crate::indicator::{IndicatorSet, Kind};
use crate::record::{FieldTable, Slot};
use crate::settings::{
    DomainMatch, FeedConfig, FieldFormat, Mode, NamedFieldConfig, ProfileConfig, SettingsConfig,
    SettingsError,
};

/// The name the enrichment is nested under by default.
pub const DEFAULT_OUTPUT_KEY: &str = "iocsieve";

/// A compiled field profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub detect_any: Vec<Slot>,
    pub addresses: Vec<AddressField>,
    pub hashes: Vec<HashField>,
    pub domains: Vec<NamedField>,
    pub urls: Vec<NamedField>,
    /// The field naming each row's table, when the profile has one.
    pub table_field: Option<Slot>,
    /// Whether a field of the profile holds free text (and may hold a CEF message).
    pub reads_text: bool,
}

/// A field holding a domain or a URL, with its ASIM role.
#[derive(Debug, Clone)]
pub struct NamedField {
    pub slot: Slot,
    pub role: String,
}

/// A field holding an address, and the field holding its port.
#[derive(Debug, Clone)]
pub struct AddressField {
    pub slot: Slot,
    pub port: Option<Slot>,
    pub role: String,
    pub format: FieldFormat,
    pub table: Option<String>,
}

/// A field holding a hash.
#[derive(Debug, Clone)]
pub struct HashField {
    pub slot: Slot,
    pub role_prefix: String,
    pub format: FieldFormat,
    pub table: Option<String>,
}

/// Where the enrichment goes.
#[derive(Debug, Clone)]
pub enum OutputPlacement {
    /// Under one key; the slots of the key and its fallback names (`key_1`..).
    Nested { names: Vec<(String, Slot)> },
    /// As top-level fields named prefix + field.
    Flat { prefix: String },
}

/// What a successful load built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadStats {
    pub indicators: u64,
    pub feeds: Vec<FeedStats>,
    pub exclusions: Vec<String>,
    pub profiles: Vec<String>,
}

impl LoadStats {
    /// Indicators loaded across feeds, by kind name.
    pub fn loaded_by_kind(&self) -> BTreeMap<String, u64> {
        let mut total = BTreeMap::new();
        for feed in &self.feeds {
            for (kind, n) in &feed.loaded {
                *total.entry(kind.clone()).or_default() += n;
            }
        }
        total
    }
}

/// Why a load was refused; names the input (a feed's name, or `settings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub input: String,
    pub line: Option<u32>,
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}, line {line}: {}", self.input, self.message),
            None => write!(f, "{}: {}", self.input, self.message),
        }
    }
}

impl std::error::Error for LoadError {}

impl From<SettingsError> for LoadError {
    fn from(e: SettingsError) -> Self {
        LoadError {
            input: "settings".into(),
            line: e.line,
            message: e.message,
        }
    }
}

fn settings_error(message: impl Into<String>) -> LoadError {
    LoadError {
        input: "settings".into(),
        line: None,
        message: message.into(),
    }
}

/// Indicators with everything needed to evaluate records against them.
#[derive(Debug)]
pub struct Detector {
    pub(crate) indicators: IndicatorSet,
    pub(crate) feed_names: Vec<String>,
    /// Whether each feed's domain indicators match subdomains, by feed index.
    pub(crate) feed_subdomains: Vec<bool>,
    pub(crate) fields: FieldTable,
    pub(crate) profiles: Vec<Profile>,
    /// The profile every record gets when the settings name one.
    pub(crate) forced_profile: Option<usize>,
    /// The profile CEF messages are read with (CommonSecurityLog), when defined.
    pub(crate) cef_profile: Option<usize>,
    /// The `Type` field Sentinel exports carry: it names the table outright.
    pub(crate) type_slot: Slot,
    pub(crate) exclusions: Vec<Exclusion>,
    pub(crate) output: OutputPlacement,
    pub(crate) mode: Mode,
    pub(crate) keep_suppressed: bool,
    pub(crate) match_address_only: bool,
}

impl Detector {
    /// Builds a detector from feeds and settings text (TOML or JSON; empty for defaults).
    pub fn build(
        feeds: &[FeedInput<'_>],
        settings: &str,
    ) -> Result<(Detector, LoadStats), LoadError> {
        let config = SettingsConfig::parse(settings)?;
        Detector::build_with(feeds, &config)
    }

    /// Builds a detector from feeds and parsed settings.
    pub fn build_with(
        feeds: &[FeedInput<'_>],
        config: &SettingsConfig,
    ) -> Result<(Detector, LoadStats), LoadError> {
        let builtin = SettingsConfig::builtin();
        let mut fields = FieldTable::default();

        // Profiles: the user's first, then the built-in ones they do not replace.
        let mut profile_configs: Vec<&ProfileConfig> = config.profiles.iter().collect();
        for p in &builtin.profiles {
            if !config.profiles.iter().any(|u| u.name == p.name) {
                profile_configs.push(p);
            }
        }
        let profiles = profile_configs
            .iter()
            .map(|p| compile_profile(p, &mut fields))
            .collect::<Result<Vec<_>, _>>()?;
        if profiles.len() >= usize::from(crate::record::NOT_DETECTING) {
            return Err(settings_error("more than 65534 profiles"));
        }
        for (rank, profile) in profiles.iter().enumerate() {
            for &slot in &profile.detect_any {
                fields.detects(slot, rank as u16);
            }
        }
        let forced_profile = match config.profile.as_str() {
            "auto" => None,
            name => Some(
                profiles
                    .iter()
                    .position(|p| p.name == name)
                    .ok_or_else(|| {
                        let known: Vec<_> = profiles.iter().map(|p| p.name.as_str()).collect();
                        settings_error(format!(
                            "profile {name:?} is not defined; known: {}",
                            known.join(", ")
                        ))
                    })?,
            ),
        };

        // Exclusions: the built-in ones unless switched off, then the user's.
        let builtin_exclusions = if config.default_exclusions {
            builtin.exclusions.as_slice()
        } else {
            &[]
        };
        let mut exclusions = Vec::new();
        for rule in builtin_exclusions.iter().chain(&config.exclusions) {
            if exclusions.iter().any(|e: &Exclusion| e.name == rule.name) {
                return Err(settings_error(format!(
                    "two exclusions are named {:?}",
                    rule.name
                )));
            }
            exclusions.push(
                Exclusion::compile(rule, &mut fields).map_err(|e| settings_error(e.to_string()))?,
            );
        }

        let output = match (&config.output.key, &config.output.prefix) {
            (Some(_), Some(_)) => {
                return Err(settings_error(
                    "output takes either key or prefix, not both",
                ));
            }
            (_, Some(prefix)) => OutputPlacement::Flat {
                prefix: prefix.clone(),
            },
            (key, None) => {
                let key = key.as_deref().unwrap_or(DEFAULT_OUTPUT_KEY);
                if key.is_empty() {
                    return Err(settings_error("output.key must not be empty"));
                }
                let names = std::iter::once(key.to_string())
                    .chain((1..=3).map(|n| format!("{key}_{n}")))
                    .map(|name| {
                        let slot = fields.intern(&name);
                        (name, slot)
                    })
                    .collect();
                OutputPlacement::Nested { names }
            }
        };
        if let OutputPlacement::Flat { prefix } = &output {
            for name in crate::output::FLAT_FIELD_NAMES {
                for candidate in crate::output::fallback_names(&format!("{prefix}{name}")) {
                    fields.intern(&candidate);
                }
            }
        }
        let type_slot = fields.intern("Type");

        // Feeds.
        if feeds.len() > usize::from(u16::MAX) {
            return Err(settings_error("more than 65535 feeds"));
        }
        for (n, f) in config.feeds.iter().enumerate() {
            if config.feeds[..n].iter().any(|g| g.name == f.name) {
                return Err(settings_error(format!(
                    "two [[feeds]] entries are named {:?}",
                    f.name
                )));
            }
        }
        let guard = Guard::compile(&config.guard).map_err(settings_error)?;
        let mut options = LoadOptions {
            feed: FeedConfig::default(),
            min_confidence: config.min_confidence.clone(),
            guard,
        };
        let mut feed_subdomains = Vec::with_capacity(feeds.len());
        let mut indicators = IndicatorSet::default();
        let mut feed_stats = Vec::with_capacity(feeds.len());
        for (n, feed) in feeds.iter().enumerate() {
            if feeds[..n].iter().any(|f| f.name == feed.name) {
                return Err(LoadError {
                    input: feed.name.to_string(),
                    line: None,
                    message: "two feeds have this name; hits could not say which one matched"
                        .into(),
                });
            }
            options.feed = feed_config(&config.feeds, feed.name);
            feed_subdomains.push(options.feed.domain_match == DomainMatch::Subdomains);
            let stats = load_feed_with(feed, n as u16, &mut indicators, &options).map_err(|e| {
                LoadError {
                    input: e.feed,
                    line: e.line,
                    message: e.message,
                }
            })?;
            feed_stats.push(stats);
        }
        if config.match_address_only {
            indicators.index_port_addresses();
        }
        indicators.shrink_to_fit();

        let stats = LoadStats {
            indicators: indicators.len() as u64,
            feeds: feed_stats,
            exclusions: exclusions.iter().map(|e| e.name.clone()).collect(),
            profiles: profiles.iter().map(|p| p.name.clone()).collect(),
        };
        let cef_profile = profiles
            .iter()
            .position(|p| p.name == crate::textrecord::CEF_PROFILE);
        let detector = Detector {
            indicators,
            feed_names: feeds.iter().map(|f| f.name.to_string()).collect(),
            feed_subdomains,
            fields,
            profiles,
            forced_profile,
            cef_profile,
            type_slot,
            exclusions,
            output,
            mode: config.mode,
            keep_suppressed: config.keep_suppressed,
            match_address_only: config.match_address_only,
        };
        Ok((detector, stats))
    }

    /// The indicators.
    pub fn indicators(&self) -> &IndicatorSet {
        &self.indicators
    }

    /// The exclusion rules in force, in the order they are tried.
    pub fn exclusions(&self) -> &[Exclusion] {
        &self.exclusions
    }

    /// The profiles in force, in the order they are tried.
    pub fn profiles(&self) -> &[Profile] {
        &self.profiles
    }

    /// The field table: profile and exclusion fields by slot.
    pub fn fields(&self) -> &FieldTable {
        &self.fields
    }

    /// Whether every record passes (tag) or only hits do.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether address-only matching of ip:port indicators is on.
    pub fn match_address_only(&self) -> bool {
        self.match_address_only
    }

    /// The names of the feeds, by feed index.
    pub fn feed_names(&self) -> &[String] {
        &self.feed_names
    }

    /// The number of indicators of each kind.
    pub fn kind_counts(&self) -> impl Iterator<Item = (Kind, u64)> + '_ {
        Kind::ALL.into_iter().zip(self.indicators.counts())
    }
}

/// The options of the feed named `name`: the `[[feeds]]` entry with that name, or with
/// its last path component (`feeds/urlhaus.csv` finds `urlhaus.csv`).
pub(crate) fn feed_config(configs: &[FeedConfig], name: &str) -> FeedConfig {
    let file_name = name.rsplit(['/', '\\']).next().unwrap_or(name);
    configs
        .iter()
        .find(|c| c.name == name)
        .or_else(|| configs.iter().find(|c| c.name == file_name))
        .cloned()
        .unwrap_or_default()
}

fn compile_named(list: &[NamedFieldConfig], fields: &mut FieldTable) -> Vec<NamedField> {
    list.iter()
        .map(|f| NamedField {
            slot: fields.intern(&f.field),
            role: f.role.clone(),
        })
        .collect()
}

fn compile_profile(p: &ProfileConfig, fields: &mut FieldTable) -> Result<Profile, LoadError> {
    if p.name.trim().is_empty() {
        return Err(settings_error("a profile needs a name"));
    }
    if p.addresses.is_empty() && p.hashes.is_empty() && p.domains.is_empty() && p.urls.is_empty() {
        return Err(settings_error(format!(
            "profile {:?} names no address, hash, domain or URL field",
            p.name
        )));
    }
    if p.addresses
        .iter()
        .any(|a| a.format == FieldFormat::Labelled)
    {
        return Err(settings_error(format!(
            "profile {:?}: format \"labelled\" is for hash fields only",
            p.name
        )));
    }
    let tables = p.addresses.iter().filter_map(|a| a.table.as_ref());
    if p.table_field.is_none()
        && let Some(table) = tables
            .chain(p.hashes.iter().filter_map(|h| h.table.as_ref()))
            .next()
    {
        return Err(settings_error(format!(
            "profile {:?} names table {table:?} for a field but has no table_field",
            p.name
        )));
    }
    let reads_text = p.addresses.iter().any(|a| a.format == FieldFormat::Text)
        || p.hashes.iter().any(|h| h.format == FieldFormat::Text);
    Ok(Profile {
        name: p.name.clone(),
        table_field: p.table_field.as_deref().map(|f| fields.intern(f)),
        reads_text,
        detect_any: p.detect_any.iter().map(|f| fields.intern(f)).collect(),
        addresses: p
            .addresses
            .iter()
            .map(|a| AddressField {
                slot: fields.intern(&a.field),
                port: a.port.as_deref().map(|f| fields.intern(f)),
                role: a.role.clone(),
                format: a.format,
                table: a.table.clone(),
            })
            .collect(),
        hashes: p
            .hashes
            .iter()
            .map(|h| HashField {
                slot: fields.intern(&h.field),
                role_prefix: h.role.clone(),
                format: h.format,
                table: h.table.clone(),
            })
            .collect(),
        domains: compile_named(&p.domains, fields),
        urls: compile_named(&p.urls, fields),
    })
}
