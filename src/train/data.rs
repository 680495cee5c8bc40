//! From dataset rows to what one optimizer step sees: each row rendered with the model's chat
//! template and tokenized, split into training and held-out rows, and packed into windows of
//! exactly the context length.
//!
//! A row's tokens are the prompt (rendered as the student sees it, with the assistant header)
//! followed by the response and the end-of-turn token, so the model learns to write the response
//! and then stop, as it is asked to at inference. Rows are packed whole, never split across
//! windows; the rest of a window is padding. Which label rows count towards the loss is kept per
//! window: the response tokens (or every token of a row), never padding nor the jump from one row
//! to the next.

use std::collections::HashMap;
use std::path::Path;

use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatTemplate, LlamaModel};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::{LossOn, TrainError};
use crate::agent::Message;
use crate::dataset::build::PreferencePair;
use crate::dataset::{Row, RowMeta};

/// A row as tokens: the first `n_prompt` are the prompt, the rest the response.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Index of the row in the dataset.
    pub row: usize,
    pub tokens: Vec<i32>,
    pub n_prompt: usize,
}

/// One context of tokens and their next-token labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub tokens: Vec<i32>,
    /// `labels[p]` is the token after `tokens[p]`.
    pub labels: Vec<i32>,
    /// Label rows left out of the loss, as half-open ranges.
    pub masked: Vec<(usize, usize)>,
    /// Label rows in the loss.
    pub n_loss: usize,
    /// Positions holding row tokens (the rest is padding).
    pub n_real: usize,
    /// Per row packed here, in order: its label rows in the loss (half-open; empty when none).
    pub spans: Vec<(usize, usize)>,
    /// Token ranges that attend only within themselves, one per row, when the window isolates
    /// its rows; empty when it is one sequence (every row sees the rows before it).
    pub documents: Vec<(usize, usize)>,
    /// The groups packed here (their indices in what was packed), in order.
    pub groups: Vec<usize>,
    /// With tree packing, the position each real position continues (`None`: it starts a row):
    /// a position attends to itself and the chain of positions it continues, and its rotary
    /// position is that chain's length. Empty when the window is read in order.
    pub parents: Vec<Option<usize>>,
}

/// The model's tokenizer and chat template, loaded without weights.
pub struct ChatText {
    model: LlamaModel,
    template: LlamaChatTemplate,
}

impl ChatText {
    pub fn load(path: &Path) -> Result<ChatText, TrainError> {
        let backend = crate::agent::local::backend();
        let params = LlamaModelParams::default().with_vocab_only(true);
        let model = LlamaModel::load_from_file(backend, path, &params)
            .map_err(|e| TrainError::model(path, format!("llama.cpp cannot load it: {e}")))?;
        // The same choice as the student makes (`agent::local`), so training text is what the
        // student reads: the model's own template, else chatml.
        let template = model
            .chat_template(None)
            .or_else(|_| LlamaChatTemplate::new("chatml"))
            .map_err(|e| TrainError::model(path, format!("no usable chat template: {e}")))?;
        Ok(ChatText { model, template })
    }

    /// The chat as text; with `generation_prompt`, ending with the assistant header.
    pub fn render(
        &self,
        messages: &[Message],
        generation_prompt: bool,
    ) -> Result<String, TrainError> {
        crate::agent::local::render_chat(&self.model, &self.template, messages, generation_prompt)
            .map_err(TrainError::Llama)
    }

    /// Tokens of `text`, special tokens parsed; `bos` adds the beginning-of-sequence token when
    /// the model wants one.
    pub fn tokenize(&self, text: &str, bos: bool) -> Vec<i32> {
        let vocab = self.model.vocab();
        vocab
            .tokenize(text.as_bytes(), bos && vocab.should_add_bos(), true)
            .into_iter()
            .map(|t| t.0)
            .collect()
    }

    /// The token that fills the rest of a window.
    pub fn pad_token(&self) -> i32 {
        self.model.vocab().eos().0
    }

    /// The token that ends an assistant turn: end-of-turn if the vocabulary has one, else
    /// end-of-sequence.
    fn end_of_turn(&self) -> i32 {
        let vocab = self.model.vocab();
        let eot = vocab.eot();
        if eot.0 >= 0 { eot.0 } else { vocab.eos().0 }
    }

    /// A preference pair as two samples of row `index`: the prompt with the chosen response,
    /// then with the rejected one.
    pub fn encode_pair(
        &self,
        index: usize,
        pair: &PreferencePair,
    ) -> Result<[Sample; 2], TrainError> {
        let side = |name: &str, response: &[Message]| {
            let row = Row {
                messages: pair.prompt.iter().chain(response).cloned().collect(),
                meta: None,
            };
            self.encode(index, &row).map_err(|e| match e {
                TrainError::Row { row, what } => TrainError::Row {
                    row,
                    what: format!("{name}: {what}"),
                },
                e => e,
            })
        };
        Ok([
            side("chosen", &pair.chosen)?,
            side("rejected", &pair.rejected)?,
        ])
    }

    /// Renders and tokenizes one row: the prompt as the student sees it, then the response and
    /// what closes the assistant's turn in the template.
    pub fn encode(&self, index: usize, row: &Row) -> Result<Sample, TrainError> {
        if let Some(what) = row.problem() {
            return Err(TrainError::Row { row: index, what });
        }
        let prompt = self.render(row.prompt(), true)?;
        let full = self.render(&row.messages, false)?;
        // As the student tokenizes its prompt: the messages' text is never a special token.
        let vocab = self.model.vocab();
        let chat = |text: &str, messages: &[Message], bos: bool| {
            crate::agent::local::tokenize_chat(
                &vocab,
                text,
                messages,
                bos && vocab.should_add_bos(),
            )
            .into_iter()
            .map(|t| t.0)
        };
        let mut tokens: Vec<i32> = chat(&prompt, row.prompt(), true).collect();
        let n_prompt = tokens.len();
        let response = row.response().map(std::slice::from_ref).unwrap_or_default();
        match full.strip_prefix(&prompt) {
            // The template may add a newline after the end-of-turn token; the student never
            // writes it (generation stops at end-of-turn), so it is not learnt.
            Some(rest) => tokens.extend(chat(rest.trim_end(), response, false)),
            None => {
                let content = row.response().map_or("", |m| m.content.as_str());
                tokens.extend(chat(content, response, false));
                tokens.push(self.end_of_turn());
            }
        }
        Ok(Sample {
            row: index,
            tokens,
            n_prompt,
        })
    }
}

/// Splits rows into training and held-out sets: whole groups (rows of one scenario, which share
/// most of their prompt) go to one side, so the held-out loss is not measured on near-copies of
/// training rows. About `fraction` of the rows are held out, none when fewer than 10 rows.
pub fn split(rows: &[Row], fraction: f32, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let metas: Vec<Option<&RowMeta>> = rows.iter().map(|r| r.meta.as_ref()).collect();
    split_by_meta(&metas, fraction, seed)
}

/// [`split`] for any items with a row's metadata (preference pairs too).
pub fn split_by_meta(
    metas: &[Option<&RowMeta>],
    fraction: f32,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let n = metas.len();
    let all: Vec<usize> = (0..n).collect();
    if n < 10 || fraction <= 0.0 {
        return (all, Vec::new());
    }
    let key = |i: usize| {
        metas[i]
            .map(|m| m.scenario_id.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("row {i}"))
    };
    let mut groups: Vec<String> = all.iter().map(|&i| key(i)).collect();
    groups.sort();
    groups.dedup();
    groups.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let want = ((n as f32 * fraction).round() as usize).max(1);
    let mut held = std::collections::BTreeSet::new();
    let mut n_held = 0;
    for g in &groups {
        if n_held >= want {
            break;
        }
        let members: Vec<usize> = all.iter().copied().filter(|&i| &key(i) == g).collect();
        // Never hold out everything.
        if n_held + members.len() >= n {
            continue;
        }
        n_held += members.len();
        held.insert(g.clone());
    }
    all.into_iter().partition(|&i| !held.contains(&key(i)))
}

/// Packs samples into windows of `n_ctx` tokens: shuffled with `seed`, then each placed in the
/// first window with room (first fit), so windows are dense without sorting by length.
pub fn pack(samples: &[Sample], n_ctx: usize, pad: i32, loss_on: LossOn, seed: u64) -> Vec<Window> {
    let groups: Vec<&[Sample]> = samples.iter().map(std::slice::from_ref).collect();
    pack_groups(&groups, n_ctx, pad, loss_on, false, seed)
}

/// [`pack`] for groups of samples that share a window (a preference pair's two sides): each
/// group whole in one window. With `isolate`, each sample attends only to itself, as if alone.
pub fn pack_groups(
    groups: &[&[Sample]],
    n_ctx: usize,
    pad: i32,
    loss_on: LossOn,
    isolate: bool,
    seed: u64,
) -> Vec<Window> {
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut bins: Vec<(usize, Vec<usize>)> = Vec::new();
    for i in order {
        let len: usize = groups[i].iter().map(|s| s.tokens.len()).sum();
        match bins.iter_mut().find(|(used, _)| used + len <= n_ctx) {
            Some((used, members)) => {
                *used += len;
                members.push(i);
            }
            None => bins.push((len, vec![i])),
        }
    }
    bins.into_iter()
        .map(|(_, members)| {
            let samples = members.iter().flat_map(|&i| groups[i].iter());
            let mut w = window(samples, n_ctx, pad, loss_on, isolate);
            w.groups = members;
            w
        })
        .collect()
}

fn window<'a>(
    samples: impl Iterator<Item = &'a Sample>,
    n_ctx: usize,
    pad: i32,
    loss_on: LossOn,
    isolate: bool,
) -> Window {
    let mut tokens = Vec::with_capacity(n_ctx);
    let mut in_loss = Vec::with_capacity(n_ctx);
    let (mut spans, mut documents) = (Vec::new(), Vec::new());
    for s in samples {
        let first = match loss_on {
            LossOn::Response => s.n_prompt,
            LossOn::All => 1,
        }
        .max(1);
        let at = tokens.len();
        // Label row p predicts token p + 1 of the same row.
        for p in 0..s.tokens.len() {
            in_loss.push(p + 1 >= first && p + 1 < s.tokens.len());
        }
        let end = at + s.tokens.len().saturating_sub(1);
        spans.push(((at + first - 1).min(end), end));
        if isolate {
            documents.push((at, at + s.tokens.len()));
        }
        tokens.extend_from_slice(&s.tokens);
    }
    finish(tokens, in_loss, n_ctx, pad, spans, documents)
}

/// A window from its real tokens and which of their label rows are in the loss: padded to
/// `n_ctx`, each label the next position's token.
fn finish(
    mut tokens: Vec<i32>,
    mut in_loss: Vec<bool>,
    n_ctx: usize,
    pad: i32,
    spans: Vec<(usize, usize)>,
    documents: Vec<(usize, usize)>,
) -> Window {
    let n_real = tokens.len();
    tokens.resize(n_ctx, pad);
    in_loss.resize(n_ctx, false);
    let mut labels: Vec<i32> = tokens[1..].to_vec();
    labels.push(pad);
    let mut masked = Vec::new();
    let mut p = 0;
    while p < n_ctx {
        if in_loss[p] {
            p += 1;
            continue;
        }
        let start = p;
        while p < n_ctx && !in_loss[p] {
            p += 1;
        }
        masked.push((start, p));
    }
    Window {
        n_loss: in_loss.iter().filter(|&&b| b).count(),
        tokens,
        labels,
        masked,
        n_real,
        spans,
        documents,
        groups: Vec::new(),
        parents: Vec::new(),
    }
}

/// Packs groups of samples as prefix trees: the samples of a window share the tokens their
/// prompts begin with (the system text, a scenario's task and first observation, the earlier
/// steps of one episode, a preference pair's prompt), stored once. Each sample still attends
/// only to its own tokens, at the rotary positions it would have alone, so every sample
/// learns what it would learn packed alone (`pack_groups` with `isolate`) from fewer
/// positions. The loss is on responses only: a shared position has one label, and where
/// samples part, each continues with its own.
///
/// Groups are laid out in the order of their tokens, so that samples with long common
/// prefixes meet in one window, each window filled until the next group does not fit. A group
/// that does not fit goes to the first earlier window with room for all its tokens (first
/// fit, as flat packing does), else opens a window: where rows share little (a shop page's
/// row shares only its instruction with the next), windows are filled as densely as flat
/// ones. The windows are then shuffled with `seed`. A sample's last prompt token and its
/// response are always its own, so their positions are consecutive and each label is the
/// next position's token, as in a flat window.
pub fn pack_tree(groups: &[&[Sample]], n_ctx: usize, pad: i32, seed: u64) -> Vec<Window> {
    // A stable sort: groups with the same tokens keep their order.
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by_key(|&g| groups[g].first().map_or(&[][..], |s| s.tokens.as_slice()));
    // The windows so far, the last one the one being filled.
    let mut trees: Vec<(Tree, Vec<usize>)> = Vec::new();
    for g in order {
        let group = groups[g];
        let whole: usize = group.iter().map(|s| s.tokens.len()).sum();
        let fits = |tree: &Tree| tree.len() + tree.added(group) <= n_ctx;
        let at = match trees.last() {
            Some((tree, _)) if fits(tree) => Some(trees.len() - 1),
            // What it shares with an earlier window can only shorten it.
            _ => trees
                .iter()
                .position(|(tree, _)| tree.len() + whole <= n_ctx),
        };
        let (tree, members) = match at {
            Some(i) => &mut trees[i],
            None => {
                trees.push((Tree::default(), Vec::new()));
                trees.last_mut().expect("just pushed")
            }
        };
        for s in group {
            tree.insert(s);
        }
        members.push(g);
    }
    let mut windows: Vec<Window> = trees
        .into_iter()
        .map(|(tree, members)| tree.window(n_ctx, pad, members))
        .collect();
    windows.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    windows
}

/// The positions `group` takes alone in a [`pack_tree`] window: its samples' common prompt
/// start once.
pub fn tree_len(group: &[Sample]) -> usize {
    Tree::default().added(group)
}

/// The samples of one window as a prefix tree, its positions in the order they were added.
#[derive(Default)]
struct Tree {
    tokens: Vec<i32>,
    parents: Vec<Option<usize>>,
    in_loss: Vec<bool>,
    spans: Vec<(usize, usize)>,
    /// The position holding `token` after `parent` (`None`: a first token).
    children: HashMap<(Option<usize>, i32), usize>,
}

impl Tree {
    fn len(&self) -> usize {
        self.tokens.len()
    }

    /// How many of `s`'s tokens are already here, and the position the rest continue: a
    /// common prefix of its prompt, never its last prompt token.
    fn shared(&self, s: &Sample) -> (usize, Option<usize>) {
        let mut at = None;
        let shareable = s.n_prompt.saturating_sub(1);
        for (k, &t) in s.tokens[..shareable].iter().enumerate() {
            match self.children.get(&(at, t)) {
                Some(&p) => at = Some(p),
                None => return (k, at),
            }
        }
        (shareable, at)
    }

    /// Positions that `group` would add, its samples one after the other.
    fn added(&self, group: &[Sample]) -> usize {
        let first = group
            .first()
            .map_or(0, |s| s.tokens.len() - self.shared(s).0);
        // A later sample of the group shares at most what the first shares with it.
        let rest: usize = group
            .iter()
            .skip(1)
            .map(|s| {
                let common = group[0]
                    .tokens
                    .iter()
                    .zip(&s.tokens)
                    .take(s.n_prompt.saturating_sub(1))
                    .take_while(|(a, b)| a == b)
                    .count();
                s.tokens.len() - common.max(self.shared(s).0)
            })
            .sum();
        first + rest
    }

    fn insert(&mut self, s: &Sample) {
        let (k, mut at) = self.shared(s);
        let first = s.n_prompt.max(1);
        let start = self.tokens.len();
        for (i, &t) in s.tokens.iter().enumerate().skip(k) {
            let p = self.tokens.len();
            self.tokens.push(t);
            self.parents.push(at);
            // Label row p predicts token i + 1 of the sample, at position p + 1.
            self.in_loss.push(i + 1 >= first && i + 1 < s.tokens.len());
            self.children.entry((at, t)).or_insert(p);
            at = Some(p);
        }
        let end = self.tokens.len() - 1;
        // The last prompt token (never shared) and the response follow each other.
        self.spans.push(((start + first - 1 - k).min(end), end));
    }

    fn window(self, n_ctx: usize, pad: i32, members: Vec<usize>) -> Window {
        let mut w = finish(
            self.tokens,
            self.in_loss,
            n_ctx,
            pad,
            self.spans,
            Vec::new(),
        );
        w.parents = self.parents;
        w.groups = members;
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(row: usize, len: usize, n_prompt: usize) -> Sample {
        Sample {
            row,
            tokens: (0..len as i32).map(|t| t + 100 * row as i32).collect(),
            n_prompt,
        }
    }

    #[test]
    fn a_tree_stores_a_pairs_common_prompt_once() {
        let a = sample(0, 13, 10);
        let mut b = a.clone();
        b.tokens[10..].copy_from_slice(&[7, 8, 9]);
        // The last prompt token is each side's own.
        assert_eq!(tree_len(&[a.clone(), b]), 13 + 4);
        assert_eq!(tree_len(std::slice::from_ref(&a)), 13);
    }

    #[test]
    fn windows_hold_whole_rows_and_mask_prompts_and_padding() {
        let samples = [sample(1, 5, 3), sample(2, 4, 2)];
        let windows = pack(&samples, 12, -1, LossOn::Response, 0);
        assert_eq!(windows.len(), 1);
        let w = &windows[0];
        assert_eq!(w.tokens.len(), 12);
        assert_eq!(w.n_real, 9);
        // Each row contributes (len - n_prompt) label rows: 2 + 2.
        assert_eq!(w.n_loss, 4);
        let masked: usize = w.masked.iter().map(|(a, b)| b - a).sum();
        assert_eq!(masked + w.n_loss, 12);
        // Every label row in the loss predicts a response token of the same row.
        for p in 0..12 {
            let in_loss = !w.masked.iter().any(|&(a, b)| a <= p && p < b);
            if in_loss {
                assert_eq!(w.labels[p], w.tokens[p + 1]);
                assert!(w.labels[p] >= 0);
                let row = w.labels[p] / 100;
                let pos = (w.labels[p] % 100) as usize;
                assert!(
                    pos >= samples
                        .iter()
                        .find(|s| s.row == row as usize)
                        .unwrap()
                        .n_prompt
                );
            }
        }
    }

    #[test]
    fn rows_that_do_not_fit_start_a_new_window() {
        let samples = [sample(1, 7, 1), sample(2, 7, 1), sample(3, 3, 1)];
        let windows = pack(&samples, 10, 0, LossOn::All, 3);
        assert_eq!(windows.len(), 2);
        let real: usize = windows.iter().map(|w| w.n_real).sum();
        assert_eq!(real, 17);
        // With `All`, every next-token pair inside a row is learnt: len - 1 per row.
        let n_loss: usize = windows.iter().map(|w| w.n_loss).sum();
        assert_eq!(n_loss, 6 + 6 + 2);
    }

    /// The tokens a position sees in a tree window, in order: its chain back to the root.
    fn chain(w: &Window, mut p: usize) -> Vec<i32> {
        let mut seen = vec![w.tokens[p]];
        while let Some(q) = w.parents[p] {
            seen.push(w.tokens[q]);
            p = q;
        }
        seen.reverse();
        seen
    }

    #[test]
    fn a_tree_window_stores_shared_starts_once_and_each_sample_reads_as_if_alone() {
        let s = |row: usize, tokens: &[i32], n_prompt: usize| Sample {
            row,
            tokens: tokens.to_vec(),
            n_prompt,
        };
        // Two steps of one episode, a repeat of the first prompt with another answer, and
        // a preference pair: one prompt, two responses.
        let a = s(0, &[1, 2, 3, 4, 5, 50, 51], 5);
        let b = s(1, &[1, 2, 3, 4, 6, 7, 60, 61, 62], 6);
        let c = s(2, &[1, 2, 3, 4, 5, 70], 5);
        let chosen = s(3, &[1, 2, 8, 9, 80, 81], 4);
        let rejected = s(3, &[1, 2, 8, 9, 90], 4);
        let groups: Vec<&[Sample]> = vec![
            std::slice::from_ref(&b),
            std::slice::from_ref(&a),
            std::slice::from_ref(&c),
        ];
        let pair = [chosen.clone(), rejected.clone()];
        let mut all = groups.clone();
        all.push(&pair);
        let windows = pack_tree(&all, 64, -1, 0);
        assert_eq!(windows.len(), 1);
        let w = &windows[0];
        // 1 2 | 3 4 (5 | 50 51) (6 7 60 61 62) (5 70) | 8 (9 80 81) (9 90): a sample's last
        // prompt token is never shared.
        assert_eq!(w.n_real, 2 + 2 + 3 + 5 + 2 + 1 + 3 + 2);
        assert_eq!(w.parents.len(), w.n_real);
        let samples = [&a, &b, &c, &chosen, &rejected];
        // Groups in the order of their tokens: the pair (1 2 8 ...) after the three others.
        assert_eq!(w.groups, vec![1, 2, 0, 3]);
        let order = [&a, &c, &b, &chosen, &rejected];
        assert_eq!(w.spans.len(), order.len());
        for (sample, &(start, end)) in order.iter().zip(&w.spans) {
            // The span's positions are the sample's last prompt token and its response, in a
            // row; each sees exactly the sample's tokens up to it.
            assert_eq!(end - start + 1, sample.tokens.len() - sample.n_prompt + 1);
            for (k, p) in (start..=end).enumerate() {
                let upto = sample.n_prompt + k;
                assert_eq!(chain(w, p), sample.tokens[..upto], "{sample:?} at {p}");
                if p < end {
                    assert_eq!(w.labels[p], sample.tokens[upto]);
                    assert!(!w.masked.iter().any(|&(x, y)| x <= p && p < y));
                }
            }
        }
        let spans: usize = w.spans.iter().map(|(a, b)| b - a).sum();
        assert_eq!(w.n_loss, spans);
        assert!(samples.iter().all(|x| x.tokens.len() <= w.n_real));
        // Padding continues nothing.
        assert_eq!(
            w.tokens[w.n_real..].iter().filter(|&&t| t == -1).count(),
            64 - w.n_real
        );
    }

    #[test]
    fn tree_windows_fill_up_to_the_context_and_hold_every_group_once() {
        // Ten episodes of six steps: each step's prompt extends the one before it.
        let samples: Vec<Sample> = (0..60)
            .map(|i| {
                let (episode, step) = (i / 6, i % 6);
                let mut tokens: Vec<i32> = vec![1, 2, 3, 100 + episode as i32];
                tokens.extend((0..step).map(|k| 200 + k as i32));
                tokens.push(300 + step as i32);
                let n_prompt = tokens.len();
                tokens.extend([400, 401, 402]);
                Sample {
                    row: i,
                    tokens,
                    n_prompt,
                }
            })
            .collect();
        let groups: Vec<&[Sample]> = samples.iter().map(std::slice::from_ref).collect();
        let flat: usize = samples.iter().map(|s| s.tokens.len()).sum();
        let windows = pack_tree(&groups, 32, 0, 7);
        let mut seen: Vec<usize> = windows.iter().flat_map(|w| w.groups.clone()).collect();
        seen.sort();
        assert_eq!(seen, (0..60).collect::<Vec<_>>());
        let stored: usize = windows.iter().map(|w| w.n_real).sum();
        assert!(
            windows
                .iter()
                .all(|w| w.n_real <= 32 && w.tokens.len() == 32)
        );
        // An episode's steps share their start: far fewer positions than rows' tokens.
        // (alone, an episode's six rows hold 63 tokens and its tree 33, one more than a window).
        assert!(stored * 10 < flat * 6, "{stored} of {flat}");
        // The windows come shuffled, not in the order of their tokens.
        let firsts: Vec<usize> = windows.iter().map(|w| w.groups[0]).collect();
        assert!(firsts.windows(2).any(|p| p[0] > p[1]), "{firsts:?}");
    }

    #[test]
    fn a_row_that_does_not_fit_the_window_being_filled_goes_to_an_earlier_one_with_room() {
        // Rows that share nothing, in the order of their tokens: 20, 20, 10, 10 tokens in
        // windows of 32. Filling one window after the other took three (20 | 20 + 10 | 10).
        let samples = [
            sample(0, 20, 10),
            sample(1, 20, 10),
            sample(2, 10, 5),
            sample(3, 10, 5),
        ];
        let groups: Vec<&[Sample]> = samples.iter().map(std::slice::from_ref).collect();
        let windows = pack_tree(&groups, 32, 0, 0);
        let mut held: Vec<Vec<usize>> = windows.iter().map(|w| w.groups.clone()).collect();
        held.sort();
        assert_eq!(held, vec![vec![0, 3], vec![1, 2]]);
        assert!(windows.iter().all(|w| w.n_real == 30));
    }

    #[test]
    fn the_split_keeps_groups_together() {
        use crate::agent::{Message, Role};
        use crate::dataset::RowMeta;
        let rows: Vec<Row> = (0..40)
            .map(|i| Row {
                messages: vec![
                    Message::new(Role::User, "u"),
                    Message::new(Role::Assistant, "a"),
                ],
                meta: Some(RowMeta {
                    scenario_id: format!("s{}", i / 4),
                    ..RowMeta::default()
                }),
            })
            .collect();
        let (train, held) = split(&rows, 0.1, 7);
        assert_eq!(train.len() + held.len(), 40);
        assert_eq!(held.len(), 4);
        let group = |i: usize| rows[i].meta.as_ref().unwrap().scenario_id.clone();
        for &h in &held {
            assert!(train.iter().all(|&t| group(t) != group(h)));
        }
        assert_eq!(split(&rows[..5], 0.5, 0).1.len(), 0);
    }
}
