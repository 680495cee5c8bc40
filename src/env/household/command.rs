//! Parsing a command string into the action it names. Only exact ALFWorld forms parse; anything
//! else is "Nothing happens.".

use super::layout::{Entity, Layout};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    GoTo(u16),
    Open(u16),
    Close(u16),
    Take(u16, u16),
    Put(u16, u16),
    Clean(u16, u16),
    Heat(u16, u16),
    Cool(u16, u16),
    Use(u16),
    ExamineReceptacle(u16),
    ExamineObject(u16),
    Inventory,
    Look,
}

impl Command {
    pub fn parse(layout: &Layout, text: &str) -> Option<Command> {
        let recep = |name: &str| layout.receptacle_index(name);
        let object = |name: &str| layout.object_index(name);
        let pair = |rest: &str, sep: &str| -> Option<(u16, u16)> {
            let (o, r) = rest.split_once(sep)?;
            Some((object(o)?, recep(r)?))
        };
        match text {
            "inventory" => return Some(Command::Inventory),
            "look" => return Some(Command::Look),
            _ => {}
        }
        let (verb, rest) = text.split_once(' ')?;
        Some(match verb {
            "go" => Command::GoTo(recep(rest.strip_prefix("to ")?)?),
            "open" => Command::Open(recep(rest)?),
            "close" => Command::Close(recep(rest)?),
            "take" => {
                let (o, r) = pair(rest, " from ")?;
                Command::Take(o, r)
            }
            "put" => {
                let (o, r) = pair(rest, " in/on ")?;
                Command::Put(o, r)
            }
            "clean" => {
                let (o, r) = pair(rest, " with ")?;
                Command::Clean(o, r)
            }
            "heat" => {
                let (o, r) = pair(rest, " with ")?;
                Command::Heat(o, r)
            }
            "cool" => {
                let (o, r) = pair(rest, " with ")?;
                Command::Cool(o, r)
            }
            "use" => Command::Use(object(rest)?),
            "examine" => match layout.lookup(rest)? {
                Entity::Receptacle(r) => Command::ExamineReceptacle(r),
                Entity::Object(o) => Command::ExamineObject(o),
            },
            _ => return None,
        })
    }
}
