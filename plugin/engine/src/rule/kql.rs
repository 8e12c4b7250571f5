//! KQL for the hunting rule: one query per Sentinel table (and per part of a long list),
//! written from the detector's own profiles and exclusions so that it means what the edge
//! filter means.
//!
//! - The address and hash fields of a table are those of the profile of the same name.
//! - Addresses pass through `IocAddress()`, which turns an IPv4-mapped IPv6 address written
//!   `::ffff:a.b.c.d` into `a.b.c.d`, as the edge's normalisation does.
//! - ip:port indicators are compared as `address:port` built from an address field and the
//!   port field beside it in the profile (`IocEndpoint()`), so the port is on the same side.
//! - Networks are tested with `ipv4_is_in_any_range`/`ipv6_is_in_any_range` on every
//!   address and on the host of every URL; domains are compared with the domain columns and
//!   URL hosts (`IocUrlHost()`); URLs are normalised as the edge normalises them (`IocUrl()`)
//!   and compared respecting the case of path and query.
//! - Exclusions become `where not(...)` filters; each operator is the KQL operator the
//!   exclusion's own operator is defined by. A field the table is not known to have is read
//!   with `column_ifexists()`, which gives an empty string, so a test of it is false, as the
//!   edge's test of a missing field is.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ipnet::IpNet;

use super::HuntList;
use crate::detector::{Detector, Profile};
use crate::exclusion::{Condition, Test};

/// A Sentinel table the rule hunts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentinelTable {
    pub name: &'static str,
    /// The column results are ordered by.
    pub time_column: &'static str,
    /// The columns the results show.
    pub project: &'static [&'static str],
    /// String columns the queries may name directly.
    pub string_columns: &'static [&'static str],
    /// Columns of other types the queries may name (read with `tostring()` in tests).
    pub other_columns: &'static [&'static str],
    /// How to get the table filled: the data connector to enable.
    pub connector: &'static str,
}

/// The tables, in the order the document shows them.
pub const TABLES: [SentinelTable; 3] = [
    SentinelTable {
        name: "CommonSecurityLog",
        time_column: "TimeGenerated",
        project: &[
            "TimeGenerated",
            "DeviceVendor",
            "DeviceProduct",
            "Activity",
            "DeviceAction",
            "SourceIP",
            "SourcePort",
            "DestinationIP",
            "DestinationPort",
            "Protocol",
            "RequestURL",
            "FileHash",
        ],
        string_columns: &[
            "DeviceVendor",
            "DeviceProduct",
            "DeviceEventClassID",
            "Activity",
            "DeviceAction",
            "SourceIP",
            "DestinationIP",
            "Protocol",
            "RequestURL",
            "FileHash",
            "FileName",
            "SourceUserName",
            "DestinationUserName",
            "SourceHostName",
            "DestinationHostName",
            "DestinationDnsDomain",
            "Computer",
            "ProcessName",
        ],
        other_columns: &["SourcePort", "DestinationPort", "TimeGenerated"],
        connector: "Enable the **Common Event Format (CEF) via AMA** data connector (firewalls, \
                    proxies and other appliances that log CEF over Syslog).",
    },
    SentinelTable {
        name: "DeviceNetworkEvents",
        time_column: "Timestamp",
        project: &[
            "Timestamp",
            "DeviceName",
            "ActionType",
            "LocalIP",
            "LocalPort",
            "RemoteIP",
            "RemotePort",
            "RemoteUrl",
            "Protocol",
            "InitiatingProcessFileName",
            "InitiatingProcessFolderPath",
            "InitiatingProcessCommandLine",
            "InitiatingProcessAccountName",
            "InitiatingProcessParentFileName",
            "InitiatingProcessSHA256",
        ],
        string_columns: &[
            "DeviceName",
            "DeviceId",
            "ActionType",
            "LocalIP",
            "RemoteIP",
            "RemoteUrl",
            "Protocol",
            "InitiatingProcessFileName",
            "InitiatingProcessFolderPath",
            "InitiatingProcessCommandLine",
            "InitiatingProcessAccountName",
            "InitiatingProcessAccountDomain",
            "InitiatingProcessParentFileName",
            "InitiatingProcessSHA256",
            "InitiatingProcessSHA1",
            "InitiatingProcessMD5",
        ],
        other_columns: &["LocalPort", "RemotePort", "Timestamp", "TimeGenerated"],
        connector: "Enable the **Microsoft Defender XDR** data connector and select \
                    DeviceNetworkEvents among its Microsoft Defender for Endpoint tables.",
    },
    SentinelTable {
        name: "DeviceFileEvents",
        time_column: "Timestamp",
        project: &[
            "Timestamp",
            "DeviceName",
            "ActionType",
            "FileName",
            "FolderPath",
            "SHA256",
            "SHA1",
            "MD5",
            "InitiatingProcessFileName",
            "InitiatingProcessFolderPath",
            "InitiatingProcessCommandLine",
            "InitiatingProcessAccountName",
            "InitiatingProcessParentFileName",
            "InitiatingProcessSHA256",
        ],
        string_columns: &[
            "DeviceName",
            "DeviceId",
            "ActionType",
            "FileName",
            "FolderPath",
            "SHA256",
            "SHA1",
            "MD5",
            "FileOriginUrl",
            "FileOriginIP",
            "InitiatingProcessFileName",
            "InitiatingProcessFolderPath",
            "InitiatingProcessCommandLine",
            "InitiatingProcessAccountName",
            "InitiatingProcessAccountDomain",
            "InitiatingProcessParentFileName",
            "InitiatingProcessSHA256",
            "InitiatingProcessSHA1",
            "InitiatingProcessMD5",
        ],
        other_columns: &["Timestamp", "TimeGenerated"],
        connector: "Enable the **Microsoft Defender XDR** data connector and select \
                    DeviceFileEvents among its Microsoft Defender for Endpoint tables.",
    },
];

impl SentinelTable {
    /// The table a name refers to.
    pub fn named(name: &str) -> Option<&'static SentinelTable> {
        TABLES.iter().find(|t| t.name == name)
    }

    /// A field as a string expression: the column itself when the table has it as a
    /// string, `tostring()` of it when it has another type, and `column_ifexists()` when
    /// the table is not known to have it (an empty string if it is missing).
    fn column(&self, field: &str) -> String {
        if self.string_columns.contains(&field) {
            field.to_string()
        } else if self.other_columns.contains(&field) {
            format!("tostring({field})")
        } else {
            format!("tostring(column_ifexists({}, \"\"))", string_literal(field))
        }
    }
}

/// One hunting query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub table: &'static str,
    /// 1-based.
    pub part: usize,
    pub parts: usize,
    /// What the query compares, in a sentence.
    pub matches: String,
    /// The query, starting with its `// iocsieve hunting query:` comment line.
    pub text: String,
}

/// The comment line every query starts with; the raw KQL output is split on it.
pub const QUERY_HEADER: &str = "// iocsieve hunting query:";

const ADDRESS_FUNCTION: &str = "let IocAddress = (ip: string) { iff(ip startswith \"::ffff:\" \
                                and ip contains \".\", substring(ip, 7), ip) };";
const ENDPOINT_FUNCTION: &str = "let IocEndpoint = (ip: string, port: string) { \
                                 let address = IocAddress(ip); \
                                 strcat(iff(address contains \":\", strcat(\"[\", address, \"]\"), \
                                 address), \":\", port) };";
/// The host of a URL, or a bare host name, lower case, without brackets or a trailing dot;
/// a value without a scheme is read as `http://`, as at the edge.
const URL_HOST_FUNCTION: &str = "let IocUrlHost = (url: string) { tolower(trim_end(\"\\\\.\", \
                                 trim(\"[\\\\[\\\\]]\", tostring(parse_url(iff(url contains \"://\", url, \
                                 strcat(\"http://\", url))).Host)))) };";
/// A URL normalised as the edge normalises URL indicators: scheme and host lower case,
/// default port dropped, an empty path written `/`, the fragment dropped, path and query
/// as written.
const URL_FUNCTION: &str = "let IocUrl = (url: string) { \
                            let u = iff(url contains \"://\", url, strcat(\"http://\", url)); \
                            let scheme = tolower(extract(\"^([^:/?#]+)://\", 1, u)); \
                            let host = IocUrlHost(u); \
                            let port = tostring(parse_url(u).Port); \
                            let rest = extract(\"^[^:/?#]+://[^/?#]*([^#]*)\", 1, u); \
                            strcat(scheme, \"://\", iff(host contains \":\", strcat(\"[\", host, \"]\"), host), \
                            iff(port == \"\" or port == case(scheme in (\"http\", \"ws\"), \"80\", \
                            scheme in (\"https\", \"wss\"), \"443\", scheme == \"ftp\", \"21\", \"\"), \"\", \
                            strcat(\":\", port)), iff(rest startswith \"/\", rest, strcat(\"/\", rest))) };";

/// The queries for every table whose profile can use the lists, and the tables left out.
pub(super) fn queries(
    detector: &Detector,
    lists: &BTreeMap<HuntList, Vec<String>>,
    title: &str,
    max_list: usize,
) -> (Vec<Query>, Vec<(&'static str, String)>) {
    let mut queries = Vec::new();
    let mut left_out = Vec::new();
    for table in &TABLES {
        let Some(profile) = detector.profiles().iter().find(|p| p.name == table.name) else {
            left_out.push((
                table.name,
                "no profile of this name is in force".to_string(),
            ));
            continue;
        };
        let fields = TableFields::of(detector, profile);
        let usable: Vec<(HuntList, &Vec<String>)> = HuntList::ALL
            .into_iter()
            .filter(|list| fields.can_use(*list))
            .filter_map(|list| lists.get(&list).map(|values| (list, values)))
            .filter(|(_, values)| !values.is_empty())
            .collect();
        if usable.is_empty() {
            left_out.push((table.name, fields.nothing_to_hunt()));
            continue;
        }

        // Split the lists so that each query holds at most max_list values in all.
        let flat: Vec<(HuntList, &str)> = usable
            .iter()
            .flat_map(|(list, values)| values.iter().map(move |v| (*list, v.as_str())))
            .collect();
        let chunks: Vec<&[(HuntList, &str)]> = flat.chunks(max_list).collect();
        for (n, chunk) in chunks.iter().enumerate() {
            let mut part_lists: BTreeMap<HuntList, Vec<&str>> = BTreeMap::new();
            for (list, value) in *chunk {
                part_lists.entry(*list).or_default().push(value);
            }
            let (part, parts) = (n + 1, chunks.len());
            queries.push(Query {
                table: table.name,
                part,
                parts,
                matches: fields.describe(&part_lists),
                text: query_text(detector, table, &fields, &part_lists, title, part, parts),
            });
        }
    }
    (queries, left_out)
}

/// The fields of a table's profile, by name.
struct TableFields {
    /// Address fields with their port field.
    addresses: Vec<(String, Option<String>)>,
    hashes: Vec<String>,
    domains: Vec<String>,
    urls: Vec<String>,
}

impl TableFields {
    fn of(detector: &Detector, profile: &Profile) -> TableFields {
        let name = |slot| detector.fields().name(slot).to_string();
        TableFields {
            addresses: profile
                .addresses
                .iter()
                .map(|a| (name(a.slot), a.port.map(name)))
                .collect(),
            hashes: profile.hashes.iter().map(|h| name(h.slot)).collect(),
            domains: profile.domains.iter().map(|f| name(f.slot)).collect(),
            urls: profile.urls.iter().map(|f| name(f.slot)).collect(),
        }
    }

    fn can_use(&self, list: HuntList) -> bool {
        match list {
            // The host of a URL is also an address or a domain, as at the edge.
            HuntList::Addresses | HuntList::NetworksV4 | HuntList::NetworksV6 => {
                !self.addresses.is_empty() || !self.urls.is_empty()
            }
            HuntList::Endpoints => self.addresses.iter().any(|(_, port)| port.is_some()),
            HuntList::Hashes => !self.hashes.is_empty(),
            HuntList::Domains => !self.domains.is_empty() || !self.urls.is_empty(),
            HuntList::Urls => !self.urls.is_empty(),
        }
    }

    fn nothing_to_hunt(&self) -> String {
        match (self.addresses.is_empty(), self.hashes.is_empty()) {
            (true, false) => "no hash indicators are selected".into(),
            (false, true) if self.urls.is_empty() => {
                "no address, ip:port or network indicators are selected".into()
            }
            (false, true) => {
                "no address, ip:port, network, domain or URL indicators are selected".into()
            }
            _ => "no indicators of the kinds this table holds are selected".into(),
        }
    }

    /// What the query compares, in a sentence.
    fn describe(&self, lists: &BTreeMap<HuntList, Vec<&str>>) -> String {
        let mut parts = Vec::new();
        let addresses = lists.contains_key(&HuntList::Addresses);
        let endpoints = lists.contains_key(&HuntList::Endpoints);
        if addresses || endpoints {
            let fields: Vec<String> = self
                .addresses
                .iter()
                .filter(|(_, port)| addresses || port.is_some())
                .map(|(field, port)| match port {
                    Some(port) if endpoints => format!("`{field}` (with `{port}`)"),
                    _ => format!("`{field}`"),
                })
                .collect();
            let what = match (addresses, endpoints) {
                (true, true) => {
                    "the addresses (on any port) and the ip:port endpoints (with the \
                                 port on the same side)"
                }
                (true, false) => "the addresses, on any port",
                _ => "the ip:port endpoints, with the port on the same side",
            };
            parts.push(format!("{} against {what}", join_words(&fields)));
        }
        if lists.contains_key(&HuntList::Hashes) {
            let fields: Vec<String> = self.hashes.iter().map(|f| format!("`{f}`")).collect();
            parts.push(format!(
                "{} against every hash, ignoring case",
                join_words(&fields)
            ));
        }
        let quoted = |fields: &[String]| -> Vec<String> {
            fields.iter().map(|f| format!("`{f}`")).collect()
        };
        let urls = quoted(&self.urls);
        if lists.contains_key(&HuntList::NetworksV4) || lists.contains_key(&HuntList::NetworksV6) {
            let mut fields = quoted(
                &self
                    .addresses
                    .iter()
                    .map(|(f, _)| f.clone())
                    .collect::<Vec<_>>(),
            );
            fields.extend(urls.iter().map(|f| format!("the host of {f}")));
            parts.push(format!("{} against the networks", join_words(&fields)));
        }
        if lists.contains_key(&HuntList::Domains) {
            let mut fields = quoted(&self.domains);
            fields.extend(urls.iter().map(|f| format!("the host of {f}")));
            parts.push(format!(
                "{} against the domains, ignoring case",
                join_words(&fields)
            ));
        }
        if lists.contains_key(&HuntList::Urls) {
            parts.push(format!(
                "{} against the URLs, scheme and host ignoring case, path and query as written",
                join_words(&urls)
            ));
        }
        format!("Compares {}.", parts.join("; and "))
    }
}

fn query_text(
    detector: &Detector,
    table: &SentinelTable,
    fields: &TableFields,
    lists: &BTreeMap<HuntList, Vec<&str>>,
    title: &str,
    part: usize,
    parts: usize,
) -> String {
    // The match: one condition per field and list.
    let mut conditions = Vec::new();
    let mut uses_address = false;
    let mut uses_endpoint = false;
    for (field, port) in &fields.addresses {
        let column = table.column(field);
        if lists.contains_key(&HuntList::Addresses) {
            uses_address = true;
            conditions.push(format!("IocAddress({column}) in~ (IocAddresses)"));
        }
        if let Some(port) = port
            && lists.contains_key(&HuntList::Endpoints)
        {
            uses_endpoint = true;
            conditions.push(format!(
                "IocEndpoint({column}, {}) in~ (IocEndpoints)",
                table.column(port)
            ));
        }
    }
    if lists.contains_key(&HuntList::Hashes) {
        for field in &fields.hashes {
            conditions.push(format!("{} in~ (IocHashes)", table.column(field)));
        }
    }
    // Networks, on each address and on the host of each URL.
    let mut uses_url_host = false;
    let mut uses_url = false;
    let mut address_exprs: Vec<String> = fields
        .addresses
        .iter()
        .map(|(field, _)| format!("IocAddress({})", table.column(field)))
        .collect();
    let url_hosts: Vec<String> = fields
        .urls
        .iter()
        .map(|field| format!("IocUrlHost({})", table.column(field)))
        .collect();
    if lists.contains_key(&HuntList::Addresses) {
        for host in &url_hosts {
            uses_url_host = true;
            uses_address = true;
            conditions.push(format!("IocAddress({host}) in~ (IocAddresses)"));
        }
    }
    address_exprs.extend(url_hosts.iter().map(|host| format!("IocAddress({host})")));
    for address in &address_exprs {
        if lists.contains_key(&HuntList::NetworksV4) {
            uses_address = true;
            conditions.push(format!(
                "coalesce(ipv4_is_in_any_range({address}, IocNetworksV4), false)"
            ));
        }
        if lists.contains_key(&HuntList::NetworksV6) {
            uses_address = true;
            conditions.push(format!(
                "(isnull(parse_ipv4({address})) and \
                 coalesce(ipv6_is_in_any_range({address}, IocNetworksV6), false))"
            ));
        }
    }
    if (lists.contains_key(&HuntList::NetworksV4) || lists.contains_key(&HuntList::NetworksV6))
        && !url_hosts.is_empty()
    {
        uses_url_host = true;
    }
    if lists.contains_key(&HuntList::Domains) {
        for field in &fields.domains {
            conditions.push(format!(
                "trim_end(\"\\\\.\", {}) in~ (IocDomains)",
                table.column(field)
            ));
        }
        for host in &url_hosts {
            uses_url_host = true;
            conditions.push(format!("{host} in~ (IocDomains)"));
        }
    }
    if lists.contains_key(&HuntList::Urls) {
        for field in &fields.urls {
            uses_url_host = true;
            uses_url = true;
            conditions.push(format!("IocUrl({}) in (IocUrls)", table.column(field)));
        }
    }

    // The exclusions, rendered first so that they can ask for IocAddress().
    let mut filters = String::new();
    for exclusion in detector.exclusions() {
        let condition = render(table, &exclusion.condition, true, &mut uses_address);
        let _ = writeln!(
            filters,
            "// Exclusion {}: {}",
            exclusion.name,
            one_line(&exclusion.reason)
        );
        let _ = writeln!(filters, "| where not({condition})");
    }

    let mut q = String::new();
    let of = if parts > 1 {
        format!(" (part {part} of {parts})")
    } else {
        String::new()
    };
    let _ = writeln!(
        q,
        "{QUERY_HEADER} {} indicators in {}{of}",
        one_line(title),
        table.name
    );
    let _ = writeln!(
        q,
        "// Written by `iocsieve rule`; means what the iocsieve edge filter matches."
    );
    if uses_address || uses_endpoint {
        let _ = writeln!(q, "{ADDRESS_FUNCTION}");
    }
    if uses_endpoint {
        let _ = writeln!(q, "{ENDPOINT_FUNCTION}");
    }
    if uses_url_host {
        let _ = writeln!(q, "{URL_HOST_FUNCTION}");
    }
    if uses_url {
        let _ = writeln!(q, "{URL_FUNCTION}");
    }
    for (list, values) in lists {
        let _ = writeln!(q, "let {} = {};", list.let_name(), dynamic_list(values));
    }
    let _ = writeln!(q, "{}", table.name);
    let _ = writeln!(q, "| where {}", conditions.join("\n    or "));
    q.push_str(&filters);
    let _ = writeln!(q, "| project {}", table.project.join(", "));
    let _ = writeln!(q, "| order by {} desc", table.time_column);
    q
}

/// An exclusion condition as a KQL expression. `top` leaves the outer `and`/`or` without
/// parentheses (it sits in `not(...)`).
fn render(table: &SentinelTable, c: &Condition, top: bool, uses_address: &mut bool) -> String {
    let group = |list: &[Condition], op: &str, uses_address: &mut bool| {
        let inner: Vec<String> = list
            .iter()
            .map(|c| render(table, c, false, uses_address))
            .collect();
        if top || inner.len() == 1 {
            inner.join(op)
        } else {
            format!("({})", inner.join(op))
        }
    };
    match c {
        Condition::All(list) => group(list, " and ", uses_address),
        Condition::Any(list) => group(list, " or ", uses_address),
        Condition::Not(inner) => format!("not({})", render(table, inner, true, uses_address)),
        Condition::Field { field, test, .. } => {
            let column = table.column(field);
            match test {
                Test::Equals(v) => format!("{column} =~ {}", string_literal(v)),
                Test::OneOf(vs) => format!("{column} in~ ({})", literals(vs)),
                Test::Has(v) => format!("{column} has {}", string_literal(v)),
                Test::HasAny(vs) => format!("{column} has_any ({})", literals(vs)),
                Test::StartsWith(v) => format!("{column} startswith {}", string_literal(v)),
                Test::EndsWith(v) => format!("{column} endswith {}", string_literal(v)),
                Test::InCidr(nets) => {
                    *uses_address = true;
                    let address = format!("IocAddress({column})");
                    let tests: Vec<String> = nets.iter().map(|n| in_network(&address, n)).collect();
                    if tests.len() == 1 || top {
                        tests.join(" or ")
                    } else {
                        format!("({})", tests.join(" or "))
                    }
                }
            }
        }
    }
}

/// Whether an address is in a network. The range functions give null for an address of
/// the other family; `coalesce` makes that false, so `not()` of it stays true. An IPv4
/// address is never in an IPv6 network, as at the edge (KQL's IPv6 functions would
/// otherwise read it as IPv4-mapped).
fn in_network(address: &str, net: &IpNet) -> String {
    let literal = string_literal(&net.trunc().to_string());
    match net {
        IpNet::V4(_) => format!("coalesce(ipv4_is_in_range({address}, {literal}), false)"),
        IpNet::V6(_) => format!(
            "(isnull(parse_ipv4({address})) and coalesce(ipv6_is_in_range({address}, {literal}), \
             false))"
        ),
    }
}

/// A `dynamic([...])` of strings, packed a few to a line when long.
fn dynamic_list(values: &[&str]) -> String {
    let items: Vec<String> = values.iter().map(|v| string_literal(v)).collect();
    let inline = items.join(", ");
    if inline.len() <= 72 {
        return format!("dynamic([{inline}])");
    }
    let mut out = String::from("dynamic([\n");
    let mut line = String::new();
    for (n, item) in items.iter().enumerate() {
        let piece = if n + 1 < items.len() {
            format!("{item},")
        } else {
            item.clone()
        };
        if !line.is_empty() && line.len() + 1 + piece.len() > 96 {
            let _ = writeln!(out, "    {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&piece);
    }
    let _ = writeln!(out, "    {line}");
    out.push_str("])");
    out
}

fn literals(values: &[String]) -> String {
    values
        .iter()
        .map(|v| string_literal(v))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A KQL string literal: double quotes, with backslash escapes.
pub fn string_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for ch in value.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for a `//` comment: one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn join_words(words: &[String]) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        [init @ .., last] => format!("{}, and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SettingsConfig;

    fn rendered(rule_toml: &str, table: &str) -> String {
        let settings = format!(
            "default_exclusions = false\n[[exclusions]]\nname = \"t\"\nreason = \"r\"\n{rule_toml}"
        );
        let config = SettingsConfig::parse(&settings).unwrap();
        let (detector, _) = Detector::build_with(&[], &config).unwrap();
        let mut uses = false;
        render(
            SentinelTable::named(table).unwrap(),
            &detector.exclusions()[0].condition,
            true,
            &mut uses,
        )
    }

    #[test]
    fn operators_become_their_kql_operators() {
        let t = "DeviceNetworkEvents";
        assert_eq!(
            rendered(
                r#"when = { field = "InitiatingProcessAccountName", equals = "Root" }"#,
                t
            ),
            r#"InitiatingProcessAccountName =~ "root""#
        );
        assert_eq!(
            rendered(
                r#"when = { field = "InitiatingProcessFileName", in = ["a", "b"] }"#,
                t
            ),
            r#"InitiatingProcessFileName in~ ("a", "b")"#
        );
        assert_eq!(
            rendered(
                r#"when = { field = "InitiatingProcessCommandLine", has = "x y" }"#,
                t
            ),
            r#"InitiatingProcessCommandLine has "x y""#
        );
        assert_eq!(
            rendered(r#"when = { field = "RemoteUrl", has_any = ["a", "b"] }"#, t),
            r#"RemoteUrl has_any ("a", "b")"#
        );
        assert_eq!(
            rendered(
                r#"when = { field = "InitiatingProcessFolderPath", startswith = "/tmp/" }"#,
                t
            ),
            r#"InitiatingProcessFolderPath startswith "/tmp/""#
        );
        assert_eq!(
            rendered(
                r#"when = { field = "InitiatingProcessFolderPath", endswith = "/nc" }"#,
                t
            ),
            r#"InitiatingProcessFolderPath endswith "/nc""#
        );
    }

    #[test]
    fn networks_are_tested_per_family_after_normalisation() {
        let kql = rendered(
            r#"when = { field = "LocalIP", in_cidr = ["10.1.2.3/8", "2001:db8::/32"] }"#,
            "DeviceNetworkEvents",
        );
        assert_eq!(
            kql,
            "coalesce(ipv4_is_in_range(IocAddress(LocalIP), \"10.0.0.0/8\"), false) or \
             (isnull(parse_ipv4(IocAddress(LocalIP))) and \
             coalesce(ipv6_is_in_range(IocAddress(LocalIP), \"2001:db8::/32\"), false))"
        );
    }

    #[test]
    fn groups_nest_with_parentheses_and_missing_columns_read_as_empty() {
        let kql = rendered(
            r#"when.any = [
                 { all = [ { field = "DeviceVendor", equals = "x" },
                           { not = { field = "RemotePort", in = ["80", "443"] } } ] },
                 { field = "zeek.uid", equals = "q\"uote" } ]"#,
            "DeviceNetworkEvents",
        );
        assert_eq!(
            kql,
            "(tostring(column_ifexists(\"DeviceVendor\", \"\")) =~ \"x\" and \
             not(tostring(RemotePort) in~ (\"80\", \"443\"))) or \
             tostring(column_ifexists(\"zeek.uid\", \"\")) =~ \"q\\\"uote\""
        );
    }

    #[test]
    fn long_lists_wrap() {
        let values: Vec<String> = (0..40).map(|n| format!("10.0.0.{n}")).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let list = dynamic_list(&refs);
        assert!(list.starts_with("dynamic([\n"));
        assert!(list.lines().all(|l| l.len() <= 100));
        assert_eq!(list.matches("\"10.0.0.").count(), 40);
        assert_eq!(dynamic_list(&["a"]), "dynamic([\"a\"])");
    }
}
