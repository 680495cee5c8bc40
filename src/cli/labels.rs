//! `leap labels` and `leap curate`: review the teacher's corrections, one label at a time or by
//! policy. Every decision is its own transaction: once the command says it is made, it is stored.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use serde::Serialize;

use leap::store::{self, Decision, Label, LabelCounts, LabelFilter, LabelStatus, Store};

#[derive(Subcommand)]
pub enum Command {
    /// List labels with counts per status.
    List(ListArgs),
    /// One label in full, with its history of decisions.
    Show(OneArgs),
    /// Accept labels: they become training rows as the teacher wrote them.
    Accept(ManyArgs),
    /// Reject labels: they are left out of training.
    Reject(ManyArgs),
    /// Keep a label with your own reason and action (the action must have been admissible).
    Edit(EditArgs),
    /// Undo the last decision about a label.
    Undo(OneArgs),
}

#[derive(Args)]
pub struct Filter {
    /// Only labels in this state.
    #[arg(long, value_parser = parse_status)]
    status: Option<LabelStatus>,
    /// Only labels with leak flags.
    #[arg(long)]
    leaks: bool,
    /// Only labels whose action differs from the student's.
    #[arg(long)]
    changed: bool,
    /// Only labels of this scenario.
    #[arg(long, value_name = "ID")]
    scenario: Option<String>,
    /// Only labels of episodes played by this iteration's student.
    #[arg(long)]
    iteration: Option<u32>,
    /// Only labels by this teacher (as listed, e.g. `oracle@0.5`).
    #[arg(long)]
    teacher: Option<String>,
}

impl Filter {
    fn to_filter(&self, limit: Option<u32>) -> LabelFilter {
        LabelFilter {
            status: self.status,
            changed: self.changed.then_some(true),
            leaking: self.leaks.then_some(true),
            scenario_id: self.scenario.clone(),
            iteration: self.iteration,
            teacher: self.teacher.clone(),
            limit,
            ..LabelFilter::default()
        }
    }
}

fn parse_status(s: &str) -> Result<LabelStatus, String> {
    s.parse()
}

#[derive(Args)]
pub struct ListArgs {
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    #[command(flatten)]
    filter: Filter,
    /// At most this many labels (the counts cover every match).
    #[arg(long)]
    limit: Option<u32>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct OneArgs {
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    id: i64,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ManyArgs {
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    /// Label ids.
    #[arg(required = true)]
    ids: Vec<i64>,
    /// Who decides (default: person:$USER).
    #[arg(long)]
    by: Option<String>,
}

#[derive(Args)]
pub struct EditArgs {
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    id: i64,
    #[arg(long)]
    reason: String,
    #[arg(long)]
    action: String,
    #[arg(long)]
    by: Option<String>,
}

fn person(by: &Option<String>) -> String {
    by.clone().unwrap_or_else(|| {
        format!(
            "person:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        )
    })
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::List(args) => {
            let store = Store::open_existing(&args.run)?;
            let labels = store.labels(&args.filter.to_filter(args.limit))?;
            let counts = store.label_counts(&args.filter.to_filter(None))?;
            if args.json {
                #[derive(Serialize)]
                struct Out<'a> {
                    counts: &'a LabelCounts,
                    labels: &'a [Label],
                }
                let out = Out {
                    counts: &counts,
                    labels: &labels,
                };
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                for l in &labels {
                    println!("{}", line(l));
                }
                println!("{}", counts_line(&counts));
            }
        }
        Command::Show(args) => {
            let store = Store::open_existing(&args.run)?;
            let Some(label) = store.label(args.id)? else {
                bail!("{}: no label {}", store.path().display(), args.id);
            };
            let history = store.label_history(args.id)?;
            if args.json {
                let out = serde_json::json!({ "label": label, "history": history });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("{}", line(&label));
                println!(
                    "  student: {} -> {}",
                    label.student_reason.as_deref().unwrap_or("(no reason)"),
                    label.student_action
                );
                println!(
                    "  teacher: {} -> {}",
                    label.teacher_reason, label.teacher_action
                );
                if let (Some(r), Some(a)) = (&label.edited_reason, &label.edited_action) {
                    println!("  edited:  {r} -> {a}");
                }
                for leak in &label.leaks {
                    println!("  leak: {} (\"{}\")", leak.fact, leak.text);
                }
                for e in history {
                    println!(
                        "  {} {} by {}{}",
                        e.at_ms,
                        e.status,
                        e.decided_by.as_deref().unwrap_or("?"),
                        if e.undone { " (undone)" } else { "" }
                    );
                }
            }
        }
        Command::Accept(args) | Command::Reject(args) if args.ids.is_empty() => {
            bail!("no label ids given")
        }
        Command::Accept(args) => decide_many(&args, Decision::Accept)?,
        Command::Reject(args) => decide_many(&args, Decision::Reject)?,
        Command::Edit(args) => {
            let mut store = Store::open_existing(&args.run)?;
            let decision = Decision::Edit {
                reason: args.reason.clone(),
                action: args.action.clone(),
            };
            let label = store.decide(args.id, &decision, &person(&args.by))?;
            println!("{}", line(&label));
        }
        Command::Undo(args) => {
            let mut store = Store::open_existing(&args.run)?;
            let label = store.undo_label(args.id)?;
            println!("{}", line(&label));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn decide_many(args: &ManyArgs, decision: Decision) -> anyhow::Result<()> {
    let mut store = Store::open_existing(&args.run)?;
    let by = person(&args.by);
    for &id in &args.ids {
        let label = store.decide(id, &decision, &by)?;
        println!("{}", line(&label));
    }
    Ok(())
}

fn line(l: &Label) -> String {
    format!(
        "#{:<6} {:<8} {} ep {} step {:>2} {} {}{}",
        l.id,
        l.status.as_str(),
        l.scenario_id,
        l.episode_id,
        l.idx,
        if l.changed { "≠" } else { "=" },
        l.target().1,
        if l.leaks.is_empty() {
            String::new()
        } else {
            format!("  [{} leak]", l.leaks.len())
        }
    )
}

fn counts_line(c: &LabelCounts) -> String {
    format!(
        "{} labels: {} pending, {} accepted, {} edited, {} rejected; {} changed, {} with leak flags",
        c.total, c.pending, c.accepted, c.edited, c.rejected, c.changed, c.leaking
    )
}

/// How `leap curate` decides pending labels (the names are the CLI's values).
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Accept every pending label.
    AcceptAll,
    /// Accept labels without leak flags, reject the rest.
    AcceptUnlessLeak,
    /// Accept labels whose action differs from the student's, reject the rest.
    AcceptIfChanged,
}

impl Policy {
    fn name(self) -> &'static str {
        match self {
            Policy::AcceptAll => "accept-all",
            Policy::AcceptUnlessLeak => "accept-unless-leak",
            Policy::AcceptIfChanged => "accept-if-changed",
        }
    }

    fn decide(self, label: &Label) -> Decision {
        let keep = match self {
            Policy::AcceptAll => true,
            Policy::AcceptUnlessLeak => label.leaks.is_empty(),
            Policy::AcceptIfChanged => label.changed,
        };
        if keep {
            Decision::Accept
        } else {
            Decision::Reject
        }
    }
}

#[derive(Args)]
pub struct CurateArgs {
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    #[arg(long, value_enum)]
    policy: Policy,
    /// Only pending labels of episodes played by this iteration's student.
    #[arg(long)]
    iteration: Option<u32>,
    #[arg(long)]
    json: bool,
    /// Print a line for each decision once it is stored.
    #[arg(long)]
    verbose: bool,
}

/// What a curation pass decided.
#[derive(Debug, Default, Serialize)]
pub struct CurateSummary {
    pub policy: String,
    pub accepted: u64,
    pub rejected: u64,
    pub counts: LabelCounts,
}

/// Decides every pending label (of `iteration`, if given) by `policy`, one transaction each;
/// `on_decided` hears of each decision once it is stored.
pub fn curate(
    store: &mut Store,
    policy: Policy,
    iteration: Option<u32>,
    on_decided: &mut dyn FnMut(&Label),
) -> anyhow::Result<CurateSummary> {
    let filter = LabelFilter {
        status: Some(LabelStatus::Pending),
        iteration,
        ..LabelFilter::default()
    };
    let by = format!("policy:{}", policy.name());
    let mut summary = CurateSummary {
        policy: policy.name().into(),
        ..CurateSummary::default()
    };
    for label in store.labels(&filter)? {
        let decision = policy.decide(&label);
        match decision {
            Decision::Accept => summary.accepted += 1,
            _ => summary.rejected += 1,
        }
        let decided = store.decide(label.id, &decision, &by)?;
        on_decided(&decided);
    }
    summary.counts = store.label_counts(&LabelFilter {
        iteration,
        ..LabelFilter::default()
    })?;
    Ok(summary)
}

pub fn run_curate(args: CurateArgs) -> anyhow::Result<ExitCode> {
    let mut store = Store::open_existing(&args.run)?;
    let verbose = args.verbose;
    let summary = curate(&mut store, args.policy, args.iteration, &mut |l| {
        if verbose {
            println!("decided {}", line(l));
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{}: accepted {}, rejected {}. {}",
            summary.policy,
            summary.accepted,
            summary.rejected,
            counts_line(&summary.counts)
        );
    }
    Ok(ExitCode::SUCCESS)
}
