//! leap: train LLM agents with privileged-teacher feedback (LEAP).
//!
//! The library holds everything but the front-ends: environments, scenarios, the student, the
//! teacher, the run store, training and the loop. The CLI (`src/cli`) and the workbench call it.
//! The workbench (`tui`) is behind the `tui` feature (on by default): without it the library
//! builds with no terminal crate and no async runtime.

pub mod agent;
pub mod correct;
pub mod curate;
pub mod dataset;
pub mod doctor;
pub mod env;
pub mod eval;
pub mod leap;
pub mod model;
pub mod report;
pub mod rollout;
pub mod run;
pub mod scenario;
pub mod session;
pub mod shown;
pub mod store;
pub mod teacher;
pub mod train;
#[cfg(feature = "tui")]
pub mod tui;
