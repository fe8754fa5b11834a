//! Calendar dates of Unix times, for the few places that print one (a PE header's time
//! stamp in reasons, the daemon's load time).

/// The UTC calendar date `(year, month 1-12, day 1-31)` of `secs` seconds since 1970-01-01
/// (before it too), by Howard Hinnant's days-to-civil algorithm.
pub fn civil_date(secs: i64) -> (i64, u32, u32) {
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_known_times() {
        // Expected values from Python's time.gmtime(t).
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29));
        assert_eq!(civil_date(1_733_304_761), (2024, 12, 4));
        assert_eq!(civil_date(4_102_444_799), (2099, 12, 31));
        assert_eq!(civil_date(-1), (1969, 12, 31));
    }
}
