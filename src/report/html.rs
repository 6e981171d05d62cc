//! HTML rendering: one self-contained file per report (inline CSS, the
//! vendored Chart.js inlined, no network; a content security policy forbids
//! any fetch). [`Page`] is the page shell and its helpers (escaped tables
//! with scoped headers, key-value lists, preformatted blocks, charts fed by
//! inline JSON); [`render`] lays out any report [`Document`] on it, so a
//! new report kind only builds a Document.

use super::document::{Block, Cell, Document, Table};
use super::RunReport;
use serde::Serialize;
use std::fmt::Write as _;

/// Chart.js 4 (MIT), vendored unchanged in `assets/vendor/chartjs/`.
const CHART_JS: &str = include_str!("../../assets/vendor/chartjs/chart.umd.min.js");

/// Nothing may be loaded from anywhere: the page is the file.
const CSP: &str =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:";

const CSS: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2430;background:#fff}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 16px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
h3{font-size:15px;margin:20px 0 6px}
table{border-collapse:collapse;margin:8px 0 16px;width:100%}
caption{text-align:left;color:#5a6474;padding:4px 0;font-size:13px}
th,td{border:1px solid #dde2ea;padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:#f3f5f9}tbody th{background:#fafbfc;font-weight:600;width:22%}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.win td.outcome{color:#116b2e;font-weight:600}tr.loss td.outcome{color:#a12a2a;font-weight:600}
pre{background:#f6f8fa;border:1px solid #dde2ea;padding:8px;overflow:auto;white-space:pre-wrap;word-break:break-word}
.chart{position:relative;height:320px;margin:8px 0 16px}
.muted{color:#5a6474}
";

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON safe inside a `<script>` element: every `<` becomes `\u003c` (a
/// `<` can only stand inside a JSON string, where the escape means the same),
/// so neither `</script>` nor `<!--` can end or confuse the element; U+2028
/// and U+2029 are escaped for older JavaScript parsers.
pub fn script_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| "null".into())
        .replace('<', "\\u003c")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// An HTML page being built: sections go into `body`; charts queue their
/// setup code, run once Chart.js is loaded at the end of the page.
pub struct Page {
    title: String,
    body: String,
    charts: String,
}

impl Page {
    /// An empty page with a title (also the `<h1>`).
    pub fn new(title: &str) -> Self {
        let mut body = String::new();
        let _ = writeln!(body, "<h1>{}</h1>", esc(title));
        Page {
            title: title.to_string(),
            body,
            charts: String::new(),
        }
    }

    /// A section heading (`level` 2 to 6), with an id for linking unless `id` is empty.
    pub fn heading(&mut self, level: u8, id: &str, text: &str) {
        let l = level.clamp(2, 6);
        if id.is_empty() {
            let _ = writeln!(self.body, "<h{l}>{}</h{l}>", esc(text));
        } else {
            let _ = writeln!(self.body, "<h{l} id=\"{}\">{}</h{l}>", esc(id), esc(text));
        }
    }

    /// A paragraph of text.
    pub fn para(&mut self, text: &str) {
        let _ = writeln!(self.body, "<p>{}</p>", esc(text));
    }

    /// A preformatted block.
    pub fn pre(&mut self, text: &str) {
        let _ = writeln!(self.body, "<pre>{}</pre>", esc(text));
    }

    /// Rows of label → value, labels as row headers.
    pub fn facts(&mut self, caption: &str, rows: &[(String, String)]) {
        let _ = write!(
            self.body,
            "<table><caption>{}</caption><tbody>",
            esc(caption)
        );
        for (k, v) in rows {
            let _ = write!(
                self.body,
                "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                esc(k),
                esc(v)
            );
        }
        self.body.push_str("</tbody></table>\n");
    }

    /// A data table: column headers scoped for screen readers, each row
    /// with its class (if any), every cell escaped.
    pub fn table(&mut self, t: &Table) {
        let _ = write!(
            self.body,
            "<table><caption>{}</caption><thead><tr>",
            esc(&t.caption)
        );
        for h in &t.headers {
            let _ = write!(self.body, "<th scope=\"col\">{}</th>", esc(h));
        }
        self.body.push_str("</tr></thead><tbody>");
        for row in &t.rows {
            match &row.class {
                Some(c) => {
                    let _ = write!(self.body, "<tr class=\"{}\">", esc(c));
                }
                None => self.body.push_str("<tr>"),
            }
            for c in &row.cells {
                let _ = match c {
                    Cell::Text(t) => write!(self.body, "<td>{}</td>", esc(t)),
                    Cell::Num(t) => write!(self.body, "<td class=\"num\">{}</td>", esc(t)),
                    Cell::Tagged(k, t) => {
                        write!(self.body, "<td class=\"{}\">{}</td>", esc(k), esc(t))
                    }
                };
            }
            self.body.push_str("</tr>");
        }
        self.body.push_str("</tbody></table>\n");
    }

    /// A Chart.js chart: `config` is the chart configuration (serialized as
    /// inline JSON, so every string in it stays data); `label` describes the
    /// chart for screen readers.
    pub fn chart<T: Serialize>(&mut self, id: &str, label: &str, config: &T) {
        let _ = writeln!(
            self.body,
            "<div class=\"chart\"><canvas id=\"{}\" role=\"img\" aria-label=\"{}\"></canvas></div>",
            esc(id),
            esc(label)
        );
        let _ = writeln!(
            self.charts,
            "new Chart(document.getElementById({}), {});",
            script_json(&id),
            script_json(config)
        );
    }

    /// The whole document.
    pub fn finish(self) -> String {
        let mut out = String::with_capacity(self.body.len() + CHART_JS.len() + 4096);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n{}</main>\n",
            esc(&self.title),
            self.body
        );
        if !self.charts.is_empty() {
            let _ = write!(
                out,
                "<script>{CHART_JS}</script>\n<script>\n{}</script>\n",
                self.charts
            );
        }
        out.push_str("</body>\n</html>\n");
        out
    }
}

/// Renders a document as one self-contained page.
pub fn render(doc: &Document) -> String {
    let mut page = Page::new(&doc.title);
    if !doc.summary.is_empty() {
        page.facts("Summary", &doc.summary);
    }
    for section in &doc.sections {
        page.heading(2, &section.id, &section.title);
        for block in &section.blocks {
            match block {
                Block::Para(t) => page.para(t),
                Block::Subheading(t) => page.heading(3, "", t),
                Block::Facts { caption, rows } => page.facts(caption, rows),
                Block::Table(t) => page.table(t),
                Block::Code { text, .. } => page.pre(text),
                Block::Chart { id, label, config } => page.chart(id, label, config),
            }
        }
    }
    page.finish()
}

/// The HTML report of a run.
pub fn run_report(r: &RunReport) -> String {
    render(&super::document::run_document(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_data_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn inline_json_cannot_close_its_script_element() {
        let s =
            script_json(&serde_json::json!({"label": "</script><script>alert(1)</script><!--"}));
        assert!(!s.contains("</"), "{s}");
        assert!(!s.contains("<!--"), "{s}");
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back["label"], "</script><script>alert(1)</script><!--");
    }

    #[test]
    fn tables_have_scoped_headers_and_escaped_cells() {
        let mut p = Page::new("t");
        let mut t = Table::new("cap", &["a", "b"]);
        t.push(vec![Cell::Text("<b>".into()), Cell::Num("1".into())]);
        p.table(&t);
        let html = p.finish();
        assert!(html.contains("<th scope=\"col\">a</th>"));
        assert!(html.contains("<td>&lt;b&gt;</td>"));
        // No chart: Chart.js is not inlined.
        assert!(!html.contains("Chart.js v4"));
    }

    #[test]
    fn a_page_with_a_chart_inlines_chart_js_and_loads_nothing() {
        let mut p = Page::new("t");
        p.chart("c", "label", &serde_json::json!({"type": "line"}));
        let html = p.finish();
        assert!(html.contains("Chart.js v4"));
        assert!(html.contains("new Chart(document.getElementById(\"c\")"));
        assert!(!html.contains("src=\"http"), "no external scripts");
        assert!(html.contains("default-src 'none'"));
    }
}
