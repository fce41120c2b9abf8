//! The demo source: the sample Bubble app (customers, invoices, line items with hostile field names) served by the
//! in-repo emulator on 127.0.0.1, so the demo exercises the real Bubble client, `/meta` discovery and parallel
//! pages without credentials or setup.

use crate::config::BubbleSource;
use crate::emulator::app::{sample_app, Scale};
use crate::emulator::bubble::{BubbleEmulator, Faults};

/// Starts the demo app with about `rows` things, keyed by display names (so the names need sanitising).
pub async fn start(rows: u32) -> std::io::Result<BubbleEmulator> {
    let mut app = sample_app(Scale::total(rows as usize), true);
    spoil(&mut app);
    BubbleEmulator::start(app, Faults::default()).await
}

/// Three invoices with values real apps end up holding, so the failed-records browser has something to show:
/// an amount "TBD", a due date "next Friday", an amount with a decimal comma the pipeline was not told about.
fn spoil(app: &mut crate::emulator::app::BubbleApp) {
    let Some(invoices) = app.get_type_mut("invoice") else {
        return;
    };
    let bad = [
        (5, "Amount", "TBD"),
        (17, "Due Date", "next Friday"),
        (29, "Amount", "12,50"),
    ];
    for (index, field, value) in bad {
        if let Some(thing) = invoices.things.get_mut(index) {
            thing.insert(field.into(), serde_json::Value::String(value.into()));
        }
    }
}

/// The Bubble source that reads the demo app.
pub fn source_of(emulator: &BubbleEmulator) -> BubbleSource {
    BubbleSource {
        base_url: emulator.test_base_url.clone(),
        token: None,
        concurrency: 2,
        requests_per_minute: None,
        max_page_bytes: None,
        cursor_ceiling: 50_000,
    }
}
