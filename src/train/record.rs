//! Train-and-record: the one way an adapter is made in a run, for `leap train`, the LEAP loop
//! and the workbench's Train screen. It reads a dataset of the run, trains through
//! [`super::train`], and records the adapter with its lineage (its dataset, its base model and
//! the training summary); [`update`] is the LEAP update (build the iteration's dataset: the
//! expert's demonstrations beside the kept labels, aggregated; then train, warm-started from
//! the current student when asked).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use thiserror::Error;

use super::{
    BaseChoice, Examples, LoraSpec, LossOn, Matmul, Objective, Pack, TrainConfig, TrainError,
    TrainEvent, TrainSummary,
};
use crate::agent::prompt::Prompt;
use crate::dataset::DatasetError;
use crate::dataset::build::{
    Aggregate, BuildReport, BuildSettings, PairsReport, build_dataset, write_pairs,
};
use crate::model::fetch::FetchError;
use crate::run::{RunDir, iteration_stem};
use crate::scenario::Scenario;
use crate::store::{DatasetSource, Store, StoreError};

#[derive(Debug, Error)]
pub enum RecordError {
    #[error(
        "{}: no dataset here; build it with `leap dataset build --run {} --iter {iteration}` or pass --data FILE.jsonl",
        data.display(),
        run.display()
    )]
    NoDataset {
        data: PathBuf,
        run: PathBuf,
        iteration: u32,
    },
    #[error(
        "{}: no preference pairs here; write them with `leap export --run {} --format dpo --iter {} --out {}` (the kept labels of the rollouts the adapter learns from) or pass --data FILE.jsonl",
        data.display(),
        run.display(),
        iteration.saturating_sub(1),
        data.display()
    )]
    NoPairs {
        data: PathBuf,
        run: PathBuf,
        iteration: u32,
    },
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("hashing {}: {source}", path.display())]
    Hash {
        path: PathBuf,
        source: Box<FetchError>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}: {error}", data.display())]
    Rows {
        data: PathBuf,
        /// Not a `source`: the message already says it, and a chain would say it twice.
        error: Box<TrainError>,
    },
    #[error(transparent)]
    Train(Box<TrainError>),
    #[error("recording {}: {source}", adapter.display())]
    Record {
        adapter: PathBuf,
        source: Box<StoreError>,
    },
    #[error(transparent)]
    Run(#[from] crate::run::RunError),
}

/// How an adapter is trained. `Default` is `leap train`'s defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    pub base: BaseChoice,
    pub lora: LoraSpec,
    pub epochs: u32,
    /// Peak learning rate (warmup, then cosine decay).
    pub lr: f32,
    /// Tokens per training window, a multiple of 256 (0: the smallest that fits).
    pub ctx: u32,
    pub loss_on: LossOn,
    /// How rows share a training window.
    pub pack: Pack,
    /// Share of the rows held out for the eval loss.
    pub eval_fraction: f32,
    /// Steps between checkpoints; a rerun resumes from one.
    pub checkpoint_every: u64,
    /// Ignore an existing checkpoint and start afresh.
    pub fresh: bool,
    pub seed: u64,
    pub threads: Option<usize>,
    pub gpu_layers: u32,
    /// Time every ggml operation (slower).
    pub profile: bool,
    pub matmul: Matmul,
    /// The output projection and the loss at every position (`TrainConfig::dense_head`).
    pub dense_head: bool,
    /// Attention's products over every position of a window (`TrainConfig::dense_attention`).
    pub dense_attention: bool,
    /// SFT on rows, or preference optimisation on pairs (the data is then a pairs file).
    pub objective: Objective,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            base: BaseChoice::Auto,
            lora: LoraSpec::default(),
            epochs: 2,
            lr: 2e-4,
            ctx: 0,
            loss_on: LossOn::Response,
            pack: Pack::Flat,
            eval_fraction: 0.05,
            checkpoint_every: 50,
            fresh: false,
            seed: 0,
            threads: None,
            gpu_layers: 0,
            profile: false,
            matmul: Matmul::default(),
            dense_head: false,
            dense_attention: false,
            objective: Objective::Sft,
        }
    }
}

/// One adapter to train in a run.
#[derive(Debug, Clone)]
pub struct AdapterJob {
    /// The base model.
    pub model: PathBuf,
    /// The iteration the adapter belongs to (its dataset's iteration).
    pub iteration: u32,
    /// Names the adapter and its checkpoint (`adapters/STEM.gguf`); `iter-N` by default.
    pub stem: Option<String>,
    /// The rows: the iteration's dataset (`datasets/iter-N.jsonl`) unless given.
    pub data: Option<PathBuf>,
    /// Start from this adapter's weights instead of a fresh initialisation.
    pub init: Option<PathBuf>,
    pub train: TrainOptions,
}

impl AdapterJob {
    pub fn new(model: impl Into<PathBuf>, iteration: u32) -> AdapterJob {
        AdapterJob {
            model: model.into(),
            iteration,
            stem: None,
            data: None,
            init: None,
            train: TrainOptions::default(),
        }
    }

    fn stem(&self) -> String {
        self.stem
            .clone()
            .unwrap_or_else(|| iteration_stem(self.iteration))
    }
}

/// A trained and recorded adapter.
#[derive(Debug, Clone)]
pub struct Trained {
    pub summary: TrainSummary,
    pub adapter_id: i64,
    pub dataset_id: Option<i64>,
    /// The rows it trained on.
    pub data: PathBuf,
}

/// The adapter `job` would write, when it is already trained: its file is in place and the
/// run recorded it when training finished. Training it again would overwrite it.
pub fn already_trained(
    run: &RunDir,
    store: &Store,
    job: &AdapterJob,
) -> Result<Option<crate::store::AdapterRow>, RecordError> {
    let adapter = run.named_adapter(&job.stem());
    if !adapter.is_file() {
        return Ok(None);
    }
    Ok(store.adapter_by_path(&path_text(&adapter))?)
}

/// Trains the adapter `job` asks for and records it in the run, with the dataset whose file it
/// read (when the run recorded that file) and its base model. `on_event` hears training's
/// progress; `cancel` stops after the current step (a checkpoint is written).
pub fn train_and_record(
    run: &RunDir,
    store: &mut Store,
    job: &AdapterJob,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<Trained, RecordError> {
    let preference = job.train.objective.preference().is_some();
    let data = job.data.clone().unwrap_or_else(|| match preference {
        false => run.dataset(job.iteration),
        true => run.pairs(job.iteration),
    });
    if !data.is_file() {
        let (run, iteration) = (run.root().to_path_buf(), job.iteration);
        return Err(match preference {
            false => RecordError::NoDataset {
                data,
                run,
                iteration,
            },
            true => RecordError::NoPairs {
                data,
                run,
                iteration,
            },
        });
    }
    let (rows, pairs);
    let examples = match job.train.objective {
        Objective::Sft => {
            rows = crate::dataset::read_jsonl(&data)?;
            Examples::Rows(&rows)
        }
        Objective::Dpo(_) => {
            pairs = crate::dataset::read_pairs(&data)?;
            Examples::Pairs(&pairs)
        }
    };
    let data_sha256 =
        crate::model::fetch::sha256_file(&data).map_err(|source| RecordError::Hash {
            path: data.clone(),
            source: Box::new(source),
        })?;
    let config = config(run, job, &data_sha256);
    let summary = super::train_on(&config, examples, cancel, on_event).map_err(|e| match e {
        TrainError::Row { .. } | TrainError::RowTooLong { .. } => RecordError::Rows {
            data: data.clone(),
            error: Box::new(e),
        },
        e => RecordError::Train(Box::new(e)),
    })?;
    let dataset_id = dataset_of(store, job.iteration, &data, &data_sha256)?;
    let record = serde_json::to_value(&summary).map_err(DatasetError::Json)?;
    // An adapter under another name (the workbench's) is not the iteration's own.
    let iteration = job.stem.is_none().then_some(job.iteration);
    let adapter_id = store
        .insert_adapter(
            iteration,
            &path_text(&summary.adapter),
            dataset_id,
            &path_text(&job.model),
            &record,
        )
        .map_err(|source| RecordError::Record {
            adapter: summary.adapter.clone(),
            source: Box::new(source),
        })?;
    run.remember_model(store, &job.model)?;
    Ok(Trained {
        summary,
        adapter_id,
        dataset_id,
        data,
    })
}

fn config(run: &RunDir, job: &AdapterJob, data_sha256: &str) -> TrainConfig {
    let stem = job.stem();
    let t = &job.train;
    let mut config = TrainConfig::new(&job.model, run.named_adapter(&stem));
    config.base = t.base;
    config.lora = t.lora.clone();
    config.epochs = t.epochs;
    config.lr = t.lr;
    config.n_ctx = t.ctx;
    config.loss_on = t.loss_on;
    config.eval_fraction = t.eval_fraction;
    config.seed = t.seed;
    config.threads = t.threads;
    config.gpu_layers = t.gpu_layers;
    config.iteration = Some(job.iteration);
    config.dataset_sha256 = Some(data_sha256.to_owned());
    config.checkpoint = Some(run.checkpoint(&stem));
    config.checkpoint_every = t.checkpoint_every;
    config.resume = !t.fresh;
    config.profile = t.profile;
    config.dense_head = t.dense_head;
    config.dense_attention = t.dense_attention;
    config.init = job.init.clone();
    config.matmul = t.matmul;
    config.pack = t.pack;
    config.objective = t.objective;
    config
}

/// The recorded dataset whose file is `data` with this content: the iteration's (`leap
/// iterate`, `leap dataset build`), any other the run recorded at that path, or the one the run
/// recorded with the same content for the same iteration (a dataset is recorded once per
/// iteration and content, so the workbench training twice on the same rows writes a second file
/// but keeps the first record).
fn dataset_of(
    store: &Store,
    iteration: u32,
    data: &Path,
    sha256: &str,
) -> Result<Option<i64>, StoreError> {
    if let Some(d) = store.dataset(iteration)?.filter(|d| d.hash == sha256) {
        return Ok(Some(d.id));
    }
    let path = path_text(data);
    let datasets = store.datasets()?;
    let same = |d: &&crate::store::DatasetRow| d.hash == sha256;
    Ok(
        (datasets.iter().rev().filter(same).find(|d| d.path == path))
            .or_else(|| (datasets.iter().rev().filter(same)).find(|d| d.iteration == iteration))
            .map(|d| d.id),
    )
}

fn path_text(p: &Path) -> String {
    p.display().to_string()
}

/// The LEAP update's settings: how an iteration's dataset is built and its adapter trained.
/// `Default` is `leap iterate`'s defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOptions {
    /// The oracle's privilege for the demonstrations.
    pub expert_privilege: f64,
    /// Demonstration rows iteration 0 trains on (0: all).
    pub expert_rows: usize,
    /// Later iterations: at most this many rows from the expert and from each iteration's
    /// labels (0: all).
    pub max_rows_per_part: usize,
    /// One row per distinct correction of an episode.
    pub distinct_labels: bool,
    pub aggregate: Aggregate,
    /// Iterations after 0 train on from the last student's adapter.
    pub warm_start: bool,
    /// The learning rate of a warm start (default: `train.lr`).
    pub warm_lr: Option<f32>,
    pub seed: u64,
    pub train: TrainOptions,
}

impl Default for UpdateOptions {
    fn default() -> Self {
        UpdateOptions {
            expert_privilege: 0.0,
            expert_rows: 0,
            max_rows_per_part: 400,
            distinct_labels: false,
            aggregate: Aggregate::Union,
            warm_start: false,
            warm_lr: None,
            seed: 0,
            train: TrainOptions {
                ctx: 1024,
                ..TrainOptions::default()
            },
        }
    }
}

impl UpdateOptions {
    /// How iteration `i`'s dataset is built.
    pub fn build_settings(&self, iteration: u32) -> BuildSettings {
        let cap = if iteration == 0 {
            self.expert_rows
        } else {
            self.max_rows_per_part
        };
        BuildSettings {
            max_rows_per_part: (cap > 0).then_some(cap),
            distinct_labels: self.distinct_labels,
            ..BuildSettings::new(self.expert_privilege, self.aggregate, self.seed)
        }
    }

    /// Whether iteration `i` updates by preference optimisation on pairs (iteration 0 is
    /// behaviour cloning, always supervised).
    pub fn preference(&self, iteration: u32) -> bool {
        iteration > 0 && self.train.objective.preference().is_some()
    }

    /// Iteration `i`'s adapter job; `student` is the current student's adapter, which a warm
    /// start goes on from, and a preference update always (it is the reference policy).
    pub fn adapter_job(&self, model: &Path, iteration: u32, student: Option<&Path>) -> AdapterJob {
        let preference = self.preference(iteration);
        let init = student.filter(|_| (self.warm_start || preference) && iteration > 0);
        let mut train = self.train.clone();
        if !preference {
            train.objective = Objective::Sft;
        }
        train.seed = self.seed;
        if let (Some(lr), Some(_)) = (self.warm_lr, init) {
            train.lr = lr;
        }
        let mut job = AdapterJob::new(model, iteration);
        job.init = init.map(Path::to_path_buf);
        job.train = train;
        job
    }
}

/// What the LEAP update reports.
#[derive(Debug)]
pub enum UpdateEvent {
    /// The dataset is built and recorded.
    Dataset(BuildReport),
    /// A preference update's pairs are written.
    Pairs(PairsReport),
    Train(TrainEvent),
}

/// The LEAP update outside the loop (the workbench's Train screen): builds iteration
/// `iteration`'s dataset from the train scenarios' demonstrations and the kept labels (those of
/// live episodes, which no iteration played, too) into `datasets/STEM.jsonl` (recorded as the
/// workbench's), and trains `adapters/STEM.gguf` on it, warm-started from `student` when
/// `options.warm_start`. A preference update instead writes the pairs of the kept labels of
/// iteration `iteration - 1` to `datasets/STEM.pairs.jsonl` and goes on from `student`.
#[allow(clippy::too_many_arguments)]
pub fn update(
    run: &RunDir,
    store: &mut Store,
    scenarios: &[Scenario],
    prompt: &Prompt,
    model: &Path,
    iteration: u32,
    stem: &str,
    student: Option<&Path>,
    options: &UpdateOptions,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(UpdateEvent),
) -> Result<Trained, RecordError> {
    let data = if options.preference(iteration) {
        let data = run.named_pairs(stem);
        let source = DatasetSource::Workbench;
        on_event(UpdateEvent::Pairs(write_pairs(
            store, &data, source, iteration,
        )?));
        data
    } else {
        let data = run.named_dataset(stem);
        let to = (data.as_path(), DatasetSource::Workbench);
        let settings = options.build_settings(iteration);
        let report = build_dataset(store, to, scenarios, prompt, iteration, &settings, true)?;
        on_event(UpdateEvent::Dataset(report));
        data
    };
    let mut job = options.adapter_job(model, iteration, student);
    job.stem = Some(stem.to_owned());
    job.data = Some(data);
    train_and_record(run, store, &job, cancel, &mut |e| {
        on_event(UpdateEvent::Train(e))
    })
}
