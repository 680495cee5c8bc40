//! The options of a remote OpenAI-compatible server, shared by `leap rollout --server` and the
//! LLM teacher's `--server`.

use std::time::Duration;

use anyhow::bail;

use leap::agent::remote::{RemoteConfig, Structured};

#[derive(clap::Args, Clone, Debug)]
pub struct RemoteArgs {
    /// How answers are constrained: `auto` asks the server (llama-server gets llama.cpp's
    /// `grammar`, any other OpenAI's `response_format`, and plain text once it refuses that).
    #[arg(long, value_enum, default_value = "auto")]
    pub server_api: Structured,
    /// Seconds one request may take, from connecting to its last byte.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    pub request_timeout: f64,
    /// Attempts after the first for a request that failed in a way that may pass (a timeout,
    /// 429, 5xx).
    #[arg(long, default_value_t = 3)]
    pub request_retries: u32,
    /// Seconds a server that cannot be reached (restarting) is waited for before a request
    /// fails.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub server_wait: f64,
}

impl RemoteArgs {
    /// A server's settings: these options over `RemoteConfig::new`'s defaults.
    pub fn config(
        &self,
        url: &str,
        model: &str,
        api_key_env: Option<String>,
    ) -> anyhow::Result<RemoteConfig> {
        let secs = |flag: &str, value: f64| -> anyhow::Result<Duration> {
            if !value.is_finite() || value <= 0.0 || value > 86_400.0 {
                bail!("--{flag} {value}: expected seconds in (0, 86400]");
            }
            Ok(Duration::from_secs_f64(value))
        };
        let mut config = RemoteConfig::new(url, model);
        config.api_key_env = api_key_env;
        config.structured = self.server_api;
        config.timeout = secs("request-timeout", self.request_timeout)?;
        config.retries = self.request_retries;
        config.wait_unreachable = secs("server-wait", self.server_wait)?;
        Ok(config)
    }
}
