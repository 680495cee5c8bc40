//! ALFWorld's observation sentences.

use std::fmt::Write;

use super::layout::Layout;
use super::state::State;

pub const NOTHING_HAPPENS: &str = "Nothing happens.";

/// What `look` says in the middle of the room, where the game starts.
pub const MIDDLE_OF_ROOM_LOOK: &str =
    "You are in the middle of a room. Looking quickly around you, you see nothing.";

/// "a apple 1, a cup 2, and a egg 1", or "nothing". ALFWorld always writes "a".
pub fn list<'a>(out: &mut String, names: impl ExactSizeIterator<Item = &'a str>) {
    let n = names.len();
    if n == 0 {
        out.push_str("nothing");
        return;
    }
    for (i, name) in names.enumerate() {
        if i > 0 {
            out.push_str(if i + 1 == n { ", and " } else { ", " });
        }
        out.push_str("a ");
        out.push_str(name);
    }
}

/// The first observation: every receptacle of the room.
pub fn room(layout: &Layout, out: &mut String) {
    out.push_str("You are in the middle of a room. Looking quickly around you, you see ");
    list(out, layout.receptacles.iter().map(|r| r.name.as_str()));
    out.push('.');
}

/// What arriving at, or examining, a receptacle shows.
pub fn receptacle(layout: &Layout, state: &State, r: u16, out: &mut String) {
    let rec = layout.receptacle(r);
    let contents = &state.contents[usize::from(r)];
    let names = contents.iter().map(|&o| layout.object(o).name.as_str());
    if rec.openable {
        if !state.open[usize::from(r)] {
            let _ = write!(out, "The {} is closed.", rec.name);
            return;
        }
        let _ = write!(out, "The {} is open. In it, you see ", rec.name);
    } else {
        let _ = write!(out, "On the {}, you see ", rec.name);
    }
    list(out, names);
    out.push('.');
}

/// "You are facing the cabinet 2, and cabinet 1. Next to it, you see nothing."
pub fn facing(layout: &Layout, spot: u16, out: &mut String) {
    let at: Vec<u16> = layout.at_spot(spot).collect();
    out.push_str("You are facing the ");
    for (i, &r) in at.iter().enumerate() {
        if i > 0 {
            out.push_str(if i + 1 == at.len() { ", and " } else { ", " });
        }
        out.push_str(&layout.receptacle(r).name);
    }
    out.push_str(". Next to it, you see nothing.");
}
