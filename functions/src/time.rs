//! Timestamps as the API shows and the table sorts them: RFC 3339 UTC with exactly three fractional
//! digits (`2024-05-01T12:00:00.000Z`), so string order is time order in the tenant index. The
//! calendar is the `time` crate's; the clock is the [`Clock`] of the app, which tests can hold still
//! and move instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

/// Where "now" comes from: the system clock, or a manual one that moves only when told.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that stands at `start_millis` until [`advance`](Clock::advance)d.
    pub fn manual(start_millis: i64) -> Clock {
        Clock { manual: Some(Arc::new(AtomicI64::new(start_millis))) }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_millis(&self) -> i64 {
        match &self.manual {
            Some(t) => t.load(Ordering::SeqCst),
            None => now_millis(),
        }
    }

    pub fn now_secs(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }

    /// Moves a manual clock on; the system clock cannot be moved (a no-op).
    pub fn advance(&self, millis: i64) {
        if let Some(t) = &self.manual {
            t.fetch_add(millis, Ordering::SeqCst);
        }
    }
}

/// Milliseconds since the Unix epoch, by the system clock.
pub fn now_millis() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Formats epoch milliseconds as fixed-width RFC 3339 UTC (years 0000-9999; others are clamped).
pub fn rfc3339(millis: i64) -> String {
    let fixed = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fixed).ok())
        .unwrap_or_else(|| if millis < 0 { "0000-01-01T00:00:00.000Z".into() } else { "9999-12-31T23:59:59.999Z".into() })
}

/// Parses RFC 3339 UTC (`Z`, any fractional digits) back to epoch milliseconds; another offset or
/// anything that is not RFC 3339 is `None`.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    if !s.ends_with('Z') {
        return None;
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_fixed_width_and_round_trips() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_005), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(1_714_564_800_123), "2024-05-01T12:00:00.123Z");
        for ms in [0, 1, 999, 86_399_999, 951_782_400_005, 1_714_564_800_123, 4_102_444_800_000] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
        }
        assert_eq!(parse_rfc3339("2024-05-01T12:00:00Z"), Some(1_714_564_800_000));
        assert_eq!(parse_rfc3339("2024-05-01T12:00:00.5Z"), Some(1_714_564_800_500));
        assert_eq!(parse_rfc3339("2024-05-01T12:00Z"), None);
        assert_eq!(parse_rfc3339("2024-05-01T12:00:00+02:00"), None);
        assert_eq!(parse_rfc3339("garbage"), None);
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = Clock::manual(1_000);
        assert_eq!(c.now_millis(), 1_000);
        c.advance(5);
        assert_eq!((c.now_millis(), c.now_secs()), (1_005, 1));
        let shared = c.clone();
        shared.advance(1_000);
        assert_eq!(c.now_millis(), 2_005, "clones share the clock");
        assert!(Clock::system().now_millis() > 1_700_000_000_000);
    }
}
