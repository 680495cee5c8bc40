//! What a key can ask for. Keys map to actions through the keymap (`assets/keys.yaml`); the
//! app's `update` is the only place an action changes state.

use serde::Deserialize;

/// A place whose keys are looked up together: a screen, the editor or the quit question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Global,
    Scenarios,
    Episode,
    Labels,
    Train,
    Iterations,
    Editor,
    Confirm,
}

impl Section {
    /// The five screens, whose own keys win over `global`'s.
    pub const SCREENS: [Section; 5] = [
        Section::Scenarios,
        Section::Episode,
        Section::Labels,
        Section::Train,
        Section::Iterations,
    ];

    pub const ALL: [Section; 8] = [
        Section::Global,
        Section::Scenarios,
        Section::Episode,
        Section::Labels,
        Section::Train,
        Section::Iterations,
        Section::Editor,
        Section::Confirm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Section::Global => "global",
            Section::Scenarios => "scenarios",
            Section::Episode => "episode",
            Section::Labels => "labels",
            Section::Train => "train",
            Section::Iterations => "iterations",
            Section::Editor => "editor",
            Section::Confirm => "confirm",
        }
    }

    /// The actions a key can have here, in the order the help lists them.
    pub fn actions(self) -> &'static [Action] {
        use Action::*;
        match self {
            Section::Global => &[
                Quit,
                Help,
                NextScreen,
                PrevScreen,
                ScenariosScreen,
                EpisodeScreen,
                LabelsScreen,
                TrainScreen,
                IterationsScreen,
                Up,
                Down,
                PageUp,
                PageDown,
                Top,
                Bottom,
                Dismiss,
                CancelJob,
            ],
            Section::Scenarios => &[Play, Filter, CycleSplit, CycleKind, TogglePrivileged],
            Section::Episode => &[
                Step,
                RunPause,
                Reset,
                AskTeacher,
                TogglePrivileged,
                ChooseStudent,
                ChooseTeacher,
                LessPrivilege,
                MorePrivilege,
                OpenEpisode,
                TakeTeacher,
                TypeAction,
                Branch,
            ],
            Section::Labels => &[
                Accept,
                Reject,
                Edit,
                Undo,
                AcceptAll,
                CycleStatus,
                ToggleDiffering,
                ToggleLeaking,
                Filter,
                CycleIteration,
                ShowEpisode,
            ],
            Section::Train => &[StartTraining, CancelJob, Increase, Decrease, LoadAdapter],
            Section::Iterations => &[
                // The LEAP loop and evaluations on the open run.
                StartLoop,
                StartEval,
                CancelJob,
                Increase,
                Decrease,
                CycleCuration,
            ],
            Section::Editor => &[Save, NextField, Complete, Dismiss],
            Section::Confirm => &[Yes, No],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Quit,
    Help,
    NextScreen,
    PrevScreen,
    ScenariosScreen,
    EpisodeScreen,
    LabelsScreen,
    TrainScreen,
    IterationsScreen,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Dismiss,
    Play,
    Filter,
    CycleSplit,
    CycleKind,
    TogglePrivileged,
    Step,
    RunPause,
    Reset,
    AskTeacher,
    ChooseStudent,
    ChooseTeacher,
    LessPrivilege,
    MorePrivilege,
    OpenEpisode,
    TakeTeacher,
    TypeAction,
    Branch,
    Accept,
    Reject,
    Edit,
    Undo,
    AcceptAll,
    CycleStatus,
    ToggleDiffering,
    ToggleLeaking,
    CycleIteration,
    ShowEpisode,
    StartTraining,
    CancelJob,
    Increase,
    Decrease,
    LoadAdapter,
    Save,
    NextField,
    Complete,
    Yes,
    No,
    // The Iterations screen: the LEAP loop and evaluations on the open run.
    StartLoop,
    StartEval,
    CycleCuration,
}

impl Action {
    /// A word or two for the bottom bar.
    pub fn label(self) -> &'static str {
        use Action::*;
        match self {
            Quit => "quit",
            Help => "help",
            NextScreen => "next screen",
            PrevScreen => "previous screen",
            ScenariosScreen => "scenarios",
            EpisodeScreen => "episode",
            LabelsScreen => "labels",
            TrainScreen => "train",
            IterationsScreen => "iterations",
            Up => "up",
            Down => "down",
            PageUp => "page up",
            PageDown => "page down",
            Top => "top",
            Bottom => "bottom",
            Dismiss => "close",
            Play => "play",
            Filter => "filter",
            CycleSplit => "split",
            CycleKind => "kind",
            TogglePrivileged => "privileged",
            Step => "step",
            RunPause => "run/pause",
            Reset => "new seed",
            AskTeacher => "ask teacher",
            ChooseStudent => "student",
            ChooseTeacher => "teacher",
            LessPrivilege => "privilege -",
            MorePrivilege => "privilege +",
            OpenEpisode => "open stored",
            TakeTeacher => "take teacher's",
            TypeAction => "type action",
            Branch => "branch here",
            Accept => "accept",
            Reject => "reject",
            Edit => "edit",
            Undo => "undo",
            AcceptAll => "accept all shown",
            CycleStatus => "status",
            ToggleDiffering => "differing",
            ToggleLeaking => "leaking",
            CycleIteration => "iteration",
            ShowEpisode => "show in episode",
            StartTraining => "train",
            CancelJob => "cancel",
            Increase => "increase",
            Decrease => "decrease",
            LoadAdapter => "load as student",
            Save => "save",
            NextField => "other field",
            Complete => "complete from admissible",
            Yes => "yes",
            No => "no",
            // The Iterations screen.
            StartLoop => "iterate",
            StartEval => "evaluate student",
            CycleCuration => "curation",
        }
    }

    /// A sentence for the help overlay.
    pub fn describe(self) -> &'static str {
        use Action::*;
        match self {
            Quit => "quit (asks first while a job runs)",
            Help => "this help",
            NextScreen => "next screen",
            PrevScreen => "previous screen",
            ScenariosScreen => "go to Scenarios",
            EpisodeScreen => "go to Episode",
            LabelsScreen => "go to Labels",
            TrainScreen => "go to Train",
            IterationsScreen => "go to Iterations",
            Up => "select the previous row",
            Down => "select the next row",
            PageUp => "a page up",
            PageDown => "a page down",
            Top => "first row",
            Bottom => "last row",
            Dismiss => "close the overlay or the message, clear the filter",
            Play => "play the selected scenario in the Episode screen",
            Filter => "type a filter (enter keeps it, esc clears it)",
            CycleSplit => "show all splits, train only, test only",
            CycleKind => "show all kinds or one kind",
            TogglePrivileged => "show or hide the privileged state",
            Step => "play one step",
            RunPause => "play until the episode ends, or pause",
            Reset => "restart the scenario with a new seed",
            AskTeacher => "ask the teacher to correct this episode (once it is stored)",
            ChooseStudent => "choose the student: the base model or an adapter",
            ChooseTeacher => "choose the teacher: oracle (privilege level), self, remote",
            LessPrivilege => "less privilege for the oracle teacher",
            MorePrivilege => "more privilege for the oracle teacher",
            OpenEpisode => "open a stored episode",
            TakeTeacher => "take the teacher's action at the selected step and play on from there",
            TypeAction => "type an admissible action for the selected step and play on from there",
            Branch => "replay the stored episode up to the selected step as a new one",
            Accept => "accept the teacher's label",
            Reject => "reject the teacher's label",
            Edit => "edit the reason and action, with the admissible commands at hand",
            Undo => "undo the last decision (or bulk accept)",
            AcceptAll => "accept every pending label shown by the filters",
            CycleStatus => "filter by status: all, pending, accepted, rejected, edited",
            ToggleDiffering => "only labels where the teacher differs from the student",
            ToggleLeaking => "only labels flagged for leaking privileged information",
            CycleIteration => "filter by the LEAP iteration of the episode",
            ShowEpisode => "open the label's episode at its step",
            StartTraining => "train a LoRA adapter on the accepted labels",
            CancelJob => "cancel the running job (training, bulk accept, a run)",
            Increase => "increase the selected setting",
            Decrease => "decrease the selected setting",
            LoadAdapter => "load the trained adapter as the student",
            Save => "save the edit",
            NextField => "switch between reason and action",
            Complete => "complete the action with the next admissible command that matches",
            Yes => "yes",
            No => "no",
            // The Iterations screen.
            StartLoop => {
                "run the LEAP loop on this run (`leap iterate`), resuming after the stages it finished"
            }
            StartEval => {
                "evaluate the current student (the loaded adapter, else the run's latest) on the test split (`leap eval`)"
            }
            CycleCuration => "how the loop decides labels: a rule, or wait for the Labels screen",
        }
    }
}
