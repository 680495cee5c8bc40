//! Training: LoRA fine-tuning of the student through llama.cpp, on CPU, CUDA or Metal, with no
//! Python in the path.
//!
//! Rows are rendered with the model's chat template, tokenized and packed into windows of the
//! context length ([`data`]); a LoRA adapter ([`crate::model::adapter`]) is trained on them
//! ([`run`]) with llama.cpp's ggml-opt AdamW ([`llama`]), the loss on the response tokens only,
//! under a warmup + cosine learning rate ([`schedule`]). A held-out split gives the eval loss;
//! progress streams as [`TrainEvent`]s; a checkpoint every N steps ([`checkpoint`]) lets a
//! stopped run resume. The weights trained on are an F32 copy of a quantised base when it fits
//! ([`prepare`]).

pub mod blas;
pub mod checkpoint;
pub mod data;
mod llama;
pub mod memory;
pub mod peak;
pub mod preference;
pub mod prepare;
pub mod record;
mod run;
pub mod schedule;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

pub use checkpoint::Checkpoint;
pub use llama::{Matmul, OpTime, amx_available, avx512_bf16_available};
pub use peak::{MemoryPart, PeakMemory};
pub use preference::{Objective, Preference, PreferenceLoss};
pub use prepare::{Base, BaseChoice};

use crate::dataset::Row;
use crate::dataset::build::PreferencePair;
// The adapter's shape is part of a training run's settings.
use crate::model::GgufError;
use crate::model::adapter::AdapterError;
pub use crate::model::adapter::{LoraSpec, Target};
pub use run::{ResponseLogp, pair_logps, train, train_on};

/// What a run trains on: supervised rows, or preference pairs (the objective says which).
#[derive(Debug, Clone, Copy)]
pub enum Examples<'a> {
    Rows(&'a [Row]),
    Pairs(&'a [PreferencePair]),
}

impl Examples<'_> {
    pub fn len(&self) -> usize {
        match self {
            Examples::Rows(r) => r.len(),
            Examples::Pairs(p) => p.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// sha256 of the examples as JSON lines.
    pub fn sha256(&self) -> String {
        match self {
            Examples::Rows(r) => rows_sha256(r),
            Examples::Pairs(p) => rows_sha256(p),
        }
    }
}

#[derive(Debug, Error)]
pub enum TrainError {
    #[error("the dataset has no rows to train on")]
    Empty,
    #[error("row {row}: {what}")]
    Row { row: usize, what: String },
    #[error(
        "{} {row} is {tokens} tokens{}, longer than the context of {ctx}: raise --ctx (a multiple of 256) or shorten the {}",
        if *pair { "pair" } else { "row" },
        if *pair { " (its two sides)" } else { "" },
        if *pair { "pair" } else { "row" }
    )]
    RowTooLong {
        row: usize,
        tokens: usize,
        ctx: u32,
        /// A preference pair, whose two sides share a window.
        pair: bool,
    },
    #[error("{}: {what}", path.display())]
    Model { path: PathBuf, what: String },
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    #[error("{}: checkpoint: {what}", path.display())]
    Checkpoint { path: PathBuf, what: String },
    /// The checkpoint's file cannot be read or written as GGUF.
    #[error("{}: checkpoint: {source}", path.display())]
    CheckpointFile { path: PathBuf, source: GgufError },
    /// The checkpoint's adapter part is not a LoRA adapter this code reads.
    #[error("{}: checkpoint: {source}", path.display())]
    CheckpointAdapter { path: PathBuf, source: AdapterError },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error("llama.cpp: {0}")]
    Llama(String),
    #[error("the loss became {loss}: training diverged (try a lower --lr)")]
    Diverged { loss: f64 },
    #[error(
        "the adapter's {tensor} became {value}: training diverged (try a lower --lr); no adapter written"
    )]
    DivergedWeights { tensor: String, value: f32 },
    #[error("stopped after step {step}")]
    Cancelled { step: u64 },
}

impl TrainError {
    pub(crate) fn model(path: &Path, what: impl std::fmt::Display) -> TrainError {
        TrainError::Model {
            path: path.to_path_buf(),
            what: what.to_string(),
        }
    }
}

/// Which tokens the loss is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LossOn {
    /// The response and the end of turn only (what the LEAP paper did, through TRL).
    #[default]
    Response,
    /// Every token of each row, prompt included.
    All,
}

impl LossOn {
    pub fn as_str(self) -> &'static str {
        match self {
            LossOn::Response => "response",
            LossOn::All => "all",
        }
    }
}

/// How rows are laid out in a training window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Pack {
    /// One after the other, each row seeing the rows before it in its window.
    #[default]
    Flat,
    /// As a prefix tree: the rows of a window store the start they share once (the system
    /// text, a scenario's first observation, an episode's earlier steps) and each row attends
    /// only to its own tokens, at the positions it would have alone. Responses only.
    Tree,
}

/// What to train and how.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// The base model the adapter is for (what the student serves with).
    pub model: PathBuf,
    pub base: BaseChoice,
    /// Where the adapter is written.
    pub out: PathBuf,
    pub lora: LoraSpec,
    pub epochs: u32,
    /// Peak learning rate.
    pub lr: f32,
    /// Share of the steps spent warming the learning rate up.
    pub warmup: f32,
    pub weight_decay: f32,
    /// Tokens per window: a multiple of 256, or 0 to choose: the smallest that holds the
    /// longest row and two rows of median length (so that windows are mostly full).
    pub n_ctx: u32,
    /// Share of the rows held out for the eval loss (none under 10 rows).
    pub eval_fraction: f32,
    /// Evaluate every this many steps, besides the end of each epoch (0: epochs only).
    pub eval_every: u64,
    pub loss_on: LossOn,
    /// How rows share a window.
    pub pack: Pack,
    pub seed: u64,
    /// CPU threads; by default as many as the machine has cores.
    pub threads: Option<usize>,
    /// Layers offloaded to the GPU (builds with the `cuda` or `metal` feature).
    pub gpu_layers: u32,
    /// The LEAP iteration the adapter belongs to, kept in its metadata.
    pub iteration: Option<u32>,
    /// sha256 of the dataset, kept in the adapter's metadata; by default that of the rows' JSON.
    pub dataset_sha256: Option<String>,
    /// Where checkpoints go; none when unset.
    pub checkpoint: Option<PathBuf>,
    /// Steps between checkpoints (0: only when stopped).
    pub checkpoint_every: u64,
    /// Continue from the checkpoint if there is one for this same run.
    pub resume: bool,
    /// Stop after this many steps, as if cancelled (a checkpoint is written).
    pub stop_after: Option<u64>,
    /// Time every ggml operation (slower).
    pub profile: bool,
    /// Which kernels compute the large F32 matrix products on the CPU.
    pub matmul: Matmul,
    /// Start from this adapter's weights instead of a fresh initialisation (a LEAP iteration
    /// going on from the last student). Its base, rank and targets must be this run's.
    pub init: Option<PathBuf>,
    /// Supervised fine-tuning on rows, or preference optimisation on pairs.
    pub objective: Objective,
    /// Write each step's gradients to `DIR/step-N.gguf` (an adapter file whose A and B hold
    /// the loss's gradient by them), to check training against another implementation.
    pub gradients: Option<PathBuf>,
    /// Compute the output projection and the loss at every position of a window, as ggml
    /// does, rather than at the positions in the loss alone: the reference the sparse path is
    /// checked against (slower; the same training).
    pub dense_head: bool,
    /// Compute attention's products (scores, the weighted sum of the values, their backward)
    /// over every pair of positions, as ggml does, rather than skipping the pairs the window's
    /// causal mask hides, whose terms are zero: the reference (slower; the same training).
    pub dense_attention: bool,
}

impl TrainConfig {
    pub fn new(model: impl Into<PathBuf>, out: impl Into<PathBuf>) -> TrainConfig {
        TrainConfig {
            model: model.into(),
            base: BaseChoice::Auto,
            out: out.into(),
            lora: LoraSpec::default(),
            epochs: 2,
            lr: 2e-4,
            warmup: 0.05,
            weight_decay: 0.0,
            n_ctx: 0,
            eval_fraction: 0.05,
            eval_every: 0,
            loss_on: LossOn::Response,
            pack: Pack::Flat,
            seed: 0,
            threads: None,
            gpu_layers: 0,
            iteration: None,
            dataset_sha256: None,
            checkpoint: None,
            checkpoint_every: 0,
            resume: false,
            stop_after: None,
            profile: false,
            matmul: Matmul::default(),
            init: None,
            objective: Objective::Sft,
            gradients: None,
            dense_head: false,
            dense_attention: false,
        }
    }
}

/// One optimizer step done.
#[derive(Debug, Clone, Serialize)]
pub struct StepProgress {
    /// Steps done, counted from 1 over the whole run (a resumed run goes on counting).
    pub step: u64,
    pub steps: u64,
    /// The epoch this step belongs to, from 1.
    pub epoch: u32,
    pub epochs: u32,
    /// Mean loss over the window's trained tokens.
    pub loss: f64,
    pub lr: f32,
    /// Window positions per second of training, this invocation.
    pub tokens_per_s: f64,
    pub eta_s: f64,
}

/// What a training run reports while it runs.
#[derive(Debug, Clone)]
pub enum TrainEvent {
    /// A phase before the first step: hashing, preparing the F32 copy, loading.
    Status(String),
    /// Data packed and model loaded; steps follow.
    Started {
        /// Tokens per window.
        n_ctx: u32,
        rows: usize,
        train_rows: usize,
        eval_rows: usize,
        tokens: usize,
        windows: usize,
        steps: u64,
        /// Steps already done by the checkpoint resumed from.
        start_step: u64,
        parameters: usize,
        base: Base,
    },
    Step(StepProgress),
    Eval {
        step: u64,
        loss: f64,
    },
    Checkpoint {
        step: u64,
        path: PathBuf,
    },
}

/// What a finished run gives.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    pub adapter: PathBuf,
    pub rows: usize,
    /// Tokens of all rows, training and held out.
    pub tokens: usize,
    pub epochs: u32,
    /// Mean loss of the first steps (a tenth of the run, 1 to 10 steps).
    pub train_loss_first: f64,
    /// Mean loss of the last steps (as many).
    pub train_loss_last: f64,
    /// Held-out loss at the end; none without a held-out split.
    pub eval_loss: Option<f64>,
    /// Window positions trained per second, this invocation (padding included).
    pub tokens_per_s: f64,
    pub peak_rss_mb: Option<f64>,
    pub steps: u64,
    /// Tokens per window.
    pub n_ctx: u32,
    pub train_rows: usize,
    pub eval_rows: usize,
    /// Tokens the loss was on (training rows, one epoch).
    pub loss_tokens: usize,
    /// Share of window positions holding row tokens rather than padding.
    pub packing: f64,
    pub trainable_parameters: usize,
    pub base: Base,
    /// Who computed the matrix products: `bf16` resolved to the kernel this CPU ran (`amx`,
    /// `avx512-bf16`, or `blas` without either).
    pub matmul: Matmul,
    pub loss_on: LossOn,
    /// How rows shared the windows.
    pub pack: Pack,
    /// The adapter this run started from (`TrainConfig::init`), if any.
    pub init: Option<PathBuf>,
    pub objective: Objective,
    /// A preference run: the share of held-out pairs (else training pairs) whose chosen
    /// response gains more over the reference than the rejected one, at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred: Option<f64>,
    /// The settings the adapter was trained with, so that a run's record says how each
    /// student was made.
    pub lora: LoraSpec,
    /// Peak learning rate.
    pub lr: f32,
    pub warmup: f32,
    pub weight_decay: f32,
    pub seed: u64,
    pub seconds: f64,
    /// Loss of every step.
    pub losses: Vec<f64>,
    /// (step, held-out loss) of every evaluation.
    pub eval_losses: Vec<(u64, f64)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub op_times: Vec<OpTime>,
    /// When profiling, the first step's graph memory at its peak.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_memory: Option<PeakMemory>,
}

/// sha256 of the rows (or pairs) as JSON lines.
pub fn rows_sha256<T: Serialize>(rows: &[T]) -> String {
    let mut h = Sha256::new();
    for row in rows {
        h.update(serde_json::to_vec(row).unwrap_or_default());
        h.update(b"\n");
    }
    format!("{:x}", h.finalize())
}

/// What a finished training job gives back.
pub type TrainOutcome = Result<TrainSummary, TrainError>;

/// A training run on its own thread.
pub struct TrainJob {
    /// Everything the run reports, in order; closed when it ends.
    pub events: std::sync::mpsc::Receiver<TrainEvent>,
    /// Set to stop after the current step (a checkpoint is written when configured).
    pub cancel: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<TrainOutcome>,
}

impl TrainJob {
    pub fn join(self) -> TrainOutcome {
        self.handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

/// Runs [`train`] off the caller's thread, streaming [`TrainEvent`]s back.
pub fn spawn(config: TrainConfig, rows: Vec<Row>) -> TrainJob {
    let (tx, events) = std::sync::mpsc::channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let stop = cancel.clone();
    let handle = std::thread::spawn(move || {
        train(&config, &rows, &stop, &mut |e| {
            let _ = tx.send(e);
        })
    });
    TrainJob {
        events,
        cancel,
        handle,
    }
}
