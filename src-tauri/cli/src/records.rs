//! `syncflow failed …`, `syncflow conflicts …` and `syncflow secret …`.

use super::*;

pub(crate) async fn failed_retry(
    pipeline: &str,
    state: Option<PathBuf>,
    ids: &[i64],
    json: bool,
) -> u8 {
    let ctx = match context(state, 1).await {
        Ok(ctx) => ctx,
        Err(e) => return fail(&e, false),
    };
    let only = (!ids.is_empty()).then_some(ids);
    eprintln!("retrying the failed records of {pipeline}…");
    let outcome = match app::records::retry_failed(&ctx, pipeline, only, &Default::default()).await
    {
        Ok(outcome) => outcome,
        Err(e) => return fail(&e, false),
    };
    if let Some(children) = outcome.children.as_ref().filter(|c| c.tried > 0) {
        eprintln!(
            "{} record(s) waiting for their parent: {} landed, {} still waiting",
            children.tried, children.landed, children.waiting
        );
    }
    let records = &outcome.records;
    for f in &records.still_failing {
        eprintln!(
            "#{} {} still fails at {}: {}",
            f.id, f.entity, f.stage, f.message
        );
    }
    if json {
        println!(
            "{}",
            serde_json::to_string(&outcome).unwrap_or_else(|_| "{}".into())
        );
    } else {
        println!(
            "{} retried ({} inserted, {} updated, {} unchanged), {} still failing",
            records.retried,
            records.inserted,
            records.updated,
            records.unchanged,
            records.still_failing.len()
        );
    }
    0
}

pub(crate) async fn failed_list(pipeline: &str, state: Option<PathBuf>, json: bool) -> u8 {
    let ctx = match context(state, 1).await {
        Ok(ctx) => ctx,
        Err(e) => return fail(&e, false),
    };
    let rows = match app::records::failed(&ctx, pipeline).await {
        Ok(rows) => rows,
        Err(e) => return fail(&e, false),
    };
    if json {
        print_json_line(&rows);
        return 0;
    }
    let mut out = std::io::stdout().lock();
    for r in &rows {
        let raw: String = r.raw.chars().take(100).collect();
        let _ = writeln!(
            out,
            "#{} {} page {} record {} [{}] {}: {}\n    {raw}",
            r.id, r.entity, r.page_no, r.record_index, r.status, r.stage, r.message
        );
    }
    let _ = writeln!(out, "{} failed record(s)", rows.len());
    // Children waiting for their parent are not failed, but they are not in the target either.
    if let Ok(waiting) = app::records::waiting_children(&ctx, pipeline).await {
        for c in &waiting {
            let _ = writeln!(
                out,
                "waiting {} [{}] {} = {} names {} not in the target yet ({} checks)",
                c.entity, c.status, c.field, c.parent_key, c.parent_entity, c.tries
            );
        }
        if !waiting.is_empty() {
            let _ = writeln!(out, "{} record(s) waiting for their parent", waiting.len());
        }
    }
    0
}

pub(crate) async fn conflicts_list(
    pipeline: &str,
    state: Option<PathBuf>,
    all: bool,
    json: bool,
) -> u8 {
    let ctx = match context(state, 1).await {
        Ok(ctx) => ctx,
        Err(e) => return fail(&e, false),
    };
    let found = match app::records::conflicts(&ctx, pipeline, all).await {
        Ok(found) => found,
        Err(e) => return fail(&e, false),
    };
    if json {
        print_json_line(&found);
        return 0;
    }
    let mut out = std::io::stdout().lock();
    for c in &found {
        let _ = writeln!(
            out,
            "#{} {} {} [{}] detected {}",
            c.id, c.entity, c.key, c.status, c.detected_at
        );
        for f in c.fields.iter().filter(|f| f.differs) {
            let _ = writeln!(
                out,
                "    {}: source {} | target {} | last synced {}",
                f.column,
                f.source,
                f.target,
                f.synced
                    .as_ref()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "?".into())
            );
        }
    }
    let _ = writeln!(out, "{} conflict(s)", found.len());
    0
}

pub(crate) async fn conflicts_resolve(
    id: i64,
    take: Side,
    fields: &[String],
    state: Option<PathBuf>,
    json: bool,
) -> u8 {
    let mut chosen = std::collections::BTreeMap::new();
    for field in fields {
        let side = match field.rsplit_once('=') {
            Some((column, "source")) => Some((column, Side::Source)),
            Some((column, "target")) => Some((column, Side::Target)),
            _ => None,
        };
        let Some((column, side)) = side else {
            eprintln!("error: --field {field}: write it as COLUMN=source or COLUMN=target");
            return 2;
        };
        chosen.insert(column.to_owned(), side);
    }
    let ctx = match context(state, 1).await {
        Ok(ctx) => ctx,
        Err(e) => return fail(&e, false),
    };
    match app::records::resolve_conflict(&ctx, id, take, &chosen).await {
        Ok(view) => {
            let mut out = std::io::stdout().lock();
            if json {
                let _ = writeln!(out, "{}", serde_json::to_string(&view).unwrap_or_default());
            } else {
                let kind = view
                    .resolution
                    .as_ref()
                    .map(|r| r.kind.as_str())
                    .unwrap_or("");
                let _ = writeln!(out, "conflict {id} resolved ({kind}) in {}", view.table);
            }
            0
        }
        Err(e) => fail(&e, false),
    }
}

/// `syncflow alert test`: a test message to the alert webhook.
pub(crate) async fn alert_test() -> u8 {
    match app::alerts::send_test().await {
        Ok(()) => {
            eprintln!("test alert sent: the webhook accepted it");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            if e.kind == app::ErrorKind::InvalidInput {
                2
            } else {
                1
            }
        }
    }
}

pub(crate) fn secret(action: SecretAction) -> u8 {
    let result = match action {
        SecretAction::Set { name } => {
            let mut value = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut value) {
                eprintln!("error: cannot read the secret from standard input: {e}");
                return 2;
            }
            let value = value.trim_end_matches(['\n', '\r']);
            if value.is_empty() {
                eprintln!("error: the secret is empty; pipe it in, e.g. `printf %s \"$TOKEN\" | syncflow secret set {name}`");
                return 2;
            }
            app::connections::store_secret(&name, value)
                .map(|_| eprintln!("stored keychain entry \"{name}\""))
        }
        SecretAction::Delete { name } => app::connections::delete_secret(&name)
            .map(|_| eprintln!("deleted keychain entry \"{name}\"")),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
