//! Training checkpoints: the adapter, AdamW's moments for each of its tensors, the step reached
//! and the loss curve so far, in one GGUF file (`general.type=leap.checkpoint`, which llama.cpp
//! will not mistake for an adapter). Resuming from one continues the same run: same data order,
//! same learning-rate schedule, same optimizer state.

use std::path::Path;

use super::TrainError;
use crate::model::adapter::{Adapter, TensorData, f32_bytes};
use crate::model::gguf::{GgufFile, Value, ValueType};

const GGML_TYPE_F32: u32 = 0;
const KIND: &str = "leap.checkpoint";

/// AdamW's first and second moments of one tensor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Moments {
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub adapter: Adapter,
    /// Per adapter weight: the moments of A and of B. Empty before the first step.
    pub moments: Vec<(Moments, Moments)>,
    /// Optimizer steps done.
    pub step: u64,
    /// Identifies the run (data, base, adapter shape, schedule): a checkpoint of another run is
    /// not resumed.
    pub fingerprint: String,
    /// Training loss of each step done.
    pub losses: Vec<f32>,
    /// (step, held-out loss) of each evaluation done.
    pub evals: Vec<(u64, f32)>,
    /// A preference run's reference log-probabilities, per response of the training windows
    /// then of the held-out ones, in window order; empty for supervised training.
    pub references: Vec<f64>,
}

impl Checkpoint {
    pub fn write(&self, path: &Path) -> Result<(), TrainError> {
        let mut w = self.adapter.writer(KIND);
        w.set("leap.checkpoint.step", Value::U64(self.step));
        w.set("leap.checkpoint.fingerprint", Value::str(&self.fingerprint));
        let floats =
            |v: Vec<f32>| Value::Array(ValueType::F32, v.into_iter().map(Value::F32).collect());
        w.set("leap.checkpoint.losses", floats(self.losses.clone()));
        w.set(
            "leap.checkpoint.eval_steps",
            Value::Array(
                ValueType::U64,
                self.evals.iter().map(|&(s, _)| Value::U64(s)).collect(),
            ),
        );
        w.set(
            "leap.checkpoint.eval_losses",
            floats(self.evals.iter().map(|&(_, l)| l).collect()),
        );
        if !self.references.is_empty() {
            w.set(
                "leap.checkpoint.references",
                Value::Array(
                    ValueType::F64,
                    self.references.iter().map(|&x| Value::F64(x)).collect(),
                ),
            );
        }
        for (lw, (ma, mb)) in self.adapter.weights.iter().zip(&self.moments) {
            for (which, mom, len) in [("lora_a", ma, lw.a.len()), ("lora_b", mb, lw.b.len())] {
                for (kind, data) in [("m", &mom.m), ("v", &mom.v)] {
                    if data.len() != len {
                        return Err(TrainError::Checkpoint {
                            path: path.to_path_buf(),
                            what: format!("{}.{which}: moment {kind} has the wrong size", lw.name),
                        });
                    }
                    w.add_tensor(
                        &format!("{}.{which}.{kind}", lw.name),
                        &[len as u64],
                        GGML_TYPE_F32,
                        f32_bytes(data),
                    );
                }
            }
        }
        w.write(path).map_err(|source| TrainError::CheckpointFile {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn read(path: &Path) -> Result<Checkpoint, TrainError> {
        let bad = |what: String| TrainError::Checkpoint {
            path: path.to_path_buf(),
            what,
        };
        let file = GgufFile::open(path).map_err(|source| TrainError::CheckpointFile {
            path: path.to_path_buf(),
            source,
        })?;
        let adapter_err = |source| TrainError::CheckpointAdapter {
            path: path.to_path_buf(),
            source,
        };
        if file.get_str("general.type") != Some(KIND) {
            return Err(bad(format!(
                "not a leap checkpoint (general.type is not {KIND})"
            )));
        }
        let adapter = Adapter::from_gguf(&file).map_err(adapter_err)?;
        let step = file
            .get_u64("leap.checkpoint.step")
            .ok_or_else(|| bad("no leap.checkpoint.step".into()))?;
        let fingerprint = file
            .get_str("leap.checkpoint.fingerprint")
            .ok_or_else(|| bad("no leap.checkpoint.fingerprint".into()))?
            .to_owned();
        let floats = |key: &str| -> Vec<f32> {
            match file.get(key) {
                Some(Value::Array(_, items)) => items
                    .iter()
                    .filter_map(|v| match v {
                        Value::F32(f) => Some(*f),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            }
        };
        let losses = floats("leap.checkpoint.losses");
        let eval_losses = floats("leap.checkpoint.eval_losses");
        let eval_steps: Vec<u64> = match file.get("leap.checkpoint.eval_steps") {
            Some(Value::Array(_, items)) => items.iter().filter_map(Value::as_u64).collect(),
            _ => Vec::new(),
        };
        let references = match file.get("leap.checkpoint.references") {
            Some(Value::Array(_, items)) => items
                .iter()
                .map(|v| match v {
                    Value::F64(x) => Ok(*x),
                    _ => Err(bad(
                        "leap.checkpoint.references holds a value that is not F64".into(),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => Vec::new(),
        };
        let mut data = TensorData::open(&file).map_err(adapter_err)?;
        let mut moments = Vec::new();
        for lw in &adapter.weights {
            let mut read = |which: &str| -> Result<Moments, TrainError> {
                let mut get = |kind: &str| {
                    let name = format!("{}.{which}.{kind}", lw.name);
                    let t = file
                        .tensor(&name)
                        .ok_or_else(|| bad(format!("no tensor {name}")))?;
                    data.f32s(t).map_err(adapter_err)
                };
                Ok(Moments {
                    m: get("m")?,
                    v: get("v")?,
                })
            };
            moments.push((read("lora_a")?, read("lora_b")?));
        }
        Ok(Checkpoint {
            adapter,
            moments,
            step,
            fingerprint,
            losses,
            evals: eval_steps.into_iter().zip(eval_losses).collect(),
            references,
        })
    }
}
