//! Shared by the training benches (`train`, `dpo`): the thread count both sides use, what a
//! measuring child process prints as its last line, and the kernels' names.

use leap::train::Matmul;

/// The `--matmul` a child was given.
pub fn matmul(name: &str) -> Matmul {
    <Matmul as clap::ValueEnum>::from_str(name, false).expect("a --matmul name")
}

/// A BF16 kernel as the benches' lines name it.
pub fn kernel_name(kernel: Matmul) -> &'static str {
    match kernel {
        Matmul::Amx => "AMX",
        _ => "AVX512-BF16",
    }
}

/// Threads for both sides: `LEAP_BENCH_THREADS`, else every core.
pub fn threads() -> usize {
    std::env::var("LEAP_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// One side's steady-state step.
#[derive(Debug, Clone, Copy)]
pub struct Measure {
    pub step_s: f64,
    pub tokens_per_s: f64,
    pub peak_rss_mb: f64,
}

/// The measure in the JSON object a child printed last (`step_s`, `tokens_per_s`,
/// `peak_rss_mb`).
pub fn parse(stdout: &[u8]) -> Option<Measure> {
    let line = String::from_utf8_lossy(stdout);
    let v: serde_json::Value = serde_json::from_str(line.lines().last()?).ok()?;
    Some(Measure {
        step_s: v["step_s"].as_f64()?,
        tokens_per_s: v["tokens_per_s"].as_f64()?,
        peak_rss_mb: v["peak_rss_mb"].as_f64()?,
    })
}
