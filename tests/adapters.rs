//! Several LoRA adapters at once on the student: they are merged into one exact equivalent
//! (ranks stacked, scales folded in), checked through llama.cpp's own greedy output on the tiny
//! model: X@0.5 + X@0.5 answers like X@1, and X@1 + X@-1 answers like no adapter at all.

mod common;

use std::path::{Path, PathBuf};

use leap::agent::local::{LocalConfig, LocalPolicy};
use leap::agent::{Message, Policy, Request, Role, Sampling};
use leap::model::gguf::GgufFile;
use leap::model::{Adapter, LoraSpec};

fn greedy(model: &Path, adapters: &[(PathBuf, f32)]) -> String {
    let mut config = LocalConfig::new(model);
    config.adapters = adapters.to_vec();
    config.ctx_per_slot = 512;
    let mut policy = LocalPolicy::load(&config).unwrap();
    let sampling = Sampling {
        max_tokens: 16,
        constrained: false,
        ..Sampling::default()
    };
    let request = Request {
        format: Default::default(),
        seq: 0,
        messages: vec![
            Message::new(Role::System, "You act in a text world."),
            Message::new(
                Role::User,
                "Task: put a mug in the sink. Where do you go first?",
            ),
        ],
        admissible: Vec::new(),
        temperature: None,
        seed: None,
    };
    policy
        .respond(&[request], &sampling, &mut |_, _| {})
        .unwrap()[0]
        .text
        .clone()
}

#[test]
fn several_adapters_act_as_their_scaled_sum() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    leap::model::write_tiny(
        &common::default_model(),
        &model,
        &leap::model::TinySpec::default(),
    )
    .unwrap();
    // An adapter with a strong random update (B is zero after init; fill it).
    let base = GgufFile::open(&model).unwrap();
    let mut x = Adapter::init(&base, &LoraSpec::default(), 3).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for w in &mut x.weights {
        for v in &mut w.b {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *v = ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.5;
        }
    }
    let path = dir.path().join("x.gguf");
    x.write(&path).unwrap();

    let none = greedy(&model, &[]);
    let one = greedy(&model, &[(path.clone(), 1.0)]);
    assert_ne!(
        one, none,
        "the adapter must change the answer for this test to mean anything"
    );
    let halves = greedy(&model, &[(path.clone(), 0.5), (path.clone(), 0.5)]);
    assert_eq!(halves, one);
    let cancelled = greedy(&model, &[(path.clone(), 1.0), (path.clone(), -1.0)]);
    assert_eq!(cancelled, none);

    // The merge itself: stacked ranks, alpha equal to the total rank.
    let merged = Adapter::merge(&[(x.clone(), 1.0), (x.clone(), 2.0)]).unwrap();
    assert_eq!(merged.spec.rank, 2 * x.spec.rank);
    assert_eq!(merged.spec.alpha, merged.spec.rank as f32);
    assert_eq!(merged.weights.len(), x.weights.len());
    let corrupt = dir.path().join("corrupt.gguf");
    std::fs::write(&corrupt, b"GGUF not really").unwrap();
    let mut config = LocalConfig::new(&model);
    config.adapters = vec![(path, 1.0), (corrupt.clone(), 1.0)];
    let err = LocalPolicy::load(&config).err().unwrap().to_string();
    assert!(err.contains("corrupt.gguf"), "{err}");
}
