//! Siblings: training images whose content attributes (petal colour, shape,
//! count, centre) all agree with another image's but one. Random pairs almost
//! never differ in one attribute alone (on procedural flowers two images of
//! a batch share colour and shape one time in 24), so a loss that ranks an
//! image's own text above others' can be met by checking the colour alone;
//! with siblings it must check each attribute. The text encoder's hard
//! negatives and D's sibling wrong images draw them from here.

use crate::training_set::{Rng, TrainingSet};
use anyhow::{anyhow, Result};
use std::collections::{BTreeMap, HashMap};

/// The training images grouped by their content, with each group's
/// neighbours: the groups that differ from it in one attribute only.
pub struct Siblings {
    /// Each content's images, in the order of the contents' keys.
    members: Vec<Vec<usize>>,
    /// `neighbours[c][a]`: the contents that differ from `c` in attribute
    /// `a` alone, in key order.
    neighbours: Vec<Vec<Vec<usize>>>,
    /// The content of each training image.
    content_of: HashMap<usize, usize>,
}

/// The content attributes of image `i`, in [`crate::eval::CONTENT`]'s order
/// (None where the data does not have them all).
fn content_key(data: &TrainingSet, i: usize) -> Option<Vec<String>> {
    crate::eval::CONTENT
        .iter()
        .map(|(a, _)| data.attributes[i].get(*a).cloned())
        .collect()
}

impl Siblings {
    /// Groups `train` by content; refused where an image lacks the content
    /// attributes (data other than procedural flowers). `what` names the
    /// option that asked, for the message.
    pub fn new(data: &TrainingSet, train: &[usize], what: &str) -> Result<Self> {
        let mut by_content: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
        for &i in train {
            let key = content_key(data, i).ok_or_else(|| {
                anyhow!(
                    "{what} needs the content attributes of every image ({} has none: not procedural flowers?)",
                    data.names[i]
                )
            })?;
            by_content.entry(key).or_default().push(i);
        }
        let keys: Vec<&Vec<String>> = by_content.keys().collect();
        let attributes = crate::eval::CONTENT.len();
        let neighbours = keys
            .iter()
            .map(|key| {
                (0..attributes)
                    .map(|a| {
                        keys.iter()
                            .enumerate()
                            .filter(|(_, other)| differ_in_only(key, other, a))
                            .map(|(c, _)| c)
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let members: Vec<Vec<usize>> = by_content.into_values().collect();
        let content_of = members
            .iter()
            .enumerate()
            .flat_map(|(c, images)| images.iter().map(move |&i| (i, c)))
            .collect();
        Ok(Self {
            members,
            neighbours,
            content_of,
        })
    }

    /// A training image whose content equals `anchor`'s in all attributes
    /// but one (the attribute chosen at random among those that have one),
    /// not in `taken`; None where there is none to give.
    pub fn pick(&self, anchor: usize, taken: &[usize], rng: &mut Rng) -> Option<usize> {
        let c = *self.content_of.get(&anchor)?;
        let mut attributes: Vec<usize> = (0..self.neighbours[c].len()).collect();
        rng.shuffle(&mut attributes);
        for a in attributes {
            let others = &self.neighbours[c][a];
            if others.is_empty() {
                continue;
            }
            let members = &self.members[others[rng.below(others.len())]];
            let pick = members[rng.below(members.len())];
            if !taken.contains(&pick) {
                return Some(pick);
            }
        }
        None
    }
}

/// Whether two keys differ in attribute `a` and agree in every other.
fn differ_in_only(key: &[String], other: &[String], a: usize) -> bool {
    key[a] != other[a]
        && key
            .iter()
            .zip(other)
            .enumerate()
            .all(|(j, (x, y))| j == a || x == y)
}
