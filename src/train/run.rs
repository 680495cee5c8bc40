//! One training run, in the order it happens: the rows become packed windows and the run gets
//! its identity ([`Plan::make`]); the weights, the adapter (fresh, warm-started or resumed) and
//! the optimizer are loaded ([`Run::start`]); the steps run with their held-out evaluations and
//! checkpoints ([`Run::steps`]); the adapter is written with what made it ([`Run::finish`]).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use super::llama::{AdamW, Session, SessionConfig, SpanLoss};
use super::preference::{PairSums, pair_loss};
use super::{
    Base, Checkpoint, Examples, LossOn, Objective, Pack, StepProgress, Target, TrainConfig,
    TrainError, TrainEvent, TrainSummary, data, memory, prepare, schedule,
};
use crate::dataset::{Row, RowMeta};
use crate::model::adapter::{Adapter, AdapterError, AdapterMeta};

/// Trains an adapter on `rows` and writes it to `config.out`. Runs on the caller's thread;
/// [`super::spawn`] runs it on its own.
pub fn train(
    config: &TrainConfig,
    rows: &[Row],
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<TrainSummary, TrainError> {
    train_on(config, Examples::Rows(rows), cancel, on_event)
}

/// [`train`] on rows or, for a preference objective, on pairs.
pub fn train_on(
    config: &TrainConfig,
    examples: Examples,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<TrainSummary, TrainError> {
    let started = Instant::now();
    let plan = Plan::make(config, examples, on_event)?;
    let resumed = resume(config, &plan.fingerprint)?;
    let mut run = Run::start(config, plan, resumed, on_event)?;
    run.steps(cancel, on_event)?;
    run.finish(started)
}

/// A response's summed log-probability and its tokens (the response and the end of turn).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResponseLogp {
    pub logp: f64,
    pub tokens: usize,
}

/// The summed log-probabilities of each pair's chosen and rejected response under the model
/// with `config.init` (or the base alone), as a preference run's reference sees them: each
/// response after its prompt, as if alone in its window.
pub fn pair_logps(
    config: &TrainConfig,
    pairs: &[crate::dataset::build::PreferencePair],
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<Vec<[ResponseLogp; 2]>, TrainError> {
    let mut config = config.clone();
    config.eval_fraction = 0.0;
    config.checkpoint = None;
    config.resume = false;
    if config.objective.preference().is_none() {
        config.objective = Objective::Dpo(Default::default());
    }
    let plan = Plan::make(&config, Examples::Pairs(pairs), on_event)?;
    let run = Run::start(&config, plan, None, on_event)?;
    let none = ResponseLogp {
        logp: f64::NAN,
        tokens: 0,
    };
    let mut out = vec![[none; 2]; pairs.len()];
    for (w, logps) in run.plan.windows.iter().zip(&run.references) {
        let tokens = span_tokens(w);
        let at = |i: usize| ResponseLogp {
            logp: logps[i],
            tokens: tokens[i],
        };
        for (k, &g) in w.groups.iter().enumerate() {
            out[run.plan.train_idx[g]] = [at(2 * k), at(2 * k + 1)];
        }
    }
    Ok(out)
}

/// What a run trains on, for how long, and what identifies it.
struct Plan {
    base_sha256: String,
    dataset_sha256: String,
    rows: usize,
    /// Tokens of all rows.
    tokens: usize,
    eval_rows: usize,
    /// The examples trained on (the rest are held out), as `pack` numbered them.
    train_idx: Vec<usize>,
    /// The context of every window: the configured one, or the smallest that fits.
    n_ctx: u32,
    windows: Vec<data::Window>,
    eval_windows: Vec<data::Window>,
    /// Tokens the loss is on, in one epoch.
    loss_tokens: usize,
    per_epoch: u64,
    total: u64,
    warmup: u64,
    /// A checkpoint resumes only the run with the same fingerprint.
    fingerprint: String,
}

impl Plan {
    /// Checks the settings, hashes the base model and the rows, tokenizes the rows, splits off
    /// the held-out rows and packs both parts into windows.
    fn make(
        config: &TrainConfig,
        examples: Examples,
        on_event: &mut dyn FnMut(TrainEvent),
    ) -> Result<Plan, TrainError> {
        check_config(config)?;
        match (examples, config.objective) {
            (Examples::Rows(_), Objective::Dpo(_)) => {
                return Err(TrainError::Config(
                    "preference training (dpo) trains on pairs of a chosen and a rejected response (`leap export --format dpo`), not on rows".into(),
                ));
            }
            (Examples::Pairs(_), Objective::Sft) => {
                return Err(TrainError::Config(
                    "these are preference pairs: supervised training (sft) trains on rows".into(),
                ));
            }
            _ => {}
        }
        if examples.is_empty() {
            return Err(TrainError::Empty);
        }
        let model = &config.model;
        // The checks a rollout's load makes: llama.cpp aborts on what they refuse.
        crate::model::llama_log::install();
        crate::model::check_file(model).map_err(|e| TrainError::model(model, e))?;
        on_event(TrainEvent::Status("hashing the base model".into()));
        let base_sha256 =
            crate::model::fetch::sha256_file(model).map_err(|e| TrainError::model(model, e))?;
        let dataset_sha256 = match &config.dataset_sha256 {
            Some(h) => h.clone(),
            None => examples.sha256(),
        };

        on_event(TrainEvent::Status("tokenizing".into()));
        let chat = data::ChatText::load(model)?;
        // Each group is packed whole in one window: a row, or a pair's two sides.
        let (groups, metas): (Vec<Vec<data::Sample>>, Vec<Option<&RowMeta>>) = match examples {
            Examples::Rows(rows) => {
                let groups = rows
                    .iter()
                    .enumerate()
                    .map(|(i, row)| chat.encode(i + 1, row).map(|s| vec![s]))
                    .collect::<Result<_, _>>()?;
                (groups, rows.iter().map(|r| r.meta.as_ref()).collect())
            }
            Examples::Pairs(pairs) => {
                let groups = pairs
                    .iter()
                    .enumerate()
                    .map(|(i, pair)| chat.encode_pair(i + 1, pair).map(Vec::from))
                    .collect::<Result<_, _>>()?;
                (groups, pairs.iter().map(|p| Some(&p.meta)).collect())
            }
        };
        let lens: Vec<usize> = groups
            .iter()
            .map(|g| g.iter().map(|s| s.tokens.len()).sum())
            .collect();
        // The positions a group takes in a window: under tree packing a pair's two sides
        // share their prompt.
        let spans: Vec<usize> = match config.pack {
            Pack::Tree => groups.iter().map(|g| data::tree_len(g)).collect(),
            Pack::Flat => lens.clone(),
        };
        let n_ctx = match config.n_ctx {
            0 => auto_context(&spans),
            n => n,
        };
        if let Some((g, &len)) = groups
            .iter()
            .zip(&spans)
            .find(|(_, l)| **l > n_ctx as usize)
        {
            return Err(TrainError::RowTooLong {
                row: g[0].row,
                tokens: len,
                ctx: n_ctx,
                pair: g.len() == 2,
            });
        }
        let tokens: usize = lens.iter().sum();
        let (train_idx, eval_idx) = data::split_by_meta(&metas, config.eval_fraction, config.seed);
        let preference = config.objective.preference().is_some();
        // A preference pair is learnt on its responses, each side as if alone.
        let loss_on = if preference {
            LossOn::Response
        } else {
            config.loss_on
        };
        let pad = chat.pad_token();
        let pack = |idx: &[usize]| {
            let picked: Vec<&[data::Sample]> = idx.iter().map(|&i| groups[i].as_slice()).collect();
            match config.pack {
                Pack::Tree => data::pack_tree(&picked, n_ctx as usize, pad, config.seed),
                Pack::Flat => data::pack_groups(
                    &picked,
                    n_ctx as usize,
                    pad,
                    loss_on,
                    preference,
                    config.seed,
                ),
            }
        };
        let windows = pack(&train_idx);
        let eval_windows = pack(&eval_idx);
        drop(chat);
        let loss_tokens: usize = windows.iter().map(|w| w.n_loss).sum();
        if loss_tokens == 0 {
            return Err(TrainError::Empty);
        }
        let per_epoch = windows.len() as u64;
        let total = per_epoch * u64::from(config.epochs);
        let warmup = (total as f32 * config.warmup).round() as u64;

        let init_sha256 = match &config.init {
            Some(path) => Some(
                crate::model::fetch::sha256_file(path).map_err(|e| AdapterError::file(path, e))?,
            ),
            None => None,
        };
        let fingerprint = fingerprint(
            config,
            n_ctx,
            &base_sha256,
            &dataset_sha256,
            init_sha256.as_deref(),
        );
        Ok(Plan {
            base_sha256,
            dataset_sha256,
            rows: examples.len(),
            tokens,
            eval_rows: eval_idx.len(),
            train_idx,
            n_ctx,
            windows,
            eval_windows,
            loss_tokens,
            per_epoch,
            total,
            warmup,
            fingerprint,
        })
    }
}

/// The checkpoint to resume from: the configured one when resuming and it exists, and only if
/// it is of this run.
fn resume(config: &TrainConfig, fingerprint: &str) -> Result<Option<Checkpoint>, TrainError> {
    match (&config.checkpoint, config.resume) {
        (Some(path), true) if path.exists() => {
            let ckpt = Checkpoint::read(path)?;
            if ckpt.fingerprint != fingerprint {
                return Err(TrainError::Checkpoint {
                    path: path.clone(),
                    what: "it is from another run (data, base or settings differ); delete it or train afresh".into(),
                });
            }
            Ok(Some(ckpt))
        }
        _ => Ok(None),
    }
}

/// A run under way: the weights loaded, the adapter training, the curves so far.
struct Run<'a> {
    config: &'a TrainConfig,
    plan: Plan,
    base: Base,
    adapter: Adapter,
    session: Session,
    start_step: u64,
    /// Loss of every step done (resumed ones included).
    losses: Vec<f64>,
    /// (step, held-out loss) of every evaluation done.
    evals: Vec<(u64, f64)>,
    /// Seconds in training steps and steps done by this process, for tokens per second.
    train_s: f64,
    done_here: u64,
    /// A preference run's reference log-probabilities, per window (training, then held-out
    /// ones) and response.
    references: Vec<Vec<f64>>,
    /// A preference run: the share of held-out pairs preferred, at the last evaluation.
    preferred: Option<f64>,
}

/// AdamW with the run's settings at learning rate `lr`.
fn adamw(config: &TrainConfig, lr: f32) -> AdamW {
    AdamW {
        lr,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: config.weight_decay,
    }
}

impl<'a> Run<'a> {
    /// Chooses the weights to train on, makes the adapter (from the checkpoint, else fresh or
    /// warm-started) and loads both with the optimizer's state.
    fn start(
        config: &'a TrainConfig,
        plan: Plan,
        resumed: Option<Checkpoint>,
        on_event: &mut dyn FnMut(TrainEvent),
    ) -> Result<Run<'a>, TrainError> {
        let model = &config.model;
        let threads = config
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            as i32;
        on_event(TrainEvent::Status(
            "choosing the weights to train on".into(),
        ));
        let base = prepare::choose(
            model,
            &plan.base_sha256,
            config.base,
            plan.n_ctx,
            config.gpu_layers,
            config.matmul,
            threads,
        )?;
        let adapter = match &resumed {
            Some(ckpt) => ckpt.adapter.clone(),
            None => {
                let file =
                    crate::model::GgufFile::open(model).map_err(|e| TrainError::model(model, e))?;
                let fresh = Adapter::init(&file, &config.lora, config.seed)?;
                match &config.init {
                    Some(path) => warm_start(path, fresh, &plan.base_sha256)?,
                    None => fresh,
                }
            }
        };
        on_event(TrainEvent::Status(format!(
            "loading {}",
            base.path.display()
        )));
        let session_config = SessionConfig {
            n_ctx: plan.n_ctx,
            threads,
            gpu_layers: config.gpu_layers,
            profile: config.profile,
            matmul: config.matmul,
            dense_head: config.dense_head,
            dense_attention: config.dense_attention,
        };
        let mut session = Session::new(
            &base.path,
            &adapter,
            &session_config,
            adamw(config, config.lr),
        )?;
        session.keep_gradients = config.gradients.is_some();
        let (start_step, losses, evals) = match &resumed {
            Some(ckpt) => {
                session.restore_moments(&ckpt.moments);
                let losses = ckpt.losses.iter().map(|&l| f64::from(l)).collect();
                let evals = ckpt.evals.iter().map(|&(s, l)| (s, f64::from(l))).collect();
                (ckpt.step, losses, evals)
            }
            None => (0, Vec::new(), Vec::new()),
        };
        let references = if config.objective.preference().is_none() {
            Vec::new()
        } else {
            match &resumed {
                // The adapter has moved since: the reference is what the run started from.
                Some(ckpt) => {
                    unflatten(&plan, &ckpt.references).ok_or_else(|| TrainError::Checkpoint {
                        path: config.checkpoint.clone().unwrap_or_default(),
                        what: "it holds no reference log-probabilities for these pairs".into(),
                    })?
                }
                None => {
                    on_event(TrainEvent::Status(format!(
                        "the reference's log-probabilities of {} pairs",
                        plan.rows
                    )));
                    let all = plan.windows.iter().chain(&plan.eval_windows);
                    all.map(|w| session.span_logps(w))
                        .collect::<Result<Vec<_>, _>>()?
                }
            }
        };
        on_event(TrainEvent::Started {
            n_ctx: plan.n_ctx,
            rows: plan.rows,
            train_rows: plan.train_idx.len(),
            eval_rows: plan.eval_rows,
            tokens: plan.tokens,
            windows: plan.windows.len(),
            steps: plan.total,
            start_step,
            parameters: adapter.parameters(),
            base: base.clone(),
        });
        Ok(Run {
            config,
            plan,
            base,
            adapter,
            session,
            start_step,
            losses,
            evals,
            train_s: 0.0,
            done_here: 0,
            references,
            preferred: None,
        })
    }

    /// The steps from where the run starts to the last: each epoch in its own shuffled order,
    /// the held-out loss at each epoch's end and every `eval_every` steps, a checkpoint every
    /// `checkpoint_every` steps and when stopped (cancelled, or `stop_after`).
    fn steps(
        &mut self,
        cancel: &AtomicBool,
        on_event: &mut dyn FnMut(TrainEvent),
    ) -> Result<(), TrainError> {
        let (config, total, per_epoch) = (self.config, self.plan.total, self.plan.per_epoch);
        let mut order: Vec<usize> = Vec::new();
        let mut order_epoch = None;
        for step in self.start_step..total {
            if cancel.load(Ordering::Relaxed) {
                self.checkpoint(step, on_event)?;
                return Err(TrainError::Cancelled { step });
            }
            let epoch = step / per_epoch;
            if order_epoch != Some(epoch) {
                order = (0..self.plan.windows.len()).collect();
                order.shuffle(&mut ChaCha8Rng::seed_from_u64(config.seed ^ (epoch + 1)));
                order_epoch = Some(epoch);
            }
            self.train_step(step, order[(step % per_epoch) as usize], on_event)?;
            let done = step + 1;
            let epoch_end = done % per_epoch == 0;
            let periodic = config.eval_every > 0 && done % config.eval_every == 0;
            if (epoch_end || periodic)
                && let Some(loss) = self.evaluate()?
            {
                self.evals.push((done, loss));
                on_event(TrainEvent::Eval { step: done, loss });
            }
            let stop = config.stop_after == Some(done);
            let due = config.checkpoint_every > 0 && done % config.checkpoint_every == 0;
            if (stop || due) && done < total {
                self.checkpoint(done, on_event)?;
            }
            if stop && done < total {
                return Err(TrainError::Cancelled { step: done });
            }
        }
        Ok(())
    }

    /// Step `step` (0-based) on window `window`, reported with the speed so far.
    fn train_step(
        &mut self,
        step: u64,
        window: usize,
        on_event: &mut dyn FnMut(TrainEvent),
    ) -> Result<(), TrainError> {
        let (config, plan) = (self.config, &self.plan);
        let w = &plan.windows[window];
        let lr = schedule::learning_rate(step, plan.total, plan.warmup, config.lr);
        // What the step starts from, for checking it elsewhere (`TrainConfig::gradients`).
        let before = config.gradients.as_ref().map(|_| {
            let mut weights = self.adapter.clone();
            self.session.read_weights(&mut weights);
            weights
        });
        let t0 = Instant::now();
        let loss = match config.objective.preference() {
            None => self.session.train_step(w, step + 1, adamw(config, lr))?,
            Some(&p) => {
                let (reference, tokens) = (self.references[window].clone(), span_tokens(w));
                let loss: SpanLoss = Box::new(move |policy| {
                    let sums = PairSums {
                        policy,
                        reference: &reference,
                        tokens: &tokens,
                    };
                    let out = pair_loss(&p, sums);
                    (out.loss, out.grads)
                });
                self.session
                    .span_step(w, loss, step + 1, adamw(config, lr))?
            }
        };
        self.train_s += t0.elapsed().as_secs_f64();
        self.done_here += 1;
        if let (Some(dir), Some(before)) = (&config.gradients, before) {
            self.write_step(dir, step + 1, window, before, loss)?;
        }
        self.losses.push(loss);
        let left = plan.total - step - 1;
        on_event(TrainEvent::Step(StepProgress {
            step: step + 1,
            steps: plan.total,
            epoch: (step / plan.per_epoch) as u32 + 1,
            epochs: config.epochs,
            loss,
            lr,
            tokens_per_s: self.tokens_per_s(),
            eta_s: left as f64 * self.train_s / self.done_here as f64,
        }));
        Ok(())
    }

    /// Step `step` as another implementation needs it to check it: the weights it started from
    /// (`step-N.weights.gguf`), its gradients (`step-N.gguf`, A and B holding dL/dA and dL/dB)
    /// and its window, loss and reference log-probabilities (`step-N.json`).
    fn write_step(
        &self,
        dir: &Path,
        step: u64,
        window: usize,
        before: Adapter,
        loss: f64,
    ) -> Result<(), TrainError> {
        let io = |source| TrainError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        before.write(&dir.join(format!("step-{step}.weights.gguf")))?;
        let mut grads = self.adapter.clone();
        self.session.read_gradients(&mut grads);
        grads.write(&dir.join(format!("step-{step}.gguf")))?;
        let w = &self.plan.windows[window];
        let record = serde_json::json!({
            "step": step,
            "loss": loss,
            "objective": self.config.objective,
            "loss_on": self.config.loss_on,
            "tokens": w.tokens,
            "labels": w.labels,
            "masked": w.masked,
            "spans": w.spans,
            "documents": w.documents,
            "parents": w.parents,
            "references": self.references.get(window),
        });
        std::fs::write(dir.join(format!("step-{step}.json")), record.to_string()).map_err(io)
    }

    /// Training tokens per second in this process (0 before its first step).
    fn tokens_per_s(&self) -> f64 {
        (self.done_here * u64::from(self.plan.n_ctx)) as f64 / self.train_s.max(1e-9)
    }

    /// The held-out loss: per loss token, or per pair for a preference run; none without
    /// held-out windows.
    fn evaluate(&mut self) -> Result<Option<f64>, TrainError> {
        if self.plan.eval_windows.is_empty() {
            return Ok(None);
        }
        let (mut sum, mut n, mut preferred) = (0.0, 0usize, 0usize);
        let first = self.plan.windows.len();
        for (i, w) in self.plan.eval_windows.iter().enumerate() {
            match self.config.objective.preference() {
                None => {
                    sum += self.session.eval(w)? * w.n_loss as f64;
                    n += w.n_loss;
                }
                Some(p) => {
                    let policy = self.session.span_logps(w)?;
                    let sums = PairSums {
                        policy: &policy,
                        reference: &self.references[first + i],
                        tokens: &span_tokens(w),
                    };
                    let out = pair_loss(p, sums);
                    let pairs = w.spans.len() / 2;
                    sum += out.loss * pairs as f64;
                    n += pairs;
                    preferred += out.preferred;
                }
            }
        }
        if self.config.objective.preference().is_some() && n > 0 {
            self.preferred = Some(preferred as f64 / n as f64);
        }
        Ok((n > 0).then(|| sum / n as f64))
    }

    /// Writes the checkpoint, when the run has one, as of `step` steps done, and reports it.
    fn checkpoint(
        &mut self,
        step: u64,
        on_event: &mut dyn FnMut(TrainEvent),
    ) -> Result<(), TrainError> {
        let Some(path) = &self.config.checkpoint else {
            return Ok(());
        };
        self.session.read_weights(&mut self.adapter);
        if let Some((tensor, value)) = self.adapter.unsound_weight() {
            return Err(TrainError::DivergedWeights { tensor, value });
        }
        let ckpt = Checkpoint {
            adapter: self.adapter.clone(),
            moments: self.session.read_moments(),
            step,
            fingerprint: self.plan.fingerprint.clone(),
            losses: self.losses.iter().map(|&l| l as f32).collect(),
            evals: self.evals.iter().map(|&(s, l)| (s, l as f32)).collect(),
            references: self.references.concat(),
        };
        create_parent(path)?;
        ckpt.write(path)?;
        on_event(TrainEvent::Checkpoint {
            step,
            path: path.clone(),
        });
        Ok(())
    }

    /// Writes the trained adapter with what made it and how it went, removes the checkpoint it
    /// supersedes, and sums the run up.
    fn finish(mut self, started: Instant) -> Result<TrainSummary, TrainError> {
        let config = self.config;
        self.session.read_weights(&mut self.adapter);
        let op_times = self.session.op_times();
        let peak_memory = self.session.peak_memory();
        drop(self.session);
        let plan = self.plan;
        let losses = self.losses;
        let k = (losses.len() / 10).clamp(1, 10);
        let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
        let train_loss_first = mean(&losses[..k.min(losses.len())]);
        let train_loss_last = mean(&losses[losses.len().saturating_sub(k)..]);
        let eval_loss = self.evals.last().map(|&(_, l)| l);
        let mut adapter = self.adapter;
        adapter.meta = AdapterMeta {
            base_sha256: plan.base_sha256,
            base_name: config
                .model
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            dataset_sha256: Some(plan.dataset_sha256),
            rows: Some(plan.rows as u64),
            iteration: config.iteration,
            steps: Some(plan.total),
            epochs: Some(config.epochs),
            train_loss_first: Some(train_loss_first as f32),
            train_loss_last: Some(train_loss_last as f32),
            eval_loss: eval_loss.map(|l| l as f32),
            loss_on: Some(config.loss_on.as_str().to_owned()),
            objective: Some(config.objective.name().to_owned()),
            preference_loss: config
                .objective
                .preference()
                .map(|p| p.loss.as_str().to_owned()),
            beta: config.objective.preference().map(|p| p.beta as f32),
            sft_weight: config.objective.preference().map(|p| p.sft_weight as f32),
        };
        if let Some((tensor, value)) = adapter.unsound_weight() {
            return Err(TrainError::DivergedWeights { tensor, value });
        }
        create_parent(&config.out)?;
        adapter.write(&config.out)?;
        if let Some(path) = &config.checkpoint {
            // The adapter supersedes it.
            let _ = std::fs::remove_file(path);
        }
        let n_ctx = plan.n_ctx as usize;
        let real: usize = plan.windows.iter().map(|w| w.n_real).sum();
        Ok(TrainSummary {
            adapter: config.out.clone(),
            rows: plan.rows,
            tokens: plan.tokens,
            epochs: config.epochs,
            train_loss_first,
            train_loss_last,
            eval_loss,
            tokens_per_s: if self.train_s > 0.0 {
                (self.done_here * n_ctx as u64) as f64 / self.train_s
            } else {
                0.0
            },
            peak_rss_mb: memory::peak_rss_bytes().map(|b| b as f64 / (1u64 << 20) as f64),
            steps: plan.total,
            n_ctx: plan.n_ctx,
            train_rows: plan.train_idx.len(),
            eval_rows: plan.eval_rows,
            loss_tokens: plan.loss_tokens,
            packing: real as f64 / (plan.windows.len() * n_ctx) as f64,
            trainable_parameters: adapter.parameters(),
            base: self.base,
            matmul: config.matmul.resolved(),
            loss_on: config.loss_on,
            pack: config.pack,
            init: config.init.clone(),
            objective: config.objective,
            preferred: self.preferred,
            lora: config.lora.clone(),
            lr: config.lr,
            warmup: config.warmup,
            weight_decay: config.weight_decay,
            seed: config.seed,
            seconds: started.elapsed().as_secs_f64(),
            losses,
            eval_losses: self.evals,
            op_times,
            peak_memory,
        })
    }
}

/// Creates the folder `path` goes in, if it names one.
fn create_parent(path: &Path) -> Result<(), TrainError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| TrainError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(())
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
    // A preference run learns its responses only, whatever `loss_on` says.
    let every_token = config.loss_on == LossOn::All && config.objective.preference().is_none();
    if config.pack == Pack::Tree && every_token {
        return bad(
            "tree packing learns responses only: a shared prompt token has one label, so the \
             loss on every token needs flat packing",
        );
    }
    if let Some(p) = config.objective.preference() {
        if !(p.beta > 0.0 && p.beta.is_finite()) {
            return bad("the preference beta must be positive");
        }
        if !(p.sft_weight >= 0.0 && p.sft_weight.is_finite()) {
            return bad("the SFT weight must be 0 or more");
        }
    }
    Ok(())
}

/// The tokens of each span of a window (a preference run: each response).
fn span_tokens(w: &data::Window) -> Vec<usize> {
    w.spans.iter().map(|(a, b)| b - a).collect()
}

/// A checkpoint's reference log-probabilities, per window of the plan; none when they do not
/// fit its windows.
fn unflatten(plan: &Plan, flat: &[f64]) -> Option<Vec<Vec<f64>>> {
    let mut at = 0;
    let mut out = Vec::new();
    for w in plan.windows.iter().chain(&plan.eval_windows) {
        out.push(flat.get(at..at + w.spans.len())?.to_vec());
        at += w.spans.len();
    }
    (at == flat.len()).then_some(out)
}

/// The smallest multiple of 256 that holds the longest group (a row, or a pair's two sides)
/// and two groups of median length.
fn auto_context(lens: &[usize]) -> u32 {
    let mut lens = lens.to_vec();
    lens.sort_unstable();
    let longest = lens.last().copied().unwrap_or(1);
    let median = lens.get(lens.len() / 2).copied().unwrap_or(1);
    (longest.max(2 * median).div_ceil(256) * 256) as u32
}

/// The adapter at `path` as the starting point of a run whose fresh adapter would be `fresh`:
/// the same base model, rank and adapted weights, or an error that says which differs.
fn warm_start(path: &Path, fresh: Adapter, base_sha256: &str) -> Result<Adapter, TrainError> {
    let mut start = Adapter::read(path)?;
    let bad = |what: String| Err(AdapterError::file(path, what).into());
    if let Some((tensor, value)) = start.unsound_weight() {
        return bad(format!("{tensor} holds {value}, not a trained weight"));
    }
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
    // starts another run), and only a preference run its objective, so that older checkpoints
    // still resume.
    let key = match init_sha256 {
        Some(init) => serde_json::json!({ "run": key, "init": init }),
        None => key,
    };
    let key = match config.objective {
        Objective::Sft => key,
        objective => serde_json::json!({ "run": key, "objective": objective }),
    };
    let key = match config.pack {
        Pack::Flat => key,
        pack => serde_json::json!({ "run": key, "pack": pack }),
    };
    format!("{:x}", Sha256::digest(key.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chosen_context_holds_the_longest_row_and_two_median_ones() {
        assert_eq!(auto_context(&[237, 400, 436, 450, 703]), 1024);
        assert_eq!(auto_context(&[100]), 256);
        assert_eq!(auto_context(&[100, 100, 900]), 1024);
    }
}
