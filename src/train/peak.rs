//! Where a training step's memory goes. ggml-opt allocates a step's whole graph, forward and
//! backward, in one buffer and gives a tensor's bytes to another once nothing left to compute
//! reads it. Replaying the order in which the nodes were computed gives the tensors alive at
//! each node, so the step's peak and what holds it (`leap train --profile`).

use std::collections::HashMap;

/// Tensors of one kind alive at the peak.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MemoryPart {
    /// The tensors' name without its layer (`blk.N.`, `-N`), e.g. `kq_soft_max` (attention
    /// probabilities), `grad for ffn_up`; the operation for unnamed ones.
    pub kind: String,
    pub tensors: usize,
    pub mb: f64,
}

/// The largest of a training step's graph buffers, and what it holds at its busiest.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PeakMemory {
    /// The buffer's size as ggml allocated it (the peak plus what its layout wastes).
    pub buffer_mb: f64,
    /// The most bytes alive at once in it.
    pub peak_mb: f64,
    /// The node computed at the peak.
    pub at: String,
    /// Largest first.
    pub parts: Vec<MemoryPart>,
}

/// A tensor as a node sees it: its storage (a view is its source's), kind and size.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub id: usize,
    pub buffer: usize,
    pub kind: String,
    pub bytes: u64,
}

#[derive(Debug)]
struct Life {
    kind: String,
    buffer: usize,
    bytes: u64,
    first: usize,
    last: usize,
}

/// The nodes of one graph in the order they were computed.
#[derive(Debug, Default)]
pub struct Trace {
    tensors: HashMap<usize, Life>,
    nodes: Vec<String>,
    buffers: HashMap<usize, u64>,
}

impl Trace {
    /// The next node: `out` written from `inputs`, in a buffer of `buffer_bytes`.
    pub fn node(&mut self, out: Tensor, inputs: &[Tensor], buffer_bytes: u64) {
        let at = self.nodes.len();
        self.nodes.push(out.kind.clone());
        self.buffers.entry(out.buffer).or_insert(buffer_bytes);
        for t in std::iter::once(&out).chain(inputs) {
            let life = self.tensors.entry(t.id).or_insert_with(|| Life {
                kind: t.kind.clone(),
                buffer: t.buffer,
                bytes: t.bytes,
                first: at,
                last: at,
            });
            life.last = at;
        }
    }

    /// The peak of the buffer the nodes wrote most into; None before any node.
    pub fn peak(&self) -> Option<PeakMemory> {
        let mut written: HashMap<usize, u64> = HashMap::new();
        for life in self.tensors.values() {
            *written.entry(life.buffer).or_default() += life.bytes;
        }
        let (&buffer, _) = written
            .iter()
            .filter(|(b, _)| self.buffers.contains_key(b))
            .max_by_key(|&(&b, &n)| (n, b))?;
        let lives: Vec<&Life> = (self.tensors.values())
            .filter(|l| l.buffer == buffer)
            .collect();
        // Bytes alive at node i: those born at or before i and read at or after it.
        let mut delta = vec![0i64; self.nodes.len() + 1];
        for l in &lives {
            delta[l.first] += l.bytes as i64;
            delta[l.last + 1] -= l.bytes as i64;
        }
        let (mut alive, mut best, mut at) = (0i64, 0i64, 0usize);
        for (i, d) in delta[..self.nodes.len()].iter().enumerate() {
            alive += d;
            if alive > best {
                (best, at) = (alive, i);
            }
        }
        let mut parts: HashMap<&str, (usize, u64)> = HashMap::new();
        for l in lives.iter().filter(|l| l.first <= at && at <= l.last) {
            let part = parts.entry(&l.kind).or_default();
            part.0 += 1;
            part.1 += l.bytes;
        }
        let mut parts: Vec<MemoryPart> = parts
            .into_iter()
            .map(|(kind, (tensors, bytes))| MemoryPart {
                kind: kind.to_owned(),
                tensors,
                mb: mb(bytes),
            })
            .collect();
        parts.sort_by(|a, b| b.mb.total_cmp(&a.mb).then_with(|| a.kind.cmp(&b.kind)));
        Some(PeakMemory {
            buffer_mb: mb(self.buffers[&buffer]),
            peak_mb: mb(best as u64),
            at: self.nodes[at].clone(),
            parts,
        })
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// A tensor's kind from its name: the layer taken out (`blk.3.attn_q.weight` ->
/// `attn_q.weight`, `kq_soft_max-12` -> `kq_soft_max`, `grad for ffn_up-2` -> `grad for
/// ffn_up`); ggml's made-up names (`node_7`, `leaf_3`, empty) give way to the operation.
pub fn kind(name: &str, op: &str) -> String {
    let name = name.trim();
    let (grad, base) = match name.strip_prefix("grad for ") {
        Some(rest) => ("grad for ", rest),
        None => ("", name),
    };
    let made_up = |prefix: &str| {
        base.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    if base.is_empty() || made_up("node_") || made_up("leaf_") {
        return format!("{grad}{op}");
    }
    let mut base = base;
    if let Some(rest) = base.strip_prefix("blk.")
        && let Some((layer, rest)) = rest.split_once('.')
        && layer.bytes().all(|b| b.is_ascii_digit())
    {
        base = rest;
    }
    if let Some((stem, layer)) = base.rsplit_once('-')
        && !layer.is_empty()
        && layer.bytes().all(|b| b.is_ascii_digit())
    {
        base = stem;
    }
    format!("{grad}{base}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: usize, kind: &str, bytes: u64) -> Tensor {
        Tensor {
            id,
            buffer: 1,
            kind: kind.into(),
            bytes,
        }
    }

    #[test]
    fn kinds_drop_the_layer_and_keep_real_names() {
        assert_eq!(kind("kq_soft_max-12", "SOFT_MAX"), "kq_soft_max");
        assert_eq!(kind("blk.3.attn_q.weight", "NONE"), "attn_q.weight");
        assert_eq!(kind("grad for ffn_up-2", "MUL_MAT"), "grad for ffn_up");
        assert_eq!(kind("node_81", "ADD"), "ADD");
        assert_eq!(kind("grad for leaf_3", "MUL"), "grad for MUL");
        assert_eq!(kind("", "GET_ROWS"), "GET_ROWS");
        assert_eq!(kind("result_output", "MUL_MAT"), "result_output");
        assert_eq!(kind("node_x", "ADD"), "node_x");
    }

    #[test]
    fn the_peak_is_the_most_bytes_alive_at_one_node() {
        let mut trace = Trace::default();
        assert_eq!(trace.peak(), None);
        // a (10) -> b (20) -> c (5, reads a and b) -> d (1, reads c): a and b are alive until
        // c, so the peak is at c: 10 + 20 + 5.
        trace.node(t(1, "a", 10_000_000), &[], 100_000_000);
        trace.node(t(2, "b", 20_000_000), &[t(1, "a", 10_000_000)], 100_000_000);
        trace.node(
            t(3, "c", 5_000_000),
            &[t(1, "a", 10_000_000), t(2, "b", 20_000_000)],
            100_000_000,
        );
        trace.node(t(4, "d", 1_000_000), &[t(3, "c", 5_000_000)], 100_000_000);
        // Another buffer's tensors (weights) are not counted.
        let weight = Tensor {
            id: 9,
            buffer: 2,
            kind: "w".into(),
            bytes: 1,
        };
        trace.node(
            t(5, "e", 2_000_000),
            &[t(4, "d", 1_000_000), weight],
            100_000_000,
        );
        let peak = trace.peak().unwrap();
        assert_eq!(peak.peak_mb, 35.0);
        assert_eq!(peak.at, "c");
        assert_eq!(peak.buffer_mb, 100.0);
        let parts: Vec<(&str, f64)> = (peak.parts.iter())
            .map(|p| (p.kind.as_str(), p.mb))
            .collect();
        assert_eq!(parts, [("b", 20.0), ("a", 10.0), ("c", 5.0)]);
    }

    #[test]
    fn tensors_of_one_kind_are_summed() {
        let mut trace = Trace::default();
        trace.node(t(1, "kq_soft_max", 4), &[], 64);
        trace.node(t(2, "kq_soft_max", 4), &[], 64);
        trace.node(t(3, "out", 1), &[t(1, "", 0), t(2, "", 0)], 64);
        let peak = trace.peak().unwrap();
        assert_eq!(
            peak.parts[0],
            MemoryPart {
                kind: "kq_soft_max".into(),
                tensors: 2,
                mb: 8e-6
            }
        );
    }
}
