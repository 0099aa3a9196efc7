//! `-d`: requests written as JSON, inline or read from a file or standard
//! input, one message or several one after another ([`Data`]).

use std::fmt;

use serde::de::DeserializeOwned;

use super::error::Error;
use super::source::{Source, read_text};

/// Where `-d` takes its JSON from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// The JSON itself, written on the command line.
    Inline(String),
    /// `@FILE`, or `@-` for standard input.
    From(Source),
}

impl Data {
    /// Reads `-d`'s argument: `@-` is stdin, `@FILE` a file, anything else JSON.
    #[must_use]
    pub fn from_arg(arg: &str) -> Self {
        match arg.strip_prefix('@') {
            Some(file) => Self::From(Source::from_arg(Some(file.into()))),
            None => Self::Inline(arg.to_owned()),
        }
    }

    /// Every JSON message the data holds, one after another (whitespace or
    /// nothing between them), as grpcurl reads `-d` for streaming calls.
    ///
    /// # Errors
    /// When the data cannot be read or a message does not parse as `T`; the
    /// message names the line and column.
    pub async fn messages<T: DeserializeOwned>(&self) -> Result<Vec<T>, Error> {
        let text = match self {
            Self::Inline(json) => json.clone(),
            Self::From(source) => read_text(source).await?,
        };
        let json_error = |err| Error::Json { what: self.to_string(), err };
        let mut parser = serde_json::Deserializer::from_str(&text);
        let mut messages = Vec::new();
        // `end` succeeds once only white space is left.
        while parser.end().is_err() {
            // The generated JSON impls skip unknown fields, as a server must;
            // here a field the message lacks is a typo to report, not drop.
            let mut unknown = None;
            let message =
                T::deserialize(serde_ignored::Deserializer::new(&mut parser, &mut |path: serde_ignored::Path<'_>| {
                    unknown.get_or_insert_with(|| path.to_string());
                }))
                .map_err(json_error)?;
            if let Some(field) = unknown {
                return Err(Error::UnknownField { what: self.to_string(), field });
            }
            messages.push(message);
        }
        Ok(messages)
    }

    /// The one JSON message of a unary call.
    ///
    /// # Errors
    /// As [`Data::messages`], and when the data holds no message or several.
    pub async fn message<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let mut messages = self.messages::<T>().await?;
        if messages.len() == 1 {
            return Ok(messages.remove(0));
        }
        Err(Error::NotOneMessage { what: self.to_string(), count: messages.len() })
    }
}

impl fmt::Display for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("the -d argument"),
            Self::From(source) => source.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::v1::{ClassifyRequest, SearchRequest};

    #[tokio::test]
    async fn json_data_holds_one_or_many_messages() {
        let data = Data::from_arg(r#"{"query":"Banana"}"#);
        let request: SearchRequest = data.message().await.expect("one message");
        assert_eq!(request.query, "Banana");

        let data = Data::from_arg(r#"{"queries":["a","banana"]} {"queries":[]}{}"#);
        let requests: Vec<ClassifyRequest> = data.messages().await.expect("three messages");
        let queries: Vec<Vec<String>> = requests.into_iter().map(|r| r.queries).collect();
        assert_eq!(queries, [vec!["a".to_owned(), "banana".to_owned()], vec![], vec![]]);
    }

    #[tokio::test]
    async fn bad_json_names_the_position() {
        let err = Data::from_arg("{\n  \"query\": Banana\n}").message::<SearchRequest>().await.expect_err("bad JSON");
        let message = err.to_string();
        assert!(message.starts_with("invalid JSON request in the -d argument: "), "{message}");
        assert!(message.ends_with("at line 2 column 12"), "{message}");

        let err = Data::from_arg(r#"{"qurey":"x"}"#).message::<SearchRequest>().await.expect_err("unknown field");
        assert!(err.to_string().contains("unknown field `qurey`"), "{err}");

        let err = Data::from_arg("{} {}").message::<SearchRequest>().await.expect_err("two messages");
        assert_eq!(err.to_string(), "the -d argument holds 2 JSON requests; this call takes exactly one");
    }

    proptest::proptest! {
        #[test]
        fn json_data_never_panics(text in "\\PC{0,40}") {
            // `@...` names a file (and `@-` standard input): inline JSON only.
            proptest::prop_assume!(!text.starts_with('@'));
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
            let _ = runtime.block_on(Data::from_arg(&text).messages::<ClassifyRequest>());
        }
    }
}
