//! The llama.cpp side of training: the base model, a LoRA adapter set on a training context, and
//! ggml-opt (AdamW, cross-entropy on next tokens) stepping one window at a time.
//!
//! llama.cpp's `llama_opt_init` only marks F32 model tensors as trainable and never the
//! adapter's; so the adapter's A and B are marked with `ggml_set_param` (found through the C++
//! shim) and every model tensor is refused by the parameter filter.
//!
//! Four things are done from ggml's graph-evaluation callback, which sees every node before it
//! is computed and, when asked, after:
//! - **Loss on chosen tokens only.** `llama_opt_epoch` fills a one-hot label for every position.
//!   Before the cross-entropy node runs, the label rows of left-out positions are zeroed, so
//!   they add nothing to the loss; after its backward node has run, the same rows of the
//!   gradient are zeroed (ggml's backward assumes labels sum to one and would otherwise push
//!   those positions' logits down).
//! - **Optimizer state.** AdamW's moments and the gradient accumulators live inside ggml-opt;
//!   the optimizer-step nodes name them, so the moments can be saved in a checkpoint and restored
//!   on resume, the accumulators cleared after each step (ggml-opt never clears them in the mode
//!   llama.cpp uses it in), and the bias correction set from the run's own step count rather
//!   than ggml-opt's, which restarts at zero.
//! - **Skipping unused work.** ggml-opt also computes an accuracy (arg-max over the vocabulary
//!   at every position) that training never reads; those nodes become no-ops. Where few of a
//!   window's positions are in the loss (the response tokens; a student's rows are nine tenths
//!   prompt), the output projection (vocabulary x width multiply-adds per position), the
//!   cross-entropy and both their backward passes are taken over and computed at those
//!   positions alone ([`Head`]): every other position's logits are never read and its gradient
//!   is zero. `TrainConfig::dense_head` keeps ggml's computation at every position, the
//!   reference.
//! - **Faster products.** Every other MUL_MAT and OUT_PROD of F32 host tensors above a small
//!   size becomes a ggml custom operation computed by the shim on ggml's own threads: at BF16 on
//!   AMX tiles or AVX512-BF16 vectors where the CPU has them (`bf16.cpp`), else F32 through the
//!   system BLAS. Once the pass's attention mask is seen to hide every later position,
//!   attention's products leave out the pairs it hides, whose terms are zero ([`Causal`]):
//!   about half their work. `TrainConfig::dense_attention` computes every pair, the reference.
//! - **Per-operation timings** when profiling: every node is then computed on its own.

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_void};
use std::path::Path;
use std::time::Instant;

use llama_cpp_sys_2 as sys;

use super::TrainError;
use super::checkpoint::Moments;
use super::data::Window;
use crate::model::adapter::Adapter;

unsafe extern "C" {
    /// `src/train/shim.cpp`.
    fn leap_lora_weights(
        adapter: *const sys::llama_adapter_lora,
        names: *mut *const c_char,
        a: *mut *mut sys::ggml_tensor,
        b: *mut *mut sys::ggml_tensor,
        capacity: i32,
    ) -> i32;
    /// `src/train/shim.cpp`.
    #[allow(clippy::too_many_arguments)]
    fn leap_out_prod_rows(
        dst: *mut f32,
        dst_row: i64,
        w: *const f32,
        w_row: i64,
        g: *const f32,
        g_row: i64,
        n_in: i64,
        n_vocab: i64,
        n_pos: i64,
        n_threads: i32,
    );
    /// `src/train/shim.cpp`.
    #[allow(clippy::too_many_arguments)]
    fn leap_blas_product(
        out_prod: i32,
        check_only: i32,
        n_threads: i32,
        bf16: i32,
        dst: *mut f32,
        ne: *const i64,
        nb: *const usize,
        src0_type: i32,
        src0: *const c_void,
        ne0: *const i64,
        nb0: *const usize,
        src1: *const f32,
        ne1: *const i64,
        nb1: *const usize,
    ) -> i32;
    /// `src/train/shim.cpp`: a product as a ggml custom operation (see [`make_product_task`]).
    fn leap_product_task(dst: *mut sys::ggml_tensor, ith: i32, nth: i32, userdata: *mut c_void);
    /// `src/train/bf16.cpp`: which BF16 kernels this CPU runs (1 tiles | 2 vectors).
    fn leap_bf16_kernels() -> i32;
    /// `src/train/shim.cpp`.
    fn leap_set_eval_callback(
        ctx: *mut sys::llama_context,
        callback: sys::ggml_backend_sched_eval_callback,
        user_data: *mut c_void,
    );
}

/// How to load the base and run the training context.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Positions per window: the context, batch and micro-batch size at once, so that gradients
    /// flow through K and V.
    pub n_ctx: u32,
    pub threads: i32,
    pub gpu_layers: u32,
    /// Time every graph node (slower: each node is computed on its own).
    pub profile: bool,
    /// Which kernels compute the large F32 matrix products.
    pub matmul: Matmul,
    /// The output projection, the loss and their backward at every position, as ggml computes
    /// them (see [`TrainConfig::dense_head`](super::TrainConfig::dense_head)).
    pub dense_head: bool,
    /// Attention's products over every pair of positions, as ggml computes them (see
    /// [`TrainConfig::dense_attention`](super::TrainConfig::dense_attention)).
    pub dense_attention: bool,
}

/// Who computes the training step's large F32 matrix products (MUL_MAT and OUT_PROD on the CPU).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Matmul {
    /// Mixed precision (operands rounded to BF16, sums kept in F32, as PyTorch's BF16 autocast
    /// does) on the fastest kernel this CPU has: `amx`, else `avx512-bf16`, else F32 through
    /// BLAS.
    #[default]
    Bf16,
    /// BF16 on AMX tiles (Intel Xeon since Sapphire Rapids).
    Amx,
    /// BF16 through AVX512-BF16's dot products (AMD Zen 4 and later, Intel Cooper Lake and
    /// Sapphire Rapids).
    #[serde(rename = "avx512-bf16")]
    #[value(name = "avx512-bf16")]
    Avx512Bf16,
    /// F32 through the system BLAS (several times faster than ggml's kernels on x86 CPUs).
    Blas,
    /// ggml's own F32 kernels (for comparison).
    Ggml,
}

impl Matmul {
    /// What actually computes the products on this CPU: a BF16 kernel the CPU lacks falls back
    /// to the next (AMX, then AVX512-BF16, then BLAS).
    pub fn resolved(self) -> Matmul {
        match self {
            Matmul::Bf16 | Matmul::Amx if amx_available() => Matmul::Amx,
            Matmul::Bf16 | Matmul::Amx | Matmul::Avx512Bf16 if avx512_bf16_available() => {
                Matmul::Avx512Bf16
            }
            Matmul::Bf16 | Matmul::Amx | Matmul::Avx512Bf16 => Matmul::Blas,
            other => other,
        }
    }

    /// The BF16 kernels this CPU runs, fastest first.
    pub fn bf16_kernels() -> Vec<Matmul> {
        [Matmul::Amx, Matmul::Avx512Bf16]
            .into_iter()
            .filter(|m| m.resolved() == *m)
            .collect()
    }

    /// The name `--matmul` takes (`clap::ValueEnum`) and summaries show.
    pub fn as_str(self) -> &'static str {
        match self {
            Matmul::Bf16 => "bf16",
            Matmul::Amx => "amx",
            Matmul::Avx512Bf16 => "avx512-bf16",
            Matmul::Blas => "blas",
            Matmul::Ggml => "ggml",
        }
    }

    /// The shim's number for a resolved BF16 kernel (1 tiles, 2 vectors), 0 for F32.
    fn bf16_kernel(self) -> i32 {
        match self.resolved() {
            Matmul::Amx => 1,
            Matmul::Avx512Bf16 => 2,
            _ => 0,
        }
    }
}

/// Whether this CPU has AMX-BF16 tiles the process may use.
pub fn amx_available() -> bool {
    // SAFETY: no arguments; asks the CPU and, once, the kernel.
    unsafe { leap_bf16_kernels() & 1 != 0 }
}

/// Whether this CPU runs AVX512-BF16's dot products (and the system saves their registers).
pub fn avx512_bf16_available() -> bool {
    // SAFETY: as above.
    unsafe { leap_bf16_kernels() & 2 != 0 }
}

/// AdamW's settings for one step.
#[derive(Debug, Clone, Copy)]
pub struct AdamW {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

/// Time spent per ggml operation, summed over the profiled steps.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OpTime {
    pub op: String,
    pub calls: u64,
    pub ms: f64,
}

/// State shared with the graph callbacks. Only touched on the thread that runs the epoch.
struct Hooks {
    /// Label rows of the current window left out of the loss.
    masked: Vec<(usize, usize)>,
    adamw: AdamW,
    /// The optimizer step being taken, counted from 1 over the whole run.
    step: u64,
    /// Per trainable tensor, its AdamW moments (m, v) inside ggml-opt.
    moments: HashMap<usize, (*mut sys::ggml_tensor, *mut sys::ggml_tensor)>,
    /// Per trainable tensor, the accumulator its gradient is summed into.
    grad_accs: HashMap<usize, *mut sys::ggml_tensor>,
    /// Moments to write into ggml-opt the first time each tensor is stepped (resume).
    restore: HashMap<usize, Moments>,
    profile: Option<HashMap<String, (u64, f64)>>,
    node_start: Option<Instant>,
    /// When profiling, whether the node being computed is a product left to ggml's own
    /// kernels (too small, or a layout the shim does not take) though another was chosen.
    by_ggml: bool,
    /// Whether the node being computed is an attention product skipping the pairs the mask
    /// hides.
    causal_now: bool,
    /// When profiling, the first training pass's nodes in order, then what they say about
    /// its memory.
    memory: Option<super::peak::Trace>,
    peak: Option<super::peak::PeakMemory>,
    /// Compute the output projection, the loss and their backward only at the positions in the
    /// loss, when they are few.
    sparse_head: bool,
    /// Skip the terms of attention's products that the causal mask makes zero.
    causal_attention: bool,
    /// Whether this pass's attention mask hides every later position from each position
    /// (checked at the first softmax; attention's products skip the hidden pairs only then).
    causal_mask: Option<bool>,
    /// Who runs the large F32 matrix products (resolved): BLAS, a BF16 kernel, or ggml's
    /// kernels (`Ggml`).
    products: Matmul,
    threads: i32,
    /// The output projection's backward node, taken over from ggml: computed (at the positions
    /// in the loss only) once its inputs are.
    deferred: Option<*mut sys::ggml_tensor>,
    /// The output projection's forward node, taken over: computed at the positions in the loss
    /// only, once its inputs are.
    deferred_logits: Option<*mut sys::ggml_tensor>,
    /// This pass's output projection and loss at the positions in the loss only (see [`Head`]).
    head: Option<Head>,
    /// An F32 copy of the output projection's weight when the model's is quantised or F16
    /// (address of the weight's data, the copy): made once, for the products at the few
    /// positions in the loss, which would otherwise convert the whole weight for a few rows.
    output_f32: Option<(usize, Vec<f32>)>,
    /// The head's logits and their gradient at the positions in the loss, one row of the
    /// vocabulary per live position (kept from pass to pass, so as not to fault in fresh
    /// pages each step).
    head_rows: Vec<f32>,
    head_grads: Vec<f32>,
    /// Products turned into custom operations computed by the shim, and their own operation.
    products_taken: HashMap<usize, sys::ggml_op>,
    /// First problem met inside a callback (they cannot return errors).
    error: Option<String>,
    /// Token ranges of the window that attend only within themselves (empty: one sequence).
    documents: Vec<(usize, usize)>,
    /// With tree packing, the position each real position continues (empty: read in order).
    parents: Vec<Option<usize>>,
    /// Attention masks already restricted to the documents or the tree in this pass.
    isolated: Vec<usize>,
    /// Rotary position inputs already set to the tree's positions in this pass.
    positioned: Vec<usize>,
    /// Label rows whose log-probabilities the pass sums, per span; empty for plain
    /// cross-entropy.
    spans: Vec<(usize, usize)>,
    /// The window's labels: the token that follows each position.
    labels: Vec<i32>,
    /// The spans' summed log-probabilities, once the forward pass has computed the logits.
    logps: Vec<f64>,
    /// A training step's own loss, from the spans' log-probabilities: the loss and its
    /// derivative by each span's log-probability; it replaces cross-entropy's gradient.
    span_loss: Option<SpanLoss>,
    /// What `span_loss` gave in this pass.
    span_result: Option<(f64, Vec<f64>)>,
}

impl Hooks {
    /// Whether the window's positions attend to less than every position before them.
    fn restricts_attention(&self) -> bool {
        !self.documents.is_empty() || !self.parents.is_empty()
    }
}

/// A pass whose logits were computed at the positions in the loss only, into `Hooks::head_rows`
/// (the logits node itself holds whatever its buffer held): the loss, its backward and the
/// output projection's backward are taken over from ggml and computed at `live` alone, the
/// gradient into `Hooks::head_grads`. ggml computes all four at every position and zeroes the
/// left-out rows after; where nine in ten positions are prompt, that was about an eighth of a
/// training step (`leap train --profile`).
struct Head {
    /// The logits node (vocabulary x positions, F32, host memory).
    logits: *mut sys::ggml_tensor,
    /// The positions in the loss, in order.
    live: Vec<usize>,
    /// log sum exp of each live position's logits, from the loss's forward.
    lse: Vec<f64>,
    /// The cross-entropy node and its backward, once taken over.
    loss: Option<*mut sys::ggml_tensor>,
    back: Option<*mut sys::ggml_tensor>,
    /// The output projection's backward, taken over: computed once its inputs are.
    projection_back: Option<*mut sys::ggml_tensor>,
    /// Whether the loss backward's node holds nothing yet (its gradient is in
    /// `Hooks::head_grads`): it is written out before any node but the output projection's
    /// backward taken over reads it.
    unwritten: bool,
}

impl Head {
    /// The row of `rows` (one per live position) that holds position `p`.
    fn index(&self, p: usize) -> Option<usize> {
        self.live.binary_search(&p).ok()
    }
}

/// A loss on the summed log-probabilities of a window's spans: given them, the loss and its
/// derivative by each.
pub type SpanLoss = Box<dyn Fn(&[f64]) -> (f64, Vec<f64>) + Send>;

/// A model with a LoRA adapter set up for training.
pub struct Session {
    ctx: *mut sys::llama_context,
    adapter: *mut sys::llama_adapter_lora,
    model: *mut sys::llama_model,
    hooks: *mut Hooks,
    dataset: sys::ggml_opt_dataset_t,
    result: sys::ggml_opt_result_t,
    /// Sorted by name, as in [`Adapter::weights`].
    tensors: Vec<(String, *mut sys::ggml_tensor, *mut sys::ggml_tensor)>,
    n_ctx: usize,
    /// Keep each step's gradients (of A and B, per adapter weight) in `gradients`.
    pub keep_gradients: bool,
    gradients: Vec<(Vec<f32>, Vec<f32>)>,
}

// SAFETY: every pointer is owned by the session and only used through `&mut self`; llama.cpp
// contexts may move between threads as long as one thread at a time uses them.
unsafe impl Send for Session {}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: each pointer was created by the matching llama.cpp/ggml constructor and is
        // freed once, context before adapter before model (both refer to the model).
        unsafe {
            if !self.result.is_null() {
                sys::ggml_opt_result_free(self.result);
            }
            if !self.dataset.is_null() {
                sys::ggml_opt_dataset_free(self.dataset);
            }
            if !self.ctx.is_null() {
                sys::llama_free(self.ctx);
            }
            if !self.adapter.is_null() {
                sys::llama_adapter_lora_free(self.adapter);
            }
            if !self.model.is_null() {
                sys::llama_model_free(self.model);
            }
            drop(Box::from_raw(self.hooks));
        }
    }
}

fn c_path(path: &Path) -> Result<CString, TrainError> {
    CString::new(path.to_string_lossy().as_bytes())
        .map_err(|_| TrainError::model(path, "the path holds a NUL byte"))
}

impl Session {
    /// Loads `model`, sets `adapter` on a training context and prepares the optimizer.
    pub fn new(
        model: &Path,
        adapter: &Adapter,
        config: &SessionConfig,
        adamw: AdamW,
    ) -> Result<Session, TrainError> {
        crate::agent::local::backend();
        let hooks = Box::into_raw(Box::new(Hooks {
            masked: Vec::new(),
            adamw,
            step: 1,
            moments: HashMap::new(),
            grad_accs: HashMap::new(),
            restore: HashMap::new(),
            profile: config.profile.then(HashMap::new),
            node_start: None,
            by_ggml: false,
            causal_now: false,
            memory: None,
            peak: None,
            sparse_head: !config.dense_head,
            causal_attention: !config.dense_attention,
            causal_mask: None,
            products: config.matmul.resolved(),
            threads: config.threads,
            deferred: None,
            deferred_logits: None,
            head: None,
            output_f32: None,
            head_rows: Vec::new(),
            head_grads: Vec::new(),
            products_taken: HashMap::new(),
            error: None,
            documents: Vec::new(),
            parents: Vec::new(),
            isolated: Vec::new(),
            positioned: Vec::new(),
            spans: Vec::new(),
            labels: Vec::new(),
            logps: Vec::new(),
            span_loss: None,
            span_result: None,
        }));
        let mut s = Session {
            ctx: std::ptr::null_mut(),
            adapter: std::ptr::null_mut(),
            model: std::ptr::null_mut(),
            hooks,
            dataset: std::ptr::null_mut(),
            result: std::ptr::null_mut(),
            tensors: Vec::new(),
            n_ctx: config.n_ctx as usize,
            keep_gradients: false,
            gradients: Vec::new(),
        };
        let path = c_path(model)?;
        // SAFETY: plain llama.cpp calls with valid arguments; every returned pointer is checked
        // and owned by `s`, whose Drop frees whatever was created if a later step fails.
        unsafe {
            let mut mp = sys::llama_model_default_params();
            mp.n_gpu_layers = config.gpu_layers as i32;
            // Read into memory rather than mapped, as llama.cpp's training expects: with a
            // mapped file, training model tensors crashes at the first optimizer step. Only the
            // adapter trains here, but the memory used is the same either way.
            mp.load_mode = sys::LLAMA_LOAD_MODE_NONE;
            // Repacked CPU layouts have no backward pass.
            mp.use_extra_bufts = false;
            s.model = sys::llama_model_load_from_file(path.as_ptr(), mp);
            if s.model.is_null() {
                return Err(TrainError::model(
                    model,
                    "llama.cpp cannot load it (LEAP_LLAMA_LOG=1 shows why)",
                ));
            }

            let file = tempfile::Builder::new()
                .prefix(".leap-lora-")
                .suffix(".gguf")
                .tempfile()
                .map_err(|e| TrainError::Io {
                    path: std::env::temp_dir(),
                    source: e,
                })?;
            adapter.write(file.path())?;
            let adapter_path = c_path(file.path())?;
            s.adapter = sys::llama_adapter_lora_init(s.model, adapter_path.as_ptr());
            if s.adapter.is_null() {
                return Err(TrainError::model(
                    model,
                    "llama.cpp refused the LoRA adapter for this model",
                ));
            }

            let mut cp = sys::llama_context_default_params();
            cp.n_ctx = config.n_ctx;
            cp.n_batch = config.n_ctx;
            cp.n_ubatch = config.n_ctx;
            cp.n_seq_max = 1;
            cp.n_threads = config.threads;
            cp.n_threads_batch = config.threads;
            cp.flash_attn_type = sys::LLAMA_FLASH_ATTN_TYPE_DISABLED;
            cp.no_perf = true;
            s.ctx = sys::llama_init_from_model(s.model, cp);
            if s.ctx.is_null() {
                return Err(TrainError::Llama(format!(
                    "cannot create a training context of {} tokens",
                    config.n_ctx
                )));
            }
            if sys::llama_n_ctx(s.ctx) != config.n_ctx {
                return Err(TrainError::Config(format!(
                    "llama.cpp rounds a context of {} to {}: use a multiple of 256",
                    config.n_ctx,
                    sys::llama_n_ctx(s.ctx)
                )));
            }
            let mut scale = 1.0f32;
            if sys::llama_set_adapters_lora(s.ctx, &mut s.adapter, 1, &mut scale) != 0 {
                return Err(TrainError::Llama("cannot set the adapter".into()));
            }

            let n = leap_lora_weights(
                s.adapter,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            );
            let mut names = vec![std::ptr::null(); n as usize];
            let mut a = vec![std::ptr::null_mut(); n as usize];
            let mut b = vec![std::ptr::null_mut(); n as usize];
            leap_lora_weights(
                s.adapter,
                names.as_mut_ptr(),
                a.as_mut_ptr(),
                b.as_mut_ptr(),
                n,
            );
            for i in 0..n as usize {
                let name = CStr::from_ptr(names[i]).to_string_lossy().into_owned();
                sys::ggml_set_param(a[i]);
                sys::ggml_set_param(b[i]);
                s.tensors.push((name, a[i], b[i]));
            }
            s.tensors.sort_by(|x, y| x.0.cmp(&y.0));
            let expected: Vec<&str> = adapter.weights.iter().map(|w| w.name.as_str()).collect();
            let found: Vec<&str> = s.tensors.iter().map(|t| t.0.as_str()).collect();
            if expected != found {
                return Err(TrainError::Llama(format!(
                    "llama.cpp loaded {} adapter weights, expected {}",
                    found.len(),
                    expected.len()
                )));
            }

            let params = sys::llama_opt_params {
                n_ctx_train: 0,
                param_filter: Some(no_model_tensor),
                param_filter_ud: std::ptr::null_mut(),
                get_opt_pars: Some(optimizer_params),
                get_opt_pars_ud: hooks.cast(),
                optimizer_type: sys::GGML_OPT_OPTIMIZER_TYPE_ADAMW,
            };
            sys::llama_opt_init(s.ctx, s.model, params);
            leap_set_eval_callback(s.ctx, Some(eval_hook), hooks.cast());

            let n = config.n_ctx as i64;
            s.dataset =
                sys::ggml_opt_dataset_init(sys::GGML_TYPE_I32, sys::GGML_TYPE_I32, n, n, 1, 1);
            s.result = sys::ggml_opt_result_init();
        }
        Ok(s)
    }

    fn hooks(&mut self) -> &mut Hooks {
        // SAFETY: `hooks` lives as long as the session; callbacks only run inside
        // `llama_opt_epoch`, never while this borrow is held.
        unsafe { &mut *self.hooks }
    }

    /// AdamW moments to put in place at the first optimizer step (from a checkpoint), per
    /// adapter weight in name order: (moments of A, moments of B).
    pub fn restore_moments(&mut self, moments: &[(Moments, Moments)]) {
        let pairs: Vec<_> = self.tensors.iter().map(|t| (t.1, t.2)).collect();
        let hooks = self.hooks();
        for ((a, b), (ma, mb)) in pairs.into_iter().zip(moments) {
            hooks.restore.insert(a as usize, ma.clone());
            hooks.restore.insert(b as usize, mb.clone());
        }
    }

    /// One optimizer step on `window`, learning its labels outside its masked rows. `step`
    /// counts from 1 over the whole run. Returns the loss (mean over the rows in the loss).
    pub fn train_step(
        &mut self,
        window: &Window,
        step: u64,
        adamw: AdamW,
    ) -> Result<f64, TrainError> {
        let hooks = self.hooks();
        hooks.step = step;
        hooks.adamw = adamw;
        Ok(self.run(window, true, false, None)?.0)
    }

    /// The loss on a window without learning from it.
    pub fn eval(&mut self, window: &Window) -> Result<f64, TrainError> {
        Ok(self.run(window, false, false, None)?.0)
    }

    /// One optimizer step on `window` under `loss`, a loss on its spans' log-probabilities
    /// (each span: the label rows of one row of the window). Returns that loss.
    pub fn span_step(
        &mut self,
        window: &Window,
        loss: SpanLoss,
        step: u64,
        adamw: AdamW,
    ) -> Result<f64, TrainError> {
        let hooks = self.hooks();
        hooks.step = step;
        hooks.adamw = adamw;
        let (_, _, result) = self.run(window, true, true, Some(loss))?;
        let (loss, _) =
            result.ok_or_else(|| TrainError::Llama("the loss was never computed".into()))?;
        if !loss.is_finite() {
            return Err(TrainError::Diverged { loss });
        }
        Ok(loss)
    }

    /// The summed log-probability of each of the window's spans, without learning.
    pub fn span_logps(&mut self, window: &Window) -> Result<Vec<f64>, TrainError> {
        let (_, logps, _) = self.run(window, false, true, None)?;
        Ok(logps)
    }

    /// One pass over `window`: ggml's loss (mean over the rows in the loss), with `spans` the
    /// spans' log-probabilities, and what `loss` gave for them.
    #[allow(clippy::type_complexity)]
    fn run(
        &mut self,
        window: &Window,
        train: bool,
        spans: bool,
        loss: Option<SpanLoss>,
    ) -> Result<(f64, Vec<f64>, Option<(f64, Vec<f64>)>), TrainError> {
        let (tokens, labels, masked) = (&window.tokens, &window.labels, &window.masked);
        assert_eq!(tokens.len(), self.n_ctx, "a window is exactly the context");
        assert_eq!(labels.len(), self.n_ctx, "one label per position");
        let n_loss = self.n_ctx - masked.iter().map(|(a, b)| b - a).sum::<usize>();
        let want_spans = spans || loss.is_some();
        let hooks = self.hooks();
        hooks.masked = masked.to_vec();
        hooks.documents = window.documents.clone();
        hooks.parents = window.parents.clone();
        hooks.isolated.clear();
        hooks.positioned.clear();
        hooks.causal_mask = None;
        hooks.spans = if want_spans {
            window.spans.clone()
        } else {
            Vec::new()
        };
        hooks.labels.clone_from(labels);
        hooks.head = None;
        hooks.deferred_logits = None;
        hooks.logps.clear();
        hooks.span_loss = loss;
        hooks.span_result = None;
        if train && hooks.profile.is_some() && hooks.peak.is_none() {
            hooks.memory = Some(super::peak::Trace::default());
        }
        // SAFETY: the dataset holds one datapoint of n_ctx I32 tokens and n_ctx I32 labels in
        // host memory; llama_opt_epoch reads them back and runs the graph synchronously.
        unsafe {
            let data = sys::ggml_opt_dataset_data(self.dataset);
            let lab = sys::ggml_opt_dataset_labels(self.dataset);
            std::ptr::copy_nonoverlapping(tokens.as_ptr(), (*data).data.cast(), self.n_ctx);
            std::ptr::copy_nonoverlapping(labels.as_ptr(), (*lab).data.cast(), self.n_ctx);
            sys::ggml_opt_result_reset(self.result);
            let (result_train, result_eval, split) = if train {
                (self.result, std::ptr::null_mut(), 1)
            } else {
                (std::ptr::null_mut(), self.result, 0)
            };
            sys::llama_opt_epoch(
                self.ctx,
                self.dataset,
                result_train,
                result_eval,
                split,
                None,
                None,
            );
            let hooks = self.hooks();
            hooks.span_loss = None;
            if let Some(trace) = hooks.memory.take() {
                hooks.peak = trace.peak();
            }
            if let Some(e) = hooks.error.take() {
                return Err(TrainError::Llama(e));
            }
            if hooks.restricts_attention() && hooks.isolated.is_empty() {
                return Err(TrainError::Llama(
                    "the pass never showed its attention mask: cannot keep the window's rows apart"
                        .into(),
                ));
            }
            if !hooks.parents.is_empty() && hooks.positioned.is_empty() {
                return Err(TrainError::Llama(
                    "the pass never showed its rotary positions: cannot pack rows as a tree".into(),
                ));
            }
            if hooks.logps.len() != hooks.spans.len() {
                return Err(TrainError::Llama(
                    "the pass never computed the log-probabilities of the window's rows".into(),
                ));
            }
            let logps = std::mem::take(&mut hooks.logps);
            let result = hooks.span_result.take();
            if train && self.keep_gradients {
                let accs = &(*self.hooks).grad_accs;
                let grad = |t: *mut sys::ggml_tensor| {
                    let mut out = Vec::new();
                    if let Some(&acc) = accs.get(&(t as usize)) {
                        read_tensor(acc, &mut out);
                    }
                    out
                };
                self.gradients = (self.tensors.iter())
                    .map(|&(_, a, b)| (grad(a), grad(b)))
                    .collect();
            }
            if train {
                // ggml-opt sums each step's gradients into accumulators it resets only at the
                // first step when steps are not accumulated (opt_period 1 with graphs rebuilt
                // per step, as llama.cpp builds them): left alone, step t would follow the sum
                // of all gradients so far. Clear them for the next step.
                for &acc in self.hooks().grad_accs.values() {
                    sys::ggml_backend_tensor_memset(acc, 0, 0, sys::ggml_nbytes(acc));
                }
            }
            let mut loss = 0f64;
            sys::ggml_opt_result_loss(self.result, &mut loss, std::ptr::null_mut());
            if !loss.is_finite() {
                return Err(TrainError::Diverged { loss });
            }
            // ggml averages over all positions; left-out ones added zero.
            let loss = if n_loss > 0 {
                loss * self.n_ctx as f64 / n_loss as f64
            } else {
                0.0
            };
            Ok((loss, logps, result))
        }
    }

    /// The adapter's current weights, in the layout of [`Adapter::weights`].
    pub fn read_weights(&self, adapter: &mut Adapter) {
        for (w, (_, a, b)) in adapter.weights.iter_mut().zip(&self.tensors) {
            read_tensor(*a, &mut w.a);
            read_tensor(*b, &mut w.b);
        }
    }

    /// The last step's gradients in the layout of [`Adapter::weights`] (with
    /// `keep_gradients`): A and B of `adapter` hold dL/dA and dL/dB.
    pub fn read_gradients(&self, adapter: &mut Adapter) {
        for (w, (a, b)) in adapter.weights.iter_mut().zip(&self.gradients) {
            w.a.clone_from(a);
            w.b.clone_from(b);
        }
    }

    /// AdamW's moments per adapter weight (A, B); empty before the first step.
    pub fn read_moments(&mut self) -> Vec<(Moments, Moments)> {
        let pairs: Vec<_> = self.tensors.iter().map(|t| (t.1, t.2)).collect();
        let hooks = self.hooks();
        if hooks.moments.is_empty() {
            return Vec::new();
        }
        let get = |t: *mut sys::ggml_tensor| {
            let (m, v) = hooks.moments[&(t as usize)];
            let mut out = Moments::default();
            read_tensor(m, &mut out.m);
            read_tensor(v, &mut out.v);
            out
        };
        pairs.into_iter().map(|(a, b)| (get(a), get(b))).collect()
    }

    /// When profiling, what the first training step's graph held at its peak.
    pub fn peak_memory(&mut self) -> Option<super::peak::PeakMemory> {
        self.hooks().peak.clone()
    }

    /// Time per operation so far when profiling, slowest first.
    pub fn op_times(&mut self) -> Vec<OpTime> {
        let Some(profile) = &self.hooks().profile else {
            return Vec::new();
        };
        let mut out: Vec<OpTime> = profile
            .iter()
            .map(|(op, &(calls, ms))| OpTime {
                op: op.clone(),
                calls,
                ms,
            })
            .collect();
        out.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        out
    }
}

fn read_tensor(t: *mut sys::ggml_tensor, out: &mut Vec<f32>) {
    // SAFETY: `t` is a live F32 tensor of the adapter or of ggml-opt; nbytes is its size.
    unsafe {
        let n = sys::ggml_nbytes(t);
        out.resize(n / 4, 0.0);
        sys::ggml_backend_tensor_get(t, out.as_mut_ptr().cast(), 0, n);
    }
}

/// Keeps every model tensor frozen: only the adapter trains.
unsafe extern "C" fn no_model_tensor(_: *const sys::ggml_tensor, _: *mut c_void) -> bool {
    false
}

unsafe extern "C" fn optimizer_params(ud: *mut c_void) -> sys::ggml_opt_optimizer_params {
    // SAFETY: `ud` is the session's `Hooks`, alive while the context is.
    let a = unsafe { (*(ud as *const Hooks)).adamw };
    sys::ggml_opt_optimizer_params {
        adamw: sys::ggml_opt_optimizer_params__bindgen_ty_1 {
            alpha: a.lr,
            beta1: a.beta1,
            beta2: a.beta2,
            eps: a.eps,
            wd: a.weight_decay,
        },
        sgd: sys::ggml_opt_optimizer_params__bindgen_ty_2 {
            alpha: a.lr,
            wd: a.weight_decay,
        },
    }
}

/// Zeroes rows `masked` of a matrix tensor (one row per position).
///
/// SAFETY: `t` must be a live, allocated tensor with at least as many rows as `masked` covers.
unsafe fn zero_rows(t: *mut sys::ggml_tensor, masked: &[(usize, usize)]) {
    unsafe {
        let row = (*t).nb[1];
        for &(start, end) in masked {
            sys::ggml_backend_tensor_memset(t, 0, start * row, (end - start) * row);
        }
    }
}

/// Which positions of a window attend to which, beyond causal order.
#[derive(Clone, Copy)]
enum Attend<'a> {
    /// Each position only to the positions of its own document before it.
    Documents(&'a [(usize, usize)]),
    /// Each position to itself and the chain of positions it continues.
    Tree(&'a [Option<usize>]),
}

/// Restricts a causal attention mask (F32, one row of `n_kv` per query position, 0 where it
/// may attend and -inf where not) as `attend` says. The KV cache of a training pass holds
/// position p in cell p: the mask is checked to be exactly causal first, else nothing is
/// changed.
///
/// SAFETY: `mask` is a live, allocated tensor.
unsafe fn restrict(mask: *mut sys::ggml_tensor, attend: Attend) -> Result<(), String> {
    unsafe {
        let (n_kv, rows) = ((*mask).ne[0] as usize, (*mask).ne[1] as usize);
        let end = match attend {
            Attend::Documents(documents) => documents.last().map_or(0, |d| d.1),
            Attend::Tree(parents) => parents.len(),
        };
        if (*mask).type_ != sys::GGML_TYPE_F32 || (*mask).ne[2] != 1 || (*mask).ne[3] != 1 {
            return Err("the attention mask is not the plain F32 matrix training expects".into());
        }
        if end > n_kv || end > rows {
            return Err(format!(
                "the attention mask covers {n_kv} positions, fewer than the window"
            ));
        }
        let mut m = vec![0f32; n_kv * rows];
        sys::ggml_backend_tensor_get(mask, m.as_mut_ptr().cast(), 0, m.len() * 4);
        for i in 0..end {
            let row = &m[i * n_kv..i * n_kv + end];
            if row.iter().enumerate().any(|(j, &x)| (j <= i) != (x == 0.0)) {
                return Err(format!(
                    "the attention mask is not causal at position {i}: cannot keep the window's rows apart"
                ));
            }
        }
        match attend {
            Attend::Documents(documents) => {
                for &(a, b) in documents {
                    for i in a..b {
                        m[i * n_kv..i * n_kv + a].fill(f32::NEG_INFINITY);
                    }
                }
            }
            Attend::Tree(parents) => {
                for i in 0..end {
                    let row = &mut m[i * n_kv..i * n_kv + i + 1];
                    row.fill(f32::NEG_INFINITY);
                    let mut at = Some(i);
                    while let Some(j) = at {
                        row[j] = 0.0;
                        at = parents[j];
                    }
                }
            }
        }
        sys::ggml_backend_tensor_set(mask, m.as_ptr().cast(), 0, m.len() * 4);
        Ok(())
    }
}

/// Sets the rotary positions (I32, one per position of the window, each its own index) of the
/// tree's positions to their depth: a sample's tokens then sit at the positions they would
/// have alone.
///
/// SAFETY: `positions` is a live, allocated tensor.
unsafe fn position(
    positions: *mut sys::ggml_tensor,
    parents: &[Option<usize>],
) -> Result<(), String> {
    unsafe {
        let n = sys::ggml_nelements(positions) as usize;
        if (*positions).type_ != sys::GGML_TYPE_I32 || n < parents.len() {
            return Err(
                "the rotary positions are not one I32 per position: cannot pack rows as a tree"
                    .into(),
            );
        }
        let mut pos = vec![0i32; n];
        sys::ggml_backend_tensor_get(positions, pos.as_mut_ptr().cast(), 0, n * 4);
        if pos.iter().enumerate().any(|(i, &p)| p != i as i32) {
            return Err(
                "the rotary positions are not the window's own: cannot pack rows as a tree".into(),
            );
        }
        for (i, parent) in parents.iter().enumerate() {
            pos[i] = parent.map_or(0, |p| pos[p] + 1);
        }
        sys::ggml_backend_tensor_set(positions, pos.as_ptr().cast(), 0, n * 4);
        Ok(())
    }
}

/// Sums the log-probabilities of the labels of each span's rows from the logits (one row of
/// the vocabulary per position), into `hooks.logps`; then, with a span loss, what it gives.
///
/// SAFETY: `logits` is the computed F32 input of the cross-entropy node.
unsafe fn span_logps(hooks: &mut Hooks, logits: *mut sys::ggml_tensor) {
    unsafe {
        let n_vocab = (*logits).ne[0] as usize;
        let stride = (*logits).nb[1];
        let mut row = vec![0f32; n_vocab];
        hooks.logps.clear();
        for &(a, b) in &hooks.spans {
            let mut sum = 0f64;
            for p in a..b {
                match hooks.head.as_ref().and_then(|h| h.index(p)) {
                    Some(i) => row.copy_from_slice(&hooks.head_rows[i * n_vocab..][..n_vocab]),
                    None => sys::ggml_backend_tensor_get(
                        logits,
                        row.as_mut_ptr().cast(),
                        p * stride,
                        n_vocab * 4,
                    ),
                }
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
                let lse = max
                    + row
                        .iter()
                        .map(|&x| (x as f64 - max).exp())
                        .sum::<f64>()
                        .ln();
                let label = hooks.labels[p] as usize;
                sum += row.get(label).map_or(f64::NAN, |&x| x as f64) - lse;
            }
            hooks.logps.push(sum);
        }
        if let Some(loss) = &hooks.span_loss {
            hooks.span_result = Some(loss(&hooks.logps));
        }
    }
}

/// Makes the cross-entropy gradient `t` (rows of (softmax - one-hot) * d / rows) that of the
/// span loss: each row of span k scaled so that it is -grads[k] * (softmax - one-hot), the
/// gradient of grads[k] * log p(label). The rows outside every span are the window's masked
/// rows, which `zero_rows` has already zeroed.
///
/// With a head, the rows are those of its gradient (`Hooks::head_grads`) instead.
///
/// SAFETY: `t` is the computed CROSS_ENTROPY_LOSS_BACK node.
unsafe fn scale_span_rows(
    t: *mut sys::ggml_tensor,
    spans: &[(usize, usize)],
    grads: &[f64],
    mut head: Option<(&Head, &mut [f32])>,
) {
    unsafe {
        let mut d = 0f32;
        sys::ggml_backend_tensor_get((*t).src[0], (&mut d as *mut f32).cast(), 0, 4);
        let (n, rows, stride) = ((*t).ne[0] as usize, (*t).ne[1] as usize, (*t).nb[1]);
        let mut row = vec![0f32; n];
        for (&(a, b), &g) in spans.iter().zip(grads) {
            let scale = if d != 0.0 {
                (-g * rows as f64 / d as f64) as f32
            } else {
                0.0
            };
            for p in a..b {
                if let Some((head, rows)) = head.as_mut()
                    && let Some(i) = head.index(p)
                {
                    rows[i * n..][..n].iter_mut().for_each(|x| *x *= scale);
                    continue;
                }
                sys::ggml_backend_tensor_get(t, row.as_mut_ptr().cast(), p * stride, n * 4);
                row.iter_mut().for_each(|x| *x *= scale);
                sys::ggml_backend_tensor_set(t, row.as_ptr().cast(), p * stride, n * 4);
            }
        }
    }
}

/// ggml's evaluation callback: with `ask`, called before the node is computed and returns
/// whether to be called again after; without, called after.
unsafe extern "C" fn eval_hook(t: *mut sys::ggml_tensor, ask: bool, ud: *mut c_void) -> bool {
    // SAFETY: `ud` is the session's `Hooks` and `t` a node of the graph being computed, with
    // its sources allocated; the callback runs on the thread inside `llama_opt_epoch`.
    unsafe {
        let hooks = &mut *(ud as *mut Hooks);
        // A product turned into a custom operation on an earlier step is decided afresh (the
        // positions in the loss change from window to window): from its own operation.
        if let Some(&original) = hooks.products_taken.get(&(t as usize)) {
            (*t).op = original;
        }
        let op = (*t).op;
        if ask && let Some(trace) = hooks.memory.as_mut() {
            record_node(trace, t);
        }
        if ask {
            let mut need = false;
            // The loss backward's gradient, written out before a node reads it, unless it is
            // the output projection's backward taken over (it reads the compact rows); a view
            // reads nothing.
            if let Some(head) = hooks.head.as_ref().filter(|h| h.unwritten)
                && let Some(back) = head.back
                && !matches!(
                    op,
                    sys::GGML_OP_VIEW
                        | sys::GGML_OP_TRANSPOSE
                        | sys::GGML_OP_PERMUTE
                        | sys::GGML_OP_RESHAPE
                )
                && reads(t, back)
                && !(op == sys::GGML_OP_OUT_PROD && head_backward(head, t))
            {
                write_gradient(head, &hooks.head_grads, &hooks.masked, back);
                hooks.head = None;
            }
            match op {
                sys::GGML_OP_CROSS_ENTROPY_LOSS => {
                    let labels = (*t).src[1];
                    let rows = (*labels).ne[1] as usize;
                    if let Some(head) = hooks.head.as_mut().filter(|h| h.logits == (*t).src[0]) {
                        // Computed after, at the positions in the loss (`head_loss`).
                        (*t).op = sys::GGML_OP_NONE;
                        head.loss = Some(t);
                        need = true;
                    } else if hooks.masked.last().is_some_and(|&(_, end)| end > rows) {
                        hooks.error.get_or_insert_with(|| {
                            format!("the loss sees {rows} positions, fewer than a window")
                        });
                    } else {
                        zero_rows(labels, &hooks.masked);
                    }
                    need |= !hooks.spans.is_empty();
                }
                sys::GGML_OP_CROSS_ENTROPY_LOSS_BACK => {
                    if let Some(head) = hooks.head.as_mut().filter(|h| h.logits == (*t).src[1]) {
                        (*t).op = sys::GGML_OP_NONE;
                        head.back = Some(t);
                    }
                    need = true;
                }
                sys::GGML_OP_SOFT_MAX
                    if hooks.restricts_attention()
                        && !(*t).src[1].is_null()
                        && !hooks.isolated.contains(&((*t).src[1] as usize)) =>
                {
                    let mask = (*t).src[1];
                    hooks.isolated.push(mask as usize);
                    let attend = if hooks.parents.is_empty() {
                        Attend::Documents(&hooks.documents)
                    } else {
                        Attend::Tree(&hooks.parents)
                    };
                    if let Err(e) = restrict(mask, attend) {
                        hooks.error.get_or_insert(e);
                    }
                }
                sys::GGML_OP_ROPE
                    if !hooks.parents.is_empty()
                        && !hooks.positioned.contains(&((*t).src[1] as usize)) =>
                {
                    let positions = (*t).src[1];
                    hooks.positioned.push(positions as usize);
                    if let Err(e) = position(positions, &hooks.parents) {
                        hooks.error.get_or_insert(e);
                    }
                }
                sys::GGML_OP_OPT_STEP_ADAMW => step_adamw(hooks, t),
                // ggml-opt's accuracy (arg-max of every position's logits and labels) is
                // never read: skip the work (ggml computes nothing for a no-op node).
                sys::GGML_OP_ARGMAX | sys::GGML_OP_COUNT_EQUAL => (*t).op = sys::GGML_OP_NONE,
                // The output projection at the positions in the loss only, forward and
                // backward: ggml skips the no-op node, and it is computed after (its inputs are
                // then ready, its memory allocated, nothing after it run)...
                sys::GGML_OP_MUL_MAT
                    if hooks.sparse_head
                        && hooks.products != Matmul::Ggml
                        && few_in_loss(&hooks.masked, t)
                        && spans_in_loss(&hooks.spans, &hooks.masked)
                        && output_forward(t) =>
                {
                    (*t).op = sys::GGML_OP_NONE;
                    hooks.deferred_logits = Some(t);
                    need = true;
                }
                sys::GGML_OP_OUT_PROD
                    if hooks.head.as_ref().is_some_and(|h| head_backward(h, t)) =>
                {
                    (*t).op = sys::GGML_OP_NONE;
                    if let Some(head) = hooks.head.as_mut() {
                        head.projection_back = Some(t);
                    }
                    need = true;
                }
                sys::GGML_OP_OUT_PROD
                    if hooks.sparse_head && few_in_loss(&hooks.masked, t) && output_backward(t) =>
                {
                    (*t).op = sys::GGML_OP_NONE;
                    hooks.deferred = Some(t);
                    need = true;
                }
                // ...and every other large F32 product by the shim, inside the graph's
                // computation on ggml's threads.
                sys::GGML_OP_MUL_MAT | sys::GGML_OP_OUT_PROD
                    if hooks.products != Matmul::Ggml && shim_takes(t) =>
                {
                    let causal = if hooks.causal_mask == Some(true) {
                        attention_product(t)
                    } else {
                        Causal::Dense
                    };
                    make_product_task(t, hooks.products.bf16_kernel(), causal);
                    hooks.causal_now = causal != Causal::Dense;
                    hooks.products_taken.insert(t as usize, op);
                }
                _ => {}
            }
            // Attention's products skip the pairs the mask hides once it is seen to hide every
            // later position: from the first softmax on (the first layer's scores before it
            // are computed whole).
            if op == sys::GGML_OP_SOFT_MAX
                && hooks.causal_attention
                && hooks.causal_mask.is_none()
                && !(*t).src[1].is_null()
            {
                hooks.causal_mask = Some(hides_later_positions((*t).src[1]));
            }
            if hooks.profile.is_some() {
                hooks.node_start = Some(Instant::now());
                hooks.by_ggml = matches!((*t).op, sys::GGML_OP_MUL_MAT | sys::GGML_OP_OUT_PROD)
                    && hooks.products != Matmul::Ggml;
                need = true;
            }
            need
        } else {
            // Nodes taken over at the positions in the loss: computed now, their operation
            // given back.
            let mut sparse = true;
            if hooks.deferred_logits == Some(t) {
                hooks.deferred_logits = None;
                (*t).op = sys::GGML_OP_MUL_MAT;
                hooks.head = Some(head_logits(hooks, t));
            } else if let Some(head) = hooks.head.as_mut().filter(|h| h.loss == Some(t)) {
                (*t).op = sys::GGML_OP_CROSS_ENTROPY_LOSS;
                head_loss(head, &hooks.head_rows, &hooks.labels, hooks.threads, t);
            } else if let Some(head) = hooks.head.as_mut().filter(|h| h.back == Some(t)) {
                (*t).op = sys::GGML_OP_CROSS_ENTROPY_LOSS_BACK;
                let rows = &hooks.head_rows;
                head_loss_back(
                    head,
                    rows,
                    &mut hooks.head_grads,
                    &hooks.labels,
                    hooks.threads,
                    t,
                );
            } else if hooks
                .head
                .as_ref()
                .is_some_and(|h| h.projection_back == Some(t))
            {
                (*t).op = sys::GGML_OP_OUT_PROD;
                head_projection_back(hooks, t);
                hooks.head = None;
            } else {
                sparse = false;
            }
            let op = (*t).op;
            if op == sys::GGML_OP_CROSS_ENTROPY_LOSS && !hooks.spans.is_empty() {
                span_logps(hooks, (*t).src[0]);
            }
            if op == sys::GGML_OP_CROSS_ENTROPY_LOSS_BACK {
                if !sparse {
                    zero_rows(t, &hooks.masked);
                }
                if let Some((_, grads)) = &hooks.span_result {
                    let head = (hooks.head.as_ref()).map(|h| (h, hooks.head_grads.as_mut_slice()));
                    scale_span_rows(t, &hooks.spans, grads, head);
                }
            }
            if hooks.deferred == Some(t) {
                hooks.deferred = None;
                (*t).op = sys::GGML_OP_OUT_PROD;
                let (w, g) = (&*(*t).src[0], &*(*t).src[1]);
                leap_out_prod_rows(
                    (*t).data.cast(),
                    (*t).nb[1] as i64 / 4,
                    w.data.cast(),
                    w.nb[1] as i64 / 4,
                    g.data.cast(),
                    g.nb[0] as i64 / 4,
                    (*t).ne[0],
                    w.ne[1],
                    (*t).ne[1],
                    hooks.threads,
                );
            }
            if let (Some(profile), Some(start)) = (&mut hooks.profile, hooks.node_start.take()) {
                let op = hooks
                    .products_taken
                    .get(&(t as usize))
                    .copied()
                    .unwrap_or(op);
                let mut label = op_label(t, op);
                if sparse {
                    label.push_str(" at the positions in the loss");
                } else if hooks.by_ggml {
                    label.push_str(" by ggml");
                } else if hooks.causal_now {
                    label.push_str(" without the hidden pairs");
                }
                hooks.causal_now = false;
                let entry = profile.entry(label).or_insert((0, 0.0));
                entry.0 += 1;
                entry.1 += start.elapsed().as_secs_f64() * 1e3;
            }
            true
        }
    }
}

/// Adds node `t` to the memory trace: the tensor it writes and those it reads, each as its
/// storage (a view's source).
///
/// SAFETY: `t` is a live node of the graph being computed.
unsafe fn record_node(trace: &mut super::peak::Trace, t: *mut sys::ggml_tensor) {
    unsafe {
        let storage = |mut x: *mut sys::ggml_tensor| {
            while !(*x).view_src.is_null() {
                x = (*x).view_src;
            }
            x
        };
        let tensor = |x: *mut sys::ggml_tensor| {
            let x = storage(x);
            let name = CStr::from_ptr((*x).name.as_ptr()).to_string_lossy();
            let op = CStr::from_ptr(sys::ggml_op_name((*x).op)).to_string_lossy();
            super::peak::Tensor {
                id: x as usize,
                buffer: (*x).buffer as usize,
                kind: super::peak::kind(&name, &op),
                bytes: sys::ggml_nbytes(x) as u64,
            }
        };
        let buffer = (*storage(t)).buffer;
        if buffer.is_null() {
            return;
        }
        let inputs: Vec<_> = ((*t).src.iter())
            .filter(|s| !s.is_null() && !(*storage(**s)).buffer.is_null())
            .map(|&s| tensor(s))
            .collect();
        trace.node(
            tensor(t),
            &inputs,
            sys::ggml_backend_buffer_get_size(buffer) as u64,
        );
    }
}

/// ggml's parameters of a custom operation (`struct ggml_custom_op_params`, ggml-impl.h), kept
/// in the node's op_params.
#[repr(C)]
struct CustomOpParams {
    fun: unsafe extern "C" fn(*mut sys::ggml_tensor, i32, i32, *mut c_void),
    n_tasks: i32,
    userdata: *mut c_void,
}

/// ggml's GGML_N_TASKS_MAX: a custom operation runs on every thread of the computation.
const ALL_THREADS: i32 = -1;

/// Turns MUL_MAT or OUT_PROD node `t` into a custom operation that the shim computes on ggml's
/// own threads (`leap_product_task`), F32 through BLAS or on BF16 kernel `bf16` (1 tiles, 2
/// vectors). Unlike a node computed from the evaluation callback, this costs no pause in the
/// graph's computation.
///
/// SAFETY: `t` is a live MUL_MAT or OUT_PROD node for which `shim_takes(t)` holds.
unsafe fn make_product_task(t: *mut sys::ggml_tensor, bf16: i32, causal: Causal) {
    // The task's userdata (shim.cpp): bit 0 OUT_PROD, bits 1-2 the kernel, the causal pattern
    // above.
    let out_prod = unsafe { (*t).op } == sys::GGML_OP_OUT_PROD;
    let flags = usize::from(out_prod) | ((bf16 as usize) << 1) | ((causal as usize) << 3);
    let params = CustomOpParams {
        fun: leap_product_task,
        n_tasks: ALL_THREADS,
        userdata: flags as *mut c_void,
    };
    // SAFETY: op_params (64 bytes) holds the 24 of the parameters; MUL_MAT and OUT_PROD keep
    // nothing there.
    unsafe {
        assert!(std::mem::size_of::<CustomOpParams>() <= std::mem::size_of_val(&(*t).op_params));
        std::ptr::write_unaligned((*t).op_params.as_mut_ptr().cast::<CustomOpParams>(), params);
        (*t).op = sys::GGML_OP_CUSTOM;
    }
}

/// Which terms of an attention product the causal mask makes zero (`Causal` in shim.cpp), by
/// what its rows, columns and depth index: queries (a window position as it attends), keys (a
/// position as attended to), or a head's dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Causal {
    Dense = 0,
    /// Rows queries, columns keys: the scores and their gradient (read only where the key
    /// is not after the query).
    Scores = 1,
    /// Rows queries, depth keys: the weighted sum of the values, the queries' gradient.
    DepthToRow = 2,
    /// Rows keys, depth queries: the keys' gradient.
    DepthFromRow = 3,
    /// Columns keys, depth queries: the values' gradient.
    DepthFromCol = 4,
}

/// The causal pattern of attention product `t`, from the names llama.cpp and ggml's backward
/// give its tensors (`kq`, `kqv`, `kq_soft_max`, `grad for ...`; llama-cpp-sys-2 0.1.161):
/// forward `kq = K Q` and `kqv = V P`; backward, from `P` and the gradient of `kqv`, the values'
/// and the probabilities' gradients, and from the scores' gradient `dS` the keys' (`dS` as it
/// is) and the queries' (`dS` transposed). Any other product is dense. The shim checks the
/// shape fits too.
///
/// SAFETY: `t` is a live MUL_MAT or OUT_PROD node with its sources set.
unsafe fn attention_product(t: *mut sys::ggml_tensor) -> Causal {
    unsafe {
        let name =
            |x: *const sys::ggml_tensor| CStr::from_ptr((*x).name.as_ptr()).to_string_lossy();
        // The name without its views and its layer, as the memory profile groups tensors:
        // `grad for kq-3 (transposed)` -> `grad for kq` (an unnamed one: empty).
        let stem = |x: *const sys::ggml_tensor| {
            super::peak::kind(name(x).split(" (").next().unwrap_or_default(), "")
        };
        let (a, b) = ((*t).src[0], (*t).src[1]);
        if !per_head(t) {
            return Causal::Dense;
        }
        match ((*t).op, stem(t).as_str()) {
            (sys::GGML_OP_MUL_MAT, "kq") => Causal::Scores,
            (sys::GGML_OP_MUL_MAT, "kqv") => Causal::DepthToRow,
            (sys::GGML_OP_OUT_PROD, "grad for kq_soft_max") => Causal::Scores,
            (sys::GGML_OP_OUT_PROD, _) if stem(a) == "kq_soft_max" => Causal::DepthFromCol,
            (sys::GGML_OP_OUT_PROD, _) if stem(b) == "grad for kq" => {
                if name(b).contains("(transposed)") {
                    Causal::DepthToRow
                } else {
                    Causal::DepthFromRow
                }
            }
            _ => Causal::Dense,
        }
    }
}

/// Whether node `t` is a batch of matrices, one per head: attention's scores, its weighted sum
/// of the values, and their backward (the weights' products are one matrix each).
///
/// SAFETY: `t` is a live graph node.
unsafe fn per_head(t: *const sys::ggml_tensor) -> bool {
    unsafe { (*t).ne[2] * (*t).ne[3] > 1 }
}

/// Whether attention mask `mask` hides every later position from each position (and so makes
/// the probabilities there exactly zero).
///
/// SAFETY: `mask` is a live tensor whose data is set.
unsafe fn hides_later_positions(mask: *const sys::ggml_tensor) -> bool {
    unsafe {
        let (n_kv, rows) = ((*mask).ne[0] as usize, (*mask).ne[1] as usize);
        if (*mask).type_ != sys::GGML_TYPE_F32 || (*mask).ne[2] != 1 || (*mask).ne[3] != 1 {
            return false;
        }
        let mut m = vec![0f32; n_kv * rows];
        sys::ggml_backend_tensor_get(mask, m.as_mut_ptr().cast(), 0, m.len() * 4);
        m.chunks(n_kv)
            .enumerate()
            .all(|(i, row)| row.iter().skip(i + 1).all(|&x| x == f32::NEG_INFINITY))
    }
}

/// Products below this many multiply-adds stay with ggml. As custom operations the shim's
/// products cost no pause, so only the smallest are left: the LoRA products (rank 8 against a
/// window of 256) are 2^20 to 2^22, and ggml's OUT_PROD runs those at a few GFLOP/s. On
/// SmolLM2-135M a 256-token step took 0.93 s with the threshold at 2^24 and 0.86 s at 2^18;
/// 2^16 measured the same as 2^18.
const BLAS_MIN_MACS: i64 = 1 << 18;

/// Whether MUL_MAT or OUT_PROD node `t` is a product the shim computes: at least
/// `BLAS_MIN_MACS`, host tensors, dst and src1 F32, src0 of any type ggml converts to F32 (a
/// weight, or the F16 KV cache), in a layout CBLAS takes (see `leap_blas_product`).
///
/// SAFETY: `t` is a live MUL_MAT or OUT_PROD node with its sources set.
unsafe fn shim_takes(t: *mut sys::ggml_tensor) -> bool {
    unsafe {
        let (a, b) = ((*t).src[0], (*t).src[1]);
        if a.is_null() || b.is_null() {
            return false;
        }
        let out_prod = (*t).op == sys::GGML_OP_OUT_PROD;
        let host = |x: *mut sys::ggml_tensor| {
            !(*x).buffer.is_null() && sys::ggml_backend_buffer_is_host((*x).buffer)
        };
        let k = if out_prod { (*a).ne[1] } else { (*a).ne[0] };
        let macs = (*t).ne.iter().product::<i64>().saturating_mul(k);
        if [t, b].iter().any(|&x| (*x).type_ != sys::GGML_TYPE_F32)
            || macs < BLAS_MIN_MACS
            // Sources are allocated before the node runs; the node itself may not be yet.
            || !host(a)
            || !host(b)
            || !host(t)
        {
            return false;
        }
        // Only the layout is checked: no pointer is read.
        leap_blas_product(
            i32::from(out_prod),
            1,
            1,
            0,
            (*t).data.cast(),
            (*t).ne.as_ptr(),
            (*t).nb.as_ptr(),
            (*a).type_ as i32,
            (*a).data.cast_const(),
            (*a).ne.as_ptr(),
            (*a).nb.as_ptr(),
            (*b).data.cast(),
            (*b).ne.as_ptr(),
            (*b).nb.as_ptr(),
        ) == 1
    }
}

/// Whether under a third of the node's positions are in the loss: only then does computing the
/// output projection's backward at those positions alone beat ggml's kernel over all of them.
///
/// SAFETY: `t` is a live OUT_PROD node.
unsafe fn few_in_loss(masked: &[(usize, usize)], t: *const sys::ggml_tensor) -> bool {
    let n_pos = unsafe { (*t).ne[1] } as usize;
    let out: usize = masked.iter().map(|(a, b)| b - a).sum();
    3 * (n_pos.saturating_sub(out)) < n_pos
}

/// Whether `w` is the output projection's weight: `output.weight`, or the token embedding it is
/// tied to.
///
/// SAFETY: `w` is null or a live tensor.
unsafe fn is_output_weight(w: *const sys::ggml_tensor) -> bool {
    unsafe {
        !w.is_null() && {
            let name = CStr::from_ptr((*w).name.as_ptr()).to_bytes();
            name == b"output.weight" || name == b"token_embd.weight"
        }
    }
}

/// Whether `x` is allocated, in host memory.
///
/// SAFETY: `x` is a live tensor.
unsafe fn in_host_memory(x: *const sys::ggml_tensor) -> bool {
    unsafe {
        !(*x).buffer.is_null()
            && !(*x).data.is_null()
            && sys::ggml_backend_buffer_is_host((*x).buffer)
    }
}

/// The operation's name, with the products involving the output projection (the vocabulary-sized
/// matrix) told apart: they are the largest single items of a step.
///
/// SAFETY: `t` is a live graph node.
unsafe fn op_label(t: *const sys::ggml_tensor, op: sys::ggml_op) -> String {
    unsafe {
        let name = CStr::from_ptr(sys::ggml_op_name(op)).to_string_lossy();
        let product = matches!(op, sys::GGML_OP_MUL_MAT | sys::GGML_OP_OUT_PROD);
        if product && is_output_weight((*t).src[0]) {
            format!("{name} (output)")
        } else if product && per_head(t) {
            format!("{name} (attention)")
        } else {
            name.into_owned()
        }
    }
}

/// Whether `t` is OUT_PROD(W, G^T) for the output projection W (tied or not) in host memory, in
/// the layout `leap_out_prod_rows` takes: dX = G W, one row of G per position.
///
/// SAFETY: `t` is a live OUT_PROD node with its sources set.
unsafe fn output_backward(t: *const sys::ggml_tensor) -> bool {
    unsafe {
        let output = is_output_weight((*t).src[0]);
        let (w, g, t) = (&*(*t).src[0], &*(*t).src[1], &*t);
        let flat = |x: &sys::ggml_tensor| x.ne[2] == 1 && x.ne[3] == 1;
        output
            && [w, g, t].iter().all(|x| {
                x.type_ == sys::GGML_TYPE_F32 && flat(x) && in_host_memory(std::ptr::from_ref(*x))
            })
            && w.nb[0] == 4
            && g.nb[1] == 4
            && t.nb[0] == 4
            && t.ne[0] == w.ne[0]
            && t.ne[1] == g.ne[0]
            && g.ne[1] == w.ne[1]
    }
}

/// Whether node `t` reads `x`'s memory through one of its sources (a view of it, or `x` itself).
///
/// SAFETY: `t` and `x` are live nodes.
unsafe fn reads(t: *const sys::ggml_tensor, x: *const sys::ggml_tensor) -> bool {
    unsafe {
        let data = (*x).data;
        !data.is_null()
            && ((*t).src.iter()).any(|&s| {
                !s.is_null()
                    && ((*s).data == data
                        || (!(*s).view_src.is_null() && (*(*s).view_src).data == data))
            })
    }
}

/// The output projection's weight `w` as F32 values, row after row: its own data when it is
/// F32, else a copy made on first use and kept (`Hooks::output_f32`). None when ggml cannot
/// convert its type.
///
/// SAFETY: `w` is a live, allocated host tensor with contiguous rows.
unsafe fn output_weight_f32(
    cache: &mut Option<(usize, Vec<f32>)>,
    w: *const sys::ggml_tensor,
) -> Option<*const f32> {
    unsafe {
        if (*w).type_ == sys::GGML_TYPE_F32 {
            return Some((*w).data.cast_const().cast());
        }
        let key = (*w).data as usize;
        if cache.as_ref().is_none_or(|(k, _)| *k != key) {
            let to_float = (*sys::ggml_get_type_traits((*w).type_)).to_float?;
            let (n_in, rows) = ((*w).ne[0] as usize, (*w).ne[1] as usize);
            let mut copy = vec![0f32; n_in * rows];
            for (r, out) in copy.chunks_exact_mut(n_in).enumerate() {
                let src = ((*w).data as *const u8).add(r * (*w).nb[1]);
                to_float(src.cast(), out.as_mut_ptr(), n_in as i64);
            }
            *cache = Some((key, copy));
        }
        cache.as_ref().map(|(_, copy)| copy.as_ptr())
    }
}

/// Whether every span's rows (whose log-probabilities the pass sums) are in the loss: the
/// logits are then computed wherever they are read.
fn spans_in_loss(spans: &[(usize, usize)], masked: &[(usize, usize)]) -> bool {
    spans
        .iter()
        .all(|&(a, b)| masked.iter().all(|&(m0, m1)| b <= m0 || m1 <= a))
}

/// The positions of a window of `n_pos` outside the left-out ranges, in order.
fn live_positions(masked: &[(usize, usize)], n_pos: usize) -> Vec<usize> {
    let mut live = vec![true; n_pos];
    for &(a, b) in masked {
        live[a.min(n_pos)..b.min(n_pos)].fill(false);
    }
    (0..n_pos).filter(|&p| live[p]).collect()
}

/// A host tensor's F32 row `r` (dimension 1), `n` values from its start.
///
/// SAFETY: `t` is allocated and holds at least `n` F32 values in row `r`, unit-strided.
unsafe fn row<'a>(t: *const sys::ggml_tensor, r: usize, n: usize) -> &'a mut [f32] {
    unsafe { std::slice::from_raw_parts_mut(((*t).data as *mut u8).add(r * (*t).nb[1]).cast(), n) }
}

/// `f(i)` for i in 0..n, in order, shared out among `threads` threads in contiguous runs.
fn parallel<T: Send>(threads: i32, n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let workers = (threads.max(1) as usize).min(n.max(1));
    let part = n.div_ceil(workers);
    let run = |w: usize| {
        (w * part..((w + 1) * part).min(n))
            .map(&f)
            .collect::<Vec<T>>()
    };
    std::thread::scope(|scope| {
        let others: Vec<_> = (1..workers).map(|w| scope.spawn(move || run(w))).collect();
        let mut out = run(0);
        for other in others {
            out.extend(other.join().expect("a worker of the loss panicked"));
        }
        out
    })
}

/// A row-major F32 matrix's shape and strides as ggml writes them (`ne`, `nb`): `rows` rows of
/// `cols` values.
fn dense(cols: usize, rows: usize) -> Layout {
    let row = cols * 4;
    (
        [cols as i64, rows as i64, 1, 1],
        [4, row, row * rows, row * rows],
    )
}

/// A shape and its strides in bytes, as ggml gives them (`ne`, `nb`).
type Layout = ([i64; 4], [usize; 4]);

/// One of the head's products with the output weight's F32 copy (`n_vocab` rows of `n_in`):
/// MUL_MAT (logits = W X) or OUT_PROD (dX = G W), as `leap_blas_product` computes them.
struct WeightProduct {
    out_prod: bool,
    threads: i32,
    /// The shim's BF16 kernel, 0 for F32.
    kernel: i32,
    dst: (*mut f32, Layout),
    src1: (*const f32, Layout),
}

impl WeightProduct {
    /// Computes the product over `rows` positions on `weight` (`output_weight_f32`'s answer).
    ///
    /// SAFETY: `dst` and `src1` point at buffers of their layouts; `weight` at n_vocab x n_in
    /// values.
    unsafe fn run(
        &self,
        weight: Option<*const f32>,
        n_in: usize,
        n_vocab: usize,
        rows: usize,
    ) -> Result<(), String> {
        let weight = weight.ok_or("ggml cannot convert the output projection's weight to F32")?;
        if rows == 0 {
            return Ok(());
        }
        let (ne0, nb0) = dense(n_in, n_vocab);
        let ((dst, (ne, nb)), (src1, (ne1, nb1))) = (self.dst, self.src1);
        // SAFETY: as the caller promises; the layouts are dense or G's transpose.
        let done = unsafe {
            leap_blas_product(
                i32::from(self.out_prod),
                0,
                self.threads,
                self.kernel,
                dst,
                ne.as_ptr(),
                nb.as_ptr(),
                sys::GGML_TYPE_F32 as i32,
                weight.cast(),
                ne0.as_ptr(),
                nb0.as_ptr(),
                src1,
                ne1.as_ptr(),
                nb1.as_ptr(),
            )
        };
        if done == 1 {
            Ok(())
        } else {
            Err("the output projection's product at the positions in the loss: a layout the shim does not take".into())
        }
    }
}

/// Whether `t` is the output projection's forward, MUL_MAT(W, X) with W the output weight
/// (tied or not; F32, or of a type ggml converts to F32) and X and the logits F32 in host memory,
/// unit-strided: one row of X per position, one of logits per position.
///
/// SAFETY: `t` is a live MUL_MAT node with its sources set.
unsafe fn output_forward(t: *const sys::ggml_tensor) -> bool {
    unsafe {
        let (w, x) = ((*t).src[0], (*t).src[1]);
        if w.is_null() || x.is_null() {
            return false;
        }
        let flat = |x: *const sys::ggml_tensor| (*x).ne[2] == 1 && (*x).ne[3] == 1;
        let (n_in, n_vocab) = ((*x).ne[0] as usize, (*t).ne[0] as usize);
        let ok = is_output_weight(w)
            && [t, x].iter().all(|&y| {
                (*y).type_ == sys::GGML_TYPE_F32 && flat(y) && in_host_memory(y) && (*y).nb[0] == 4
            })
            && in_host_memory(w)
            && flat(w)
            && (*w).ne[0] as usize == n_in
            && (*w).ne[1] as usize == n_vocab
            && (*t).ne[1] == (*x).ne[1];
        // The products take W as F32: its own rows, or a copy ggml converts.
        let rows_f32 =
            (*w).type_ == sys::GGML_TYPE_F32 && (*w).nb[0] == 4 && (*w).nb[1] == 4 * n_in;
        let convertible = (*w).type_ != sys::GGML_TYPE_F32
            && (*sys::ggml_get_type_traits((*w).type_)).to_float.is_some();
        ok && (rows_f32 || convertible)
    }
}

/// The output projection's forward at the positions in the loss: their rows of X gathered, one
/// product into `Hooks::head_rows`. The logits node is left as it is. The product reads the
/// weight's F32 copy: converting a quantised weight for a few rows costs more than the
/// multiplying.
///
/// SAFETY: `t` is the computed-to-be MUL_MAT node for which `output_forward` held.
unsafe fn head_logits(hooks: &mut Hooks, t: *mut sys::ggml_tensor) -> Head {
    unsafe {
        let (w, x) = ((*t).src[0], (*t).src[1]);
        let (n_in, n_vocab, n_pos) = ((*x).ne[0] as usize, (*t).ne[0] as usize, (*t).ne[1]);
        let live = live_positions(&hooks.masked, n_pos as usize);
        let mut xs = Vec::with_capacity(live.len() * n_in);
        for &p in &live {
            xs.extend_from_slice(row(x, p, n_in));
        }
        hooks.head_rows.resize(live.len() * n_vocab, 0.0);
        let product = WeightProduct {
            out_prod: false,
            threads: hooks.threads,
            kernel: hooks.products.bf16_kernel(),
            dst: (hooks.head_rows.as_mut_ptr(), dense(n_vocab, live.len())),
            src1: (xs.as_ptr(), dense(n_in, live.len())),
        };
        let weight = output_weight_f32(&mut hooks.output_f32, w);
        if let Err(e) = product.run(weight, n_in, n_vocab, live.len()) {
            hooks.error.get_or_insert(e);
        }
        Head {
            logits: t,
            live,
            lse: Vec::new(),
            loss: None,
            back: None,
            projection_back: None,
            unwritten: false,
        }
    }
}

/// Cross-entropy at the positions in the loss (`rows`, one per live position), as ggml defines
/// it over all of them: minus the sum of the labels' log-probabilities over the number of
/// positions (the left-out ones add zero). Keeps each position's log-sum-exp for the backward.
///
/// SAFETY: `t` is the CROSS_ENTROPY_LOSS node taken over for `head`, its output allocated.
unsafe fn head_loss(
    head: &mut Head,
    rows: &[f32],
    labels: &[i32],
    threads: i32,
    t: *mut sys::ggml_tensor,
) {
    unsafe {
        let n_pos = (*head.logits).ne[1] as usize;
        let n_vocab = (*head.logits).ne[0] as usize;
        head.lse = parallel(threads, head.live.len(), |i| {
            let x = &rows[i * n_vocab..][..n_vocab];
            let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f64 = x.iter().map(|&v| f64::from((v - max).exp())).sum();
            f64::from(max) + sum.ln()
        });
        let mut sum = 0f64;
        for (i, (&p, &lse)) in head.live.iter().zip(&head.lse).enumerate() {
            let x = &rows[i * n_vocab..][..n_vocab];
            let label = labels.get(p).map_or(usize::MAX, |&l| l as usize);
            sum += x.get(label).map_or(f64::NAN, |&v| f64::from(v)) - lse;
        }
        *((*t).data as *mut f32) = (-sum / n_pos as f64) as f32;
    }
}

/// Cross-entropy's backward at the positions in the loss, into `grads` (one row per live
/// position): (softmax - one-hot) times the loss's gradient over the number of positions, as
/// ggml computes it. Every other position's gradient is zero; the node itself is written only
/// if a node other than the output projection's backward reads it (`write_gradient`).
///
/// SAFETY: `t` is the CROSS_ENTROPY_LOSS_BACK node taken over for `head`, after `head_loss`.
unsafe fn head_loss_back(
    head: &mut Head,
    rows: &[f32],
    grads: &mut Vec<f32>,
    labels: &[i32],
    threads: i32,
    t: *mut sys::ggml_tensor,
) {
    unsafe {
        let (n_vocab, n_pos) = ((*t).ne[0] as usize, (*t).ne[1] as usize);
        let d = *((*(*t).src[0]).data as *const f32);
        let scale = d / n_pos as f32;
        grads.resize(head.live.len() * n_vocab, 0.0);
        let (out, live, lse) = (grads.as_mut_ptr() as usize, &head.live, &head.lse);
        parallel(threads, live.len(), |i| {
            let x = &rows[i * n_vocab..][..n_vocab];
            // SAFETY: each i writes its own row of `grads`, sized above.
            let g = std::slice::from_raw_parts_mut((out as *mut f32).add(i * n_vocab), n_vocab);
            let lse = lse[i] as f32;
            for (g, &v) in g.iter_mut().zip(x) {
                *g = (v - lse).exp() * scale;
            }
            if let Some(g) = labels.get(live[i]).and_then(|&l| g.get_mut(l as usize)) {
                *g -= scale;
            }
        });
        head.unwritten = true;
    }
}

/// Writes the head's gradient (`grads`, one row per live position) into the loss backward's
/// node `back`, zero at the left-out positions, as ggml would have computed it.
///
/// SAFETY: `back` is the computed CROSS_ENTROPY_LOSS_BACK node of `head`.
unsafe fn write_gradient(
    head: &Head,
    grads: &[f32],
    masked: &[(usize, usize)],
    back: *mut sys::ggml_tensor,
) {
    unsafe {
        let n_vocab = (*back).ne[0] as usize;
        zero_rows(back, masked);
        for (g, &p) in grads.chunks_exact(n_vocab).zip(&head.live) {
            row(back, p, n_vocab).copy_from_slice(g);
        }
    }
}

/// Whether OUT_PROD node `t` is the output projection's backward, dX = G W, on the logits'
/// gradient that `head`'s loss backward wrote (G, read through its transpose).
///
/// SAFETY: `t` is a live OUT_PROD node with its sources set.
unsafe fn head_backward(head: &Head, t: *const sys::ggml_tensor) -> bool {
    let Some(back) = head.back else {
        return false;
    };
    unsafe {
        let (w, g) = ((*t).src[0], (*t).src[1]);
        if w.is_null() || g.is_null() {
            return false;
        }
        let (n_vocab, n_pos) = ((*back).ne[0], (*back).ne[1]);
        is_output_weight(w)
            && (*g).data == (*back).data
            && (*g).type_ == sys::GGML_TYPE_F32
            && (*g).ne[0] == n_pos
            && (*g).ne[1] == n_vocab
            && (*g).nb[0] == (*back).nb[1]
            && (*g).nb[1] == 4
            && (*t).type_ == sys::GGML_TYPE_F32
            && in_host_memory(t)
            && (*t).nb[0] == 4
            && (*t).ne[0] == (*w).ne[0]
            && (*t).ne[1] == n_pos
            && (*t).ne[2] == 1
            && (*t).ne[3] == 1
            && (*w).ne[1] == n_vocab
    }
}

/// The output projection's backward at the positions in the loss: one product of their rows of
/// G (`Hooks::head_grads`) with the weight's F32 copy, dX put back in their rows; zero at every
/// other position.
///
/// SAFETY: `t` is the OUT_PROD node taken over for the pass's head (`head_backward` held),
/// after `head_loss_back`.
unsafe fn head_projection_back(hooks: &mut Hooks, t: *mut sys::ggml_tensor) {
    let Hooks {
        head: Some(head),
        output_f32,
        head_grads,
        masked,
        threads,
        error,
        products,
        ..
    } = hooks
    else {
        return;
    };
    unsafe {
        let w = (*t).src[0];
        let n_in = (*t).ne[0] as usize;
        let n_vocab = (*w).ne[1] as usize;
        let n_live = head.live.len();
        let mut dx = vec![0f32; n_live * n_in];
        // OUT_PROD(W, G^T): dst n_in x live, src1 the live rows of G read transposed.
        let transposed = (
            [n_live as i64, n_vocab as i64, 1, 1],
            [4 * n_vocab, 4, 4 * n_vocab * n_live, 4 * n_vocab * n_live],
        );
        let product = WeightProduct {
            out_prod: true,
            threads: *threads,
            kernel: products.bf16_kernel(),
            dst: (dx.as_mut_ptr(), dense(n_in, n_live)),
            src1: (head_grads.as_ptr(), transposed),
        };
        if let Err(e) = product.run(output_weight_f32(output_f32, w), n_in, n_vocab, n_live) {
            error.get_or_insert(e);
        }
        zero_rows(t, masked);
        for (d, &p) in dx.chunks_exact(n_in).zip(&head.live) {
            row(t, p, n_in).copy_from_slice(d);
        }
    }
}

/// Before an AdamW step: note where its moments are, restore them on resume, and set the bias
/// correction for the run's step.
///
/// SAFETY: `t` is an OPT_STEP_ADAMW node: src 0 parameter, 2 and 3 moments, 4 the 7 parameters.
unsafe fn step_adamw(hooks: &mut Hooks, t: *mut sys::ggml_tensor) {
    unsafe {
        let param = (*t).src[0];
        let (m, v) = ((*t).src[2], (*t).src[3]);
        hooks.moments.insert(param as usize, (m, v));
        // The gradient is an in-place sum into a persistent accumulator (a view of it).
        let mut acc = (*t).src[1];
        while !(*acc).view_src.is_null() {
            acc = (*acc).view_src;
        }
        hooks.grad_accs.insert(param as usize, acc);
        if let Some(saved) = hooks.restore.remove(&(param as usize)) {
            let n = sys::ggml_nbytes(m);
            if saved.m.len() * 4 == n && saved.v.len() * 4 == n {
                sys::ggml_backend_tensor_set(m, saved.m.as_ptr().cast(), 0, n);
                sys::ggml_backend_tensor_set(v, saved.v.as_ptr().cast(), 0, n);
            } else {
                hooks.error.get_or_insert_with(|| {
                    "the checkpoint's optimizer state does not fit the adapter".into()
                });
            }
        }
        let a = hooks.adamw;
        let k = hooks.step as i32;
        let params: [f32; 7] = [
            a.lr,
            a.beta1,
            a.beta2,
            a.eps,
            a.weight_decay,
            1.0 / (1.0 - a.beta1.powi(k)),
            1.0 / (1.0 - a.beta2.powi(k)),
        ];
        let p = (*t).src[4];
        if sys::ggml_nbytes(p) == std::mem::size_of_val(&params) {
            sys::ggml_backend_tensor_set(
                p,
                params.as_ptr().cast(),
                0,
                std::mem::size_of_val(&params),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{amx_available, avx512_bf16_available, leap_blas_product, leap_out_prod_rows, sys};
    use std::ffi::c_void;

    #[test]
    fn the_output_backward_kernel_matches_the_plain_product_and_skips_silent_positions() {
        let (n_in, n_vocab, n_pos) = (70usize, 1000usize, 6usize);
        let value = |i: usize| ((i * 7919) % 13) as f32 / 13.0 - 0.5;
        let w: Vec<f32> = (0..n_vocab * n_in).map(value).collect();
        let mut g: Vec<f32> = (0..n_pos * n_vocab).map(|i| value(i + 3)).collect();
        // Positions 1 and 4 are outside the loss: their gradient is zero.
        for p in [1, 4] {
            g[p * n_vocab..(p + 1) * n_vocab].fill(0.0);
        }
        for threads in [1, 2, 3] {
            let mut dst = vec![f32::NAN; n_pos * n_in];
            // SAFETY: the buffers have the sizes and row lengths passed.
            unsafe {
                leap_out_prod_rows(
                    dst.as_mut_ptr(),
                    n_in as i64,
                    w.as_ptr(),
                    n_in as i64,
                    g.as_ptr(),
                    n_vocab as i64,
                    n_in as i64,
                    n_vocab as i64,
                    n_pos as i64,
                    threads,
                );
            }
            for p in 0..n_pos {
                for j in 0..n_in {
                    let want: f32 = (0..n_vocab)
                        .map(|k| g[p * n_vocab + k] * w[k * n_in + j])
                        .sum();
                    let got = dst[p * n_in + j];
                    assert!(
                        (got - want).abs() <= 1e-3 * want.abs().max(1.0),
                        "{p},{j}: {got} vs {want}"
                    );
                }
            }
        }
    }

    /// A ggml-shaped F32 tensor: sizes, byte strides and the floats its strides index into.
    struct T {
        ne: [i64; 4],
        /// Byte strides, as the kernel reads `raw` (or `data` for F32).
        nb: [usize; 4],
        /// The values (for a converted type, as converted back to F32), at float strides
        /// `strides`.
        data: Vec<f32>,
        strides: [usize; 4],
        /// ggml type, and the bytes of that type when it is not F32.
        kind: sys::ggml_type,
        raw: Vec<u8>,
    }

    impl T {
        /// Element strides (in floats) per dimension; the buffer covers the largest offset.
        fn strided(ne: [i64; 4], strides: [usize; 4], salt: usize) -> T {
            let len = (0..4)
                .map(|d| (ne[d] as usize - 1) * strides[d])
                .sum::<usize>()
                + 1;
            let data = (0..len)
                .map(|i| (((i + salt) * 7919) % 23) as f32 / 23.0 - 0.5)
                .collect();
            T {
                ne,
                nb: strides.map(|s| s * 4),
                data,
                strides,
                kind: sys::GGML_TYPE_F32,
                raw: Vec::new(),
            }
        }

        /// A contiguous matrix of `rows` rows of `cols` in ggml type `kind` (F16, Q4_1, ...),
        /// with `data` its values converted back to F32 by ggml.
        fn converted(cols: i64, rows: i64, kind: sys::ggml_type, salt: usize) -> T {
            let plain = T::strided([cols, rows, 1, 1], [1, cols as usize, 0, 0], salt);
            // SAFETY: ggml's quantize and convert functions over buffers of the sizes they take
            // (row_size bytes per row of `cols` values).
            unsafe {
                let row = sys::ggml_row_size(kind, cols);
                let mut raw = vec![0u8; row * rows as usize];
                sys::ggml_quantize_chunk(
                    kind,
                    plain.data.as_ptr(),
                    raw.as_mut_ptr().cast(),
                    0,
                    rows,
                    cols,
                    std::ptr::null(),
                );
                let mut data = vec![0f32; (cols * rows) as usize];
                let to_float = (*sys::ggml_get_type_traits(kind))
                    .to_float
                    .expect("convertible");
                to_float(raw.as_ptr().cast(), data.as_mut_ptr(), cols * rows);
                T {
                    ne: [cols, rows, 1, 1],
                    nb: [
                        sys::ggml_type_size(kind),
                        row,
                        row * rows as usize,
                        row * rows as usize,
                    ],
                    data,
                    strides: [1, cols as usize, 0, 0],
                    kind,
                    raw,
                }
            }
        }

        fn at(&self, i: [i64; 4]) -> f32 {
            let off: usize = (0..4).map(|d| i[d] as usize * self.strides[d]).sum();
            self.data[off]
        }

        fn bytes(&self) -> *const c_void {
            if self.kind == sys::GGML_TYPE_F32 {
                self.data.as_ptr().cast()
            } else {
                self.raw.as_ptr().cast()
            }
        }
    }

    /// ggml's MUL_MAT (`out_prod` false) or OUT_PROD by definition, src0 broadcast over dims 2, 3:
    /// each output's sum, and the sum of its terms' sizes.
    fn reference(out_prod: bool, a: &T, b: &T, ne: [i64; 4]) -> Vec<(f32, f32)> {
        let k = if out_prod { a.ne[1] } else { a.ne[0] };
        let (r2, r3) = (ne[2] / a.ne[2], ne[3] / a.ne[3]);
        let mut out = Vec::new();
        for i3 in 0..ne[3] {
            for i2 in 0..ne[2] {
                for i1 in 0..ne[1] {
                    for i0 in 0..ne[0] {
                        let (b2, b3) = (i2 / r2, i3 / r3);
                        let terms = (0..k).map(|x| {
                            if out_prod {
                                a.at([i0, x, b2, b3]) * b.at([i1, x, i2, i3])
                            } else {
                                a.at([x, i0, b2, b3]) * b.at([x, i1, i2, i3])
                            }
                        });
                        out.push(terms.fold((0.0, 0.0), |(s, m), x| (s + x, m + x.abs())));
                    }
                }
            }
        }
        out
    }

    /// Calls the kernel (BLAS, or BF16 kernel `bf16`: 1 tiles, 2 vectors) on `a` (src0) and `b`
    /// (src1) into a contiguous dst of sizes `ne`: its answer (1: done, or doable with
    /// `check_only`) and dst.
    fn product(
        out_prod: bool,
        check_only: bool,
        a: &T,
        b: &T,
        ne: [i64; 4],
        threads: i32,
        bf16: i32,
    ) -> (i32, Vec<f32>) {
        let n: usize = ne.iter().product::<i64>() as usize;
        let mut dst = vec![f32::NAN; n];
        let nb = [
            4,
            4 * ne[0] as usize,
            4 * (ne[0] * ne[1]) as usize,
            4 * n / ne[3] as usize,
        ];
        // SAFETY: every tensor's strides stay inside its buffer, and dst is contiguous.
        let answer = unsafe {
            leap_blas_product(
                i32::from(out_prod),
                i32::from(check_only),
                threads,
                bf16,
                dst.as_mut_ptr(),
                ne.as_ptr(),
                nb.as_ptr(),
                a.kind as i32,
                a.bytes(),
                a.ne.as_ptr(),
                a.nb.as_ptr(),
                b.data.as_ptr(),
                b.ne.as_ptr(),
                b.nb.as_ptr(),
            )
        };
        (answer, dst)
    }

    /// The kernel's product: F32 through BLAS, or BF16 on AMX tiles or AVX512-BF16 vectors.
    #[derive(Clone, Copy, Debug)]
    enum Kernel {
        Blas,
        Amx,
        Vectors,
    }

    fn run(kernel: Kernel, out_prod: bool, a: &T, b: &T, ne: [i64; 4], threads: i32) -> Vec<f32> {
        let bf16 = match kernel {
            Kernel::Blas => 0,
            Kernel::Amx => 1,
            Kernel::Vectors => 2,
        };
        let (done, dst) = product(out_prod, false, a, b, ne, threads, bf16);
        assert_eq!(done, 1, "the layout is one BLAS takes");
        dst
    }

    /// F32 sums agree to rounding. With BF16 operands (8 significant bits, each rounded by at
    /// most 2^-9 of itself) every term is off by at most about 2^-8 of its size, so a sum by at
    /// most 2^-8 of the sum of its terms' sizes: 2^-7 leaves room for F32's own rounding.
    fn close(kernel: Kernel, got: &[f32], want: &[(f32, f32)]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, &(w, size))) in got.iter().zip(want).enumerate() {
            let tolerance = match kernel {
                Kernel::Blas => 1e-4 * w.abs().max(1.0),
                Kernel::Amx | Kernel::Vectors => size / 128.0 + 1e-4,
            };
            assert!((g - w).abs() <= tolerance, "{i}: {g} vs {w}");
        }
    }

    #[test]
    fn the_blas_products_match_ggmls_definitions_on_strided_and_broadcast_operands() {
        products_match_ggmls_definitions(Kernel::Blas);
    }

    #[test]
    fn the_amx_products_match_ggmls_definitions_to_bf16_precision() {
        if !amx_available() {
            eprintln!("skipped: this CPU has no AMX-BF16 tiles");
            return;
        }
        bf16_products_match_ggmls_definitions(Kernel::Amx);
    }

    #[test]
    fn the_avx512_bf16_products_match_ggmls_definitions_to_bf16_precision() {
        if !avx512_bf16_available() {
            eprintln!("skipped: this CPU has no AVX512-BF16");
            return;
        }
        bf16_products_match_ggmls_definitions(Kernel::Vectors);
    }

    fn bf16_products_match_ggmls_definitions(kernel: Kernel) {
        products_match_ggmls_definitions(kernel);
        // Edges of every size around the tiles' 16 x 16 x 32, the blocks of 32 x 32 (tiles) and
        // 8 x 32 (vectors), the panels of 256 columns and the slices of 1,536 depths.
        let sizes = [
            (1, 1, 1),
            (16, 16, 32),
            (33, 31, 33),
            (32, 64, 95),
            (5, 100, 2),
            (20, 300, 1600),
            (41, 47, 3100),
        ];
        for (m, n, k) in sizes {
            let w = T::strided([k, n, 1, 1], [1, k as usize, 0, 0], 9);
            let x = T::strided([k, m, 1, 1], [1, k as usize, 0, 0], 10);
            let ne = [n, m, 1, 1];
            let want = reference(false, &w, &x, ne);
            close(kernel, &run(kernel, false, &w, &x, ne, 2), &want);
            // The same with the weight transposed (columns contiguous), as OUT_PROD sees it.
            let wt = T::strided([n, k, 1, 1], [1, n as usize, 0, 0], 9);
            let ne = [n, m, 1, 1];
            let xt = T::strided([m, k, 1, 1], [k as usize, 1, 0, 0], 10);
            let want = reference(true, &wt, &xt, ne);
            close(kernel, &run(kernel, true, &wt, &xt, ne, 1), &want);
        }
    }

    fn products_match_ggmls_definitions(kernel: Kernel) {
        let run = |out_prod, a: &T, b: &T, ne, threads| run(kernel, out_prod, a, b, ne, threads);
        let close = |got: &[f32], want: &[(f32, f32)]| close(kernel, got, want);
        // Attention's KQ: K with 3 heads from a cache laid out [dim, head, position], Q with 9
        // heads as a permuted view of [dim, head, position]: neither is contiguous.
        let (d, n_kv, n_tok) = (16, 40, 33);
        let k = T::strided([d, n_kv, 3, 1], [1, 3 * d as usize, d as usize, 0], 1);
        let q = T::strided([d, n_tok, 9, 1], [1, 9 * d as usize, d as usize, 0], 2);
        let ne = [n_kv, n_tok, 9, 1];
        for threads in [1, 2, 3] {
            close(
                &run(false, &k, &q, ne, threads),
                &reference(false, &k, &q, ne),
            );
        }
        // A weight's backward: OUT_PROD(W, G^T) with G^T a transposed view (unit row stride).
        let w = T::strided([50, 70, 1, 1], [1, 50, 0, 0], 3);
        let gt = T::strided([45, 70, 1, 1], [70, 1, 0, 0], 4);
        let ne = [50, 45, 1, 1];
        for threads in [1, 2] {
            close(
                &run(true, &w, &gt, ne, threads),
                &reference(true, &w, &gt, ne),
            );
        }
        // OUT_PROD with src0 broadcast over heads and a permuted src1.
        let a = T::strided([20, 30, 2, 1], [1, 20, 600, 0], 5);
        let b = T::strided([25, 30, 6, 1], [1, 6 * 25, 25, 0], 6);
        let ne = [20, 25, 6, 1];
        close(&run(true, &a, &b, ne, 2), &reference(true, &a, &b, ne));
        // A plain weight product: MUL_MAT(W, x), both contiguous, one batch split by rows.
        let w = T::strided([64, 48, 1, 1], [1, 64, 0, 0], 7);
        let x = T::strided([64, 37, 1, 1], [1, 64, 0, 0], 8);
        let ne = [48, 37, 1, 1];
        close(&run(false, &w, &x, ne, 2), &reference(false, &w, &x, ne));
    }

    #[test]
    fn products_with_a_converted_src0_match_its_values_in_f32() {
        // A weight in F16 or quantised (the base trained on as it is, the F16 KV cache): the
        // kernel converts rows of it a chunk at a time. 4,500 rows of 64 make two chunks.
        let kinds = [sys::GGML_TYPE_F16, sys::GGML_TYPE_Q4_1, sys::GGML_TYPE_Q8_0];
        let mut kernels = vec![Kernel::Blas];
        if amx_available() {
            kernels.push(Kernel::Amx);
        }
        if avx512_bf16_available() {
            kernels.push(Kernel::Vectors);
        }
        for kind in kinds {
            for &kernel in &kernels {
                // MUL_MAT(W, x): W 64 x 4,500 (rows are columns of the product).
                let w = T::converted(64, 4500, kind, 11);
                let x = T::strided([64, 9, 1, 1], [1, 64, 0, 0], 12);
                let ne = [4500, 9, 1, 1];
                let want = reference(false, &w, &x, ne);
                for threads in [1, 2] {
                    close(kernel, &run(kernel, false, &w, &x, ne, threads), &want);
                }
                // OUT_PROD(W, G^T): W 64 x 4,500 (rows are depths of the sum).
                let g = T::strided([17, 4500, 1, 1], [4500, 1, 0, 0], 13);
                let ne = [64, 17, 1, 1];
                let want = reference(true, &w, &g, ne);
                for threads in [1, 2] {
                    close(kernel, &run(kernel, true, &w, &g, ne, threads), &want);
                }
            }
        }
    }

    #[test]
    fn layouts_blas_cannot_take_are_left_to_ggml() {
        // Neither stride of src1's matrix is one element.
        let w = T::strided([8, 8, 1, 1], [1, 8, 0, 0], 1);
        let x = T::strided([8, 8, 1, 1], [2, 16, 0, 0], 2);
        let (ok, _) = product(false, true, &w, &x, [8, 8, 1, 1], 1, 0);
        assert_eq!(ok, 0);
    }
}
