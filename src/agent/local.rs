//! The local backend: a GGUF model through llama.cpp.
//!
//! Several episodes run at once as separate sequences of one context: their prompts are
//! evaluated in one batch and their next tokens decoded together. Each sequence keeps its KV
//! cache between steps, and a new prompt only evaluates what differs from the tokens already in
//! the cache (the prompt is built so that its prefix stays the same from step to step).

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaLoraAdapter, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::vocab::LlamaVocab;

use super::draft::{Drafter, ORDER};
pub use super::weights::Weights;
use super::{
    Collect, Feed, Format, Message, Next, Policy, PolicyError, Request, Response, Sampling,
};
use crate::env::command::{self, Template};

/// The tokens of `text`, a chat [`render_chat`] wrote from `messages`: the template's markers
/// (`<|im_start|>`, `<|im_end|>`) are read as special tokens, the messages' own text never is.
/// An environment's text can hold a special token's text (a file holding `<|im_end|>`, a page
/// quoting a chat); read as the token, it would end the turn in the middle of an observation.
/// Where no message holds such text (nearly always) this is one tokenization of the whole chat,
/// as before; where one does, the chat is tokenized in pieces, each message's text as plain
/// text and the template's text between them with its special tokens.
pub fn tokenize_chat(
    vocab: &LlamaVocab,
    text: &str,
    messages: &[Message],
    add_bos: bool,
) -> Vec<LlamaToken> {
    let special = |s: &str, bos: bool| vocab.tokenize(s.as_bytes(), bos, true);
    let plain = |s: &str| vocab.tokenize(s.as_bytes(), false, false);
    if !messages
        .iter()
        .any(|m| special(&m.content, false) != plain(&m.content))
    {
        return special(text, add_bos);
    }
    let mut tokens = Vec::new();
    let mut at = 0;
    for m in messages {
        // A template may trim a message; one that holds neither form is left to the
        // template's pieces (never expected: the templates copy the text).
        let content = [m.content.as_str(), m.content.trim()]
            .into_iter()
            .find_map(|c| text[at..].find(c).map(|i| (at + i, c)));
        if let Some((start, c)) = content {
            tokens.extend(special(&text[at..start], add_bos && tokens.is_empty()));
            tokens.extend(plain(c));
            at = start + c.len();
        }
    }
    tokens.extend(special(&text[at..], add_bos && tokens.is_empty()));
    tokens
}

/// `messages` as text through `model`'s chat `template`; with `generation_prompt`, ending with
/// the assistant's header. The student and training both render here, so a training row is the
/// text the student reads.
///
/// llama.cpp takes each message as a C string, which a NUL byte would end, and an environment's
/// text can hold one (a shell command's `find -print0`). Each NUL goes through the template as a
/// private-use character that no message holds and comes back after, so the model reads the
/// text the environment gave.
pub fn render_chat(
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    messages: &[Message],
    generation_prompt: bool,
) -> Result<String, String> {
    let nuls: usize = messages
        .iter()
        .map(|m| m.content.matches('\0').count())
        .sum();
    let stand_in = match nuls {
        0 => None,
        _ => Some(
            ('\u{E000}'..='\u{F8FF}')
                .find(|&c| messages.iter().all(|m| !m.content.contains(c)))
                .ok_or("a message holds a NUL byte and every private-use character")?,
        ),
    };
    let chat = messages
        .iter()
        .map(|m| {
            let content = match stand_in {
                Some(c) => m.content.replace('\0', c.encode_utf8(&mut [0; 4])),
                None => m.content.clone(),
            };
            LlamaChatMessage::new(m.role.as_str().to_owned(), content)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let text = model
        .apply_chat_template(template, &chat, generation_prompt)
        .map_err(|e| e.to_string())?;
    match stand_in {
        None => Ok(text),
        Some(c) if text.matches(c).count() == nuls => Ok(text.replace(c, "\0")),
        Some(c) => Err(format!(
            "the chat template writes U+{:04X}, which stood in for a NUL byte",
            u32::from(c)
        )),
    }
}

/// The process-wide llama.cpp backend (it may be initialised once).
pub fn backend() -> &'static LlamaBackend {
    static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();
    BACKEND.get_or_init(|| {
        crate::model::llama_log::install();
        LlamaBackend::init().expect("llama.cpp initialises once per process")
    })
}

/// The CPU features llama.cpp's kernels use here (`AVX2 = 1 | AMX_INT8 = 1 | ...`), as its
/// `llama_print_system_info` says them.
pub fn system_info() -> String {
    backend();
    // SAFETY: llama.cpp returns a static NUL-terminated string, valid until the next call; it
    // is copied at once.
    let info = unsafe { std::ffi::CStr::from_ptr(llama_cpp_sys_2::llama_print_system_info()) };
    info.to_string_lossy().trim().to_string()
}

/// How to load and run a local model.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub model: PathBuf,
    /// LoRA adapters and their scales.
    pub adapters: Vec<(PathBuf, f32)>,
    /// Layers offloaded to the GPU (builds with the `cuda` or `metal` feature).
    pub gpu_layers: u32,
    /// CPU threads; by default as many as the machine has cores.
    pub threads: Option<usize>,
    /// Episodes decoded at once (sequences of the context).
    pub slots: usize,
    /// Context per sequence, in tokens.
    pub ctx_per_slot: u32,
    /// Keep each sequence's KV cache between requests and evaluate only what a new prompt does
    /// not share with the cached tokens. Off, every prompt is evaluated whole.
    pub reuse_prefix: bool,
    /// llama.cpp's flash attention; `None`: on the CPU, whichever way [`super::tune`] timed
    /// faster on this machine; llama.cpp's own choice when layers are offloaded. On the CPU,
    /// flash attention attends one query row at a time below 64 new tokens of a sequence,
    /// which made each answer token cost 2 to 3 times as much as the plain attention's matrix
    /// products on a 2-core Xeon (450 tokens cached, `cargo bench --bench student`: 18.8
    /// against 8.7 ms for one sequence, 96.0 against 37.8 ms for a token of each of 8), and
    /// 0.9 times as much on a 2-core AMD EPYC (56.0 against 61.1 ms for a token of each of 8).
    pub flash_attention: Option<bool>,
    /// At most this many tokens guessed ahead of a greedy answer and checked in the same
    /// decode call ([`super::draft`]); 0 decodes a token per call. `None`: [`DRAFT`], except
    /// where [`super::tune`] finds on this CPU that guesses cost more than they save.
    pub draft: Option<usize>,
    /// How the weights are held ([`super::weights`]): `None`, on the CPU, re-encoded as Q8_0
    /// where the file's encoding has no many-token kernel here and the copy times faster.
    pub weights: Option<Weights>,
}

/// The most tokens guessed ahead of a greedy answer by default ([`LocalConfig::draft`]).
pub const DRAFT: usize = 4;

impl LocalConfig {
    pub fn new(model: impl Into<PathBuf>) -> LocalConfig {
        LocalConfig {
            model: model.into(),
            adapters: Vec::new(),
            gpu_layers: 0,
            threads: None,
            slots: 1,
            ctx_per_slot: 2048,
            reuse_prefix: true,
            flash_attention: None,
            draft: None,
            weights: None,
        }
    }
}

fn llama_err(e: impl std::fmt::Display) -> PolicyError {
    PolicyError::Llama(e.to_string())
}

fn model_err(path: &Path, message: impl std::fmt::Display) -> PolicyError {
    PolicyError::Model {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Where a local policy's time went, summed over its calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    pub prompt_tokens: u64,
    /// Prompt tokens reused from the cache instead of evaluated.
    pub cached_tokens: u64,
    pub prompt_s: f64,
    pub gen_tokens: u64,
    /// Time inside llama.cpp's decode during generation.
    pub decode_s: f64,
    /// Time choosing tokens (sampling and grammar).
    pub sample_s: f64,
    /// Tokens the grammar rejected, so that the whole vocabulary was filtered.
    pub grammar_fallbacks: u64,
    /// Tokens guessed ahead of greedy answers, and how many of them the model chose.
    pub drafted_tokens: u64,
    pub accepted_tokens: u64,
    /// Decode calls, and the parts llama.cpp cut them into (with a KV buffer per sequence, a
    /// part holds the same number of tokens of each of its sequences).
    pub decode_calls: u64,
    pub ubatches: u64,
}

/// A local GGUF model answering prompts.
pub struct LocalPolicy {
    // Declaration order is drop order: the context and the adapters refer to the model, so they
    // go first.
    ctx: LlamaContext<'static>,
    _adapters: Vec<LlamaLoraAdapter>,
    model: Box<LlamaModel>,
    template: LlamaChatTemplate,
    /// Per sequence: the tokens whose keys and values are in the cache, in order.
    cached: Vec<Vec<LlamaToken>>,
    batch: LlamaBatch<'static>,
    n_batch: usize,
    ctx_per_slot: usize,
    reuse_prefix: bool,
    draft: usize,
    /// Flash attention as the context runs it (`None`: llama.cpp's choice, layers offloaded).
    flash_attention: Option<bool>,
    /// What this CPU's timings chose, where the configuration left a choice open.
    tuning: Option<super::tune::Tuning>,
    weights: Weights,
    drafter: Drafter,
    /// Each sequence's tokens in the batch being filled, in batch order.
    rows: Vec<(i32, usize)>,
    description: String,
    stats: Stats,
}

// SAFETY: a llama.cpp context may be used from any thread as long as one thread at a time uses
// it; `LocalPolicy` owns its context and hands out no references to it, and `&mut self` on every
// call that touches it serialises use.
unsafe impl Send for LocalPolicy {}

impl LocalPolicy {
    pub fn load(config: &LocalConfig) -> Result<LocalPolicy, PolicyError> {
        // Check the files in Rust first: llama.cpp aborts or says nothing on bad files.
        crate::model::llama_log::install();
        let model_file = crate::model::check_file(&config.model)?;
        for (adapter, scale) in &config.adapters {
            super::student::check_scale(adapter, *scale)?;
            let file = crate::model::check_file(adapter)?;
            if !crate::model::check::is_adapter(&file) {
                return Err(model_err(
                    adapter,
                    "general.type is not \"adapter\": not a LoRA adapter",
                ));
            }
            crate::model::check::check_adapter_fits(&file, &model_file)?;
        }
        super::student::check_adapters(&config.model, &config.adapters)?;
        let backend = backend();
        let threads = config
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            as i32;
        let slots = config.slots.max(1);
        let on_cpu = !(config.gpu_layers > 0 && cfg!(any(feature = "cuda", feature = "metal")));
        let (weights, model, tuning) = load_weights(config, &model_file, on_cpu, threads, slots)?;
        let mut model = Box::new(model);
        // llama.cpp's context takes one adapter set through the safe API; several adapters are
        // merged into one exact equivalent first (ranks stacked, scales folded into B).
        let merged = merged_adapters(&config.adapters)?;
        let to_load: Vec<(PathBuf, f32)> = match &merged {
            Some(file) => vec![(file.path().to_path_buf(), 1.0)],
            None => config.adapters.clone(),
        };
        let mut adapters = Vec::new();
        for (path, _) in &to_load {
            crate::model::llama_log::clear_errors();
            let adapter = model.lora_adapter_init(path).map_err(|e| {
                let why = crate::model::llama_log::explain(e);
                model_err(path, format!("not a LoRA adapter for this model: {why}"))
            })?;
            adapters.push(adapter);
        }
        drop(merged); // llama.cpp has read it into memory
        // SAFETY: the model is boxed (its address never changes) and outlives the context and
        // adapters, which are declared before it in `LocalPolicy` and so dropped first.
        let model_ref: &'static LlamaModel = unsafe { &*(model.as_ref() as *const LlamaModel) };

        let template = model_ref
            .chat_template(None)
            .or_else(|_| LlamaChatTemplate::new("chatml").map_err(llama_err))
            .map_err(|e| model_err(&config.model, format!("no usable chat template: {e}")))?;

        let flash = match (config.flash_attention, &tuning) {
            (Some(on), _) => Some(on),
            (None, Some(t)) => Some(t.flash_for(weights)),
            (None, None) => None,
        };
        let draft = match (config.draft, &tuning, flash) {
            (Some(n), _, _) => n,
            (None, Some(t), Some(flash)) if !t.guesses(flash) => 0,
            (None, _, _) => DRAFT,
        };
        let n_ctx = config.ctx_per_slot * slots as u32;
        let n_batch = 512u32.min(n_ctx);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(n_batch)
            .with_n_ubatch(n_batch)
            .with_n_seq_max(slots as u32)
            // A KV buffer per sequence. In one shared buffer the sequences' cells interleave,
            // and every token attends over every sequence's cells: the plain attention's
            // products take all of them, masked or not, and ggml's CPU flash attention skips a
            // block of cells only when all of it is masked (8 sequences, a token each, 450
            // cells cached each, flash attention off: 69.6 ms shared, 36.3 split, in one
            // probe). Split, a batch that mixes sequences with different numbers of new tokens
            // is cut into ubatches of equal tokens per sequence, which cost more in lock-step
            // rounds (8 sequences: prompts 46 s split, 15 s shared) but less than the shared
            // buffer's attention with continuous batching (rollout bench, 8 sequences, AMD
            // EPYC, 2 cores, flash attention on: 1.36 steps/s split, 0.98 shared; prompts 80 s
            // and 122 s).
            .with_kv_unified(false)
            .with_flash_attention_policy(flash_attention(flash))
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let mut ctx = model_ref.new_context(backend, params).map_err(llama_err)?;

        for (adapter, (_, scale)) in adapters.iter_mut().zip(&to_load) {
            ctx.lora_adapter_set(adapter, *scale).map_err(llama_err)?;
        }

        let name = config
            .model
            .file_stem()
            .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
        let mut description = name;
        for (path, scale) in &config.adapters {
            let file = path.file_name().map_or_else(
                || path.display().to_string(),
                |s| s.to_string_lossy().into_owned(),
            );
            description.push_str(&format!(" + {file}@{scale}"));
        }
        Ok(LocalPolicy {
            ctx,
            _adapters: adapters,
            model,
            template,
            cached: vec![Vec::new(); slots],
            batch: LlamaBatch::new(n_batch as usize, slots as i32),
            n_batch: n_batch as usize,
            ctx_per_slot: config.ctx_per_slot as usize,
            reuse_prefix: config.reuse_prefix,
            draft,
            flash_attention: flash,
            tuning,
            weights,
            drafter: Drafter::default(),
            rows: Vec::new(),
            description,
            stats: Stats::default(),
        })
    }

    pub fn model(&self) -> &LlamaModel {
        &self.model
    }

    /// How it decodes: flash attention (`None`: llama.cpp's choice, layers offloaded), the most
    /// tokens guessed ahead of an answer, and the CPU timings that chose what the configuration
    /// left open.
    pub fn decoding(&self) -> (Option<bool>, usize, Option<super::tune::Tuning>) {
        (self.flash_attention, self.draft, self.tuning.clone())
    }

    /// How the model's weights are held: as the file stores them, or re-encoded.
    pub fn weights(&self) -> Weights {
        self.weights
    }

    /// Where the time went since loading.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The chat prompt as text, through the model's chat template.
    pub fn render(&self, messages: &[Message]) -> Result<String, PolicyError> {
        render_chat(&self.model, &self.template, messages, true).map_err(PolicyError::Llama)
    }

    /// Tokens of `text`, special tokens parsed (for a chat rendered from messages,
    /// [`tokenize_chat`]).
    pub fn tokenize(&self, text: &str) -> Vec<LlamaToken> {
        let vocab = self.model.vocab();
        vocab.tokenize(text.as_bytes(), vocab.should_add_bos(), true)
    }

    /// Evaluates `prompt` afresh in sequence 0, then decodes `n` tokens greedily one at a time,
    /// ignoring end-of-generation: llama-bench's pp and tg measurements, for `just bench`.
    /// Returns the seconds spent on each, and the part of the generation spent inside
    /// llama.cpp's decode (the rest is this loop's own overhead).
    pub fn timed_generation(
        &mut self,
        prompt: &[LlamaToken],
        n: usize,
    ) -> Result<(f64, f64, f64), PolicyError> {
        self.release(0);
        let start = Instant::now();
        let Some(last) = prompt.len().checked_sub(1) else {
            return Err(self.no_tokens(""));
        };
        for (c, chunk) in prompt.chunks(self.n_batch).enumerate() {
            self.batch.clear();
            for (k, &token) in chunk.iter().enumerate() {
                let pos = c * self.n_batch + k;
                self.batch
                    .add(token, pos as i32, &[0], pos == last)
                    .map_err(llama_err)?;
            }
            self.ctx.decode(&mut self.batch).map_err(llama_err)?;
        }
        let prompt_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let mut decode_s = 0.0;
        let mut logits_at = self.batch.n_tokens() - 1;
        for pos in prompt.len()..prompt.len() + n {
            let token = argmax(self.ctx.get_logits_ith(logits_at));
            self.batch.clear();
            self.batch
                .add(token, pos as i32, &[0], true)
                .map_err(llama_err)?;
            let t0 = Instant::now();
            self.ctx.decode(&mut self.batch).map_err(llama_err)?;
            decode_s += t0.elapsed().as_secs_f64();
            logits_at = 0;
        }
        let gen_s = start.elapsed().as_secs_f64();
        self.release(0);
        Ok((prompt_s, gen_s, decode_s))
    }

    fn piece(&self, token: LlamaToken) -> Vec<u8> {
        self.model.vocab().token_to_piece(token, false, None)
    }
}

/// llama.cpp's flash-attention setting (`None`: its own choice).
pub(super) fn flash_attention(on: Option<bool>) -> llama_cpp_sys_2::llama_flash_attn_type {
    match on {
        Some(true) => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED,
        Some(false) => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED,
        None => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_AUTO,
    }
}

/// The model of `config` (`file`, checked) loaded into llama.cpp, its weights held as the
/// configuration says or, where it leaves that open on the CPU and the file's encoding has no
/// many-token kernel there ([`super::weights`]), the way this CPU's timing finds faster; with
/// the CPU's tuning where the configuration leaves anything open to it ([`super::tune`]).
fn load_weights(
    config: &LocalConfig,
    file: &crate::model::GgufFile,
    on_cpu: bool,
    threads: i32,
    slots: usize,
) -> Result<(Weights, LlamaModel, Option<super::tune::Tuning>), PolicyError> {
    let params = LlamaModelParams::default().with_n_gpu_layers(config.gpu_layers);
    let timed = on_cpu && config.weights.is_none() && super::weights::worth_timing(file);
    let candidates = match config.weights {
        Some(w) => vec![w],
        None if timed => vec![Weights::File, Weights::Q8_0],
        None => vec![Weights::File],
    };
    // Timed where something is left to choose: flash attention, the guesses, or the weights.
    let timed_ways = |encodings: usize| {
        on_cpu && (config.flash_attention.is_none() || config.draft.is_none() || encodings > 1)
    };
    let kept = |encodings: &[Weights]| {
        timed_ways(encodings.len())
            .then(|| super::tune::kept_tuning(&config.model, threads, slots, encodings))
            .flatten()
    };
    // A kept choice loads its weights alone: the copy is looked up (the model hashed, the copy
    // made again where the cache lost it) only where it was chosen.
    if let Some(t) = kept(&candidates)
        && let Ok(path) = t.weights.file(&config.model)
    {
        return Ok((t.weights, load_model(&path, &params)?, Some(t)));
    }
    // Each candidate's file. Left open, a copy that cannot be made (a full disk, a cache not
    // writable) leaves the weights as the file stores them: [`LocalPolicy::weights`] says so.
    let mut files = Vec::new();
    for &weights in &candidates {
        match weights.file(&config.model) {
            Ok(path) => files.push((weights, path)),
            Err(_) if config.weights.is_none() => {}
            Err(e) => return Err(model_err(&config.model, e)),
        }
    }
    let encodings: Vec<Weights> = files.iter().map(|f| f.0).collect();
    // Without the copy, the file's weights may have been timed alone before.
    let kept = (encodings.len() < candidates.len())
        .then(|| kept(&encodings))
        .flatten();
    if !timed_ways(files.len()) || kept.is_some() {
        return Ok((files[0].0, load_model(&files[0].1, &params)?, kept));
    }
    // Every encoding loaded and timed together (one, or the file's and the copy); the chosen
    // one stays.
    let mut models = Vec::new();
    for (weights, path) in &files {
        models.push((*weights, load_model(path, &params)?));
    }
    let refs: Vec<(Weights, &LlamaModel)> = models.iter().map(|(w, m)| (*w, m)).collect();
    let tuning = super::tune::cpu_tuning(&refs, &config.model, threads, slots)
        .map_err(|e| model_err(&config.model, e))?;
    let at = models
        .iter()
        .position(|m| m.0 == tuning.weights)
        .unwrap_or(0);
    let (weights, model) = models.swap_remove(at);
    Ok((weights, model, Some(tuning)))
}

/// Loads a checked model file into llama.cpp; a failure says what llama.cpp logged about it.
fn load_model(path: &Path, params: &LlamaModelParams) -> Result<LlamaModel, PolicyError> {
    crate::model::llama_log::clear_errors();
    LlamaModel::load_from_file(backend(), path, params).map_err(|e| {
        let why = crate::model::llama_log::explain(e);
        model_err(path, format!("llama.cpp cannot load it: {why}"))
    })
}

/// Runs every check a load makes on `path` ([`crate::model::check_file`]) and, for a model,
/// has llama.cpp load it without its weights (`no_alloc`: hyper-parameters, vocabulary, every
/// tensor's name and shape) and lets it go: what `leap model info` accepts, a rollout loads.
/// Returns the checked header.
pub fn check_loads(path: &Path) -> Result<crate::model::GgufFile, PolicyError> {
    crate::model::llama_log::install();
    let file = crate::model::check_file(path)?;
    if !crate::model::check::is_adapter(&file) {
        drop(load_model(
            path,
            &LlamaModelParams::default().with_no_alloc(true),
        )?);
    }
    Ok(file)
}

/// For two or more adapters, one temporary adapter file equal to all of them at their scales.
fn merged_adapters(
    adapters: &[(PathBuf, f32)],
) -> Result<Option<tempfile::NamedTempFile>, PolicyError> {
    if adapters.len() < 2 {
        return Ok(None);
    }
    let mut parts = Vec::with_capacity(adapters.len());
    for (path, scale) in adapters {
        let adapter = crate::model::Adapter::read(path).map_err(|e| model_err(path, e))?;
        parts.push((adapter, *scale));
    }
    let merged = crate::model::Adapter::merge(&parts).map_err(|e| model_err(&adapters[0].0, e))?;
    let file = tempfile::Builder::new()
        .prefix("leap-merged-")
        .suffix(".gguf")
        .tempfile()
        .map_err(|e| {
            model_err(
                &adapters[0].0,
                format!("a temporary file for the merge: {e}"),
            )
        })?;
    merged
        .write(file.path())
        .map_err(|e| model_err(&adapters[0].0, e))?;
    Ok(Some(file))
}

/// GBNF for `REASON: <one line>` then `ACTION: <an admissible command>`, a template's hole
/// taking any valid fill (`env::command::gbnf`). With `max_reason`, the reason is at most that
/// many characters: a backend that cannot cut a reason short itself (a server) bounds it here,
/// so that the action always fits in the response.
pub fn grammar(admissible: &[String], max_reason: Option<usize>) -> String {
    let actions: Vec<String> = admissible.iter().map(|a| command::gbnf(a)).collect();
    let reason = match max_reason {
        Some(n) => format!("[^\\n]{{1,{}}}", n.max(1)),
        None => "[^\\n]+".to_string(),
    };
    format!(
        "root ::= \"REASON: \" {reason} \"\\nACTION: \" action\naction ::= {}\n",
        actions.join(" | ")
    )
}

/// One request being answered. Its prompt (what the slot's cache does not already hold) goes
/// into the batches first, as much as each batch has room for; then its answer is decoded a
/// token per batch, beside the other slots' prompts and answers.
struct Live {
    request: Request,
    seq: i32,
    /// The prompt's tokens after the reused prefix, and how many of them are in a batch.
    prompt: Vec<LlamaToken>,
    fed: usize,
    /// Position of the next token in its sequence.
    pos: i32,
    /// Index in the last batch of the token whose logits to sample, when it was decoded.
    logits_at: Option<i32>,
    /// Tokens chosen for the answer, to go into the next batch.
    next: Vec<LlamaToken>,
    /// Tokens guessed to follow `next`, which go into the batch after it, each with its
    /// logits, and are kept as far as the model chooses them itself.
    drafted: Vec<LlamaToken>,
    /// The answer's tokens so far, for the drafter to learn from.
    tokens: Vec<LlamaToken>,
    out: Vec<u8>,
    /// Bytes of `out` already passed to the token callback.
    streamed: usize,
    gen_tokens: u32,
    sampler: Option<LlamaSampler>,
    grammar: Option<LlamaSampler>,
    /// The answer is `REASON:` then `ACTION:` ([`Format::React`]), which the decoding loop
    /// helps along; a JSON answer is left to its grammar.
    react: bool,
    /// Its prompt and cached tokens.
    response: Response,
    joined: Instant,
    /// When the last of its prompt was evaluated.
    prompted: Option<Instant>,
}

impl Live {
    /// True once the response holds a full action line (without a grammar: the line after
    /// `ACTION:` has ended).
    fn finished(&self) -> bool {
        let text = String::from_utf8_lossy(&self.out);
        text.find("ACTION:")
            .is_some_and(|at| text[at..].contains('\n'))
    }

    /// The tokens that close the template hole the action has begun to fill, when no more than
    /// the response's remaining `budget` of tokens: written for the model so that a fill that
    /// runs on still ends as a command.
    fn closing(&self, vocab: &LlamaVocab, budget: u32) -> Option<Vec<LlamaToken>> {
        let text = String::from_utf8_lossy(&self.out);
        let at = text.find("\nACTION: ")? + "\nACTION: ".len();
        let rest = self
            .request
            .admissible
            .iter()
            .find_map(|a| Template::of(a)?.closing(&text[at..]))
            .filter(|rest| !rest.is_empty())?;
        let tokens = vocab.tokenize(rest.as_bytes(), false, false);
        (tokens.len() as u32 >= budget).then_some(tokens)
    }

    /// Under the grammar, the whole response once the action typed so far can only be one
    /// admissible command: the rest of a literal command is written out instead of generated
    /// token by token, and a template the model has closed ends the response. A template's
    /// hole is the model's to fill, so it is never completed into.
    fn completed(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.out);
        let at = text.find("\nACTION: ")? + "\nACTION: ".len();
        completion(&text[at..], &self.request.admissible)
            .map(|action| format!("{}{action}", &text[..at]))
    }

    /// Passes on what `out` holds past `streamed` that is whole UTF-8.
    fn stream(&mut self, feed: &mut dyn Feed) {
        let valid = match std::str::from_utf8(&self.out[self.streamed..]) {
            Ok(s) => s.len(),
            Err(e) => e.valid_up_to(),
        };
        if valid > 0 {
            let piece = String::from_utf8_lossy(&self.out[self.streamed..self.streamed + valid]);
            feed.token(self.request.seq, &piece);
            self.streamed += valid;
        }
    }

    /// The request with its answer.
    fn answer(self) -> (Request, Response) {
        let now = Instant::now();
        let prompted = self.prompted.unwrap_or(now);
        let response = Response {
            text: String::from_utf8_lossy(&self.out).trim_end().to_string(),
            gen_tokens: self.gen_tokens,
            prompt_ms: (prompted - self.joined).as_secs_f64() * 1e3,
            gen_ms: (now - prompted).as_secs_f64() * 1e3,
            ..self.response
        };
        (self.request, response)
    }
}

/// What every answer of one `serve` call is held to.
struct Rules {
    /// `\nACTION: `, written for a model whose reason runs past its budget.
    force_action: Vec<LlamaToken>,
    reason_budget: u32,
    max_tokens: u32,
}

/// The whole action once `typed` can only be one admissible command: a literal one, or a
/// template that `typed` has already closed (see [`Live::completed`]).
fn completion(typed: &str, admissible: &[String]) -> Option<String> {
    let mut matches = admissible.iter().filter(|a| match Template::of(a) {
        None => a.starts_with(typed),
        Some(t) => t.may_become(typed),
    });
    let only = matches.next()?;
    if matches.next().is_some() {
        return None;
    }
    match Template::of(only) {
        None => Some(only.clone()),
        Some(t) => t.closed_by(typed).then(|| typed.to_string()),
    }
}

/// How many of the best-scored tokens a greedy answer checks one by one against the grammar
/// before it filters the whole vocabulary.
const GREEDY_CANDIDATES: usize = 64;

/// The `n` best-scored tokens, best first (ties: the lower id first, as [`argmax`]).
fn best_tokens(logits: &[f32], n: usize) -> Vec<LlamaToken> {
    let mut ids: Vec<usize> = (0..logits.len()).collect();
    let order = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
    let n = n.min(ids.len());
    if n < ids.len() {
        ids.select_nth_unstable_by(n, order);
        ids.truncate(n);
    }
    ids.sort_unstable_by(order);
    ids.into_iter().map(|i| LlamaToken(i as i32)).collect()
}

/// How many parts llama.cpp cuts a batch into when each sequence has its own KV buffer
/// (`llama_batch_allocr::split_equal`, sequential), from each sequence's id and number of
/// tokens in the order the batch holds them: a part takes sequences with consecutive ids, in
/// batch order from the first with tokens left, and the same number of tokens from each.
fn equal_splits(rows: &[(i32, usize)], n_ubatch: usize) -> usize {
    let mut left: Vec<(i32, usize)> = rows.iter().copied().filter(|r| r.1 > 0).collect();
    let mut parts = 0;
    while !left.is_empty() {
        let mut set: Vec<usize> = Vec::new();
        for (k, &(seq, _)) in left.iter().enumerate() {
            if set.last().is_none_or(|&j| left[j].0 + 1 == seq) {
                set.push(k);
            }
        }
        let each = set
            .iter()
            .map(|&k| left[k].1)
            .min()
            .unwrap_or(1)
            .min((n_ubatch / set.len()).max(1));
        for &k in &set {
            left[k].1 -= each;
        }
        left.retain(|r| r.1 > 0);
        parts += 1;
    }
    parts
}

fn argmax(logits: &[f32]) -> LlamaToken {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    LlamaToken(best as i32)
}

impl LocalPolicy {
    fn no_tokens(&self, text: &str) -> PolicyError {
        PolicyError::NoTokens {
            model: self.description.clone(),
            chars: text.chars().count(),
        }
    }

    /// Makes `request` ready to join the batches: its prompt rendered and tokenized, the
    /// slot's cache cut to the longest prefix the prompt shares with it, its sampler and
    /// grammar built.
    fn start(&mut self, request: Request, sampling: &Sampling) -> Result<Live, PolicyError> {
        if request.seq >= self.cached.len() {
            return Err(PolicyError::Llama(format!(
                "slot {} but only {} slots",
                request.seq,
                self.cached.len()
            )));
        }
        let joined = Instant::now();
        let text = self.render(&request.messages)?;
        let vocab = self.model.vocab();
        let tokens = tokenize_chat(&vocab, &text, &request.messages, vocab.should_add_bos());
        if tokens.is_empty() {
            return Err(self.no_tokens(&text));
        }
        // A JSON answer's `max_tokens` is an upper bound on a long answer, which the slot's
        // context may cut (the decoding loop stops at the context's end); a `REASON:`/
        // `ACTION:` answer must fit whole.
        let room = match request.format {
            Format::React => sampling.max_tokens as usize,
            Format::Json { .. } => (sampling.max_tokens as usize).min(64),
        };
        if tokens.len() + room > self.ctx_per_slot {
            return Err(PolicyError::PromptTooLong {
                tokens: tokens.len() + room,
                ctx: self.ctx_per_slot,
            });
        }
        // Reuse the longest cached prefix, but evaluate at least one token for its logits.
        let seq = request.seq;
        let mut keep = self.cached[seq]
            .iter()
            .zip(&tokens)
            .take_while(|(a, b)| a == b)
            .count()
            .min(tokens.len() - 1);
        if !self.reuse_prefix {
            keep = 0;
        }
        self.ctx
            .clear_kv_cache_seq(Some(seq as u32), Some(keep as u32), None)
            .map_err(llama_err)?;
        self.cached[seq].truncate(keep);
        self.stats.prompt_tokens += tokens.len() as u64;
        self.stats.cached_tokens += keep as u64;
        let seed = request
            .seed
            .unwrap_or_else(|| sampling.seed.wrapping_add(seq as u64)) as u32;
        let temperature = request.temperature.unwrap_or(sampling.temperature);
        let sampler = (temperature > 0.0).then(|| {
            LlamaSampler::chain_simple([
                LlamaSampler::top_p(sampling.top_p, 1),
                LlamaSampler::temp(temperature),
                LlamaSampler::dist(seed),
            ])
        });
        let react = request.format == Format::React;
        let gbnf = match &request.format {
            Format::React if sampling.constrained && !request.admissible.is_empty() => {
                Some(grammar(&request.admissible, None))
            }
            Format::React => None,
            Format::Json { grammar, .. } => Some(grammar.to_string()),
        };
        let grammar = gbnf
            .map(|g| LlamaSampler::grammar(&self.model, &g, "root").map_err(llama_err))
            .transpose()?;
        Ok(Live {
            seq: seq as i32,
            pos: keep as i32,
            prompt: tokens[keep..].to_vec(),
            fed: 0,
            logits_at: None,
            next: Vec::new(),
            drafted: Vec::new(),
            tokens: Vec::new(),
            out: Vec::new(),
            streamed: 0,
            gen_tokens: 0,
            sampler,
            grammar,
            react,
            response: Response {
                prompt_tokens: tokens.len() as u32,
                cached_tokens: keep as u32,
                ..Response::default()
            },
            joined,
            prompted: None,
            request,
        })
    }

    /// The next token for one request: the sampler's (or greedy) choice, checked against the
    /// grammar, and chosen again under the grammar only when the grammar rejects it: checking
    /// one token is far cheaper than filtering the whole vocabulary.
    fn next_token(
        &self,
        idx: i32,
        sampler: &mut Option<LlamaSampler>,
        grammar: &mut Option<LlamaSampler>,
    ) -> (LlamaToken, bool, bool) {
        let choose =
            |arr: &mut LlamaTokenDataArray, sampler: &mut Option<LlamaSampler>| match sampler {
                Some(s) => {
                    arr.apply_sampler(s);
                    arr.selected_token().unwrap_or(LlamaToken(0))
                }
                None => arr.sample_token_greedy(),
            };
        let first = match sampler {
            None => argmax(self.ctx.get_logits_ith(idx)),
            Some(_) => choose(&mut self.ctx.token_data_array_ith(idx), sampler),
        };
        let Some(g) = grammar else {
            return (first, false, true);
        };
        let accepts = |g: &mut LlamaSampler, token: LlamaToken| {
            let mut one =
                LlamaTokenDataArray::new(vec![LlamaTokenData::new(token, 1.0, 0.0)], false);
            one.apply_sampler(g);
            one.data.first().is_some_and(|d| d.logit().is_finite())
        };
        let accepted = accepts(g, first);
        let token = if accepted {
            first
        } else {
            // Greedy: the best token the grammar accepts is the first it accepts in order of
            // score, usually among the few best; filtering the whole vocabulary (about 6 ms
            // for SmolLM2's 49,152 tokens) is left for when none of them is. `first`, the
            // best, is refused already.
            let best = match sampler {
                None => best_tokens(self.ctx.get_logits_ith(idx), GREEDY_CANDIDATES)
                    .into_iter()
                    .filter(|&t| t != first)
                    .find(|&t| accepts(g, t)),
                Some(_) => None,
            };
            best.unwrap_or_else(|| {
                let mut all = self.ctx.token_data_array_ith(idx);
                all.apply_sampler(g);
                choose(&mut all, sampler)
            })
        };
        // A token the grammar refuses leaves it with no way on: report it rather than let
        // llama.cpp abort on the next filtering.
        let ok = g.try_accept(token).is_ok();
        (token, !accepted, ok)
    }

    /// Chooses what `live` writes next from the logits at `idx` of the last batch, into
    /// `live.next`; true once its answer is over.
    fn choose(
        &mut self,
        live: &mut Live,
        idx: i32,
        rules: &Rules,
        feed: &mut dyn Feed,
    ) -> Result<bool, PolicyError> {
        let vocab = self.model.vocab();
        // A reason that runs on past its budget is cut short: the action line is written for
        // the model, and the grammar goes on from there. Once the model has ended the reason
        // line itself, the grammar already leads to the action. Likewise a template's fill
        // that would leave no room to close it is closed.
        let over_budget =
            live.react && live.gen_tokens >= rules.reason_budget && !live.out.contains(&b'\n');
        let close = match live.grammar {
            Some(_) if live.react && !over_budget => {
                live.closing(&vocab, rules.max_tokens.saturating_sub(live.gen_tokens))
            }
            _ => None,
        };
        let tokens = match &mut live.grammar {
            Some(g) if over_budget || close.is_some() => {
                let forced = close.unwrap_or_else(|| rules.force_action.clone());
                if !forced.iter().all(|&t| g.try_accept(t).is_ok()) {
                    return Ok(true);
                }
                forced
            }
            _ => {
                // NaN scores (broken weights, an adapter at an extreme scale) would reach the
                // sampler and the grammar, which abort on them.
                if self
                    .ctx
                    .get_logits_ith(idx)
                    .iter()
                    .any(|x| x.is_nan() || *x == f32::INFINITY)
                {
                    return Err(PolicyError::Llama(format!(
                        "{}: the model's next-token scores are not numbers (NaN or infinite): its weights, or an adapter's scale, are broken",
                        self.description
                    )));
                }
                let t0 = Instant::now();
                let (token, fallback, ok) =
                    self.next_token(idx, &mut live.sampler, &mut live.grammar);
                self.stats.sample_s += t0.elapsed().as_secs_f64();
                self.stats.grammar_fallbacks += u64::from(fallback);
                if !ok || vocab.is_eog(token) {
                    return Ok(true);
                }
                vec![token]
            }
        };
        for &token in &tokens {
            live.out.extend_from_slice(&self.piece(token));
        }
        live.tokens.extend_from_slice(&tokens);
        live.gen_tokens += tokens.len() as u32;
        live.stream(feed);
        if live.react
            && live.grammar.is_some()
            && let Some(full) = live.completed()
        {
            if full.len() > live.streamed {
                feed.token(live.request.seq, &full[live.streamed..]);
            }
            live.out = full.into_bytes();
            return Ok(true);
        }
        if (live.react && live.grammar.is_none() && live.finished())
            || live.gen_tokens >= rules.max_tokens
            || live.pos as usize + tokens.len() >= self.ctx_per_slot
        {
            return Ok(true);
        }
        live.next = tokens;
        Ok(false)
    }

    /// Chooses what `live` writes next from the last batch, whose logits for it start at `idx`:
    /// first after its chosen tokens, then after each of its drafted tokens for as long as the
    /// model chose the drafted one. The drafts it did not choose leave its cache, and the next
    /// tokens are drafted. True once its answer is over.
    fn verify(
        &mut self,
        live: &mut Live,
        idx: i32,
        rules: &Rules,
        feed: &mut dyn Feed,
    ) -> Result<bool, PolicyError> {
        let drafted = std::mem::take(&mut live.drafted);
        let from = live.pos - drafted.len() as i32;
        live.pos = from;
        let mut accepted = 0;
        let mut over = false;
        for j in 0..=drafted.len() {
            over = self.choose(live, idx + j as i32, rules, feed)?;
            if over || j == drafted.len() || live.next != [drafted[j]] {
                break;
            }
            // The model wrote what was guessed, which is in the cache already.
            live.next.clear();
            live.pos += 1;
            accepted += 1;
        }
        self.stats.drafted_tokens += drafted.len() as u64;
        self.stats.accepted_tokens += accepted as u64;
        let seq = live.seq as usize;
        if accepted < drafted.len() {
            self.ctx
                .clear_kv_cache_seq(Some(seq as u32), Some(live.pos as u32), None)
                .map_err(llama_err)?;
            self.cached[seq].truncate(live.pos as usize);
        }
        if over {
            self.drafter.learn(
                &self.cached[seq][..live.response.prompt_tokens as usize],
                &live.tokens,
            );
        } else if self.draft > 0 && live.sampler.is_none() {
            let room = self
                .ctx_per_slot
                .saturating_sub(live.pos as usize + live.next.len() + 1);
            let (prompt, last) = self.draft_context(live);
            live.drafted = self.drafter.draft(prompt, &last, self.draft.min(room));
        }
        Ok(over)
    }

    /// What the drafter reads for `live`'s next tokens: its prompt, and the context's last
    /// tokens (the end of the cache, then what goes in next).
    fn draft_context(&self, live: &Live) -> (&[LlamaToken], Vec<LlamaToken>) {
        let cached = &self.cached[live.seq as usize];
        let mut last = cached[cached.len().saturating_sub(ORDER)..].to_vec();
        last.extend_from_slice(&live.next);
        (&cached[..live.response.prompt_tokens as usize], last)
    }

    /// Guesses more tokens for the greedy answers whose rows in the next batch (chosen tokens
    /// and guesses) are shorter than the longest. With a KV buffer per sequence, llama.cpp cuts
    /// a batch into parts that take the same number of tokens from each sequence, so rows of
    /// 1, 3 and 5 tokens cost three passes over the weights where rows of 5 cost one, and a
    /// guess costs about a tenth of a pass (16 household scenarios x 10 steps, 4 sequences:
    /// 1,139 parts in 643 calls unpadded, 917 in 654 padded, the same 48% to 53% of guesses
    /// kept; wall time 61.0 against 60.2 s, the mean of 7 runs each, within their spread).
    fn pad_drafts(&self, lives: &mut [Live]) {
        let row = |l: &Live| l.next.len() + l.drafted.len();
        let longest = lives.iter().map(row).max().unwrap_or(0);
        for live in lives
            .iter_mut()
            .filter(|l| !l.next.is_empty() && l.sampler.is_none())
        {
            let room = self
                .ctx_per_slot
                .saturating_sub(live.pos as usize + row(live) + 1);
            let n = longest.saturating_sub(row(live)).min(room);
            if n == 0 {
                continue;
            }
            let (prompt, last) = self.draft_context(live);
            let more = self.drafter.pad(prompt, &last, &live.drafted, n);
            live.drafted.extend(more);
        }
    }

    /// Fills the batch: each answer's chosen tokens first, then as much of the waiting prompts
    /// as there is room for. Returns how many prompt tokens went in.
    fn fill(&mut self, lives: &mut [Live]) -> Result<usize, PolicyError> {
        self.batch.clear();
        self.rows.clear();
        if self.draft > 0 {
            self.pad_drafts(lives);
        }
        for live in lives.iter_mut().filter(|l| !l.next.is_empty()) {
            let n = live.next.len();
            for (k, &token) in live.next.iter().enumerate() {
                self.batch
                    .add(token, live.pos, &[live.seq], k + 1 == n)
                    .map_err(llama_err)?;
                live.pos += 1;
            }
            self.cached[live.seq as usize].extend_from_slice(&live.next);
            live.next.clear();
            live.logits_at = Some(self.batch.n_tokens() - 1);
            for &token in &live.drafted {
                self.batch
                    .add(token, live.pos, &[live.seq], true)
                    .map_err(llama_err)?;
                live.pos += 1;
            }
            self.cached[live.seq as usize].extend_from_slice(&live.drafted);
            self.rows.push((live.seq, n + live.drafted.len()));
        }
        // Prompt tokens are far cheaper in big batches (on the 2-core machine a batch of 512
        // took about 1.5 s, one of 100 to 200 beside 7 answers' tokens about 1.1 s), so a prompt
        // waits while the answers being written outnumber the prompts waiting; once prompts go
        // in, they go in until all are in. Measured on the rollout bench (8 sequences): 0.60
        // steps/s when each prompt went in as soon as it came, 0.90 with the wait.
        let waiting = lives.iter().filter(|l| l.fed < l.prompt.len()).count();
        let writing = lives.iter().filter(|l| l.logits_at.is_some()).count();
        let begun = lives.iter().any(|l| l.fed > 0 && l.fed < l.prompt.len());
        if !begun && waiting < writing {
            return Ok(0);
        }
        let mut prompt = 0;
        for live in lives.iter_mut() {
            let room = self.n_batch - self.batch.n_tokens() as usize;
            let take = room.min(live.prompt.len() - live.fed);
            if take == 0 {
                continue;
            }
            let end = live.fed + take;
            for k in live.fed..end {
                self.batch
                    .add(
                        live.prompt[k],
                        live.pos,
                        &[live.seq],
                        k + 1 == live.prompt.len(),
                    )
                    .map_err(llama_err)?;
                live.pos += 1;
            }
            self.cached[live.seq as usize].extend_from_slice(&live.prompt[live.fed..end]);
            self.rows.push((live.seq, take));
            live.fed = end;
            if end == live.prompt.len() {
                live.logits_at = Some(self.batch.n_tokens() - 1);
            }
            prompt += take;
        }
        Ok(prompt)
    }
}

impl Policy for LocalPolicy {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn respond(
        &mut self,
        requests: &[Request],
        sampling: &Sampling,
        on_token: &mut dyn FnMut(usize, &str),
    ) -> Result<Vec<Response>, PolicyError> {
        let mut collect = Collect::new(requests, on_token)?;
        self.serve(requests.to_vec(), sampling, &mut collect)?;
        collect.responses()
    }

    /// Continuous batching: every decode call holds one token of each answer being written
    /// and, in the room left, the prompts of requests that have just joined, so the batch stays
    /// full while answers end at different times.
    fn serve(
        &mut self,
        first: Vec<Request>,
        sampling: &Sampling,
        feed: &mut dyn Feed,
    ) -> Result<(), PolicyError> {
        sampling.check().map_err(PolicyError::Llama)?;
        let rules = Rules {
            force_action: self.model.vocab().tokenize(b"\nACTION: ", false, false),
            reason_budget: sampling.reason_budget(),
            max_tokens: sampling.max_tokens,
        };
        let mut lives = Vec::with_capacity(first.len());
        for request in first {
            lives.push(self.start(request, sampling)?);
        }
        loop {
            // Choose the next tokens of the answers the last batch decoded; hand over those
            // that are over, and start what their slots ask next.
            let mut i = 0;
            while i < lives.len() {
                let Some(idx) = lives[i].logits_at.take() else {
                    i += 1;
                    continue;
                };
                if !self.verify(&mut lives[i], idx, &rules, feed)? {
                    i += 1;
                    continue;
                }
                let live = lives.remove(i);
                self.stats.gen_tokens += u64::from(live.gen_tokens);
                let (request, response) = live.answer();
                match feed.answered(request, response) {
                    Next::Ask(next) => {
                        if lives.iter().any(|l| l.request.seq == next.seq) {
                            return Err(PolicyError::Llama(format!(
                                "slot {} asked twice at once",
                                next.seq
                            )));
                        }
                        lives.insert(i, self.start(next, sampling)?);
                        i += 1;
                    }
                    Next::Done => {}
                    Next::Stop => return Ok(()),
                }
            }
            if lives.is_empty() {
                return Ok(());
            }
            let prompt = self.fill(&mut lives)?;
            let n = self.batch.n_tokens() as usize;
            if n == 0 {
                return Err(PolicyError::Llama(
                    "requests are waiting but nothing is left to decode".into(),
                ));
            }
            self.stats.decode_calls += 1;
            self.stats.ubatches += if self.cached.len() > 1 {
                equal_splits(&self.rows, self.n_batch) as u64
            } else {
                n.div_ceil(self.n_batch) as u64
            };
            let t0 = Instant::now();
            self.ctx.decode(&mut self.batch).map_err(llama_err)?;
            let took = t0.elapsed().as_secs_f64();
            // A batch that mixes prompts and answers is counted to each by its share of tokens.
            let share = prompt as f64 / n as f64;
            self.stats.prompt_s += took * share;
            self.stats.decode_s += took * (1.0 - share);
            let now = Instant::now();
            for live in lives.iter_mut() {
                if live.prompted.is_none() && live.fed == live.prompt.len() {
                    live.prompted = Some(now);
                }
            }
        }
    }

    fn release(&mut self, seq: usize) {
        if seq < self.cached.len() {
            let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
            self.cached[seq].clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adm(commands: &[&str]) -> Vec<String> {
        commands.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn a_batch_is_cut_into_parts_of_equal_rows_as_llama_cpp_cuts_it() {
        // Rows of equal length: one part.
        assert_eq!(equal_splits(&[(0, 5), (1, 5), (2, 5), (3, 0)], 512), 1);
        // 1, 3 and 5 tokens: 1 of each, then 2 of the two left, then 2 of the last.
        assert_eq!(equal_splits(&[(0, 1), (1, 3), (2, 5)], 512), 3);
        // A prompt beside answers: the answers' token, then the prompt's rest.
        assert_eq!(equal_splits(&[(0, 1), (1, 1), (2, 200)], 512), 2);
        // Parts hold at most n_ubatch tokens.
        assert_eq!(equal_splits(&[(0, 300), (1, 300)], 512), 2);
        assert_eq!(equal_splits(&[], 512), 0);
        // Ids that do not follow each other in batch order go in parts of their own.
        assert_eq!(equal_splits(&[(1, 5), (0, 5), (2, 5)], 512), 2);
        assert_eq!(equal_splits(&[(0, 5), (2, 5), (3, 5)], 512), 2);
        assert_eq!(equal_splits(&[(0, 5), (1, 5), (2, 5), (3, 5)], 512), 1);
    }

    #[test]
    fn best_tokens_are_in_order_of_score_ties_by_id() {
        let logits = [0.5, 3.0, -1.0, 3.0, 2.0, f32::NEG_INFINITY, 7.0];
        let ids = |n| -> Vec<i32> { best_tokens(&logits, n).iter().map(|t| t.0).collect() };
        assert_eq!(ids(3), [6, 1, 3]);
        assert_eq!(ids(4), [6, 1, 3, 4]);
        assert_eq!(ids(100), [6, 1, 3, 4, 0, 2, 5]);
        assert_eq!(ids(1)[0], argmax(&logits).0);
    }

    #[test]
    fn the_grammar_of_a_mixed_list_leaves_the_hole_to_the_model() {
        let g = grammar(&adm(&["click[back to search]", "search[...]"]), None);
        assert_eq!(
            g,
            "root ::= \"REASON: \" [^\\n]+ \"\\nACTION: \" action\n\
             action ::= \"click[back to search]\" | (\"search[\" [^\\]\\n\\r \\t] [^\\]\\n\\r]{0,199} \"]\")\n"
        );
    }

    #[test]
    fn the_grammar_of_literal_commands_is_unchanged() {
        assert_eq!(
            grammar(&adm(&["go to fridge 1", "say \"hi\""]), Some(40)),
            "root ::= \"REASON: \" [^\\n]{1,40} \"\\nACTION: \" action\n\
             action ::= \"go to fridge 1\" | \"say \\\"hi\\\"\"\n"
        );
    }

    #[test]
    fn completion_writes_out_literals_but_never_fills_a_hole() {
        let a = adm(&["click[back to search]", "click[next >]", "search[...]"]);
        assert_eq!(
            completion("click[b", &a).as_deref(),
            Some("click[back to search]")
        );
        assert_eq!(completion("click[", &a), None, "two literals remain");
        assert_eq!(
            completion("s", &a),
            None,
            "the template's hole is the model's"
        );
        assert_eq!(completion("search[", &a), None);
        assert_eq!(completion("search[red sh", &a), None);
        assert_eq!(
            completion("search[red shoes]", &a).as_deref(),
            Some("search[red shoes]")
        );
        let only = adm(&["search[...]"]);
        assert_eq!(completion("", &only), None);
        let unbracketed = adm(&["say ..."]);
        assert_eq!(
            completion("say hi", &unbracketed),
            None,
            "a fill could go on"
        );
        assert_eq!(completion("", &adm(&["look"])).as_deref(), Some("look"));
    }
}
