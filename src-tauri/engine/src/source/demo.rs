//! The demo source: the sample Bubble app (customers, invoices, line items with hostile field names) served by the
//! in-repo emulator on 127.0.0.1, so the demo exercises the real Bubble client, `/meta` discovery and parallel
//! pages without credentials or setup.

use crate::config::BubbleSource;
use crate::emulator::app::{sample_app, Scale};
use crate::emulator::bubble::{BubbleEmulator, Faults};

/// Starts the demo app with about `rows` things, keyed by display names (so the names need sanitising).
pub async fn start(rows: u32) -> std::io::Result<BubbleEmulator> {
    let app = sample_app(Scale::total(rows as usize), true);
    BubbleEmulator::start(app, Faults::default()).await
}

/// The Bubble source that reads the demo app.
pub fn source_of(emulator: &BubbleEmulator) -> BubbleSource {
    BubbleSource {
        base_url: emulator.test_base_url.clone(),
        token: None,
        concurrency: 2,
        requests_per_minute: None,
        cursor_ceiling: 50_000,
    }
}
