//! The request to stop a run, shared by the run and the stages that must notice it (a source that pages, the
//! end-of-pass deletes).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Asks a run to stop after the current page: a pause (run again to resume) or a cancel (the run ends as
/// cancelled; the target keeps every committed page, and the next run starts a new pass).
#[derive(Debug, Clone, Default)]
pub struct StopSignal {
    stop: Arc<AtomicBool>,
    cancel: Arc<AtomicBool>,
}

impl StopSignal {
    pub fn request(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.request();
    }

    pub fn requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
}
