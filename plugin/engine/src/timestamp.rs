//! Feed timestamps in, RFC 3339 out. The engine reads no clock: the host passes `now`.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Parses the timestamps feeds write: `2026-06-19 08:12:44` (UTC), the same with a
/// trailing ` UTC`, or RFC 3339. Returns seconds since the Unix epoch.
pub fn parse_feed_time(text: &str) -> Option<i64> {
    let text = text.trim();
    let text = text.strip_suffix(" UTC").unwrap_or(text);
    if text.is_empty() || text.eq_ignore_ascii_case("none") || text == "null" {
        return None;
    }
    if let Some(t) = parse_plain_fast(text) {
        return Some(t);
    }
    let plain = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    if let Ok(t) = PrimitiveDateTime::parse(text, plain) {
        return Some(t.assume_utc().unix_timestamp());
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

/// `YYYY-MM-DD HH:MM:SS` without the general parser: feeds of a million rows write it on
/// every row. Anything else (or an impossible date) is left to the general parser.
fn parse_plain_fast(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        b[range].iter().try_fold(0i64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=28).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Writes seconds since the Unix epoch as RFC 3339 in UTC: `2026-06-19T08:12:44Z`.
pub fn format_rfc3339(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forms_feeds_use() {
        let t = 1_781_856_764; // 2026-06-19 08:12:44 UTC
        assert_eq!(parse_feed_time("2026-06-19 08:12:44"), Some(t));
        assert_eq!(parse_plain_fast("2026-06-19 08:12:44"), Some(t));
        assert_eq!(parse_plain_fast("2024-02-28 00:00:00"), Some(1_709_078_400));
        assert_eq!(parse_feed_time("2024-02-29 00:00:00"), Some(1_709_164_800));
        assert_eq!(parse_feed_time("2026-02-30 00:00:00"), None);
        assert_eq!(parse_feed_time("2026-06-19 08:12:44 UTC"), Some(t));
        assert_eq!(parse_feed_time("2026-06-19T08:12:44Z"), Some(t));
        assert_eq!(parse_feed_time("2026-06-19T10:12:44+02:00"), Some(t));
        assert_eq!(parse_feed_time("None"), None);
        assert_eq!(parse_feed_time("yesterday"), None);
        assert_eq!(format_rfc3339(t), "2026-06-19T08:12:44Z");
    }
}
