//! Records that are text rather than JSON: plain lines (syslog, auditd) and CEF messages,
//! standing alone or in a record's text field (`message`, `log`).
//!
//! A line that is not JSON is read as the record `{"message": line}`: profiles that read
//! text (the built-in `PlainText`) take addresses, ip:port pairs and hashes out of it, and
//! a hit is emitted as that object with the enrichment added, so a pipeline always gets
//! JSON for a hit and one record out for each record in. A miss passes unchanged.
//!
//! A text field holding a CEF message (with or without a syslog header) is parsed, and the
//! record is matched as a CommonSecurityLog row made of the message's columns (only the
//! columns the detector reads are made). The enrichment goes into the record as it came.

use crate::cef;
use crate::detector::Detector;
use crate::record::{ReadError, RecordScanner, ScalarKind, ScannedRecord};
use crate::settings::FieldFormat;

/// The profile CEF messages are read with.
pub const CEF_PROFILE: &str = "CommonSecurityLog";

/// The text of `record` when it is a text line rather than JSON: not empty, valid UTF-8,
/// and not starting with `{` or `[` (broken JSON stays unreadable). Line ends are dropped.
pub(crate) fn text_line(record: &[u8]) -> Option<&str> {
    let first = record.iter().find(|b| !b.is_ascii_whitespace())?;
    if matches!(first, b'{' | b'[') {
        return None;
    }
    let text = std::str::from_utf8(record).ok()?;
    Some(text.trim_end_matches(['\r', '\n']))
}

/// Writes `{"message": line}` into `out`.
pub(crate) fn wrap_line(out: &mut String, line: &str) {
    out.clear();
    out.push_str("{\"message\":");
    cef::write_json_string(out, line);
    out.push('}');
}

/// Buffers for reading a CEF message as a CommonSecurityLog row; reused across records.
#[derive(Debug, Default)]
pub(crate) struct CefReader {
    columns: String,
    scanner: RecordScanner,
}

impl CefReader {
    /// When the record's `message` or `log` text (read as text by `profile`, or a text
    /// line whatever the profile) holds a CEF message, reads it as a CommonSecurityLog row.
    /// Text fields of other names (a command line, a DNS answer list) are never CEF.
    pub(crate) fn read<'s>(
        &'s mut self,
        d: &Detector,
        profile: Option<usize>,
        scanned: &ScannedRecord<'_>,
        is_text_line: bool,
    ) -> Option<Result<ScannedRecord<'s>, ReadError>> {
        d.cef_profile?;
        if !is_text_line && !profile.is_some_and(|p| d.profiles[p].reads_text) {
            return None;
        }
        let reads_as_text = |slot| {
            is_text_line
                || profile.is_some_and(|p| {
                    let p = &d.profiles[p];
                    p.reads_text
                        && (p
                            .addresses
                            .iter()
                            .any(|a| a.slot == slot && a.format == FieldFormat::Text)
                            || p.hashes
                                .iter()
                                .any(|h| h.slot == slot && h.format == FieldFormat::Text))
                })
        };
        let message = TEXT_FIELDS
            .iter()
            .filter_map(|name| d.fields.get(name))
            .filter(|&slot| reads_as_text(slot))
            .find_map(|slot| {
                scanned
                    .values(slot)
                    .find(|(kind, text)| *kind == ScalarKind::String && cef::find(text).is_some())
            })?
            .1;
        let parsed = cef::parse(message)?;
        // Only the columns some profile or exclusion reads.
        parsed.write_columns_json(&mut self.columns, |name| d.fields.get(name).is_some());
        Some(self.scanner.scan(&d.fields, self.columns.as_bytes()))
    }
}

/// The fields that may hold a whole log line, as pipelines name them.
const TEXT_FIELDS: [&str; 2] = ["message", "log"];

#[cfg(test)]
mod tests {
    use crate::{Detector, Emit, Engine, FeedFormat, FeedInput, Verdict};

    /// A ThreatFox JSON export of `(value, type)` pairs.
    fn feed(entries: &[(&str, &str)]) -> Vec<u8> {
        let items: Vec<String> = entries
            .iter()
            .enumerate()
            .map(|(n, (value, kind))| {
                format!(
                    r#""{n}":[{{"ioc_value":"{value}","ioc_type":"{kind}","threat_type":"botnet_cc","malware_printable":"Test","confidence_level":90}}]"#
                )
            })
            .collect();
        format!("{{{}}}", items.join(",")).into_bytes()
    }

    fn engine(entries: &[(&str, &str)], settings: &str) -> Engine {
        // The records use documentation and private addresses, which the flooding guard
        // would refuse as indicators.
        let settings = format!("{settings}\n[guard]\nbuiltin = false\n");
        let settings = settings.as_str();
        let content = feed(entries);
        let input = FeedInput {
            name: "test",
            format: FeedFormat::Auto,
            content: &content,
        };
        Engine::new(Detector::build(&[input], settings).expect("builds").0)
    }

    fn hit(engine: &mut Engine, record: &str) -> serde_json::Value {
        let outcome = engine.evaluate(record.as_bytes(), 0);
        assert!(
            matches!(outcome.verdict, Verdict::Hit(_)),
            "{record}: {:?}",
            outcome.verdict
        );
        match outcome.emit {
            Emit::Enriched(bytes) => serde_json::from_slice(bytes).expect("JSON out"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_text_line_hit_is_emitted_as_json_and_a_miss_unchanged() {
        let mut e = engine(&[("1.2.3.4:41445", "ip:port")], "");
        let line =
            "Jun 21 11:17:33 demo-host.local openvpn[30264]: 1.2.3.4:41445 peer info: IV_VER=2.5\n";
        let out = hit(&mut e, line);
        assert_eq!(out["message"], line.trim_end());
        assert_eq!(out["iocsieve"]["Profile"], "PlainText");
        assert_eq!(out["iocsieve"]["MatchedValue"], "1.2.3.4:41445");
        assert_eq!(out["iocsieve"]["SourceField"], "message");
        let miss = "Jun 21 11:17:33 demo-host.local openvpn: 1.2.3.4:41446 peer info";
        let outcome = e.evaluate(miss.as_bytes(), 0);
        assert_eq!(
            (outcome.verdict, outcome.emit),
            (Verdict::Miss, Emit::Unchanged)
        );
        let c = e.counters();
        assert_eq!((c.text_lines, c.records_out, c.unreadable), (2, 2, 0));
    }

    #[test]
    fn a_cef_line_is_read_as_common_security_log() {
        let mut e = engine(
            &[
                ("89.160.20.156:443", "ip:port"),
                ("55f4a511e6f630a6b1319505414f114e7bcaf13d", "sha1_hash"),
            ],
            "",
        );
        let line = r"<134>Nov 27 11:37:32 fw1 CEF:0|Check Point|VPN-1 \| FireWall-1|Check Point|Log|https|Unknown|act=Accept spt=49363 dpt=443 dst=89.160.20.156 src=192.168.101.100 cs5=Business / Economy";
        let out = hit(&mut e, line);
        assert_eq!(out["message"], line);
        assert_eq!(out["iocsieve"]["Profile"], "CommonSecurityLog");
        assert_eq!(out["iocsieve"]["SourceField"], "DestinationIP");
        assert_eq!(out["iocsieve"]["ThreatField"], "DstIpAddr");
        // The same message in a pipeline's `message` field: the record keeps its shape.
        let record = serde_json::json!({ "host": "fw1", "message": line }).to_string();
        let out = hit(&mut e, &record);
        assert_eq!(out["host"], "fw1");
        assert_eq!(out["iocsieve"]["MatchedValue"], "89.160.20.156:443");
        // Another port is a miss; a hash is found in fileHash.
        let other_port = line.replace("dpt=443", "dpt=444");
        assert_eq!(e.evaluate(other_port.as_bytes(), 0).verdict, Verdict::Miss);
        let hash = "CEF:0|CP|FW|1|Log|x|1|fileHash=55F4A511E6F630A6B1319505414F114E7BCAF13D";
        assert_eq!(
            hit(&mut e, hash)["iocsieve"]["ThreatField"],
            "TargetFileSHA1"
        );
        assert_eq!(e.counters().cef_messages, 4);
    }

    #[test]
    fn hits_only_drops_text_misses_and_keeps_text_hits() {
        let mut e = engine(&[("1.2.3.4", "ip")], "mode = \"hits-only\"");
        assert_eq!(
            e.evaluate(b"sshd: accepted from 1.2.3.5", 0).emit,
            Emit::Dropped
        );
        assert!(matches!(
            e.evaluate(b"sshd: accepted from 1.2.3.4", 0).emit,
            Emit::Enriched(_)
        ));
        let c = e.counters();
        assert_eq!((c.records_in, c.records_out, c.dropped_misses), (2, 1, 1));
    }

    #[test]
    fn cef_is_read_only_from_message_and_log() {
        // A command line that holds a CEF string stays a command line (Cowrie's `input`).
        let mut e = engine(&[("10.0.0.1", "ip")], "");
        let record = r#"{"eventid":"cowrie.command.input","input":"echo CEF:0|a|b|c|d|e|1|src=10.0.0.9 10.0.0.1"}"#;
        let out = hit(&mut e, record);
        assert_eq!(out["iocsieve"]["Profile"], "Cowrie");
        assert_eq!(out["iocsieve"]["SourceField"], "input");
        assert_eq!(e.counters().cef_messages, 0);
    }

    #[test]
    fn exclusions_see_the_cef_columns() {
        let settings = "[[exclusions]]\nname = \"lab\"\nreason = \"lab firewall\"\nwhen = { field = \"DeviceVendor\", equals = \"Lab\" }\n";
        let mut e = engine(&[("10.0.0.1", "ip")], settings);
        let outcome = e.evaluate(b"CEF:0|Lab|FW|1|1|x|1|src=10.0.0.1", 0);
        assert!(
            matches!(outcome.verdict, Verdict::Suppressed { .. }),
            "{:?}",
            outcome.verdict
        );
    }

    #[test]
    fn broken_json_stays_unreadable() {
        let mut e = engine(&[("1.2.3.4", "ip")], "");
        for record in ["{\"a\": 1.2.3.4", "[1.2.3.4]", "   "] {
            assert!(matches!(
                e.evaluate(record.as_bytes(), 0).verdict,
                Verdict::Unreadable(_)
            ));
        }
        assert_eq!(e.counters().text_lines, 0);
    }

    #[test]
    fn wrapped_rows_keep_their_table_and_their_port() {
        let mut e = engine(
            &[
                ("203.0.113.9:443", "ip:port"),
                ("203.0.113.7:8080", "ip:port"),
            ],
            "",
        );
        // Row 1 has .9 on 80 and row 2 .7 on 443: neither pair is in the feed, though
        // each address and each port is somewhere in the record.
        let crossed = r#"{"records":[
            {"category":"AdvancedHunting-DeviceNetworkEvents","properties":{"RemoteIP":"203.0.113.9","RemotePort":80}},
            {"category":"AdvancedHunting-DeviceNetworkEvents","properties":{"RemoteIP":"203.0.113.7","RemotePort":443}}]}"#;
        assert_eq!(e.evaluate(crossed.as_bytes(), 0).verdict, Verdict::Miss);
        let paired = crossed.replace("\"RemotePort\":443", "\"RemotePort\":8080");
        let out = hit(&mut e, &paired);
        assert_eq!(out["iocsieve"]["Profile"], "DefenderStreamingExport");
        assert_eq!(out["iocsieve"]["MatchedValue"], "203.0.113.7:8080");
        assert_eq!(out["iocsieve"]["ThreatField"], "DstIpAddr");
        // A table whose rows have no RemoteIP/RemotePort meaning is not read.
        let other_table = paired.replace(
            "DeviceNetworkEvents\",\"properties\":{\"RemoteIP\":\"203.0.113.7",
            "DeviceInfo\",\"properties\":{\"RemoteIP\":\"203.0.113.7",
        );
        assert_eq!(e.evaluate(other_table.as_bytes(), 0).verdict, Verdict::Miss);
    }

    #[test]
    fn a_single_exported_row_is_read_by_its_category() {
        let mut e = engine(&[("203.0.113.7:8080", "ip:port")], "");
        let row = r#"{"time":"2026-01-01T00:00:00Z","operationName":"Publish","category":"AdvancedHunting-DeviceNetworkEvents","properties":{"DeviceId":"d1","RemoteIP":"203.0.113.7","RemotePort":8080}}"#;
        let out = hit(&mut e, row);
        assert_eq!(out["iocsieve"]["Profile"], "DefenderStreamingExportRow");
        let logon = row.replace("DeviceNetworkEvents", "DeviceLogonEvents");
        assert_eq!(hit(&mut e, &logon)["iocsieve"]["ThreatField"], "SrcIpAddr");
        let info = row.replace("DeviceNetworkEvents", "DeviceInfo");
        assert_eq!(e.evaluate(info.as_bytes(), 0).verdict, Verdict::Miss);
    }

    #[test]
    fn wrapped_hash_roles_follow_the_table() {
        let sha256 = "8a221672e37fd7f30d35b3466ca9f1a473f9a77c27a5a16c6392bceeccafea6f";
        let mut e = engine(&[(sha256, "sha256_hash")], "");
        let record = |table: &str| {
            format!(
                r#"{{"records":[{{"category":"AdvancedHunting-{table}","properties":{{"SHA256":"{sha256}"}}}}]}}"#
            )
        };
        let file = hit(&mut e, &record("DeviceFileEvents"));
        assert_eq!(file["iocsieve"]["ThreatField"], "TargetFileSHA256");
        let process = hit(&mut e, &record("DeviceProcessEvents"));
        assert_eq!(process["iocsieve"]["ThreatField"], "TargetProcessSHA256");
    }

    #[test]
    fn sysmon_hashes_are_read_by_label_and_imphash_is_not_a_file_hash() {
        let imphash = "2030E4162A477F77D0EF5A58D00FA094";
        let md5 = "72260CE9438A7A9A8A5BA101EDA4D6BD";
        let mut e = engine(&[(imphash, "md5_hash")], "");
        let record = format!(
            r#"{{"EventID":1,"ProcessGuid":"{{x}}","Hashes":"MD5={md5},IMPHASH={imphash}"}}"#
        );
        assert_eq!(e.evaluate(record.as_bytes(), 0).verdict, Verdict::Miss);
        let mut e = engine(&[(md5, "md5_hash")], "");
        let out = hit(&mut e, &record);
        assert_eq!(out["iocsieve"]["Profile"], "Sysmon");
        assert_eq!(out["iocsieve"]["ThreatField"], "TargetProcessMD5");
        assert_eq!(out["iocsieve"]["MatchedValue"], md5);
    }

    #[test]
    fn ecs_and_asim_records_get_their_profiles() {
        let sha256 = "8a221672e37fd7f30d35b3466ca9f1a473f9a77c27a5a16c6392bceeccafea6f";
        let mut e = engine(
            &[("198.51.100.7:8443", "ip:port"), (sha256, "sha256_hash")],
            "",
        );
        let ecs = r#"{"ecs":{"version":"8.11"},"source":{"ip":"10.0.0.5","port":51000},"destination":{"ip":"198.51.100.7","port":8443}}"#;
        let out = hit(&mut e, ecs);
        assert_eq!(out["iocsieve"]["Profile"], "ECS");
        assert_eq!(out["iocsieve"]["SourceField"], "destination.ip");
        let ecs_other_port = ecs.replace("8443", "8444");
        assert_eq!(
            e.evaluate(ecs_other_port.as_bytes(), 0).verdict,
            Verdict::Miss
        );
        let dotted = format!(r#"{{"process.hash.sha256":"{sha256}"}}"#);
        assert_eq!(
            hit(&mut e, &dotted)["iocsieve"]["ThreatField"],
            "ActingProcessSHA256"
        );

        let session = r#"{"EventSchema":"NetworkSession","SrcIpAddr":"10.0.0.5","DstIpAddr":"198.51.100.7","DstPortNumber":8443}"#;
        let out = hit(&mut e, session);
        assert_eq!(out["iocsieve"]["Profile"], "ASimNetworkSessionLogs");
        let file = format!(
            r#"{{"EventSchema":"FileEvent","SrcIpAddr":"10.0.0.5","TargetFilePath":"C:\\x.exe","TargetFileSHA256":"{sha256}"}}"#
        );
        let out = hit(&mut e, &file);
        assert_eq!(out["iocsieve"]["Profile"], "ASimFileEventLogs");
        assert_eq!(out["iocsieve"]["ThreatField"], "TargetFileSHA256");
    }

    #[test]
    fn a_profile_names_tables_only_with_a_table_field() {
        let settings = "[[profiles]]\nname = \"x\"\naddresses = [{ field = \"a\", role = \"IpAddr\", table = \"t\" }]\n";
        let err = Detector::build(&[], settings).unwrap_err();
        assert!(err.message.contains("table_field"), "{err}");
        let settings = "[[profiles]]\nname = \"x\"\naddresses = [{ field = \"a\", role = \"IpAddr\", format = \"labelled\" }]\n";
        let err = Detector::build(&[], settings).unwrap_err();
        assert!(err.message.contains("labelled"), "{err}");
    }
}
