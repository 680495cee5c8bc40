//! What changes during a household episode, and the rules that change it.

use std::fmt::Write;

use super::command::Command;
use super::layout::Layout;
use super::text;
use super::vocab::Affordance;

pub const CLEAN: u8 = 1;
pub const HOT: u8 = 2;
pub const COOL: u8 = 4;
pub const ON: u8 = 8;

/// The dynamic state of a household world. Contents are kept sorted, which is listing order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct State {
    /// The receptacle the agent went to last; `None` in the middle of the room.
    pub at: Option<u16>,
    pub held: Option<u16>,
    /// Per receptacle: open (meaningful for openable ones only).
    pub open: Vec<bool>,
    /// Per receptacle: the objects in or on it.
    pub contents: Vec<Vec<u16>>,
    /// Per object: CLEAN | HOT | COOL | ON.
    pub flags: Vec<u8>,
}

impl State {
    /// Everything closed that can be, nothing anywhere.
    pub fn empty(layout: &Layout) -> State {
        State {
            at: None,
            held: None,
            open: layout.receptacles.iter().map(|r| !r.openable).collect(),
            contents: vec![Vec::new(); layout.receptacles.len()],
            flags: vec![0; layout.objects.len()],
        }
    }

    /// Puts object `o` in receptacle `r`, keeping listing order.
    pub fn place(&mut self, o: u16, r: u16) {
        let contents = &mut self.contents[usize::from(r)];
        if let Err(at) = contents.binary_search(&o) {
            contents.insert(at, o);
        }
    }

    /// The receptacles that list `o`, in listing order. As in ALFWorld, an object can be listed
    /// in two receptacles at once (where they overlap in the 3-D scene), and taking it from one
    /// leaves it listed in the other, even while it is in hand.
    pub fn places_of(&self, o: u16) -> impl Iterator<Item = u16> + '_ {
        self.contents
            .iter()
            .enumerate()
            .filter(move |(_, c)| c.binary_search(&o).is_ok())
            .map(|(r, _)| r as u16)
    }

    pub fn spot(&self, layout: &Layout) -> Option<u16> {
        self.at.map(|r| layout.receptacle(r).spot)
    }

    fn at_spot(&self, layout: &Layout, r: u16) -> bool {
        self.spot(layout) == Some(layout.receptacle(r).spot)
    }

    fn accessible(&self, r: u16) -> bool {
        self.open[usize::from(r)]
    }

    fn contains(&self, r: u16, o: u16) -> bool {
        self.contents[usize::from(r)].binary_search(&o).is_ok()
    }

    /// Whether `o` is in reach: in an open receptacle at the agent's spot.
    fn reachable(&self, layout: &Layout, o: u16) -> bool {
        self.places_of(o)
            .any(|r| self.at_spot(layout, r) && self.accessible(r))
    }

    /// Applies `cmd` when it is admissible, writing the observation to `out` if given.
    pub(crate) fn apply(
        &mut self,
        layout: &Layout,
        cmd: Command,
        out: Option<&mut String>,
    ) -> bool {
        let name = |o: u16| layout.object(o).name.as_str();
        let rname = |r: u16| layout.receptacle(r).name.as_str();
        let appliance = |r: u16, kind: &str| layout.receptacle(r).kind == kind;
        let holding_here = |s: &State, o: u16, r: u16| s.held == Some(o) && s.at_spot(layout, r);
        let mut sink = String::new();
        let out = out.unwrap_or(&mut sink);
        match cmd {
            Command::GoTo(r) => {
                if self.at_spot(layout, r) {
                    return false;
                }
                self.at = Some(r);
                text::receptacle(layout, self, r, out);
            }
            Command::Open(r) => {
                if !self.at_spot(layout, r) || !layout.receptacle(r).openable || self.accessible(r)
                {
                    return false;
                }
                self.open[usize::from(r)] = true;
                let _ = write!(out, "You open the {}. ", rname(r));
                text::receptacle(layout, self, r, out);
            }
            Command::Close(r) => {
                if !self.at_spot(layout, r) || !layout.receptacle(r).openable || !self.accessible(r)
                {
                    return false;
                }
                self.open[usize::from(r)] = false;
                let _ = write!(out, "You close the {}.", rname(r));
            }
            Command::Take(o, r) => {
                let ok = self.held.is_none()
                    && layout.object(o).pickable
                    && self.at_spot(layout, r)
                    && self.accessible(r)
                    && self.contains(r, o);
                if !ok {
                    return false;
                }
                let contents = &mut self.contents[usize::from(r)];
                contents.retain(|&x| x != o);
                self.held = Some(o);
                let _ = write!(out, "You pick up the {} from the {}.", name(o), rname(r));
            }
            Command::Put(o, r) => {
                if !holding_here(self, o, r) || !self.accessible(r) || !layout.fits(o, r) {
                    return false;
                }
                self.held = None;
                self.place(o, r);
                let _ = write!(out, "You put the {} in/on the {}.", name(o), rname(r));
            }
            Command::Clean(o, r) | Command::Heat(o, r) | Command::Cool(o, r) => {
                let (kind, affordance, flag, undone, verb) = match cmd {
                    Command::Clean(..) => ("sinkbasin", Affordance::Clean, CLEAN, 0, "clean"),
                    Command::Heat(..) => ("microwave", Affordance::Heat, HOT, COOL, "heat"),
                    _ => ("fridge", Affordance::Cool, COOL, HOT, "cool"),
                };
                if !holding_here(self, o, r) || !appliance(r, kind) || !layout.can(o, affordance) {
                    return false;
                }
                // ALFWorld's HeatObject makes an object not cool, and CoolObject not hot.
                let flags = &mut self.flags[usize::from(o)];
                *flags = (*flags & !undone) | flag;
                let _ = write!(out, "You {verb} the {} using the {}.", name(o), rname(r));
            }
            Command::Use(o) => {
                if !layout.object(o).toggleable || !self.reachable(layout, o) {
                    return false;
                }
                self.flags[usize::from(o)] |= ON;
                let _ = write!(out, "You turn on the {}.", name(o));
            }
            Command::ExamineReceptacle(r) => {
                if !self.at_spot(layout, r) {
                    return false;
                }
                text::receptacle(layout, self, r, out);
            }
            Command::ExamineObject(o) => {
                if self.held != Some(o) {
                    return false;
                }
                let _ = write!(out, "There's nothing special about {}.", name(o));
            }
            Command::Inventory => match self.held {
                Some(o) => {
                    let _ = write!(out, "You are carrying: a {}.", name(o));
                }
                None => out.push_str("You are not carrying anything."),
            },
            Command::Look => match self.spot(layout) {
                Some(spot) => text::facing(layout, spot, out),
                // ALFWorld lists the receptacles at the agent's location, and the middle of the
                // room has none; only the first observation lists the whole room.
                None => out.push_str(text::MIDDLE_OF_ROOM_LOOK),
            },
        }
        true
    }

    /// Every admissible command, unsorted.
    pub(crate) fn admissible(&self, layout: &Layout) -> Vec<String> {
        let mut cmds = vec!["inventory".to_string(), "look".to_string()];
        let spot = self.spot(layout);
        for (r, rec) in layout.receptacles.iter().enumerate() {
            let r = r as u16;
            if Some(rec.spot) != spot {
                cmds.push(format!("go to {}", rec.name));
                continue;
            }
            cmds.push(format!("examine {}", rec.name));
            if rec.openable {
                let verb = if self.accessible(r) { "close" } else { "open" };
                cmds.push(format!("{verb} {}", rec.name));
            }
            if !self.accessible(r) {
                continue;
            }
            for &o in &self.contents[usize::from(r)] {
                let obj = layout.object(o);
                if obj.toggleable {
                    cmds.push(format!("use {}", obj.name));
                } else if self.held.is_none() && obj.pickable {
                    cmds.push(format!("take {} from {}", obj.name, rec.name));
                }
            }
            if let Some(h) = self.held
                && layout.fits(h, r)
            {
                cmds.push(format!("put {} in/on {}", layout.object(h).name, rec.name));
            }
        }
        if let Some(h) = self.held {
            let held = &layout.object(h).name;
            cmds.push(format!("examine {held}"));
            for r in spot.into_iter().flat_map(|s| layout.at_spot(s)) {
                let rec = layout.receptacle(r);
                let (verb, affordance) = match rec.kind.as_str() {
                    "sinkbasin" => ("clean", Affordance::Clean),
                    "microwave" => ("heat", Affordance::Heat),
                    "fridge" => ("cool", Affordance::Cool),
                    _ => continue,
                };
                if !layout.can(h, affordance) {
                    continue;
                }
                cmds.push(format!("{verb} {held} with {}", rec.name));
            }
        }
        cmds
    }
}
