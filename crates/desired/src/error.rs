//! The error reported for a Kubernetes object the desired layer has to skip.

use std::fmt;

/// An object that produced no rows, with the reason. The rest of the cluster is still produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ObjectError {
    /// The object's kind (`Node`, `Pod`, `Service`, `EndpointSlice`).
    pub kind: &'static str,
    /// `name` or `namespace/name`.
    pub name: String,
    /// Why it was skipped.
    pub reason: String,
}

impl ObjectError {
    /// An error about the object `kind` named `name`.
    pub fn new(kind: &'static str, name: impl Into<String>, reason: impl Into<String>) -> Self {
        ObjectError {
            kind,
            name: name.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.kind, self.name, self.reason)
    }
}
