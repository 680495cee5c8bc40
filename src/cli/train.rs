//! `leap train`: a LoRA adapter for one iteration, from its dataset, recorded in the run.

use super::print::{out, outln};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use leap::run::RunDir;
use leap::store;
use leap::train::record::{AdapterJob, TrainOptions, already_trained, train_and_record};
use leap::train::{
    BaseChoice, LoraSpec, LossOn, Matmul, Objective, Pack, Preference, PreferenceLoss, Target,
};

use super::progress::Bars;
use super::text::{train_json, train_text};

#[derive(clap::Args)]
pub struct Args {
    /// Run folder: the adapter goes to DIR/adapters/iter-N.gguf and into DIR/leap.db.
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    /// The iteration: its dataset is DIR/datasets/iter-N.jsonl (`leap dataset build`).
    #[arg(long, default_value_t = 0)]
    iter: u32,
    /// Train on this JSONL file instead of the iteration's dataset.
    #[arg(long, value_name = "FILE.jsonl")]
    data: Option<PathBuf>,
    /// GGUF base model (default: the run's model, else $LEAP_MODEL or the cached
    /// SmolLM2-135M-Instruct).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Weights to train on: auto is the base as it is on the CPU (leap's products convert its
    /// rows as they go) and, with `--matmul ggml` or on a GPU, an F32 copy of it when that fits
    /// in memory; f32 always the copy; quantized always the base as it is.
    #[arg(long, value_enum, default_value = "auto")]
    base: BaseArg,
    #[arg(long, default_value_t = 2)]
    epochs: u32,
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    rank: u32,
    /// LoRA alpha: the update is scaled by alpha / rank.
    #[arg(long, default_value_t = 16.0)]
    alpha: f32,
    /// Peak learning rate (warmup, then cosine decay).
    #[arg(long, default_value_t = 2e-4, value_parser = learning_rate)]
    lr: f32,
    /// Tokens per training window, a multiple of 256; every row must fit in one [default: the
    /// smallest that holds the longest row and two median rows].
    #[arg(long)]
    ctx: Option<u32>,
    /// Projections to adapt: any of q,k,v,o,gate,up,down, or all.
    #[arg(long, default_value = "all")]
    targets: String,
    /// Learn every token of a row, not only the response.
    #[arg(long)]
    all_tokens: bool,
    /// Share of the rows held out for the eval loss.
    #[arg(long, default_value_t = 0.05)]
    eval_fraction: f32,
    /// Steps between checkpoints (DIR/adapters/iter-N.ckpt.gguf); a rerun resumes from one.
    #[arg(long, default_value_t = 50)]
    checkpoint_every: u64,
    /// Start from this adapter's weights (same base, rank and targets) instead of a fresh
    /// initialisation: a student trained further on new labels.
    #[arg(long, value_name = "ADAPTER.gguf")]
    init: Option<PathBuf>,
    /// Ignore an existing checkpoint and start afresh.
    #[arg(long)]
    fresh: bool,
    /// Train again when the adapter is already trained (it is overwritten); without it, a
    /// rerun after training finished says where the adapter is and trains nothing.
    #[arg(long)]
    force: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// CPU threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Layers offloaded to the GPU (builds with the `cuda` or `metal` feature).
    #[arg(long, default_value_t = 0)]
    gpu_layers: u32,
    /// Time every ggml operation and print where the time went (slower).
    #[arg(long)]
    profile: bool,
    /// Compute the output projection and the loss at every position, as ggml does, rather than
    /// at the positions in the loss alone: the reference, for checking and timing (slower).
    #[arg(long, hide = true)]
    dense_head: bool,
    /// Compute attention's products over every pair of positions, as ggml does, rather than
    /// skipping the pairs the causal mask hides: the reference, for checking and timing.
    #[arg(long, hide = true)]
    dense_attention: bool,
    /// Who computes the large matrix products on the CPU. A BF16 kernel the CPU lacks falls back
    /// to the next: `amx`, then `avx512-bf16`, then `blas`.
    #[arg(long, value_enum, default_value = "bf16")]
    matmul: Matmul,
    /// How rows share a training window: flat, one after the other; tree, their common starts
    /// stored once and each row seeing only its own tokens (responses only; fewer positions).
    #[arg(long, value_enum, default_value = "flat")]
    pack: Pack,
    /// sft: learn the rows' responses; dpo: prefer each pair's chosen response (the teacher's
    /// step) over its rejected one (the student's), from the pairs file (default
    /// DIR/datasets/iter-N.pairs.jsonl, `leap export --format dpo`). The reference policy is the
    /// adapter training starts from (--init), else the base model.
    #[arg(long, value_enum, default_value = "sft")]
    objective: UpdateArg,
    #[command(flatten)]
    preference: PreferenceArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// The preference update's settings (`--objective dpo`, `leap iterate --update dpo`).
#[derive(clap::Args, Clone, Debug)]
pub struct PreferenceArgs {
    /// dpo: how far the policy may move from the reference (the LEAP paper: 0.01).
    #[arg(long, default_value_t = 0.01)]
    beta: f64,
    /// dpo: sigmoid (DPO's loss) or ipo (a squared loss on per-token log-ratios).
    #[arg(long, value_enum, default_value = "sigmoid")]
    preference_loss: PreferenceLossArg,
    /// dpo: weight of an SFT term on the chosen responses (RPO; 0: none).
    #[arg(long, default_value_t = 0.0)]
    sft_weight: f64,
}

/// What an adapter learns: supervised fine-tuning, or the LEAP paper's preference update.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum UpdateArg {
    Sft,
    Dpo,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum PreferenceLossArg {
    Sigmoid,
    Ipo,
}

impl PreferenceArgs {
    pub fn objective(&self, update: UpdateArg) -> anyhow::Result<Objective> {
        Ok(match update {
            UpdateArg::Sft => Objective::Sft,
            UpdateArg::Dpo => {
                if !(self.beta > 0.0 && self.beta.is_finite()) {
                    anyhow::bail!("--beta {}: expected a finite number above 0", self.beta);
                }
                if !(self.sft_weight >= 0.0 && self.sft_weight.is_finite()) {
                    anyhow::bail!(
                        "--sft-weight {}: expected a finite number, 0 or more",
                        self.sft_weight
                    );
                }
                Objective::Dpo(Preference {
                    loss: match self.preference_loss {
                        PreferenceLossArg::Sigmoid => PreferenceLoss::Sigmoid,
                        PreferenceLossArg::Ipo => PreferenceLoss::Ipo,
                    },
                    beta: self.beta,
                    sft_weight: self.sft_weight,
                })
            }
        })
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BaseArg {
    Auto,
    F32,
    Quantized,
}

impl Args {
    fn job(&self, model: PathBuf) -> anyhow::Result<AdapterJob> {
        let train = TrainOptions {
            base: match self.base {
                BaseArg::Auto => BaseChoice::Auto,
                BaseArg::F32 => BaseChoice::F32,
                BaseArg::Quantized => BaseChoice::Quantized,
            },
            lora: LoraSpec {
                rank: self.rank,
                alpha: self.alpha,
                targets: Target::parse_list(&self.targets).map_err(anyhow::Error::msg)?,
            },
            epochs: self.epochs,
            lr: self.lr,
            ctx: self.ctx.unwrap_or(0),
            loss_on: if self.all_tokens {
                LossOn::All
            } else {
                LossOn::Response
            },
            eval_fraction: self.eval_fraction,
            checkpoint_every: self.checkpoint_every,
            fresh: self.fresh,
            seed: self.seed,
            threads: self.threads,
            gpu_layers: self.gpu_layers,
            profile: self.profile,
            dense_head: self.dense_head,
            dense_attention: self.dense_attention,
            matmul: self.matmul,
            pack: self.pack,
            objective: self.preference.objective(self.objective)?,
        };
        Ok(AdapterJob {
            data: self.data.clone(),
            init: self.init.clone(),
            train,
            ..AdapterJob::new(model, self.iter)
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Open the store first: a bad run folder should fail before minutes of training.
    let run = RunDir::new(&args.run);
    let mut store = run.open()?;
    let model = run.model(&store, args.model.as_deref())?;
    let job = args.job(model)?;
    if !args.force
        && let Some(done) = already_trained(&run, &store, &job)?
    {
        if args.json {
            let done = serde_json::json!({
                "adapter": done.path,
                "adapter_id": done.id,
                "already_trained": true,
            });
            outln!("{}", serde_json::to_string_pretty(&done)?);
        } else {
            outln!(
                "already trained: {} (adapter #{}); nothing to do (--force trains it again)",
                done.path,
                done.id
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut bars = Bars::default();
    bars.quiet = args.json;
    let cancel = AtomicBool::new(false);
    let trained = train_and_record(&run, &mut store, &job, &cancel, &mut |e| bars.train(e))?;
    bars.finish();
    let summary = trained.summary;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&train_json(&summary))?);
    } else {
        out!("{}", train_text(&summary));
    }
    Ok(ExitCode::SUCCESS)
}

/// A learning rate: a finite number above 0.
pub(crate) fn learning_rate(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(lr) if lr.is_finite() && lr > 0.0 => Ok(lr),
        _ => Err(format!(
            "{text:?}: expected a learning rate, a finite number above 0"
        )),
    }
}
