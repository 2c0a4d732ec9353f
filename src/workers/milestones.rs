//! Notices when a campaign passes a rung of its milestone ladder: the rung is marked reached
//! (the page then aims for the next one) and every staff member gets one email about it.
use std::time::Duration;

use crate::clock::now_ms;
use crate::error::AppError;
use crate::models::{milestones, outbox};
use crate::state::AppState;

pub const REACHED_EMAIL: &str = "milestone_reached";
const EVERY: Duration = Duration::from_secs(2);

pub async fn run(state: AppState) {
    loop {
        tokio::time::sleep(EVERY).await;
        match check(&state).await {
            Ok(n) if n > 0 => state.outbox_wake.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not check milestones"),
        }
    }
}

/// Marks every rung the counts have passed; returns how many were newly reached.
pub async fn check(state: &AppState) -> Result<usize, AppError> {
    let counts = state.counts.all();
    let passed = {
        let counts = counts.clone();
        state
            .db
            .read(move |conn| {
                let mut passed = Vec::new();
                for (campaign_id, count) in counts {
                    passed.extend(milestones::unreached_up_to(conn, campaign_id, count)?.into_iter().map(|m| m.id));
                }
                Ok(passed)
            })
            .await?
    };
    if passed.is_empty() {
        return Ok(0);
    }
    state
        .db
        .write_background(move |conn| {
            let now = now_ms();
            let mut reached = 0;
            for id in passed {
                if milestones::mark_reached(conn, id, now)? == 1 {
                    outbox::enqueue(conn, REACHED_EMAIL, id, now)?;
                    reached += 1;
                }
            }
            Ok(reached)
        })
        .await
}
