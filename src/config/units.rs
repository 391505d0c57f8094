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
        .ok_or_else(|| "is too large".to_string())
}

/// Parses `"250ms"`, `"30s"`, `"5m"`, `"1h"`.
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
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| "is too large".to_string())
}

/// `"64 MiB"` -> `(64, "MiB")`; `None` without leading digits.
fn number_and_unit(text: &str) -> Option<(u64, &str)> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    Some((digits.parse().ok()?, unit.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(parse_size("99999999999999GiB")
            .unwrap_err()
            .contains("too large"));
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
    }
}
