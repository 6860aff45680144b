//! The set and map inside a [`super::Datum`]: sorted, deduplicated slices instead of B-trees.
//!
//! A `BTreeSet`/`BTreeMap` allocates a whole 11-slot node even for one element, and almost
//! every column holds zero, one or a few atoms, so the replica and the desired state spent
//! ~4 KB per row on them. These keep exactly the elements (a one-atom set, the form of every
//! scalar column, inline) and compare, order and iterate exactly like the B-trees did.

use std::cmp::Ordering;
use std::fmt;

use super::{Atom, Text};

/// Sorts `items` with a stable sort and keeps the last of each run of equal items, which is
/// what collecting into (or inserting twice into) a `BTreeMap` keeps for a repeated key.
pub(super) fn sort_keep_last<T>(items: &mut Vec<T>, cmp: impl Fn(&T, &T) -> Ordering) {
    items.sort_by(&cmp);
    items.dedup_by(|next, kept| {
        let same = cmp(next, kept) == Ordering::Equal;
        if same {
            std::mem::swap(next, kept);
        }
        same
    });
}

/// A set of atoms in [`Atom`]'s order, each once.
#[derive(Clone)]
pub struct AtomSet(Atoms);

/// One atom inline (no allocation); otherwise a boxed slice that never has length 1.
#[derive(Clone)]
enum Atoms {
    One(Atom),
    Many(Box<[Atom]>),
}

impl AtomSet {
    /// The empty set.
    pub fn new() -> AtomSet {
        AtomSet(Atoms::Many(Box::default()))
    }

    /// The set of one atom.
    pub fn one(atom: Atom) -> AtomSet {
        AtomSet(Atoms::One(atom))
    }

    /// From atoms already sorted and deduplicated.
    fn from_sorted(mut atoms: Vec<Atom>) -> AtomSet {
        match atoms.pop() {
            Some(atom) if atoms.is_empty() => AtomSet::one(atom),
            Some(last) => {
                atoms.push(last);
                AtomSet(Atoms::Many(atoms.into_boxed_slice()))
            }
            None => AtomSet::new(),
        }
    }

    fn into_vec(self) -> Vec<Atom> {
        match self.0 {
            Atoms::One(atom) => vec![atom],
            Atoms::Many(atoms) => atoms.into_vec(),
        }
    }

    /// The atoms, in order.
    pub fn as_slice(&self) -> &[Atom] {
        match &self.0 {
            Atoms::One(atom) => std::slice::from_ref(atom),
            Atoms::Many(atoms) => atoms,
        }
    }

    /// The atoms, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Atom> {
        self.as_slice().iter()
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    pub fn contains(&self, atom: &Atom) -> bool {
        self.as_slice().binary_search(atom).is_ok()
    }

    /// Adds `atom`; false when it was already there (the set is then unchanged).
    pub fn insert(&mut self, atom: Atom) -> bool {
        let Err(at) = self.as_slice().binary_search(&atom) else {
            return false;
        };
        let mut atoms = std::mem::take(self).into_vec();
        atoms.reserve_exact(1);
        atoms.insert(at, atom);
        *self = AtomSet::from_sorted(atoms);
        true
    }

    /// Removes `atom`; false when it was not there.
    pub fn remove(&mut self, atom: &Atom) -> bool {
        let Ok(at) = self.as_slice().binary_search(atom) else {
            return false;
        };
        let mut atoms = std::mem::take(self).into_vec();
        atoms.remove(at);
        *self = AtomSet::from_sorted(atoms);
        true
    }

    /// The atoms in exactly one of `self` and `other` (an update2 set diff toggles its atoms).
    pub fn symmetric_difference(self, other: AtomSet) -> AtomSet {
        let mut merged = self.into_vec();
        merged.extend(other.into_vec());
        merged.sort();
        let mut once = Vec::with_capacity(merged.len());
        let mut atoms = merged.into_iter().peekable();
        while let Some(atom) = atoms.next() {
            if atoms.peek() == Some(&atom) {
                atoms.next();
            } else {
                once.push(atom);
            }
        }
        AtomSet::from_sorted(once)
    }
}

impl Default for AtomSet {
    fn default() -> Self {
        AtomSet::new()
    }
}

impl PartialEq for AtomSet {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}
impl Eq for AtomSet {}
impl PartialOrd for AtomSet {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for AtomSet {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl fmt::Debug for AtomSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<Atom> for AtomSet {
    fn from_iter<I: IntoIterator<Item = Atom>>(iter: I) -> Self {
        let mut atoms: Vec<Atom> = iter.into_iter().collect();
        atoms.sort();
        atoms.dedup();
        AtomSet::from_sorted(atoms)
    }
}

impl IntoIterator for AtomSet {
    type Item = Atom;
    type IntoIter = std::vec::IntoIter<Atom>;
    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl<'a> IntoIterator for &'a AtomSet {
    type Item = &'a Atom;
    type IntoIter = std::slice::Iter<'a, Atom>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// A map between atoms in key order, each key once.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct AtomMap(Box<[(Atom, Atom)]>);

/// A map's pairs as `(&key, &value)`, like `BTreeMap::iter`.
pub type Pairs<'a> = std::iter::Map<
    std::slice::Iter<'a, (Atom, Atom)>,
    fn(&'a (Atom, Atom)) -> (&'a Atom, &'a Atom),
>;

impl AtomMap {
    /// The empty map.
    pub fn new() -> AtomMap {
        AtomMap::default()
    }

    /// The pairs, in key order.
    pub fn iter(&self) -> Pairs<'_> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &Atom> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &Atom> {
        self.0.iter().map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn find(&self, key: &Atom) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.cmp(key))
    }

    /// The value of `key`.
    pub fn get(&self, key: &Atom) -> Option<&Atom> {
        self.find(key).ok().map(|at| &self.0[at].1)
    }

    /// The value of the string key `key` (without building an atom for it).
    pub fn get_str(&self, key: &str) -> Option<&Atom> {
        let at = self.0.binary_search_by(|(k, _)| match k {
            Atom::String(s) => s.as_str().cmp(key),
            other => other.cmp(&Atom::String(Text::default())),
        });
        at.ok().map(|at| &self.0[at].1)
    }

    pub fn contains_key(&self, key: &Atom) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`, returning the value it replaced.
    pub fn insert(&mut self, key: Atom, value: Atom) -> Option<Atom> {
        match self.find(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.0[at].1, value)),
            Err(at) => {
                let mut pairs = std::mem::take(&mut self.0).into_vec();
                pairs.reserve_exact(1);
                pairs.insert(at, (key, value));
                self.0 = pairs.into_boxed_slice();
                None
            }
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &Atom) -> Option<Atom> {
        let at = self.find(key).ok()?;
        let mut pairs = std::mem::take(&mut self.0).into_vec();
        let (_, value) = pairs.remove(at);
        self.0 = pairs.into_boxed_slice();
        Some(value)
    }

    /// Applies an update2 map diff: a key given with its current value is deleted, any other
    /// given key is set to the given value.
    pub fn apply_update2_diff(self, diff: AtomMap) -> AtomMap {
        let mut merged = self.0.into_vec();
        merged.extend(diff.0.into_vec());
        // Stable: for a key in both, the current pair comes first, the diff's second.
        merged.sort_by(|(a, _), (b, _)| a.cmp(b));
        let mut out = Vec::with_capacity(merged.len());
        let mut pairs = merged.into_iter().peekable();
        while let Some((key, value)) = pairs.next() {
            match pairs.next_if(|(k, _)| *k == key) {
                Some((_, new)) if new == value => {}
                Some((_, new)) => out.push((key, new)),
                None => out.push((key, value)),
            }
        }
        AtomMap(out.into_boxed_slice())
    }
}

impl fmt::Debug for AtomMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl FromIterator<(Atom, Atom)> for AtomMap {
    fn from_iter<I: IntoIterator<Item = (Atom, Atom)>>(iter: I) -> Self {
        let mut pairs: Vec<(Atom, Atom)> = iter.into_iter().collect();
        sort_keep_last(&mut pairs, |(a, _), (b, _)| a.cmp(b));
        AtomMap(pairs.into_boxed_slice())
    }
}

impl IntoIterator for AtomMap {
    type Item = (Atom, Atom);
    type IntoIter = std::vec::IntoIter<(Atom, Atom)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_vec().into_iter()
    }
}

impl<'a> IntoIterator for &'a AtomMap {
    type Item = (&'a Atom, &'a Atom);
    type IntoIter = Pairs<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    fn atoms() -> Vec<Atom> {
        vec![
            Atom::from("b"),
            Atom::Integer(3),
            Atom::from("a"),
            Atom::from("b"),
            Atom::Boolean(true),
            Atom::Real(-0.0),
            Atom::Real(0.0),
            Atom::Integer(-1),
        ]
    }

    #[test]
    fn sets_collect_and_change_like_btreeset() {
        let mut tree: BTreeSet<Atom> = atoms().into_iter().collect();
        let mut set: AtomSet = atoms().into_iter().collect();
        assert!(set.iter().eq(tree.iter()));
        assert_eq!(format!("{set:?}"), format!("{tree:?}"));
        for a in [
            Atom::from("c"),
            Atom::from("a"),
            Atom::Integer(3),
            Atom::Integer(7),
        ] {
            assert_eq!(set.insert(a.clone()), tree.insert(a.clone()));
            assert_eq!(set.remove(&Atom::from("b")), tree.remove(&Atom::from("b")));
            assert!(set.iter().eq(tree.iter()));
        }
        let one: AtomSet = [Atom::from("x"), Atom::from("x")].into_iter().collect();
        assert_eq!(one, AtomSet::one(Atom::from("x")));
        let mut emptied = one.clone();
        assert!(emptied.remove(&Atom::from("x")));
        assert_eq!(emptied, AtomSet::new());
        let tree_one = BTreeSet::from([Atom::from("x")]);
        assert_eq!(one.cmp(&set), tree_one.cmp(&tree));
        assert_eq!(AtomSet::new().cmp(&one), BTreeSet::new().cmp(&tree_one));
    }

    #[test]
    fn set_toggle_is_symmetric_difference() {
        let cur: AtomSet = ["a", "b", "c"].map(Atom::from).into_iter().collect();
        let diff: AtomSet = ["b", "d"].map(Atom::from).into_iter().collect();
        let want: AtomSet = ["a", "c", "d"].map(Atom::from).into_iter().collect();
        assert_eq!(cur.symmetric_difference(diff), want);
    }

    #[test]
    fn maps_collect_and_change_like_btreemap() {
        let pairs = || {
            atoms()
                .into_iter()
                .zip(["1", "2", "3", "4", "5", "6", "7", "8"].map(Atom::from))
        };
        let mut tree: BTreeMap<Atom, Atom> = pairs().collect();
        let mut map: AtomMap = pairs().collect();
        assert!(map.iter().eq(tree.iter()));
        assert_eq!(map.get(&Atom::from("b")), Some(&Atom::from("4")));
        assert_eq!(map.get_str("b"), Some(&Atom::from("4")));
        assert_eq!(map.get_str("z"), None);
        assert_eq!(format!("{map:?}"), format!("{tree:?}"));
        let (k, v) = (Atom::from("a"), Atom::from("9"));
        assert_eq!(
            map.insert(k.clone(), v.clone()),
            tree.insert(k.clone(), v.clone())
        );
        assert_eq!(
            map.insert(Atom::from("n"), v.clone()),
            tree.insert(Atom::from("n"), v)
        );
        assert_eq!(map.remove(&k), tree.remove(&k));
        assert_eq!(map.remove(&k), tree.remove(&k));
        assert!(map.iter().eq(tree.iter()));
    }

    #[test]
    fn map_update2_diff_deletes_same_value_and_sets_others() {
        let m = |pairs: &[(&str, &str)]| -> AtomMap {
            pairs.iter().map(|&(k, v)| (k.into(), v.into())).collect()
        };
        let cur = m(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let diff = m(&[("a", "1"), ("b", "9"), ("d", "4")]);
        assert_eq!(
            cur.apply_update2_diff(diff),
            m(&[("b", "9"), ("c", "3"), ("d", "4")])
        );
    }
}
