//! SKELETON (owner: the reward and shlex helper). Python's `shlex.split` (POSIX mode), exactly:
//! InterCode's container runtime splits `/bin/bash -c "<action>"` with it before bash sees it.

/// Why Python's `shlex.split` raises (`ValueError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShlexError {
    #[error("No closing quotation")]
    NoClosingQuotation,
    #[error("No escaped character")]
    NoEscapedCharacter,
}

/// `shlex.split(text)` (posix, no comments).
pub fn split(_text: &str) -> Result<Vec<String>, ShlexError> {
    todo!("SKELETON")
}
