//! Where input comes from: a file or standard input ([`Source`]), and a
//! whole source read as text ([`read_text`]).

use std::fmt;
use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::error::Error;

/// Where input comes from: a file, or standard input (`-` or no file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

impl Source {
    /// The source an optional FILE argument names; `-` is standard input.
    #[must_use]
    pub fn from_arg(file: Option<PathBuf>) -> Self {
        match file {
            Some(path) if path.as_os_str() != "-" => Self::File(path),
            _ => Self::Stdin,
        }
    }

    /// Opens the source for reading.
    pub(super) async fn open(&self) -> Result<Box<dyn AsyncRead + Send + Unpin>, Error> {
        match self {
            Self::Stdin => Ok(Box::new(tokio::io::stdin())),
            Self::File(path) => match tokio::fs::File::open(path).await {
                Ok(file) => Ok(Box::new(file)),
                Err(err) => Err(Error::Read { what: self.to_string(), err }),
            },
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stdin => f.write_str("standard input"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Reads a whole source as UTF-8 text.
///
/// # Errors
/// When it cannot be read or is not UTF-8.
pub async fn read_text(source: &Source) -> Result<String, Error> {
    let mut bytes = Vec::new();
    source.open().await?.read_to_end(&mut bytes).await.map_err(|err| Error::Read { what: source.to_string(), err })?;
    String::from_utf8(bytes)
        .map_err(|err| Error::TextNotUtf8 { what: source.to_string(), offset: err.utf8_error().valid_up_to() })
}
