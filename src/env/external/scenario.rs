//! External scenarios: which server runs the environment and the arguments of its reset. The
//! task sentence is the environment's (the file repeats it for lists and previews); the
//! privileged state comes from the environment at every step, so the file has none.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::server::{self, How, Spec};
use super::{ExternalEnv, Start};
use crate::env::{Environment, Guided, Kind, Preview, Privileged, World};
use crate::scenario::{Report, YamlPath, suggest};

/// Seconds a started server may take to answer `/health` unless the scenario says: a JVM-backed
/// environment (ScienceWorld) takes a few on a quiet machine and many more on a busy one.
const STARTUP_S: u32 = 180;
/// Seconds one reset or step may take unless the scenario says.
const STEP_S: u32 = 60;

/// Which environment server plays the scenario and how each episode starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalWorld {
    pub server: ServerDoc,
    /// The arguments of every reset, sent as they are (the environment's task, variation,
    /// seed, game...).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub reset: serde_json::Map<String, serde_json::Value>,
    /// The task type that evaluation groups success by (default: the adapter's name, else
    /// `external`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_type: Option<String>,
}

/// Where the environment server is, or how leap starts it: exactly one of `adapter`,
/// `command` and `url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerDoc {
    /// An adapter shipped in `assets/envs/` (`scienceworld`, `textworld`, ...), run with the
    /// Python that `just deps-external` prepares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    /// A command that starts an OpenEnv server on 127.0.0.1; one argument holds `{port}`,
    /// which leap replaces with the port it picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// The folder `command` runs in, relative to the scenario file (default: its folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The base URL of a server that is already running (`http://127.0.0.1:8000`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Seconds a started server may take to answer `GET /health` (default 180).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_timeout_s: Option<u32>,
    /// Seconds one reset or step may take (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_timeout_s: Option<u32>,
}

/// A checked external scenario.
#[derive(Debug)]
pub struct ExternalScenario {
    /// The task as the file gives it.
    pub task: String,
    pub world: ExternalWorld,
    start: Arc<Start>,
    task_type: String,
    /// The privileged state at the start, once read from the environment.
    initial: OnceLock<(Privileged, String)>,
}

impl ExternalScenario {
    pub(crate) fn read(
        report: &mut Report,
        path: &YamlPath,
        task: serde_yaml::Value,
        world: serde_yaml::Value,
        privileged: serde_yaml::Value,
    ) -> Option<ExternalScenario> {
        let task_path = path.key("task");
        let world_path = path.key("world");
        let task: Option<String> = report.parse(&task_path, task);
        let mut ok = true;
        if let Some(t) = &task
            && t.trim().is_empty()
        {
            report.at(
                &task_path,
                "empty task, expected the environment's task sentence",
            );
            ok = false;
        }
        if !privileged.is_null() {
            report.at(
                &path.key("privileged"),
                "an external scenario has no `privileged`: its environment sends the privileged state with every observation",
            );
            ok = false;
        }
        if world.is_null() {
            report.at(
                &world_path,
                "missing `world`, expected a mapping with `server` (`adapter`, `command` or `url`) and `reset`",
            );
            return None;
        }
        let world: ExternalWorld = report.parse(&world_path, world)?;
        let file = report.origin(path).file;
        let how = check_server(report, &world_path.key("server"), &world.server, &file)?;
        let (task, true) = (task?, ok) else {
            return None;
        };
        let task_type = world.task_type.clone().unwrap_or_else(|| match &how {
            How::Adapter(name) => (*name).to_string(),
            _ => "external".to_string(),
        });
        let seconds =
            |s: Option<u32>, default: u32| Duration::from_secs(u64::from(s.unwrap_or(default)));
        let start = Arc::new(Start {
            server: Spec {
                how,
                startup: seconds(world.server.startup_timeout_s, STARTUP_S),
                step: seconds(world.server.step_timeout_s, STEP_S),
            },
            reset: world.reset.clone(),
        });
        Some(ExternalScenario {
            task,
            world,
            start,
            task_type,
            initial: OnceLock::new(),
        })
    }

    /// A fresh episode: the server started if need be, a session opened and reset.
    pub fn episode(&self, horizon: u32) -> ExternalEnv {
        ExternalEnv::new(self.start.clone(), horizon, &self.task)
    }

    /// The privileged state at the start and its text, read from the environment once (a
    /// failure is not kept: the next call asks again).
    fn initial(&self, horizon: u32) -> (Privileged, String) {
        if let Some(initial) = self.initial.get() {
            return initial.clone();
        }
        let env = self.episode(horizon);
        if env.failure().is_some() {
            let none = Privileged {
                facts: Vec::new(),
                plan: None,
            };
            return (none, String::new());
        }
        let text = env
            .last()
            .and_then(|o| o.privileged.as_ref())
            .map(|p| p.text.clone())
            .unwrap_or_default();
        let initial = (env.privileged(), text);
        self.initial.get_or_init(|| initial).clone()
    }
}

/// The server spec checked: exactly one way, a known adapter, a command with `{port}`, an
/// http URL.
fn check_server(report: &mut Report, path: &YamlPath, doc: &ServerDoc, file: &Path) -> Option<How> {
    let given = [
        doc.adapter.is_some(),
        doc.command.is_some(),
        doc.url.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        report.at(
            path,
            "expected exactly one of `adapter` (a shipped adapter), `command` (a command that starts a server) and `url` (a running server)",
        );
        return None;
    }
    if doc.cwd.is_some() && doc.command.is_none() {
        report.at(&path.key("cwd"), "`cwd` is only for `command`");
        return None;
    }
    for (key, value) in [
        ("startup_timeout_s", doc.startup_timeout_s),
        ("step_timeout_s", doc.step_timeout_s),
    ] {
        if value == Some(0) {
            report.at(
                &path.key(key),
                format!("`{key}` is 0, expected at least 1 second"),
            );
            return None;
        }
    }
    if let Some(name) = &doc.adapter {
        let Some(known) = server::adapter_names().find(|n| n == name) else {
            let names: Vec<&str> = server::adapter_names().collect();
            report.at(
                &path.key("adapter"),
                format!(
                    "unknown adapter `{name}`{}, expected one of {}",
                    suggest(name, names.iter().copied()),
                    names.join(", ")
                ),
            );
            return None;
        };
        return Some(How::Adapter(known));
    }
    if let Some(argv) = &doc.command {
        if argv.is_empty() || argv[0].trim().is_empty() {
            report.at(
                &path.key("command"),
                "empty command, expected the program and its arguments",
            );
            return None;
        }
        if !argv.iter().any(|a| a.contains("{port}")) {
            report.at(
                &path.key("command"),
                "no argument holds `{port}`, expected one where leap puts the port the server must listen on (e.g. `--port`, `{port}`)",
            );
            return None;
        }
        let dir = match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let cwd = match &doc.cwd {
            Some(rel) => dir.join(rel),
            None => dir.to_path_buf(),
        };
        return Some(How::Command {
            argv: argv.clone(),
            cwd,
        });
    }
    let url = doc.url.as_deref().unwrap_or_default();
    let host = url.strip_prefix("http://").unwrap_or_default();
    if host.is_empty() || host.starts_with('/') {
        report.at(
            &path.key("url"),
            format!("`{url}` is not an http:// URL, expected the server's base URL such as http://127.0.0.1:8000"),
        );
        return None;
    }
    Some(How::Url(url.trim_end_matches('/').to_string()))
}

impl World for ExternalScenario {
    fn kind(&self) -> Kind {
        crate::env::kind("external").expect("registered")
    }

    fn env(&self, horizon: u32) -> Box<dyn Environment> {
        Box::new(self.episode(horizon))
    }

    fn guided(&self, horizon: u32) -> Box<dyn Guided> {
        Box::new(self.episode(horizon))
    }

    fn privileged(&self, horizon: u32) -> Privileged {
        self.initial(horizon).0
    }

    fn hint(&self) -> String {
        let (privileged, text) = self.initial(1);
        if !text.trim().is_empty() {
            return format!("Hidden facts: {}", text.trim());
        }
        let facts: Vec<String> = privileged
            .facts
            .iter()
            .map(|f| format!("{}: {}", f.subject, f.detail))
            .collect();
        format!("Hidden facts: {}", facts.join("; "))
    }

    fn task_type(&self) -> &str {
        &self.task_type
    }

    fn preview(&self) -> Preview {
        let mut lines = vec![format!("server: {}", self.start.server.label())];
        for (key, value) in &self.world.reset {
            let value = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            lines.push(format!("reset {key}: {value}"));
        }
        Preview {
            title: format!("External environment ({})", self.task_type),
            lines,
            notes: vec!["the privileged state comes from the environment at every step".into()],
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
