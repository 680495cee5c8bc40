//! `shlex::split` against Python's own `shlex.split` on every gold command and every recorded
//! action, wrapped as InterCode wraps them, and on hand-picked edge cases
//! (`tests/data/intercode_bash/shlex_vectors.json`, made as `tests/data/README.md` says).

use leap::env::shell::shlex::{ShlexError, split};
use serde_json::Value;

#[test]
fn splits_as_python_does() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/intercode_bash/shlex_vectors.json"
    );
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert!(vectors.len() > 1500, "{} vectors", vectors.len());
    let mut errors = 0;
    for v in vectors {
        let input = v["input"].as_str().unwrap();
        let expected = match v["error"].as_str() {
            Some("No closing quotation") => Err(ShlexError::NoClosingQuotation),
            Some("No escaped character") => Err(ShlexError::NoEscapedCharacter),
            Some(other) => panic!("unknown error {other:?} for {input:?}"),
            None => Ok(v["words"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_str().unwrap().to_string())
                .collect()),
        };
        errors += usize::from(expected.is_err());
        assert_eq!(split(input), expected, "{input:?}");
    }
    assert!(errors > 10, "{errors} errors");
}
