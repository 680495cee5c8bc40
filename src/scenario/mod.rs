//! Scenarios: YAML files that describe one episode each (the task, the initial world, what only
//! the teacher may see, the horizon), loaded with every problem reported as `FILE:LINE:COL`.

mod files;
mod plain;
pub mod schema;
mod solve;
mod source;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::env::World;

pub use files::MAX_FILE_BYTES;
pub use solve::{Solved, solve};
pub use source::{Seg, SourceMap, YamlPath};

/// Which environment a scenario runs in: one of [`crate::env::registry`].
pub use crate::env::Kind;

/// Train scenarios are for rollouts and training; test scenarios are held out for evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Test,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// Where something was written: file, 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// One problem in a scenario file: where, what is wrong and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(flatten)]
    pub origin: Origin,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

/// The problems that stopped a load, in file order.
#[derive(Debug, Clone)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub id: String,
    pub split: Split,
    pub horizon: u32,
    /// The task as the student reads it.
    pub task: String,
    /// The kind-specific part, checked: it makes the episodes.
    pub body: Arc<dyn World>,
    /// Where its `id` was written.
    pub origin: Origin,
    /// sha256 of `json`: identifies this exact version.
    pub hash: String,
    /// The scenario as canonical JSON (what the run store snapshots).
    pub json: String,
}

impl Scenario {
    pub fn kind(&self) -> Kind {
        self.body.kind()
    }
}

/// The fields every scenario has; the kind-specific ones are read by the kind's module.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Header {
    id: String,
    /// Resolved against the registry after the header reads, so that an unknown kind is
    /// reported where it was written, with the known ones.
    kind: String,
    split: Split,
    task: serde_yaml::Value,
    /// Checked by [`horizon`], so that a file and `--horizon` obey one rule.
    horizon: serde_yaml::Value,
    world: serde_yaml::Value,
    #[serde(default)]
    privileged: serde_yaml::Value,
}

/// Problems found while reading one document, located by path.
pub struct Report<'a> {
    file: &'a Path,
    map: &'a SourceMap,
    pub problems: Vec<Problem>,
}

impl<'a> Report<'a> {
    pub fn at(&mut self, path: &YamlPath, message: impl Into<String>) {
        let (line, col) = self.map.locate(path, None);
        self.push(line, col, message.into());
    }

    fn push(&mut self, line: usize, col: usize, message: String) {
        let origin = Origin {
            file: self.file.to_path_buf(),
            line,
            col,
        };
        self.problems.push(Problem { origin, message });
    }

    pub fn origin(&self, path: &YamlPath) -> Origin {
        let (line, col) = self.map.locate(path, None);
        Origin {
            file: self.file.to_path_buf(),
            line,
            col,
        }
    }

    /// Records a serde error at the place its path points to.
    pub fn serde<E: fmt::Display>(&mut self, base: &YamlPath, err: serde_path_to_error::Error<E>) {
        let mut path = base.join(&YamlPath::from_serde(err.path()));
        let message = tidy_serde_message(&err.inner().to_string());
        let unknown = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(field, _)| field.to_string());
        // The path of an unknown field ends with the field itself; point at it in its mapping.
        if let Some(field) = &unknown
            && path.0.last() == Some(&Seg::Key(field.clone()))
        {
            path.0.pop();
        }
        let (line, col) = self.map.locate(&path, unknown.as_deref());
        self.push(line, col, message);
    }

    /// Deserializes `value` (found at `path`) into `T`, recording a problem on failure.
    pub fn parse<T: serde::de::DeserializeOwned>(
        &mut self,
        path: &YamlPath,
        value: serde_yaml::Value,
    ) -> Option<T> {
        match serde_path_to_error::deserialize(value) {
            Ok(v) => Some(v),
            Err(err) => {
                self.serde(path, err);
                None
            }
        }
    }
}

/// serde_yaml appends " at line L column C" to some messages; we print positions ourselves.
fn tidy_serde_message(message: &str) -> String {
    let message = match message.find(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    message.to_string()
}

/// " (did you mean `x`?)" for the closest of `options` within two edits of `word` (nothing when
/// none is that close): the end of an "unknown ..." problem.
pub fn suggest<'a>(word: &str, options: impl Iterator<Item = &'a str>) -> String {
    let best = options
        .map(|o| (strsim::levenshtein(word, o), o))
        .filter(|(d, _)| *d > 0 && *d <= 2)
        .min();
    match best {
        Some((_, o)) => format!(" (did you mean `{o}`?)"),
        None => String::new(),
    }
}

/// Everything found in a set of files: the valid scenarios and the problems.
#[derive(Debug, Default)]
pub struct Loaded {
    pub scenarios: Vec<Scenario>,
    pub problems: Vec<Problem>,
}

/// Reads one YAML text holding a scenario or a list of them. Valid scenarios are returned even
/// when others in the same file have problems.
pub fn parse_text(file: &Path, text: &str) -> Loaded {
    let map = SourceMap::parse(text);
    let mut report = Report {
        file,
        map: &map,
        problems: Vec::new(),
    };
    let mut loaded = Loaded::default();
    let unsupported = plain::unsupported(text);
    if !unsupported.is_empty() {
        for (line, col, message) in unsupported {
            report.push(line, col, message);
        }
        loaded.problems = report.problems;
        return loaded;
    }

    let value: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(err) => {
            let (line, col) = err.location().map_or((1, 1), |l| (l.line(), l.column()));
            let message = tidy_serde_message(&err.to_string());
            let message = too_large(text, line, &message)
                .unwrap_or_else(|| format!("invalid YAML: {message}"));
            report.push(line, col, message);
            loaded.problems = report.problems;
            return loaded;
        }
    };
    let docs: Vec<(YamlPath, serde_yaml::Value)> = match value {
        serde_yaml::Value::Sequence(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (YamlPath::root().index(i), v))
            .collect(),
        serde_yaml::Value::Null => Vec::new(),
        other => vec![(YamlPath::root(), other)],
    };
    if docs.is_empty() {
        report.push(
            1,
            1,
            "the file holds no scenario (it is empty or only comments), expected a scenario or \
             a list of them"
                .into(),
        );
    }
    for (path, value) in docs {
        let canonical = serde_json::to_string(&value).unwrap_or_default();
        let Some(header) = report.parse::<Header>(&path, value) else {
            continue;
        };
        if let Some(s) = build(&mut report, &path, header, &canonical) {
            loaded.scenarios.push(s);
        }
    }
    loaded.problems = report.problems;
    loaded
}

/// The problem with a number too large for YAML's 64 bits (serde's message speaks of `u128`),
/// said of its field: for a horizon, the horizon's own rule.
fn too_large(text: &str, line: usize, message: &str) -> Option<String> {
    if !message.contains(" as u128") && !message.contains(" as i128") {
        return None;
    }
    let number = message.split('`').nth(1)?;
    let key = text
        .lines()
        .nth(line.checked_sub(1)?)?
        .split_once(':')?
        .0
        .trim()
        .trim_start_matches("- ");
    Some(match key {
        "horizon" => horizon(number).err()?,
        _ => format!("{key}: the number `{number}` is too large, expected at most 64 bits"),
    })
}

fn build(
    report: &mut Report,
    path: &YamlPath,
    header: Header,
    canonical: &str,
) -> Option<Scenario> {
    let id_ok = !header.id.is_empty()
        && header
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !id_ok {
        report.at(
            &path.key("id"),
            format!(
                "invalid id `{}`, expected letters, digits, `-`, `_` or `.`",
                header.id
            ),
        );
    }
    let horizon = match header.horizon {
        serde_yaml::Value::Number(n) => horizon(&n.to_string())
            .map_err(|message| report.at(&path.key("horizon"), message))
            .ok(),
        // Not a number at all: serde's "invalid type" says so.
        other => report.parse::<u32>(&path.key("horizon"), other),
    };
    let Some(kind) = crate::env::kind(&header.kind) else {
        let expected = crate::env::expected_kinds();
        report.at(
            &path.key("kind"),
            format!(
                "kind `{}` is not supported by this build yet, expected {expected}",
                header.kind
            ),
        );
        return None;
    };
    let (task, body) = kind.read(report, path, header.task, header.world, header.privileged)?;
    let (true, Some(horizon)) = (id_ok, horizon) else {
        return None;
    };
    Some(Scenario {
        origin: report.origin(&path.key("id")),
        id: header.id,
        split: header.split,
        horizon,
        task,
        body,
        hash: format!("{:x}", Sha256::digest(canonical.as_bytes())),
        json: canonical.to_string(),
    })
}

/// The most steps an episode may have.
pub const MAX_HORIZON: u32 = u32::MAX;

/// Reads a horizon, from a scenario file or a `--horizon` flag alike: a whole number of steps
/// from 1 to [`MAX_HORIZON`].
pub fn horizon(text: &str) -> Result<u32, String> {
    text.parse::<u32>()
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| {
            format!("horizon `{text}` is out of range, expected a whole number of steps from 1 to {MAX_HORIZON}")
        })
}

/// The YAML files under `paths` (files as given, directories searched recursively), sorted,
/// each file once; those that cannot be scenario files (a FIFO, a link loop) are left out (see
/// [`files::find`] for why).
pub fn scenario_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    Ok(files::find(paths).files)
}

/// Loads every scenario under `paths`, and checks that ids are unique across all of them.
pub fn load(paths: &[PathBuf]) -> Loaded {
    let found = files::find(paths);
    let mut loaded = Loaded {
        problems: found.problems,
        ..Loaded::default()
    };
    for file in found.files {
        match files::read(&file) {
            Ok(text) => {
                let one = parse_text(&file, &text);
                loaded.scenarios.extend(one.scenarios);
                loaded.problems.extend(one.problems);
            }
            Err(problem) => loaded.problems.push(problem),
        }
    }
    let mut first: HashMap<String, Origin> = HashMap::new();
    let mut unique = Vec::with_capacity(loaded.scenarios.len());
    for s in loaded.scenarios {
        match first.get(&s.id) {
            Some(origin) => loaded.problems.push(Problem {
                origin: s.origin.clone(),
                message: format!(
                    "duplicate id `{}`, expected a new id (first defined at {origin})",
                    s.id
                ),
            }),
            None => {
                first.insert(s.id.clone(), s.origin.clone());
                unique.push(s);
            }
        }
    }
    loaded.scenarios = unique;
    loaded
}

/// Loads every scenario under `paths`, failing on the first file with any problem.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Scenario>, Problems> {
    let loaded = load(paths);
    if loaded.problems.is_empty() {
        Ok(loaded.scenarios)
    } else {
        Err(Problems(loaded.problems))
    }
}

/// The scenario stored in a run as a snapshot (its canonical JSON, which is YAML too). `name`
/// stands for the file in errors, e.g. "runs/default/leap.db: scenario 5e1f…".
pub fn from_snapshot(name: &str, json: &str) -> Result<Scenario, Problems> {
    let loaded = parse_text(Path::new(name), json);
    if !loaded.problems.is_empty() {
        return Err(Problems(loaded.problems));
    }
    loaded.scenarios.into_iter().next().ok_or_else(|| {
        Problems(vec![Problem {
            origin: Origin {
                file: PathBuf::from(name),
                line: 1,
                col: 1,
            },
            message: "the snapshot holds no scenario".into(),
        }])
    })
}
