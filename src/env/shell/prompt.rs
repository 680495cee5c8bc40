//! The shell's variables of the student's prompt: every command run so far and its output,
//! clipped. A command may print thousands of lines and the student's context is 1,024 tokens,
//! so an earlier output shows its first lines only, and the latest (what a submission is judged
//! on) a few more.

use minijinja::context;
use minijinja::value::Serde;

use crate::agent::prompt::Past;
pub use crate::env::text::clip;

/// Lines and characters shown of an earlier command's output.
pub const EARLIER: (usize, usize) = (5, 240);
/// Lines and characters shown of the latest output.
pub const LATEST: (usize, usize) = (12, 600);

/// Each output as the prompts show it: clipped, the last one less, and `(no output)` for none.
pub fn outputs(observations: &[String]) -> Vec<String> {
    crate::env::text::clip_each(observations, EARLIER, LATEST, "(no output)")
}

/// `actions` (every command so far) and `outputs` (their outputs, clipped) for the template
/// (see `assets/prompts/shell/react.j2`), which shows the outputs of the steps in its history
/// window and only the commands of the steps before it.
pub fn vars(history: &[Past], _admissible: &[String]) -> minijinja::Value {
    let actions: Vec<&str> = history.iter().map(|step| step.action.as_str()).collect();
    let observations: Vec<String> = history.iter().map(|s| s.observation.clone()).collect();
    context! {
        actions => Serde(&actions),
        outputs => Serde(&outputs(&observations)),
    }
}

#[cfg(test)]
mod tests {
    use minijinja::context;
    use minijinja::value::Serde;

    use super::*;
    use crate::agent::prompt::Blocks;

    const STUDENT: &str = include_str!("../../../assets/prompts/shell/react.j2");
    const TEACHER: &str = include_str!("../../../assets/prompts/shell/correct_step.j2");
    const TASK: &str = "Count the lines of every .txt file under /testbed";

    fn history() -> Vec<Past> {
        let long: String = (0..100)
            .map(|i| format!("/testbed/file{i}.txt\n"))
            .collect();
        vec![
            Past {
                action: "ls /".into(),
                observation: "bin\ntestbed\nusr\n".into(),
            },
            Past {
                action: "find /testbed -name '*.txt'".into(),
                observation: long,
            },
            Past {
                action: "mkdir /testbed/x".into(),
                observation: String::new(),
            },
            Past {
                action: "find /testbed -name '*.txt' | xargs wc -l".into(),
                observation: "  3 /testbed/a.txt\n  4 /testbed/b.txt\n  7 total\n".into(),
            },
        ]
    }

    /// The system and user messages `blocks` make of `ctx`, one after the other.
    fn text(blocks: &Blocks, ctx: minijinja::Value) -> String {
        let [system, user] = <[_; 2]>::try_from(blocks.render(ctx).unwrap()).unwrap();
        format!("{}\n{}", system.content, user.content)
    }

    #[test]
    fn clipping_keeps_the_first_lines_and_says_how_many_there_were() {
        assert_eq!(clip("a\nb\nc\n", 2, 100), "a\nb\n... (3 lines in all)");
        assert_eq!(clip("a\nb\n", 2, 100), "a\nb");
        assert_eq!(clip("abcdef", 5, 3), "abc\n... (1 lines in all)");
        let outs = outputs(&["".into(), "x\n".into()]);
        assert_eq!(outs, ["(no output)", "x"]);
    }

    #[test]
    fn the_student_prompt_shows_the_window_clipped_and_earlier_commands() {
        let blocks = Blocks::compile("react.j2", STUDENT.to_string()).unwrap();
        let history = history();
        let admissible = vec!["...".to_string()];
        // The window shows the last three steps, as a history of 3 would.
        let shown = text(
            &blocks,
            context! {
                task => TASK,
                start => TASK,
                history => Serde(&history[1..]),
                observation => history[3].observation.clone(),
                admissible => Serde(&admissible),
                ..vars(&history, &admissible)
            },
        );
        assert_eq!(shown.matches(TASK).count(), 1, "{shown}");
        assert!(shown.contains("Earlier: ls /"), "{shown}");
        assert!(!shown.contains("usr"), "{shown}");
        assert!(
            shown.contains("$ find /testbed -name '*.txt'\n/testbed/file0.txt"),
            "{shown}"
        );
        assert!(shown.contains("(100 lines in all)"), "{shown}");
        assert!(!shown.contains("file50"), "{shown}");
        assert!(shown.contains("$ mkdir /testbed/x\n(no output)"), "{shown}");
        assert!(shown.contains("7 total"), "{shown}");
        assert!(shown.contains("ACTION: submit"), "{shown}");
        assert!(shown.len() < 2_000, "{} characters", shown.len());

        let first = text(
            &blocks,
            context! {
                task => TASK,
                start => TASK,
                history => Serde(&Vec::<Past>::new()),
                observation => TASK,
                admissible => Serde(&admissible),
                ..vars(&[], &admissible)
            },
        );
        assert_eq!(first.matches(TASK).count(), 1, "{first}");
        assert!(first.contains("No command run yet."), "{first}");
    }

    #[test]
    fn the_teacher_prompt_shows_the_gold_command_and_its_output() {
        let blocks = Blocks::compile("correct_step.j2", TEACHER.to_string()).unwrap();
        let history = history();
        let admissible = vec!["...".to_string()];
        let observations: Vec<String> = history.iter().map(|s| s.observation.clone()).collect();
        let shown = text(
            &blocks,
            context! {
                task => TASK,
                start => TASK,
                history => Serde(&history[2..]),
                observation => history[3].observation.clone(),
                admissible => Serde(&admissible),
                student_reason => "I will look around.",
                student_action => "ls",
                error => Option::<&str>::None,
                gold => "find /testbed -name \"*.txt\" | xargs wc -l",
                gold_output => Some("  3 /testbed/a.txt\n  4 /testbed/b.txt\n  7 total"),
                gold2 => Some("wc -l $(find /testbed -name '*.txt')"),
                plan => Serde(&Some(vec!["find /testbed -name \"*.txt\" | xargs wc -l", "submit"])),
                outputs => Serde(&outputs(&observations)),
                cwd => "/",
            },
        );
        for part in [
            "Gold command: find /testbed -name \"*.txt\" | xargs wc -l",
            "Another correct command: wc -l $(find /testbed -name '*.txt')",
            "7 total",
            "I will look around.",
            "ACTION: ls",
            "$ mkdir /testbed/x\n(no output)",
            "submit",
            "Working directory: /",
        ] {
            assert!(shown.contains(part), "{part:?} not in:\n{shown}");
        }
        assert!(!shown.contains("usr"), "{shown}");
    }
}
