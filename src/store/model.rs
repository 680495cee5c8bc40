//! The run's model: the base model file the run first used, with its content hash, kept in the
//! run's configuration blob so that later commands on the run load the same model.

use serde::{Deserialize, Serialize};

use super::Result;
use super::Store;

/// The model a run was made with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunModel {
    pub path: String,
    pub sha256: String,
}

const KEY: &str = "model";

impl Store {
    /// The model the run recorded, if any.
    pub fn run_model(&self) -> Result<Option<RunModel>> {
        let config = self.run_info()?.config;
        Ok(config
            .get(KEY)
            .and_then(|m| serde_json::from_value(m.clone()).ok()))
    }

    /// Records the run's model, keeping the rest of the run's configuration.
    pub fn set_run_model(&mut self, model: &RunModel) -> Result<()> {
        let mut config = self.run_info()?.config;
        if !config.is_object() {
            config = serde_json::json!({});
        }
        config[KEY] = serde_json::json!(model);
        self.set_config(&config)
    }
}
