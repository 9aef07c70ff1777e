//! One error type for the engine. The variants separate what the caller did
//! wrong (a bad request: the server answers 4xx) from faults of the model
//! files or of the machine.

use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The request cannot be applied as written (bad layer, token out of
    /// range, unknown operation...). The message says what to fix.
    #[error("{0}")]
    InvalidRequest(String),
    /// The model asked for is not something we can run.
    #[error("{0}")]
    Unsupported(String),
    /// A model (file, folder or Hub repo) that cannot be found.
    #[error("{0}")]
    NotFound(String),
    /// The model's own files are inconsistent or malformed.
    #[error("invalid model files: {0}")]
    Model(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Loading the model would take more memory than there is; the message
    /// gives both numbers. Nothing was loaded.
    #[error("{0}")]
    TooLarge(String),
    /// The request is within what the engine can do, but over a limit the
    /// caller set (tokens, memory, counts); the message gives the numbers
    /// and what to change.
    #[error("{0}")]
    OverLimit(String),
    /// The caller stopped the computation (its client went away).
    #[error("the run was cancelled")]
    Cancelled,
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl EngineError {
    /// True when the error was caused by what the client sent.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            EngineError::InvalidRequest(_) | EngineError::OverLimit(_)
        )
    }

    /// The same error, its message said of one part of a request ("prompt
    /// 2: ..."); errors without a message of their own stay as they are.
    pub fn within(self, part: &str) -> Self {
        use EngineError::*;
        match self {
            InvalidRequest(m) => InvalidRequest(format!("{part}: {m}")),
            Unsupported(m) => Unsupported(format!("{part}: {m}")),
            NotFound(m) => NotFound(format!("{part}: {m}")),
            OverLimit(m) => OverLimit(format!("{part}: {m}")),
            Template(m) => Template(format!("{part}: {m}")),
            Tokenizer(m) => Tokenizer(format!("{part}: {m}")),
            e => e,
        }
    }
}

impl From<tokenizers::Error> for EngineError {
    fn from(e: tokenizers::Error) -> Self {
        EngineError::Tokenizer(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, EngineError>;

/// Shorthand for an [`EngineError::InvalidRequest`].
#[macro_export]
macro_rules! invalid {
    ($($arg:tt)*) => { $crate::error::EngineError::InvalidRequest(format!($($arg)*)) };
}
