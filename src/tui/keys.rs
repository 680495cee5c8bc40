//! Key bindings as data: the defaults in `assets/keys.yaml`, and a user file that overrides only
//! the actions it names.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_yaml::Value;

use super::action::{Action, Section};
use crate::scenario::{SourceMap, YamlPath};

const DEFAULT_KEYS: &str = include_str!("../../assets/keys.yaml");

/// One key with its modifiers, shift folded into the character for printable keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Key {
    pub fn new(code: KeyCode, mods: KeyModifiers) -> Key {
        let mods = mods & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match code {
            KeyCode::Tab if mods.contains(KeyModifiers::SHIFT) => KeyCode::BackTab,
            other => other,
        };
        // Shift is already in the character ("A", "?") and in BackTab.
        let mods = match code {
            KeyCode::Char(_) | KeyCode::BackTab => mods - KeyModifiers::SHIFT,
            _ => mods,
        };
        Key { code, mods }
    }

    pub fn from_event(event: &KeyEvent) -> Key {
        Key::new(event.code, event.modifiers)
    }

    /// Reads `ctrl-c`, `A`, `?`, `enter`, `f1`, ...
    pub fn parse(text: &str) -> Option<Key> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = text;
        loop {
            if rest.len() > 1 {
                if let Some(r) = rest.strip_prefix("ctrl-") {
                    mods |= KeyModifiers::CONTROL;
                    rest = r;
                    continue;
                }
                if let Some(r) = rest.strip_prefix("alt-") {
                    mods |= KeyModifiers::ALT;
                    rest = r;
                    continue;
                }
                if let Some(r) = rest.strip_prefix("shift-") {
                    mods |= KeyModifiers::SHIFT;
                    rest = r;
                    continue;
                }
            }
            break;
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(c),
            _ => match rest {
                "enter" => KeyCode::Enter,
                "esc" => KeyCode::Esc,
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "space" => KeyCode::Char(' '),
                "backspace" => KeyCode::Backspace,
                "delete" => KeyCode::Delete,
                "insert" => KeyCode::Insert,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "pageup" => KeyCode::PageUp,
                "pagedown" => KeyCode::PageDown,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                f if f.starts_with('f') => KeyCode::F(f[1..].parse().ok().filter(|n| *n >= 1)?),
                _ => return None,
            },
        };
        Some(Key::new(code, mods))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Delete => f.write_str("delete"),
            KeyCode::Insert => f.write_str("insert"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdn"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// A key file that would leave no way out of the workbench, with the file's other problems
/// (which may say why: an unknown key name).
#[derive(Debug, thiserror::Error)]
#[error("{way}{}", problems.iter().map(|p| format!("\n{p}")).collect::<String>())]
pub struct NoWayOut {
    pub way: Stuck,
    pub problems: Vec<String>,
}

/// Why the workbench could not be left.
#[derive(Debug, thiserror::Error)]
pub enum Stuck {
    #[error(
        "{at}: `quit` has no usable key, so the workbench could not be left; bind at least one \
         (the default is `quit: [q, ctrl-c]`)"
    )]
    NoKey { at: String },
    #[error(
        "{at}: every key of `quit` is taken on the {screen} screen ({taken}), so the workbench \
         could not be left from there; bind `quit` to a key that screen leaves free"
    )]
    Taken {
        at: String,
        screen: &'static str,
        taken: String,
    },
}

/// The bindings in force: for each section, each action's keys.
#[derive(Debug, Clone)]
pub struct Keymap {
    keys: HashMap<(Section, Action), Vec<Key>>,
    lookup: HashMap<(Section, Key), Action>,
}

impl Keymap {
    /// The shipped defaults.
    pub fn defaults() -> Keymap {
        let mut map = Keymap {
            keys: HashMap::new(),
            lookup: HashMap::new(),
        };
        let problems = map.apply(Path::new("assets/keys.yaml"), DEFAULT_KEYS);
        assert!(
            problems.is_empty(),
            "the shipped keymap is valid: {problems:?}"
        );
        map
    }

    /// The defaults with `user` (if it exists) on top. Problems in the user file are returned
    /// as `FILE:LINE:COL: ...` lines; the entries that were fine still apply. A file that leaves
    /// no way to quit is refused.
    pub fn load(user: Option<&Path>) -> Result<(Keymap, Vec<String>), NoWayOut> {
        let mut map = Keymap::defaults();
        let Some(path) = user else {
            return Ok((map, Vec::new()));
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let problems = map.apply(path, &text);
                match map.check_quit(path, &text) {
                    Ok(()) => Ok((map, problems)),
                    Err(way) => Err(NoWayOut { way, problems }),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((map, Vec::new())),
            Err(e) => Ok((
                map,
                vec![format!("{}: cannot read it: {e}", path.display())],
            )),
        }
    }

    /// Refuses a keymap in which `quit` has no key, or none that works on every screen (a
    /// screen's own binding of a key wins over `global`'s), located at `global.quit` in `file`.
    fn check_quit(&self, file: &Path, text: &str) -> Result<(), Stuck> {
        let (line, col) =
            SourceMap::parse(text).locate(&YamlPath::root().key("global").key("quit"), None);
        let at = format!("{}:{line}:{col}", file.display());
        let quit = self.keys(Section::Global, Action::Quit);
        if quit.is_empty() {
            return Err(Stuck::NoKey { at });
        }
        for screen in Section::SCREENS {
            if quit.iter().all(|k| self.action(screen, *k).is_some()) {
                let taken: Vec<String> = quit
                    .iter()
                    .map(|k| {
                        let action = self.action(screen, *k).map(action_snake);
                        format!("{k} is {}", action.unwrap_or_default())
                    })
                    .collect();
                return Err(Stuck::Taken {
                    at,
                    screen: screen.name(),
                    taken: taken.join(", "),
                });
            }
        }
        Ok(())
    }

    /// The user's key file: `${XDG_CONFIG_HOME:-~/.config}/leap/keys.yaml`.
    pub fn user_file() -> Option<PathBuf> {
        let base = match std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from) {
            Some(dir) if dir.is_absolute() => dir,
            _ => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
        };
        Some(base.join("leap").join("keys.yaml"))
    }

    /// Applies a YAML keymap on top of this one; returns its problems.
    pub fn apply(&mut self, file: &Path, text: &str) -> Vec<String> {
        let map = SourceMap::parse(text);
        let at_key = |path: &YamlPath, key: Option<&str>, message: String| {
            let (line, col) = map.locate(path, key);
            format!("{}:{line}:{col}: {message}", file.display())
        };
        let at = |path: &YamlPath, message: String| at_key(path, None, message);
        let root: Value = match serde_yaml::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
                return vec![format!(
                    "{}:{line}:{col}: invalid YAML: {e}",
                    file.display()
                )];
            }
        };
        let mut problems = Vec::new();
        let Value::Mapping(sections) = root else {
            if !root.is_null() {
                problems.push(at(
                    &YamlPath::root(),
                    "expected a mapping of sections (global, episode, ...)".into(),
                ));
            }
            return problems;
        };
        for (name, actions) in sections {
            let name = name.as_str().unwrap_or_default().to_string();
            let path = YamlPath::root().key(&name);
            let Ok(section) = serde_yaml::from_value::<Section>(Value::String(name.clone())) else {
                let known: Vec<_> = Section::ALL.iter().map(|s| s.name()).collect();
                problems.push(at_key(
                    &YamlPath::root(),
                    Some(&name),
                    format!(
                        "unknown section `{name}`, expected one of {}",
                        known.join(", ")
                    ),
                ));
                continue;
            };
            let Value::Mapping(actions) = actions else {
                if !actions.is_null() {
                    problems.push(at(&path, "expected `action: [keys]` entries".into()));
                }
                continue;
            };
            for (action_name, keys) in actions {
                let action_name = action_name.as_str().unwrap_or_default().to_string();
                let apath = path.key(&action_name);
                let action = serde_yaml::from_value::<Action>(Value::String(action_name.clone()))
                    .ok()
                    .filter(|a| section.actions().contains(a));
                let Some(action) = action else {
                    let known: Vec<_> =
                        section.actions().iter().map(|a| action_snake(*a)).collect();
                    problems.push(at_key(
                        &path,
                        Some(&action_name),
                        format!(
                            "unknown action `{action_name}` in `{}`, expected one of {}",
                            section.name(),
                            known.join(", ")
                        ),
                    ));
                    continue;
                };
                let texts: Vec<String> = match keys {
                    Value::Sequence(items) => items
                        .iter()
                        .map(|v| match v {
                            Value::String(s) => s.clone(),
                            other => serde_yaml::to_string(other)
                                .unwrap_or_default()
                                .trim()
                                .to_string(),
                        })
                        .collect(),
                    Value::String(s) => vec![s],
                    Value::Null => Vec::new(),
                    other => vec![
                        serde_yaml::to_string(&other)
                            .unwrap_or_default()
                            .trim()
                            .to_string(),
                    ],
                };
                let mut parsed = Vec::new();
                for (i, text) in texts.iter().enumerate() {
                    match Key::parse(text) {
                        Some(k) => parsed.push(k),
                        None => problems.push(at(
                            &apath.index(i),
                            format!("unknown key `{text}`, expected a character or a key name like enter, esc, ctrl-c, f1"),
                        )),
                    }
                }
                self.bind(section, action, parsed);
            }
        }
        problems
    }

    /// Replaces the keys of `action` in `section`.
    pub fn bind(&mut self, section: Section, action: Action, keys: Vec<Key>) {
        if let Some(old) = self.keys.remove(&(section, action)) {
            for k in old {
                if self.lookup.get(&(section, k)) == Some(&action) {
                    self.lookup.remove(&(section, k));
                }
            }
        }
        for k in &keys {
            self.lookup.insert((section, *k), action);
        }
        self.keys.insert((section, action), keys);
    }

    /// The action of `key` in `section` (not falling back to global).
    pub fn action(&self, section: Section, key: Key) -> Option<Action> {
        self.lookup.get(&(section, key)).copied()
    }

    /// The keys of `action` in `section`.
    pub fn keys(&self, section: Section, action: Action) -> &[Key] {
        self.keys
            .get(&(section, action))
            .map_or(&[], |v| v.as_slice())
    }
}

fn action_snake(action: Action) -> String {
    let name = format!("{action:?}");
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_and_print_back() {
        for text in ["ctrl-c", "A", "?", "enter", "f1", "space", "["] {
            let key = Key::parse(text).unwrap();
            assert_eq!(Key::parse(&key.to_string()).unwrap_or(key), key, "{text}");
        }
        assert_eq!(
            Key::parse("A").unwrap(),
            Key::new(KeyCode::Char('A'), KeyModifiers::SHIFT)
        );
        assert!(Key::parse("hyper-x").is_none());
    }

    #[test]
    fn a_user_file_overrides_only_what_it_names() {
        let mut map = Keymap::defaults();
        let problems = map.apply(
            Path::new("user.yaml"),
            "episode:\n  step: [S]\n  bogus: [z]\n",
        );
        assert_eq!(
            map.keys(Section::Episode, Action::Step),
            &[Key::parse("S").unwrap()]
        );
        assert_eq!(map.action(Section::Episode, Key::parse("s").unwrap()), None);
        assert_eq!(
            map.action(Section::Episode, Key::parse("r").unwrap()),
            Some(Action::RunPause)
        );
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("user.yaml:3:3: unknown action `bogus`"),
            "{problems:?}"
        );
    }
}
