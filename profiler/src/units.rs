//! Human-readable durations (`1.23 ms`) for tables, and duration and percentage parsing for
//! flags.
#![forbid(unsafe_code)]

use std::time::Duration;

/// Formats nanoseconds with three significant digits and a unit: `850ns`, `1.23µs`,
/// `12.3ms`, `1.20s`, `61.0s`.
pub fn fmt_ns(ns: u64) -> String {
    const UNITS: [(f64, &str); 3] = [(1e9, "s"), (1e6, "ms"), (1e3, "µs")];
    let v = ns as f64;
    for (scale, unit) in UNITS {
        if v >= scale {
            return format!("{}{unit}", three_digits(v / scale));
        }
    }
    format!("{ns}ns")
}

fn three_digits(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// Parses a duration flag: `10s`, `500ms`, `1m30s`, `2h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!(
            "invalid duration '{s}': must be a non-negative number"
        ));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("invalid duration '{s}': {e} (examples: 10s, 500ms, 1m30s)"))
}

/// Parses a percentage flag (`10%` or `10`) into a fraction (0.1); any finite value ≥ 0.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim();
    match t.strip_suffix('%').unwrap_or(t).trim().parse::<f64>() {
        Ok(pct) if pct.is_finite() && pct >= 0.0 => Ok(pct / 100.0),
        _ => Err(format!(
            "invalid percentage '{t}': expected a non-negative number like 10%"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_ns(0), "0ns");
        assert_eq!(fmt_ns(999), "999ns");
        assert_eq!(fmt_ns(1_234), "1.23µs");
        assert_eq!(fmt_ns(12_345_678), "12.3ms");
        assert_eq!(fmt_ns(123_456_789), "123ms");
        assert_eq!(fmt_ns(1_200_000_000), "1.20s");
    }

    #[test]
    fn parses() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .starts_with("invalid duration 'soon'")
        );
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_percent("50%"), Ok(0.5));
        assert_eq!(parse_percent(" 10 "), Ok(0.1));
        assert!(parse_percent("-5%").is_err());
        assert!(parse_percent("NaN%").is_err());
        assert!(
            parse_percent("lots")
                .unwrap_err()
                .starts_with("invalid percentage 'lots'")
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_duration_never_panics(s in "\\PC{0,24}") {
            let _ = parse_duration(&s);
        }
    }
}
