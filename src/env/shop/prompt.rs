//! The shop's variables of the student's prompt: the actions taken so far. A page is long (ten
//! results of three lines), so the student's prompt shows the current page only, and the earlier
//! steps as their actions, all of them whatever the history window, so the student still knows
//! what it searched for and which options it chose.

use minijinja::context;
use minijinja::value::Serde;

use crate::agent::prompt::Past;

/// `actions` for the template (see `assets/prompts/shop/react.j2`).
pub fn vars(history: &[Past], _admissible: &[String]) -> minijinja::Value {
    let actions: Vec<&str> = history.iter().map(|step| step.action.as_str()).collect();
    context! { actions => Serde(&actions) }
}

#[cfg(test)]
mod tests {
    use minijinja::context;
    use minijinja::value::Serde;

    use super::*;
    use crate::agent::prompt::Blocks;
    use crate::env::Fact;

    const STUDENT: &str = include_str!("../../../assets/prompts/shop/react.j2");
    const TEACHER: &str = include_str!("../../../assets/prompts/shop/correct_step.j2");
    const TASK: &str = "i need a red stereo earbud headphones, and price lower than 50.00 dollars";

    /// Words of the household's prompts that have no place in the shop's.
    const HOUSEHOLD: &[&str] = &[
        "go to",
        "fridge",
        "cabinet",
        "room",
        "place",
        "object",
        "text world",
        "receptacle",
    ];

    fn results() -> String {
        format!(
            "Instruction:\n{TASK}\n[button] Back to Search [button_]\nPage 1 (Total results: 50)\n\
             [button] Next > [button_]\n\n[button] B08CZ8WS38 [button_]\nWireless Earbuds, Red\n$4.89\n"
        )
    }

    fn history() -> Vec<Past> {
        vec![Past {
            action: "search[red stereo earbuds]".into(),
            observation: results(),
        }]
    }

    fn text(messages: Vec<crate::agent::Message>) -> String {
        messages
            .into_iter()
            .map(|m| m.content)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn check_shop_wording(text: &str) {
        for word in HOUSEHOLD {
            assert!(!text.to_lowercase().contains(word), "{word:?} in:\n{text}");
        }
        assert!(
            text.contains("search[") && text.contains("click["),
            "{text}"
        );
    }

    #[test]
    fn the_student_prompt_shows_the_page_and_every_earlier_action() {
        let blocks = Blocks::compile("react.j2", STUDENT.to_string()).unwrap();
        let history = history();
        let admissible: Vec<String> = [
            "click[back to search]",
            "click[next >]",
            "click[b08cz8ws38]",
        ]
        .map(String::from)
        .to_vec();
        let shown = text(
            blocks
                .render(context! {
                    task => TASK,
                    start => format!("WebShop\nInstruction: \n{TASK}\n[button] Search [button_]\n"),
                    history => Serde(&history),
                    observation => results(),
                    admissible => Serde(&admissible),
                    ..vars(&history, &admissible)
                })
                .unwrap(),
        );
        check_shop_wording(&shown);
        assert!(shown.contains("search[red stereo earbuds]"), "{shown}");
        assert!(shown.contains("[button] B08CZ8WS38 [button_]"), "{shown}");
        assert!(shown.contains("click[b08cz8ws38]"), "{shown}");
        // The instruction once, not again with the page.
        assert_eq!(shown.matches(TASK).count(), 1, "{shown}");
    }

    #[test]
    fn the_teacher_prompt_shows_the_goal_and_forbids_naming_the_product() {
        let blocks = Blocks::compile("correct_step.j2", TEACHER.to_string()).unwrap();
        let fact = |subject: &str, detail: &str| Fact {
            subject: subject.into(),
            relation: "is".into(),
            detail: detail.into(),
        };
        let facts = vec![
            fact("goal attribute", "stereo sound"),
            fact("goal option", "red"),
            fact("price limit", "50.00 dollars"),
            fact("matching product", "Otium Bluetooth Headphones"),
            fact("matching product asin", "B07KYL4W5P"),
        ];
        let admissible = vec!["search[...]".to_string()];
        let shown = text(
            blocks
                .render(context! {
                    task => TASK,
                    start => "WebShop",
                    history => Serde(&history()),
                    observation => results(),
                    admissible => Serde(&admissible),
                    student_reason => "I will look around.",
                    student_action => "click[back to search]",
                    error => Option::<&str>::None,
                    facts => Serde(&facts),
                    plan => Serde(&Some(vec!["click[b07kyl4w5p]", "click[red]", "click[buy now]"])),
                    page => "results",
                })
                .unwrap(),
        );
        check_shop_wording(&shown);
        for part in [
            "goal option: red",
            "matching product: Otium Bluetooth Headphones",
            "B07KYL4W5P",
            "click[b07kyl4w5p] > click[red]",
            "(results)",
            "I will look around.",
        ] {
            assert!(shown.contains(part), "{part:?} not in:\n{shown}");
        }
        assert!(shown.contains("ASIN"), "{shown}");
    }
}
