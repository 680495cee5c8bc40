//! The leakage guard: a corrected reason should teach what the student could have inferred,
//! not the secret. Each environment kind knows which words would give its hidden facts away
//! ([`crate::env::EnvKind::leaks`]); flags are stored with the label and counted.

use serde::{Deserialize, Serialize};

/// One privileged fact a reason gives away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leak {
    /// The fact, e.g. "apple 2 is in fridge 1".
    pub fact: String,
    /// The words of the reason that give it away.
    pub text: String,
}
