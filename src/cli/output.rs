//! What the client prints: one human line per answer (the article's
//! `status=1`), or with `--json` one JSON line per response message in the
//! proto3 JSON mapping (pbjson), defaults included.

use std::io::{self, Write};

use serde::Serialize;

use super::bench::Report;
use super::soak::SoakReport;
use crate::pb::v1::{ClassifyResponse, CountResponse, ScanResponse, SearchResponse};

/// How responses are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `key=value` lines, one per answer.
    Text,
    /// One JSON document per response message, one per line.
    Json,
}

/// A response printer over any writer (stdout, or a buffer in tests).
#[derive(Debug)]
pub struct Output<W: Write> {
    out: W,
    format: Format,
}

impl<W: Write> Output<W> {
    /// A printer writing `format` to `out`.
    pub fn new(out: W, format: Format) -> Self {
        Self { out, format }
    }

    /// `status=1` or `{"status":1}`.
    ///
    /// # Errors
    /// When writing fails.
    pub fn search(&mut self, response: &SearchResponse) -> io::Result<()> {
        match self.format {
            Format::Text => writeln!(self.out, "status={}", response.status),
            Format::Json => self.json(response),
        }
    }

    /// One `status=N` line per query, in query order.
    ///
    /// # Errors
    /// When writing fails.
    pub fn classify(&mut self, response: &ClassifyResponse) -> io::Result<()> {
        match self.format {
            Format::Text => response.statuses.iter().try_for_each(|status| writeln!(self.out, "status={status}")),
            Format::Json => self.json(response),
        }
    }

    /// `queries=N matches=M`.
    ///
    /// # Errors
    /// When writing fails.
    pub fn count(&mut self, response: &CountResponse) -> io::Result<()> {
        match self.format {
            Format::Text => writeln!(self.out, "queries={} matches={}", response.queries, response.matches),
            Format::Json => self.json(response),
        }
    }

    /// One `line=L column=C offset=O` line per occurrence.
    ///
    /// # Errors
    /// When writing fails.
    pub fn scan(&mut self, response: &ScanResponse) -> io::Result<()> {
        match self.format {
            Format::Text => response
                .matches
                .iter()
                .try_for_each(|m| writeln!(self.out, "line={} column={} offset={}", m.line, m.column, m.offset)),
            Format::Json => self.json(response),
        }
    }

    /// A load test's report: the text summary, or one JSON document.
    ///
    /// # Errors
    /// When writing fails.
    pub fn report(&mut self, report: &Report) -> io::Result<()> {
        match self.format {
            Format::Text => write!(self.out, "{report}"),
            Format::Json => self.json(report),
        }
    }

    /// A soak's report: the text summary, or one JSON document.
    ///
    /// # Errors
    /// When writing fails.
    pub fn soak(&mut self, report: &SoakReport) -> io::Result<()> {
        match self.format {
            Format::Text => write!(self.out, "{report}"),
            Format::Json => self.json(report),
        }
    }

    /// Pushes what was printed so far to the reader: streaming answers show
    /// up as they arrive, not when a buffer fills.
    ///
    /// # Errors
    /// When writing fails.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn json(&mut self, message: &impl Serialize) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, message)?;
        self.out.write_all(b"\n")
    }

    /// The writer back (tests read what was printed).
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::v1::ScanMatch;

    fn printed(format: Format, print: impl FnOnce(&mut Output<Vec<u8>>) -> io::Result<()>) -> String {
        let mut output = Output::new(Vec::new(), format);
        print(&mut output).expect("writing to a Vec cannot fail");
        String::from_utf8(output.into_inner()).expect("output is UTF-8")
    }

    #[test]
    fn text_lines_match_the_article() {
        assert_eq!(printed(Format::Text, |o| o.search(&SearchResponse { status: 1 })), "status=1\n");
        assert_eq!(printed(Format::Text, |o| o.search(&SearchResponse { status: 0 })), "status=0\n");
        let classified = ClassifyResponse { first_index: 7, statuses: vec![1, 0, 1] };
        assert_eq!(printed(Format::Text, |o| o.classify(&classified)), "status=1\nstatus=0\nstatus=1\n");
        let counted = CountResponse { queries: 3, matches: 2 };
        assert_eq!(printed(Format::Text, |o| o.count(&counted)), "queries=3 matches=2\n");
        let scanned = ScanResponse { matches: vec![ScanMatch { line: 2, column: 5, offset: 11 }] };
        assert_eq!(printed(Format::Text, |o| o.scan(&scanned)), "line=2 column=5 offset=11\n");
    }

    #[test]
    fn json_lines_use_the_proto3_mapping_with_defaults() {
        assert_eq!(printed(Format::Json, |o| o.search(&SearchResponse { status: 0 })), "{\"status\":0}\n");
        let classified = ClassifyResponse { first_index: 0, statuses: vec![] };
        assert_eq!(printed(Format::Json, |o| o.classify(&classified)), "{\"firstIndex\":\"0\",\"statuses\":[]}\n");
        let counted = CountResponse { queries: 3, matches: 0 };
        assert_eq!(printed(Format::Json, |o| o.count(&counted)), "{\"queries\":\"3\",\"matches\":\"0\"}\n");
        let scanned = ScanResponse { matches: vec![ScanMatch { line: 1, column: 1, offset: 0 }] };
        assert_eq!(
            printed(Format::Json, |o| o.scan(&scanned)),
            "{\"matches\":[{\"line\":\"1\",\"column\":\"1\",\"offset\":\"0\"}]}\n"
        );
    }
}
