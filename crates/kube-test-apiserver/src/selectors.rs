//! Label selectors and field selectors as Kubernetes parses them from query strings.

use serde_json::Value;

/// A selector that could not be parsed; the message names the offending text.
#[derive(Debug, thiserror::Error)]
#[error("invalid selector {selector:?}: {reason}")]
pub struct SelectorError {
    selector: String,
    reason: String,
}

fn invalid(selector: &str, reason: impl Into<String>) -> SelectorError {
    SelectorError {
        selector: selector.to_string(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// Splits on commas that are not inside parentheses (`a in (x,y),b`).
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn parse_set(selector: &str, text: &str) -> Result<Vec<String>, SelectorError> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| invalid(selector, "set must be in parentheses"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn parse_requirement(selector: &str, part: &str) -> Result<Requirement, SelectorError> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::NotExists(key.trim().to_string()));
    }
    if let Some((key, value)) = part.split_once("!=") {
        return Ok(Requirement::NotEquals(
            key.trim().into(),
            value.trim().into(),
        ));
    }
    if let Some((key, value)) = part.split_once("==") {
        return Ok(Requirement::Equals(key.trim().into(), value.trim().into()));
    }
    if let Some((key, value)) = part.split_once('=') {
        return Ok(Requirement::Equals(key.trim().into(), value.trim().into()));
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default().trim().to_string();
    let rest = words.next().unwrap_or_default().trim();
    if rest.is_empty() {
        return Ok(Requirement::Exists(key));
    }
    if let Some(set) = rest.strip_prefix("notin") {
        return Ok(Requirement::NotIn(key, parse_set(selector, set)?));
    }
    if let Some(set) = rest.strip_prefix("in") {
        return Ok(Requirement::In(key, parse_set(selector, set)?));
    }
    Err(invalid(selector, format!("unknown operator in {part:?}")))
}

fn requirement_matches(req: &Requirement, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
    match req {
        Requirement::Equals(k, v) => lookup(k).as_deref().unwrap_or("") == v,
        Requirement::NotEquals(k, v) => lookup(k).as_deref().unwrap_or("") != v,
        Requirement::In(k, set) => lookup(k).is_some_and(|v| set.contains(&v)),
        Requirement::NotIn(k, set) => lookup(k).is_none_or(|v| !set.contains(&v)),
        Requirement::Exists(k) => lookup(k).is_some(),
        Requirement::NotExists(k) => lookup(k).is_none(),
    }
}

/// A label selector (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`), all requirements ANDed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        split_top_level(selector)
            .into_iter()
            .map(|part| parse_requirement(selector, part))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether the object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let lookup = |key: &str| labels.get(key).and_then(Value::as_str).map(str::to_string);
        self.0.iter().all(|req| requirement_matches(req, &lookup))
    }
}

/// A field selector (`path=value`, `path==value`, `path!=value`), all requirements ANDed.
/// Any dotted path into the object is accepted (`metadata.name`, `spec.nodeName`, `status.phase`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<Requirement>);

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        split_top_level(selector)
            .into_iter()
            .map(|part| match parse_requirement(selector, part)? {
                req @ (Requirement::Equals(..) | Requirement::NotEquals(..)) => Ok(req),
                _ => Err(invalid(
                    selector,
                    format!("{part:?} is not an (in)equality"),
                )),
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether the object's fields satisfy every requirement (a missing field reads as "").
    pub fn matches(&self, object: &Value) -> bool {
        let lookup = |path: &str| field_value(object, path);
        self.0.iter().all(|req| requirement_matches(req, &lookup))
    }
}

fn field_value(object: &Value, path: &str) -> Option<String> {
    let value = path
        .split('.')
        .try_fold(object, |v, segment| v.get(segment))?;
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// A label and a field selector together, as given on a list or watch.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    /// Requirements on labels.
    pub labels: LabelSelector,
    /// Requirements on fields.
    pub fields: FieldSelector,
}

impl Selectors {
    /// Whether the object satisfies both selectors.
    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "web-1", "namespace": "prod", "labels": {"app": "web", "tier": "front"}},
            "spec": {"nodeName": "node-a"},
            "status": {"phase": "Running"},
        })
    }

    #[test]
    fn label_operators() {
        let cases = [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app!=db", true),
            ("app in (web, db)", true),
            ("app notin (web,db)", false),
            ("tier notin (back)", true),
            ("missing notin (x)", true),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("app=web,tier in (front),!missing", true),
            ("app=web,tier=back", false),
            ("", true),
        ];
        for (selector, expected) in cases {
            let parsed = LabelSelector::parse(selector).unwrap();
            assert_eq!(parsed.matches(&pod()), expected, "{selector}");
        }
    }

    #[test]
    fn field_paths() {
        let cases = [
            ("metadata.name=web-1", true),
            ("metadata.namespace==prod", true),
            ("spec.nodeName=node-b", false),
            ("spec.nodeName!=node-b,status.phase=Running", true),
            ("status.phase!=Running", false),
            ("spec.missing=", true),
        ];
        for (selector, expected) in cases {
            let parsed = FieldSelector::parse(selector).unwrap();
            assert_eq!(parsed.matches(&pod()), expected, "{selector}");
        }
    }

    #[test]
    fn malformed_selectors_are_rejected() {
        assert!(LabelSelector::parse("app in web").is_err());
        assert!(LabelSelector::parse("app ~ web").is_err());
        assert!(FieldSelector::parse("metadata.name").is_err());
    }
}
