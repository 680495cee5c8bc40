//! The shell's expert on every shipped task.

use std::path::PathBuf;

use leap::env::shell::expert::{self, Layout};
use leap::env::shell::scenario as shell_scenario;
use leap::scenario;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped() -> Vec<scenario::Scenario> {
    scenario::load_all(&[root().join("scenarios/shell")]).unwrap_or_else(|p| panic!("{p}"))
}

#[test]
fn exploration_is_short_read_only_and_never_the_gold() {
    let mut explored = 0;
    let mut steps = 0;
    for s in shipped() {
        let body = shell_scenario::body(&s).unwrap();
        let layout = Layout::of(body.entries());
        let gold = &body.privileged.gold;
        let plan = expert::explore(&body.task, gold, &layout);
        if std::env::var_os("SHOW").is_some() {
            println!(
                "{} | {}\n  gold: {gold}\n  why: {}",
                s.id,
                body.task,
                expert::gold_reason(gold)
            );
            for st in &plan {
                println!("  > {}   # {}", st.action, st.reason);
            }
        }
        assert!(plan.len() <= expert::MAX_EXPLORE, "{}", s.id);
        for st in &plan {
            let first = st.action.split_whitespace().next().unwrap();
            assert!(
                ["ls", "find", "cat", "head"].contains(&first),
                "{}: {}",
                s.id,
                st.action
            );
            assert!(
                !st.action.contains(['>', '|', ';', '&']),
                "{}: {}",
                s.id,
                st.action
            );
            assert!(!st.action.contains("-exec") && !st.action.contains("-delete"));
            assert_ne!(st.action.trim(), gold.trim(), "{}", s.id);
        }
        explored += usize::from(!plan.is_empty());
        steps += plan.len();
    }
    eprintln!("{explored} tasks explore first, {steps} steps in all");
}
