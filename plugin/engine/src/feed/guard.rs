//! The guard against indicators that would flood the pipeline, in the spirit of MISP
//! warninglists: networks wider than a set size, reserved ranges (private, loopback,
//! link-local, documentation), public resolvers and CDN ranges, reserved and very popular
//! domain names, hashes of the empty file, and the user's allowlist. A refused indicator is
//! counted under the reason this module names, with a few examples.

use ipnet::IpNet;
use rustc_hash::FxHashSet;

use crate::indicator::IndicatorValue;
use crate::normalize::{normalize_domain, parse_ip, to_hex};
use crate::settings::GuardConfig;

/// Built-in networks and why an indicator overlapping them is refused.
const BUILTIN_NETWORKS: &[(&str, &str)] = &[
    ("0.0.0.0/8", "reserved range"),
    ("10.0.0.0/8", "private range"),
    ("100.64.0.0/10", "private range"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private range"),
    ("192.0.0.0/24", "reserved range"),
    ("192.0.2.0/24", "documentation range"),
    ("192.168.0.0/16", "private range"),
    ("198.18.0.0/15", "reserved range"),
    ("198.51.100.0/24", "documentation range"),
    ("203.0.113.0/24", "documentation range"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved range"),
    ("::/127", "reserved range"),
    ("fc00::/7", "private range"),
    ("fe80::/10", "link-local"),
    ("2001:db8::/32", "documentation range"),
    ("ff00::/8", "multicast"),
    // Public resolvers.
    ("8.8.8.8/32", "public resolver"),
    ("8.8.4.4/32", "public resolver"),
    ("1.1.1.1/32", "public resolver"),
    ("1.0.0.1/32", "public resolver"),
    ("9.9.9.9/32", "public resolver"),
    ("149.112.112.112/32", "public resolver"),
    ("208.67.222.222/32", "public resolver"),
    ("208.67.220.220/32", "public resolver"),
    ("4.2.2.1/32", "public resolver"),
    ("4.2.2.2/32", "public resolver"),
    ("94.140.14.14/32", "public resolver"),
    ("94.140.15.15/32", "public resolver"),
    ("2001:4860:4860::8888/128", "public resolver"),
    ("2001:4860:4860::8844/128", "public resolver"),
    ("2606:4700:4700::1111/128", "public resolver"),
    ("2606:4700:4700::1001/128", "public resolver"),
    ("2620:fe::fe/128", "public resolver"),
    // CDN edge ranges shared by many unrelated sites (Cloudflare, Fastly).
    ("104.16.0.0/13", "CDN range"),
    ("104.24.0.0/14", "CDN range"),
    ("172.64.0.0/13", "CDN range"),
    ("162.158.0.0/15", "CDN range"),
    ("173.245.48.0/20", "CDN range"),
    ("188.114.96.0/20", "CDN range"),
    ("141.101.64.0/18", "CDN range"),
    ("108.162.192.0/18", "CDN range"),
    ("151.101.0.0/16", "CDN range"),
    ("2606:4700::/32", "CDN range"),
];

/// Names under which nothing is an indicator (reserved by RFC 2606 and RFC 6761).
const RESERVED_DOMAINS: &[&str] = &[
    "example",
    "invalid",
    "localhost",
    "test",
    "local",
    "example.com",
    "example.net",
    "example.org",
    "arpa",
];

/// Domains (and their `www.` form) that are never indicators themselves.
const POPULAR_DOMAINS: &[&str] = &[
    "google.com",
    "youtube.com",
    "facebook.com",
    "microsoft.com",
    "windows.com",
    "windowsupdate.com",
    "office.com",
    "live.com",
    "bing.com",
    "apple.com",
    "icloud.com",
    "amazon.com",
    "amazonaws.com",
    "cloudflare.com",
    "akamai.net",
    "akamaiedge.net",
    "github.com",
    "githubusercontent.com",
    "wikipedia.org",
    "twitter.com",
    "x.com",
    "yahoo.com",
    "linkedin.com",
    "instagram.com",
    "azure.com",
    "windows.net",
    "googleapis.com",
    "gstatic.com",
    "dropbox.com",
    "duckdns.org",
    "ngrok.io",
];

/// The MD5, SHA-1 and SHA-256 of zero bytes.
const EMPTY_FILE_HASHES: &[&str] = &[
    "d41d8cd98f00b204e9800998ecf8427e",
    "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
];

/// The compiled guard.
#[derive(Debug, Clone)]
pub struct Guard {
    builtin: bool,
    min_prefix_v4: u8,
    min_prefix_v6: u8,
    networks: Vec<(IpNet, &'static str)>,
    /// The built-in networks as inclusive ranges, per family: every address of a feed is
    /// checked against all of them, so the ranges are worked out once.
    ranges_v4: Vec<(u32, u32, &'static str)>,
    ranges_v6: Vec<(u128, u128, &'static str)>,
    allow_networks: Vec<IpNet>,
    allow_domains: Vec<String>,
    allow_hashes: Vec<String>,
    reserved: FxHashSet<&'static str>,
    popular: FxHashSet<&'static str>,
    empty_hashes: Vec<Vec<u8>>,
}

impl Default for Guard {
    fn default() -> Self {
        Guard::compile(&GuardConfig::default()).expect("the default guard compiles")
    }
}

impl Guard {
    /// Compiles the settings; an allowlist entry that is no address, network, domain or
    /// hash is an error naming it.
    pub fn compile(config: &GuardConfig) -> Result<Guard, String> {
        let networks: Vec<(IpNet, &'static str)> = BUILTIN_NETWORKS
            .iter()
            .map(|(net, why)| (net.parse().expect("built-in networks parse"), *why))
            .collect();
        let mut ranges_v4 = Vec::new();
        let mut ranges_v6 = Vec::new();
        for (net, why) in &networks {
            match net {
                IpNet::V4(n) => ranges_v4.push((n.network().into(), n.broadcast().into(), *why)),
                IpNet::V6(n) => ranges_v6.push((n.network().into(), n.broadcast().into(), *why)),
            }
        }
        let mut guard = Guard {
            builtin: config.builtin,
            min_prefix_v4: config.min_prefix_v4.min(32),
            min_prefix_v6: config.min_prefix_v6.min(128),
            networks,
            ranges_v4,
            ranges_v6,
            allow_networks: Vec::new(),
            allow_domains: Vec::new(),
            allow_hashes: Vec::new(),
            reserved: RESERVED_DOMAINS.iter().copied().collect(),
            popular: POPULAR_DOMAINS.iter().copied().collect(),
            empty_hashes: EMPTY_FILE_HASHES
                .iter()
                .map(|h| {
                    (0..h.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex"))
                        .collect()
                })
                .collect(),
        };
        for value in &config.allow {
            let v = value.trim();
            if let Some(addr) = parse_ip(v) {
                guard.allow_networks.push(IpNet::from(addr));
            } else if let Ok(net) = v.parse::<IpNet>() {
                guard.allow_networks.push(net.trunc());
            } else if matches!(v.len(), 32 | 40 | 64) && v.bytes().all(|b| b.is_ascii_hexdigit()) {
                guard.allow_hashes.push(v.to_ascii_lowercase());
            } else if let Some(domain) = normalize_domain(v) {
                guard.allow_domains.push(domain);
            } else {
                return Err(format!(
                    "guard.allow: {value:?} is not an address, network, domain or hash"
                ));
            }
        }
        Ok(guard)
    }

    /// Why an address, ip:port, network or hash indicator is refused, if it is.
    pub fn check_value(&self, value: &IndicatorValue) -> Option<String> {
        let hash = |bytes: &[u8]| self.check_hash(bytes);
        match value {
            IndicatorValue::Ip(a) | IndicatorValue::IpPort(a, _) => {
                self.check_network(IpNet::from(*a))
            }
            IndicatorValue::Net(n) => self.check_network(*n),
            IndicatorValue::Md5(h) => hash(h),
            IndicatorValue::Sha1(h) => hash(h),
            IndicatorValue::Sha256(h) => hash(h),
        }
    }

    fn check_hash(&self, bytes: &[u8]) -> Option<String> {
        if !self.allow_hashes.is_empty() {
            let hex = to_hex(bytes);
            if self.allow_hashes.contains(&hex) {
                return Some("allowlisted".into());
            }
        }
        (self.builtin && self.empty_hashes.iter().any(|h| h == bytes))
            .then(|| "warninglist: hash of the empty file".into())
    }

    /// Whether `name` or a parent of it is a reserved name.
    fn is_reserved(&self, name: &str) -> bool {
        let mut rest = name;
        loop {
            if self.reserved.contains(rest) {
                return true;
            }
            match rest.split_once('.') {
                Some((_, parent)) => rest = parent,
                None => return false,
            }
        }
    }

    fn check_network(&self, net: IpNet) -> Option<String> {
        let overlaps = |a: &IpNet, b: &IpNet| a.contains(&b.network()) || b.contains(&a.network());
        if self.allow_networks.iter().any(|a| overlaps(a, &net)) {
            return Some("allowlisted".into());
        }
        let min = match net {
            IpNet::V4(_) => self.min_prefix_v4,
            IpNet::V6(_) => self.min_prefix_v6,
        };
        if net.prefix_len() < min {
            return Some(format!("network wider than /{min}"));
        }
        if !self.builtin {
            return None;
        }
        let overlapping = match net {
            IpNet::V4(n) => {
                first_overlap(&self.ranges_v4, n.network().into(), n.broadcast().into())
            }
            IpNet::V6(n) => {
                first_overlap(&self.ranges_v6, n.network().into(), n.broadcast().into())
            }
        };
        overlapping.map(|why| format!("warninglist: {why}"))
    }

    /// Why a domain indicator (normalised) is refused, if it is.
    pub fn check_domain(&self, domain: &str) -> Option<String> {
        if self.allow_domains.iter().any(|a| is_within(domain, a)) {
            return Some("allowlisted".into());
        }
        if !self.builtin {
            return None;
        }
        if self.is_reserved(domain) {
            return Some("warninglist: reserved name".into());
        }
        let bare = domain.strip_prefix("www.").unwrap_or(domain);
        self.popular
            .contains(bare)
            .then(|| "warninglist: popular domain".into())
    }

    /// Why a URL indicator is refused, if it is: for its host in a reserved range or name,
    /// or allowlisted. A URL names one resource, so popular domains, resolvers and CDN
    /// addresses, which serve malicious URLs too, do not count.
    pub fn check_url_host(&self, host: &str) -> Option<String> {
        if let Some(addr) = parse_ip(host) {
            let net = IpNet::from(addr);
            if self.allow_networks.iter().any(|a| a.contains(&addr)) {
                return Some("allowlisted".into());
            }
            return self
                .builtin
                .then(|| {
                    self.networks
                        .iter()
                        .find(|(n, why)| {
                            n.contains(&net.addr())
                                && !why.ends_with("resolver")
                                && !why.starts_with("CDN")
                        })
                        .map(|(_, why)| format!("warninglist: {why}"))
                })
                .flatten();
        }
        if self.allow_domains.iter().any(|a| is_within(host, a)) {
            return Some("allowlisted".into());
        }
        (self.builtin && self.is_reserved(host)).then(|| "warninglist: reserved name".into())
    }
}

/// Why the first of `ranges` that overlaps `start..=end` is listed: two ranges overlap when
/// each starts before the other ends.
fn first_overlap<T: Ord + Copy>(
    ranges: &[(T, T, &'static str)],
    start: T,
    end: T,
) -> Option<&'static str> {
    ranges
        .iter()
        .find(|&&(s, e, _)| s <= end && start <= e)
        .map(|&(_, _, why)| why)
}

/// Whether `name` is `parent` or a name under it, at a label boundary.
pub fn is_within(name: &str, parent: &str) -> bool {
    name == parent
        || (name.len() > parent.len()
            && name.ends_with(parent)
            && name.as_bytes()[name.len() - parent.len() - 1] == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IndicatorValue {
        IndicatorValue::Ip(s.parse().unwrap())
    }

    #[test]
    fn refuses_reserved_resolver_cdn_and_wide_networks() {
        let g = Guard::default();
        let reason = |v| g.check_value(&v);
        assert_eq!(
            reason(ip("10.1.2.3")).as_deref(),
            Some("warninglist: private range")
        );
        assert_eq!(
            reason(ip("127.0.0.1")).as_deref(),
            Some("warninglist: loopback")
        );
        assert_eq!(
            reason(ip("fe80::1")).as_deref(),
            Some("warninglist: link-local")
        );
        assert_eq!(
            reason(ip("192.0.2.7")).as_deref(),
            Some("warninglist: documentation range")
        );
        assert_eq!(
            reason(ip("8.8.8.8")).as_deref(),
            Some("warninglist: public resolver")
        );
        assert_eq!(
            reason(ip("104.16.1.1")).as_deref(),
            Some("warninglist: CDN range")
        );
        let wide = IndicatorValue::Net("45.0.0.0/8".parse().unwrap());
        assert_eq!(reason(wide).as_deref(), Some("network wider than /16"));
        let covers_resolver = IndicatorValue::Net("8.8.0.0/16".parse().unwrap());
        assert_eq!(
            reason(covers_resolver).as_deref(),
            Some("warninglist: public resolver")
        );
        assert_eq!(
            reason(ip("8.8.8.9")),
            None,
            "near miss: the next address is fine"
        );
        assert_eq!(reason(IndicatorValue::Md5([0; 16])), None);
        let empty =
            IndicatorValue::Sha256(crate::normalize::parse_hex(EMPTY_FILE_HASHES[2]).unwrap());
        assert_eq!(
            reason(empty).as_deref(),
            Some("warninglist: hash of the empty file")
        );
    }

    #[test]
    fn refuses_reserved_and_popular_domains_but_not_their_lookalikes() {
        let g = Guard::default();
        assert_eq!(
            g.check_domain("a.example.com").as_deref(),
            Some("warninglist: reserved name")
        );
        assert_eq!(
            g.check_domain("www.google.com").as_deref(),
            Some("warninglist: popular domain")
        );
        assert_eq!(
            g.check_domain("evil.google.com.example"),
            Some("warninglist: reserved name".into())
        );
        assert_eq!(g.check_domain("notgoogle.com"), None);
        assert_eq!(g.check_domain("docs.google.com"), None);
    }

    #[test]
    fn the_allowlist_takes_addresses_networks_domains_and_hashes() {
        let config = GuardConfig {
            allow: vec![
                "45.1.2.3".into(),
                "46.0.0.0/16".into(),
                "corp.example.net".into(),
                "0CC175B9C0F1B6A831C399E269772661".into(),
            ],
            builtin: false,
            ..GuardConfig::default()
        };
        let g = Guard::compile(&config).unwrap();
        assert_eq!(
            g.check_value(&ip("45.1.2.3")).as_deref(),
            Some("allowlisted")
        );
        assert_eq!(
            g.check_value(&ip("46.0.9.9")).as_deref(),
            Some("allowlisted")
        );
        assert_eq!(g.check_value(&ip("45.1.2.4")), None);
        assert_eq!(
            g.check_domain("a.corp.example.net").as_deref(),
            Some("allowlisted")
        );
        assert_eq!(
            g.check_value(&ip("10.0.0.1")),
            None,
            "builtin list switched off"
        );
        let bad = GuardConfig {
            allow: vec!["not a value".into()],
            ..GuardConfig::default()
        };
        assert!(Guard::compile(&bad).unwrap_err().contains("not a value"));
    }
}
