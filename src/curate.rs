//! Curation: deciding every pending label by a rule, one transaction each, so that a pass killed
//! half-way keeps the decisions it made and a rerun decides only what is still pending. Each
//! decision is from the state the pass read: a label another decider (a second `leap curate`, a
//! person) decided meanwhile is left as they decided it.

use serde::Serialize;

use crate::store::{Decision, Label, LabelCounts, LabelFilter, LabelStatus, Store, StoreError};

/// How pending labels are decided (the names are the CLI's values).
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum CurationRule {
    /// Accept every pending label.
    AcceptAll,
    /// Accept labels without leak flags, reject the rest.
    AcceptUnlessLeak,
    /// Accept labels whose action differs from the student's, reject the rest.
    AcceptIfChanged,
}

impl CurationRule {
    pub fn name(self) -> &'static str {
        match self {
            CurationRule::AcceptAll => "accept-all",
            CurationRule::AcceptUnlessLeak => "accept-unless-leak",
            CurationRule::AcceptIfChanged => "accept-if-changed",
        }
    }

    /// The decision this rule makes about `label`.
    pub fn decide(self, label: &Label) -> Decision {
        let keep = match self {
            CurationRule::AcceptAll => true,
            CurationRule::AcceptUnlessLeak => label.leaks.is_empty(),
            CurationRule::AcceptIfChanged => label.changed,
        };
        if keep {
            Decision::Accept
        } else {
            Decision::Reject
        }
    }
}

/// What a curation pass decided.
#[derive(Debug, Default, Serialize)]
pub struct CurateSummary {
    pub policy: String,
    pub accepted: u64,
    pub rejected: u64,
    /// Labels another decider decided between this pass reading them and deciding them: left
    /// as the other decided.
    #[serde(skip_serializing_if = "is_zero")]
    pub decided_elsewhere: u64,
    pub counts: LabelCounts,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Decides every pending label (of `iteration`, if given) by `rule`, one transaction each;
/// `on_decided` hears of each decision once it is stored.
pub fn curate(
    store: &mut Store,
    rule: CurationRule,
    iteration: Option<u32>,
    on_decided: &mut dyn FnMut(&Label),
) -> Result<CurateSummary, StoreError> {
    let filter = LabelFilter {
        status: Some(LabelStatus::Pending),
        iteration,
        ..LabelFilter::default()
    };
    let by = format!("policy:{}", rule.name());
    let mut summary = CurateSummary {
        policy: rule.name().into(),
        ..CurateSummary::default()
    };
    for label in store.labels(&filter)? {
        let decision = rule.decide(&label);
        let decided = match store.decide_from(&label, &decision, &by) {
            Ok(decided) => decided,
            Err(StoreError::Decided { .. }) => {
                summary.decided_elsewhere += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        match decision {
            Decision::Accept => summary.accepted += 1,
            _ => summary.rejected += 1,
        }
        on_decided(&decided);
    }
    summary.counts = store.label_counts(&LabelFilter {
        iteration,
        ..LabelFilter::default()
    })?;
    Ok(summary)
}
