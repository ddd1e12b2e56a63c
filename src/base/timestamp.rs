//! The one timestamp form in-toto metadata uses: `YYYY-MM-DDTHH:MM:SSZ`, UTC (THREATS D2).

use chrono::{DateTime, NaiveDateTime, Utc};

/// Why a timestamp is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad timestamp format {0:?}: expected YYYY-MM-DDTHH:MM:SSZ in UTC, e.g. 2030-01-31T23:59:59Z"
)]
pub struct TimestampError(pub String);

/// Parses a timestamp in exactly the form `YYYY-MM-DDTHH:MM:SSZ`: no offset, no fraction, no
/// leap second, years 0001 to 9999.
pub fn parse(text: &str) -> Result<DateTime<Utc>, TimestampError> {
    let fail = || TimestampError(text.to_owned());
    let b = text.as_bytes();
    let digits_at = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    let shape = b.len() == 20
        && digits_at(0..4)
        && b[4] == b'-'
        && digits_at(5..7)
        && b[7] == b'-'
        && digits_at(8..10)
        && b[10] == b'T'
        && digits_at(11..13)
        && b[13] == b':'
        && digits_at(14..16)
        && b[16] == b':'
        && digits_at(17..19)
        && b[19] == b'Z';
    if !shape || &text[0..4] == "0000" || &text[17..19] > "59" {
        return Err(fail());
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%SZ")
        .map(|naive| naive.and_utc())
        .map_err(|_| fail())
}

/// Formats a time in the same form, dropping any fraction of a second.
pub fn format(time: &DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d2_only_the_strict_form_is_accepted() {
        let ok = parse("2030-01-31T23:59:59Z").expect("valid");
        assert_eq!(format(&ok), "2030-01-31T23:59:59Z");
        for bad in [
            "2030-01-31T23:59:59+05:00",
            "2030-01-31T23:59:59",
            "2030-01-31T23:59:59.5Z",
            "2030-12-31T23:59:60Z",
            "0000-01-01T00:00:00Z",
            "10000-01-01T00:00:00Z",
            "2030-02-30T00:00:00Z",
            "2030-01-31t23:59:59z",
            "2030-01-31 23:59:59Z",
            " 2030-01-31T23:59:59Z",
            "",
        ] {
            assert_eq!(parse(bad), Err(TimestampError(bad.to_owned())), "{bad}");
        }
    }
}
