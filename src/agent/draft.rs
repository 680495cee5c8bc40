//! Drafts for speculative decoding, from n-grams: no second model.
//!
//! A student's answers repeat themselves: a cloned student writes the same sentence with
//! another object in it at every step of every episode ("A cloth is often kept in or on a
//! countertop, and I have not checked countertop 1 yet."), and the names it writes are the
//! prompt's. So the next few tokens of an answer can often be guessed from what followed the
//! last few tokens in earlier answers, or in the prompt. The local backend decodes the guesses
//! beside the answer's next token in the same batch and keeps those that the model itself
//! would have chosen (greedy decoding only), so a good guess saves a decode call per token and
//! a bad one costs its share of a batch: the answers are the same either way.

use std::collections::HashMap;

use llama_cpp_2::token::LlamaToken;

/// The longest context an n-gram is keyed by.
pub const ORDER: usize = 3;

/// Contexts kept before the table starts afresh, so that a long session's memory stays bounded
/// (some tens of MB; an answer of 30 tokens adds at most 90 contexts).
const MAX_CONTEXTS: usize = 1 << 18;

/// What followed each context of 1 to [`ORDER`] tokens in the answers learnt so far.
#[derive(Debug, Default)]
pub struct Drafter {
    /// Context (padded with -1 in front) to the tokens that followed it and how often.
    next: HashMap<[i32; ORDER], Vec<(i32, u32)>>,
}

fn key(context: &[i32]) -> [i32; ORDER] {
    let mut key = [-1; ORDER];
    key[ORDER - context.len()..].copy_from_slice(context);
    key
}

impl Drafter {
    /// Learns the tokens of a finished answer, with the tokens just before it (the end of its
    /// prompt) as the context of its first tokens.
    pub fn learn(&mut self, before: &[LlamaToken], answer: &[LlamaToken]) {
        if self.next.len() > MAX_CONTEXTS {
            self.next.clear();
        }
        let lead = before.len().min(ORDER);
        let tokens: Vec<i32> = before[before.len() - lead..]
            .iter()
            .chain(answer)
            .map(|t| t.0)
            .collect();
        for at in lead..tokens.len() {
            for n in 1..=ORDER.min(at) {
                let seen = self.next.entry(key(&tokens[at - n..at])).or_default();
                match seen.iter_mut().find(|(t, _)| *t == tokens[at]) {
                    Some((_, count)) => *count += 1,
                    None => seen.push((tokens[at], 1)),
                }
            }
        }
    }

    /// The token that most often followed the longest known context ending `context`. With
    /// `strict`, only when it followed that context at least as often as every other token
    /// together (and, after a single token, more than once); else the next shorter context's.
    fn predict(&self, context: &[i32], strict: bool) -> Option<i32> {
        (1..=ORDER.min(context.len())).rev().find_map(|n| {
            let seen = self.next.get(&key(&context[context.len() - n..]))?;
            let total: u32 = seen.iter().map(|(_, c)| c).sum();
            let &(token, count) = seen.iter().max_by_key(|(t, c)| (*c, -*t))?;
            (!strict || (2 * count >= total && (n > 1 || count >= 2))).then_some(token)
        })
    }

    /// Up to `max` tokens guessed to follow a context that ends with `last` (only its final
    /// [`ORDER`] tokens are read): from the answers learnt, else from what followed the context's
    /// last two tokens the last time they appeared in `prompt`.
    pub fn draft(&self, prompt: &[LlamaToken], last: &[LlamaToken], max: usize) -> Vec<LlamaToken> {
        self.extend(last.iter().map(|t| t.0).collect(), max, |tail| {
            self.predict(tail, true)
                .or_else(|| from_prompt(prompt, tail, 2))
        })
    }

    /// `n` more tokens after `drafted`, which follows a context ending `last`: looser guesses
    /// than [`Drafter::draft`]'s, to fill a batch's row out to its neighbours' length (the
    /// likeliest token however rarely it followed, else what followed the context's last token
    /// in `prompt`, else that token again).
    pub fn pad(
        &self,
        prompt: &[LlamaToken],
        last: &[LlamaToken],
        drafted: &[LlamaToken],
        n: usize,
    ) -> Vec<LlamaToken> {
        let tail = last.iter().chain(drafted).map(|t| t.0).collect();
        self.extend(tail, n, |tail| {
            let token = self
                .predict(tail, false)
                .or_else(|| from_prompt(prompt, tail, 1))
                .or_else(|| tail.last().copied());
            Some(token.unwrap_or(0))
        })
    }

    /// Up to `n` tokens, each `next` of the last [`ORDER`] tokens of `tail` and those before it;
    /// stops where `next` has none.
    fn extend(
        &self,
        mut tail: Vec<i32>,
        n: usize,
        next: impl Fn(&[i32]) -> Option<i32>,
    ) -> Vec<LlamaToken> {
        tail.drain(..tail.len().saturating_sub(ORDER));
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let Some(token) = next(&tail) else {
                break;
            };
            out.push(LlamaToken(token));
            tail.push(token);
            if tail.len() > ORDER {
                tail.remove(0);
            }
        }
        out
    }
}

/// The token after the last place in `prompt` where `tail`'s last `n` tokens appear.
fn from_prompt(prompt: &[LlamaToken], tail: &[i32], n: usize) -> Option<i32> {
    let key = tail.get(tail.len().checked_sub(n)?..)?;
    prompt
        .windows(n + 1)
        .rev()
        .find(|w| w[..n].iter().zip(key).all(|(a, b)| a.0 == *b))
        .map(|w| w[n].0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(ids: &[i32]) -> Vec<LlamaToken> {
        ids.iter().map(|&i| LlamaToken(i)).collect()
    }

    /// What `d` guesses after `context`, whose first `answer_from` tokens are the prompt.
    fn draft(d: &Drafter, context: &[i32], answer_from: usize, max: usize) -> Vec<LlamaToken> {
        let context = toks(context);
        d.draft(&context[..answer_from], &context, max)
    }

    #[test]
    fn an_answer_learnt_is_drafted_again_after_its_context() {
        let mut d = Drafter::default();
        d.learn(&toks(&[1, 2]), &toks(&[10, 11, 12, 13]));
        // The same prompt end: the whole answer.
        assert_eq!(draft(&d, &[7, 1, 2], 3, 8), toks(&[10, 11, 12, 13]));
        // Halfway through it: the rest.
        assert_eq!(draft(&d, &[1, 2, 10, 11], 2, 8), toks(&[12, 13]));
        assert_eq!(draft(&d, &[1, 2, 10, 11], 2, 1), toks(&[12]));
    }

    #[test]
    fn a_context_that_went_two_ways_equally_drafts_the_commoner_only() {
        let mut d = Drafter::default();
        d.learn(&[], &toks(&[5, 6, 7, 8]));
        d.learn(&[], &toks(&[5, 6, 7, 9]));
        d.learn(&[], &toks(&[5, 6, 7, 9]));
        assert_eq!(draft(&d, &[5, 6], 0, 8), toks(&[7, 9]));
        // A single token seen once is too little to guess from.
        let mut once = Drafter::default();
        once.learn(&[], &toks(&[3, 4]));
        assert_eq!(draft(&once, &[9, 3], 2, 8), Vec::new());
    }

    #[test]
    fn the_table_starts_afresh_rather_than_grow_without_bound() {
        let mut d = Drafter::default();
        let answer: Vec<LlamaToken> = (0..1000).map(LlamaToken).collect();
        for k in 0..(MAX_CONTEXTS / 2000 + 2) as i32 {
            let shifted: Vec<LlamaToken> =
                answer.iter().map(|t| LlamaToken(t.0 + k * 1000)).collect();
            d.learn(&[], &shifted);
            assert!(d.next.len() <= MAX_CONTEXTS + 3 * answer.len());
        }
        // What it learnt last is still there.
        assert!(!d.next.is_empty());
    }

    #[test]
    fn padding_goes_on_where_a_draft_stops_and_always_gives_as_many_as_asked() {
        let mut d = Drafter::default();
        d.learn(&[], &toks(&[5, 6, 7, 8]));
        d.learn(&[], &toks(&[5, 6, 7, 9]));
        d.learn(&[], &toks(&[5, 6, 7, 10]));
        // The draft stops after 7, where no token followed in most answers; padding takes one
        // of the commonest (the lowest id of a tie).
        assert_eq!(draft(&d, &[5, 6], 0, 4), toks(&[7]));
        assert_eq!(d.pad(&[], &toks(&[5, 6]), &toks(&[7]), 2)[0], LlamaToken(8));
        // Nothing known: the prompt's token after the last one, else the last one again.
        let empty = Drafter::default();
        assert_eq!(
            empty.pad(&toks(&[3, 4, 1]), &toks(&[3]), &[], 1),
            toks(&[4])
        );
        assert_eq!(empty.pad(&[], &toks(&[9]), &[], 3).len(), 3);
    }

    #[test]
    fn the_prompt_supplies_what_no_answer_has_shown() {
        let d = Drafter::default();
        // "... cabinet 2 ..." in the prompt; the answer has written "cabinet".
        let context = [40, 41, 42, 43, 44, 9, 41, 42];
        assert_eq!(draft(&d, &context, 6, 2), toks(&[43, 44]));
        // Nothing in the prompt follows the answer's last two tokens.
        assert_eq!(draft(&d, &[1, 2, 3, 8, 9], 3, 4), Vec::new());
    }
}
