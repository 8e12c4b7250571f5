//! The settings file: what users write (TOML or JSON), kept apart from the compiled
//! detector that [`crate::Detector::build`] makes of it.
//!
//! ```toml
//! mode = "hits-only"            # or "tag" (the default): tag every record
//! keep_suppressed = false       # in hits-only mode, also pass hits an exclusion suppressed
//! match_address_only = false    # let ip:port indicators match their address on any port
//! profile = "auto"              # or the name of one profile for every record
//! default_exclusions = true     # the five built-in false-positive rules
//!
//! [output]
//! key = "iocsieve"              # enrichment nested under this key, or:
//! # prefix = "Ioc"              # enrichment as flat top-level fields with this prefix
//!
//! [[exclusions]]
//! name = "vuln-scanner"
//! reason = "our scanner connects to everything"
//! when.all = [
//!   { field = "LocalIP", in_cidr = ["10.9.0.0/24"] },
//!   { not = { field = "InitiatingProcessAccountName", equals = "root" } },
//! ]
//!
//! [[profiles]]
//! name = "zeek-conn"
//! detect_any = ["id.orig_h"]
//! addresses = [{ field = "id.resp_h", port = "id.resp_p", role = "DstIpAddr" }]
//! ```

use serde::Deserialize;

/// What the detector passes on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Every record passes; hits carry the enrichment fields.
    #[default]
    Tag,
    /// Only hits pass (and unreadable records, which are never dropped).
    HitsOnly,
}

/// The settings file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsConfig {
    /// `tag` (default) passes every record; `hits-only` drops misses, and hits that an
    /// exclusion suppressed unless `keep_suppressed` is set.
    #[serde(default)]
    pub mode: Mode,
    /// In hits-only mode, pass suppressed hits too (tagged as suppressed).
    #[serde(default)]
    pub keep_suppressed: bool,
    /// Let an ip:port indicator match its address on another port. Such hits are marked
    /// `AddressOnly` and their confidence is halved. Off by default.
    #[serde(default)]
    pub match_address_only: bool,
    /// `auto` (default) picks a profile per record; a profile name forces that profile.
    #[serde(default = "auto")]
    pub profile: String,
    /// Whether the built-in exclusions apply (default true). User exclusions add to them.
    #[serde(default = "yes")]
    pub default_exclusions: bool,
    #[serde(default)]
    pub output: OutputConfig,
    #[serde(default)]
    pub exclusions: Vec<ExclusionConfig>,
    /// User profiles, tried before the built-in ones; one with a built-in's name replaces it.
    #[serde(default)]
    pub profiles: Vec<ProfileConfig>,
    /// Options of individual feeds, by feed name.
    #[serde(default)]
    pub feeds: Vec<FeedConfig>,
    /// The minimum confidence an indicator needs to be loaded, by kind group.
    #[serde(default)]
    pub min_confidence: MinConfidenceConfig,
    /// The guard against indicators that would flood the pipeline.
    #[serde(default)]
    pub guard: GuardConfig,
}

/// Options of one feed, found by its name: the name the host gives it (a path) or that
/// name's last path component (`urlhaus.csv`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    pub name: String,
    /// The feed's format, when the host passes `auto`: any name `FeedFormat` knows, such as
    /// `list:domain`.
    pub format: Option<String>,
    /// Indicators stop matching this many days after they were last seen (else first
    /// seen), unless the feed ends them earlier.
    pub ttl_days: Option<f64>,
    /// Entries with a lower confidence are not loaded (entries without one are).
    pub min_confidence: Option<u8>,
    /// `exact` (default): a domain indicator matches that name only. `subdomains`: it also
    /// matches every name under it (`a.evil.example` under `evil.example`).
    #[serde(default)]
    pub domain_match: DomainMatch,
    /// A URL indicator also matches its host (a domain or an address) on its own.
    #[serde(default)]
    pub url_hosts: bool,
    /// MISP: load every attribute, not only those marked `to_ids`.
    #[serde(default)]
    pub misp_all_attributes: bool,
}

/// How domain indicators of a feed match.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DomainMatch {
    #[default]
    Exact,
    Subdomains,
}

/// Minimum confidences by kind group, 0-100. Entries without a confidence are loaded.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinConfidenceConfig {
    /// Addresses, ip:port and networks.
    pub ip: Option<u8>,
    pub domain: Option<u8>,
    pub url: Option<u8>,
    /// MD5, SHA-1 and SHA-256.
    pub hash: Option<u8>,
}

/// Which indicators are refused at load because they would match far too much.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    /// Apply the built-in warning list (private, loopback, link-local, documentation and
    /// other reserved ranges, public resolvers, CDN ranges, big sites' domains, hashes of
    /// the empty file). Default true.
    #[serde(default = "yes")]
    pub builtin: bool,
    /// IPv4 networks wider than this prefix length are refused (default 16).
    #[serde(default = "default_min_prefix_v4")]
    pub min_prefix_v4: u8,
    /// IPv6 networks wider than this prefix length are refused (default 32).
    #[serde(default = "default_min_prefix_v6")]
    pub min_prefix_v6: u8,
    /// Values never loaded as indicators: addresses, networks (an indicator overlapping one
    /// is refused), domains (their subdomains too) and hashes.
    #[serde(default)]
    pub allow: Vec<String>,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            builtin: true,
            min_prefix_v4: default_min_prefix_v4(),
            min_prefix_v6: default_min_prefix_v6(),
            allow: Vec::new(),
        }
    }
}

fn default_min_prefix_v4() -> u8 {
    16
}

fn default_min_prefix_v6() -> u8 {
    32
}

impl Default for SettingsConfig {
    fn default() -> Self {
        SettingsConfig {
            mode: Mode::Tag,
            keep_suppressed: false,
            match_address_only: false,
            profile: auto(),
            default_exclusions: true,
            output: OutputConfig::default(),
            exclusions: Vec::new(),
            profiles: Vec::new(),
            feeds: Vec::new(),
            min_confidence: MinConfidenceConfig::default(),
            guard: GuardConfig::default(),
        }
    }
}

fn auto() -> String {
    "auto".into()
}

fn yes() -> bool {
    true
}

/// Where the enrichment goes in the record. The default is one nested key, `iocsieve`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Nest the enrichment under this key.
    pub key: Option<String>,
    /// Write the enrichment as top-level fields with this prefix (for tables that need
    /// plain columns). Exclusive with `key`.
    pub prefix: Option<String>,
}

/// One exclusion rule: a hit on a record that satisfies `when` is suppressed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExclusionConfig {
    pub name: String,
    /// Why this is a false positive; reported with every hit it suppresses.
    pub reason: String,
    pub when: ConditionConfig,
}

/// A condition on record fields. Exactly one operator per condition; each means what the
/// KQL operator named in its doc means, so rules carry over to Sentinel queries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionConfig {
    /// Every condition holds (KQL `and`).
    pub all: Option<Vec<ConditionConfig>>,
    /// At least one condition holds (KQL `or`).
    pub any: Option<Vec<ConditionConfig>>,
    /// The condition does not hold (KQL `not()`).
    pub not: Option<Box<ConditionConfig>>,
    /// The record field the operator below tests; nested paths are dotted.
    pub field: Option<String>,
    /// KQL `=~`: equal, ignoring case.
    pub equals: Option<String>,
    /// KQL `in~`: equal to one of, ignoring case.
    #[serde(rename = "in")]
    pub one_of: Option<Vec<String>>,
    /// KQL `has`: contains the term, ignoring case, at term boundaries.
    pub has: Option<String>,
    /// KQL `has_any`: contains one of the terms.
    pub has_any: Option<Vec<String>>,
    /// KQL `startswith`: begins with, ignoring case (a path prefix).
    pub startswith: Option<String>,
    /// KQL `endswith`: ends with, ignoring case (`/netstat` for a basename).
    pub endswith: Option<String>,
    /// KQL `ipv4_is_in_range` / `ipv6_is_in_range`: an address inside one of the networks.
    pub in_cidr: Option<Vec<String>>,
}

/// A field profile: which fields of a record hold what.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    pub name: String,
    /// The profile applies to a record that has any of these fields.
    #[serde(default)]
    pub detect_any: Vec<String>,
    #[serde(default)]
    pub addresses: Vec<AddressFieldConfig>,
    #[serde(default)]
    pub hashes: Vec<HashFieldConfig>,
    /// Fields holding a domain or host name.
    #[serde(default)]
    pub domains: Vec<NamedFieldConfig>,
    /// Fields holding a URL; their host is also looked up as a domain or address.
    #[serde(default)]
    pub urls: Vec<NamedFieldConfig>,
    /// The field naming each row's table, for records that wrap rows of several tables
    /// (`records.category` in Defender's streaming export). Fields with a `table` apply
    /// only to rows whose table field has that value.
    pub table_field: Option<String>,
}

/// A field holding a value of one kind, with the ASIM role reported for it (`Url`,
/// `DstDomain`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedFieldConfig {
    pub field: String,
    pub role: String,
}

/// How a field's text holds its values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FieldFormat {
    /// The whole value is one address or hash.
    #[default]
    Value,
    /// Labelled hashes, `SHA1=..,MD5=..,SHA256=..,IMPHASH=..` (Sysmon's `Hashes`): only
    /// the MD5, SHA1 and SHA256 labels are read; import hashes and the like are not file
    /// hashes and are skipped.
    Labelled,
    /// Free text (a syslog line, a command line): every address, `address:port`, and hash
    /// standing on its own in the text is taken out. In a `message` or `log` field, a CEF
    /// message is read as a CommonSecurityLog row instead (see the README).
    Text,
}

/// A field holding an IP address, with the field holding its port, if any.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressFieldConfig {
    pub field: String,
    pub port: Option<String>,
    /// The ASIM role reported as `ThreatField`, such as `DstIpAddr`.
    pub role: String,
    /// `value` (default) or `text`.
    #[serde(default)]
    pub format: FieldFormat,
    /// Only rows of this table (the value of the profile's `table_field`).
    pub table: Option<String>,
}

/// A field holding a file hash; any of MD5, SHA-1 and SHA-256 is recognised by length.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashFieldConfig {
    pub field: String,
    /// The ASIM role prefix, such as `TargetFile`; the hash kind is appended
    /// (`TargetFileSHA256`).
    pub role: String,
    /// `value` (default), `labelled` or `text`.
    #[serde(default)]
    pub format: FieldFormat,
    /// Only rows of this table (the value of the profile's `table_field`).
    pub table: Option<String>,
}

/// A settings file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// The 1-based line, when known.
    pub line: Option<u32>,
    pub message: String,
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "settings, line {line}: {}", self.message),
            None => write!(f, "settings: {}", self.message),
        }
    }
}

impl SettingsConfig {
    /// Reads settings from TOML, or from JSON when the text is a JSON object. Empty text
    /// gives the defaults.
    pub fn parse(text: &str) -> Result<SettingsConfig, SettingsError> {
        let trimmed = text.trim_start_matches('\u{feff}').trim();
        if trimmed.is_empty() {
            return Ok(SettingsConfig::default());
        }
        if trimmed.starts_with('{') {
            return serde_json::from_str(trimmed).map_err(|e| SettingsError {
                line: Some(e.line() as u32),
                message: e.to_string(),
            });
        }
        toml::from_str(text).map_err(|e| SettingsError {
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().trim().to_string(),
        })
    }

    /// The built-in profiles and exclusions.
    pub fn builtin() -> SettingsConfig {
        toml::from_str(include_str!("defaults.toml")).expect("the built-in settings parse")
    }
}

/// Returns `text` as JSON settings with `mode` set, for hosts whose command line overrides
/// the settings file (`iocsieve scan --only-hits`).
pub fn with_mode(text: &str, mode: Mode) -> Result<String, SettingsError> {
    SettingsConfig::parse(text)?;
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    let mut value: serde_json::Value = if trimmed.is_empty() {
        serde_json::Value::Object(serde_json::Map::new())
    } else if trimmed.starts_with('{') {
        serde_json::from_str(trimmed).map_err(|e| SettingsError {
            line: None,
            message: e.to_string(),
        })?
    } else {
        toml::from_str(text).map_err(|e| SettingsError {
            line: None,
            message: e.to_string(),
        })?
    };
    let name = match mode {
        Mode::Tag => "tag",
        Mode::HitsOnly => "hits-only",
    };
    value["mode"] = serde_json::Value::String(name.into());
    Ok(value.to_string())
}

fn line_of(text: &str, offset: usize) -> u32 {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u32
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_settings_have_their_profiles_and_five_exclusions() {
        let builtin = SettingsConfig::builtin();
        let names: Vec<_> = builtin.profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "CommonSecurityLog",
                "DeviceFileEvents",
                "DeviceNetworkEvents",
                "DefenderStreamingExport",
                "DefenderStreamingExportRow",
                "Sysmon",
                "Zeek",
                "SuricataEve",
                "ECS",
                "ASimFileEventLogs",
                "ASimNetworkSessionLogs",
                "Cowrie",
                "PlainText"
            ]
        );
        assert_eq!(builtin.exclusions.len(), 5);
    }

    #[test]
    fn reads_toml_and_json() {
        let toml = SettingsConfig::parse("mode = \"hits-only\"\nkeep_suppressed = true\n").unwrap();
        assert_eq!((toml.mode, toml.keep_suppressed), (Mode::HitsOnly, true));
        let json = SettingsConfig::parse(r#"{"match_address_only": true}"#).unwrap();
        assert!(json.match_address_only);
        assert_eq!(SettingsConfig::parse("").unwrap().mode, Mode::Tag);
    }

    #[test]
    fn with_mode_overrides_the_file() {
        let text = "mode = \"tag\"\nkeep_suppressed = true\n[output]\nkey = \"ioc\"\n";
        let json = with_mode(text, Mode::HitsOnly).unwrap();
        let parsed = SettingsConfig::parse(&json).unwrap();
        assert_eq!(parsed.mode, Mode::HitsOnly);
        assert!(parsed.keep_suppressed);
        assert_eq!(parsed.output.key.as_deref(), Some("ioc"));
        assert_eq!(
            SettingsConfig::parse(&with_mode("", Mode::HitsOnly).unwrap())
                .unwrap()
                .mode,
            Mode::HitsOnly
        );
        assert!(with_mode("mdoe = 1", Mode::Tag).is_err());
    }

    #[test]
    fn reads_feed_options_confidence_and_guard() {
        let text = "[[feeds]]\nname = \"urlhaus.csv\"\nttl_days = 30\nmin_confidence = 50\n\
                    domain_match = \"subdomains\"\nurl_hosts = true\n\
                    [min_confidence]\nip = 60\n[guard]\nallow = [\"8.8.8.8\"]\n";
        let s = SettingsConfig::parse(text).unwrap();
        assert_eq!(s.feeds[0].domain_match, DomainMatch::Subdomains);
        assert_eq!(s.feeds[0].ttl_days, Some(30.0));
        assert!(s.feeds[0].url_hosts);
        assert_eq!(s.min_confidence.ip, Some(60));
        assert!(s.guard.builtin);
        let err = SettingsConfig::parse("[[feeds]]\nname = \"x\"\ndomain_match = \"fuzzy\"\n")
            .unwrap_err();
        assert!(err.message.contains("fuzzy"), "{err}");
        let err = SettingsConfig::parse("[min_confidence]\nipv4 = 1\n").unwrap_err();
        assert!(err.message.contains("ipv4"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors_with_their_line() {
        let err = SettingsConfig::parse("mode = \"tag\"\n\nmdoe = \"x\"\n").unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(err.message.contains("mdoe"), "{err}");
        let err = SettingsConfig::parse("{\"mode\": \"loud\"}").unwrap_err();
        assert!(err.message.contains("loud"), "{err}");
    }
}
