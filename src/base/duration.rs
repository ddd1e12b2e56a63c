//! Durations as people type them on a command line: a whole number and one unit, `90s`, `10m`,
//! `24h`, `7d`, `2w`. No fractions, no signs, no combined forms (`1h30m`): one spelling per
//! duration, so that a typo is an error rather than a surprise.

use chrono::Duration;

/// The forms accepted, as error messages list them.
const FORMS: &str = "a whole number and a unit: 90s, 10m, 24h, 7d or 2w (seconds, minutes, hours, \
                     days, weeks)";

/// Why a duration is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// Nothing was given.
    #[error("empty duration: expected {FORMS}")]
    Empty,
    /// A sign: durations here are never negative (nor explicitly positive).
    #[error("duration {0:?} has a sign: expected {FORMS}")]
    Signed(String),
    /// The number part is missing or not a whole decimal number.
    #[error("duration {0:?} does not start with a whole number: expected {FORMS}")]
    Number(String),
    /// The unit is missing or not one of `s`, `m`, `h`, `d`, `w`.
    #[error("duration {text:?} has the unit {unit:?}: expected {FORMS}")]
    Unit {
        /// The text given.
        text: String,
        /// The unit found (empty when none).
        unit: String,
    },
    /// The value is larger than a duration can hold.
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

/// Parses `90s`, `10m`, `24h`, `7d` or `2w` into a duration.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text.starts_with(['-', '+']) {
        return Err(DurationError::Signed(text.to_owned()));
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(DurationError::Number(text.to_owned()));
    }
    let seconds_per_unit: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        "d" => 24 * 60 * 60,
        "w" => 7 * 24 * 60 * 60,
        _ => {
            return Err(DurationError::Unit {
                text: text.to_owned(),
                unit: unit.to_owned(),
            });
        }
    };
    let overflow = || DurationError::Overflow(text.to_owned());
    let count: i64 = number.parse().map_err(|_| overflow())?;
    let seconds = count.checked_mul(seconds_per_unit).ok_or_else(overflow)?;
    Duration::try_seconds(seconds).ok_or_else(overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_unit_parses() {
        assert_eq!(parse("90s"), Ok(Duration::seconds(90)));
        assert_eq!(parse("10m"), Ok(Duration::minutes(10)));
        assert_eq!(parse("24h"), Ok(Duration::hours(24)));
        assert_eq!(parse("7d"), Ok(Duration::days(7)));
        assert_eq!(parse("2w"), Ok(Duration::weeks(2)));
        assert_eq!(parse("0s"), Ok(Duration::zero()));
        assert_eq!(parse("007m"), Ok(Duration::minutes(7)));
    }

    #[test]
    fn bad_forms_are_refused_with_the_forms_listed() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(parse("-5m"), Err(DurationError::Signed("-5m".into())));
        assert_eq!(parse("+5m"), Err(DurationError::Signed("+5m".into())));
        assert_eq!(parse("h"), Err(DurationError::Number("h".into())));
        for (text, unit) in [
            ("10", ""),
            ("10x", "x"),
            ("10 m", " m"),
            ("1.5h", ".5h"),
            ("10M", "M"),
            ("1h30m", "h30m"),
            ("10sec", "sec"),
            ("5٣s", "٣s"),
        ] {
            let err = parse(text).expect_err(text);
            assert_eq!(
                err,
                DurationError::Unit {
                    text: text.into(),
                    unit: unit.into()
                },
                "{text}"
            );
            let message = err.to_string();
            assert!(message.contains("90s, 10m, 24h, 7d or 2w"), "{message}");
        }
        assert!(parse("").expect_err("empty").to_string().contains("7d"));
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        for text in [
            "99999999999999999999s",
            "9223372036854775807w",
            "9223372036854775807s",
        ] {
            assert_eq!(
                parse(text),
                Err(DurationError::Overflow(text.into())),
                "{text}"
            );
        }
        // The largest count of weeks that fits.
        assert!(parse("1000000w").is_ok());
    }
}
