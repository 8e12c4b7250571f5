//! CEF (ArcSight Common Event Format) messages, read the way Sentinel's CommonSecurityLog
//! table names their parts.
//!
//! A message is `CEF:Version|Device Vendor|Device Product|Device Version|Device Event Class
//! ID|Name|Severity|Extension`, with anything before `CEF:` (a syslog header) ignored. In
//! the header `\|` is a pipe and `\\` a backslash. The extension is `key=value` pairs
//! separated by spaces; a value runs to the next ` key=` and may hold spaces; in values
//! `\=`, `\\`, `\n` and `\r` are an equals sign, a backslash, a newline and a carriage
//! return. A backslash before anything else stays as written.

use std::borrow::Cow;

/// One parsed CEF message; texts borrow from the message unless unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CefMessage<'a> {
    /// Whatever came before `CEF:`, trimmed (a syslog header), possibly empty.
    pub prefix: &'a str,
    pub version: Cow<'a, str>,
    pub device_vendor: Cow<'a, str>,
    pub device_product: Cow<'a, str>,
    pub device_version: Cow<'a, str>,
    pub device_event_class_id: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub severity: Cow<'a, str>,
    /// The extension pairs, in message order.
    pub extensions: Vec<(&'a str, Cow<'a, str>)>,
}

/// Where the CEF message in `text` starts: the first `CEF:` followed by a digit, at the
/// start or after a space. `None` when the text holds no CEF message.
pub fn find(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = text[from..].find("CEF:") {
        let at = from + at;
        let starts_word = at == 0 || bytes[at - 1].is_ascii_whitespace();
        if starts_word && bytes.get(at + 4).is_some_and(u8::is_ascii_digit) {
            return Some(at);
        }
        from = at + 4;
    }
    None
}

/// Parses the CEF message in `text`; `None` when there is none or its header is short of
/// the seven fields.
pub fn parse(text: &str) -> Option<CefMessage<'_>> {
    let start = find(text)?;
    let body = &text[start + 4..];
    // The seven header fields end at unescaped pipes; the severity may end the text.
    let mut fields: Vec<&str> = Vec::with_capacity(7);
    let bytes = body.as_bytes();
    let (mut i, mut field_start) = (0, 0);
    while i < bytes.len() && fields.len() < 7 {
        match bytes[i] {
            b'\\' => i += 2,
            b'|' => {
                fields.push(&body[field_start..i]);
                i += 1;
                field_start = i;
            }
            _ => i += 1,
        }
    }
    let extension = if fields.len() == 7 {
        &body[field_start..]
    } else if fields.len() == 6 {
        fields.push(&body[field_start..]);
        ""
    } else {
        return None;
    };
    Some(CefMessage {
        prefix: text[..start].trim(),
        version: unescape_header(fields[0]),
        device_vendor: unescape_header(fields[1]),
        device_product: unescape_header(fields[2]),
        device_version: unescape_header(fields[3]),
        device_event_class_id: unescape_header(fields[4]),
        name: unescape_header(fields[5]),
        severity: unescape_header(fields[6]),
        extensions: parse_extension(extension),
    })
}

fn unescape_header(text: &str) -> Cow<'_, str> {
    unescape(text, |c| matches!(c, '|' | '\\').then_some(c))
}

fn unescape_value(text: &str) -> Cow<'_, str> {
    unescape(text, |c| match c {
        '=' | '\\' => Some(c),
        'n' => Some('\n'),
        'r' => Some('\r'),
        _ => None,
    })
}

/// Replaces `\c` by `escape(c)` where that is `Some`; other backslashes stay.
fn unescape(text: &str, escape: impl Fn(char) -> Option<char>) -> Cow<'_, str> {
    if !text.contains('\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next) = chars.peek()
            && let Some(replaced) = escape(next)
        {
            out.push(replaced);
            chars.next();
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Splits the extension into pairs: each unescaped `=` preceded by a key (letters, digits,
/// `_`, `.`, `-`, `[`, `]`) that starts the extension or follows a space starts a pair.
fn parse_extension(extension: &str) -> Vec<(&str, Cow<'_, str>)> {
    let bytes = extension.as_bytes();
    // (key start, value start) of each pair.
    let mut starts: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' => {
                let key_start = bytes[..i]
                    .iter()
                    .rposition(|&b| b == b' ')
                    .map_or(0, |p| p + 1);
                let key = &bytes[key_start..i];
                let is_key = !key.is_empty()
                    && key
                        .iter()
                        .all(|&b| b.is_ascii_alphanumeric() || b"_.-[]".contains(&b));
                if is_key {
                    starts.push((key_start, i + 1));
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(n, &(key_start, value_start))| {
            let value_end = starts
                .get(n + 1)
                .map_or(extension.len(), |&(next_key, _)| next_key);
            let key = &extension[key_start..value_start - 1];
            let value = extension[value_start.min(value_end)..value_end].trim_end();
            (key, unescape_value(value))
        })
        .collect()
}

/// The CommonSecurityLog column a CEF extension key fills, as Microsoft's CEF connector
/// maps them; both the short keys and the full names are known.
pub fn column_of(key: &str) -> Option<&'static str> {
    Some(match key {
        "src" | "sourceAddress" => "SourceIP",
        "dst" | "destinationAddress" => "DestinationIP",
        "spt" | "sourcePort" => "SourcePort",
        "dpt" | "destinationPort" => "DestinationPort",
        "sourceTranslatedAddress" => "SourceTranslatedAddress",
        "sourceTranslatedPort" => "SourceTranslatedPort",
        "destinationTranslatedAddress" => "DestinationTranslatedAddress",
        "destinationTranslatedPort" => "DestinationTranslatedPort",
        "dvc" | "deviceAddress" => "DeviceAddress",
        "c6a1" | "deviceCustomIPv6Address1" => "DeviceCustomIPv6Address1",
        "c6a2" | "deviceCustomIPv6Address2" => "DeviceCustomIPv6Address2",
        "c6a3" | "deviceCustomIPv6Address3" => "DeviceCustomIPv6Address3",
        "c6a4" | "deviceCustomIPv6Address4" => "DeviceCustomIPv6Address4",
        "fileHash" => "FileHash",
        "oldFileHash" => "OldFileHash",
        "fname" | "fileName" => "FileName",
        "filePath" => "FilePath",
        "shost" | "sourceHostName" => "SourceHostName",
        "dhost" | "destinationHostName" => "DestinationHostName",
        "dvchost" | "deviceHostName" => "DeviceName",
        "request" | "requestURL" => "RequestURL",
        "requestClientApplication" => "RequestClientApplication",
        "requestMethod" => "RequestMethod",
        "suser" | "sourceUserName" => "SourceUserName",
        "duser" | "destinationUserName" => "DestinationUserName",
        "sproc" | "sourceProcessName" => "SourceProcessName",
        "dproc" | "destinationProcessName" => "DestinationProcessName",
        "act" | "deviceAction" => "DeviceAction",
        "app" | "applicationProtocol" => "ApplicationProtocol",
        "proto" | "transportProtocol" => "Protocol",
        "msg" | "message" => "Message",
        "cat" | "deviceEventCategory" => "DeviceEventCategory",
        "outcome" | "eventOutcome" => "EventOutcome",
        "reason" => "Reason",
        "cnt" | "baseEventCount" => "EventCount",
        "rt" | "receiptTime" => "ReceiptTime",
        "deviceDirection" => "CommunicationDirection",
        "externalId" => "ExtID",
        "deviceExternalId" => "DeviceExternalID",
        "smac" | "sourceMacAddress" => "SourceMACAddress",
        "dmac" | "destinationMacAddress" => "DestinationMACAddress",
        "cs1" => "DeviceCustomString1",
        "cs2" => "DeviceCustomString2",
        "cs3" => "DeviceCustomString3",
        "cs4" => "DeviceCustomString4",
        "cs5" => "DeviceCustomString5",
        "cs6" => "DeviceCustomString6",
        _ => return None,
    })
}

impl CefMessage<'_> {
    /// Every column this message fills, header first, by CommonSecurityLog name.
    pub fn columns(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        let header = [
            ("CEFVersion", &self.version),
            ("DeviceVendor", &self.device_vendor),
            ("DeviceProduct", &self.device_product),
            ("DeviceVersion", &self.device_version),
            ("DeviceEventClassID", &self.device_event_class_id),
            ("Activity", &self.name),
            ("LogSeverity", &self.severity),
        ];
        header
            .into_iter()
            .map(|(name, value)| (name, value.as_ref()))
            .chain(
                self.extensions
                    .iter()
                    .filter_map(|(key, value)| Some((column_of(key)?, value.as_ref()))),
            )
    }

    /// Writes the message as a JSON object of CommonSecurityLog columns, only those that
    /// `wanted` accepts, so the record path reads it like any other record.
    pub fn write_columns_json(&self, out: &mut String, wanted: impl Fn(&str) -> bool) {
        out.clear();
        out.push('{');
        for (name, value) in self.columns().filter(|(name, _)| wanted(name)) {
            if out.len() > 1 {
                out.push(',');
            }
            write_json_string(out, name);
            out.push(':');
            write_json_string(out, value);
        }
        out.push('}');
    }
}

/// Appends `s` as a JSON string.
pub(crate) fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext<'a>(m: &'a CefMessage<'_>) -> Vec<(&'a str, &'a str)> {
        m.extensions.iter().map(|(k, v)| (*k, v.as_ref())).collect()
    }

    #[test]
    fn reads_header_and_extension_with_escapes() {
        let m = parse(r"CEF:0|security|threatmanager|1.0|100|detected a \| in message|10|src=10.0.0.1 act=blocked a \= dst=1.1.1.1").unwrap();
        assert_eq!(m.name, "detected a | in message");
        assert_eq!(
            ext(&m),
            [
                ("src", "10.0.0.1"),
                ("act", "blocked a ="),
                ("dst", "1.1.1.1")
            ]
        );
        let m = parse(r"CEF:0|a|b|c|d|e|1|msg=line\none\rtwo path=C:\\x\y").unwrap();
        assert_eq!(ext(&m), [("msg", "line\none\rtwo"), ("path", r"C:\x\y")]);
    }

    #[test]
    fn values_hold_spaces_and_unescaped_equals_in_words() {
        let m = parse("CEF:0|a|b|c|d|e|1|cs5=Business / Economy url=http://x/?a=b src= suser=root")
            .unwrap();
        assert_eq!(
            ext(&m),
            [
                ("cs5", "Business / Economy"),
                ("url", "http://x/?a=b"),
                ("src", ""),
                ("suser", "root")
            ]
        );
    }

    #[test]
    fn syslog_headers_and_missing_extensions() {
        let m = parse("<134>May 02 15:27:43 host CEF:0|a|b|c|d|e|10").unwrap();
        assert_eq!(
            (m.prefix, m.severity.as_ref()),
            ("<134>May 02 15:27:43 host", "10")
        );
        assert!(m.extensions.is_empty());
        assert!(parse("CEF:0|a|b|c|d").is_none());
        assert!(parse("no CEF here, xCEF:0|a|b|c|d|e|f|").is_none());
    }

    #[test]
    fn columns_follow_common_security_log() {
        let m = parse("CEF:0|V|P|1|7|N|5|src=1.2.3.4 dpt=443 fileHash=abc custom=1").unwrap();
        let mut json = String::new();
        m.write_columns_json(&mut json, |name| name != "DeviceVersion");
        assert_eq!(
            json,
            r#"{"CEFVersion":"0","DeviceVendor":"V","DeviceProduct":"P","DeviceEventClassID":"7","Activity":"N","LogSeverity":"5","SourceIP":"1.2.3.4","DestinationPort":"443","FileHash":"abc"}"#
        );
    }
}
