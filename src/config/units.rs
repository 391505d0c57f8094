//! Human-friendly sizes (`"64MiB"`) and durations (`"30s"`) used by the config.

use std::time::Duration;

/// Parses `"1024"`, `"512KiB"`, `"64MiB"`, `"1GiB"` (also `KB`/`MB`/`GB` as
/// powers of 1000). Returns a message naming the accepted forms on failure.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (value, unit) = number_and_unit(text)
        .ok_or_else(|| "is not a size; write e.g. 1048576, \"512KiB\" or \"64MiB\"".to_string())?;
    let factor: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => {
            return Err("has an unknown size unit; use B, KiB, MiB, GiB, KB, MB or GB".to_string())
        }
    };
    value
        .checked_mul(factor)
        .filter(|n| *n < u64::MAX)
        .ok_or_else(|| "is too large".to_string())
}

/// The longest duration any key takes: 365 days. Every duration is added to
/// clocks later (`Instant`, certificate validity, token expiry), and a
/// bounded one can never push them out of range.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses `"250ms"`, `"30s"`, `"5m"`, `"1h"`, up to `MAX_DURATION`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (value, unit) = number_and_unit(text)
        .ok_or_else(|| "is not a duration; write e.g. \"500ms\", \"30s\" or \"5m\"".to_string())?;
    let millis = match unit {
        "ms" => Some(value),
        "s" => value.checked_mul(1_000),
        "m" => value.checked_mul(60_000),
        "h" => value.checked_mul(3_600_000),
        "" => return Err("needs a unit: ms, s, m or h".to_string()),
        _ => return Err("has an unknown duration unit; use ms, s, m or h".to_string()),
    };
    match millis.map(Duration::from_millis) {
        Some(d) if d <= MAX_DURATION => Ok(d),
        _ => Err("is too long; at most 365 days (\"8760h\")".to_string()),
    }
}

/// `"64 MiB"` -> `(64, "MiB")`; `None` without leading digits. Digits past
/// `u64::MAX` give `u64::MAX`, which every caller finds too large.
fn number_and_unit(text: &str) -> Option<(u64, &str)> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return None;
    }
    Some((digits.parse().unwrap_or(u64::MAX), unit.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2 GiB"), Ok(2 << 30));
        assert_eq!(parse_size("5MB"), Ok(5_000_000));
        assert!(parse_size("12XB")
            .unwrap_err()
            .contains("unknown size unit"));
        assert!(parse_size("MiB").is_err());
        for huge in [
            "99999999999999GiB",
            "99999999999999999999",
            "18446744073709551615",
        ] {
            assert!(
                parse_size(huge).unwrap_err().contains("too large"),
                "{huge}"
            );
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("30").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("3d")
            .unwrap_err()
            .contains("unknown duration unit"));
        assert_eq!(parse_duration("8760h"), Ok(MAX_DURATION));
        for long in [
            "8761h",
            "100000000h",
            "18446744073709551615ms",
            "99999999999999999h",
        ] {
            assert!(
                parse_duration(long)
                    .unwrap_err()
                    .contains("at most 365 days"),
                "{long}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever a duration key says, what it yields can be added to the
        /// clocks countersign keeps (monotonic instants, certificate dates)
        /// without overflow.
        #[test]
        fn every_accepted_duration_can_be_added_to_clocks(
            value in prop_oneof![0u64..40_000_000_000, any::<u64>()],
            unit in "ms|s|m|h",
        ) {
            let text = format!("{value}{unit}");
            match parse_duration(&text) {
                Ok(d) => {
                    prop_assert!(d <= MAX_DURATION);
                    prop_assert!(std::time::Instant::now().checked_add(d).is_some());
                    let d = time::Duration::try_from(d).unwrap();
                    prop_assert!(time::OffsetDateTime::now_utc().checked_add(d).is_some());
                }
                Err(e) => prop_assert!(e.contains("at most 365 days"), "{text}: {e}"),
            }
        }
    }
}
