//! Episode: the student's trace on the left (live tokens while it generates, the live
//! teacher's action beside each step, a mark on the steps someone else chose), the selected
//! step's teacher answers on the right with agree/differ marks, leak highlights and the
//! privileged state the teacher saw.

use std::collections::HashMap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::scenarios::privileged_lines;
use super::{Cursor, clip, shown};
use crate::env::Privileged;
use crate::scenario::Scenario;
use crate::store::{Branch, Episode, Label, LabelStatus, StepRecord};
use crate::teacher::live::Answer;
use crate::tui::theme;

/// Which teacher "ask teacher" uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TeacherKind {
    /// The environment's rules plus the privileged state.
    Oracle,
    /// The student's own model (and adapter), prompted with the privileged state.
    SelfModel,
    /// A model behind an OpenAI-compatible server, prompted with the privileged state.
    Remote,
}

/// What the episode is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Nothing chosen yet.
    Empty,
    /// A live episode waiting for a command.
    Ready,
    /// Generating step `n`.
    Generating(usize),
    /// Over and stored.
    Finished { won: bool },
    /// A stored episode opened from the run.
    Stored { won: bool },
}

pub struct EpisodeScreen {
    pub scenario: Option<Scenario>,
    pub scenario_id: String,
    pub task: String,
    pub start: String,
    pub horizon: u32,
    pub seed: u64,
    pub steps: Vec<StepRecord>,
    /// Text of the step being generated.
    pub streaming: String,
    pub phase: Phase,
    /// Playing on until the end (or a pause).
    pub running: bool,
    pub episode_id: Option<i64>,
    pub key: Option<String>,
    /// The policy that plays (or played) it.
    pub policy: String,
    /// The newest label of each step, by step index.
    pub labels: HashMap<u32, Label>,
    pub teacher_name: Option<String>,
    pub cursor: Cursor,
    /// Keep the newest step selected while steps arrive.
    pub follow: bool,
    pub show_privileged: bool,
    privileged: Option<(usize, Privileged)>,
    pub teacher: TeacherKind,
    pub privilege: f64,
    /// The teacher is working on this episode.
    pub teacher_busy: bool,
    /// The live teacher's answers, by step.
    pub live: HashMap<usize, Answer>,
    /// Counts the episodes (and rewinds) shown, so that a live answer for one left behind is
    /// told and dropped.
    pub generation: u64,
    /// The stored episode this one branched from, and where.
    pub branch: Option<Branch>,
    /// Why the stored episode shown was ended early ("cycle at step 6 (a repeat of step 4)").
    pub stopped: Option<String>,
}

impl Default for EpisodeScreen {
    fn default() -> Self {
        EpisodeScreen {
            scenario: None,
            scenario_id: String::new(),
            task: String::new(),
            start: String::new(),
            horizon: 0,
            seed: 0,
            steps: Vec::new(),
            streaming: String::new(),
            phase: Phase::Empty,
            running: false,
            episode_id: None,
            key: None,
            policy: String::new(),
            labels: HashMap::new(),
            teacher_name: None,
            cursor: Cursor::default(),
            follow: true,
            show_privileged: false,
            privileged: None,
            teacher: TeacherKind::Oracle,
            privilege: 1.0,
            teacher_busy: false,
            live: HashMap::new(),
            generation: 0,
            branch: None,
            stopped: None,
        }
    }
}

impl EpisodeScreen {
    /// A fresh live episode.
    pub fn start_live(&mut self, scenario: Scenario, seed: u64, horizon: u32) {
        self.scenario_id = scenario.id.clone();
        self.task = scenario.task.clone();
        let start = scenario.body.env(horizon).observation().to_string();
        self.scenario = Some(scenario);
        self.begin(start, seed, horizon, None);
    }

    /// A live branch of the episode shown (see `SessionEvent::Started`); its first steps come
    /// with the replay.
    pub fn start_branch(&mut self, start: String, seed: u64, horizon: u32, branch: Branch) {
        self.begin(start, seed, horizon, Some(branch));
    }

    fn begin(&mut self, start: String, seed: u64, horizon: u32, branch: Option<Branch>) {
        self.start = start;
        self.horizon = horizon;
        self.seed = seed;
        self.steps.clear();
        self.streaming.clear();
        self.phase = Phase::Ready;
        self.running = false;
        self.episode_id = None;
        self.key = None;
        self.labels.clear();
        self.teacher_name = None;
        self.cursor = Cursor::default();
        self.follow = true;
        self.privileged = None;
        self.forget_live(0);
        self.branch = branch;
        self.stopped = None;
    }

    /// The steps a rebuilt episode starts from; the live answers for them stay.
    pub fn replayed(&mut self, steps: Vec<StepRecord>) {
        self.forget_live(steps.len());
        self.steps = steps;
        self.streaming.clear();
        self.phase = Phase::Ready;
        self.running = false;
        self.privileged = None;
        if self.follow {
            self.cursor.bottom(self.steps.len());
        }
    }

    /// Drops the live answers from step `from` on, and any still coming.
    pub fn forget_live(&mut self, from: usize) {
        self.live.retain(|&i, _| i < from);
        self.generation += 1;
    }

    /// A stored episode, with the scenario it was played on (when it can be rebuilt).
    pub fn show_stored(
        &mut self,
        episode: Episode,
        scenario: Option<Scenario>,
        labels: Vec<Label>,
    ) {
        let r = episode.record;
        self.scenario_id = r.scenario_id.clone();
        self.task = scenario
            .as_ref()
            .map(|s| s.task.clone())
            .unwrap_or_default();
        self.start = scenario
            .as_ref()
            .map(|s| s.body.env(s.horizon).observation().to_string())
            .unwrap_or_default();
        self.horizon = scenario
            .as_ref()
            .map_or(r.steps.len() as u32, |s| s.horizon);
        self.scenario = scenario;
        self.seed = r.seed;
        self.steps = r.steps;
        self.streaming.clear();
        self.phase = Phase::Stored { won: r.won };
        self.running = false;
        self.episode_id = Some(episode.id);
        self.key = Some(r.key);
        self.policy = r.policy;
        self.cursor = Cursor::default();
        self.follow = false;
        self.privileged = None;
        self.forget_live(0);
        self.branch = r.branch;
        self.stopped = r.stopped;
        self.set_labels(labels);
    }

    /// Keeps the newest correction's label for each step.
    pub fn set_labels(&mut self, labels: Vec<Label>) {
        self.labels.clear();
        let mut teachers: Vec<(i64, String)> = Vec::new();
        for label in labels {
            if !teachers.iter().any(|(_, t)| *t == label.teacher) {
                teachers.push((label.correction_id, label.teacher.clone()));
            }
            let newer = self
                .labels
                .get(&label.idx)
                .is_none_or(|old| old.correction_id < label.correction_id);
            if newer {
                self.labels.insert(label.idx, label);
            }
        }
        teachers.sort();
        self.teacher_name = (!teachers.is_empty()).then(|| {
            teachers
                .into_iter()
                .map(|(_, t)| t)
                .collect::<Vec<_>>()
                .join(", ")
        });
    }

    /// Replaces one label (after a decision elsewhere) if it is shown here.
    pub fn update_label(&mut self, label: &Label) {
        if let Some(old) = self.labels.get_mut(&label.idx)
            && old.id == label.id
        {
            *old = label.clone();
        }
    }

    pub fn push_step(&mut self, step: StepRecord) {
        self.steps.push(step);
        self.streaming.clear();
        if self.follow {
            self.cursor.bottom(self.steps.len());
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Ready | Phase::Generating(_))
    }

    pub fn can_step(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Stored (finished or opened) and so ready for the teacher.
    pub fn can_ask_teacher(&self) -> bool {
        self.episode_id.is_some() && self.scenario.is_some() && !self.teacher_busy
    }

    pub fn teacher_label(&self) -> String {
        match self.teacher {
            TeacherKind::Oracle => format!("oracle@{}", self.privilege),
            TeacherKind::SelfModel => "self (the student's model)".to_string(),
            TeacherKind::Remote => "remote (the teacher server)".to_string(),
        }
    }

    /// Computes the privileged state before the selected step, when shown.
    pub fn refresh_privileged(&mut self) {
        if !self.show_privileged {
            return;
        }
        let index = self.cursor.selected.min(self.steps.len());
        if self.privileged.as_ref().is_some_and(|(i, _)| *i == index) {
            return;
        }
        let Some(s) = &self.scenario else { return };
        let mut env = s.body.guided(self.steps.len() as u32 + s.horizon + 1);
        for step in &self.steps[..index] {
            env.step(&step.action);
        }
        self.privileged = Some((index, env.privileged()));
    }

    pub fn view(&self, f: &mut Frame, area: Rect) {
        let [header, body] =
            Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(area);
        self.header(f, header);
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                .areas(body);
        self.trace(f, left);
        self.detail(f, right);
    }

    fn header(&self, f: &mut Frame, area: Rect) {
        if self.phase == Phase::Empty {
            f.render_widget(
                Paragraph::new(vec![
                    Line::styled(" No episode yet.", theme::title()),
                    Line::styled(
                        " Choose a scenario on the Scenarios screen and press play, or open a stored episode.",
                        theme::dim(),
                    ),
                ]),
                area,
            );
            return;
        }
        let status = match &self.phase {
            Phase::Empty => Span::raw(""),
            Phase::Ready if self.running => Span::styled("running", theme::info()),
            Phase::Ready => Span::styled("ready", theme::info()),
            Phase::Generating(n) => Span::styled(
                format!(
                    "generating step {}{}",
                    n + 1,
                    if self.running { " (running)" } else { "" }
                ),
                theme::info(),
            ),
            Phase::Finished { won: true } | Phase::Stored { won: true } => {
                Span::styled("won", theme::won())
            }
            Phase::Finished { won: false } | Phase::Stored { won: false } => {
                Span::styled("not won", theme::lost())
            }
        };
        let mut key = self.key.as_ref().map_or_else(
            || "not stored yet".to_string(),
            |k| format!("stored as {k}"),
        );
        if let Some(b) = self.branch {
            key.push_str(&format!(
                "; branch of episode {} at step {}",
                b.from,
                b.at + 1
            ));
        }
        let line1 = Line::from(vec![
            Span::styled(format!(" {} ", shown(&self.scenario_id)), theme::title()),
            Span::raw(match self.phase {
                Phase::Stored { .. } => {
                    format!(" {} steps  seed {}  ", self.steps.len(), self.seed)
                }
                _ => format!(
                    " step {}/{}  seed {}  ",
                    self.steps.len(),
                    self.horizon,
                    self.seed
                ),
            }),
            status,
            Span::styled(
                self.stopped
                    .as_ref()
                    .map_or_else(String::new, |why| format!(" (stopped: {why})")),
                theme::lost(),
            ),
            Span::styled(format!("  {key}"), theme::dim()),
        ]);
        let teacher = match (&self.teacher_name, self.teacher_busy) {
            (_, true) => format!("teacher {} working…", self.teacher_label()),
            (Some(name), false) => format!("corrected by {name}; next: {}", self.teacher_label()),
            (None, false) => format!("teacher: {}", self.teacher_label()),
        };
        let line2 = Line::from(vec![
            Span::styled(format!(" Task: {}", shown(&self.task)), Style::new()),
            Span::styled(
                format!("   student: {}   {teacher}", self.policy),
                theme::dim(),
            ),
        ]);
        f.render_widget(Paragraph::new(vec![line1, line2]), area);
    }

    /// Three lines per step: index and marks with the action, the reason, the observation.
    fn trace(&self, f: &mut Frame, area: Rect) {
        let block = Block::default()
            .borders(Borders::ALL)
            .title(" student trace ");
        let inner = block.inner(area);
        f.render_widget(block, area);
        let width = inner.width as usize;
        let per = 3usize;
        let live = matches!(self.phase, Phase::Generating(_));
        let rows = self.steps.len() + usize::from(live);
        let visible = (inner.height as usize / per).max(1);
        let window = self.cursor.window(rows, visible);
        let mut lines: Vec<Line> = Vec::with_capacity(visible * per + 2);
        if window.start == 0 {
            lines.push(Line::styled(
                clip(&format!("   {}", self.start), width),
                theme::observation(),
            ));
        }
        for i in window {
            let selected = i == self.cursor.selected;
            let base = if selected {
                theme::selected()
            } else {
                Style::new()
            };
            if i == self.steps.len() {
                lines.push(Line::styled(
                    format!("{:>3} … generating", i + 1),
                    theme::info(),
                ));
                let text = self.streaming.trim_start();
                lines.push(Line::styled(
                    clip(&format!("    {text}▍"), width),
                    theme::reason(),
                ));
                continue;
            }
            let step = &self.steps[i];
            let (mark, mark_style) = match self.labels.get(&(i as u32)) {
                Some(l) if !l.changed => ("=", theme::agree()),
                Some(_) => ("≠", theme::differ()),
                None => (" ", Style::new()),
            };
            let leak = self
                .labels
                .get(&(i as u32))
                .is_some_and(|l| !l.leaks.is_empty());
            let status = self
                .labels
                .get(&(i as u32))
                .map_or(" ", |l| status_mark(l.status));
            let valid = if step.valid { " " } else { "✗" };
            let chosen = if step.intervention.is_some() {
                Span::styled("»", theme::privileged())
            } else {
                Span::styled(" ", base)
            };
            let mut spans = vec![
                Span::styled(format!("{:>3} ", i + 1), base),
                Span::styled(mark, mark_style),
                if leak {
                    Span::styled("!", theme::leak())
                } else {
                    Span::styled(" ", base)
                },
                Span::styled(status, base),
                Span::styled(valid, theme::lost()),
                chosen,
            ];
            let used = 8;
            let action = clip(&step.action, width.saturating_sub(used));
            let room = width.saturating_sub(used + action.chars().count());
            spans.push(Span::styled(action, base.patch(theme::action())));
            if let Some((text, style)) = self.live.get(&i).and_then(beside) {
                spans.push(Span::styled(clip(&text, room), style));
            }
            lines.push(Line::from(spans));
            let reason = step.reason.as_deref().unwrap_or("(no reason)");
            lines.push(Line::styled(
                clip(&format!("      {reason}"), width),
                theme::reason(),
            ));
            lines.push(Line::styled(
                clip(&format!("      → {}", step.observation), width),
                theme::observation(),
            ));
        }
        if self.steps.is_empty() && !live && self.phase == Phase::Ready {
            lines.push(Line::styled(
                "   press step or run to let the student act",
                theme::dim(),
            ));
        }
        f.render_widget(Paragraph::new(lines), inner);
    }

    fn detail(&self, f: &mut Frame, area: Rect) {
        let block = Block::default()
            .borders(Borders::ALL)
            .title(" step and teacher ");
        let i = self.cursor.selected;
        let Some(step) = self.steps.get(i) else {
            let text = if matches!(self.phase, Phase::Generating(_)) {
                vec![Line::styled("the student is writing…", theme::info())]
            } else {
                vec![Line::styled("no step selected", theme::dim())]
            };
            f.render_widget(Paragraph::new(text).block(block), area);
            return;
        };
        let before = if i == 0 {
            self.start.as_str()
        } else {
            self.steps[i - 1].observation.as_str()
        };
        let head = Line::from(vec![
            Span::styled(format!("Step {}", i + 1), theme::title()),
            Span::styled(
                format!(
                    "  reward {}  {}  {} prompt tokens ({} cached), {} generated",
                    step.reward,
                    if step.valid {
                        "valid"
                    } else {
                        "not admissible"
                    },
                    step.prompt_tokens,
                    step.cached_tokens,
                    step.gen_tokens
                ),
                theme::dim(),
            ),
        ]);
        let mut lines = vec![
            Line::raw(""),
            match &step.intervention {
                Some(by) => Line::from(vec![
                    Span::styled("» Intervention ", theme::title()),
                    Span::styled(format!("chosen by {by}, not the student"), theme::dim()),
                ]),
                None => Line::styled("Student", theme::title()),
            },
            Line::from(vec![
                Span::styled("REASON: ", theme::dim()),
                Span::styled(
                    step.reason
                        .as_deref()
                        .map_or_else(|| "(none)".into(), shown),
                    theme::reason(),
                ),
            ]),
            Line::from(vec![
                Span::styled("ACTION: ", theme::dim()),
                Span::styled(shown(&step.action), theme::action()),
            ]),
        ];
        if let Some(info) = &step.info {
            lines.push(Line::from(vec![
                Span::styled("Info: ", theme::dim()),
                Span::raw(clip(&info.to_string(), 400)),
            ]));
        }
        lines.push(Line::raw(""));
        if let Some(answer) = self.live.get(&i) {
            live_lines(answer, step.intervention.is_some(), &mut lines);
            lines.push(Line::raw(""));
        }
        match self.labels.get(&(i as u32)) {
            Some(label) => teacher_lines(label, &mut lines),
            None if self.live.contains_key(&i) => {}
            None if self.episode_id.is_none() => lines.push(Line::styled(
                "Teacher: the episode must finish (and be stored) first",
                theme::dim(),
            )),
            None if self.teacher_name.is_some() => lines.push(Line::styled(
                "Teacher: no correction for this step",
                theme::dim(),
            )),
            None => lines.push(Line::styled("Teacher: not asked yet", theme::dim())),
        }
        lines.push(Line::raw(""));
        if self.show_privileged {
            lines.push(Line::styled(
                "Privileged state before this step (what the teacher saw)",
                theme::privileged(),
            ));
            match &self.privileged {
                Some((idx, p)) if *idx == i => {
                    let notes = self.scenario.iter().flat_map(|s| s.body.notes());
                    for note in notes {
                        lines.push(Line::styled(format!("  note: {note}"), theme::privileged()));
                    }
                    privileged_lines(p, &mut lines)
                }
                _ => lines.push(Line::styled("  (the scenario is not loaded)", theme::dim())),
            }
        } else {
            lines.push(Line::styled("privileged state hidden", theme::dim()));
        }
        let inner = block.inner(area);
        let width = usize::from(inner.width);
        let room = usize::from(inner.height).saturating_sub(1 + wrapped_rows(&lines, width));
        let mut page = before_lines(before, width, room);
        page.insert(0, head);
        page.append(&mut lines);
        f.render_widget(
            Paragraph::new(page).block(block).wrap(Wrap { trim: false }),
            area,
        );
    }
}

/// Fewest lines of a page shown before a step, however little room the rest leaves.
const PAGE_MIN: usize = 3;

/// What the student read before a step: one line, as it is written and cut at 400 characters,
/// or a page of several lines (a web page) line by line, each cut to `width`, at most `room`
/// rows (never fewer than [`PAGE_MIN`] lines), with a count of the lines left out.
fn before_lines(text: &str, width: usize, room: usize) -> Vec<Line<'static>> {
    if !text.contains('\n') {
        return vec![Line::from(vec![
            Span::styled("Before: ", theme::dim()),
            Span::styled(clip(text, 400), theme::observation()),
        ])];
    }
    let page: Vec<&str> = text.lines().collect();
    let room = room.saturating_sub(1);
    let shown = if page.len() <= room {
        page.len()
    } else {
        room.saturating_sub(1).max(PAGE_MIN).min(page.len())
    };
    let mut lines = vec![Line::styled("Before (the page):", theme::dim())];
    lines.extend(
        page[..shown]
            .iter()
            .map(|l| Line::styled(clip(&format!("  {l}"), width), theme::observation())),
    );
    if shown < page.len() {
        lines.push(Line::styled(
            format!("  … {} more lines", page.len() - shown),
            theme::dim(),
        ));
    }
    lines
}

/// Rows `lines` take when word-wrapped to `width` columns (greedy, as the paragraph wraps).
fn wrapped_rows(lines: &[Line], width: usize) -> usize {
    let width = width.max(1);
    lines
        .iter()
        .map(|line| {
            let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
            let (mut rows, mut used) = (1, 0);
            for word in text.split(' ') {
                let w = word.chars().count();
                if used > 0 && used + 1 + w <= width {
                    used += 1 + w;
                    continue;
                }
                if used > 0 {
                    rows += 1;
                }
                // The word starts a row; one longer than a row runs on over the next ones.
                let over = w.saturating_sub(1) / width;
                rows += over;
                used = w - over * width;
            }
            rows
        })
        .sum()
}

/// The live teacher's answer beside a step of the trace: its action where it differs.
fn beside(answer: &Answer) -> Option<(String, Style)> {
    match &answer.result {
        Ok(Some(c)) if c.is_corrected => Some((
            format!("  ≠ teacher: {}", c.corrected_action),
            theme::differ(),
        )),
        Ok(Some(_)) => Some(("  = teacher agrees".into(), theme::agree())),
        Ok(None) => None,
        Err(_) => Some(("  teacher failed".into(), theme::error())),
    }
}

/// The live teacher's answer for the selected step, before the episode is stored; compared
/// with the intervention there when someone else chose the step.
fn live_lines(answer: &Answer, intervention: bool, lines: &mut Vec<Line<'static>>) {
    let title = Span::styled(
        format!("Live teacher ({}) ", answer.teacher),
        theme::title(),
    );
    let who = if intervention {
        "the intervention"
    } else {
        "the student"
    };
    match &answer.result {
        Ok(Some(c)) => {
            let (mark, style) = if c.is_corrected {
                (format!("≠ differs from {who}"), theme::differ())
            } else {
                (format!("= agrees with {who}"), theme::agree())
            };
            lines.push(Line::from(vec![title, Span::styled(mark, style)]));
            lines.push(Line::from(vec![
                Span::styled("REASON: ", theme::dim()),
                Span::styled(shown(&c.corrected_reason), theme::reason()),
            ]));
            lines.push(Line::from(vec![
                Span::styled("ACTION: ", theme::dim()),
                Span::styled(shown(&c.corrected_action), theme::action()),
            ]));
        }
        Ok(None) => lines.push(Line::from(vec![
            title,
            Span::styled("has no action here", theme::dim()),
        ])),
        Err(e) => lines.push(Line::from(vec![
            title,
            Span::styled(shown(&e.to_string()), theme::error()),
        ])),
    }
}

/// One character for a label's status.
pub fn status_mark(status: LabelStatus) -> &'static str {
    match status {
        LabelStatus::Pending => "·",
        LabelStatus::Accepted => "✓",
        LabelStatus::Rejected => "✗",
        LabelStatus::Edited => "✎",
    }
}

/// The teacher's correction: agree/differ mark, reason with leaks highlighted, action, status.
pub fn teacher_lines(label: &Label, lines: &mut Vec<Line<'static>>) {
    let (mark, style) = if label.changed {
        ("≠ differs from the student", theme::differ())
    } else {
        ("= agrees with the student", theme::agree())
    };
    lines.push(Line::from(vec![
        Span::styled(format!("Teacher ({}) ", label.teacher), theme::title()),
        Span::styled(mark, style),
        Span::styled(
            format!("  label {} {}", label.id, label.status),
            theme::dim(),
        ),
    ]));
    let mut reason = vec![Span::styled("REASON: ", theme::dim())];
    reason.extend(highlight_leaks(&label.teacher_reason, label));
    lines.push(Line::from(reason));
    lines.push(Line::from(vec![
        Span::styled("ACTION: ", theme::dim()),
        Span::styled(shown(&label.teacher_action), theme::action()),
    ]));
    for leak in &label.leaks {
        lines.push(Line::from(vec![
            Span::styled(" LEAK ", theme::leak()),
            Span::raw(format!(
                " {} (\"{}\")",
                shown(&leak.fact),
                shown(&leak.text)
            )),
        ]));
    }
    if let (Some(r), Some(a)) = (&label.edited_reason, &label.edited_action) {
        lines.push(Line::styled("Edited", theme::title()));
        lines.push(Line::from(vec![
            Span::styled("REASON: ", theme::dim()),
            Span::raw(shown(r)),
        ]));
        lines.push(Line::from(vec![
            Span::styled("ACTION: ", theme::dim()),
            Span::styled(shown(a), theme::action()),
        ]));
    }
}

/// `text` as spans, the words each leak quotes in the leak style.
pub fn highlight_leaks(text: &str, label: &Label) -> Vec<Span<'static>> {
    let mut marks: Vec<(usize, usize)> = label
        .leaks
        .iter()
        .filter(|l| !l.text.is_empty())
        .filter_map(|l| text.find(&l.text).map(|s| (s, s + l.text.len())))
        .collect();
    marks.sort_unstable();
    let mut spans = Vec::new();
    let mut at = 0;
    for (s, e) in marks {
        if s < at {
            continue;
        }
        if s > at {
            spans.push(Span::styled(shown(&text[at..s]), theme::reason()));
        }
        spans.push(Span::styled(shown(&text[s..e]), theme::leak()));
        at = e;
    }
    if at < text.len() {
        spans.push(Span::styled(shown(&text[at..]), theme::reason()));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str, width: usize) -> usize {
        wrapped_rows(&[Line::raw(text.to_string())], width)
    }

    #[test]
    fn rows_of_wrapped_text() {
        assert_eq!(rows("", 10), 1);
        assert_eq!(rows("one two", 10), 1);
        assert_eq!(rows("one two three", 10), 2);
        assert_eq!(rows("abcdefghij", 10), 1);
        assert_eq!(rows("abcdefghijk", 10), 2);
        assert_eq!(rows("ab abcdefghijklmnopqrstu", 10), 4);
    }

    #[test]
    fn a_page_is_shown_line_by_line_within_its_room() {
        let page = (1..=20).map(|i| format!("line {i}")).collect::<Vec<_>>();
        let text = |l: &Line| {
            l.spans
                .iter()
                .map(|s| s.content.as_ref())
                .collect::<String>()
        };
        let all = before_lines(&page.join("\n"), 40, 30);
        assert_eq!(all.len(), 21);
        assert_eq!(text(&all[20]), "  line 20");
        let cut = before_lines(&page.join("\n"), 40, 8);
        assert_eq!(cut.len(), 8);
        assert_eq!(text(&cut[6]), "  line 6");
        assert_eq!(text(&cut[7]), "  … 14 more lines");
        let least = before_lines(&page.join("\n"), 40, 0);
        assert_eq!(least.len(), 1 + PAGE_MIN + 1);
        let one = before_lines("You see a fridge 1.", 40, 0);
        assert_eq!(one.len(), 1);
        assert_eq!(text(&one[0]), "Before: You see a fridge 1.");
    }
}
