//! Progress bars on stderr for the library's progress events (the library reports, the CLI
//! draws).

use super::print::errln;
use indicatif::{ProgressBar, ProgressStyle};

use leap::eval::EvalEvent;
use leap::rollout::RolloutEvent;
use leap::train::TrainEvent;

/// `text` (a name the user chose: a label, an adapter's file) as literal text in a template,
/// where braces would be read as placeholders and an unknown one would not parse.
fn literal(text: &str) -> String {
    leap::shown::escape_controls(text)
        .replace('{', "{{")
        .replace('}', "}}")
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("a valid template")
}

/// A line above `bar`, or on stderr when there is no terminal to draw the bar on (indicatif
/// then draws nothing, its lines included).
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        errln!("{line}");
    } else {
        bar.println(line);
    }
}

/// The bar of whatever is running now; a new one replaces (and clears) the last.
#[derive(Default)]
pub struct Bars {
    bar: Option<ProgressBar>,
    won: usize,
    finished: usize,
    /// Print no training summary lines (the bar still shows).
    pub quiet: bool,
}

impl Bars {
    fn replace(&mut self, bar: ProgressBar) -> &ProgressBar {
        self.finish();
        self.bar.insert(bar)
    }

    fn current(&mut self, make: impl FnOnce() -> ProgressBar) -> &ProgressBar {
        self.bar.get_or_insert_with(make)
    }

    /// Clears the bar of what has finished.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        (self.won, self.finished) = (0, 0);
    }

    /// Starts a bar of episodes named `what`.
    pub fn episodes(&mut self, what: &str) {
        let what = literal(what);
        self.replace(ProgressBar::new(0)).set_style(style(&format!(
            "{what:>14} {{bar:30}} {{pos}}/{{len}} episodes  {{msg}}  [{{elapsed_precise}}, eta {{eta}}]"
        )));
    }

    pub fn rollout(&mut self, event: RolloutEvent) {
        let bar = self.current(|| ProgressBar::new(0)).clone();
        match event {
            RolloutEvent::Progress { done, total } => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }
            RolloutEvent::EpisodeFinished { won, .. } => {
                self.finished += 1;
                self.won += usize::from(won);
                bar.set_message(format!("{}/{} won", self.won, self.finished));
            }
            _ => {}
        }
    }

    pub fn eval(&mut self, event: EvalEvent) {
        match event {
            EvalEvent::Started { label } => self.episodes(&label),
            EvalEvent::Rollout(e) => self.rollout(*e),
            EvalEvent::Steps { name, done, total } => {
                let name = literal(&name);
                let bar = self.current(|| {
                    let bar = ProgressBar::new(0);
                    bar.set_style(style(&format!(
                        "{name:>14} {{bar:30}} {{pos}}/{{len}} steps  [{{elapsed_precise}}, eta {{eta}}]"
                    )));
                    bar
                });
                bar.set_length(total);
                bar.set_position(done);
                if done == total {
                    self.finish();
                }
            }
        }
    }

    /// Episodes a teacher has corrected.
    pub fn corrected(&mut self, done: u64, total: u64) {
        let bar = self.current(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(style(
                "{bar:30} {pos}/{len} episodes corrected  {msg}  [{elapsed_precise}, eta {eta}]",
            ));
            bar
        });
        bar.set_length(total);
        bar.set_position(done);
    }

    pub fn train(&mut self, event: TrainEvent) {
        let quiet = self.quiet;
        let bar = self.current(ProgressBar::new_spinner).clone();
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
                    say(
                        &bar,
                        format!(
                            "{rows} rows ({train_rows} train, {eval_rows} held out), {tokens} tokens in {windows} windows of {n_ctx}; {parameters} trainable parameters; training on {} ({}: {})",
                            base.path.display(),
                            base.kind,
                            base.reason
                        ),
                    );
                }
                // Said even with --json: the steps before it are not trained again.
                if start_step > 0 {
                    say(
                        &bar,
                        format!("resuming from the checkpoint at step {start_step} of {steps}"),
                    );
                }
                bar.set_style(style(
                    "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise}, eta {eta}]",
                ));
                bar.set_length(steps);
                bar.set_position(start_step);
            }
            TrainEvent::Step(p) => {
                // Without a terminal the bar is hidden: log about twenty lines instead.
                if bar.is_hidden() && !quiet && p.step % (p.steps / 20).max(1) == 0 {
                    errln!(
                        "step {}/{}  epoch {}/{}  loss {:.4}  lr {:.2e}  {:.0} tok/s  eta {:.0} s",
                        p.step,
                        p.steps,
                        p.epoch,
                        p.epochs,
                        p.loss,
                        p.lr,
                        p.tokens_per_s,
                        p.eta_s
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
}

impl Drop for Bars {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_braces_make_a_bar_not_a_panic() {
        for name in ["iter-{1.gguf", "a}b", "{bar} {", "x{}"] {
            Bars::default().episodes(name);
            Bars::default().eval(EvalEvent::Steps {
                name: name.into(),
                done: 1,
                total: 2,
            });
        }
    }
}
