//! `leap train`: a LoRA adapter for one iteration, from its dataset, recorded in the run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use leap::dataset::build::dataset_path;
use leap::store::{self, Store};
use leap::train::{self, BaseChoice, LoraSpec, LossOn, Target, TrainConfig, TrainEvent};

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
    /// GGUF base model (default: $LEAP_MODEL or the cached SmolLM2-135M-Instruct).
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
    #[arg(long, default_value_t = 2e-4)]
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
    /// Who computes the large matrix products on the CPU: `bf16`, mixed precision on AMX tiles
    /// (Intel Xeon since Sapphire Rapids; elsewhere the same as `blas`); `blas`, F32 through the
    /// system BLAS; or `ggml`, ggml's own F32 kernels (several times slower; for comparison).
    #[arg(long, value_enum, default_value = "bf16")]
    matmul: MatmulArg,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BaseArg {
    Auto,
    F32,
    Quantized,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    train_iteration(args, true)
}

/// Trains and records the adapter; prints the summary on stdout only when `print` (the loop
/// of `leap iterate` keeps stdout for its own report).
pub fn train_iteration(args: Args, print: bool) -> anyhow::Result<ExitCode> {
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| dataset_path(&args.run, args.iter));
    if !data.is_file() {
        bail!(
            "{}: no dataset here; build it with `leap dataset build --run {} --iter {}` or pass --data FILE.jsonl",
            data.display(),
            args.run.display(),
            args.iter
        );
    }
    let rows = leap::dataset::read_jsonl(&data)?;
    let data_sha256 = leap::model::fetch::sha256_file(&data)?;
    let model = args
        .model
        .clone()
        .unwrap_or_else(leap::model::default_model_path);
    let adapters = args.run.join("adapters");
    let out = adapters.join(format!("iter-{}.gguf", args.iter));
    let mut config = TrainConfig::new(&model, &out);
    config.base = match args.base {
        BaseArg::Auto => BaseChoice::Auto,
        BaseArg::F32 => BaseChoice::F32,
        BaseArg::Quantized => BaseChoice::Quantized,
    };
    config.lora = LoraSpec {
        rank: args.rank,
        alpha: args.alpha,
        targets: Target::parse_list(&args.targets).map_err(anyhow::Error::msg)?,
    };
    config.epochs = args.epochs;
    config.lr = args.lr;
    config.n_ctx = args.ctx.unwrap_or(0);
    config.loss_on = if args.all_tokens {
        LossOn::All
    } else {
        LossOn::Response
    };
    config.eval_fraction = args.eval_fraction;
    config.seed = args.seed;
    config.threads = args.threads;
    config.gpu_layers = args.gpu_layers;
    config.iteration = Some(args.iter);
    config.dataset_sha256 = Some(data_sha256.clone());
    config.checkpoint = Some(adapters.join(format!("iter-{}.ckpt.gguf", args.iter)));
    config.checkpoint_every = args.checkpoint_every;
    config.resume = !args.fresh;
    config.profile = args.profile;
    config.init = args.init.clone();
    config.matmul = match args.matmul {
        MatmulArg::Bf16 => leap::train::Matmul::Bf16,
        MatmulArg::Blas => leap::train::Matmul::Blas,
        MatmulArg::Ggml => leap::train::Matmul::Ggml,
    };

    // Open the store first: a bad run folder should fail before minutes of training.
    let mut store = Store::open(&args.run)?;
    let job = train::spawn(config, rows);
    let bar = ProgressBar::new_spinner();
    let quiet = args.json;
    for event in job.events.iter() {
        match event {
            TrainEvent::Status(what) => bar.set_message(what),
            TrainEvent::Started {
                n_ctx,
                rows,
                train_rows,
                eval_rows,
                tokens,
                windows,
                steps,
                start_step,
                parameters,
                base,
            } => {
                if !quiet {
                    bar.println(format!(
                        "{rows} rows ({train_rows} train, {eval_rows} held out), {tokens} tokens in {windows} windows of {n_ctx}; {parameters} trainable parameters; training on {} ({}: {})",
                        base.path.display(),
                        base.kind,
                        base.reason
                    ));
                    if start_step > 0 {
                        bar.println(format!("resuming from the checkpoint at step {start_step}"));
                    }
                }
                bar.set_style(
                    ProgressStyle::with_template(
                        "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise}, eta {eta}]",
                    )
                    .expect("a valid template"),
                );
                bar.set_length(steps);
                bar.set_position(start_step);
            }
            TrainEvent::Step(p) => {
                // Without a terminal the bar is hidden: log about twenty lines instead.
                if bar.is_hidden() && !quiet && p.step % (p.steps / 20).max(1) == 0 {
                    eprintln!(
                        "step {}/{}  epoch {}/{}  loss {:.4}  lr {:.2e}  {:.0} tok/s  eta {:.0} s",
                        p.step, p.steps, p.epoch, p.epochs, p.loss, p.lr, p.tokens_per_s, p.eta_s
                    );
                }
                bar.set_position(p.step);
                bar.set_message(format!(
                    "epoch {}/{}  loss {:.4}  lr {:.2e}  {:.0} tok/s",
                    p.epoch, p.epochs, p.loss, p.lr, p.tokens_per_s
                ));
            }
            TrainEvent::Eval { step, loss } => {
                if !quiet {
                    bar.println(format!("step {step}: held-out loss {loss:.4}"));
                }
            }
            TrainEvent::Checkpoint { .. } => {}
        }
    }
    let summary = job.join().map_err(|e| match e {
        train::TrainError::Row { .. } | train::TrainError::RowTooLong { .. } => {
            anyhow::Error::new(e).context(format!("{}", data.display()))
        }
        e => anyhow::Error::new(e),
    })?;
    bar.finish_and_clear();

    let dataset_id = store
        .dataset(args.iter)?
        .filter(|d| d.hash == data_sha256)
        .map(|d| d.id);
    let record = serde_json::to_value(&summary)?;
    store
        .insert_adapter(
            Some(args.iter),
            &path_text(&summary.adapter),
            dataset_id,
            &path_text(&model),
            &record,
        )
        .with_context(|| format!("recording {}", summary.adapter.display()))?;

    if !print {
        return Ok(ExitCode::SUCCESS);
    }
    if args.json {
        let out = json!({
            "adapter": summary.adapter,
            "rows": summary.rows,
            "tokens": summary.tokens,
            "epochs": summary.epochs,
            "train_loss_first": summary.train_loss_first,
            "train_loss_last": summary.train_loss_last,
            "eval_loss": summary.eval_loss,
            "tokens_per_s": summary.tokens_per_s,
            "peak_rss_mb": summary.peak_rss_mb,
            "steps": summary.steps,
            "n_ctx": summary.n_ctx,
            "base": summary.base.kind,
            "matmul": summary.matmul,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{}: {} rows, {} tokens, {} epochs ({} steps of {} tokens, {:.0}% of them row tokens); loss {:.4} -> {:.4}{}; {:.0} tokens/s ({} products); peak memory {}",
            summary.adapter.display(),
            summary.rows,
            summary.tokens,
            summary.epochs,
            summary.steps,
            summary.n_ctx,
            summary.packing * 100.0,
            summary.train_loss_first,
            summary.train_loss_last,
            summary
                .eval_loss
                .map_or_else(String::new, |l| format!(", held-out {l:.4}")),
            summary.tokens_per_s,
            serde_json::to_value(summary.matmul)?
                .as_str()
                .unwrap_or_default(),
            summary
                .peak_rss_mb
                .map_or_else(|| "unknown".to_owned(), |m| format!("{m:.0} MB")),
        );
        if !summary.op_times.is_empty() {
            let total: f64 = summary.op_times.iter().map(|o| o.ms).sum();
            println!("time per ggml operation over {} steps:", summary.steps);
            for o in &summary.op_times {
                if o.ms / total < 0.005 {
                    continue;
                }
                println!(
                    "  {:<24} {:>7} calls {:>10.0} ms {:>5.1}%",
                    o.op,
                    o.calls,
                    o.ms,
                    100.0 * o.ms / total
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn path_text(p: &Path) -> String {
    p.display().to_string()
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MatmulArg {
    Bf16,
    Blas,
    Ggml,
}
