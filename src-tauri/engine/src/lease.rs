//! One run of a pipeline at a time, across processes: a lease in the state database (who, which process, on which
//! host, since when, last heartbeat), taken with one conditional statement so that two starts cannot both win.
//! The target adds its own lock (a PostgreSQL advisory lock, see `Sink::lock_pipeline`) for runs that do not
//! share a state database.

use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::time::Duration;
use ts_rs::TS;

/// How often a holder renews its lease.
pub const HEARTBEAT: Duration = Duration::from_secs(3);
/// A lease not renewed for this long belongs to a process that is stuck or gone: it is taken over.
pub const STALE: Duration = Duration::from_secs(20);

/// Who holds a pipeline's lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct LeaseHolder {
    /// "manual" (the console), "cli" or "schedule".
    pub started_by: String,
    pub pid: u32,
    pub host: String,
    /// RFC 3339.
    pub since: String,
}

impl std::fmt::Display for LeaseHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = match self.started_by.as_str() {
            "manual" => "the console",
            "schedule" => "the scheduler",
            "cli" => "syncflow run",
            other => other,
        };
        write!(
            f,
            "{who} (process {} on {}) since {}",
            self.pid, self.host, self.since
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "pipeline \"{pipeline}\" is being run by {holder}; wait for it to end, or pause it there"
    )]
    Held {
        pipeline: String,
        holder: LeaseHolder,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A lease this process holds; renewed by [`Lease::keep_alive`], given back by [`Lease::release`].
pub struct Lease {
    store: Store,
    pipeline: String,
    token: String,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Takes `pipeline`'s lease for this process, or says who holds it.
pub async fn take(store: &Store, pipeline: &str, started_by: &str) -> Result<Lease, LeaseError> {
    let host = crate::process::host_name();
    let current = holder_row(store, pipeline).await?;
    // The one lease this start may replace: a holder that stopped renewing, or whose process is gone.
    let replaceable = current.as_ref().and_then(|(token, holder, heartbeat)| {
        let stale = now_ms() - heartbeat > STALE.as_millis() as i64;
        let gone = holder.host == host && !crate::process::alive(i64::from(holder.pid));
        (stale || gone).then(|| token.clone())
    });
    let token = uuid::Uuid::now_v7().to_string();
    let taken = sqlx::query(
        "INSERT INTO run_leases (pipeline, token, started_by, pid, host, since, heartbeat_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(pipeline) DO UPDATE SET token = excluded.token, started_by = excluded.started_by,
           pid = excluded.pid, host = excluded.host, since = excluded.since, heartbeat_ms = excluded.heartbeat_ms
         WHERE run_leases.token = ?",
    )
    .bind(pipeline)
    .bind(&token)
    .bind(started_by)
    .bind(i64::from(std::process::id()))
    .bind(&host)
    .bind(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    .bind(now_ms())
    .bind(replaceable.as_deref().unwrap_or(""))
    .execute(store.pool())
    .await
    .map_err(StoreError::from)?
    .rows_affected();
    if taken == 1 {
        if let Some((_, holder, _)) = &current {
            if replaceable.is_some() {
                tracing::warn!(
                    pipeline,
                    "took over the lease of {holder}: it stopped renewing it"
                );
            }
        }
        return Ok(Lease {
            store: store.clone(),
            pipeline: pipeline.to_owned(),
            token,
        });
    }
    // Someone else holds it (or took it between the read and the write).
    let holder = holder_row(store, pipeline)
        .await?
        .map(|(_, holder, _)| holder)
        .unwrap_or_else(|| LeaseHolder {
            started_by: "another run".into(),
            pid: 0,
            host,
            since: "just now".into(),
        });
    Err(LeaseError::Held {
        pipeline: pipeline.to_owned(),
        holder,
    })
}

/// Who holds `pipeline`'s lease now, if a live holder does.
pub async fn holder(store: &Store, pipeline: &str) -> Result<Option<LeaseHolder>, StoreError> {
    let host = crate::process::host_name();
    Ok(holder_row(store, pipeline)
        .await?
        .filter(|(_, holder, heartbeat)| {
            let stale = now_ms() - heartbeat > STALE.as_millis() as i64;
            let gone = holder.host == host && !crate::process::alive(i64::from(holder.pid));
            !stale && !gone
        })
        .map(|(_, holder, _)| holder))
}

/// A pipeline that a live run holds, with who holds it in words (the console shows it on the Run button).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct BusyPipeline {
    pub pipeline: String,
    pub holder: LeaseHolder,
    /// "syncflow run (process 4242 on host) since 2026-12-03T09:00:00Z"
    pub description: String,
}

/// Every pipeline a live run holds now (in this process or another sharing the state database).
pub async fn busy_pipelines(store: &Store) -> Result<Vec<BusyPipeline>, StoreError> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT pipeline FROM run_leases ORDER BY pipeline")
            .fetch_all(store.pool())
            .await?;
    let mut busy = Vec::new();
    for pipeline in names {
        if let Some(holder) = holder(store, &pipeline).await? {
            busy.push(BusyPipeline {
                description: holder.to_string(),
                pipeline,
                holder,
            });
        }
    }
    Ok(busy)
}

async fn holder_row(
    store: &Store,
    pipeline: &str,
) -> Result<Option<(String, LeaseHolder, i64)>, StoreError> {
    let row = sqlx::query(
        "SELECT token, started_by, pid, host, since, heartbeat_ms FROM run_leases WHERE pipeline = ?",
    )
    .bind(pipeline)
    .fetch_optional(store.pool())
    .await?;
    row.map(|r| -> Result<_, StoreError> {
        let pid: i64 = r.try_get(2)?;
        Ok((
            r.try_get(0)?,
            LeaseHolder {
                started_by: r.try_get(1)?,
                pid: u32::try_from(pid).unwrap_or(0),
                host: r.try_get(3)?,
                since: r.try_get(4)?,
            },
            r.try_get(5)?,
        ))
    })
    .transpose()
}

impl Lease {
    /// Renews the lease every [`HEARTBEAT`] until `done` resolves; if another process took it over meanwhile (this
    /// one was stuck past [`STALE`]), `lost` is called once, so that the run stops instead of racing the new holder.
    pub async fn keep_alive(&self, done: impl std::future::Future<Output = ()>, lost: impl Fn()) {
        tokio::pin!(done);
        loop {
            tokio::select! {
                _ = &mut done => return,
                _ = tokio::time::sleep(HEARTBEAT) => {}
            }
            match self.renew().await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::error!(
                        pipeline = self.pipeline,
                        "another process took this run's lease over (this one stopped renewing it): stopping"
                    );
                    lost();
                    return;
                }
                Err(e) => tracing::warn!(pipeline = self.pipeline, "lease not renewed: {e}"),
            }
        }
    }

    async fn renew(&self) -> Result<bool, StoreError> {
        let renewed =
            sqlx::query("UPDATE run_leases SET heartbeat_ms = ? WHERE pipeline = ? AND token = ?")
                .bind(now_ms())
                .bind(&self.pipeline)
                .bind(&self.token)
                .execute(self.store.pool())
                .await?
                .rows_affected();
        Ok(renewed == 1)
    }

    /// Gives the lease back (only if it is still this process's).
    pub async fn release(self) {
        let released = sqlx::query("DELETE FROM run_leases WHERE pipeline = ? AND token = ?")
            .bind(&self.pipeline)
            .bind(&self.token)
            .execute(self.store.pool())
            .await;
        if let Err(e) = released {
            tracing::warn!(
                pipeline = self.pipeline,
                "lease not released (it lapses in {} s): {e}",
                STALE.as_secs()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_held_lease_refuses_a_second_start_and_a_released_one_is_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).await.unwrap();
        let first = take(&store, "p", "cli").await.unwrap();
        match take(&store, "p", "manual").await {
            Err(LeaseError::Held { holder, .. }) => {
                assert_eq!(holder.started_by, "cli");
                assert_eq!(holder.pid, std::process::id());
                assert!(holder.to_string().contains("syncflow run (process "));
            }
            other => panic!("second start not refused: {:?}", other.err()),
        }
        // Another pipeline is not affected.
        take(&store, "q", "cli").await.unwrap().release().await;
        first.release().await;
        take(&store, "p", "manual").await.unwrap().release().await;
    }

    #[tokio::test]
    async fn a_lease_whose_process_is_gone_or_that_stopped_renewing_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).await.unwrap();
        let dead = take(&store, "p", "cli").await.unwrap();
        // A process of this host that does not exist (pids are below 2^22 on Linux).
        sqlx::query("UPDATE run_leases SET pid = 4194304")
            .execute(store.pool())
            .await
            .unwrap();
        let second = take(&store, "p", "manual").await.unwrap();
        assert!(!dead.renew().await.unwrap(), "the old holder lost it");
        // A holder on another host that stopped renewing.
        sqlx::query(
            "UPDATE run_leases SET host = 'elsewhere', heartbeat_ms = heartbeat_ms - 60000",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let third = take(&store, "p", "schedule").await.unwrap();
        assert!(!second.renew().await.unwrap());
        assert!(third.renew().await.unwrap());
        // A holder on another host that renews is never taken over.
        sqlx::query("UPDATE run_leases SET host = 'elsewhere'")
            .execute(store.pool())
            .await
            .unwrap();
        assert!(matches!(
            take(&store, "p", "cli").await,
            Err(LeaseError::Held { .. })
        ));
    }
}
