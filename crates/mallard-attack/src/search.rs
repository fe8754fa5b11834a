//! Query-budgeted search over the actions against any scorer (a model's P(malicious)):
//! a random walk (Anderson et al.'s baseline) and a greedy search that keeps, each round,
//! the action that lowered the score most. Every kept mutant passes [`check_preserved`].

use crate::{apply, check_preserved, Action, AttackError, Params, ACTIONS};
use mallard_rand::SplitMix64;

/// How actions are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Apply random actions one after another, each kept, until the score falls below the
    /// threshold or the budget is spent.
    Random,
    /// Each round, try every action once on the current mutant and keep the one with the
    /// lowest score if it is lower than the current one.
    Greedy,
}

/// What an attack on one file did.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Score of the original file.
    pub before: f32,
    /// Score of the returned mutant (the original when nothing was kept).
    pub after: f32,
    /// The original was detected (score at or above the threshold).
    pub detected: bool,
    /// Detected, and the mutant is not.
    pub evaded: bool,
    /// Scorer calls made on mutants.
    pub queries: usize,
    /// Actions applied to reach the mutant, in order.
    pub actions: Vec<Action>,
    pub mutant: Vec<u8>,
}

/// Attacks `original` with at most `budget` scorer calls on mutants.
pub fn attack(
    original: &[u8],
    score: &mut dyn FnMut(&[u8]) -> Result<f32, String>,
    threshold: f32,
    budget: usize,
    strategy: Strategy,
    params: &Params<'_>,
    rng: &mut SplitMix64,
) -> Result<Outcome, AttackError> {
    let before = score(original).map_err(AttackError::Broken)?;
    let mut out = Outcome {
        before,
        after: before,
        detected: before >= threshold,
        evaded: false,
        queries: 0,
        actions: Vec::new(),
        mutant: original.to_vec(),
    };
    if !out.detected {
        return Ok(out);
    }
    // Draws that produce nothing (no slack, over the size cap) are bounded too.
    let mut tries = 0usize;
    let max_tries = budget.saturating_mul(4).max(ACTIONS.len());
    while out.queries < budget && out.after >= threshold && tries < max_tries {
        match strategy {
            Strategy::Random => {
                tries += 1;
                let a = ACTIONS[rng.below(ACTIONS.len() as u64) as usize];
                let Some(m) = mutate(original, &out.mutant, a, rng, params)? else {
                    continue;
                };
                let s = score(&m).map_err(AttackError::Broken)?;
                out.queries += 1;
                out.after = s;
                out.mutant = m;
                out.actions.push(a);
            }
            Strategy::Greedy => {
                let mut order = ACTIONS;
                rng.shuffle(&mut order);
                let mut best: Option<(f32, Action, Vec<u8>)> = None;
                for a in order {
                    if out.queries >= budget {
                        break;
                    }
                    tries += 1;
                    let Some(m) = mutate(original, &out.mutant, a, rng, params)? else {
                        continue;
                    };
                    let s = score(&m).map_err(AttackError::Broken)?;
                    out.queries += 1;
                    if best.as_ref().is_none_or(|b| s < b.0) {
                        best = Some((s, a, m));
                    }
                    if s < threshold {
                        break;
                    }
                }
                if let Some((s, a, m)) = best {
                    if s < out.after {
                        out.after = s;
                        out.mutant = m;
                        out.actions.push(a);
                    }
                }
            }
        }
    }
    out.evaded = out.after < threshold;
    Ok(out)
}

/// `action` on `current`, checked against `original`; `None` when it does not apply, would
/// pass the size cap, or would break what must be kept on this file (such a mutant is
/// never scored nor returned).
fn mutate(
    original: &[u8],
    current: &[u8],
    action: Action,
    rng: &mut SplitMix64,
    params: &Params<'_>,
) -> Result<Option<Vec<u8>>, AttackError> {
    match apply(current, action, rng, params) {
        Ok(m) => match check_preserved(original, &m) {
            Ok(()) => Ok(Some(m)),
            Err(AttackError::Broken(_)) => Ok(None),
            Err(e) => Err(e),
        },
        Err(AttackError::NotApplicable { .. } | AttackError::TooLarge(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A mutant of `original` made by `steps` random actions among `actions` (each applied to
/// the previous mutant and checked against the original; actions that do not apply are
/// drawn again, at most `4 * steps + 16` draws). For training on mutants (augmentation):
/// no scorer is involved. Returns the mutant and the actions applied.
pub fn random_mutant(
    original: &[u8],
    actions: &[Action],
    steps: usize,
    params: &Params<'_>,
    rng: &mut SplitMix64,
) -> Result<(Vec<u8>, Vec<Action>), AttackError> {
    crate::parse(original)?;
    let mut current = original.to_vec();
    let mut applied = Vec::with_capacity(steps);
    let mut draws = 0usize;
    while applied.len() < steps && draws < 4 * steps + 16 && !actions.is_empty() {
        draws += 1;
        let a = actions[rng.below(actions.len() as u64) as usize];
        if let Some(m) = mutate(original, &current, a, rng, params)? {
            current = m;
            applied.push(a);
        }
    }
    Ok((current, applied))
}
