//! A flash message as a page shows it (Flask's `flash()`): its kind and its text.

use serde::Serialize;

/// One flash message as a page shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Flash {
    /// `error` or `info`: the second class of the element.
    pub kind: &'static str,
    pub text: String,
}

impl Flash {
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            kind: "error",
            text: text.into(),
        }
    }
    pub fn info(text: impl Into<String>) -> Self {
        Self {
            kind: "info",
            text: text.into(),
        }
    }
}
