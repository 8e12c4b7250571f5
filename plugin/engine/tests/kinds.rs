//! Each indicator kind through the engine: a hit and a near miss, with feeds declared in
//! settings as a plain list.

use iocsieve_engine::{Detector, Engine, FeedFormat, FeedInput, LoadStats, MatchReport, Verdict};

const NOW: i64 = 1_796_342_400; // 2026-12-04

fn engine(feeds: &[(&str, &str)], settings: &str) -> (Engine, LoadStats) {
    let inputs: Vec<FeedInput<'_>> = feeds
        .iter()
        .map(|(name, content)| FeedInput::detected(name, content.as_bytes()))
        .collect();
    let (detector, stats) = Detector::build(&inputs, settings).expect("loads");
    (Engine::new(detector), stats)
}

fn list_settings(name: &str, kind: &str, extra: &str) -> String {
    format!("[[feeds]]\nname = \"{name}\"\nformat = \"list:{kind}\"\n{extra}\n")
}

fn matches(engine: &mut Engine, record: &str) -> Vec<MatchReport> {
    match engine.evaluate(record.as_bytes(), NOW).verdict {
        Verdict::Hit(m) => m,
        Verdict::Miss => Vec::new(),
        other => panic!("unexpected verdict {other:?}"),
    }
}

fn csl(field: &str, value: &str) -> String {
    format!(r#"{{"DeviceVendor":"PAN","{field}":"{value}"}}"#)
}

#[test]
fn networks_match_addresses_inside_most_specific_first() {
    let feed = "45.10.0.0/16\n45.10.20.0/24\n2a00:1450::/32\n45.10.20.9/32\n";
    let (mut e, stats) = engine(
        &[("nets.txt", feed)],
        &list_settings("nets.txt", "cidr", ""),
    );
    assert_eq!(stats.feeds[0].loaded_of(iocsieve_engine::Kind::Ipv4Cidr), 2);
    assert_eq!(stats.feeds[0].loaded_of(iocsieve_engine::Kind::Ipv4), 1);
    let m = matches(&mut e, &csl("DestinationIP", "45.10.20.9"));
    let found: Vec<&str> = m.iter().map(|m| m.indicator.as_str()).collect();
    assert_eq!(found, ["45.10.20.9", "45.10.20.0/24", "45.10.0.0/16"]);
    assert_eq!(m[1].kind.name(), "ipv4-cidr");
    assert_eq!(m[1].feed, "nets.txt");
    let outcome = e.evaluate(csl("DestinationIP", "45.10.200.1").as_bytes(), NOW);
    let iocsieve_engine::Emit::Enriched(enriched) = outcome.emit else {
        panic!("a hit is enriched")
    };
    let enriched: serde_json::Value = serde_json::from_slice(enriched).unwrap();
    assert_eq!(enriched["iocsieve"]["ThreatIpAddr"], "45.10.200.1");
    assert_eq!(enriched["iocsieve"]["IndicatorKind"], "ipv4-cidr");
    let m = matches(&mut e, &csl("DestinationIP", "45.10.200.1"));
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].indicator, "45.10.0.0/16");
    assert!(
        matches(&mut e, &csl("DestinationIP", "45.11.0.1")).is_empty(),
        "near miss"
    );
    let m = matches(&mut e, &csl("DestinationIP", "2a00:1450:4001::1"));
    assert_eq!(m[0].kind.name(), "ipv6-cidr");
    assert!(
        matches(&mut e, &csl("DestinationIP", "2a00:1451::1")).is_empty(),
        "near miss"
    );
}

#[test]
fn domains_match_whole_names_ignoring_case_root_dot_and_unicode_form() {
    let feed = "Evil.Top.\nhigan.org\nbücher.top\n";
    let (mut e, _) = engine(&[("d.txt", feed)], &list_settings("d.txt", "domain", ""));
    let m = matches(&mut e, &csl("DestinationHostName", "EVIL.top."));
    assert_eq!(
        (m[0].indicator.as_str(), m[0].role.as_str()),
        ("evil.top", "DstHostname")
    );
    assert_eq!(m[0].kind.name(), "domain");
    assert!(matches(&mut e, &csl("DestinationHostName", "michigan.org")).is_empty());
    assert!(
        matches(&mut e, &csl("DestinationHostName", "a.evil.top")).is_empty(),
        "exact by default"
    );
    assert_eq!(
        matches(&mut e, &csl("DestinationDnsDomain", "xn--bcher-kva.top"))[0].indicator,
        "xn--bcher-kva.top"
    );
    assert_eq!(
        matches(&mut e, &csl("DestinationHostName", "BÜCHER.top")).len(),
        1
    );
    assert!(matches(&mut e, &csl("DestinationHostName", "evil.top.net")).is_empty());
}

#[test]
fn a_feed_can_match_subdomains_but_never_substrings() {
    let settings = list_settings("d.txt", "domain", "domain_match = \"subdomains\"");
    let (mut e, _) = engine(&[("d.txt", "evil.top\nhigan.org\n")], &settings);
    let m = matches(&mut e, &csl("DestinationHostName", "a.b.evil.top"));
    assert_eq!(m[0].indicator, "evil.top");
    assert_eq!(
        matches(&mut e, &csl("DestinationHostName", "evil.top")).len(),
        1
    );
    assert!(matches(&mut e, &csl("DestinationHostName", "michigan.org")).is_empty());
    assert!(matches(&mut e, &csl("DestinationHostName", "notevil.top")).is_empty());
    // Through a URL field, by the URL's host.
    let m = matches(&mut e, &csl("RequestURL", "https://cdn.evil.top/x.js"));
    assert_eq!(
        (m[0].indicator.as_str(), m[0].role.as_str()),
        ("evil.top", "Url")
    );
}

#[test]
fn urls_normalise_scheme_host_port_and_empty_path_but_not_path_case() {
    let feed = "hxxp://Evil[.]Top:80\nhttps://evil.top/Path?A=1\n";
    let (mut e, _) = engine(&[("u.txt", feed)], &list_settings("u.txt", "url", ""));
    let m = matches(&mut e, &csl("RequestURL", "http://evil.top/"));
    assert_eq!(
        (m[0].indicator.as_str(), m[0].kind.name()),
        ("http://evil.top/", "url")
    );
    assert_eq!(
        matches(&mut e, &csl("RequestURL", "HTTPS://EVIL.TOP:443/Path?A=1")).len(),
        1
    );
    assert!(matches(&mut e, &csl("RequestURL", "https://evil.top/path?A=1")).is_empty());
    assert!(matches(&mut e, &csl("RequestURL", "http://evil.top/x")).is_empty());
    assert!(
        matches(&mut e, &csl("DestinationHostName", "evil.top")).is_empty(),
        "a URL does not match its host unless asked"
    );
    // Defender's RemoteUrl.
    let record = r#"{"RemoteIP":"45.1.1.1","RemoteUrl":"http://evil.top"}"#;
    assert_eq!(matches(&mut e, record)[0].role, "Url");
}

#[test]
fn url_hosts_are_indicators_when_the_feed_asks() {
    let settings = list_settings("u.txt", "url", "url_hosts = true");
    let feed = "http://evil.top/a\nhttp://45.9.9.9:8080/b\nhttp://www.google.com/x\n";
    let (mut e, stats) = engine(&[("u.txt", feed)], &settings);
    assert_eq!(stats.feeds[0].loaded["domain (url host)"], 1);
    assert_eq!(stats.feeds[0].loaded["ipv4 (url host)"], 1);
    assert_eq!(
        stats.feeds[0].skipped["url host: warninglist: popular domain"],
        1
    );
    assert_eq!(
        matches(&mut e, &csl("DestinationHostName", "evil.top")).len(),
        1
    );
    assert_eq!(matches(&mut e, &csl("DestinationIP", "45.9.9.9")).len(), 1);
    assert!(matches(&mut e, &csl("DestinationHostName", "www.google.com")).is_empty());
}

#[test]
fn expired_indicators_do_not_match_and_are_counted() {
    let header = "# \"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\",\"threat_type\",\"fk_malware\",\"malware_alias\",\"malware_printable\",\"last_seen_utc\",\"confidence_level\",\"is_compromised\",\"reference\",\"tags\",\"anonymous\",\"reporter\"\n";
    let row = |id: &str, ip: &str, first: &str, last: &str| {
        format!(
            "\"{first}\", \"{id}\", \"{ip}:80\", \"ip:port\", \"botnet_cc\", \"x\", \"None\", \"X\", \"{last}\", \"75\", \"False\", \"None\", \"None\", \"0\", \"r\"\n"
        )
    };
    let feed = format!(
        "{header}{}{}{}",
        row("1", "45.1.1.1", "2026-11-20 00:00:00", ""),
        row(
            "2",
            "45.2.2.2",
            "2026-01-01 00:00:00",
            "2026-11-30 00:00:00"
        ),
        row("3", "45.3.3.3", "2026-01-01 00:00:00", ""),
    );
    let settings = "[[feeds]]\nname = \"tf.csv\"\nttl_days = 30\n";
    let (mut e, _) = engine(&[("tf.csv", &feed)], settings);
    let rec = |ip: &str| format!(r#"{{"RemoteIP":"{ip}","RemotePort":80}}"#);
    assert_eq!(
        matches(&mut e, &rec("45.1.1.1")).len(),
        1,
        "first seen 14 days ago"
    );
    assert_eq!(
        matches(&mut e, &rec("45.2.2.2")).len(),
        1,
        "last seen 4 days ago"
    );
    assert!(
        matches(&mut e, &rec("45.3.3.3")).is_empty(),
        "first seen 11 months ago"
    );
    assert_eq!(e.counters().expired, 1);
    assert!(e.counters().to_string().contains("expired=1"));
}

#[test]
fn minimum_confidence_per_kind_and_per_feed() {
    let feed = r#"{"1":[{"ioc_value":"45.1.1.1:80","ioc_type":"ip:port","confidence_level":40}],
                  "2":[{"ioc_value":"45.2.2.2:80","ioc_type":"ip:port","confidence_level":80}],
                  "3":[{"ioc_value":"evil.top","ioc_type":"domain","confidence_level":40}]}"#;
    let (mut e, stats) = engine(&[("tf.json", feed)], "[min_confidence]\nip = 50\n");
    assert_eq!(stats.feeds[0].skipped["below minimum confidence 50"], 1);
    assert_eq!(
        stats.feeds[0].loaded["domain"], 1,
        "the domain minimum is not set"
    );
    let rec = |ip: &str| format!(r#"{{"RemoteIP":"{ip}","RemotePort":80}}"#);
    assert!(matches(&mut e, &rec("45.1.1.1")).is_empty());
    assert_eq!(matches(&mut e, &rec("45.2.2.2")).len(), 1);
    let settings = "[[feeds]]\nname = \"tf.json\"\nmin_confidence = 90\n";
    let (_, stats) = engine(&[("tf.json", feed)], settings);
    assert_eq!(stats.feeds[0].skipped["below minimum confidence 90"], 3);
}

#[test]
fn the_guard_names_what_it_refuses() {
    let feed = "10.1.2.3\n8.8.8.8\n45.1.1.1\n45.0.0.0/8\n192.0.2.1\n46.1.1.1\n";
    let settings = list_settings("ips.txt", "ip", "") + "[guard]\nallow = [\"46.1.1.0/24\"]\n";
    let (_, stats) = engine(&[("ips.txt", feed)], &settings);
    let f = &stats.feeds[0];
    assert_eq!(f.loaded["ipv4"], 1);
    assert_eq!(f.skipped["warninglist: private range"], 1);
    assert_eq!(f.skipped["warninglist: public resolver"], 1);
    assert_eq!(f.skipped["warninglist: documentation range"], 1);
    assert_eq!(f.skipped["network wider than /16"], 1);
    assert_eq!(f.skipped["allowlisted"], 1);
    assert_eq!(f.examples["warninglist: public resolver"], ["8.8.8.8"]);
    let bad = Detector::build(&[], "[guard]\nallow = [\"???\"]\n").unwrap_err();
    assert!(bad.message.contains("???"), "{bad}");
}

#[test]
fn an_unknown_feed_format_in_settings_is_an_error_naming_it() {
    let input = FeedInput {
        name: "x.txt",
        format: FeedFormat::Auto,
        content: b"evil.top\n",
    };
    let err = Detector::build(
        &[input],
        "[[feeds]]\nname = \"x.txt\"\nformat = \"list:dns\"\n",
    )
    .unwrap_err();
    assert_eq!(err.input, "x.txt");
    assert!(err.message.contains("list:dns"), "{err}");
}
