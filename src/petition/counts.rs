//! Confirmed-signature counts kept in memory, so reading a count never runs `COUNT(*)`.
//!
//! Built from the database at start-up; confirming, invalidating, restoring and deleting on
//! request move it the moment they commit; and it is reloaded on a timer: every second on
//! PostgreSQL, where other instances confirm signatures too, and every 30 seconds on SQLite as a
//! safety net for changes made outside this process.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::db::{Backend, Db, DbConn};
use crate::error::AppError;
use crate::models::signatures;

#[derive(Default)]
pub struct Counts {
    confirmed: RwLock<HashMap<i64, i64>>,
    /// Bumped on every change, so cached pages can tell they are out of date.
    version: AtomicU64,
}

impl Counts {
    pub fn load(conn: &mut DbConn) -> Result<Arc<Counts>, AppError> {
        let counts = Counts::default();
        counts.replace(read_all(conn)?);
        Ok(Arc::new(counts))
    }

    pub fn confirmed(&self, campaign_id: i64) -> i64 {
        self.confirmed.read().expect("counts lock").get(&campaign_id).copied().unwrap_or(0)
    }

    /// Call after the change has committed.
    pub fn add(&self, campaign_id: i64, delta: i64) {
        *self.confirmed.write().expect("counts lock").entry(campaign_id).or_insert(0) += delta;
        self.version.fetch_add(1, Ordering::Relaxed);
    }

    /// Every campaign's confirmed count.
    pub fn all(&self) -> Vec<(i64, i64)> {
        self.confirmed.read().expect("counts lock").iter().map(|(c, n)| (*c, *n)).collect()
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    fn replace(&self, fresh: HashMap<i64, i64>) {
        let mut map = self.confirmed.write().expect("counts lock");
        if *map != fresh {
            *map = fresh;
            self.version.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn read_all(conn: &mut DbConn) -> Result<HashMap<i64, i64>, AppError> {
    Ok(signatures::confirmed_by_campaign(conn)?.into_iter().collect())
}

/// Reloads the counts on a timer.
pub async fn run(db: Db, counts: Arc<Counts>) {
    let every = match db.backend {
        Backend::Postgres => Duration::from_secs(1),
        Backend::Sqlite => Duration::from_secs(30),
    };
    loop {
        tokio::time::sleep(every).await;
        match db.read(read_all).await {
            Ok(fresh) => counts.replace(fresh),
            Err(e) => tracing::warn!(error = %e, "could not reload the signature counts"),
        }
    }
}
