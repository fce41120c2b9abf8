//! Saving a pipeline from the console's form on a bad day: a business key the data does not have is refused (on the
//! form's field, nothing stored); a source that lies (a null page) or cannot be reached is no reason to refuse — the
//! key cannot be checked, the pipeline is saved; the same new pipeline saved twice is refused the second time, before
//! the source is read or a typed secret stored. The
//! REST test server and a real state database.

use serde_json::json;
use syncflow_engine::app::{self, Context, ErrorKind};
use syncflow_engine::config::Pipeline;
use syncflow_tests::erp::{ErpServer, Fault};

const PASSWORD: &str = "save-keys";

fn parts() -> Vec<serde_json::Value> {
    (1..=3_000)
        .map(|i| json!({"part_no": format!("P-{i}"), "qty": i % 5}))
        .collect()
}

fn pipeline(server: &ErpServer, name: &str, key: &str) -> Pipeline {
    let text = server.pipeline_text(
        name,
        "{ env = \"SAVE_KEYS_PW\" }",
        "kind = \"sqlite\"\npath = \"parts.db\"",
        "parts",
        &format!("records = \"/data\"\npagination = {{ kind = \"offset\", size = 1000 }}\n{key}"),
    );
    Pipeline::from_toml(&text, "the test").expect("a valid pipeline")
}

async fn stored(ctx: &Context) -> Vec<String> {
    app::pipelines::list(ctx)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_data_lacks_is_refused_and_an_unreadable_source_does_not_block_the_save() {
    std::env::set_var("SAVE_KEYS_PW", PASSWORD);
    let server = ErpServer::start(parts(), PASSWORD, 1000, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = Context::open(&dir.path().join("state.db"), 1)
        .await
        .unwrap();
    let typed = Default::default();

    // The default key `id`: refused, on the entity's key field, naming the field that can be one.
    let refused = app::pipelines::save_form(&ctx, None, pipeline(&server, "parts", ""), &typed)
        .await
        .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::InvalidInput, "{}", refused.message);
    assert_eq!(refused.field.as_deref(), Some("entities.0.business_key"));
    assert!(
        refused
            .message
            .contains("business key \"id\" is in none of the 1000 sampled records")
            && refused
                .message
                .contains("part_no (a value of its own in every record)"),
        "{}",
        refused.message
    );
    assert!(stored(&ctx).await.is_empty(), "nothing was stored");

    // The key the data has: saved; the same new pipeline again: refused, the first one kept.
    let key = "business_key = [\"part_no\"]";
    app::pipelines::save_form(&ctx, None, pipeline(&server, "parts", key), &typed)
        .await
        .unwrap();
    // Refused before the source is read (and before any typed secret would be stored).
    let served = server.records_served();
    let again = app::pipelines::save_form(&ctx, None, pipeline(&server, "parts", key), &typed)
        .await
        .unwrap_err();
    assert!(
        again.message.contains("exists already"),
        "{}",
        again.message
    );
    assert_eq!(
        server.records_served(),
        served,
        "the source was read for a save that cannot happen"
    );
    assert_eq!(stored(&ctx).await, ["parts"]);

    // A source that lies (its first page says `"data": null`): the key cannot be checked, the pipeline is saved.
    server.set_fault(0, Some(Fault::NullData));
    app::pipelines::save_form(&ctx, None, pipeline(&server, "lying", ""), &typed)
        .await
        .unwrap();
    server.set_fault(0, None);

    // A source that cannot be reached at all: saved too (the run will say what is wrong).
    let mut unreachable = pipeline(&server, "offline", "");
    if let syncflow_engine::config::SourceConfig::Rest(rest) = &mut unreachable.source {
        rest.base_url = format!("http://127.0.0.1:{}", syncflow_tests::free_port());
    }
    app::pipelines::save_form(&ctx, None, unreachable, &typed)
        .await
        .unwrap();
    let mut names = stored(&ctx).await;
    names.sort();
    assert_eq!(names, ["lying", "offline", "parts"]);
}
