//! Normalisation of indicator values, shared by feeds (at load) and records (at lookup), so
//! both sides of a comparison are written the same way.
//!
//! - Surrounding whitespace is trimmed.
//! - Defanged forms are refanged: `[.]`, `(.)`, `[dot]`, `[:]`, `hxxp`.
//! - IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) become the IPv4 address.
//! - Hashes are hex of a fixed length, compared as bytes, so case does not matter.
//! - Ports are decimal numbers from 0 to 65535, given as JSON numbers or strings.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Undoes the usual defanging of indicators: `194[.]48[.]251[.]24`, `hxxp://`, `[:]`.
pub fn refang(value: &str) -> Cow<'_, str> {
    let value = value.trim();
    let defanged = value.contains('[') || value.contains('(') || starts_with_hxxp(value);
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
    if let Some(v4) = parse_plain_ipv4(value.as_bytes()) {
        return Some(IpAddr::V4(v4));
    }
    let value = value.trim();
    let value = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    let value = value.split_once('%').map_or(value, |(addr, _zone)| addr);
    if value.is_empty() {
        return None;
    }
    let addr: IpAddr = value.parse().ok()?;
    Some(canonical_ip(addr))
}

/// The common case, a bare dotted quad without leading zeros, read directly: the general
/// path costs several times more in an interpreter. `None` leaves anything else to it.
fn parse_plain_ipv4(bytes: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = bytes.split(|&b| b == b'.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || (part.len() > 1 && part[0] == b'0') {
            return None;
        }
        let mut n: u16 = 0;
        for &b in part {
            if !b.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u16::from(b - b'0');
        }
        *octet = u8::try_from(n).ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
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
    let value = value.trim();
    if value.is_empty() || value.len() > 5 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
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
    fn the_dotted_quad_fast_path_agrees_with_the_standard_parser() {
        for text in [
            "1.2.3.4",
            "194.48.251.24",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..3.4",
            "1.2.3.4 ",
            " 1.2.3.4",
            "1.2.3.-4",
            "1.2.3.4a",
            "",
            "1000.1.1.1",
            "10.0.0.01",
            "::1",
            "::ffff:1.2.3.4",
        ] {
            let standard = text.parse::<Ipv4Addr>().ok();
            let fast = parse_plain_ipv4(text.as_bytes());
            assert!(
                fast.is_none() || fast == standard,
                "{text:?}: {fast:?} vs {standard:?}"
            );
            assert_eq!(
                fast.is_some(),
                standard.is_some() && text.trim() == text,
                "{text:?}"
            );
        }
        assert_eq!(
            parse_ip(" 1.2.3.4 "),
            Some(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)))
        );
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
}
