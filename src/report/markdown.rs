//! Markdown rendering of any report [`Document`]: GitHub-flavoured tables
//! (cells cut to one line), fenced code blocks; charts are left out (their
//! data is the table that follows them).

use super::document::{Block, Document};
use super::{truncate, RunReport};
use std::fmt::Write as _;

/// Longest text put in a table cell.
const CELL: usize = 120;

/// A Markdown document.
#[derive(Debug, Default)]
pub struct Doc {
    out: String,
}

impl Doc {
    /// A heading of `level` (1-6).
    pub fn heading(&mut self, level: usize, text: &str) {
        let _ = writeln!(self.out, "{} {}\n", "#".repeat(level.clamp(1, 6)), text);
    }

    /// A paragraph.
    pub fn para(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}\n");
    }

    /// A table; cells are escaped for Markdown tables.
    pub fn table(&mut self, headers: &[&str], rows: &[Vec<String>]) {
        let _ = writeln!(self.out, "| {} |", headers.join(" | "));
        let _ = writeln!(
            self.out,
            "|{}",
            headers.iter().map(|_| " --- |").collect::<String>()
        );
        for row in rows {
            let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
            let _ = writeln!(self.out, "| {} |", cells.join(" | "));
        }
        self.out.push('\n');
    }

    /// A fenced code block.
    pub fn code(&mut self, lang: &str, text: &str) {
        // A fence longer than any backtick run in the text cannot be closed by it.
        let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        let fence = "`".repeat(longest.max(2) + 1);
        let _ = writeln!(self.out, "{fence}{lang}\n{text}\n{fence}\n");
    }

    /// The document's text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// A table cell: one line, pipes escaped, cut to [`CELL`] characters.
pub fn cell(s: &str) -> String {
    truncate(&s.replace(['\n', '\r'], " "), CELL).replace('|', "\\|")
}

/// Renders a document.
pub fn render(doc: &Document) -> String {
    let mut d = Doc::default();
    d.heading(1, &doc.title);
    if !doc.summary.is_empty() {
        let rows: Vec<Vec<String>> = doc
            .summary
            .iter()
            .map(|(k, v)| vec![k.clone(), v.clone()])
            .collect();
        d.table(&["", ""], &rows);
    }
    for section in &doc.sections {
        d.heading(2, &section.title);
        for block in &section.blocks {
            match block {
                Block::Para(t) => d.para(t),
                Block::Subheading(t) => d.heading(3, t),
                Block::Facts { rows, .. } => {
                    let rows: Vec<Vec<String>> = rows
                        .iter()
                        .map(|(k, v)| vec![k.clone(), v.clone()])
                        .collect();
                    d.table(&["", ""], &rows);
                }
                Block::Table(t) => {
                    let headers: Vec<&str> = t.headers.iter().map(String::as_str).collect();
                    let rows: Vec<Vec<String>> = t
                        .rows
                        .iter()
                        .map(|r| r.cells.iter().map(|c| c.text().to_string()).collect())
                        .collect();
                    d.table(&headers, &rows);
                }
                Block::Code { lang, text } => d.code(lang, text),
                Block::Chart { .. } => {}
            }
        }
    }
    d.finish()
}

/// The Markdown report of a run.
pub fn run_report(r: &RunReport) -> String {
    render(&super::document::run_document(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_cells_are_one_line_with_pipes_escaped() {
        let mut d = Doc::default();
        d.table(&["a"], &[vec!["x | y\nz".into()]]);
        assert!(d.finish().contains("| x \\| y z |"));
    }

    #[test]
    fn a_code_block_is_not_closed_by_backticks_in_its_text() {
        let mut d = Doc::default();
        d.code("", "a ``` b");
        let out = d.finish();
        assert!(out.starts_with("````\n"), "{out}");
    }
}
