//! Every case under ../shared/cases gives the verdicts its EXPECTED.md states, through the
//! native engine and through the component (one record per call and in one batch).

mod common;

use common::{NOW, loaded};
use iocsieve_engine::{Detector, Engine, FeedInput};
use iocsieve_host::cases::{Expected, load_cases};
use iocsieve_host::component::Verdict;

fn class_of_component(v: &Verdict) -> Expected {
    match v {
        Verdict::Hit(_) => Expected::Hit,
        Verdict::Suppressed(_) => Expected::Excluded,
        Verdict::Miss => Expected::Miss,
        Verdict::Unreadable(e) => panic!("a case record was unreadable: {e}"),
    }
}

fn class_of_native(v: &iocsieve_engine::Verdict) -> Expected {
    match v {
        iocsieve_engine::Verdict::Hit(_) => Expected::Hit,
        iocsieve_engine::Verdict::Suppressed { .. } => Expected::Excluded,
        iocsieve_engine::Verdict::Miss => Expected::Miss,
        iocsieve_engine::Verdict::Unreadable(e) => panic!("a case record was unreadable: {e}"),
    }
}

#[test]
fn every_case_gives_its_expected_verdicts_natively_and_through_the_component() {
    let cases = load_cases().expect("the shared cases read");
    let mut checked = 0;
    for case in &cases {
        let inputs: Vec<FeedInput<'_>> = case
            .feeds
            .iter()
            .map(|(name, content)| FeedInput::detected(name, content))
            .collect();
        let (detector, _) =
            Detector::build(&inputs, &case.settings).expect("the case loads natively");
        let mut native = Engine::new(detector);
        let mut component = loaded(&case.feeds, &case.settings);

        for log in &case.logs {
            let batch = log.records.join("\n") + "\n";
            let batched = component.evaluate_batch(&batch, NOW).expect("no trap");
            assert_eq!(batched.len(), log.records.len());
            for (n, (record, expected)) in log.records.iter().zip(&log.expected).enumerate() {
                let at = format!("{} {} line {}", case.name, log.file, n + 1);
                let native_class =
                    class_of_native(&native.evaluate(record.as_bytes(), NOW).verdict);
                let single = component.evaluate(record, NOW).expect("no trap");
                assert_eq!(native_class, *expected, "native engine, {at}");
                assert_eq!(
                    class_of_component(&single.verdict),
                    *expected,
                    "component, {at}"
                );
                assert_eq!(
                    class_of_component(&batched[n].verdict),
                    *expected,
                    "component batch, {at}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 23, "only {checked} records checked");
}

/// The seed's specifics that a verdict class alone does not show.
mod seed_mirai {
    use super::*;
    use iocsieve_host::cases::load_case;
    use iocsieve_host::cases::shared_dir;

    fn seed() -> iocsieve_host::cases::Case {
        load_case(&shared_dir().join("cases/seed-mirai")).expect("the seed case reads")
    }

    fn record(case: &iocsieve_host::cases::Case, file: &str, line: usize) -> String {
        let log = case
            .logs
            .iter()
            .find(|l| l.file == file)
            .expect("log file in case");
        log.records[line - 1].clone()
    }

    #[test]
    fn each_default_exclusion_suppresses_its_scenario_by_name() {
        let case = seed();
        let mut instance = loaded(&case.feeds, "");
        for (line, rule) in [
            (3, "admin-netstat"),
            (4, "cron-backup-script"),
            (5, "ansible-netcat"),
            (6, "log-shipper-tcpdump"),
            (7, "jenkins-telnet"),
        ] {
            let outcome = instance
                .evaluate(&record(&case, "DeviceNetworkEvents.ndjson", line), NOW)
                .unwrap();
            match outcome.verdict {
                Verdict::Suppressed(s) => {
                    assert_eq!(s.exclusion, rule, "line {line}");
                    assert!(!s.reason.is_empty());
                    assert_eq!(s.matches[0].indicator, "194.48.251.24:80");
                }
                other => panic!("line {line}: expected suppression by {rule}, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_sha256_in_the_sha1_column_is_reported_from_that_column() {
        let case = seed();
        let mut instance = loaded(&case.feeds, "");
        let outcome = instance
            .evaluate(&record(&case, "DeviceFileEvents.ndjson", 4), NOW)
            .unwrap();
        let Verdict::Hit(matches) = outcome.verdict else {
            panic!("expected a hit")
        };
        assert_eq!(
            (matches[0].field.as_str(), matches[0].kind.as_str()),
            ("SHA1", "sha256")
        );
        assert_eq!(matches[0].role, "TargetFileSHA256");
    }

    #[test]
    fn address_only_matching_is_opt_in_and_marked() {
        let case = seed();
        let line3 = record(&case, "CommonSecurityLog.ndjson", 3);
        let mut default = loaded(&case.feeds, "");
        assert!(matches!(
            default.evaluate(&line3, NOW).unwrap().verdict,
            Verdict::Miss
        ));

        let mut opted_in = loaded(&case.feeds, "match_address_only = true");
        let outcome = opted_in.evaluate(&line3, NOW).unwrap();
        let Verdict::Hit(matches) = outcome.verdict else {
            panic!("expected an address-only hit")
        };
        assert!(matches[0].address_only);
        assert_eq!(matches[0].observed, "194.48.251.24:443");
        let iocsieve_host::component::Emit::Enriched(text) = outcome.emit else {
            panic!("enriched")
        };
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["iocsieve"]["AddressOnly"], true);
        assert_eq!(value["iocsieve"]["ThreatConfidence"], 37);
        assert_eq!(value["iocsieve"]["ThreatOriginalConfidence"], "75");
        // An exact match still wins over the address-only one.
        let line1 = record(&case, "CommonSecurityLog.ndjson", 1);
        let Verdict::Hit(m) = opted_in.evaluate(&line1, NOW).unwrap().verdict else {
            panic!()
        };
        assert!(!m[0].address_only);
    }

    #[test]
    fn enrichment_carries_the_asim_threat_fields() {
        let case = seed();
        let mut instance = loaded(&case.feeds, "");
        let outcome = instance
            .evaluate(&record(&case, "DeviceNetworkEvents.ndjson", 1), NOW)
            .unwrap();
        let iocsieve_host::component::Emit::Enriched(text) = outcome.emit else {
            panic!("enriched")
        };
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let e = &value["iocsieve"];
        assert_eq!(e["Verdict"], "hit");
        assert_eq!(e["ThreatField"], "DstIpAddr");
        assert_eq!(e["ThreatIpAddr"], "194.48.251.24");
        assert_eq!(e["ThreatName"], "Mirai");
        assert_eq!(e["ThreatCategory"], "botnet_cc");
        assert_eq!(e["ThreatConfidence"], 75);
        assert_eq!(e["ThreatIsActive"], true);
        assert_eq!(e["ThreatFirstReportedTime"], "2026-06-19T08:12:44Z");
        assert_eq!(e["ThreatId"], "1530001");
        assert_eq!(e["SourceField"], "RemoteIP");
        assert_eq!(e["MatchedValue"], "194.48.251.24:80");
        assert_eq!(e["IndicatorKind"], "ip:port");
        assert_eq!(e["MalwareFamily"], "elf.mirai");
        assert_eq!(e["Profile"], "DeviceNetworkEvents");
        assert_eq!(e["Matches"].as_array().map(Vec::len), Some(1));
        // The record's own fields are all still there, unchanged.
        let original: serde_json::Value =
            serde_json::from_str(&record(&case, "DeviceNetworkEvents.ndjson", 1)).unwrap();
        for (key, v) in original.as_object().unwrap() {
            assert_eq!(&value[key], v, "field {key}");
        }
    }
}
