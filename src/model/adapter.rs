//! LoRA adapters as GGUF files, in the layout llama.cpp's `llama_adapter_lora_init` reads:
//! `general.type=adapter`, `adapter.type=lora`, `adapter.lora.alpha`, and per adapted weight
//! `blk.N.<proj>.weight.lora_a` (shape [n_in, r]) and `.lora_b` ([r, n_out]), in F32.
//!
//! What the adapter was trained from and how it went is kept in `leap.*` keys: the base model's
//! hash, rank, targets, the dataset's hash, the iteration and the final losses.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use thiserror::Error;

use super::check::MAX_ADAPTER_WEIGHT;
use super::gguf::{GgufFile, GgufWriter, TensorInfo, Value};

/// Why an adapter cannot be made, read or written; each names the file it is about.
#[derive(Debug, Error)]
pub enum AdapterError {
    /// The adapter file cannot be read or written, or is not a LoRA adapter this code reads.
    #[error("{}: {what}", path.display())]
    File { path: PathBuf, what: String },
    /// The base model lacks what an adapter for it needs.
    #[error("{}: {what}", path.display())]
    Base { path: PathBuf, what: String },
    #[error("the LoRA rank must be positive")]
    ZeroRank,
}

impl AdapterError {
    pub(crate) fn file(path: &Path, what: impl std::fmt::Display) -> AdapterError {
        AdapterError::File {
            path: path.to_path_buf(),
            what: what.to_string(),
        }
    }

    fn base(path: &Path, what: impl std::fmt::Display) -> AdapterError {
        AdapterError::Base {
            path: path.to_path_buf(),
            what: what.to_string(),
        }
    }
}

const GGML_TYPE_F32: u32 = 0;

/// A projection of each transformer block that LoRA can adapt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl Target {
    pub const ALL: [Target; 7] = [
        Target::Q,
        Target::K,
        Target::V,
        Target::O,
        Target::Gate,
        Target::Up,
        Target::Down,
    ];

    /// The name on the command line: q, k, v, o, gate, up, down.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Q => "q",
            Target::K => "k",
            Target::V => "v",
            Target::O => "o",
            Target::Gate => "gate",
            Target::Up => "up",
            Target::Down => "down",
        }
    }

    /// The llama.cpp tensor it adapts, in block `layer`.
    pub fn tensor(self, layer: u64) -> String {
        let proj = match self {
            Target::Q => "attn_q",
            Target::K => "attn_k",
            Target::V => "attn_v",
            Target::O => "attn_output",
            Target::Gate => "ffn_gate",
            Target::Up => "ffn_up",
            Target::Down => "ffn_down",
        };
        format!("blk.{layer}.{proj}.weight")
    }

    /// Parses `q,k,v,o,gate,up,down` (or `all`).
    pub fn parse_list(list: &str) -> Result<Vec<Target>, String> {
        if list.trim() == "all" {
            return Ok(Target::ALL.to_vec());
        }
        let mut targets = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let t = Target::ALL
                .into_iter()
                .find(|t| t.as_str() == name)
                .ok_or_else(|| {
                    format!("unknown LoRA target `{name}` (choose from q,k,v,o,gate,up,down)")
                })?;
            if !targets.contains(&t) {
                targets.push(t);
            }
        }
        if targets.is_empty() {
            return Err("no LoRA target given".into());
        }
        targets.sort();
        Ok(targets)
    }

    pub fn join(targets: &[Target]) -> String {
        targets
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The shape of an adapter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoraSpec {
    pub rank: u32,
    /// The update is scaled by alpha / rank.
    pub alpha: f32,
    pub targets: Vec<Target>,
}

impl Default for LoraSpec {
    fn default() -> Self {
        LoraSpec {
            rank: 8,
            alpha: 16.0,
            targets: Target::ALL.to_vec(),
        }
    }
}

/// One adapted weight W (n_in -> n_out): W x + (alpha / r) B A x.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraWeight {
    /// The base tensor, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    pub n_in: usize,
    pub n_out: usize,
    /// r rows of n_in.
    pub a: Vec<f32>,
    /// n_out rows of r.
    pub b: Vec<f32>,
}

/// Where an adapter comes from and how its training went (`leap.*` keys).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AdapterMeta {
    /// sha256 of the base model file the adapter is for.
    pub base_sha256: String,
    pub base_name: String,
    pub dataset_sha256: Option<String>,
    pub rows: Option<u64>,
    pub iteration: Option<u32>,
    pub steps: Option<u64>,
    pub epochs: Option<u32>,
    pub train_loss_first: Option<f32>,
    pub train_loss_last: Option<f32>,
    pub eval_loss: Option<f32>,
    /// `response` or `all`: which tokens the loss was on.
    pub loss_on: Option<String>,
    /// `sft` or `dpo` (none: written before objectives were recorded, so `sft`).
    pub objective: Option<String>,
    /// A preference objective's loss (`sigmoid`, `ipo`), beta and SFT weight.
    pub preference_loss: Option<String>,
    pub beta: Option<f32>,
    pub sft_weight: Option<f32>,
}

/// A LoRA adapter in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Adapter {
    pub architecture: String,
    pub spec: LoraSpec,
    /// Sorted by name.
    pub weights: Vec<LoraWeight>,
    pub meta: AdapterMeta,
}

impl Adapter {
    /// One adapter equal to applying `parts` together, each at its scale: the ranks are stacked
    /// (A's rows one after another, B's columns each multiplied by scale * alpha / rank), with
    /// zero blocks where an adapter does not touch a weight, and alpha set to the total rank so
    /// that llama.cpp's alpha / rank factor is 1. Exact: B A x sums the parts' updates.
    pub fn merge(parts: &[(Adapter, f32)]) -> Result<Adapter, String> {
        let Some((first, _)) = parts.first() else {
            return Err("no adapter to merge".into());
        };
        if let Some((other, _)) = parts
            .iter()
            .find(|(a, _)| a.architecture != first.architecture)
        {
            return Err(format!(
                "adapters for different architectures: {} and {}",
                first.architecture, other.architecture
            ));
        }
        let total: usize = parts.iter().map(|(a, _)| a.spec.rank as usize).sum();
        let mut names: Vec<&str> = parts
            .iter()
            .flat_map(|(a, _)| a.weights.iter().map(|w| w.name.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup();
        let mut weights = Vec::with_capacity(names.len());
        for name in names {
            let found: Vec<Option<&LoraWeight>> = parts
                .iter()
                .map(|(a, _)| a.weights.iter().find(|w| w.name == name))
                .collect();
            let shape = found.iter().flatten().next().map(|w| (w.n_in, w.n_out));
            let (n_in, n_out) = shape.expect("every name comes from some adapter");
            if found
                .iter()
                .flatten()
                .any(|w| (w.n_in, w.n_out) != (n_in, n_out))
            {
                return Err(format!("{name}: the adapters disagree on its shape"));
            }
            let mut a = Vec::with_capacity(total * n_in);
            let mut b = vec![0f32; n_out * total];
            let mut offset = 0;
            for ((adapter, scale), weight) in parts.iter().zip(&found) {
                let r = adapter.spec.rank as usize;
                match weight {
                    Some(w) => {
                        a.extend_from_slice(&w.a);
                        let c = scale * adapter.spec.alpha / r as f32;
                        for j in 0..n_out {
                            for k in 0..r {
                                b[j * total + offset + k] = c * w.b[j * r + k];
                            }
                        }
                    }
                    None => a.resize(a.len() + r * n_in, 0.0),
                }
                offset += r;
            }
            weights.push(LoraWeight {
                name: name.to_string(),
                n_in,
                n_out,
                a,
                b,
            });
        }
        let mut targets: Vec<Target> = parts
            .iter()
            .flat_map(|(a, _)| a.spec.targets.iter().copied())
            .collect();
        targets.sort_unstable();
        targets.dedup();
        Ok(Adapter {
            architecture: first.architecture.clone(),
            spec: LoraSpec {
                rank: total as u32,
                alpha: total as f32,
                targets,
            },
            weights,
            meta: AdapterMeta {
                base_sha256: first.meta.base_sha256.clone(),
                base_name: first.meta.base_name.clone(),
                ..AdapterMeta::default()
            },
        })
    }

    /// A fresh adapter for `base`: A uniform in ±1/sqrt(n_in) (PEFT's Kaiming-uniform), B zero,
    /// so that training starts from the base model's own outputs.
    pub fn init(base: &GgufFile, spec: &LoraSpec, seed: u64) -> Result<Adapter, AdapterError> {
        let bad = |what: String| AdapterError::base(&base.path, what);
        if spec.rank == 0 {
            return Err(AdapterError::ZeroRank);
        }
        let architecture = base
            .get_str("general.architecture")
            .ok_or_else(|| bad("no general.architecture".into()))?
            .to_owned();
        let layers = base
            .get_u64(&format!("{architecture}.block_count"))
            .ok_or_else(|| bad(format!("no {architecture}.block_count")))?;
        let r = spec.rank as usize;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut weights = Vec::new();
        for layer in 0..layers {
            for &target in &spec.targets {
                let name = target.tensor(layer);
                let Some(t) = base.tensor(&name) else {
                    continue;
                };
                let (n_in, n_out) = match t.dims[..] {
                    [n_in, n_out] => (n_in as usize, n_out as usize),
                    _ => return Err(bad(format!("{name} is not a matrix: {:?}", t.dims))),
                };
                let bound = 1.0 / (n_in as f32).sqrt();
                let a = (0..r * n_in)
                    .map(|_| {
                        let unit = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
                        (unit * 2.0 - 1.0) * bound
                    })
                    .collect();
                weights.push(LoraWeight {
                    name,
                    n_in,
                    n_out,
                    a,
                    b: vec![0.0; n_out * r],
                });
            }
        }
        if weights.is_empty() {
            return Err(bad(format!(
                "has none of the tensors the targets {} adapt",
                Target::join(&spec.targets)
            )));
        }
        weights.sort_by(|x, y| x.name.cmp(&y.name));
        Ok(Adapter {
            architecture,
            spec: spec.clone(),
            weights,
            meta: AdapterMeta::default(),
        })
    }

    /// Trainable parameters: r (n_in + n_out) per weight.
    pub fn parameters(&self) -> usize {
        self.weights.iter().map(|w| w.a.len() + w.b.len()).sum()
    }

    /// The first weight (`NAME.lora_a` or `NAME.lora_b`) holding a NaN, an infinity or a value
    /// larger than any trained weight ([`MAX_ADAPTER_WEIGHT`]), with that value: what such an
    /// adapter makes of the logits is NaN, and llama.cpp's sampler aborts on it.
    pub fn unsound_weight(&self) -> Option<(String, f32)> {
        let bad = |v: &[f32]| {
            v.iter()
                .copied()
                .find(|x| !x.is_finite() || x.abs() > MAX_ADAPTER_WEIGHT)
        };
        self.weights.iter().find_map(|w| {
            if let Some(x) = bad(&w.a) {
                Some((format!("{}.lora_a", w.name), x))
            } else {
                bad(&w.b).map(|x| (format!("{}.lora_b", w.name), x))
            }
        })
    }

    /// Writes the adapter atomically (a temporary file renamed into place); an adapter whose
    /// weights or alpha are not numbers is refused, never written.
    pub fn write(&self, path: &Path) -> Result<(), AdapterError> {
        if let Some((name, x)) = self.unsound_weight() {
            return Err(AdapterError::file(
                path,
                format!("{name} holds {x}, not a trained weight; not written"),
            ));
        }
        if !self.spec.alpha.is_finite() {
            return Err(AdapterError::file(
                path,
                format!("alpha is {}; not written", self.spec.alpha),
            ));
        }
        let mut w = self.writer("adapter");
        w.set("general.name", Value::str("leap LoRA adapter"));
        self.write_meta(&mut w);
        w.write(path).map_err(|e| AdapterError::file(path, e))
    }

    /// A writer holding the adapter's header keys and its A and B tensors.
    pub(crate) fn writer(&self, general_type: &str) -> GgufWriter {
        let mut w = GgufWriter::new();
        w.set("general.architecture", Value::str(&self.architecture));
        w.set("general.type", Value::str(general_type));
        w.set("adapter.type", Value::str("lora"));
        w.set("adapter.lora.alpha", Value::F32(self.spec.alpha));
        w.set("leap.lora.rank", Value::U32(self.spec.rank));
        w.set(
            "leap.lora.targets",
            Value::str(&Target::join(&self.spec.targets)),
        );
        let r = self.spec.rank as u64;
        for lw in &self.weights {
            w.add_tensor(
                &format!("{}.lora_a", lw.name),
                &[lw.n_in as u64, r],
                GGML_TYPE_F32,
                f32_bytes(&lw.a),
            );
            w.add_tensor(
                &format!("{}.lora_b", lw.name),
                &[r, lw.n_out as u64],
                GGML_TYPE_F32,
                f32_bytes(&lw.b),
            );
        }
        w
    }

    fn write_meta(&self, w: &mut GgufWriter) {
        let m = &self.meta;
        w.set("leap.base.sha256", Value::str(&m.base_sha256));
        w.set("leap.base.name", Value::str(&m.base_name));
        let mut opt_str = |key: &str, v: &Option<String>| {
            if let Some(v) = v {
                w.set(key, Value::str(v));
            }
        };
        opt_str("leap.dataset.sha256", &m.dataset_sha256);
        opt_str("leap.train.loss_on", &m.loss_on);
        opt_str("leap.train.objective", &m.objective);
        opt_str("leap.train.preference_loss", &m.preference_loss);
        let mut opt_u64 = |key: &str, v: Option<u64>| {
            if let Some(v) = v {
                w.set(key, Value::U64(v));
            }
        };
        opt_u64("leap.dataset.rows", m.rows);
        opt_u64("leap.iteration", m.iteration.map(u64::from));
        opt_u64("leap.train.steps", m.steps);
        opt_u64("leap.train.epochs", m.epochs.map(u64::from));
        let mut opt_f32 = |key: &str, v: Option<f32>| {
            if let Some(v) = v {
                w.set(key, Value::F32(v));
            }
        };
        opt_f32("leap.train.loss_first", m.train_loss_first);
        opt_f32("leap.train.loss_last", m.train_loss_last);
        opt_f32("leap.eval.loss", m.eval_loss);
        opt_f32("leap.train.beta", m.beta);
        opt_f32("leap.train.sft_weight", m.sft_weight);
    }

    /// Reads an adapter written by [`Adapter::write`] (or any F32 GGUF LoRA adapter).
    pub fn read(path: &Path) -> Result<Adapter, AdapterError> {
        let file = GgufFile::open(path).map_err(|e| AdapterError::file(path, e))?;
        let kind = file.get_str("general.type").unwrap_or("");
        if kind != "adapter" {
            return Err(AdapterError::file(
                path,
                format!("general.type is `{kind}`, not `adapter`: not a LoRA adapter"),
            ));
        }
        Adapter::from_gguf(&file)
    }

    /// The adapter part of a GGUF file (also used for checkpoints).
    pub(crate) fn from_gguf(file: &GgufFile) -> Result<Adapter, AdapterError> {
        let path = file.path.as_path();
        let bad = |what: String| AdapterError::file(path, what);
        if file.get_str("adapter.type") != Some("lora") {
            return Err(bad("adapter.type is not `lora`".into()));
        }
        let architecture = file
            .get_str("general.architecture")
            .ok_or_else(|| bad("no general.architecture".into()))?
            .to_owned();
        let alpha = match file.get("adapter.lora.alpha") {
            Some(Value::F32(a)) => *a,
            _ => return Err(bad("no adapter.lora.alpha".into())),
        };
        let mut data = TensorData::open(file)?;
        let mut weights = Vec::new();
        let mut rank = None;
        for t in &file.tensors {
            let Some(name) = t.name.strip_suffix(".lora_a") else {
                continue;
            };
            let b_name = format!("{name}.lora_b");
            let tb = file
                .tensor(&b_name)
                .ok_or_else(|| bad(format!("{} has no {b_name}", t.name)))?;
            let (n_in, r, r_b, n_out) = match (&t.dims[..], &tb.dims[..]) {
                ([n_in, r], [r_b, n_out]) => (*n_in, *r, *r_b, *n_out),
                _ => return Err(bad(format!("{name}: A and B must be matrices"))),
            };
            if r != r_b || *rank.get_or_insert(r) != r {
                return Err(bad(format!("{name}: inconsistent ranks")));
            }
            weights.push(LoraWeight {
                name: name.to_owned(),
                n_in: n_in as usize,
                n_out: n_out as usize,
                a: data.f32s(t)?,
                b: data.f32s(tb)?,
            });
        }
        let rank = rank.ok_or_else(|| bad("holds no LoRA tensor".into()))?;
        weights.sort_by(|x, y| x.name.cmp(&y.name));
        let targets = file
            .get_str("leap.lora.targets")
            .and_then(|s| Target::parse_list(s).ok())
            .unwrap_or_default();
        let text = |key: &str| file.get_str(key).map(str::to_owned);
        let float = |key: &str| match file.get(key) {
            Some(Value::F32(v)) => Some(*v),
            _ => None,
        };
        let meta = AdapterMeta {
            base_sha256: text("leap.base.sha256").unwrap_or_default(),
            base_name: text("leap.base.name").unwrap_or_default(),
            dataset_sha256: text("leap.dataset.sha256"),
            rows: file.get_u64("leap.dataset.rows"),
            iteration: file.get_u64("leap.iteration").map(|v| v as u32),
            steps: file.get_u64("leap.train.steps"),
            epochs: file.get_u64("leap.train.epochs").map(|v| v as u32),
            train_loss_first: float("leap.train.loss_first"),
            train_loss_last: float("leap.train.loss_last"),
            eval_loss: float("leap.eval.loss"),
            loss_on: text("leap.train.loss_on"),
            objective: text("leap.train.objective"),
            preference_loss: text("leap.train.preference_loss"),
            beta: float("leap.train.beta"),
            sft_weight: float("leap.train.sft_weight"),
        };
        Ok(Adapter {
            architecture,
            spec: LoraSpec {
                rank: rank as u32,
                alpha,
                targets,
            },
            weights,
            meta,
        })
    }
}

/// Reads tensor data of a checked GGUF file.
pub(crate) struct TensorData<'a> {
    file: &'a GgufFile,
    handle: File,
}

impl<'a> TensorData<'a> {
    pub(crate) fn open(file: &'a GgufFile) -> Result<TensorData<'a>, AdapterError> {
        let handle = File::open(&file.path).map_err(|e| AdapterError::file(&file.path, e))?;
        Ok(TensorData { file, handle })
    }

    pub(crate) fn f32s(&mut self, t: &TensorInfo) -> Result<Vec<f32>, AdapterError> {
        let path = &self.file.path;
        if t.ggml_type != GGML_TYPE_F32 {
            return Err(AdapterError::file(
                path,
                format!("{} is {}, only F32 is read", t.name, t.type_name()),
            ));
        }
        let mut bytes = vec![0u8; t.n_bytes as usize];
        self.handle
            .seek(SeekFrom::Start(self.file.data_offset + t.offset))
            .and_then(|_| self.handle.read_exact(&mut bytes))
            .map_err(|e| AdapterError::file(path, format!("reading {}: {e}", t.name)))?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

pub(crate) fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_lists_parse() {
        assert_eq!(
            Target::parse_list("v, q,q").unwrap(),
            vec![Target::Q, Target::V]
        );
        assert_eq!(Target::parse_list("all").unwrap().len(), 7);
        assert!(Target::parse_list("q,x").unwrap_err().contains("`x`"));
        assert_eq!(Target::join(&Target::ALL), "q,k,v,o,gate,up,down");
        assert_eq!(Target::O.tensor(3), "blk.3.attn_output.weight");
    }
}
