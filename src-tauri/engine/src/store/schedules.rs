//! The scheduler's memory of each pipeline.

use super::*;

/// The scheduler's memory of one pipeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct ScheduleState {
    /// When the schedule last fired (RFC 3339 UTC).
    pub last_fire_at: Option<String>,
    /// Fires missed while nothing ran (shown, and run once).
    #[ts(type = "number")]
    pub missed: u64,
    pub missed_since: Option<String>,
    /// The window the quota below counts in.
    pub window_id: Option<String>,
    #[ts(type = "number")]
    pub window_rows: u64,
    /// A run the scheduler paused; it resumes it in the next window.
    pub paused_run: Option<String>,
    /// The window whose share of a multi-day pass is done.
    pub quota_window: Option<String>,
}

impl Store {
    pub async fn schedule_state(&self, pipeline: &str) -> Result<ScheduleState, StoreError> {
        let row = sqlx::query(
            "SELECT last_fire_at, missed, missed_since, window_id, window_rows, paused_run, quota_window FROM schedule_state
             WHERE pipeline = ?",
        )
        .bind(pipeline)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(ScheduleState::default());
        };
        let missed: i64 = r.try_get(1)?;
        let rows: i64 = r.try_get(4)?;
        Ok(ScheduleState {
            last_fire_at: r.try_get(0)?,
            missed: u64::try_from(missed).unwrap_or(0),
            missed_since: r.try_get(2)?,
            window_id: r.try_get(3)?,
            window_rows: u64::try_from(rows).unwrap_or(0),
            paused_run: r.try_get(5)?,
            quota_window: r.try_get(6)?,
        })
    }

    pub async fn save_schedule_state(
        &self,
        pipeline: &str,
        state: &ScheduleState,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO schedule_state (pipeline, last_fire_at, missed, missed_since, window_id, window_rows, paused_run,
             quota_window) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(pipeline) DO UPDATE SET
             last_fire_at = excluded.last_fire_at, missed = excluded.missed, missed_since = excluded.missed_since,
             window_id = excluded.window_id, window_rows = excluded.window_rows, paused_run = excluded.paused_run,
             quota_window = excluded.quota_window",
        )
        .bind(pipeline)
        .bind(state.last_fire_at.as_deref())
        .bind(n(state.missed))
        .bind(state.missed_since.as_deref())
        .bind(state.window_id.as_deref())
        .bind(n(state.window_rows))
        .bind(state.paused_run.as_deref())
        .bind(state.quota_window.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
