//! In-repo emulators of the sources, used by the tests, the benchmarks and the embedded demo.

pub mod app;
pub mod bubble;
