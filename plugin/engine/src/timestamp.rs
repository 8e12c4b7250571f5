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
    let plain = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    if let Ok(t) = PrimitiveDateTime::parse(text, plain) {
        return Some(t.assume_utc().unix_timestamp());
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
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
        assert_eq!(parse_feed_time("2026-06-19 08:12:44 UTC"), Some(t));
        assert_eq!(parse_feed_time("2026-06-19T08:12:44Z"), Some(t));
        assert_eq!(parse_feed_time("2026-06-19T10:12:44+02:00"), Some(t));
        assert_eq!(parse_feed_time("None"), None);
        assert_eq!(parse_feed_time("yesterday"), None);
        assert_eq!(format_rfc3339(t), "2026-06-19T08:12:44Z");
    }
}
