//! [`Text`]: the string of a string atom, kept inline when it is short.
//!
//! Most strings in OVN rows are short: `external_ids` keys and values, option names, names of
//! pods, nodes and namespaces, MAC addresses. A heap block for each (32 bytes at least with
//! glibc's malloc) was most of a row's memory; inline they cost nothing beyond the atom, which
//! stays 24 bytes (the inline form uses the space a `Box<str>` and the atom's tag take).

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// Longest string kept inline.
const INLINE: usize = 22;

/// An immutable string: up to 22 bytes inline, longer ones in one heap block.
#[derive(Clone)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    /// `bytes[..len]` is the string.
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    Heap(Box<str>),
}

impl Text {
    /// The string.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes } => {
                // SAFETY: the bytes were copied whole from a `&str` (see `From<&str>`), so they
                // are UTF-8 and end at a character boundary.
                unsafe { std::str::from_utf8_unchecked(&bytes[..*len as usize]) }
            }
            Repr::Heap(s) => s,
        }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        if s.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Text(Repr::Inline {
                len: s.len() as u8,
                bytes,
            })
        } else {
            Text(Repr::Heap(s.into()))
        }
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        if s.len() <= INLINE {
            Text::from(s.as_str())
        } else {
            Text(Repr::Heap(s.into_boxed_str()))
        }
    }
}

impl From<Box<str>> for Text {
    fn from(s: Box<str>) -> Text {
        if s.len() <= INLINE {
            Text::from(&*s)
        } else {
            Text(Repr::Heap(s))
        }
    }
}

impl Default for Text {
    fn default() -> Text {
        Text::from("")
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Hashes and compares as the `str` it holds, so maps keyed by `Text` are looked up by `&str`.
impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for Text {}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Text) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Text {
    fn cmp(&self, other: &Text) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Atom;

    #[test]
    fn short_and_long_strings_read_back_and_compare_alike() {
        let cases = [
            "",
            "pod",
            "k8s.ovn.org/owner",
            "0123456789abcdef012345",  // 22 bytes: the longest inline
            "0123456789abcdef0123456", // 23: on the heap
            "0a:58:0a:80:00:05 10.128.0.5",
            "né→ü",
        ];
        for s in cases {
            for text in [
                Text::from(s),
                Text::from(s.to_owned()),
                Text::from(Box::from(s)),
            ] {
                assert_eq!(text.as_str(), s);
                assert_eq!(text, Text::from(s));
                assert_eq!(format!("{text}"), s);
            }
        }
        let mut sorted: Vec<Text> = cases.iter().map(|s| Text::from(*s)).collect();
        sorted.sort();
        let mut expected = cases.to_vec();
        expected.sort();
        assert_eq!(
            sorted.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            expected
        );
        let set: std::collections::HashSet<Text> = sorted.into_iter().collect();
        assert!(set.contains("k8s.ovn.org/owner"));
    }

    #[test]
    fn an_atom_stays_24_bytes() {
        assert_eq!(std::mem::size_of::<Atom>(), 24);
    }
}
