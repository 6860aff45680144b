//! The errors of the client API.

use std::time::Duration;

use crate::connection::{CallError, Connection};
use crate::ops::TransactError;

/// An error of a [`crate::Client`] call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid remote {remote:?}: {reason}")]
    InvalidRemote { remote: String, reason: String },
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("connecting to {remote}: {reason}")]
    Connect { remote: String, reason: String },
    /// No usable connection to the database within the wait; nothing was sent.
    #[error(
        "not connected to database {database} within {waited:?} (last failure: {last_failure})"
    )]
    NotConnected {
        database: String,
        waited: Duration,
        last_failure: String,
    },
    /// The connection dropped after the request was written: it may or may not have committed.
    #[error("connection to {remote} lost with {method} in flight: outcome unknown ({reason})")]
    OutcomeUnknown {
        remote: String,
        method: String,
        reason: String,
    },
    /// The server answered a request with an error object.
    #[error("{method} on {remote} failed: {error}")]
    Rpc {
        remote: String,
        method: String,
        error: String,
    },
    /// One operation of a transaction failed; nothing was committed.
    #[error("transaction on {database} failed at operation {index} ({table}): {error}")]
    Transact {
        database: String,
        index: usize,
        table: String,
        error: TransactError,
    },
    #[error("table {table} is not in the {database} schema")]
    UnknownTable { database: String, table: String },
    #[error("column {table}.{column} is not in the {database} schema")]
    UnknownColumn {
        database: String,
        table: String,
        column: String,
    },
    #[error("protocol error from {remote}: {reason}")]
    Protocol { remote: String, reason: String },
    #[error("the client for {database} was shut down")]
    Closed { database: String },
}

impl Error {
    /// The error of a request on `conn` that got no result.
    pub(crate) fn from_call(conn: &Connection, method: &str, e: CallError) -> Error {
        let remote = conn.remote().to_owned();
        let method = method.to_owned();
        match e {
            CallError::NotSent(reason) | CallError::Lost(reason) => Error::OutcomeUnknown {
                remote,
                method,
                reason,
            },
            CallError::Server(error) => Error::Rpc {
                remote,
                method,
                error: error.to_string(),
            },
        }
    }

    /// True when sending the same request again may succeed (after a reconnect or a leader change).
    /// For [`Error::OutcomeUnknown`] the caller must make the retry idempotent (e.g. `wait` guards).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::NotConnected { .. } | Error::OutcomeUnknown { .. } => true,
            Error::Transact { error, .. } => error.is_retryable(),
            _ => false,
        }
    }
}
