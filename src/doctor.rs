//! `leap doctor`: is a run folder sound? SQLite's full `integrity_check` of its database, then
//! every file the run recorded against what it recorded about it: the run's model and each
//! dataset by their sha256, each adapter by the checks a load makes (`model::check`) and by the
//! hashes of the base model and dataset written into it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::model::fetch::sha256_file;
use crate::run::RunDir;
use crate::store::{self, Store, StoreError};

/// One thing checked and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What was checked: "database", "model PATH", "dataset PATH", "adapter PATH".
    pub what: String,
    /// `None` when sound, else what is wrong.
    pub problem: Option<String>,
}

/// Everything `doctor` checked.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run: PathBuf,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn sound(&self) -> bool {
        self.findings.iter().all(|f| f.problem.is_none())
    }
}

/// Checks the run in `dir`. The database is opened read-only for its full check; the files are
/// checked only when it is sound (a damaged database's records cannot be trusted).
pub fn doctor(dir: &Path) -> Result<Report, StoreError> {
    let run = RunDir::new(dir);
    let mut report = Report {
        run: dir.to_path_buf(),
        findings: Vec::new(),
    };
    let problems = store::integrity_check(&run.db())?;
    let sound = problems.is_empty();
    report.findings.push(Finding {
        what: format!("database {}", run.db().display()),
        problem: (!sound).then(|| format!("integrity_check: {}", problems.join("; "))),
    });
    if !sound {
        return Ok(report);
    }
    let store = Store::open_existing(dir)?;
    let model = store.run_model()?;
    let mut model_sha256 = None;
    if let Some(m) = &model {
        let problem = match sha256_file(Path::new(&m.path)) {
            Ok(h) if h == m.sha256 => None,
            Ok(h) => Some(format!("sha256 is {h}, the run recorded {}", m.sha256)),
            Err(e) => Some(e.to_string()),
        };
        if problem.is_none() {
            model_sha256 = Some(m.sha256.clone());
        }
        report.findings.push(Finding {
            what: format!("model {}", m.path),
            problem,
        });
    }
    let datasets = store.datasets()?;
    for d in &datasets {
        let problem = match sha256_file(Path::new(&d.path)) {
            Ok(h) if h == d.hash => None,
            Ok(h) => Some(format!("sha256 is {h}, the run recorded {}", d.hash)),
            Err(e) => Some(e.to_string()),
        };
        report.findings.push(Finding {
            what: format!("dataset {}", d.path),
            problem,
        });
    }
    for a in store.adapters()? {
        let recorded = a
            .dataset_id
            .and_then(|id| datasets.iter().find(|d| d.id == id))
            .map(|d| d.hash.as_str());
        report.findings.push(Finding {
            what: format!("adapter {}", a.path),
            problem: adapter_problem(Path::new(&a.path), model_sha256.as_deref(), recorded),
        });
    }
    Ok(report)
}

/// What is wrong with an adapter the run recorded: the load checks, then its recorded lineage.
fn adapter_problem(path: &Path, model: Option<&str>, dataset: Option<&str>) -> Option<String> {
    let file = match crate::model::check_file(path) {
        Ok(f) => f,
        Err(e) => return Some(e.to_string()),
    };
    let key = |k: &str| file.get_str(k).filter(|s| !s.is_empty());
    if let (Some(written), Some(model)) = (key("leap.base.sha256"), model)
        && written != model
    {
        return Some(format!(
            "trained on a model with sha256 {written}, but the run's model is {model}"
        ));
    }
    if let (Some(written), Some(dataset)) = (key("leap.dataset.sha256"), dataset)
        && written != dataset
    {
        return Some(format!(
            "trained on a dataset with sha256 {written}, but the run recorded {dataset}"
        ));
    }
    None
}
