//! Training: LoRA fine-tuning of the student through llama.cpp, on CPU, CUDA or Metal, with no
//! Python in the path.
//!
//! Rows are rendered with the model's chat template, tokenized and packed into windows of the
//! context length ([`data`]); a LoRA adapter ([`adapter`]) is trained on them with llama.cpp's
//! ggml-opt AdamW ([`llama`]), the loss on the response tokens only, under a warmup + cosine
//! learning rate ([`schedule`]). A held-out split gives the eval loss; progress streams as
//! [`TrainEvent`]s; a checkpoint every N steps ([`checkpoint`]) lets a stopped run resume. The
//! weights trained on are an F32 copy of a quantised base when it fits ([`prepare`]).

pub mod adapter;
pub mod checkpoint;
pub mod data;
mod llama;
pub mod memory;
pub mod prepare;
pub mod record;
pub mod schedule;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

pub use adapter::{Adapter, AdapterMeta, LoraSpec, LoraWeight, Target};
pub use checkpoint::Checkpoint;
pub use llama::{Matmul, OpTime, amx_available};
pub use prepare::{Base, BaseChoice};

use crate::dataset::Row;
use llama::{AdamW, Session, SessionConfig};

#[derive(Debug, Error)]
pub enum TrainError {
    #[error("the dataset has no rows to train on")]
    Empty,
    #[error("row {row}: {what}")]
    Row { row: usize, what: String },
    #[error(
        "row {row} is {tokens} tokens, longer than the context of {ctx}: raise --ctx (a multiple of 256) or shorten the row"
    )]
    RowTooLong { row: usize, tokens: usize, ctx: u32 },
    #[error("{}: {what}", path.display())]
    Model { path: PathBuf, what: String },
    #[error("{}: {what}", path.display())]
    Adapter { path: PathBuf, what: String },
    #[error("{}: checkpoint: {what}", path.display())]
    Checkpoint { path: PathBuf, what: String },
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

    pub(crate) fn adapter(path: &Path, what: impl std::fmt::Display) -> TrainError {
        TrainError::Adapter {
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
    /// Who computed the matrix products (`bf16` falls back to `blas` without AMX).
    pub matmul: Matmul,
    pub loss_on: LossOn,
    /// The adapter this run started from (`TrainConfig::init`), if any.
    pub init: Option<PathBuf>,
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
}

/// Trains an adapter on `rows` and writes it to `config.out`. Runs on the caller's thread;
/// [`spawn`] runs it on its own.
pub fn train(
    config: &TrainConfig,
    rows: &[Row],
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<TrainSummary, TrainError> {
    let started = Instant::now();
    check_config(config)?;
    if rows.is_empty() {
        return Err(TrainError::Empty);
    }
    let model = &config.model;
    crate::model::inspect(model).map_err(|e| TrainError::model(model, e))?;
    on_event(TrainEvent::Status("hashing the base model".into()));
    let base_sha256 =
        crate::model::fetch::sha256_file(model).map_err(|e| TrainError::model(model, e))?;
    let dataset_sha256 = match &config.dataset_sha256 {
        Some(h) => h.clone(),
        None => rows_sha256(rows),
    };

    on_event(TrainEvent::Status("tokenizing".into()));
    let chat = data::ChatText::load(model)?;
    let samples = rows
        .iter()
        .enumerate()
        .map(|(i, row)| chat.encode(i + 1, row))
        .collect::<Result<Vec<_>, _>>()?;
    let n_ctx = match config.n_ctx {
        0 => auto_context(&samples),
        n => n,
    };
    if let Some(s) = samples.iter().find(|s| s.tokens.len() > n_ctx as usize) {
        return Err(TrainError::RowTooLong {
            row: s.row,
            tokens: s.tokens.len(),
            ctx: n_ctx,
        });
    }
    let tokens: usize = samples.iter().map(|s| s.tokens.len()).sum();
    let (train_idx, eval_idx) = data::split(rows, config.eval_fraction, config.seed);
    let pick = |idx: &[usize]| idx.iter().map(|&i| samples[i].clone()).collect::<Vec<_>>();
    let pad = chat.pad_token();
    let ctx = n_ctx;
    let n_ctx = n_ctx as usize;
    let windows = data::pack(&pick(&train_idx), n_ctx, pad, config.loss_on, config.seed);
    let eval_windows = data::pack(&pick(&eval_idx), n_ctx, pad, config.loss_on, config.seed);
    drop(chat);
    let loss_tokens: usize = windows.iter().map(|w| w.n_loss).sum();
    if loss_tokens == 0 {
        return Err(TrainError::Empty);
    }
    let per_epoch = windows.len() as u64;
    let total = per_epoch * u64::from(config.epochs);
    let warmup = (total as f32 * config.warmup).round() as u64;

    let init_sha256 = match &config.init {
        Some(path) => {
            Some(crate::model::fetch::sha256_file(path).map_err(|e| TrainError::adapter(path, e))?)
        }
        None => None,
    };
    let fingerprint = fingerprint(
        config,
        ctx,
        &base_sha256,
        &dataset_sha256,
        init_sha256.as_deref(),
    );
    let resumed = match (&config.checkpoint, config.resume) {
        (Some(path), true) if path.exists() => {
            let ckpt = Checkpoint::read(path)?;
            if ckpt.fingerprint != fingerprint {
                return Err(TrainError::Checkpoint {
                    path: path.clone(),
                    what: "it is from another run (data, base or settings differ); delete it or train afresh".into(),
                });
            }
            Some(ckpt)
        }
        _ => None,
    };

    let threads = config
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        as i32;
    on_event(TrainEvent::Status(
        "choosing the weights to train on".into(),
    ));
    let base = prepare::choose(
        model,
        &base_sha256,
        config.base,
        ctx,
        config.gpu_layers,
        config.matmul,
        threads,
    )?;
    let mut adapter = match &resumed {
        Some(ckpt) => ckpt.adapter.clone(),
        None => {
            let file =
                crate::model::GgufFile::open(model).map_err(|e| TrainError::model(model, e))?;
            let fresh = Adapter::init(&file, &config.lora, config.seed)?;
            match &config.init {
                Some(path) => warm_start(path, fresh, &base_sha256)?,
                None => fresh,
            }
        }
    };
    on_event(TrainEvent::Status(format!(
        "loading {}",
        base.path.display()
    )));
    let adamw = |lr| AdamW {
        lr,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: config.weight_decay,
    };
    let session_config = SessionConfig {
        n_ctx: ctx,
        threads,
        gpu_layers: config.gpu_layers,
        profile: config.profile,
        matmul: config.matmul,
    };
    let mut session = Session::new(&base.path, &adapter, &session_config, adamw(config.lr))?;
    let (start_step, mut losses, mut evals) = match &resumed {
        Some(ckpt) => {
            session.restore_moments(&ckpt.moments);
            let losses = ckpt.losses.iter().map(|&l| f64::from(l)).collect();
            let evals = ckpt.evals.iter().map(|&(s, l)| (s, f64::from(l))).collect();
            (ckpt.step, losses, evals)
        }
        None => (0, Vec::new(), Vec::new()),
    };
    on_event(TrainEvent::Started {
        n_ctx: ctx,
        rows: rows.len(),
        train_rows: train_idx.len(),
        eval_rows: eval_idx.len(),
        tokens,
        windows: windows.len(),
        steps: total,
        start_step,
        parameters: adapter.parameters(),
        base: base.clone(),
    });

    let save_checkpoint = |session: &mut Session,
                           adapter: &mut Adapter,
                           step: u64,
                           losses: &[f64],
                           evals: &[(u64, f64)]|
     -> Result<Option<PathBuf>, TrainError> {
        let Some(path) = &config.checkpoint else {
            return Ok(None);
        };
        session.read_weights(adapter);
        let ckpt = Checkpoint {
            adapter: adapter.clone(),
            moments: session.read_moments(),
            step,
            fingerprint: fingerprint.clone(),
            losses: losses.iter().map(|&l| l as f32).collect(),
            evals: evals.iter().map(|&(s, l)| (s, l as f32)).collect(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| TrainError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        ckpt.write(path)?;
        Ok(Some(path.clone()))
    };

    let evaluate = |session: &mut Session| -> Result<Option<f64>, TrainError> {
        if eval_windows.is_empty() {
            return Ok(None);
        }
        let (mut sum, mut n) = (0.0, 0usize);
        for w in &eval_windows {
            sum += session.eval(&w.tokens, &w.labels, &w.masked)? * w.n_loss as f64;
            n += w.n_loss;
        }
        Ok((n > 0).then(|| sum / n as f64))
    };

    let mut order: Vec<usize> = Vec::new();
    let mut order_epoch = None;
    let mut train_s = 0.0;
    let mut done_here = 0u64;
    for step in start_step..total {
        if cancel.load(Ordering::Relaxed) {
            if let Some(path) = save_checkpoint(&mut session, &mut adapter, step, &losses, &evals)?
            {
                on_event(TrainEvent::Checkpoint { step, path });
            }
            return Err(TrainError::Cancelled { step });
        }
        let epoch = step / per_epoch;
        if order_epoch != Some(epoch) {
            order = (0..windows.len()).collect();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(config.seed ^ (epoch + 1)));
            order_epoch = Some(epoch);
        }
        let w = &windows[order[(step % per_epoch) as usize]];
        let lr = schedule::learning_rate(step, total, warmup, config.lr);
        let t0 = Instant::now();
        let loss = session.train_step(&w.tokens, &w.labels, &w.masked, step + 1, adamw(lr))?;
        train_s += t0.elapsed().as_secs_f64();
        done_here += 1;
        losses.push(loss);
        let tokens_per_s = (done_here * n_ctx as u64) as f64 / train_s.max(1e-9);
        let left = total - step - 1;
        on_event(TrainEvent::Step(StepProgress {
            step: step + 1,
            steps: total,
            epoch: epoch as u32 + 1,
            epochs: config.epochs,
            loss,
            lr,
            tokens_per_s,
            eta_s: left as f64 * train_s / done_here as f64,
        }));
        let epoch_end = (step + 1) % per_epoch == 0;
        let periodic = config.eval_every > 0 && (step + 1) % config.eval_every == 0;
        if (epoch_end || periodic)
            && let Some(loss) = evaluate(&mut session)?
        {
            evals.push((step + 1, loss));
            on_event(TrainEvent::Eval {
                step: step + 1,
                loss,
            });
        }
        let stop = config.stop_after == Some(step + 1);
        let due = config.checkpoint_every > 0 && (step + 1) % config.checkpoint_every == 0;
        if (stop || due)
            && step + 1 < total
            && let Some(path) =
                save_checkpoint(&mut session, &mut adapter, step + 1, &losses, &evals)?
        {
            on_event(TrainEvent::Checkpoint {
                step: step + 1,
                path,
            });
        }
        if stop && step + 1 < total {
            return Err(TrainError::Cancelled { step: step + 1 });
        }
    }

    session.read_weights(&mut adapter);
    let op_times = session.op_times();
    drop(session);
    let k = (losses.len() / 10).clamp(1, 10);
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let train_loss_first = mean(&losses[..k.min(losses.len())]);
    let train_loss_last = mean(&losses[losses.len().saturating_sub(k)..]);
    let eval_loss = evals.last().map(|&(_, l)| l);
    adapter.meta = AdapterMeta {
        base_sha256,
        base_name: model
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        dataset_sha256: Some(dataset_sha256),
        rows: Some(rows.len() as u64),
        iteration: config.iteration,
        steps: Some(total),
        epochs: Some(config.epochs),
        train_loss_first: Some(train_loss_first as f32),
        train_loss_last: Some(train_loss_last as f32),
        eval_loss: eval_loss.map(|l| l as f32),
        loss_on: Some(config.loss_on.as_str().to_owned()),
    };
    if let Some(dir) = config.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| TrainError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    adapter.write(&config.out)?;
    if let Some(path) = &config.checkpoint {
        // The adapter supersedes it.
        let _ = std::fs::remove_file(path);
    }
    let real: usize = windows.iter().map(|w| w.n_real).sum();
    Ok(TrainSummary {
        adapter: config.out.clone(),
        rows: rows.len(),
        tokens,
        epochs: config.epochs,
        train_loss_first,
        train_loss_last,
        eval_loss,
        tokens_per_s: if train_s > 0.0 {
            (done_here * n_ctx as u64) as f64 / train_s
        } else {
            0.0
        },
        peak_rss_mb: memory::peak_rss_bytes().map(|b| b as f64 / (1u64 << 20) as f64),
        steps: total,
        n_ctx: ctx,
        train_rows: train_idx.len(),
        eval_rows: eval_idx.len(),
        loss_tokens,
        packing: real as f64 / (windows.len() * n_ctx) as f64,
        trainable_parameters: adapter.parameters(),
        base,
        matmul: config.matmul.resolved(),
        loss_on: config.loss_on,
        init: config.init.clone(),
        lora: config.lora.clone(),
        lr: config.lr,
        warmup: config.warmup,
        weight_decay: config.weight_decay,
        seed: config.seed,
        seconds: started.elapsed().as_secs_f64(),
        losses,
        eval_losses: evals,
        op_times,
    })
}

fn check_config(config: &TrainConfig) -> Result<(), TrainError> {
    let bad = |what: &str| Err(TrainError::Config(what.to_owned()));
    if !config.n_ctx.is_multiple_of(256) {
        return bad("the context (--ctx) must be a multiple of 256");
    }
    if config.epochs == 0 {
        return bad("at least one epoch");
    }
    if !(config.lr > 0.0 && config.lr.is_finite()) {
        return bad("the learning rate must be positive");
    }
    if config.lora.rank == 0 || config.lora.targets.is_empty() {
        return bad("the LoRA rank must be positive and at least one target given");
    }
    if !(0.0..1.0).contains(&config.eval_fraction) || !(0.0..1.0).contains(&config.warmup) {
        return bad("the eval fraction and the warmup are shares in [0, 1)");
    }
    if !(0.0..=1.0).contains(&config.weight_decay) {
        return bad("the weight decay is in [0, 1]");
    }
    Ok(())
}

/// The smallest multiple of 256 that holds the longest row and two rows of median length.
fn auto_context(samples: &[data::Sample]) -> u32 {
    let mut lens: Vec<usize> = samples.iter().map(|s| s.tokens.len()).collect();
    lens.sort_unstable();
    let longest = lens.last().copied().unwrap_or(1);
    let median = lens.get(lens.len() / 2).copied().unwrap_or(1);
    (longest.max(2 * median).div_ceil(256) * 256) as u32
}

/// sha256 of the rows as JSON lines.
pub fn rows_sha256(rows: &[Row]) -> String {
    let mut h = Sha256::new();
    for row in rows {
        h.update(serde_json::to_vec(row).unwrap_or_default());
        h.update(b"\n");
    }
    format!("{:x}", h.finalize())
}

/// The adapter at `path` as the starting point of a run whose fresh adapter would be `fresh`:
/// the same base model, rank and adapted weights, or an error that says which differs.
fn warm_start(path: &Path, fresh: Adapter, base_sha256: &str) -> Result<Adapter, TrainError> {
    let mut start = Adapter::read(path)?;
    let bad = |what: String| Err(TrainError::adapter(path, what));
    if start.meta.base_sha256 != base_sha256 {
        return bad("it was trained on another base model; it cannot start this run".into());
    }
    if start.spec.rank != fresh.spec.rank {
        return bad(format!(
            "its rank is {}, this run's is {}",
            start.spec.rank, fresh.spec.rank
        ));
    }
    let names = |a: &Adapter| a.weights.iter().map(|w| w.name.clone()).collect::<Vec<_>>();
    if names(&start) != names(&fresh) {
        return bad(format!(
            "it adapts other weights ({}) than this run's targets ({})",
            Target::join(&start.spec.targets),
            Target::join(&fresh.spec.targets)
        ));
    }
    // The run's own alpha scales the update from here on; B is rescaled so that the starting
    // update alpha / rank * B A is the adapter's own.
    let scale = start.spec.alpha / fresh.spec.alpha;
    for w in &mut start.weights {
        w.b.iter_mut().for_each(|b| *b *= scale);
    }
    Ok(Adapter {
        weights: start.weights,
        ..fresh
    })
}

/// Identifies a run: a checkpoint resumes only the run it came from.
fn fingerprint(
    config: &TrainConfig,
    n_ctx: u32,
    base_sha256: &str,
    dataset_sha256: &str,
    init_sha256: Option<&str>,
) -> String {
    let key = serde_json::json!({
        "base": base_sha256,
        "base_choice": config.base,
        "dataset": dataset_sha256,
        "lora": config.lora,
        "epochs": config.epochs,
        "lr": config.lr,
        "warmup": config.warmup,
        "weight_decay": config.weight_decay,
        "n_ctx": n_ctx,
        "eval_fraction": config.eval_fraction,
        "loss_on": config.loss_on,
        "seed": config.seed,
    });
    // Only a warm-started run names its start (by content: a file rewritten at the same path
    // starts another run), so that older checkpoints still resume.
    let key = match init_sha256 {
        Some(init) => serde_json::json!({ "run": key, "init": init }),
        None => key,
    };
    format!("{:x}", Sha256::digest(key.to_string().as_bytes()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chosen_context_holds_the_longest_row_and_two_median_ones() {
        let sample = |len: usize| data::Sample {
            row: 1,
            tokens: vec![0; len],
            n_prompt: 1,
        };
        let samples: Vec<_> = [237, 400, 436, 450, 703].into_iter().map(sample).collect();
        assert_eq!(auto_context(&samples), 1024);
        assert_eq!(auto_context(&[sample(100)]), 256);
        assert_eq!(auto_context(&[sample(100), sample(100), sample(900)]), 1024);
    }
}
