//! Shared by the benches that report latency quantiles.

use std::time::Duration;

/// The `q` quantile of `samples` in milliseconds (nearest rank).
pub fn percentile(samples: &mut [Duration], q: f64) -> f64 {
    samples.sort();
    let rank = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1].as_secs_f64() * 1000.0
}
