//! The Iterations screen: the run's iterations as the store records them; its keys only move.

use std::path::Path;

use super::bindings::Binding;
use super::{App, file_name};
use crate::store::EpisodeFilter;
use crate::tui::action::{Action, Section};
use crate::tui::screens::iterations::IterationRow;

pub(super) const BINDINGS: &[Binding] = &[Binding::new(Section::Global, Action::Down, |app| {
    app.navigate(Action::Down)
})
.hint("move")];

impl App {
    pub fn reload_iterations(&mut self) {
        let Some(store) = &self.store else { return };
        let episodes = match store.list_episodes(&EpisodeFilter::default()) {
            Ok(e) => e,
            Err(e) => return self.fail(e.to_string()),
        };
        let mut splits: std::collections::HashMap<String, String> = Default::default();
        let mut rows: std::collections::BTreeMap<Option<u32>, IterationRow> = Default::default();
        for e in episodes {
            let split = splits
                .entry(e.scenario_hash.clone())
                .or_insert_with(|| {
                    store
                        .scenario(&e.scenario_hash)
                        .ok()
                        .flatten()
                        .map_or_else(String::new, |s| s.split)
                })
                .clone();
            let row = rows.entry(e.iteration).or_insert_with(|| IterationRow {
                iteration: e.iteration,
                ..IterationRow::default()
            });
            row.episodes += 1;
            let bucket = if split == "test" {
                &mut row.test
            } else {
                &mut row.train
            };
            bucket.0 += u64::from(e.won);
            bucket.1 += 1;
        }
        // Recorded evaluations of an iteration's student (`leap eval`, `leap iterate`) replace
        // the raw counts of its split: they are the measured numbers.
        for ev in store.evaluations().unwrap_or_default() {
            let Some(it) = ev.iteration else { continue };
            let (Some(wins), Some(n)) = (
                ev.summary.get("wins").and_then(|v| v.as_u64()),
                ev.summary.get("episodes").and_then(|v| v.as_u64()),
            ) else {
                continue;
            };
            let row = rows.entry(Some(it)).or_insert_with(|| IterationRow {
                iteration: Some(it),
                ..IterationRow::default()
            });
            let bucket = if ev.split == "test" {
                &mut row.test
            } else {
                &mut row.train
            };
            // The newest evaluation of the split stands.
            *bucket = (wins, n);
        }
        let adapters = store.adapters().unwrap_or_default();
        for a in &adapters {
            rows.entry(a.iteration).or_insert_with(|| IterationRow {
                iteration: a.iteration,
                ..IterationRow::default()
            });
        }
        for (it, row) in rows.iter_mut() {
            if let Some(i) = it
                && let Ok(Some(d)) = store.dataset(*i)
            {
                row.dataset_rows = Some(d.rows);
            }
            // The newest adapter of the iteration.
            row.adapter = adapters
                .iter()
                .rev()
                .find(|a| a.iteration == *it)
                .map(|a| file_name(Path::new(&a.path)));
        }
        self.iterations.rows = rows.into_values().collect();
        self.iterations.cursor.clamp(self.iterations.rows.len());
    }
}
