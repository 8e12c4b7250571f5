//! The hunting rule for the built-in default (the two Mirai indicators and the five default
//! exclusions): every element the document must carry, and its whole text pinned by
//! `tests/golden/rule-default.md`. After an intended change, regenerate the golden file with
//!
//! ```sh
//! IOCSIEVE_BLESS=1 cargo test --release -p iocsieve-engine --test rule_default
//! ```
//!
//! and review the diff. `iocsieve rule` prints the same text (host-test checks that).

use std::path::Path;

use iocsieve_engine::rule::{RuleOptions, write_rule};
use iocsieve_engine::{DEFAULT_FEED, DEFAULT_FEED_NAME, FeedFormat, FeedInput};

fn default_document() -> String {
    let feed = FeedInput {
        name: DEFAULT_FEED_NAME,
        format: FeedFormat::Auto,
        content: DEFAULT_FEED,
    };
    write_rule(&[feed], "", &RuleOptions::default())
        .expect("the default rule is written")
        .markdown()
}

/// The text of the section under `## {title}`.
fn section<'d>(doc: &'d str, title: &str) -> &'d str {
    let start = doc
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("no section {title:?}"));
    let rest = &doc[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |n| n + 3);
    &rest[..end]
}

/// The KQL block of the query for `table`.
fn query<'d>(doc: &'d str, table: &str) -> &'d str {
    let header = format!("// iocsieve hunting query: Mirai indicators in {table}\n");
    let start = doc
        .find(&header)
        .unwrap_or_else(|| panic!("no query for {table}"));
    let end = doc[start..].find("```").expect("the block closes");
    &doc[start..start + end]
}

#[test]
fn default_rule_carries_every_element() {
    let doc = default_document();

    let description = section(&doc, "Description");
    assert!(description.contains("Mirai (`elf.mirai`, also known as Katana)"));
    assert!(description.contains("1 ip:port endpoint and 1 SHA-256 hash"));
    assert_eq!(
        description.trim().lines().count(),
        3,
        "a heading and one paragraph"
    );

    let summary = section(&doc, "IOC summary");
    for row in [
        "| Malware family | Mirai (`elf.mirai`, also known as Katana) |",
        "| Indicators loaded and hunted | 2 |",
        "| Kinds present | 1 ip:port endpoint and 1 SHA-256 hash |",
        "| ip:port | 1 | 1 |  |",
        "| sha256_hash | 1 | 1 |  |",
    ] {
        assert!(summary.contains(row), "{row}\n{summary}");
    }

    let indicators = section(&doc, "Indicators");
    assert!(
        indicators.contains(
            "| ip:port | `194[.]48[.]251[.]24:80` | botnet_cc | Mirai | 2026-06-19 | 75% |"
        )
    );
    assert!(indicators.contains(
        "| sha256 | `f253a4f1afdd89847bbe27defbc46043d73391d1d624752d457505489b5e3f05` | \
         payload | Mirai | 2026-06-19 | 80% |"
    ));
    assert!(!indicators.contains("194.48.251.24"), "values are defanged");

    // CommonSecurityLog: each address with the port on its own side, and the file hash.
    let csl = query(&doc, "CommonSecurityLog");
    assert!(csl.contains("let IocEndpoints = dynamic([\"194.48.251.24:80\"]);"));
    assert!(csl.contains(
        "let IocHashes = dynamic([\"f253a4f1afdd89847bbe27defbc46043d73391d1d624752d457505489b5e3f05\"]);"
    ));
    assert!(
        csl.contains("IocEndpoint(DestinationIP, tostring(DestinationPort)) in~ (IocEndpoints)")
    );
    assert!(csl.contains("IocEndpoint(SourceIP, tostring(SourcePort)) in~ (IocEndpoints)"));
    assert!(csl.contains("FileHash in~ (IocHashes)"));
    assert!(csl.contains("| order by TimeGenerated desc"));
    // The exclusions name Defender's process columns, which CEF lacks: read as empty.
    assert!(csl.contains("tostring(column_ifexists(\"InitiatingProcessFolderPath\", \"\"))"));

    // DeviceNetworkEvents: remote and local sides, IPv4-mapped addresses normalised.
    let dne = query(&doc, "DeviceNetworkEvents");
    assert!(dne.contains("let IocAddress = (ip: string) { iff(ip startswith \"::ffff:\""));
    assert!(dne.contains("IocEndpoint(RemoteIP, tostring(RemotePort)) in~ (IocEndpoints)"));
    assert!(dne.contains("IocEndpoint(LocalIP, tostring(LocalPort)) in~ (IocEndpoints)"));
    assert!(dne.contains("| project Timestamp, DeviceName, ActionType, LocalIP, LocalPort"));
    assert!(dne.contains("| order by Timestamp desc"));

    // DeviceFileEvents: every hash column against every hash.
    let dfe = query(&doc, "DeviceFileEvents");
    for column in [
        "SHA256",
        "SHA1",
        "MD5",
        "InitiatingProcessSHA256",
        "InitiatingProcessSHA1",
        "InitiatingProcessMD5",
    ] {
        assert!(
            dfe.contains(&format!("\n    or {column} in~ (IocHashes)"))
                || dfe.contains(&format!("| where {column} in~ (IocHashes)")),
            "{column}"
        );
    }

    // The five exclusions, as filters in every query and as prose.
    let scenarios = section(&doc, "False-positive scenarios (exclusions)");
    for name in [
        "admin-netstat",
        "cron-backup-script",
        "ansible-netcat",
        "log-shipper-tcpdump",
        "jenkins-telnet",
    ] {
        assert!(scenarios.contains(&format!("**{name}**")), "{name}");
        for q in [csl, dne, dfe] {
            assert!(q.contains(&format!("// Exclusion {name}:")), "{name}");
        }
    }
    assert!(dne.contains(
        "| where not(InitiatingProcessFolderPath in~ (\"/usr/bin/telnet\", \"/bin/telnet\") and \
         InitiatingProcessAccountName =~ \"jenkins\" and InitiatingProcessParentFileName =~ \"java\")"
    ));
    assert!(dne.contains("InitiatingProcessCommandLine has \"/opt/backup/backup_script.sh\""));

    let agreement = section(&doc, "How the queries agree with the edge filter");
    assert!(agreement.contains("Here the queries do less than the edge"));
    assert!(agreement.contains("with the port on the same side"));

    let tables = section(&doc, "Sentinel tables used");
    for table in [
        "CommonSecurityLog",
        "DeviceNetworkEvents",
        "DeviceFileEvents",
    ] {
        let row = tables
            .lines()
            .find(|l| l.starts_with(&format!("| {table} |")))
            .unwrap_or_else(|| panic!("no row for {table}"));
        assert!(row.contains("data connector"), "{row}");
    }
}

#[test]
fn default_rule_matches_the_golden_file() {
    let doc = default_document();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/rule-default.md");
    if std::env::var_os("IOCSIEVE_BLESS").is_some() {
        std::fs::write(&golden, &doc).expect("golden file written");
    }
    let want = std::fs::read_to_string(&golden).expect("golden file exists");
    assert_eq!(
        doc, want,
        "the rule changed; if intended, regenerate with \
         IOCSIEVE_BLESS=1 cargo test --release -p iocsieve-engine --test rule_default"
    );
}
