//! Records that need a person: failed records (the dead-letter queue), children waiting for their parent, and
//! manual conflicts.

use super::{AppError, Context};
use crate::conflicts::{self, ConflictView, Side};
use crate::jobs::Attention;
use crate::run::pending::{land_children, Attempt, LandOutcome};
use crate::run::retry::RetryOutcome;
use crate::store::{FailedGroup, FailedRow, PendingChild};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use ts_rs::TS;

/// The pipeline's failed records, oldest first.
pub async fn failed(ctx: &Context, name: &str) -> Result<Vec<FailedRow>, AppError> {
    ctx.pipeline(name).await?;
    Ok(ctx.store().failed_records(name).await?)
}

/// The dead-letter queue as its browser shows it: the records, and their groups by the way they failed.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct FailedQueue {
    /// Oldest first.
    pub records: Vec<FailedRow>,
    /// Count per distinct error, largest first (retried records not counted).
    pub groups: Vec<FailedGroup>,
}

pub async fn failed_queue(ctx: &Context, name: &str) -> Result<FailedQueue, AppError> {
    let records = failed(ctx, name).await?;
    let groups = crate::store::failed_groups(&records);
    Ok(FailedQueue { records, groups })
}

/// What a retry of failed records did, and (for a retry of all of them) what the check of the children waiting for
/// their parent did first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct FailedRetry {
    #[serde(flatten)]
    pub records: RetryOutcome,
    /// The waiting children checked before the retry of all records (None: not checked — a retry of chosen
    /// records, or the check could not be made; the warning is logged).
    pub children: Option<LandOutcome>,
}

/// Runs failed records through the stages again — those in `ids`, or all — with `edits` replacing the stored text
/// of some. A retry of all of them first checks the children waiting for their parent (dead ones too): a parent
/// that arrived since lets them land, and a retried record may name it.
pub async fn retry_failed(
    ctx: &Context,
    name: &str,
    ids: Option<&[i64]>,
    edits: &BTreeMap<i64, String>,
) -> Result<FailedRetry, AppError> {
    let pipeline = ctx.pipeline(name).await?;
    let children = match ids {
        Some(_) => None,
        None => match land_children(
            &pipeline,
            ctx.store(),
            ctx.base_dir(),
            None,
            Attempt::Manual,
        )
        .await
        {
            Ok(outcome) => Some(outcome),
            Err(e) => {
                tracing::warn!(
                    pipeline = name,
                    "records waiting for their parent not checked: {e}"
                );
                None
            }
        },
    };
    let records =
        crate::run::retry::retry_failed(&pipeline, ctx.store(), ctx.base_dir(), ids, edits).await?;
    Ok(FailedRetry { records, children })
}

/// Records waiting for their parent (pending, and dead after their checks), oldest first.
pub async fn waiting_children(ctx: &Context, name: &str) -> Result<Vec<PendingChild>, AppError> {
    ctx.pipeline(name).await?;
    Ok(ctx.store().pending_children(name).await?)
}

/// Checks the waiting records now (dead ones too): those whose parent is in the target land.
pub async fn land_waiting_children(ctx: &Context, name: &str) -> Result<LandOutcome, AppError> {
    let pipeline = ctx.pipeline(name).await?;
    Ok(land_children(
        &pipeline,
        ctx.store(),
        ctx.base_dir(),
        None,
        Attempt::Manual,
    )
    .await?)
}

/// Conflicts of a pipeline (open ones, or with `all` the resolved ones and their audit trail).
pub async fn conflicts(
    ctx: &Context,
    name: &str,
    all: bool,
) -> Result<Vec<ConflictView>, AppError> {
    ctx.pipeline(name).await?;
    Ok(conflicts::list(ctx.store(), name, all).await?)
}

/// Resolves a conflict: `take` for every field except those chosen in `fields`; the resolver is the OS user.
pub async fn resolve_conflict(
    ctx: &Context,
    id: i64,
    take: Side,
    fields: &BTreeMap<String, Side>,
) -> Result<ConflictView, AppError> {
    Ok(conflicts::resolve(ctx.store(), id, take, fields, &conflicts::current_user()).await?)
}

/// What waits for a person in a pipeline (or all): failed records, those past their last try, open conflicts.
pub async fn attention(ctx: &Context, pipeline: Option<&str>) -> Result<Attention, AppError> {
    Ok(crate::jobs::attention(ctx.store(), pipeline).await?)
}
