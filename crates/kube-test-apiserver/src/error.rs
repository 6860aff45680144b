//! API errors, answered to clients as `Status` objects with the matching HTTP code.

use serde_json::{json, Value};

/// An error answered to the client; its message names the object and the reason.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Kubernetes `StatusReason` (`NotFound`, `Conflict`, ...).
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// The object concerned, boxed to keep `Result<_, ApiError>` small.
    details: Option<Box<Details>>,
}

/// The object an error is about, and for 422 the invalid field.
#[derive(Debug, Clone)]
struct Details {
    name: String,
    /// Resource plural or kind.
    kind: String,
    /// The invalid field and what is wrong with it (kubectl prints these causes).
    cause: Option<(String, String)>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String) -> Self {
        Self {
            code,
            reason,
            message,
            details: None,
        }
    }

    fn about(mut self, resource: &str, name: &str) -> Self {
        self.details = Some(Box::new(Details {
            name: name.to_string(),
            kind: resource.to_string(),
            cause: None,
        }));
        self
    }

    /// 404: the named object does not exist.
    pub fn not_found(resource: &str, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{resource} \"{name}\" not found")).about(resource, name)
    }

    /// 409: an object with that name already exists.
    pub fn already_exists(resource: &str, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{resource} \"{name}\" already exists"),
        )
        .about(resource, name)
    }

    /// 409: the update was based on a stale resourceVersion.
    pub fn conflict(resource: &str, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been \
                 modified; please apply your changes to the latest version and try again"
            ),
        )
        .about(resource, name)
    }

    /// 422: the object is invalid (a taken IP or port, an immutable field, a missing name);
    /// `why` reads `field: what is wrong`, as Kubernetes field errors do.
    pub fn invalid(kind: &str, name: &str, why: impl std::fmt::Display) -> Self {
        let why = why.to_string();
        let mut err = Self::new(
            422,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: {why}"),
        )
        .about(kind, name);
        if let (Some(details), Some((field, message))) = (&mut err.details, why.split_once(": ")) {
            details.cause = Some((field.to_string(), message.to_string()));
        }
        err
    }

    /// 400: the request itself is malformed.
    pub fn bad_request(why: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", why.into())
    }

    /// 410: the requested resourceVersion is older than the retained history.
    pub fn gone(why: impl Into<String>) -> Self {
        Self::new(410, "Expired", why.into())
    }

    /// 404 for a path that names no served resource.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    /// 405: the verb is not served on this path.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("{method} is not supported on {path}"),
        )
    }

    /// 415: the body's Content-Type is not understood.
    pub fn unsupported_media(why: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", why.into())
    }

    /// The `Status` object describing this error.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = json!({"name": details.name, "kind": details.kind});
            if let Some((field, message)) = &details.cause {
                status["details"]["causes"] =
                    json!([{"reason": "FieldValueInvalid", "field": field, "message": message}]);
            }
        }
        status
    }
}
