//! A teacher on its own thread, answering one step at a time of episodes still being played:
//! what the workbench shows beside each live step. The teacher is built on the thread at the
//! first question (an LLM teacher loads its model there) and kept for the next ones.
//!
//! Questions carry the asker's `generation`; when several wait, only those of the newest
//! generation are answered, so a teacher slower than the student skips the episodes the asker
//! has already left.

use std::sync::mpsc::{Receiver, Sender, channel};

use super::{StepCorrection, Teacher, TeacherError, TeacherSpec};
use crate::scenario::Scenario;
use crate::store::EpisodeRecord;

/// One step to correct: step `step` of `partial`, the steps so far.
pub struct Question {
    /// The asker's count of episodes (or rewinds): answers carry it back, so that an answer
    /// for an episode the asker has left can be told and dropped.
    pub generation: u64,
    pub scenario: Box<Scenario>,
    pub partial: EpisodeRecord,
    pub step: usize,
}

/// The teacher's answer to one [`Question`].
#[derive(Debug)]
pub struct Answer {
    pub generation: u64,
    pub step: usize,
    /// The teacher's name (`oracle@1`), once built.
    pub teacher: String,
    /// The correction, `None` when the teacher has none there, or why it failed.
    pub result: Result<Option<StepCorrection>, TeacherError>,
}

/// The sending side of a live teacher; dropping it lets the thread end after its current
/// question (it is not waited for: a model may be mid-answer).
pub struct LiveTeacher {
    questions: Sender<Question>,
    describe: String,
}

impl LiveTeacher {
    /// Starts the thread; every answer goes to `on_answer`, called on that thread.
    pub fn spawn(spec: TeacherSpec, mut on_answer: Box<dyn FnMut(Answer) + Send>) -> LiveTeacher {
        let (questions, rx) = channel();
        let describe = spec.label();
        std::thread::Builder::new()
            .name("leap-live-teacher".into())
            .spawn(move || serve(spec, rx, &mut *on_answer))
            .expect("a thread starts");
        LiveTeacher {
            questions,
            describe,
        }
    }

    /// Queues a question; false when the thread has ended.
    pub fn ask(&self, question: Question) -> bool {
        self.questions.send(question).is_ok()
    }

    /// Which teacher this is, before it is built (`oracle@1`, `self`, `remote`).
    pub fn label(&self) -> &str {
        &self.describe
    }
}

fn serve(spec: TeacherSpec, rx: Receiver<Question>, on_answer: &mut dyn FnMut(Answer)) {
    let mut teacher: Option<Box<dyn Teacher>> = None;
    while let Ok(first) = rx.recv() {
        let mut waiting = vec![first];
        waiting.extend(rx.try_iter());
        let newest = waiting.iter().map(|q| q.generation).max().unwrap_or(0);
        for q in waiting.into_iter().filter(|q| q.generation == newest) {
            if teacher.is_none() {
                match spec.build() {
                    Ok(t) => teacher = Some(t),
                    Err(e) => {
                        on_answer(Answer {
                            generation: q.generation,
                            step: q.step,
                            teacher: spec.label(),
                            result: Err(e),
                        });
                        continue;
                    }
                }
            }
            let t = teacher.as_mut().expect("built above");
            let result = t.correct_step(&q.scenario, &q.partial, q.step);
            on_answer(Answer {
                generation: q.generation,
                step: q.step,
                teacher: t.describe(),
                result,
            });
        }
    }
}
