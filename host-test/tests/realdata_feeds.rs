//! Every feed under ../shared/realdata/feeds loads, natively and through the component,
//! with the counts per kind and per skip reason pinned here. The expected counts were
//! worked out independently of the engine, with a Python reading of each file.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use iocsieve_engine::{Detector, FeedFormat, FeedInput, FeedStats};
use iocsieve_host::cases::shared_dir;
use iocsieve_host::input::bundle_misp_feed;

fn feed_path(relative: &str) -> PathBuf {
    shared_dir().join("realdata/feeds").join(relative)
}

/// Reads a feed as the host does (a MISP manifest with its event files bundled).
fn read(relative: &str) -> Vec<u8> {
    let path = feed_path(relative);
    let content = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bundle_misp_feed(&path, content).expect("bundles")
}

fn load_native(relative: &str, settings: &str) -> FeedStats {
    let content = read(relative);
    let input = FeedInput {
        name: relative,
        format: FeedFormat::Auto,
        content: &content,
    };
    let (_, stats) =
        Detector::build(&[input], settings).unwrap_or_else(|e| panic!("{relative} loads: {e}"));
    stats.feeds.into_iter().next().unwrap()
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[track_caller]
fn check(
    relative: &str,
    format: &str,
    entries: u64,
    loaded: &[(&str, u64)],
    skipped: &[(&str, u64)],
) {
    let stats = load_native(relative, "");
    println!("{relative}: {stats:?}");
    assert_eq!(stats.format, format, "{relative}");
    assert_eq!(stats.loaded, counts(loaded), "{relative} loaded");
    assert_eq!(stats.skipped, counts(skipped), "{relative} skipped");
    assert_eq!(stats.entries, entries, "{relative} entries");
    for (reason, examples) in &stats.examples {
        assert!(
            stats.skipped.contains_key(reason),
            "examples only for skip reasons"
        );
        assert!(
            !examples.is_empty() && examples.len() <= 3,
            "{reason}: {examples:?}"
        );
    }

    // The component reports the same counts.
    let content = read(relative);
    let instance_stats = {
        let mut instance = common::runtime().instantiate().expect("instantiates");
        let feed = iocsieve_host::component::Feed {
            name: relative.to_string(),
            format: iocsieve_host::component::FeedFormat::Auto,
            content,
        };
        instance
            .load(vec![feed], "")
            .expect("no trap")
            .expect("loads")
    };
    let f = &instance_stats.feeds[0];
    assert_eq!(f.format, format);
    let as_map = |list: &[iocsieve_host::component::NamedCount]| -> BTreeMap<String, u64> {
        list.iter().map(|n| (n.name.clone(), n.count)).collect()
    };
    assert_eq!(
        as_map(&f.loaded),
        counts(loaded),
        "{relative} through the component"
    );
    assert_eq!(
        as_map(&f.skipped),
        counts(skipped),
        "{relative} through the component"
    );
    assert_eq!(f.skipped_examples.len(), skipped.len());
}

const TO_IDS: &str = "MISP attribute not marked to_ids";

#[test]
fn abuse_ch_feeds_load_with_their_counts() {
    check(
        "feodo/feodo_ipblocklist.csv",
        "feodo-csv",
        28,
        &[("ip:port", 28)],
        &[],
    );
    check(
        "feodo/feodo_ipblocklist.json",
        "feodo-json",
        5,
        &[("ip:port", 5)],
        &[],
    );
    check(
        "urlhaus/urlhaus_recent_with_banner.csv",
        "urlhaus-csv",
        150,
        &[("url", 150)],
        &[],
    );
    check(
        "urlhaus/urlhaus_api_urls_recent.json",
        "urlhaus-json",
        15,
        &[("url", 15)],
        &[],
    );
    check(
        "threatfox/threatfox_export_recent.json",
        "threatfox-json",
        3030,
        &[
            ("domain", 544),
            ("ip:port", 1697),
            ("md5", 146),
            ("sha1", 146),
            ("sha256", 169),
            ("url", 327),
        ],
        // 100.110.56.1:8000 lies in the shared address space 100.64.0.0/10.
        &[("warninglist: private range", 1)],
    );
    check(
        "threatfox/threatfox_api_get_iocs_records.ndjson",
        "threatfox-api",
        26,
        &[("ip:port", 13), ("url", 13)],
        &[],
    );
    check(
        "threatfox/threatfox_recent_csv_head.csv",
        "threatfox-csv",
        36,
        &[("domain", 36)],
        &[],
    );
}

#[test]
fn zeek_intel_loads_and_counts_its_repeated_rows() {
    // 3493 rows, 2342 distinct addresses, 1151 rows repeated word for word, and one
    // address in 100.64.0.0/10.
    check(
        "zeek_intel/abuse-ch-threatfox-ip.intel",
        "zeek-intel",
        3493,
        &[("ipv4", 2341)],
        &[("duplicate entry", 1151), ("warninglist: private range", 1)],
    );
}

#[test]
fn misp_events_feeds_and_rest_responses_load_to_ids_attributes() {
    // The DigitalSide event: md5, sha1, sha256, url and ip-dst are to_ids; a filename, a
    // mime type and the three attributes of a virustotal-report object are not.
    let event = [
        ("ipv4", 1),
        ("md5", 1),
        ("sha1", 1),
        ("sha256", 1),
        ("url", 1),
    ];
    check(
        "misp/digitalside_feed/bfd691c1-0b4c-4156-89be-d2a88a75dac8.json",
        "misp",
        10,
        &event,
        &[(TO_IDS, 5)],
    );
    // The manifest lists 31 events; only one event file is next to it.
    check(
        "misp/digitalside_feed/manifest.json",
        "misp",
        40,
        &event,
        &[(TO_IDS, 5), ("MISP event file missing", 30)],
    );
    // ESET's Mozi event in the REST wrapper: 151 attributes, all inside objects; 76 are
    // to_ids, of which two are av-signature texts.
    check(
        "misp/eset_mozi.misp-event.json",
        "misp",
        151,
        &[("md5", 21), ("sha1", 21), ("sha256", 21), ("url", 11)],
        &[(TO_IDS, 75), ("unsupported type: text", 2)],
    );
}

#[test]
fn stix_bundles_load_their_patterns_and_count_the_rest() {
    // 726 file:hashes.'SHA-256', 140 url, 11 ipv4-addr, 3 domain-name, and 6 patterns that
    // AND a hash with a file name.
    check(
        "stix/stix20_unit42_emotet_playbook.json",
        "stix",
        886,
        &[("domain", 3), ("ipv4", 11), ("sha256", 726), ("url", 140)],
        &[("unsupported STIX pattern", 6)],
    );
    // Four /15 networks (wider than the default /16), three domains, three MD5s, and two
    // x509-certificate patterns.
    check(
        "stix/stix21_oasis_apt1.json",
        "stix",
        12,
        &[("domain", 3), ("md5", 3)],
        &[
            ("network wider than /16", 4),
            ("unsupported STIX pattern", 2),
        ],
    );
    let wider = load_native(
        "stix/stix21_oasis_apt1.json",
        "[guard]\nmin_prefix_v4 = 15\n",
    );
    assert_eq!(wider.loaded_of(iocsieve_engine::Kind::Ipv4Cidr), 4);
}
