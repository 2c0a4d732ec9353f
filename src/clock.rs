//! Wall-clock time as Unix milliseconds, the one time format stored in the database.
use std::time::{SystemTime, UNIX_EPOCH};

pub const SECOND: i64 = 1_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `2026-11-21` for pages and exports.
pub fn format_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%-d %B %Y").to_string())
        .unwrap_or_default()
}

/// The time as the slow workers see it (the reply questionnaire, the MPs' digest). In production
/// it is the wall clock; tests move it forward to see what happens two weeks after a letter
/// without waiting. Each application has its own, so tests running side by side do not meet.
#[derive(Clone)]
pub struct Clock {
    offset: std::sync::Arc<tokio::sync::watch::Sender<i64>>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock { offset: std::sync::Arc::new(tokio::sync::watch::channel(0).0) }
    }
}

impl Clock {
    pub fn now(&self) -> i64 {
        now_ms() + *self.offset.borrow()
    }

    /// Moves this clock forward and wakes the workers that watch it.
    pub fn advance(&self, by: std::time::Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset.send_modify(|o| *o = o.saturating_add(by));
    }

    /// Changes whenever the clock is moved, so a worker waiting for its next round wakes at once.
    pub fn moved(&self) -> tokio::sync::watch::Receiver<i64> {
        self.offset.subscribe()
    }
}
