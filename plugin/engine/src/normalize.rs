//! Normalisation of indicator values, shared by feeds (at load) and records (at lookup), so
//! both sides of a comparison are written the same way.
//!
//! - Surrounding whitespace is trimmed.
//! - Defanged forms are refanged: `[.]`, `(.)`, `[dot]`, `[:]`, `hxxp`.
//! - IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) become the IPv4 address.
//! - Hashes are hex of a fixed length, compared as bytes, so case does not matter.
//! - Ports are decimal numbers from 0 to 65535, given as JSON numbers or strings.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv6Addr};

/// Undoes the usual defanging of indicators: `194[.]48[.]251[.]24`, `hxxp://`, `[:]`.
pub fn refang(value: &str) -> Cow<'_, str> {
    let value = value.trim();
    let defanged =
        memchr::memchr2(b'[', b'(', value.as_bytes()).is_some() || starts_with_hxxp(value);
    if !defanged {
        return Cow::Borrowed(value);
    }
    let mut out = value
        .replace("[.]", ".")
        .replace("(.)", ".")
        .replace("[dot]", ".")
        .replace("[DOT]", ".")
        .replace("[:]", ":")
        .replace("[://]", "://");
    if starts_with_hxxp(&out) {
        out.replace_range(..4, "http");
    }
    Cow::Owned(out)
}

fn starts_with_hxxp(value: &str) -> bool {
    value
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("hxxp"))
}

/// Parses an IP address, trimmed, with or without brackets, IPv4-mapped IPv6 turned into
/// IPv4. Zone ids (`fe80::1%eth0`) are dropped.
pub fn parse_ip(value: &str) -> Option<IpAddr> {
    if let Some(v4) = parse_dotted_quad(value.as_bytes()) {
        return Some(IpAddr::V4(v4));
    }
    let value = value.trim();
    let value = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    let value = value.split_once('%').map_or(value, |(addr, _zone)| addr);
    // Without a colon it is a dotted quad or nothing (the standard parser takes no other
    // IPv4 form): domain names, read as possible addresses everywhere, stop here.
    if !value.contains(':') {
        return parse_dotted_quad(value.as_bytes()).map(IpAddr::V4);
    }
    let addr: std::net::Ipv6Addr = value.parse().ok()?;
    Some(canonical_ip(IpAddr::V6(addr)))
}

/// The common case, a plain dotted quad, without the general parser: this runs for every
/// address field of every record, so each octet is read digit by digit with no loop over
/// states, and the octets gather in one integer rather than an array a wasm module would
/// keep in memory.
#[inline]
fn parse_dotted_quad(text: &[u8]) -> Option<std::net::Ipv4Addr> {
    let digit = |i: usize| {
        text.get(i)
            .map(|b| b.wrapping_sub(b'0'))
            .filter(|&d| d <= 9)
            .map(u32::from)
    };
    let mut address: u32 = 0;
    let mut i = 0;
    for octet in 0..4 {
        if octet > 0 {
            if text.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let mut value = digit(i)?;
        i += 1;
        // A leading zero makes an octet ambiguous (octal to some parsers): refuse it, as
        // the standard parser does.
        if let Some(d) = digit(i) {
            if value == 0 {
                return None;
            }
            value = value * 10 + d;
            i += 1;
            if let Some(d) = digit(i) {
                value = value * 10 + d;
                i += 1;
            }
        }
        if value > 255 {
            return None;
        }
        address = address << 8 | value;
    }
    (i == text.len()).then(|| address.into())
}

/// IPv4-mapped IPv6 addresses compare equal to the IPv4 address they carry.
pub fn canonical_ip(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Parses `a.b.c.d:port`, `[v6]:port`, and unbracketed `v6:port` as ThreatFox writes it (the
/// last colon-separated group is the port).
pub fn parse_ip_port(value: &str) -> Option<(IpAddr, u16)> {
    let value = value.trim();
    let (addr, port) = if let Some(rest) = value.strip_prefix('[') {
        let (addr, port) = rest.split_once("]:")?;
        (addr, port)
    } else {
        value.rsplit_once(':')?
    };
    let port = parse_port(port)?;
    // An unbracketed IPv6 address is only taken with its port if the rest still parses
    // as an address; `::ffff:1.2.3.4:80` parses as the mapped address and port 80.
    let addr = parse_ip(addr)?;
    Some((addr, port))
}

/// Parses a port number written in decimal, from a JSON number or string.
pub fn parse_port(value: &str) -> Option<u16> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 5 {
        return None;
    }
    let mut port: u32 = 0;
    for b in value.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        port = port * 10 + u32::from(b - b'0');
    }
    u16::try_from(port).ok()
}

/// Decodes a hex string of exactly `N` bytes, in either case.
pub fn parse_hex<const N: usize>(value: &str) -> Option<[u8; N]> {
    let value = value.trim().as_bytes();
    if value.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in value.chunks_exact(2).enumerate() {
        out[i] = hex_digit(pair[0])? << 4 | hex_digit(pair[1])?;
    }
    Some(out)
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Writes bytes as lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Writes an address with a port, bracketing IPv6 as URLs do.
pub fn format_ip_port(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// The 128-bit key of an IPv6 address.
pub fn v6_key(addr: Ipv6Addr) -> u128 {
    u128::from(addr)
}

/// Normalises a domain name into `out`: refanged, trimmed, lower case, trailing dot dropped,
/// internationalised names in their ASCII (punycode) form. Returns false (and leaves `out`
/// unspecified) when the text is not a domain name with at least two labels.
pub fn normalize_domain_into(value: &str, out: &mut String) -> bool {
    out.clear();
    let value = refang(value);
    let value = value.trim().trim_end_matches('.');
    if value.is_empty() || value.len() > 253 {
        return false;
    }
    if value.is_ascii() {
        out.extend(value.chars().map(|c| c.to_ascii_lowercase()));
    } else {
        match idna::domain_to_ascii(value) {
            Ok(ascii) => out.push_str(&ascii),
            Err(_) => return false,
        }
    }
    is_domain_name(out)
}

/// Normalises a domain name (see [`normalize_domain_into`]).
pub fn normalize_domain(value: &str) -> Option<String> {
    let mut out = String::new();
    normalize_domain_into(value, &mut out).then_some(out)
}

/// Lower-case ASCII labels of letters, digits, `-` and `_`, at least two of them, and not
/// an IP address.
fn is_domain_name(name: &str) -> bool {
    if !name.contains('.') || name.parse::<IpAddr>().is_ok() || name.len() > 253 {
        return false;
    }
    name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    })
}

/// The default port of a URL scheme, dropped when normalising.
fn default_port(scheme: &str) -> Option<&'static str> {
    match scheme {
        "http" | "ws" => Some("80"),
        "https" | "wss" => Some("443"),
        "ftp" => Some("21"),
        _ => None,
    }
}

/// A URL split into its host and its normalised text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedUrl {
    /// `scheme://host[:port]/path?query`, scheme and host lower case, default port dropped,
    /// an empty path written `/`, the fragment dropped; path and query as written.
    pub text: String,
    /// Where the host lies in `text` (no brackets around an IPv6 address).
    pub host: std::ops::Range<usize>,
}

impl NormalizedUrl {
    /// The host: a domain name or an address.
    pub fn host(&self) -> &str {
        &self.text[self.host.clone()]
    }
}

/// Normalises a URL: refanged (`hxxp`, `[.]`, `[:]`), scheme and host case-insensitive, host
/// in its ASCII form, default port and the trailing slash of an empty path normalised. A
/// URL without a scheme (`evil.example/a`, as Zeek writes them) is taken as `http`.
pub fn normalize_url(value: &str) -> Option<NormalizedUrl> {
    let value = refang(value);
    let value = value.trim();
    let (scheme, rest) = match value.find("://") {
        Some(i) => (&value[..i], &value[i + 3..]),
        None => ("http", value),
    };
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
    {
        return None;
    }
    let rest = rest.split_once('#').map_or(rest, |(r, _fragment)| r);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_query) = rest.split_at(authority_end);
    let authority = authority.rsplit_once('@').map_or(authority, |(_user, a)| a);
    // Host and port; an IPv6 host is bracketed.
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (addr, after) = inner.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (addr, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let scheme = scheme.to_ascii_lowercase();
    let mut text = String::with_capacity(value.len() + 1);
    text.push_str(&scheme);
    text.push_str("://");
    let host_start;
    let host_end;
    if let Some(addr) = parse_ip(host) {
        let bracket = addr.is_ipv6();
        if bracket {
            text.push('[');
        }
        host_start = text.len();
        text.push_str(&addr.to_string());
        host_end = text.len();
        if bracket {
            text.push(']');
        }
    } else {
        let mut name = String::new();
        let host = host.trim_end_matches('.');
        if !normalize_domain_into(host, &mut name) && !is_single_label(host) {
            return None;
        }
        if name.is_empty() {
            name = host.to_ascii_lowercase();
        }
        host_start = text.len();
        text.push_str(&name);
        host_end = text.len();
    }
    match port {
        Some("") | None => {}
        Some(p) => {
            let p = parse_port(p)?;
            let p = p.to_string();
            if default_port(&scheme) != Some(p.as_str()) {
                text.push(':');
                text.push_str(&p);
            }
        }
    }
    if !path_query.starts_with('/') {
        text.push('/');
    }
    text.push_str(path_query);
    Some(NormalizedUrl {
        text,
        host: host_start..host_end,
    })
}

fn is_single_label(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn refangs_common_forms() {
        assert_eq!(refang(" 194[.]48[.]251[.]24 "), "194.48.251.24");
        assert_eq!(refang("hxxps://evil(.)example/a"), "https://evil.example/a");
        assert_eq!(refang("1.2.3.4[:]80"), "1.2.3.4:80");
        assert_eq!(refang("HXXP://x[dot]y"), "http://x.y");
        assert!(matches!(refang("1.2.3.4"), Cow::Borrowed(_)));
    }

    #[test]
    fn mapped_ipv6_is_the_ipv4_address() {
        let v4 = IpAddr::V4(Ipv4Addr::new(194, 48, 251, 24));
        assert_eq!(parse_ip("::ffff:194.48.251.24"), Some(v4));
        assert_eq!(parse_ip("::FFFF:c230:fb18"), Some(v4));
        assert_eq!(parse_ip("[::ffff:194.48.251.24]"), Some(v4));
        assert_eq!(parse_ip("2001:db8::1").map(|a| a.is_ipv6()), Some(true));
        assert_eq!(parse_ip(""), None);
        assert_eq!(parse_ip("194.48.251.256"), None);
    }

    #[test]
    fn the_dotted_quad_fast_path_agrees_with_the_standard_parser() {
        for text in [
            "1.2.3.4",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "1.2.3.4 ",
            "a.b.c.d",
            "",
            "10.0.0.010",
            "1.2.3.0",
            "1.2.3.4000",
            "999.1.1.1",
            "00.1.1.1",
            "1.2.3.-1",
        ] {
            let ours = parse_dotted_quad(text.as_bytes());
            let std = text.parse::<std::net::Ipv4Addr>().ok();
            assert_eq!(ours, std, "{text:?}");
        }
        // Near-addresses from a small generator: four groups of zero to four digits,
        // sometimes with a group too many or too few, or a stray character.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut addresses = 0;
        for _ in 0..100_000 {
            let groups = match next(8) {
                0 => 3,
                1 => 5,
                _ => 4,
            };
            let mut text = String::new();
            for g in 0..groups {
                if g > 0 {
                    text.push('.');
                }
                let digits = if next(6) == 0 { next(5) } else { 1 + next(3) };
                for _ in 0..digits {
                    text.push(char::from(b'0' + next(10) as u8));
                }
            }
            if next(10) == 0 {
                let at = next(text.len() as u64 + 1) as usize;
                text.insert(at, [' ', 'x', '-', '+'][next(4) as usize]);
            }
            let ours = parse_dotted_quad(text.as_bytes());
            let std = text.parse::<std::net::Ipv4Addr>().ok();
            assert_eq!(ours, std, "{text:?}");
            addresses += usize::from(std.is_some());
        }
        assert!(addresses > 1000, "the generator made {addresses} addresses");
    }

    #[test]
    fn addresses_parse_as_the_standard_parser_reads_them() {
        let reference = |value: &str| {
            let value = value.trim();
            let value = value
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .unwrap_or(value);
            let value = value.split_once('%').map_or(value, |(addr, _)| addr);
            value.parse::<IpAddr>().ok().map(canonical_ip)
        };
        for text in [
            "1.2.3.4",
            " 10.0.0.1\t",
            "[::1]",
            "fe80::1%eth0",
            "::ffff:1.2.3.4",
            "2001:db8::1",
            "evil.example",
            "1.2.3.4.example",
            "01.2.3.4",
            "[1.2.3.4]",
            "1.2.3.4%x",
            ":",
            "",
            "[]",
            "::",
        ] {
            assert_eq!(parse_ip(text), reference(text), "{text:?}");
        }
    }

    #[test]
    fn parses_ip_port_forms() {
        let v4 = IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4));
        assert_eq!(parse_ip_port("1.2.3.4:80"), Some((v4, 80)));
        assert_eq!(parse_ip_port("::ffff:1.2.3.4:80"), Some((v4, 80)));
        let (addr, port) = parse_ip_port("2a02:cf40:1::5:40669").unwrap();
        assert_eq!((addr.to_string().as_str(), port), ("2a02:cf40:1::5", 40669));
        let (addr, port) = parse_ip_port("[2001:db8::1]:443").unwrap();
        assert_eq!((addr.to_string().as_str(), port), ("2001:db8::1", 443));
        assert_eq!(parse_ip_port("1.2.3.4:65536"), None);
        assert_eq!(parse_ip_port("1.2.3.4"), None);
        assert_eq!(parse_ip_port("1.2.3.4:"), None);
    }

    #[test]
    fn ports_come_as_numbers_or_strings() {
        assert_eq!(parse_port("80"), Some(80));
        assert_eq!(parse_port(" 443 "), Some(443));
        assert_eq!(parse_port("-1"), None);
        assert_eq!(parse_port("80.5"), None);
        assert_eq!(parse_port(""), None);
    }

    #[test]
    fn hashes_ignore_case_and_need_their_length() {
        let lower = parse_hex::<16>("0cc175b9c0f1b6a831c399e269772661").unwrap();
        assert_eq!(
            parse_hex::<16>("0CC175B9C0F1B6A831C399E269772661"),
            Some(lower)
        );
        assert_eq!(to_hex(&lower), "0cc175b9c0f1b6a831c399e269772661");
        assert_eq!(parse_hex::<16>("0cc175b9c0f1b6a831c399e26977266"), None);
        assert_eq!(parse_hex::<16>("0cc175b9c0f1b6a831c399e26977266g"), None);
    }

    #[test]
    fn domains_fold_case_drop_the_root_dot_and_use_punycode() {
        assert_eq!(
            normalize_domain("Evil.Example."),
            Some("evil.example".into())
        );
        assert_eq!(
            normalize_domain("evil[.]example"),
            Some("evil.example".into())
        );
        assert_eq!(
            normalize_domain("bücher.example"),
            Some("xn--bcher-kva.example".into())
        );
        assert_eq!(normalize_domain("localhost"), None);
        assert_eq!(normalize_domain("1.2.3.4"), None);
        assert_eq!(normalize_domain("a b.example"), None);
    }

    #[test]
    fn urls_normalise_scheme_host_port_and_empty_path_only() {
        let n = |s: &str| normalize_url(s).map(|u| u.text);
        assert_eq!(
            n("HTTP://Evil.Example:80"),
            Some("http://evil.example/".into())
        );
        assert_eq!(
            n("https://evil.example:443/"),
            Some("https://evil.example/".into())
        );
        assert_eq!(
            n("https://evil.example:8443/A?B=C"),
            Some("https://evil.example:8443/A?B=C".into())
        );
        assert_eq!(
            n("hxxp://evil[.]example/x"),
            Some("http://evil.example/x".into())
        );
        assert_eq!(
            n("http://evil.example?q"),
            Some("http://evil.example/?q".into())
        );
        assert_eq!(n("evil.example/p"), Some("http://evil.example/p".into()));
        assert_eq!(
            n("http://[2001:DB8::1]:8080/x"),
            Some("http://[2001:db8::1]:8080/x".into())
        );
        assert_ne!(n("http://evil.example/A"), n("http://evil.example/a"));
        let u = normalize_url("http://1.2.3.4:81/x").unwrap();
        assert_eq!(u.host(), "1.2.3.4");
        assert_eq!(n("http://evil.example:99999/"), None);
    }
}
