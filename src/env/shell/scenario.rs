//! Shell scenarios: the request the student reads, the file system it runs on, how its actions
//! run, and the gold command the reward compares against, read and checked without the sandbox.
//!
//! A scenario names a shipped file system (`fs1`..`fs4`, InterCode's) or one in a JSON file of
//! the same format beside it. Nothing is put on disk while reading: the file system is
//! materialised (once per process) when the first episode starts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::exec::Semantics;
use super::expert::Layout;
use super::fs::{Entry, FileSystems, Template};
use super::gold::Gold;
use super::guided::GuidedShell;
use super::prompt::clip;
use super::{ShellEnv, Task};
use crate::env::{Environment, Guided, Kind, Preview, World};
use crate::scenario::{Report, YamlPath, suggest};

/// How the shipped file systems are named in messages and previews.
pub const SHIPPED_FILESYSTEMS: &str = "assets/shell/filesystems.json";

/// The file system the episode runs on and how its actions run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShellWorld {
    /// A file system by name: a shipped one (`fs1`..`fs4`: InterCode-Bash's), or one in `file`.
    pub filesystem: String,
    /// A JSON file in the format of `assets/shell/filesystems.json` that holds `filesystem`,
    /// relative to the scenario file; by default the shipped file systems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// How an action runs: `bash` (plain `bash -c`, for scenarios people write) or `intercode`
    /// (InterCode-Bash's quirks, for imported tasks: results comparable with the paper's).
    #[serde(default, skip_serializing_if = "is_bash")]
    #[schemars(with = "SemanticsDoc")]
    pub semantics: Semantics,
}

fn is_bash(s: &Semantics) -> bool {
    *s == Semantics::Bash
}

// `Semantics` as the schema shows it (the episode's own enum has no schema).
/// How an action runs.
#[derive(JsonSchema)]
#[schemars(rename = "Semantics")]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum SemanticsDoc {
    /// Plain bash: each action is the script of `bash -c`, `cd` is bash's own.
    Bash,
    /// InterCode-Bash as its benchmark ran: Python `shlex` splitting, `cd` taking the line.
    Intercode,
}

/// What the teacher sees and the reward uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShellPrivileged {
    /// The gold command: the reward runs it on a fresh copy and compares.
    pub gold: String,
    /// A second correct command (InterCode-ALFA's `gold2`), for the teacher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gold2: Option<String>,
    /// InterCode-ALFA's difficulty: 0 (one utility), 1, 2 (a pipeline or a script).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difficulty: Option<u8>,
}

/// A checked shell scenario, ready to play.
#[derive(Debug)]
pub struct ShellScenario {
    /// The request, the first observation.
    pub task: String,
    pub world: ShellWorld,
    pub privileged: ShellPrivileged,
    /// The file system's paths and where they come from.
    source: FsSource,
    /// What the gold command does: the task type.
    category: &'static str,
    /// The file system's paths, as the expert explores them.
    layout: Arc<Layout>,
    /// Made on the first episode: the file system is then put on disk.
    played: OnceLock<Arc<Task>>,
}

/// Where a scenario's file system is read from.
#[derive(Debug, Clone)]
enum FsSource {
    Shipped,
    /// A file of the same format, by its full path.
    File {
        systems: Arc<FileSystems>,
        path: PathBuf,
    },
}

impl FsSource {
    fn systems(&self) -> &FileSystems {
        match self {
            FsSource::Shipped => FileSystems::shipped(),
            FsSource::File { systems, .. } => systems,
        }
    }
}

/// The file systems in the JSON file at `path`, read once per process.
fn file_systems_at(path: &Path) -> Result<Arc<FileSystems>, String> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<FileSystems>>>> = OnceLock::new();
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(systems) = cache.get(&key) {
        return Ok(systems.clone());
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let systems = Arc::new(FileSystems::from_json(&path.display().to_string(), &text)?);
    cache.insert(key, systems.clone());
    Ok(systems)
}

/// File systems on disk, by their file and name.
type Templates = HashMap<(PathBuf, String), Arc<Template>>;

/// The file system `name` of the file at `file`, on disk once per process.
fn template_at(file: &Path, systems: &FileSystems, name: &str) -> std::io::Result<Arc<Template>> {
    static CACHE: OnceLock<Mutex<Templates>> = OnceLock::new();
    let key = (
        file.canonicalize().unwrap_or_else(|_| file.to_path_buf()),
        name.to_string(),
    );
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(t) = cache.get(&key) {
        return Ok(t.clone());
    }
    let template = Arc::new(Template::materialise(
        systems.get(name).unwrap_or_default(),
    )?);
    cache.insert(key, template.clone());
    Ok(template)
}

fn names(systems: &FileSystems) -> String {
    let names: Vec<&str> = systems.systems.iter().map(|(n, _)| n.as_str()).collect();
    names.join(", ")
}

/// `value` read as a `T`, or `missing` reported at `path` when it is not there.
fn required<T: serde::de::DeserializeOwned>(
    report: &mut Report,
    path: &YamlPath,
    value: serde_yaml::Value,
    missing: &str,
) -> Option<T> {
    if value.is_null() {
        report.at(path, missing);
        return None;
    }
    report.parse(path, value)
}

impl ShellScenario {
    pub(crate) fn read(
        report: &mut Report,
        path: &YamlPath,
        task: serde_yaml::Value,
        world: serde_yaml::Value,
        privileged: serde_yaml::Value,
    ) -> Option<ShellScenario> {
        let task_path = path.key("task");
        let world_path = path.key("world");
        let privileged_path = path.key("privileged");
        let task: Option<String> = report.parse(&task_path, task);
        let world: Option<ShellWorld> = required(
            report,
            &world_path,
            world,
            "missing `world`, expected a mapping with `filesystem` (fs1, fs2, fs3 or fs4, or one in `file`)",
        );
        let privileged: Option<ShellPrivileged> = required(
            report,
            &privileged_path,
            privileged,
            "missing `privileged.gold`, expected the gold command the reward compares against",
        );
        let task_ok = match &task {
            Some(t) if t.trim().is_empty() => {
                report.at(
                    &task_path,
                    "the request is empty, expected the text the student reads",
                );
                false
            }
            t => t.is_some(),
        };
        let gold_ok = match &privileged {
            Some(p) if p.gold.trim().is_empty() => {
                report.at(
                    &privileged_path.key("gold"),
                    "the gold command is empty, expected the command that answers the request",
                );
                false
            }
            p => p.is_some(),
        };
        let source = world
            .as_ref()
            .and_then(|w| Self::file_system(report, path, &world_path, w));
        if !(task_ok && gold_ok) {
            return None;
        }
        let (task, world, privileged, source) = (task?, world?, privileged?, source?);
        let category = Gold::read(&privileged.gold).category().as_str();
        let layout = Arc::new(Layout::of(
            source.systems().get(&world.filesystem).unwrap_or_default(),
        ));
        Some(ShellScenario {
            task,
            world,
            privileged,
            source,
            category,
            layout,
            played: OnceLock::new(),
        })
    }

    /// The file systems that hold the world's, with a problem reported where there are none.
    fn file_system(
        report: &mut Report,
        path: &YamlPath,
        world_path: &YamlPath,
        world: &ShellWorld,
    ) -> Option<FsSource> {
        let name = &world.filesystem;
        let (source, label) = match &world.file {
            None => (FsSource::Shipped, SHIPPED_FILESYSTEMS.to_string()),
            Some(rel) => {
                let scenario_file = report.origin(path).file;
                let full = scenario_file.parent().unwrap_or(Path::new("")).join(rel);
                match file_systems_at(&full) {
                    Ok(systems) => (
                        FsSource::File {
                            systems,
                            path: full,
                        },
                        format!("`{rel}`"),
                    ),
                    Err(message) => {
                        report.at(
                            &world_path.key("file"),
                            format!(
                                "the file systems file `{rel}` ({}) does not read: {message}; expected a JSON file in the format of {SHIPPED_FILESYSTEMS}, relative to the scenario file",
                                full.display()
                            ),
                        );
                        return None;
                    }
                }
            }
        };
        let systems = source.systems();
        if systems.get(name).is_none() {
            let hint = suggest(name, systems.systems.iter().map(|(n, _)| n.as_str()));
            let also = if matches!(source, FsSource::Shipped) {
                ", or a `file` that holds it"
            } else {
                ""
            };
            report.at(
                &world_path.key("filesystem"),
                format!(
                    "unknown file system `{name}`{hint}, expected one of {} (in {label}){also}",
                    names(systems)
                ),
            );
            return None;
        }
        Some(source)
    }

    /// The file system's paths, as `filesystems.json` lists them.
    pub fn entries(&self) -> &[Entry] {
        self.source
            .systems()
            .get(&self.world.filesystem)
            .unwrap_or_default()
    }

    /// The paths at the top of the file system (`/testbed`, `/index.html`), sorted.
    pub fn top_level(&self) -> Vec<&str> {
        let mut top: Vec<&str> = self
            .entries()
            .iter()
            .map(|e| e.path.as_str())
            .filter(|p| p.len() > 1 && !p[1..].contains('/'))
            .collect();
        top.sort_unstable();
        top
    }

    /// The task episodes of this scenario share; its file system is put on disk the first time.
    /// When it cannot be (a full disk, an unwritable temporary folder), every episode fails at
    /// its first step with the reason, as the external kind's do when their server cannot start.
    pub fn task(&self) -> Arc<Task> {
        self.played
            .get_or_init(|| {
                let name = &self.world.filesystem;
                let fs = match &self.source {
                    FsSource::Shipped => Template::shipped(name),
                    FsSource::File { systems, path } => template_at(path, systems, name),
                };
                let (query, gold) = (self.task.clone(), self.privileged.gold.clone());
                let semantics = self.world.semantics;
                Arc::new(match fs {
                    Ok(fs) => Task::new(query, gold, fs, semantics),
                    Err(e) => {
                        let why = format!("cannot put the file system `{name}` on disk: {e}");
                        Task::without_fs(query, gold, why, semantics)
                    }
                })
            })
            .clone()
    }

    /// A fresh episode of this scenario.
    pub fn env(&self, horizon: u32) -> ShellEnv {
        ShellEnv::new(self.task(), horizon)
    }
}

impl World for ShellScenario {
    fn kind(&self) -> Kind {
        crate::env::kind("shell").expect("registered")
    }

    fn env(&self, horizon: u32) -> Box<dyn Environment> {
        Box::new(ShellScenario::env(self, horizon))
    }

    fn guided(&self, horizon: u32) -> Box<dyn Guided> {
        Box::new(GuidedShell::new(
            self.task(),
            horizon,
            self.privileged.gold2.clone(),
            self.layout.clone(),
        ))
    }

    fn hint(&self) -> String {
        let gold = &self.privileged.gold;
        match self.task().gold_output() {
            Ok(out) if out.trim().is_empty() => {
                format!(
                    "Hidden answer: the command `{gold}` answers the request; it prints nothing."
                )
            }
            Ok(out) => format!(
                "Hidden answer: the command `{gold}` answers the request; it prints: {}",
                clip(out, 6, 300).replace('\n', " | ")
            ),
            Err(e) => format!("Hidden answer: the command `{gold}` answers the request ({e})."),
        }
    }

    fn task_type(&self) -> &str {
        self.category
    }

    fn preview(&self) -> Preview {
        let top = self.top_level();
        let semantics = match self.world.semantics {
            Semantics::Bash => "bash",
            Semantics::Intercode => "intercode (InterCode-Bash's quirks)",
        };
        let from = self.world.file.as_deref().unwrap_or(SHIPPED_FILESYSTEMS);
        let mut notes = vec![format!("gold command: {}", self.privileged.gold)];
        if let Some(gold2) = &self.privileged.gold2 {
            notes.push(format!("second gold command: {gold2}"));
        }
        if let Some(d) = self.privileged.difficulty {
            notes.push(format!("difficulty: {d}"));
        }
        Preview {
            title: format!("Shell ({})", self.world.filesystem),
            lines: vec![
                format!(
                    "  file system: {} ({from}, {} paths)",
                    self.world.filesystem,
                    self.entries().len()
                ),
                format!(
                    "  top level: {}",
                    if top.is_empty() {
                        "nothing (an empty file system)".to_string()
                    } else {
                        top.join(", ")
                    }
                ),
                format!("  semantics: {semantics}"),
                format!("  request: {}", self.task),
            ],
            notes,
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The shell body of a loaded scenario, if it is one.
pub fn body(s: &crate::scenario::Scenario) -> Option<&ShellScenario> {
    s.body.as_any().downcast_ref()
}
