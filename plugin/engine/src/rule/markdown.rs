//! The rule as a Markdown document: description, IOC summary, indicators, queries,
//! exclusions, how the queries agree with the edge, and the tables to connect.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use super::kql::SentinelTable;
use super::{Rule, Selection};
use crate::indicator::{IndicatorValue, Kind, StoredValue};

pub(super) fn document(rule: &Rule) -> String {
    let mut d = String::new();
    let title = rule.title();
    let _ = writeln!(d, "# Hunting rule: {} indicators\n", cell(&title));
    description(&mut d, rule);
    summary(&mut d, rule);
    indicator_table(&mut d, rule);
    queries(&mut d, rule);
    exclusions(&mut d, rule);
    agreement(&mut d, rule);
    tables(&mut d, rule);
    while d.ends_with("\n\n") {
        d.pop();
    }
    d
}

fn description(d: &mut String, rule: &Rule) {
    let n = rule.indicators.len();
    let families: Vec<String> = rule.census.families.keys().map(family_phrase).collect();
    let family = match &rule.selection {
        Selection::ThreatType(t) => format!("the threat type `{t}`"),
        _ if families.len() <= 3 => join_words(&families),
        _ => format!("{} malware families", families.len()),
    };
    let _ = writeln!(d, "## Description\n");
    let _ = write!(
        d,
        "This rule hunts Microsoft Sentinel for the {n} {} of {family} that {} {}: {}. ",
        plural(
            n as u64,
            "indicator of compromise",
            "indicators of compromise"
        ),
        join_words(
            &rule
                .feeds
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
        ),
        if rule.feeds.len() == 1 {
            "lists"
        } else {
            "list"
        },
        kinds_phrase(rule),
    );
    let threats = threat_counts(rule);
    if !threats.is_empty() {
        let listed: Vec<String> = threats
            .iter()
            .map(|(t, c)| format!("{} ({c})", threat_phrase(t)))
            .collect();
        let _ = write!(d, "The feed reports them as {}. ", join_words(&listed));
    }
    let malware = rule
        .census
        .family_name()
        .unwrap_or_else(|| "the malware".to_string());
    let _ = write!(
        d,
        "A connection to or from one of these endpoints, or a file or process with one of these \
         hashes, points to a host that {malware} has infected or is reaching; hunting over \
         history finds such activity from before the indicators reached the iocsieve edge \
         filter, and on hosts whose logs do not pass through it. The queries match what the \
         edge filter matches and leave out what its {} {} suppress, so a hunt here and the hits \
         at the edge agree.\n\n",
        rule.exclusions.len(),
        plural(rule.exclusions.len() as u64, "exclusion", "exclusions"),
    );
}

fn summary(d: &mut String, rule: &Rule) {
    let _ = writeln!(d, "## IOC summary\n");
    let _ = writeln!(d, "| | |\n|---|---|");
    let families: Vec<String> = rule.census.families.keys().map(family_phrase).collect();
    let _ = writeln!(d, "| Malware family | {} |", cell(&families.join("; ")));
    let selection = match &rule.selection {
        Selection::All => "all indicators of the feeds".to_string(),
        Selection::Malware(m) => format!("malware `{m}` (name, id or alias, any case)"),
        Selection::ThreatType(t) => format!("threat type `{t}`"),
    };
    let _ = writeln!(d, "| Selected | {} |", cell(&selection));
    let feeds: Vec<String> = rule.feeds.iter().map(|f| format!("`{f}`")).collect();
    let _ = writeln!(d, "| Feeds | {} |", cell(&feeds.join(", ")));
    let _ = writeln!(d, "| Feed entries | {} |", rule.census.entries());
    let _ = writeln!(d, "| Indicators loaded and hunted | {} |", hunted(rule));
    let _ = writeln!(d, "| Kinds present | {} |", kinds_phrase(rule));
    let threats: Vec<String> = threat_counts(rule)
        .iter()
        .map(|(t, c)| format!("{t} {c}"))
        .collect();
    let _ = writeln!(d, "| Threat types | {} |", cell(&threats.join(", ")));
    let seen: Vec<i64> = rule
        .indicators
        .iter()
        .filter_map(|i| i.first_seen)
        .collect();
    if let (Some(first), Some(last)) = (seen.iter().min(), seen.iter().max()) {
        let _ = writeln!(d, "| First seen | {} to {} |", date(*first), date(*last));
    }
    let _ = writeln!(d);

    let _ = writeln!(
        d,
        "Feed entries by the feed's type, and what the engine loaded:\n"
    );
    let _ = writeln!(d, "| Feed type | Entries | Loaded | Not loaded |");
    let _ = writeln!(d, "|---|---:|---:|---|");
    for (ioc_type, t) in &rule.census.by_type {
        let not_loaded: Vec<String> = t
            .not_loaded
            .iter()
            .map(|(reason, n)| format!("{n} ({reason})"))
            .collect();
        let _ = writeln!(
            d,
            "| {} | {} | {} | {} |",
            cell(ioc_type),
            t.entries,
            t.loaded,
            cell(&not_loaded.join(", "))
        );
    }
    let _ = writeln!(
        d,
        "| **Total** | **{}** | **{}** | {} |\n",
        rule.census.entries(),
        rule.census.loaded(),
        rule.census.entries() - rule.census.loaded()
    );
    let missing = rule.census.entries() - rule.census.loaded();
    if missing > 0 {
        let _ = writeln!(
            d,
            "{missing} {} of the feed {} not loaded by the engine, so the queries below do not \
             hunt {}.\n",
            plural(missing, "entry", "entries"),
            if missing == 1 { "is" } else { "are" },
            if missing == 1 { "it" } else { "them" },
        );
    }
    for (kind, n) in &rule.not_hunted {
        let _ = writeln!(
            d,
            "{n} loaded {kind} {} no query of this rule hunts yet.\n",
            plural(*n, "indicator", "indicators"),
        );
    }
}

fn indicator_table(d: &mut String, rule: &Rule) {
    let _ = writeln!(d, "## Indicators\n");
    let _ = writeln!(
        d,
        "Values are defanged; the queries hold them as they are.\n"
    );
    let _ = writeln!(
        d,
        "| Type | Indicator (defanged) | Threat type | Malware | First seen | Confidence |"
    );
    let _ = writeln!(d, "|---|---|---|---|---|---:|");
    for i in &rule.indicators {
        let _ = writeln!(
            d,
            "| {} | `{}` | {} | {} | {} | {} |",
            i.kind.name(),
            defang_stored(&i.value),
            cell(&i.threat_type),
            cell(&i.malware_printable),
            i.first_seen.map_or_else(|| "-".to_string(), date),
            i.confidence
                .map_or_else(|| "-".to_string(), |c| format!("{c}%")),
        );
    }
    let _ = writeln!(d);
}

fn queries(d: &mut String, rule: &Rule) {
    let _ = writeln!(d, "## Hunting queries\n");
    let _ = writeln!(
        d,
        "Run them in Microsoft Sentinel (Logs, or Hunting as a custom query) over the time range \
         to hunt in. Each is self-contained: it defines the helper functions it uses \
         (`IocAddress`, `IocEndpoint`) and holds its indicators in `let` lists; lists longer \
         than {} values in all are split over several queries (part 1 of n, ...), which \
         together mean one query.\n",
        rule.max_list
    );
    let mut current = "";
    for q in &rule.queries {
        if q.table != current {
            let _ = writeln!(d, "### {}\n", q.table);
            let _ = writeln!(d, "{}\n", q.matches);
            current = q.table;
        }
        if q.parts > 1 {
            let _ = writeln!(d, "Part {} of {}:\n", q.part, q.parts);
        }
        let _ = writeln!(d, "```kql\n{}```\n", q.text);
    }
    for (table, why) in &rule.tables_without_query {
        let _ = writeln!(d, "### {table}\n\nNo query: {why}.\n");
    }
}

fn exclusions(d: &mut String, rule: &Rule) {
    let _ = writeln!(d, "## False-positive scenarios (exclusions)\n");
    if rule.exclusions.is_empty() {
        let _ = writeln!(
            d,
            "No exclusion is in force: every match is a hit, at the edge and here.\n"
        );
        return;
    }
    let _ = writeln!(
        d,
        "The edge filter suppresses a hit on a record that one of these rules holds for; every \
         query above drops the same records with the filter shown. Operators ignore case.\n"
    );
    for (n, e) in rule.exclusions.iter().enumerate() {
        let _ = writeln!(
            d,
            "{}. **{}**: {}.",
            n + 1,
            e.name,
            e.reason.trim_end_matches('.')
        );
        // The filter as it appears in the DeviceNetworkEvents query, where Defender's
        // process columns live.
        let filter = rule
            .queries
            .iter()
            .find(|q| q.table == "DeviceNetworkEvents")
            .or_else(|| rule.queries.first())
            .and_then(|q| exclusion_filter(&q.text, &e.name));
        if let Some(filter) = filter {
            let _ = writeln!(d, "   ```kql\n   {filter}\n   ```");
        }
    }
    let _ = writeln!(d);
}

/// The `| where not(...)` line that follows an exclusion's comment in a query.
fn exclusion_filter<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    let marker = format!("// Exclusion {name}:");
    let mut lines = query.lines();
    lines.find(|l| l.starts_with(&marker))?;
    lines.next()
}

fn agreement(d: &mut String, rule: &Rule) {
    let _ = writeln!(d, "## How the queries agree with the edge filter\n");
    let mut points = Vec::new();
    if rule.match_address_only {
        points.push(
            "Address-only matching is on (`match_address_only`): an ip:port indicator also \
             matches its address on any port, so the queries list its address alone. The edge \
             marks such hits `AddressOnly` and halves their confidence; the queries do not tell \
             them apart."
                .to_string(),
        );
    } else {
        points.push(
            "An ip:port indicator matches only with the port on the same side: `DestinationIP` \
             with `DestinationPort`, `SourceIP` with `SourcePort`, `RemoteIP` with `RemotePort`, \
             `LocalIP` with `LocalPort`. An address indicator without a port matches on any \
             port."
                .to_string(),
        );
    }
    points.push(format!(
        "`IocAddress()` turns an IPv4-mapped IPv6 address written `::ffff:a.b.c.d` (any case) \
         into `a.b.c.d` before comparing, as the edge does. Here the queries do less than the \
         edge: the edge parses every spelling of an address (`::ffff:c230:fb18`, \
         `0:0:0:0:0:ffff:a.b.c.d`, leading zeros, brackets, zone ids), while the queries compare \
         addresses as text, ignoring case, with IPv6 indicators in the compressed form of \
         RFC 5952 (`{}`), so a log that spells an address another way matches at the edge only.",
        "2001:db8::1"
    ));
    points.push(
        "Every hash column is compared with every MD5, SHA-1 and SHA-256 indicator, ignoring \
         case (`in~`); the edge recognises the hash kind by its length in any hash column, \
         which comes to the same."
            .to_string(),
    );
    points.push(
        "Exclusions read fields the table may lack with `column_ifexists()`, which gives an \
         empty string, so a test of a missing field is false, as at the edge. The edge tells a \
         missing field from an empty one and KQL does not, so a test against the empty string \
         can differ. `in_cidr` becomes `ipv4_is_in_range`/`ipv6_is_in_range` on the \
         normalised address; an IPv4 address is never in an IPv6 network, as at the edge."
            .to_string(),
    );
    points.push(
        "The edge stops matching an indicator after its valid-until time; the queries hunt every \
         indicator over the whole time range you choose, which is the point of a hunt over \
         history."
            .to_string(),
    );
    let has = |kind: Kind| rule.indicators.iter().any(|i| i.kind == kind);
    if has(Kind::Ipv4Cidr) || has(Kind::Ipv6Cidr) {
        points.push(
            "Network indicators are tested with `ipv4_is_in_any_range`/`ipv6_is_in_any_range` \
             on the normalised address of every address column and on the host of every URL \
             column (`IocNetworksV4`, `IocNetworksV6`), as at the edge; an IPv4 address is never \
             in an IPv6 network."
                .to_string(),
        );
    }
    if has(Kind::Domain) {
        points.push(
            "Domain indicators are compared, ignoring case (`in~`), with the domain columns \
             (trailing dot dropped) and with the host of every URL column. `IocUrlHost()` reads \
             the host with `parse_url`, putting `http://` in front of a value without a scheme, \
             so a bare host name (Defender's `RemoteUrl` often holds one) is its own host, as \
             at the edge. The edge also reads defanged and internationalised names (as \
             punycode); the queries compare the names as logged."
                .to_string(),
        );
    }
    if !rule.subdomain_feeds.is_empty() {
        let feeds: Vec<String> = rule
            .subdomain_feeds
            .iter()
            .map(|f| format!("`{f}`"))
            .collect();
        points.push(format!(
            "At the edge the domains of {} also match every name under them \
             (`domain_match = \"subdomains\"`: `a.evil.example` under `evil.example`). The \
             queries match the exact names only, so a hunt here misses subdomains the edge \
             finds; to hunt them, add `or IocUrlHost(RemoteUrl) endswith \".evil.example\"` \
             (a dot before the name, so only whole labels match) for the names that matter.",
            join_words(&feeds)
        ));
    }
    if has(Kind::Url) {
        points.push(
            "URL indicators are compared with `IocUrl()` of each URL column, which normalises \
             as the edge does: scheme and host in lower case, the default port dropped, an \
             empty path written `/`, the fragment dropped, a value without a scheme read as \
             `http://`. Path and query stay as written and the comparison is `in`, which \
             respects case, so `/Bins/x` and `/bins/x` differ here as they do at the edge. The \
             edge also refangs a logged URL and writes an IPv6 host in its compressed form; \
             the queries compare the URL as logged. A bare host name in a URL column (no \
             `/`) is only a domain at the edge, while `IocUrl()` reads it as `http://name/`, so \
             a URL indicator with an empty path also matches it here."
                .to_string(),
        );
    }
    if rule.match_address_only
        && has(Kind::IpPort)
        && rule.queries.iter().any(|q| q.text.contains("IocUrlHost("))
    {
        points.push(
            "With address-only matching, the host of a URL column is compared with the \
             addresses of ip:port indicators too (they share `IocAddresses`); the edge \
             compares a URL's host with address and network indicators only, so such a match \
             is found here and not at the edge."
                .to_string(),
        );
    }
    let missing = rule.census.entries() - rule.census.loaded();
    if missing > 0 {
        points.push(format!(
            "Feed entries the engine does not load ({missing}, see the IOC summary) are in \
             neither the edge filter nor these queries."
        ));
    }
    for p in points {
        let _ = writeln!(d, "- {p}");
    }
    let _ = writeln!(d);
}

fn tables(d: &mut String, rule: &Rule) {
    let _ = writeln!(d, "## Sentinel tables used\n");
    let _ = writeln!(d, "| Table | Queries | Data connector to enable |");
    let _ = writeln!(d, "|---|---:|---|");
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for q in &rule.queries {
        *counts.entry(q.table).or_default() += 1;
    }
    for table in &super::TABLES {
        let Some(n) = counts.get(table.name) else {
            continue;
        };
        let _ = writeln!(
            d,
            "| {} | {n} | {} |",
            table.name,
            cell(&connector_note(table))
        );
    }
    let _ = writeln!(
        d,
        "\nA query over a table no connector fills returns nothing, which is not the same as \
         finding nothing: check that each table above receives data before trusting an empty \
         result.\n"
    );
}

fn connector_note(table: &SentinelTable) -> String {
    table.connector.to_string()
}

fn hunted(rule: &Rule) -> usize {
    rule.indicators.len() - rule.not_hunted.values().sum::<u64>() as usize
}

fn kinds_phrase(rule: &Rule) -> String {
    let mut counts: BTreeMap<Kind, u64> = BTreeMap::new();
    for i in &rule.indicators {
        *counts.entry(i.kind).or_default() += 1;
    }
    if counts.is_empty() {
        return "none the engine loads".to_string();
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(kind, n)| format!("{n} {}", kind_phrase(*kind, *n)))
        .collect();
    join_words(&parts)
}

fn kind_phrase(kind: Kind, n: u64) -> String {
    #[allow(
        unreachable_patterns,
        reason = "kinds added to the engine later are named by their own name"
    )]
    let (one, many) = match kind {
        Kind::Ipv4 => ("IPv4 address", "IPv4 addresses"),
        Kind::Ipv6 => ("IPv6 address", "IPv6 addresses"),
        Kind::IpPort => ("ip:port endpoint", "ip:port endpoints"),
        Kind::Md5 => ("MD5 hash", "MD5 hashes"),
        Kind::Sha1 => ("SHA-1 hash", "SHA-1 hashes"),
        Kind::Sha256 => ("SHA-256 hash", "SHA-256 hashes"),
        Kind::Ipv4Cidr => ("IPv4 network", "IPv4 networks"),
        Kind::Ipv6Cidr => ("IPv6 network", "IPv6 networks"),
        Kind::Domain => ("domain", "domains"),
        Kind::Url => ("URL", "URLs"),
        _ => return format!("{} ({})", kind.name(), plural(n, "indicator", "indicators")),
    };
    plural(n, one, many).to_string()
}

fn threat_counts(rule: &Rule) -> BTreeMap<&str, u64> {
    let mut counts = BTreeMap::new();
    for i in &rule.indicators {
        if !i.threat_type.is_empty() {
            *counts.entry(i.threat_type.as_str()).or_default() += 1;
        }
    }
    counts
}

fn threat_phrase(threat_type: &str) -> String {
    match threat_type {
        "botnet_cc" => "botnet command-and-control".to_string(),
        "payload" => "malware payload".to_string(),
        "payload_delivery" => "payload delivery".to_string(),
        "cc_skimming" => "card skimming".to_string(),
        other => format!("`{other}`"),
    }
}

fn family_phrase((printable, id, aliases): &(String, String, String)) -> String {
    let name = if printable.is_empty() {
        "an unnamed family"
    } else {
        printable
    };
    let mut extra = Vec::new();
    if !id.is_empty() {
        extra.push(format!("`{id}`"));
    }
    if !aliases.trim().is_empty() {
        let list: Vec<&str> = aliases.split(',').map(str::trim).collect();
        extra.push(format!("also known as {}", list.join(", ")));
    }
    if extra.is_empty() {
        name.to_string()
    } else {
        format!("{name} ({})", extra.join(", "))
    }
}

/// Writes an indicator so that it cannot be clicked or pasted by mistake: dots in
/// addresses become `[.]`, colons in IPv6 addresses `[:]`. Hashes stay as they are.
fn defang_stored(value: &StoredValue) -> String {
    match value {
        StoredValue::Value(v) => defang(v),
        // Domains and URLs: dots become `[.]`, and a URL's scheme `hxxp`.
        StoredValue::Text(_, text) => {
            let text = text.replace('.', "[.]");
            match text.strip_prefix("http") {
                Some(rest) => format!("hxxp{rest}"),
                None => text,
            }
        }
    }
}

fn defang(value: &IndicatorValue) -> String {
    fn address(addr: IpAddr) -> String {
        match addr {
            IpAddr::V4(a) => a.to_string().replace('.', "[.]"),
            IpAddr::V6(a) => a.to_string().replace(':', "[:]"),
        }
    }
    match value {
        IndicatorValue::Ip(addr) => address(*addr),
        IndicatorValue::IpPort(addr @ IpAddr::V4(_), port) => format!("{}:{port}", address(*addr)),
        IndicatorValue::IpPort(addr, port) => format!("[{}]:{port}", address(*addr)),
        IndicatorValue::Net(net) => format!("{}/{}", address(net.network()), net.prefix_len()),
        other => other.to_string(),
    }
}

fn date(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => {
            let date = t.date();
            format!(
                "{:04}-{:02}-{:02}",
                date.year(),
                u8::from(date.month()),
                date.day()
            )
        }
        Err(_) => "-".to_string(),
    }
}

/// Text safe in a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
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
    use crate::rule::kql::string_literal;

    #[test]
    fn defangs_addresses_and_endpoints() {
        let v4: IpAddr = "194.48.251.24".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            defang(&IndicatorValue::IpPort(v4, 80)),
            "194[.]48[.]251[.]24:80"
        );
        assert_eq!(defang(&IndicatorValue::Ip(v6)), "2001[:]db8[:][:]1");
        assert_eq!(
            defang(&IndicatorValue::IpPort(v6, 443)),
            "[2001[:]db8[:][:]1]:443"
        );
        assert_eq!(
            crate::normalize::refang("194[.]48[.]251[.]24:80"),
            "194.48.251.24:80"
        );
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(date(1_781_856_764), "2026-06-19");
        assert_eq!(date(0), "1970-01-01");
    }

    #[test]
    fn string_literals_escape_quotes() {
        assert_eq!(string_literal("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
