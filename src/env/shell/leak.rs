//! The shell's leak guard: a corrected reason must not give the gold command's output before
//! the student has seen it. The gold command itself is no secret a reason could leak (the
//! teacher's action runs it anyway), so what leaks is a distinctive piece of the output that is
//! neither in the command nor in what the student has read: a hash, a number, a file name or
//! path, or the whole output when it is a few words ("False", "www.google.com").

use crate::env::Privileged;
use crate::teacher::Leak;

/// The subject of the fact that holds the gold command.
pub const GOLD: &str = "gold command";
/// The subject of the fact that holds what the gold command prints on a fresh file system.
pub const GOLD_OUTPUT: &str = "gold output";
/// The subject of the fact that holds a second gold command (InterCode-ALFA's).
pub const GOLD2: &str = "second gold command";

/// An output of at most this many words leaks when a reason says it whole.
const SHORT_OUTPUT: usize = 3;

/// The privileged facts of a shell scenario that `reason` gives away, given everything the
/// student had read by then (`observed`: the request and every output so far).
pub fn guard(reason: &str, hidden: &Privileged, observed: &str) -> Vec<Leak> {
    let Some(output) = detail(hidden, GOLD_OUTPUT) else {
        return Vec::new();
    };
    let gold = detail(hidden, GOLD).unwrap_or("").to_lowercase();
    let seen: Vec<String> = tokens(observed).collect();
    let said: Vec<String> = tokens(reason).collect();
    // A file name is seen once a listing showed it alone or at the end of a path.
    let known = |piece: &str| {
        gold.contains(piece) || seen.iter().any(|t| t == piece || ends_with_name(t, piece))
    };
    let leak = |piece: &str| Leak {
        fact: format!("the gold output holds {piece}"),
        text: piece.to_string(),
    };

    let mut leaks: Vec<Leak> = Vec::new();
    let whole: Vec<String> = tokens(output).collect();
    let joined = whole.join(" ");
    if (1..=SHORT_OUTPUT).contains(&whole.len())
        && !known(&joined)
        && !seen.windows(whole.len()).any(|w| w == whole.as_slice())
        && said.windows(whole.len()).any(|w| w == whole.as_slice())
    {
        leaks.push(leak(output.trim()));
    }
    let mut pieces: Vec<String> = tokens(output).flat_map(|t| distinctive(&t)).collect();
    pieces.sort();
    pieces.dedup();
    for piece in pieces {
        if !known(&piece)
            && said
                .iter()
                .any(|t| t == &piece || ends_with_name(t, &piece))
        {
            leaks.push(leak(&piece));
        }
    }
    leaks
}

/// The detail of the fact about `subject` ([`GOLD`], [`GOLD_OUTPUT`], [`GOLD2`]), if known.
pub fn detail<'a>(hidden: &'a Privileged, subject: &str) -> Option<&'a str> {
    hidden
        .facts
        .iter()
        .find(|f| f.subject == subject)
        .map(|f| f.detail.as_str())
}

/// Whether the word `said` is a path ending in the file name `piece`.
fn ends_with_name(said: &str, piece: &str) -> bool {
    !piece.contains('/') && said.ends_with(&format!("/{piece}"))
}

/// The words of a text as a reason or an output writes them, lowercased: paths, numbers and
/// names whole, sentence punctuation and quotes cut off.
fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| c.is_whitespace() || ",;:()[]{}'\"`<>|=!?".contains(c))
        .map(|w| w.trim_end_matches('.').trim_start_matches("./"))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The pieces of one output word that give the output away: a hash, a number, a file name (and
/// the whole path it ends).
fn distinctive(word: &str) -> Vec<String> {
    let hex = word.len() >= 8
        && word.chars().all(|c| c.is_ascii_hexdigit())
        && word.chars().any(|c| c.is_ascii_digit());
    let number = {
        let digits = word.trim_end_matches(['k', 'm', 'g', '%']);
        !digits.is_empty()
            && digits.chars().any(|c| c.is_ascii_digit())
            && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
    };
    if hex || number {
        return vec![word.to_string()];
    }
    let mut pieces = Vec::new();
    if word.contains('/') {
        let name = word.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        if word.len() > 1 {
            pieces.push(word.trim_end_matches('/').to_string());
        }
        if is_file_name(name) {
            pieces.push(name.to_string());
        }
    } else if is_file_name(word) {
        pieces.push(word.to_string());
    }
    pieces
}

/// `name.ext`, as a file name is written.
fn is_file_name(word: &str) -> bool {
    word.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty()
            && (1..=5).contains(&ext.len())
            && ext.chars().all(|c| c.is_ascii_alphanumeric())
            && !ext.chars().all(|c| c.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Fact;

    const GOLD_CMD: &str = "find /testbed -name \"*.txt\" | xargs wc -l | tail -1";
    const REQUEST: &str = "Count the lines of every .txt file under /testbed";

    fn hidden(output: &str) -> Privileged {
        let fact = |subject: &str, detail: &str| Fact {
            subject: subject.into(),
            relation: "is".into(),
            detail: detail.into(),
        };
        Privileged {
            facts: vec![fact(GOLD, GOLD_CMD), fact(GOLD_OUTPUT, output)],
            plan: None,
        }
    }

    fn leaked(reason: &str, output: &str, observed: &str) -> Vec<String> {
        guard(reason, &hidden(output), observed)
            .into_iter()
            .map(|l| l.text)
            .collect()
    }

    #[test]
    fn a_number_of_the_output_leaks_until_it_is_seen() {
        let out = "  27 total\n";
        assert_eq!(
            leaked("The files have 27 lines in all, so submit.", out, REQUEST),
            ["27"]
        );
        let seen = format!("{REQUEST}\n  27 total\n");
        assert!(leaked("The files have 27 lines in all, so submit.", out, &seen).is_empty());
        // A number of the request is no secret.
        assert!(leaked("Count the .txt files, 27 of them.", out, "list 27 files").is_empty());
    }

    #[test]
    fn a_hash_and_a_file_name_leak() {
        let out = "d41d8cd98f00b204e9800998ecf8427e  /testbed/dir1/textfile1.txt\n";
        let l = leaked(
            "The sum is d41d8cd98f00b204e9800998ecf8427e, so submit.",
            out,
            REQUEST,
        );
        assert_eq!(l, ["d41d8cd98f00b204e9800998ecf8427e"]);
        let facts = guard("Hash textfile1.txt first.", &hidden(out), REQUEST);
        assert_eq!(facts.len(), 1);
        assert_eq!(facts[0].fact, "the gold output holds textfile1.txt");
        assert_eq!(
            leaked("Look at /testbed/dir1/textfile1.txt.", out, REQUEST),
            ["/testbed/dir1/textfile1.txt", "textfile1.txt"]
        );
        // Once a listing showed the file, alone or in its path, naming it is fair.
        let seen = format!("{REQUEST}\ntextfile1.txt  subdir1\n");
        assert!(leaked("Hash textfile1.txt first.", out, &seen).is_empty());
        let seen = format!("{REQUEST}\n/testbed/dir1/textfile1.txt\n");
        assert!(leaked("Hash textfile1.txt first.", out, &seen).is_empty());
    }

    #[test]
    fn the_gold_command_and_the_request_are_no_leak() {
        let out = "/testbed/a.txt\n/testbed/b.txt\n";
        let reason = "The request counts the lines of every .txt file under /testbed, so run find /testbed -name \"*.txt\" | xargs wc -l | tail -1.";
        assert!(leaked(reason, out, REQUEST).is_empty());
    }

    #[test]
    fn a_short_output_leaks_whole() {
        assert_eq!(
            leaked(
                "The answer is False, so submit.",
                "False\n",
                "Is screen running?"
            ),
            ["False"]
        );
        assert!(leaked("Check, then submit.", "False\n", "Is screen running?").is_empty());
        assert!(leaked("It printed False, so submit.", "False\n", "Is it?\nFalse\n").is_empty());
    }

    #[test]
    fn without_the_output_nothing_is_known_to_leak() {
        let hidden = Privileged {
            facts: vec![Fact {
                subject: GOLD.into(),
                relation: "is".into(),
                detail: GOLD_CMD.into(),
            }],
            plan: None,
        };
        assert!(guard("There are 27 lines.", &hidden, REQUEST).is_empty());
    }
}
