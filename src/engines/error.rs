//! [`EngineError`]: an engine's own failure (a connection, a command, a timeout) as the concerns
//! that do not know engines by name (accounts, login counters, session locks, start-up) carry
//! it, and [`engine_errors!`], with which an engine's folder lets `?` turn its error type into
//! it.

/// An engine's own failure, boxed: its message names the engine and what failed.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct EngineError(Box<dyn std::error::Error + Send + Sync>);

impl EngineError {
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(e.into())
    }
}

/// `From` an engine's error type into [`EngineError`] and into the accounts' and the login
/// counters' errors, so that `?` works in the engine's implementations of those concerns.
macro_rules! engine_errors {
    ($error:ty) => {
        impl From<$error> for $crate::engines::error::EngineError {
            fn from(e: $error) -> Self {
                Self::new(e)
            }
        }
        impl From<$error> for $crate::users::UserError {
            fn from(e: $error) -> Self {
                Self::Engine($crate::engines::error::EngineError::new(e))
            }
        }
        impl From<$error> for $crate::web::throttle::ThrottleError {
            fn from(e: $error) -> Self {
                Self::Engine($crate::engines::error::EngineError::new(e))
            }
        }
    };
}
pub(crate) use engine_errors;
