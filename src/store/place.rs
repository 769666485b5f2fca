//! Where one session lives, in its store's own terms (a file, a key, a row): what
//! `sessions show` prints and what the page's session panel names. Each engine says it for its
//! own sessions (`crate::engines::Engine::place`).

/// The place of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The panel's message that names it, `panel-place-<engine>` in the locale files.
    pub message: &'static str,
    /// The message's `name` argument: a file name, a key, a row's id; empty when there is none.
    pub name: String,
    /// The message's `table` argument, where the engine has tables.
    pub table: String,
    /// For the operator: the whole place, full paths included.
    pub full: String,
}

impl Place {
    /// A place the panel names with `message` (`name` and `table` its arguments) and the
    /// operator with `full`.
    pub fn new(
        message: &'static str,
        name: impl Into<String>,
        table: impl Into<String>,
        full: impl Into<String>,
    ) -> Self {
        Self {
            message,
            name: name.into(),
            table: table.into(),
            full: full.into(),
        }
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.full)
    }
}
