//! The oracle teacher: from the student's actual state at each step, the best next command
//! under the environment's rules, with a templated reason stating a general principle.
//!
//! `privilege` in [0, 1] sets how much of the privileged state it uses. At 0 it is the best
//! policy that uses only what the student has observed (a systematic search ordered by where
//! each object type usually lives, then the expert's plan over seen objects); at 1 it follows
//! the expert's shortest plan over the true state, going straight to the hidden object; in
//! between, each step independently uses the privileged plan with probability `privilege`,
//! drawn from a generator seeded by (seed, episode key, step): deterministic for a seed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use super::{Corrections, Replay, StepCorrection, Teacher, TeacherError, leak};
use crate::env::household::expert::PrivilegedState;
use crate::env::household::oracle::advise;
use crate::scenario::{Body, Scenario};
use crate::store::EpisodeRecord;

pub struct OracleTeacher {
    privilege: f64,
    seed: u64,
}

impl OracleTeacher {
    /// `privilege` is clamped to [0, 1].
    pub fn new(privilege: f64, seed: u64) -> OracleTeacher {
        OracleTeacher {
            privilege: privilege.clamp(0.0, 1.0),
            seed,
        }
    }

    /// Whether step `step` of the episode keyed `key` uses the privileged plan.
    pub fn privileged_at(&self, key: &str, step: usize) -> bool {
        if self.privilege >= 1.0 {
            return true;
        }
        if self.privilege <= 0.0 {
            return false;
        }
        let digest = Sha256::new()
            .chain_update(self.seed.to_le_bytes())
            .chain_update(key.as_bytes())
            .chain_update((step as u64).to_le_bytes())
            .finalize();
        let mut rng = ChaCha8Rng::from_seed(digest.into());
        rng.random::<f64>() < self.privilege
    }
}

impl Teacher for OracleTeacher {
    fn describe(&self) -> String {
        format!("oracle@{}", self.privilege)
    }

    fn privilege(&self) -> Option<f64> {
        Some(self.privilege)
    }

    fn correct(
        &mut self,
        scenario: &Scenario,
        episode: &EpisodeRecord,
    ) -> Result<Corrections, TeacherError> {
        let Body::Household(h) = &scenario.body;
        let privileged_state = PrivilegedState::of(&h.env(scenario.horizon));
        let mut trajectory = Vec::with_capacity(episode.steps.len());
        Replay::run(scenario, episode, &mut |i, replay| {
            let privileged = self.privileged_at(&episode.key, i);
            if let Some(advice) = advise(&replay.env, &replay.knowledge, privileged) {
                let leaks = leak::household(&advice.reason, &privileged_state, &replay.observed);
                trajectory.push(StepCorrection {
                    timestep: i as u32,
                    is_corrected: advice.action != episode.steps[i].action,
                    corrected_reason: advice.reason,
                    corrected_action: advice.action,
                    leaks,
                });
            }
            Ok(())
        })?;
        let changed = trajectory.iter().filter(|c| c.is_corrected).count();
        let summary = format!(
            "{} of {} steps corrected; the student {}.",
            changed,
            trajectory.len(),
            if episode.won {
                "reached the goal"
            } else {
                "did not reach the goal"
            }
        );
        Ok(Corrections {
            summary,
            trajectory,
            failures: Vec::new(),
        })
    }
}
