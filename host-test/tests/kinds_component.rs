//! The new indicator kinds through the component: several feeds at once, each hit naming
//! its feed, a hit and a near miss per kind.

mod common;

use common::{NOW, loaded};
use iocsieve_host::component::{IndicatorMatch, Verdict};

const SETTINGS: &str = r#"
[[feeds]]
name = "nets.txt"
format = "list:cidr"

[[feeds]]
name = "domains.txt"
format = "list:domain"
domain_match = "subdomains"

[[feeds]]
name = "urls.txt"
format = "list:url"
"#;

fn hits(
    instance: &mut iocsieve_host::component::DetectorInstance,
    record: &str,
) -> Vec<IndicatorMatch> {
    match instance.evaluate(record, NOW).expect("no trap").verdict {
        Verdict::Hit(m) => m,
        Verdict::Miss => Vec::new(),
        other => panic!("unexpected verdict {other:?}"),
    }
}

#[test]
fn networks_domains_and_urls_hit_through_the_component() {
    let feeds = [
        (
            "nets.txt".to_string(),
            b"45.10.0.0/16\n45.10.20.0/24\n2a00:1450::/32\n".to_vec(),
        ),
        (
            "domains.txt".to_string(),
            "evil.top\nhigan.org\nbücher.top\n".as_bytes().to_vec(),
        ),
        (
            "urls.txt".to_string(),
            b"hxxps://Bad[.]Top:443/Drop?id=7\n".to_vec(),
        ),
    ];
    let mut instance = loaded(&feeds, SETTINGS);
    let csl = |field: &str, value: &str| format!(r#"{{"DeviceVendor":"PAN","{field}":"{value}"}}"#);

    let m = hits(&mut instance, &csl("DestinationIP", "45.10.20.30"));
    let got: Vec<(&str, &str, &str)> = m
        .iter()
        .map(|m| (m.kind.as_str(), m.indicator.as_str(), m.feed.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("ipv4-cidr", "45.10.20.0/24", "nets.txt"),
            ("ipv4-cidr", "45.10.0.0/16", "nets.txt")
        ]
    );
    assert!(hits(&mut instance, &csl("DestinationIP", "45.11.20.30")).is_empty());
    assert_eq!(
        hits(&mut instance, &csl("SourceIP", "2a00:1450::9"))[0].role,
        "SrcIpAddr"
    );

    let m = hits(&mut instance, &csl("DestinationHostName", "WWW.Evil.Top."));
    assert_eq!(
        (m[0].kind.as_str(), m[0].indicator.as_str()),
        ("domain", "evil.top")
    );
    assert_eq!(m[0].feed, "domains.txt");
    assert!(hits(&mut instance, &csl("DestinationHostName", "michigan.org")).is_empty());
    assert_eq!(
        hits(
            &mut instance,
            &csl("DestinationHostName", "xn--bcher-kva.top")
        )
        .len(),
        1
    );

    let m = hits(
        &mut instance,
        &csl("RequestURL", "https://bad.top/Drop?id=7"),
    );
    assert_eq!(
        (
            m[0].kind.as_str(),
            m[0].indicator.as_str(),
            m[0].feed.as_str()
        ),
        ("url", "https://bad.top/Drop?id=7", "urls.txt")
    );
    assert!(
        hits(
            &mut instance,
            &csl("RequestURL", "https://bad.top/drop?id=7")
        )
        .is_empty()
    );

    let counters = instance.counters().expect("no trap");
    let by_kind: Vec<(&str, u64)> = counters
        .hits_by_kind
        .iter()
        .map(|(name, count)| (name.as_str(), *count))
        .collect();
    assert_eq!(
        by_kind,
        [
            ("domain", 2),
            ("ipv4-cidr", 2),
            ("ipv6-cidr", 1),
            ("url", 1)
        ]
    );
}

#[test]
fn load_stats_name_the_values_the_guard_refused() {
    let feeds = [(
        "nets.txt".to_string(),
        b"10.0.0.0/24\n8.8.8.8\n45.0.0.0/8\n".to_vec(),
    )];
    let mut instance = common::runtime().instantiate().expect("instantiates");
    let feeds = feeds
        .into_iter()
        .map(|(name, content)| iocsieve_host::component::Feed {
            name,
            format: iocsieve_host::component::FeedFormat::ListIp,
            content,
        })
        .collect();
    let stats = instance.load(feeds, "").expect("no trap").expect("loads");
    let f = &stats.feeds[0];
    assert_eq!(f.format, "list:ip");
    let examples: Vec<(&str, &[String])> = f
        .skipped_examples
        .iter()
        .map(|e| (e.name.as_str(), e.values.as_slice()))
        .collect();
    assert_eq!(
        examples,
        [
            ("network wider than /16", &["45.0.0.0/8".to_string()][..]),
            (
                "warninglist: private range",
                &["10.0.0.0/24".to_string()][..]
            ),
            ("warninglist: public resolver", &["8.8.8.8".to_string()][..]),
        ]
    );
}
