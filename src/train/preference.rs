//! Preference optimisation: the LEAP paper's second update rule, where the teacher's corrected
//! step is preferred over the student's own output.
//!
//! Each pair is packed as two rows of one window, the prompt with the chosen response and the
//! prompt with the rejected one, each attending only to itself. A pass sums the log-probability
//! of each response's tokens (the response and the end of turn, as supervised training learns
//! them); [`pair_loss`] turns those sums and the reference policy's into the loss of the pairs
//! and its derivative by each sum, and the trainer scales each response row's cross-entropy
//! gradient by that derivative (`llama::SpanLoss`). The reference policy is the student before
//! this update: the adapter the run starts from, or the base model. Its log-probabilities are
//! computed once, before the first step, and kept in the checkpoint.
//!
//! The losses are TRL's (`DPOTrainer`) for the same settings:
//! - `sigmoid` (DPO): `-log sigmoid(beta * h)`, `h = (pi_c - ref_c) - (pi_r - ref_r)`;
//! - `ipo`: `(h - 1 / (2 beta))^2` with each log-probability averaged over its tokens;
//! - an SFT term on the chosen responses (`sft_weight`, TRL's `rpo_alpha`): the mean
//!   negative log-likelihood per chosen token, times the weight.
//!
//! The loss of a window is the mean over its pairs.

use serde::{Deserialize, Serialize};

/// Which preference loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PreferenceLoss {
    /// DPO's logistic loss.
    #[default]
    Sigmoid,
    /// Identity preference optimisation: a squared loss on length-normalised log-ratios.
    Ipo,
}

impl PreferenceLoss {
    pub fn as_str(self) -> &'static str {
        match self {
            PreferenceLoss::Sigmoid => "sigmoid",
            PreferenceLoss::Ipo => "ipo",
        }
    }
}

/// A preference objective's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Preference {
    pub loss: PreferenceLoss,
    /// How far the policy may move from the reference (the LEAP paper: 0.01).
    pub beta: f64,
    /// Weight of the SFT term on the chosen responses (0: none; TRL's `rpo_alpha`).
    pub sft_weight: f64,
}

impl Default for Preference {
    fn default() -> Self {
        Preference {
            loss: PreferenceLoss::Sigmoid,
            beta: 0.01,
            sft_weight: 0.0,
        }
    }
}

/// What an adapter is trained to do.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "objective")]
pub enum Objective {
    /// Supervised fine-tuning: the cross-entropy of the rows' responses.
    #[default]
    Sft,
    /// Preference optimisation on pairs of a chosen and a rejected response.
    Dpo(Preference),
}

impl Objective {
    pub fn name(&self) -> &'static str {
        match self {
            Objective::Sft => "sft",
            Objective::Dpo(_) => "dpo",
        }
    }

    pub fn preference(&self) -> Option<&Preference> {
        match self {
            Objective::Sft => None,
            Objective::Dpo(p) => Some(p),
        }
    }
}

/// The sums of a window's pairs, in the window's order: chosen, rejected, chosen, rejected...
#[derive(Debug, Clone, Copy)]
pub struct PairSums<'a> {
    /// The policy's summed log-probabilities of each response.
    pub policy: &'a [f64],
    /// The reference policy's, in the same order.
    pub reference: &'a [f64],
    /// Each response's tokens.
    pub tokens: &'a [usize],
}

/// How the pairs of a window stand: the loss, its derivative by each response's summed
/// log-probability, and the implicit rewards' agreement with the labels.
#[derive(Debug, Clone, PartialEq)]
pub struct PairLoss {
    pub loss: f64,
    pub grads: Vec<f64>,
    /// Pairs whose chosen response gains more over the reference than the rejected one.
    pub preferred: usize,
    /// Mean of beta * h over the pairs (TRL's `rewards/margins`).
    pub margin: f64,
}

/// The loss of a window's pairs and its derivative by each summed log-probability.
pub fn pair_loss(p: &Preference, sums: PairSums) -> PairLoss {
    let n = sums.policy.len();
    assert!(n.is_multiple_of(2), "responses come in pairs");
    assert!(sums.reference.len() == n && sums.tokens.len() == n);
    let pairs = (n / 2).max(1) as f64;
    let beta = p.beta;
    let mut grads = vec![0.0; n];
    let (mut loss, mut preferred, mut margin) = (0.0, 0, 0.0);
    for i in (0..n).step_by(2) {
        let (c, r) = (i, i + 1);
        // IPO compares log-probabilities per token, DPO whole responses.
        let per = |k: usize| match p.loss {
            PreferenceLoss::Sigmoid => 1.0,
            PreferenceLoss::Ipo => 1.0 / sums.tokens[k].max(1) as f64,
        };
        let ratio = |k: usize| (sums.policy[k] - sums.reference[k]) * per(k);
        let h = ratio(c) - ratio(r);
        // The pair's loss and its derivative by h.
        let (l, dh) = match p.loss {
            PreferenceLoss::Sigmoid => {
                let z = beta * h;
                (softplus(-z), -beta * sigmoid(-z))
            }
            PreferenceLoss::Ipo => {
                let d = h - 1.0 / (2.0 * beta);
                (d * d, 2.0 * d)
            }
        };
        loss += l / pairs;
        grads[c] += dh * per(c) / pairs;
        grads[r] -= dh * per(r) / pairs;
        preferred += usize::from(h > 0.0);
        margin += beta * h / pairs;
    }
    if p.sft_weight > 0.0 {
        let chosen: usize = (0..n).step_by(2).map(|c| sums.tokens[c]).sum();
        let chosen = chosen.max(1) as f64;
        let w = p.sft_weight;
        for c in (0..n).step_by(2) {
            loss -= w * sums.policy[c] / chosen;
            grads[c] -= w / chosen;
        }
    }
    PairLoss {
        loss,
        grads,
        preferred,
        margin,
    }
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// ln(1 + e^x), without overflow.
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(p: &Preference, policy: &[f64], reference: &[f64], tokens: &[usize]) -> Vec<f64> {
        (0..policy.len())
            .map(|k| {
                let eps = 1e-4;
                let at = |d: f64| {
                    let mut x = policy.to_vec();
                    x[k] += d;
                    let sums = PairSums {
                        policy: &x,
                        reference,
                        tokens,
                    };
                    pair_loss(p, sums).loss
                };
                (at(eps) - at(-eps)) / (2.0 * eps)
            })
            .collect()
    }

    #[test]
    fn every_loss_has_the_derivative_it_reports() {
        let policy = [-40.0, -52.5, -31.0, -30.0];
        let reference = [-41.0, -50.0, -33.0, -29.5];
        let tokens = [10, 14, 7, 9];
        for loss in [PreferenceLoss::Sigmoid, PreferenceLoss::Ipo] {
            for (beta, sft_weight) in [(0.01, 0.0), (0.5, 0.0), (0.1, 1.0)] {
                let p = Preference {
                    loss,
                    beta,
                    sft_weight,
                };
                let sums = PairSums {
                    policy: &policy,
                    reference: &reference,
                    tokens: &tokens,
                };
                let got = pair_loss(&p, sums).grads;
                let want = numeric(&p, &policy, &reference, &tokens);
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() < 1e-6 * w.abs().max(1.0),
                        "{p:?}: {got:?} vs {want:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_policy_at_the_reference_costs_log_two_under_dpo() {
        let x = [-10.0, -12.0];
        let sums = PairSums {
            policy: &x,
            reference: &x,
            tokens: &[3, 4],
        };
        let out = pair_loss(&Preference::default(), sums);
        assert!((out.loss - std::f64::consts::LN_2).abs() < 1e-12);
        assert_eq!(out.preferred, 0);
        // The gradient raises the chosen response and lowers the rejected one.
        assert!(out.grads[0] < 0.0 && out.grads[1] > 0.0);
        assert!((out.grads[0] + 0.005).abs() < 1e-12);
    }
}
