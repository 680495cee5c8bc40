//! Batch correction: a teacher corrects stored episodes; each corrected step becomes a pending
//! label. An episode this teacher has corrected is not corrected again, so a rerun after a kill
//! goes on where the last one stopped. An episode the teacher cannot take up at all (it no
//! longer replays in its scenario) is skipped and named in the summary: one such episode does not
//! cost the others their labels.

use std::collections::HashMap;

use serde::Serialize;
use thiserror::Error;

use crate::scenario::{self, Problems, Scenario};
use crate::store::{EpisodeFilter, LabelFilter, Store, StoreError};
use crate::teacher::{TeacherError, TeacherSpec, correct_and_store};

#[derive(Debug, Error)]
pub enum CorrectError {
    #[error(transparent)]
    Store(#[from] StoreError),
    // Not a `#[source]`: the message says it already, and `{:#}` would say it twice.
    #[error("building the teacher: {0}")]
    Teacher(TeacherError),
    #[error("episode {episode}: its scenario snapshot is missing")]
    MissingSnapshot { episode: i64 },
    #[error("{0}")]
    Snapshot(#[source] Problems),
    #[error("correcting episode {episode} ({key}): {error}")]
    Correcting {
        episode: i64,
        key: String,
        error: Box<TeacherError>,
    },
}

/// What a correction pass did, summed over its episodes.
#[derive(Debug, Default, Serialize)]
pub struct CorrectSummary {
    pub teacher: String,
    /// Episodes the filter selected.
    pub episodes: u64,
    /// Of those, corrected by this invocation (the rest already were).
    pub corrected_now: u64,
    pub steps: u64,
    pub labels: u64,
    pub changed: u64,
    /// Changed steps per corrected step.
    pub changed_share: f64,
    pub leaks: u64,
    /// Labels with a leak flag per label.
    pub leak_rate: f64,
    pub failures: u64,
    /// Episodes not corrected because the teacher could not take them up (they do not replay):
    /// nothing was written for them, and a rerun tries them again.
    pub skipped: Vec<SkippedEpisode>,
}

/// An episode a correction pass skipped, and why.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedEpisode {
    pub episode: i64,
    pub key: String,
    pub error: String,
}

impl std::fmt::Display for SkippedEpisode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "skipped episode {} ({}): {}",
            self.episode, self.key, self.error
        )
    }
}

/// Which episodes a pass corrects.
#[derive(Debug, Clone, Default)]
pub struct CorrectOptions {
    pub filter: EpisodeFilter,
    /// Only failed episodes (LEAP corrects those).
    pub failed_only: bool,
    /// With `failed_only`, an episode has failed when its reward is at most this; `None`: as
    /// its kind says ([`crate::env::EnvKind::failed_at_most`]), else when it was not won.
    pub max_reward: Option<f64>,
}

/// Whether an episode of `scenario` that ended with `won` and `reward` goes to the teacher.
fn fails(won: bool, reward: f64, max_reward: Option<f64>, scenario: &Scenario) -> bool {
    match max_reward.or(scenario.kind().failed_at_most()) {
        Some(at_most) => reward <= at_most,
        None => !won,
    }
}

/// Corrects every selected episode not yet corrected by the teacher built from `spec`;
/// `on_progress(done, total)` hears of each episode.
pub fn correct_episodes(
    store: &mut Store,
    spec: &TeacherSpec,
    options: &CorrectOptions,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<CorrectSummary, CorrectError> {
    let listed = store.list_episodes(&options.filter)?;
    let mut cache: HashMap<String, Scenario> = HashMap::new();
    for e in &listed {
        if cache.contains_key(&e.scenario_hash) {
            continue;
        }
        let snapshot = store
            .scenario(&e.scenario_hash)?
            .ok_or(CorrectError::MissingSnapshot { episode: e.id })?;
        let name = format!(
            "{}: scenario {}",
            store.path().display(),
            snapshot.scenario_id
        );
        let s = scenario::from_snapshot(&name, &snapshot.json).map_err(CorrectError::Snapshot)?;
        cache.insert(e.scenario_hash.clone(), s);
    }
    let episodes: Vec<_> = listed
        .into_iter()
        .filter(|e| {
            !options.failed_only
                || fails(
                    e.won,
                    e.reward,
                    options.max_reward,
                    &cache[&e.scenario_hash],
                )
        })
        .collect();
    let mut teacher = spec.build().map_err(CorrectError::Teacher)?;
    let total = episodes.len() as u64;
    let mut summary = CorrectSummary {
        teacher: teacher.describe(),
        episodes: total,
        ..CorrectSummary::default()
    };
    on_progress(0, total);
    for (done, e) in episodes.iter().enumerate() {
        match correct_and_store(store, &cache[&e.scenario_hash], e.id, teacher.as_mut()) {
            Ok(report) => summary.corrected_now += u64::from(report.correction_id.is_some()),
            // This episode's own problem (its steps do not replay): the others go on.
            Err(error @ TeacherError::Episode { .. }) => summary.skipped.push(SkippedEpisode {
                episode: e.id,
                key: e.key.clone(),
                error: error.to_string(),
            }),
            Err(error) => {
                return Err(CorrectError::Correcting {
                    episode: e.id,
                    key: e.key.clone(),
                    error: Box::new(error),
                });
            }
        }
        on_progress(done as u64 + 1, total);
    }
    // The totals cover every selected episode this teacher has corrected, now or before.
    for e in &episodes {
        let counts = store.label_counts(&LabelFilter {
            episode_id: Some(e.id),
            teacher: Some(summary.teacher.clone()),
            ..Default::default()
        })?;
        if store.correction_id(e.id, &summary.teacher)?.is_some() {
            summary.steps += u64::from(e.steps);
        }
        summary.labels += counts.total;
        summary.changed += counts.changed;
        summary.leaks += counts.leaking;
    }
    summary.failures = store.correction_failures(&summary.teacher)?;
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    summary.changed_share = ratio(summary.changed, summary.labels);
    summary.leak_rate = ratio(summary.leaks, summary.labels);
    Ok(summary)
}
