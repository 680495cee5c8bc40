//! How the local backend runs a model on this CPU: flash attention on or off, and tokens guessed
//! ahead of greedy answers or not, chosen by timing the decode calls a rollout makes, once per
//! machine, model and thread count, and kept in `${XDG_CACHE_HOME:-~/.cache}/leap/tuning/`.
//!
//! Neither choice wins on every CPU. ggml's CPU flash attention attends one query row at a time
//! below 64 new tokens of a sequence: on a 2-core Xeon (AMX) a token of each of 8 sequences
//! after 450 cached took 96.0 ms with it and 37.8 without, and the guesses then gained 1.44x;
//! on a 2-core AMD EPYC (Zen 4) the same call took 56.1 and 62.8 ms, and the household rollout
//! bench at 16 sequences ran 1.39 steps/s with flash attention and no guesses, 1.09 without
//! either, 1.11 with the guesses alone and 0.92 with both (`cargo bench --bench student`). So
//! the machine is asked: the calls are timed and the cheaper way per environment step is used.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use serde::{Deserialize, Serialize};

/// Tokens cached in each sequence when the calls are timed: about where a household step's
/// prompt ends (the rollout bench's prompts average 364 tokens, 240 of them cached).
const DEPTH: usize = 384;
/// New prompt tokens of a step (about 125 on the household rollout bench).
const PROMPT: usize = 128;
/// Tokens of one answer (5,395 in 160 steps on the household rollout bench, 16 sequences).
const ANSWER: f64 = 34.0;
/// Answer tokens a row of one chosen token and its guesses yields (the same bench: 5,395
/// tokens in 2,093 rows, 3,302 of 7,551 guesses kept).
const GUESS_YIELD: f64 = 2.5;
/// Timed repetitions of each call; the fastest counts.
const REPS: usize = 2;

/// The way chosen, with what it was chosen from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    pub flash_attention: bool,
    /// Whether to guess tokens ahead of greedy answers.
    pub guesses: bool,
    /// Milliseconds per call with flash attention off and on.
    pub off: Costs,
    pub on: Costs,
    /// Sequences in the timed calls.
    pub sequences: usize,
}

/// Milliseconds per decode call, `DEPTH` tokens cached in each sequence.
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
}

impl Tuning {
    fn choose(off: Costs, on: Costs, sequences: usize) -> Tuning {
        let mut best = (f64::INFINITY, false, false);
        for (flash, costs) in [(false, &off), (true, &on)] {
            for guesses in [false, true] {
                let ms = costs.per_step(sequences, guesses);
                if ms < best.0 {
                    best = (ms, flash, guesses);
                }
            }
        }
        Tuning {
            flash_attention: best.1,
            guesses: best.2,
            off,
            on,
            sequences,
        }
    }

    /// Whether guesses pay with flash attention `flash`.
    pub fn guesses(&self, flash: bool) -> bool {
        let costs = if flash { &self.on } else { &self.off };
        costs.per_step(self.sequences, true) < costs.per_step(self.sequences, false)
    }

    /// One line for logs and the bench.
    pub fn describe(&self) -> String {
        let on_off = |b: bool| if b { "on" } else { "off" };
        format!(
            "flash attention {}, guesses {} (ms per call, {} sequences, {DEPTH} cached each: a token each {:.1} off / {:.1} on, {} tokens each {:.1} / {:.1}, a {PROMPT}-token prompt {:.1} / {:.1})",
            on_off(self.flash_attention),
            on_off(self.guesses),
            self.sequences,
            self.off.token,
            self.on.token,
            1 + super::local::DRAFT,
            self.off.guessed,
            self.on.guessed,
            self.off.prompt,
            self.on.prompt,
        )
    }
}

/// The way to run `model` (the file at `path`) on the CPU with `threads` threads and `slots`
/// sequences: from this process's memory, else from the cache file, else timed now (a few
/// seconds for SmolLM2-135M on 2 cores) and written there. The first tuning written for a key
/// is the one every process uses, so that runs on one machine decode alike.
pub fn cpu_tuning(
    model: &LlamaModel,
    path: &Path,
    threads: i32,
    slots: usize,
) -> Result<Tuning, String> {
    static MEMO: Mutex<Vec<(PathBuf, Tuning)>> = Mutex::new(Vec::new());
    let sequences = sequences(slots);
    let file = tuning_file(path, threads, slots);
    let mut memo = MEMO.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, t)) = memo.iter().find(|(f, _)| *f == file) {
        return Ok(*t);
    }
    let tuning = match read(&file) {
        Some(t) => t,
        None => {
            // A file that is there but unreadable (cut short, an older format) is replaced.
            let replace = file.exists();
            let off = measure(model, threads, sequences, false)?;
            let on = measure(model, threads, sequences, true)?;
            let t = Tuning::choose(off, on, sequences);
            // Another process may have written the file meanwhile: its tuning wins.
            keep(&file, &t, replace);
            read(&file).unwrap_or(t)
        }
    };
    memo.push((file, tuning));
    Ok(tuning)
}

/// The file that keeps the tuning for `model` on this CPU with `threads` threads and `slots`
/// sequences.
pub fn tuning_file(model: &Path, threads: i32, slots: usize) -> PathBuf {
    tuning_dir().join(format!("{}.json", key(model, threads, sequences(slots))))
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

/// What the timings depend on: the CPU and llama.cpp's build for it, the thread count, the
/// number of sequences and the model (its file name and size).
fn key(path: &Path, threads: i32, sequences: usize) -> String {
    use sha2::{Digest, Sha256};
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(str::to_string)
        })
        .unwrap_or_default();
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let text = format!(
        "{cpu}\n{}\n{threads}\n{sequences}\n{name}\n{size}",
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

/// Times the three calls with flash attention `flash`, on a context shaped as the local
/// backend's (a KV buffer per sequence).
fn measure(
    model: &LlamaModel,
    threads: i32,
    sequences: usize,
    flash: bool,
) -> Result<Costs, String> {
    let err = |e: &dyn std::fmt::Display| format!("timing flash attention {flash}: {e}");
    let guessed = 1 + super::local::DRAFT;
    let policy = if flash {
        llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED
    } else {
        llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED
    };
    let per_seq = (DEPTH + PROMPT + guessed + 1).next_multiple_of(256) as u32;
    let n_batch = (DEPTH.max(PROMPT).max(sequences * guessed)) as u32;
    let params = LlamaContextParams::default()
        .with_n_ctx(std::num::NonZeroU32::new(per_seq * sequences as u32))
        .with_n_batch(n_batch)
        .with_n_ubatch(n_batch)
        .with_n_seq_max(sequences as u32)
        .with_kv_unified(false)
        .with_flash_attention_policy(policy)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = model
        .new_context(super::local::backend(), params)
        .map_err(|e| err(&e))?;
    let n_vocab = model.n_vocab().max(2);
    // The tokens' values do not change the time; any valid ids do.
    let token = |i: usize| LlamaToken((1 + (i * 7919) % (n_vocab as usize - 1)) as i32);
    let mut batch = LlamaBatch::new(n_batch as usize, sequences as i32);
    for i in 0..DEPTH {
        batch
            .add(token(i), i as i32, &[0], i + 1 == DEPTH)
            .map_err(|e| err(&e))?;
    }
    ctx.decode(&mut batch).map_err(|e| err(&e))?;
    for s in 1..sequences {
        ctx.copy_kv_cache_seq(0, s as i32, None, None)
            .map_err(|e| err(&e))?;
    }
    let mut time = |rows: usize, seqs: usize| -> Result<f64, String> {
        let mut best = f64::INFINITY;
        // The first call warms up (buffers, the copies above) and is not counted.
        for rep in 0..=REPS {
            batch.clear();
            for s in 0..seqs {
                for j in 0..rows {
                    // A prompt wants the logits of its last token; answers and guesses all.
                    let logits = rows < PROMPT || j + 1 == rows;
                    batch
                        .add(token(rep + j), (DEPTH + j) as i32, &[s as i32], logits)
                        .map_err(|e| err(&e))?;
                }
            }
            let start = Instant::now();
            ctx.decode(&mut batch).map_err(|e| err(&e))?;
            let ms = start.elapsed().as_secs_f64() * 1e3;
            for s in 0..seqs {
                ctx.clear_kv_cache_seq(Some(s as u32), Some(DEPTH as u32), None)
                    .map_err(|e| err(&e))?;
            }
            if rep > 0 {
                best = best.min(ms);
            }
        }
        Ok(best)
    };
    Ok(Costs {
        token: time(1, sequences)?,
        guessed: time(guessed, sequences)?,
        prompt: time(PROMPT, 1)?,
    })
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

    /// The Xeon's shape: flash attention dear for answer tokens, guesses nearly free.
    #[test]
    fn dear_flash_attention_and_cheap_guesses_choose_guesses_without_it() {
        let t = Tuning::choose(costs(38.0, 45.0, 190.0), costs(96.0, 300.0, 170.0), 8);
        assert!(!t.flash_attention && t.guesses, "{t:?}");
    }

    /// The first tuning kept wins over a later one, and an unreadable file is replaced.
    #[test]
    fn the_first_tuning_kept_stays_and_an_unreadable_one_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tuning").join("t.json");
        let first = Tuning::choose(costs(38.0, 45.0, 190.0), costs(96.0, 300.0, 170.0), 8);
        let second = Tuning::choose(costs(63.0, 170.0, 190.0), costs(56.0, 200.0, 160.0), 8);
        keep(&file, &first, false);
        keep(&file, &second, false);
        assert_eq!(read(&file), Some(first));
        std::fs::write(&file, "{\"flash_attention\": tr").unwrap();
        assert_eq!(read(&file), None);
        keep(&file, &second, true);
        assert_eq!(read(&file), Some(second));
    }

    /// The EPYC's shape: flash attention a little cheaper, guesses as dear as their rows.
    #[test]
    fn cheap_flash_attention_and_dear_guesses_choose_flash_attention_alone() {
        let t = Tuning::choose(costs(63.0, 170.0, 190.0), costs(56.0, 200.0, 160.0), 8);
        assert!(t.flash_attention && !t.guesses, "{t:?}");
    }
}
