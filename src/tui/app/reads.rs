//! Reads of the run that can take longer than a frame (every label, the stored episodes, the
//! report, one stored episode, the adapters): asked for here, done on a job thread, applied when
//! they come back. Each request has a ticket; a newer request of the same kind makes an older
//! one's answer stale, and a stale answer is dropped.
//!
//! Decisions about labels made while a read is out are kept over what the read brings back (the
//! read may have looked before they were written).

use std::collections::HashMap;

use super::{App, Overlay, Pick, Picker, file_name};
use crate::store::Label;
use crate::tui::event::{Read, ReadKind, Readout, StoredEpisode};
use crate::tui::jobs;
use crate::tui::screens::Cursor;

/// The reads out now, by kind: the ticket of the newest request of each.
#[derive(Default)]
pub struct Reads {
    last: u64,
    pending: HashMap<ReadKind, u64>,
    /// Labels decided here since the oldest read still out.
    decided: Vec<Label>,
}

impl App {
    /// Asks for `read`: on a job thread when the app has its event channel, else (a test that
    /// renders fixed state) in place.
    pub(super) fn request(&mut self, read: Read) {
        self.reads.last += 1;
        let ticket = self.reads.last;
        self.reads.pending.insert(read.kind(), ticket);
        self.show_loading();
        match self.links.tx.clone() {
            Some(tx) => jobs::spawn_read(self.run_dir.clone(), ticket, read, tx),
            None => {
                let result = jobs::read_run(&self.run_dir, &read);
                self.on_read(ticket, read, result);
            }
        }
    }

    /// Whether a read of this kind is out.
    pub fn reading(&self, kind: ReadKind) -> bool {
        self.reads.pending.contains_key(&kind)
    }

    /// Whether any read is out.
    pub fn reading_any(&self) -> bool {
        !self.reads.pending.is_empty()
    }

    /// Drops the answer to the read of `kind` that is out, if any (what it would show is no
    /// longer wanted: a live episode took the screen, say).
    pub(super) fn forget(&mut self, kind: ReadKind) {
        self.reads.pending.remove(&kind);
        self.show_loading();
    }

    /// The screens say "loading…" while their read is out.
    fn show_loading(&mut self) {
        self.labels.loading = self.reading(ReadKind::Labels);
        self.iterations.loading = self.reading(ReadKind::Report);
    }

    /// Shows a label as a decision here left it, and keeps it over what reads still out bring.
    pub(super) fn show_label(&mut self, label: Label) {
        self.episode.update_label(&label);
        if self.reading_any() {
            self.reads.decided.push(label.clone());
        }
        self.labels.update(label);
    }

    /// Applies what a read found, unless a newer request of its kind has been made since.
    pub(super) fn on_read(
        &mut self,
        ticket: u64,
        read: Read,
        result: Result<Readout, crate::store::StoreError>,
    ) {
        let kind = read.kind();
        if self.reads.pending.get(&kind) != Some(&ticket) {
            return;
        }
        self.reads.pending.remove(&kind);
        let decided = if self.reads.pending.is_empty() {
            std::mem::take(&mut self.reads.decided)
        } else {
            self.reads.decided.clone()
        };
        self.show_loading();
        let found = match result {
            Ok(found) => found,
            Err(e) => {
                self.close_loading_picker(kind);
                return self.fail(e.to_string());
            }
        };
        match (read, found) {
            (Read::Labels, Readout::Labels(all)) => {
                self.labels.set_all(all);
                for label in decided {
                    self.labels.update(label);
                }
                self.labels.refilter();
                self.refresh_dataset();
            }
            (Read::Report(_), Readout::Report(report)) => self.iterations.set_report(*report),
            (Read::Episodes, Readout::Episodes(list)) => {
                let items = list
                    .into_iter()
                    .map(|e| {
                        (
                            format!(
                                "{:>5}  {}  {} steps  {}  {}",
                                e.id,
                                if e.won { "won " } else { "lost" },
                                e.steps,
                                e.key,
                                e.policy
                            ),
                            Pick::Episode(e.id),
                        )
                    })
                    .collect();
                self.fill_picker(kind, items, "no stored episode in this run yet");
            }
            (Read::Adapters, Readout::Adapters(found)) => {
                let base = file_name(&self.model);
                let mut adapters: Vec<_> = self.train.adapter.iter().cloned().collect();
                for p in found {
                    if !adapters.contains(&p) {
                        adapters.push(p);
                    }
                }
                let items = adapters
                    .into_iter()
                    .map(|a| (format!("{base} + {}", a.display()), Pick::Student(Some(a))));
                let mut all = vec![student_base(&base)];
                all.extend(items);
                self.fill_picker(kind, all, "");
            }
            (Read::Episode { id, step }, Readout::Episode(found)) => {
                let Some(found) = found else {
                    return self.fail(format!("no episode {id} in this run"));
                };
                self.show_stored(*found, step, &decided);
                if self.note.as_ref().is_some_and(|n| n.text == opening(id)) {
                    self.note = None;
                }
            }
            _ => {}
        }
    }

    /// Opens a picker that `kind`'s read fills, titled `title` (with "loading…" until then).
    pub(super) fn open_loading_picker(
        &mut self,
        kind: ReadKind,
        title: &str,
        first: Vec<(String, Pick)>,
    ) {
        self.overlay = Some(Overlay::Picker(Picker {
            title: format!(" {title} (loading…) "),
            items: first,
            cursor: Cursor::default(),
            loading: Some(kind),
        }));
    }

    /// Fills the picker still waiting for `kind`'s read; says `empty` instead when there is
    /// nothing to pick (and `empty` is not blank).
    fn fill_picker(&mut self, kind: ReadKind, items: Vec<(String, Pick)>, empty: &str) {
        let Some(Overlay::Picker(p)) = &mut self.overlay else {
            return;
        };
        if p.loading != Some(kind) {
            return;
        }
        if items.is_empty() && !empty.is_empty() {
            self.overlay = None;
            self.info(empty.to_string());
            return;
        }
        p.loading = None;
        p.title = p.title.replace(" (loading…)", "");
        p.items = items;
        p.cursor.clamp(p.items.len());
    }

    fn close_loading_picker(&mut self, kind: ReadKind) {
        if let Some(Overlay::Picker(p)) = &self.overlay
            && p.loading == Some(kind)
        {
            self.overlay = None;
        }
    }

    /// Shows a stored episode; the scenario comes from the loaded files when the same version
    /// is there, else from the run's snapshot.
    fn show_stored(&mut self, found: StoredEpisode, step: Option<usize>, decided: &[Label]) {
        let hash = &found.episode.record.scenario_hash;
        let scenario = self
            .catalog
            .scenarios
            .iter()
            .find(|s| &s.hash == hash)
            .cloned()
            .or(found.snapshot);
        self.episode
            .show_stored(found.episode, scenario, found.labels);
        for label in decided {
            self.episode.update_label(label);
        }
        if let Some(step) = step {
            self.episode.cursor.selected = step;
        }
        self.episode.refresh_privileged();
    }
}

/// The student picker's first item: the base model alone.
pub(super) fn student_base(base: &str) -> (String, Pick) {
    (
        format!("{base} (base model, no adapter)"),
        Pick::Student(None),
    )
}

/// The message shown while episode `id` is read.
pub(super) fn opening(id: i64) -> String {
    format!("opening episode {id}…")
}
