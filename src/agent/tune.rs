//! How the local backend runs a model on this CPU: its weights as the file stores them or
//! re-encoded ([`super::weights`], for encodings without a many-token kernel here), flash
//! attention on or off, and tokens guessed ahead of greedy answers or not, chosen by timing the
//! decode calls a rollout makes, once per machine, model and thread count, and kept in
//! `${XDG_CACHE_HOME:-~/.cache}/leap/tuning/`.
//!
//! No choice wins on every CPU. ggml's CPU flash attention attends one query row at a time
//! below 64 new tokens of a sequence: on a 2-core Xeon (AMX) a token of each of 8 sequences
//! after 450 cached took 96.0 ms with it and 37.8 without, and the guesses then gained 1.44x;
//! on a 2-core AMD EPYC (Zen 4) the household rollout bench at 8 sequences ran 1.27 steps/s with
//! flash attention and no guesses, 1.06 without either, 1.14 with the guesses alone and 1.14
//! with both (`cargo bench --bench student`). So the machine is asked: the calls are timed for
//! every way, the ways in turn within each repetition, and the cheapest per environment step is
//! used.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use serde::{Deserialize, Serialize};

use super::weights::Weights;

/// Tokens cached in the shallowest and the deepest of several sequences when the calls are
/// timed (one sequence holds their mean): about where household steps' prompts end (the rollout
/// bench's prompts average 364 tokens; an episode's grow with its history).
const SHALLOW: usize = 192;
const DEEP: usize = 704;
/// New prompt tokens of a step (about 125 on the household rollout bench).
const PROMPT: usize = 128;
/// Tokens of one answer (5,395 in 160 steps on the household rollout bench, 16 sequences).
const ANSWER: f64 = 34.0;
/// Answer tokens a row of one chosen token and its guesses yields (the same bench: 5,395
/// tokens in 2,093 rows, 3,302 of 7,551 guesses kept).
const GUESS_YIELD: f64 = 2.5;
/// How the timings are taken: a change to the calls timed or to the choice makes every kept
/// tuning stale.
const VERSION: u32 = 4;
/// Timed repetitions of each call; the fastest counts.
const REPS: usize = 3;

/// The way chosen, with what it was chosen from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    /// How the weights are held ([`super::weights`]).
    pub weights: Weights,
    pub flash_attention: bool,
    /// Every way timed: each encoding of the weights, flash attention off and on.
    pub ways: Vec<Way>,
    /// Sequences in the timed calls.
    pub sequences: usize,
}

/// One way of running the model, and what its calls cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Way {
    pub weights: Weights,
    pub flash_attention: bool,
    pub costs: Costs,
}

/// Milliseconds per decode call, the sequences at [`depths`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Costs {
    /// One new token in each sequence: an answer token each.
    pub token: f64,
    /// `1 + guessed` new tokens in each sequence: an answer token and its guesses each.
    pub guessed: f64,
    /// `PROMPT` new tokens of one sequence: a step's prompt.
    pub prompt: f64,
}

impl Costs {
    /// Milliseconds of decoding per environment step and sequence, with or without guesses.
    fn per_step(&self, sequences: usize, guesses: bool) -> f64 {
        let (rows, call) = if guesses {
            (ANSWER / GUESS_YIELD, self.guessed)
        } else {
            (ANSWER, self.token)
        };
        rows * call / sequences as f64 + self.prompt
    }

    /// The least milliseconds per step, and whether guessing gives it.
    fn best(&self, sequences: usize) -> (f64, bool) {
        let plain = self.per_step(sequences, false);
        let guessed = self.per_step(sequences, true);
        (plain.min(guessed), guessed < plain)
    }
}

impl Tuning {
    /// The cheapest of `ways` per step; on a tie the earlier (the order [`measure`] times
    /// them in: the file's weights first, flash attention on first, llama.cpp's default).
    fn choose(ways: Vec<Way>, sequences: usize) -> Tuning {
        let cost = |w: &Way| w.costs.best(sequences).0;
        let best = ways
            .iter()
            .copied()
            .reduce(|a, b| if cost(&b) < cost(&a) { b } else { a })
            .expect("at least one way is timed");
        Tuning {
            weights: best.weights,
            flash_attention: best.flash_attention,
            ways,
            sequences,
        }
    }

    /// The costs of `weights` with flash attention `flash`, where that way was timed.
    pub fn costs(&self, weights: Weights, flash: bool) -> Option<Costs> {
        self.ways
            .iter()
            .find(|w| w.weights == weights && w.flash_attention == flash)
            .map(|w| w.costs)
    }

    /// Whether guesses pay with flash attention `flash` and the chosen weights.
    pub fn guesses(&self, flash: bool) -> bool {
        self.costs(self.weights, flash)
            .is_some_and(|c| c.best(self.sequences).1)
    }

    /// The flash-attention setting [`Tuning::choose`] gives among the ways of `weights` (on,
    /// llama.cpp's default, where those were not timed).
    pub fn flash_for(&self, weights: Weights) -> bool {
        let ways: Vec<Way> = self
            .ways
            .iter()
            .filter(|w| w.weights == weights)
            .copied()
            .collect();
        ways.is_empty() || Tuning::choose(ways, self.sequences).flash_attention
    }

    /// One line for logs and the bench.
    pub fn describe(&self) -> String {
        let on_off = |b: bool| if b { "on" } else { "off" };
        let ways: Vec<String> = self
            .ways
            .iter()
            .map(|w| {
                format!(
                    "weights {}, flash attention {}: {:.1} / {:.1} / {:.1}",
                    w.weights.name(),
                    on_off(w.flash_attention),
                    w.costs.token,
                    w.costs.guessed,
                    w.costs.prompt,
                )
            })
            .collect();
        format!(
            "weights {}, flash attention {}, guesses {} (ms per call, {} sequences, {SHALLOW} to {DEEP} cached: a token each / {} tokens each / a {PROMPT}-token prompt: {})",
            self.weights.name(),
            on_off(self.flash_attention),
            on_off(self.guesses(self.flash_attention)),
            self.sequences,
            1 + super::local::DRAFT,
            ways.join("; "),
        )
    }
}

/// The way to run the model at `path` on the CPU with `threads` threads and `slots` sequences,
/// among `models` (each encoding of its weights, loaded): from this process's memory, else from
/// the cache file, else timed now (a few seconds a model for SmolLM2-135M on 2 cores) and
/// written there. The first tuning written for a key is the one every process uses, so that
/// runs on one machine decode alike.
pub fn cpu_tuning(
    models: &[(Weights, &LlamaModel)],
    path: &Path,
    threads: i32,
    slots: usize,
) -> Result<Tuning, String> {
    let encodings: Vec<Weights> = models.iter().map(|m| m.0).collect();
    if let Some(t) = kept_tuning(path, threads, slots, &encodings) {
        return Ok(t);
    }
    let sequences = sequences(slots);
    let file = tuning_file(path, threads, slots, &encodings);
    // A file that is there but unreadable (cut short, an older format) is replaced.
    let replace = file.exists();
    let t = Tuning::choose(measure(models, threads, sequences)?, sequences);
    // Another process may have written the file meanwhile: its tuning wins.
    keep(&file, &t, replace);
    let tuning = read(&file).unwrap_or(t);
    memo().push((file, tuning.clone()));
    Ok(tuning)
}

/// The tuning for the model at `path` held each way of `encodings`, with `threads` and
/// `slots`, that this process or the cache file already holds, without timing anything.
pub fn kept_tuning(
    path: &Path,
    threads: i32,
    slots: usize,
    encodings: &[Weights],
) -> Option<Tuning> {
    let file = tuning_file(path, threads, slots, encodings);
    let mut memo = memo();
    if let Some((_, t)) = memo.iter().find(|(f, _)| *f == file) {
        return Some(t.clone());
    }
    let t = read(&file)?;
    memo.push((file, t.clone()));
    Some(t)
}

/// The tunings this process has used, by file.
fn memo() -> std::sync::MutexGuard<'static, Vec<(PathBuf, Tuning)>> {
    static MEMO: Mutex<Vec<(PathBuf, Tuning)>> = Mutex::new(Vec::new());
    MEMO.lock().unwrap_or_else(|e| e.into_inner())
}

/// The file that keeps the tuning for the model at `path` with `threads` threads and `slots`
/// sequences, its weights held each way of `encodings`.
pub fn tuning_file(path: &Path, threads: i32, slots: usize, encodings: &[Weights]) -> PathBuf {
    tuning_dir().join(format!(
        "{}.json",
        key(path, threads, sequences(slots), encodings)
    ))
}

/// Sequences in the timed calls for `slots`: timed once for one sequence and once for several
/// (at 8, the rollouts' default), so that a machine pays for two timings, not one per batch
/// size.
fn sequences(slots: usize) -> usize {
    if slots > 1 { 8 } else { 1 }
}

/// `${XDG_CACHE_HOME:-~/.cache}/leap/tuning`.
pub fn tuning_dir() -> PathBuf {
    crate::model::cache_root().join("tuning")
}

/// What the timings depend on: how they are taken, the CPU and llama.cpp's build for it, the
/// thread count, the number of sequences, the model (its file name and size) and the encodings
/// of its weights timed.
fn key(path: &Path, threads: i32, sequences: usize, encodings: &[Weights]) -> String {
    use sha2::{Digest, Sha256};
    let cpu = cpu_model().unwrap_or_default();
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let text = format!(
        "{VERSION}\n{cpu}\n{}\n{threads}\n{sequences}\n{name}\n{size}\n{encodings:?}",
        super::local::system_info()
    );
    let digest = Sha256::digest(text.as_bytes());
    let stem: String = name
        .chars()
        .take(40)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{stem}-t{threads}-s{sequences}-{hex}")
}

/// The CPU's model name, as `/proc/cpuinfo` gives it (Linux).
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split(':').nth(1)?.trim().to_string())
}

fn read(file: &Path) -> Option<Tuning> {
    serde_json::from_slice(&std::fs::read(file).ok()?).ok()
}

/// Writes `tuning` to `file` whole (a temporary file renamed into place): over what is there
/// if `replace`, else only where nothing is. Any failure leaves the cache as it was, and the
/// tuning then holds for this process alone.
fn keep(file: &Path, tuning: &Tuning, replace: bool) {
    let Some(dir) = file.parent() else { return };
    let _ = std::fs::create_dir_all(dir).and_then(|()| {
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        serde_json::to_writer_pretty(&mut tmp, tuning)?;
        if replace {
            tmp.persist(file).map_err(|e| e.error)?;
        } else {
            tmp.persist_noclobber(file).map_err(|e| e.error)?;
        }
        Ok(())
    });
}

/// Times the three calls for every model of `models` with flash attention on and off: every
/// context is set up first and each repetition times every call on all of them, so that a
/// moment when the machine is busy (other processes, a neighbour on a shared host) slows all
/// alike; the fastest repetition counts.
fn measure(
    models: &[(Weights, &LlamaModel)],
    threads: i32,
    sequences: usize,
) -> Result<Vec<Way>, String> {
    let mut probes = Vec::new();
    for &(weights, model) in models {
        for flash in [true, false] {
            probes.push((weights, Probe::new(model, threads, sequences, flash)?));
        }
    }
    let guessed = 1 + super::local::DRAFT;
    let all: Vec<usize> = (0..sequences).collect();
    // The prompt goes to the sequence in the middle.
    let shapes = [
        (1, &all[..]),
        (guessed, &all[..]),
        (PROMPT, &all[sequences / 2..][..1]),
    ];
    let mut best = vec![[f64::INFINITY; 3]; probes.len()];
    // The first repetition warms up (buffers, the copies of the cache) and is not counted.
    for rep in 0..=REPS {
        for ((_, probe), best) in probes.iter_mut().zip(&mut best) {
            for (&(rows, seqs), best) in shapes.iter().zip(best.iter_mut()) {
                let ms = probe.time(rows, seqs, rep)?;
                if rep > 0 {
                    *best = best.min(ms);
                }
            }
        }
    }
    Ok(probes
        .iter()
        .zip(best)
        .map(|((weights, probe), b)| Way {
            weights: *weights,
            flash_attention: probe.flash,
            costs: Costs {
                token: b[0],
                guessed: b[1],
                prompt: b[2],
            },
        })
        .collect())
}

/// A context shaped as the local backend's (a KV buffer per sequence), its sequences holding
/// [`depths`] tokens.
struct Probe<'m> {
    ctx: llama_cpp_2::context::LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    depths: Vec<usize>,
    n_vocab: usize,
    flash: bool,
}

/// Tokens cached in each of `sequences` when the calls are timed. Several sequences are at
/// different depths, as in a rollout, where episodes are at different steps: a part of a decode
/// call attends over as many cells as its deepest sequence holds (rounded up to 256), and
/// flash attention skips a block of cells that a sequence does not hold where the plain
/// attention's products take all of them.
fn depths(sequences: usize) -> Vec<usize> {
    if sequences == 1 {
        return vec![(SHALLOW + DEEP) / 2];
    }
    (0..sequences)
        .map(|s| SHALLOW + s * (DEEP - SHALLOW) / (sequences - 1))
        .collect()
}

impl<'m> Probe<'m> {
    fn new(
        model: &'m LlamaModel,
        threads: i32,
        sequences: usize,
        flash: bool,
    ) -> Result<Probe<'m>, String> {
        let guessed = 1 + super::local::DRAFT;
        let depths = depths(sequences);
        let deepest = depths.iter().copied().max().unwrap_or(DEEP);
        let per_seq = (deepest + PROMPT + guessed + 1).next_multiple_of(256) as u32;
        let n_batch = (deepest.max(PROMPT).max(sequences * guessed)) as u32;
        let params = LlamaContextParams::default()
            .with_n_ctx(std::num::NonZeroU32::new(per_seq * sequences as u32))
            .with_n_batch(n_batch)
            .with_n_ubatch(n_batch)
            .with_n_seq_max(sequences as u32)
            .with_kv_unified(false)
            .with_flash_attention_policy(super::local::flash_attention(Some(flash)))
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let ctx = model
            .new_context(super::local::backend(), params)
            .map_err(|e| Probe::error(flash, &e))?;
        let mut probe = Probe {
            ctx,
            batch: LlamaBatch::new(n_batch as usize, sequences as i32),
            depths,
            n_vocab: model.n_vocab().max(2) as usize,
            flash,
        };
        // The deepest cache once, copied to every sequence and cut to its depth.
        probe.batch.clear();
        for j in 0..deepest {
            let token = probe.token(j);
            probe
                .batch
                .add(token, j as i32, &[0], j + 1 == deepest)
                .map_err(|e| Probe::error(flash, &e))?;
        }
        probe.decode()?;
        for s in 1..sequences {
            probe
                .ctx
                .copy_kv_cache_seq(0, s as i32, None, None)
                .map_err(|e| Probe::error(flash, &e))?;
        }
        probe.trim()?;
        Ok(probe)
    }

    fn error(flash: bool, e: &dyn std::fmt::Display) -> String {
        format!("timing flash attention {flash}: {e}")
    }

    /// Any valid token id: the values do not change the time.
    fn token(&self, i: usize) -> LlamaToken {
        LlamaToken((1 + (i * 7919) % (self.n_vocab - 1)) as i32)
    }

    fn decode(&mut self) -> Result<(), String> {
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| Probe::error(self.flash, &e))
    }

    /// Cuts every sequence back to its depth.
    fn trim(&mut self) -> Result<(), String> {
        for (s, &depth) in self.depths.iter().enumerate() {
            self.ctx
                .clear_kv_cache_seq(Some(s as u32), Some(depth as u32), None)
                .map_err(|e| Probe::error(self.flash, &e))?;
        }
        Ok(())
    }

    /// Milliseconds of one call of `rows` new tokens in each of the sequences `seqs`, the
    /// caches cut back after it. A prompt wants the logits of its last token; answers and
    /// guesses, of every one.
    fn time(&mut self, rows: usize, seqs: &[usize], rep: usize) -> Result<f64, String> {
        self.batch.clear();
        for &s in seqs {
            for j in 0..rows {
                let token = self.token(rep + j);
                let logits = rows < PROMPT || j + 1 == rows;
                self.batch
                    .add(token, (self.depths[s] + j) as i32, &[s as i32], logits)
                    .map_err(|e| Probe::error(self.flash, &e))?;
            }
        }
        let start = Instant::now();
        self.decode()?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        self.trim()?;
        Ok(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn costs(token: f64, guessed: f64, prompt: f64) -> Costs {
        Costs {
            token,
            guessed,
            prompt,
        }
    }

    fn way(weights: Weights, flash_attention: bool, costs: Costs) -> Way {
        Way {
            weights,
            flash_attention,
            costs,
        }
    }

    /// The file's weights alone, flash attention `off` and `on`, in [`measure`]'s order.
    fn choose(off: Costs, on: Costs) -> Tuning {
        Tuning::choose(
            vec![way(Weights::File, true, on), way(Weights::File, false, off)],
            8,
        )
    }

    /// The Xeon's shape: flash attention dear for answer tokens, guesses nearly free.
    #[test]
    fn dear_flash_attention_and_cheap_guesses_choose_guesses_without_it() {
        let t = choose(costs(38.0, 45.0, 190.0), costs(96.0, 300.0, 170.0));
        assert!(!t.flash_attention && t.guesses(false), "{t:?}");
    }

    /// The first tuning kept wins over a later one, and an unreadable file is replaced.
    #[test]
    fn the_first_tuning_kept_stays_and_an_unreadable_one_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tuning").join("t.json");
        let first = choose(costs(38.0, 45.0, 190.0), costs(96.0, 300.0, 170.0));
        let second = choose(costs(63.0, 170.0, 190.0), costs(56.0, 200.0, 160.0));
        keep(&file, &first, false);
        keep(&file, &second, false);
        assert_eq!(read(&file), Some(first));
        std::fs::write(&file, "{\"flash_attention\": tr").unwrap();
        assert_eq!(read(&file), None);
        keep(&file, &second, true);
        assert_eq!(read(&file), Some(second));
    }

    /// A tie keeps llama.cpp's default, flash attention on; any saving without it turns it off.
    #[test]
    fn a_tie_keeps_flash_attention_on() {
        let t = choose(costs(48.0, 203.0, 478.0), costs(48.0, 203.0, 478.0));
        assert!(t.flash_attention && !t.guesses(true), "{t:?}");
        let t = choose(costs(47.0, 203.0, 470.0), costs(48.0, 203.0, 478.0));
        assert!(!t.flash_attention, "{t:?}");
    }

    /// The EPYC's shape: flash attention a little cheaper, guesses as dear as their rows.
    #[test]
    fn cheap_flash_attention_and_dear_guesses_choose_flash_attention_alone() {
        let t = choose(costs(63.0, 170.0, 190.0), costs(56.0, 200.0, 160.0));
        assert!(t.flash_attention && !t.guesses(true), "{t:?}");
    }

    /// The Q8_0 copy is chosen where it is cheaper per step, with the flash-attention setting
    /// and guesses that are cheapest for it; a tie keeps the file's weights.
    #[test]
    fn the_weights_are_re_encoded_only_where_that_is_cheaper() {
        let file = [costs(63.0, 170.0, 640.0), costs(56.0, 200.0, 640.0)];
        // The EPYC's shape: prompts at less than half the cost, a token each a little less.
        let copy = [costs(50.0, 70.0, 260.0), costs(55.0, 190.0, 250.0)];
        let ways = |copy: [Costs; 2]| {
            vec![
                way(Weights::File, true, file[1]),
                way(Weights::File, false, file[0]),
                way(Weights::Q8_0, true, copy[1]),
                way(Weights::Q8_0, false, copy[0]),
            ]
        };
        let t = Tuning::choose(ways(copy), 8);
        assert_eq!(t.weights, Weights::Q8_0, "{t:?}");
        // Off: 34 / 2.5 rows of 70 ms over 8 sequences + 260 = 379, on without guesses 484.
        assert!(!t.flash_attention && t.guesses(false), "{t:?}");
        assert!(!t.flash_for(Weights::Q8_0) && t.flash_for(Weights::File));
        let t = Tuning::choose(ways(file), 8);
        assert_eq!(
            (t.weights, t.flash_attention),
            (Weights::File, true),
            "{t:?}"
        );
    }
}
