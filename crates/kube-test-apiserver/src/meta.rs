//! Server-assigned metadata: timestamps, uids and generated-name suffixes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The current time as RFC 3339 in UTC with second precision, as Kubernetes writes it.
pub fn now_rfc3339() -> String {
    format_rfc3339(now_secs())
}

/// Seconds since the epoch as RFC 3339 in UTC (`2026-01-02T03:04:05Z`).
fn format_rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// (year, month, day) to days since 1970-01-01, the inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp (`2026-01-02T03:04:05Z`).
fn parse_rfc3339(text: &str) -> Option<i64> {
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let days = days_from_civil(num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    Some(days * 86_400 + num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?)
}

/// How long ago `timestamp` was, the way kubectl prints ages (`45s`, `3m2s`, `5h`, `2d3h`);
/// `<unknown>` when it is missing or malformed.
pub fn age(timestamp: Option<&str>) -> String {
    let Some(then) = timestamp.and_then(parse_rfc3339) else {
        return "<unknown>".to_string();
    };
    let secs = (now_secs() - then).max(0);
    let (mins, hours, days) = (secs / 60, secs / 3600, secs / 86_400);
    match () {
        _ if secs < 120 => format!("{secs}s"),
        _ if mins < 10 && secs % 60 != 0 => format!("{mins}m{}s", secs % 60),
        _ if hours < 3 => format!("{mins}m"),
        _ if hours < 8 && mins % 60 != 0 => format!("{hours}h{}m", mins % 60),
        _ if hours < 48 => format!("{hours}h"),
        _ if days < 8 && hours % 24 != 0 => format!("{days}d{}h", hours % 24),
        _ => format!("{days}d"),
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A pseudo-random 64-bit value (splitmix64 over a process-wide counter seeded by the clock);
/// uniqueness within a process is what matters here, not unpredictability.
fn next_random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let _ = STATE.compare_exchange(0, seed | 1, Ordering::Relaxed, Ordering::Relaxed);
    let mut z = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A new random (version 4 layout) UID.
pub fn new_uid() -> String {
    let (a, b) = (next_random(), next_random());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// Five lowercase alphanumerics appended to `metadata.generateName`.
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut r = next_random();
    (0..5)
        .map(|_| {
            let c = ALPHABET[(r % ALPHABET.len() as u64) as usize] as char;
            r /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_conversion() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_819), (2027, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        for days in [0, 11_016, 20_819, 20_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(parse_rfc3339("1970-01-02T00:01:05Z"), Some(86_465));
        assert_eq!(parse_rfc3339("bogus"), None);
    }

    #[test]
    fn ages_read_like_kubectl() {
        // One second may tick between writing the timestamp and reading the age.
        let ago = |secs: i64| age(Some(&format_rfc3339(now_secs() - secs)));
        assert!(matches!(ago(5).as_str(), "5s" | "6s"));
        assert!(matches!(ago(185).as_str(), "3m5s" | "3m6s"));
        assert_eq!(ago(3600 * 5), "5h");
        assert_eq!(ago(86_400 * 2 + 3600 * 3), "2d3h");
        assert_eq!(age(None), "<unknown>");
    }

    #[test]
    fn uids_are_distinct_and_well_formed() {
        let (a, b) = (new_uid(), new_uid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
        assert_eq!(name_suffix().len(), 5);
    }
}
