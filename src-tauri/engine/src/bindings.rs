//! TypeScript types for the UI, generated from the Rust types (never written twice).
//! `ui/src/bindings.ts` is this output; a test fails when it is stale
//! (`UPDATE_BINDINGS=1 cargo test -p syncflow-engine bindings` rewrites it).

use ts_rs::TS;

/// The whole generated file.
pub fn typescript() -> String {
    let decls = [
        crate::app::ErrorKind::decl(),
        crate::app::AppError::decl(),
        crate::track::EntityCounts::decl(),
        crate::track::RunStatus::decl(),
        crate::track::RunSummary::decl(),
        crate::run::RunEvent::decl(),
        crate::run::log::LogLine::decl(),
        crate::app::alerts::WebhookSource::decl(),
        crate::store::PipelineSummary::decl(),
        crate::store::RunRecord::decl(),
        crate::lease::LeaseHolder::decl(),
        crate::lease::BusyPipeline::decl(),
        crate::store::FailedRow::decl(),
        crate::store::FailedGroup::decl(),
        crate::connect::EntityFound::decl(),
        crate::connect::MissingField::decl(),
        crate::connect::ConnectionReport::decl(),
        crate::connect::TargetReport::decl(),
        crate::run::retry::StillFailing::decl(),
        crate::run::retry::RetryOutcome::decl(),
        crate::store::PendingChild::decl(),
        crate::run::pending::LandOutcome::decl(),
        crate::app::records::FailedRetry::decl(),
        crate::app::records::FailedQueue::decl(),
        crate::sink::UndoTable::decl(),
        crate::store::Withdrawn::decl(),
        crate::app::undo::UndoReport::decl(),
        crate::app::runs::Preview::decl(),
        crate::app::runs::PreviewEntity::decl(),
        crate::app::runs::PreviewRow::decl(),
        crate::schema::ColumnType::decl(),
        crate::config::TextRule::decl(),
        crate::config::Pipeline::decl(),
        crate::config::SourceConfig::decl(),
        crate::config::RestSource::decl(),
        crate::config::BubbleSource::decl(),
        crate::config::PostgresSource::decl(),
        crate::config::PgConnection::decl(),
        crate::config::SslMode::decl(),
        crate::config::FilePath::decl(),
        crate::config::DemoSource::decl(),
        crate::config::Auth::decl(),
        crate::config::Secret::decl(),
        crate::config::TargetConfig::decl(),
        crate::config::PostgresTarget::decl(),
        crate::config::SqliteTarget::decl(),
        crate::config::RestTarget::decl(),
        crate::config::Entity::decl(),
        crate::config::Pagination::decl(),
        crate::config::DeltaStrategy::decl(),
        crate::config::DeleteMode::decl(),
        crate::config::ConflictStrategy::decl(),
        crate::config::ParentRef::decl(),
        crate::config::FieldOverride::decl(),
        crate::discover::FieldChoice::decl(),
        crate::names::Change::decl(),
        crate::schema::prisma::PrismaVersion::decl(),
        crate::app::mapping::SchemaWritten::decl(),
        crate::schema::prisma::FieldReport::decl(),
        crate::schema::prisma::IndexReport::decl(),
        crate::schema::prisma::EntityReport::decl(),
        crate::review::EntityView::decl(),
        crate::review::TableDrift::decl(),
        crate::review::SchemaReview::decl(),
        crate::config::Schedule::decl(),
        crate::config::TimeWindow::decl(),
        crate::jobs::schedule::SchedulePreview::decl(),
        crate::jobs::JobInfo::decl(),
        crate::jobs::scheduler::SchedulerAction::decl(),
        crate::store::StageTimes::decl(),
        crate::store::RunHistoryRow::decl(),
        crate::store::ScheduleState::decl(),
        crate::conflicts::Side::decl(),
        crate::conflicts::ConflictField::decl(),
        crate::conflicts::Resolution::decl(),
        crate::conflicts::ConflictView::decl(),
        crate::jobs::RunsView::decl(),
        crate::jobs::ScheduleView::decl(),
        crate::jobs::Attention::decl(),
    ];
    let mut out = String::from(
        "// Generated from the Rust types by syncflow-engine (src/bindings.rs). Do not edit.\n\n",
    );
    for decl in decls {
        out.push_str("export ");
        out.push_str(&decl);
        out.push_str("\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn bindings_ts_is_up_to_date() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/bindings.ts");
        let fresh = super::typescript();
        if std::env::var_os("UPDATE_BINDINGS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "ui/src/bindings.ts is stale; regenerate it with UPDATE_BINDINGS=1 cargo test -p syncflow-engine bindings"
        );
    }
}
