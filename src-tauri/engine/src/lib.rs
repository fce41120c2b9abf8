//! SyncFlow's data-sync engine: sources yield pages of records; each page goes through the stages
//! (fetch → normalize → validate → map → identity → delta → resolve → ingest → track) and is committed to the
//! target together with its checkpoint. No GUI dependency: the Tauri app, the `syncflow` CLI and the tests all
//! drive this same API.

pub mod app;
pub mod bindings;
pub mod config;
pub mod conflicts;
pub mod connect;
pub mod delta;
pub mod discover;
pub mod emulator;
pub mod identity;
pub mod jobs;
pub mod lease;
pub mod names;
pub mod normalize;
pub mod parents;
pub mod pgconn;
pub mod process;
pub mod records;
pub mod review;
pub mod run;
pub mod schedule;
pub mod schema;
pub mod secrets;
pub mod sink;
pub mod source;
pub mod stop;
pub mod store;
pub mod track;
pub mod validate;
pub mod values;

/// The app's identifier; also names its data folder, which the CLI shares with the GUI.
pub const APP_IDENTIFIER: &str = "io.syncflow.console";
