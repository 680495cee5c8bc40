//! Where things are in a YAML file: resolves a path inside the document (`[2].world.receptacles[0].name`)
//! to a line and column, so that every problem, from the YAML parser, from serde or from
//! validation, can be reported as `FILE:LINE:COL`.

use std::fmt;

use marked_yaml::Node;

/// One step of a path into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path into a YAML document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct YamlPath(pub Vec<Seg>);

impl YamlPath {
    pub fn root() -> YamlPath {
        YamlPath(Vec::new())
    }

    pub fn key(&self, key: &str) -> YamlPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(key.to_string()));
        p
    }

    pub fn index(&self, i: usize) -> YamlPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    pub fn join(&self, other: &YamlPath) -> YamlPath {
        let mut p = self.clone();
        p.0.extend(other.0.iter().cloned());
        p
    }

    /// Converts the path that `serde_path_to_error` reports.
    pub fn from_serde(path: &serde_path_to_error::Path) -> YamlPath {
        use serde_path_to_error::Segment;
        YamlPath(
            path.iter()
                .filter_map(|s| match s {
                    Segment::Seq { index } => Some(Seg::Index(*index)),
                    Segment::Map { key } => Some(Seg::Key(key.clone())),
                    Segment::Enum { .. } | Segment::Unknown => None,
                })
                .collect(),
        )
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The parsed document with positions.
pub struct SourceMap {
    root: Option<Node>,
    lines: Vec<String>,
}

impl SourceMap {
    pub fn parse(text: &str) -> SourceMap {
        use marked_yaml::{LoaderOptions, parse_yaml_with_options};
        // The loader wants to be told whether the top level is a mapping or a list.
        let root = parse_yaml_with_options(0, text, LoaderOptions::default().toplevel_mapping())
            .or_else(|_| {
                parse_yaml_with_options(0, text, LoaderOptions::default().toplevel_sequence())
            })
            .ok();
        SourceMap {
            root,
            lines: text.lines().map(str::to_string).collect(),
        }
    }

    /// 1-based line and column of the deepest node on `path` that exists. With `key_of` set,
    /// points at that key of the mapping at `path` instead (for "unknown field" problems).
    pub fn locate(&self, path: &YamlPath, key_of: Option<&str>) -> (usize, usize) {
        let Some(mut node) = self.root.as_ref() else {
            return (1, 1);
        };
        let mut best = start(node);
        for seg in &path.0 {
            let next = match (seg, node) {
                (Seg::Key(k), Node::Mapping(m)) => m.get_node(k),
                (Seg::Index(i), Node::Sequence(s)) => s.get_node(*i),
                _ => None,
            };
            match next {
                Some(n) => {
                    node = n;
                    best = start(n).or(best);
                }
                None => break,
            }
        }
        if let (Some(key), Node::Mapping(m)) = (key_of, node)
            && let Some((k, _)) = m.iter().find(|(k, _)| k.as_str() == key)
            && let Some(marker) = k.span().start()
        {
            // The parser marks a key where its value starts; find the key itself on that line.
            let line = marker.line();
            let col = self
                .lines
                .get(line.wrapping_sub(1))
                .and_then(|text| text.find(&format!("{key}:")))
                .map_or(marker.column(), |i| i + 1);
            return (line, col);
        }
        best.unwrap_or((1, 1))
    }
}

fn start(node: &Node) -> Option<(usize, usize)> {
    node.span().start().map(|m| (m.line(), m.column()))
}
