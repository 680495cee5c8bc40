//! Household environment throughput, no model: steps per second over the shipped test set,
//! each episode replaying its expert plan with a wrong command between steps (so that both the
//! admissible and the "Nothing happens." paths are measured).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use leap::env::Environment;
use leap::env::household::{self, expert};
use leap::scenario;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let scenarios = scenario::load_all(&[root.join("scenarios/household/test")])
        .expect("shipped scenarios load");
    let mut episodes = Vec::new();
    for s in &scenarios {
        let env = household::body(s)
            .expect("a household scenario")
            .env(s.horizon);
        let plan = expert::plan(&env).expect("the expert solves every shipped scenario");
        let mut commands = Vec::new();
        for step in plan {
            commands.push("go to the moon".to_string());
            commands.push(step);
        }
        episodes.push((env, commands));
    }

    let mut measure = |with_admissible: bool| -> f64 {
        let mut steps = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            for (env, commands) in episodes.iter_mut() {
                env.reset();
                for c in commands.iter() {
                    let outcome = env.step(c);
                    if with_admissible {
                        black_box(env.admissible());
                    }
                    black_box(env.observation());
                    steps += 1;
                    if outcome.done {
                        break;
                    }
                }
            }
        }
        steps as f64 / start.elapsed().as_secs_f64()
    };
    let step_only = measure(false);
    let with_list = measure(true);
    println!(
        "household env, {} test scenarios, 1 thread:",
        episodes.len()
    );
    println!(
        "  step + observation:                  {:>12.0} steps/s (target >= 500000: {})",
        step_only,
        if step_only >= 500_000.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "  step + observation + admissible list: {:>12.0} steps/s",
        with_list
    );
}
