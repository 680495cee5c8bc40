//! The fixed part of a household world: which receptacles and objects exist, and where each
//! receptacle stands. Everything that changes during an episode is in [`super::State`].

use std::cmp::Reverse;
use std::collections::HashMap;

use thiserror::Error;

use super::vocab::{Affordance, Vocabulary};

/// A receptacle to place in a layout.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceptacleSpec {
    /// Instance name as the game prints it: type and number, "cabinet 3".
    pub name: String,
    /// Whether it has a door or a lid (`open`/`close` apply).
    pub openable: bool,
    /// Another receptacle at the same spot: going to one reaches both.
    pub beside: Option<String>,
}

/// An object to place in a layout.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectSpec {
    /// Instance name as the game prints it, "apple 1".
    pub name: String,
}

#[derive(Debug, Error, PartialEq)]
pub enum LayoutError {
    #[error("`{0}` is not an instance name: expected a type and a number, like `cabinet 3`")]
    BadName(String),
    #[error("`{0}` is named twice")]
    Duplicate(String),
    #[error("`{name}` is beside `{beside}`, which is not a receptacle of this room")]
    UnknownBeside { name: String, beside: String },
    #[error("the room has more than 65535 receptacles or objects")]
    TooLarge,
}

#[derive(Debug, Clone)]
pub struct Receptacle {
    pub name: String,
    pub kind: String,
    pub openable: bool,
    /// Receptacles with the same spot are reached together.
    pub spot: u16,
}

#[derive(Debug, Clone)]
pub struct Object {
    pub name: String,
    pub kind: String,
    /// Can be picked up (lamps cannot).
    pub pickable: bool,
    /// Can be turned on with `use`.
    pub toggleable: bool,
    /// What can be done to it (the vocabulary's `can`).
    pub can: Vec<Affordance>,
    /// The receptacles `put` can place it in or on, ascending.
    pub fits: Vec<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entity {
    Receptacle(u16),
    Object(u16),
}

/// Receptacles and objects are kept in ALFWorld's listing order: by type name, then by
/// instance number from the highest down ("a cabinet 2, a cabinet 1, a countertop 1").
#[derive(Debug, Clone)]
pub struct Layout {
    pub receptacles: Vec<Receptacle>,
    pub objects: Vec<Object>,
    names: HashMap<String, Entity>,
}

/// Splits "cabinet 12" into ("cabinet", 12).
pub fn split_name(name: &str) -> Option<(&str, u32)> {
    let (kind, number) = name.rsplit_once(' ')?;
    let number: u32 = number.parse().ok()?;
    let valid_kind = !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_lowercase());
    valid_kind.then_some((kind, number))
}

fn listing_key(name: &str) -> (&str, Reverse<u32>) {
    let (kind, number) = split_name(name).expect("names are checked before sorting");
    (kind, Reverse(number))
}

impl Layout {
    pub fn new(
        receptacles: &[ReceptacleSpec],
        objects: &[ObjectSpec],
        vocab: &Vocabulary,
    ) -> Result<Layout, LayoutError> {
        if receptacles.len() + objects.len() > usize::from(u16::MAX) {
            return Err(LayoutError::TooLarge);
        }
        let mut seen = HashMap::new();
        for name in receptacles
            .iter()
            .map(|r| &r.name)
            .chain(objects.iter().map(|o| &o.name))
        {
            if split_name(name).is_none() {
                return Err(LayoutError::BadName(name.clone()));
            }
            if seen.insert(name.as_str(), ()).is_some() {
                return Err(LayoutError::Duplicate(name.clone()));
            }
        }
        let mut rspecs: Vec<&ReceptacleSpec> = receptacles.iter().collect();
        rspecs.sort_by(|a, b| listing_key(&a.name).cmp(&listing_key(&b.name)));
        let mut ospecs: Vec<&ObjectSpec> = objects.iter().collect();
        ospecs.sort_by(|a, b| listing_key(&a.name).cmp(&listing_key(&b.name)));

        let mut names = HashMap::with_capacity(rspecs.len() + ospecs.len());
        for (i, r) in rspecs.iter().enumerate() {
            names.insert(r.name.clone(), Entity::Receptacle(i as u16));
        }
        for (i, o) in ospecs.iter().enumerate() {
            names.insert(o.name.clone(), Entity::Object(i as u16));
        }

        // Each receptacle gets the spot of the first receptacle in its `beside` chain.
        let mut spots: Vec<u16> = (0..rspecs.len() as u16).collect();
        for (i, r) in rspecs.iter().enumerate() {
            if let Some(beside) = &r.beside {
                match names.get(beside) {
                    Some(Entity::Receptacle(j)) => spots[i] = *j,
                    _ => {
                        return Err(LayoutError::UnknownBeside {
                            name: r.name.clone(),
                            beside: beside.clone(),
                        });
                    }
                }
            }
        }
        for i in 0..spots.len() {
            let mut root = spots[i];
            let mut hops = 0;
            while spots[usize::from(root)] != root && hops < spots.len() {
                root = spots[usize::from(root)];
                hops += 1;
            }
            spots[i] = root;
        }

        let receptacles: Vec<Receptacle> = rspecs
            .iter()
            .zip(spots)
            .map(|(r, spot)| Receptacle {
                kind: split_name(&r.name).unwrap().0.to_string(),
                name: r.name.clone(),
                openable: r.openable,
                spot,
            })
            .collect();
        let objects = ospecs
            .iter()
            .map(|o| {
                let kind = split_name(&o.name).unwrap().0;
                let fits = (0..receptacles.len() as u16)
                    .filter(|&r| vocab.fits(kind, &receptacles[usize::from(r)].kind))
                    .collect();
                Object {
                    name: o.name.clone(),
                    kind: kind.to_string(),
                    pickable: vocab.pickable(kind),
                    toggleable: vocab.object_can(kind, Affordance::Toggle),
                    can: vocab
                        .objects
                        .get(kind)
                        .map(|t| t.can.clone())
                        .unwrap_or_default(),
                    fits,
                }
            })
            .collect();
        Ok(Layout {
            receptacles,
            objects,
            names,
        })
    }

    pub(crate) fn lookup(&self, name: &str) -> Option<Entity> {
        self.names.get(name).copied()
    }

    pub fn receptacle_index(&self, name: &str) -> Option<u16> {
        match self.lookup(name)? {
            Entity::Receptacle(r) => Some(r),
            Entity::Object(_) => None,
        }
    }

    pub fn object_index(&self, name: &str) -> Option<u16> {
        match self.lookup(name)? {
            Entity::Object(o) => Some(o),
            Entity::Receptacle(_) => None,
        }
    }

    pub fn receptacle(&self, r: u16) -> &Receptacle {
        &self.receptacles[usize::from(r)]
    }

    pub fn object(&self, o: u16) -> &Object {
        &self.objects[usize::from(o)]
    }

    /// Whether `put` can place object `o` in or on receptacle `r`.
    pub fn fits(&self, o: u16, r: u16) -> bool {
        self.object(o).fits.binary_search(&r).is_ok()
    }

    /// Whether `clean`, `heat` or `cool` can act on object `o`.
    pub fn can(&self, o: u16, affordance: Affordance) -> bool {
        self.object(o).can.contains(&affordance)
    }

    /// Receptacles that share `r`'s spot, `r` included, in listing order.
    pub fn at_spot(&self, spot: u16) -> impl Iterator<Item = u16> + '_ {
        self.receptacles
            .iter()
            .enumerate()
            .filter(move |(_, r)| r.spot == spot)
            .map(|(i, _)| i as u16)
    }
}
