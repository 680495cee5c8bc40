//! Without a sandbox the shell episode says so and ends with reward 0; nothing panics.

use std::sync::Arc;

use leap::env::Environment;
use leap::env::shell::exec::Semantics;
use leap::env::shell::fs::Template;
use leap::env::shell::sandbox::Sandbox;
use leap::env::shell::{ShellEnv, Task};

#[test]
fn without_bubblewrap_every_step_says_so_and_ends_the_episode() {
    // SAFETY: this binary's only test, set before any thread reads the environment.
    unsafe { std::env::set_var("LEAP_BWRAP", "/nonexistent/bwrap") };
    let line = Sandbox::get().expect_err("no bubblewrap there").to_string();
    let task = Arc::new(Task::new(
        "List the files.".into(),
        "ls /testbed".into(),
        Template::shipped("fs1").unwrap(),
        Semantics::Intercode,
    ));
    assert_eq!(task.gold_output(), Err(line.clone()));
    let mut env = ShellEnv::new(task, 10);
    assert_eq!(env.observation(), "List the files.");
    for action in ["ls", "submit"] {
        let outcome = env.step(action);
        assert_eq!(
            (outcome.reward, outcome.done, outcome.won),
            (0.0, true, false)
        );
        assert_eq!(env.observation(), line);
        assert_eq!(env.failure(), Some(line.as_str()));
        assert_eq!(env.info(), Some(serde_json::json!({ "error": line })));
        env.reset();
    }
}
