//! The learning rate over a run: a linear warmup, then a cosine decay to zero (the schedule TRL's
//! SFT uses with `lr_scheduler_type="cosine"`).

/// Learning rate at `step` (0-based) of `total` steps, peaking at `peak` after `warmup` steps.
pub fn learning_rate(step: u64, total: u64, warmup: u64, peak: f32) -> f32 {
    let total = total.max(1);
    if step < warmup {
        return peak * (step + 1) as f32 / (warmup + 1) as f32;
    }
    let span = (total - warmup.min(total)).max(1);
    let progress = ((step - warmup) as f64 / span as f64).min(1.0);
    let lr = peak as f64 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    // ggml-opt refuses a zero rate; the last step keeps a sliver.
    (lr as f32).max(peak * 1e-3)
}

#[cfg(test)]
mod tests {
    use super::learning_rate;

    #[test]
    fn warms_up_then_decays() {
        let lrs: Vec<f32> = (0..100).map(|s| learning_rate(s, 100, 10, 1.0)).collect();
        assert!(lrs[0] > 0.0 && lrs[0] < lrs[9]);
        assert!((lrs[10] - 1.0).abs() < 1e-6);
        assert!(lrs.windows(2).skip(10).all(|w| w[1] <= w[0]));
        assert!(lrs[99] < 0.01 && lrs[99] > 0.0);
        assert!((learning_rate(55, 100, 10, 1.0) - 0.5).abs() < 1e-6);
    }
}
