//! The protocol's cost per step: leap stepping TextWorld through its adapter over OpenEnv's
//! WebSocket, against the same steps called in Python in one process, through the adapter's
//! class (the same work per step, without the protocol) and through the engine alone
//! (`benches/external_direct.py`). Commands that change nothing (`look`, `inventory`), so every
//! step does the same work. The runs are one after the other, not interleaved: compare them on
//! a quiet machine.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use leap::env::Environment;
use leap::env::external::scenario::ExternalScenario;
use leap::env::external::server;

use common::percentile;

const ROUNDS: usize = 300;
const ACTIONS: [&str; 2] = ["look", "inventory"];

fn main() {
    let scenarios =
        leap::scenario::load_all(&["scenarios/external/textworld.yaml".into()]).unwrap();
    let s = &scenarios[0];
    let external = s
        .body
        .as_any()
        .downcast_ref::<ExternalScenario>()
        .expect("an external scenario");
    let python = server::adapter_python().unwrap_or_else(|e| panic!("{e}"));
    let script = server::adapter_file("textworld").unwrap();
    let adapters = script.parent().unwrap();

    let started = Instant::now();
    let mut env = external.episode(s.horizon);
    assert_eq!(env.failure(), None);
    let first = started.elapsed();
    let mut leap = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS {
        let t = Instant::now();
        let outcome = env.step(ACTIONS[i % ACTIONS.len()]);
        leap.push(t.elapsed());
        assert_eq!(env.failure(), None);
        if outcome.done {
            env.reset();
        }
    }
    drop(env);

    let reset = serde_json::to_string(&external.world.reset).unwrap();
    let out = Command::new(&python)
        .arg("benches/external_direct.py")
        .arg(adapters)
        .arg(&reset)
        .arg(ROUNDS.to_string())
        .output()
        .expect("the direct Python run starts");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let direct: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let seconds = |key: &str| -> Vec<Duration> {
        direct[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| Duration::from_secs_f64(v.as_f64().unwrap()))
            .collect()
    };
    let (mut engine, mut adapter) = (seconds("engine"), seconds("adapter"));

    println!(
        "external environments: TextWorld `{}`, {ROUNDS} steps each",
        s.id
    );
    println!(
        "  first episode (server start, game made or cached, session, reset): {:.2} s",
        first.as_secs_f64()
    );
    let row = |name: &str, times: &mut Vec<Duration>| {
        let (p50, p99) = (percentile(times, 0.50), percentile(times, 0.99));
        println!("  {name:<38} p50 {p50:7.3} ms  p99 {p99:7.3} ms");
        (p50, p99)
    };
    let (e50, _) = row("engine alone, in Python:", &mut engine);
    let (a50, a99) = row("adapter class, in Python:", &mut adapter);
    let (l50, l99) = row("leap over OpenEnv's WebSocket:", &mut leap);
    println!(
        "  the protocol's overhead: p50 {:+.3} ms, p99 {:+.3} ms; leap / engine alone at p50: {:.2}x",
        l50 - a50,
        l99 - a99,
        l50 / e50
    );
}
