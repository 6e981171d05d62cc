//! Constrained decoding: a predictor's answer, as its adapter writes it,
//! compiled into a grammar the decoder is held to.
//!
//! [`compile`] reads the signature: the field labels, markers or JSON keys in
//! order; a `Literal[...]` as an alternation; a `list[...]` as a bounded list
//! (`none` when it may be empty); a field `pattern` such as
//! `{categories}/{kebab-case}`, where `{categories}` is one of a program
//! constant's items (the spec-level way to say "this field's prefix comes
//! from that constant"); the constraints `kebab-case`, `lowercase`,
//! `starts with 'X'` and a leading `N-M` (items of a list, or `N-M words` of
//! text); and free text with a length bound everywhere else.
//!
//! A [`Grammar`] renders as GBNF ([`Grammar::to_gbnf`]) for llama.cpp (the
//! local provider's grammar sampler, llama-server's `grammar` field), and
//! can also match ([`Grammar::matches`]) and generate ([`Grammar::sample`])
//! strings itself, so tests check it without a model.

use super::adapter::answer_fields;
use super::signature::{Field, FieldType};
use super::spec::{AdapterKind, PredictorSpec};
use rand::Rng;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// Longest free-text field, in characters, when no word bound is given.
const MAX_TEXT_CHARS: u32 = 400;
/// Longest word of a word-bounded text, and of a kebab-case segment.
const MAX_WORD_CHARS: u32 = 40;
/// Most items of a list without an `N-M` bound.
const MAX_LIST_ITEMS: u32 = 10;
/// Longest list item (free text), in characters.
const MAX_ITEM_CHARS: u32 = 60;

/// One piece of a grammar.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// This exact text.
    Lit(String),
    /// One character in the ranges, or (negated) in none of them.
    Class {
        ranges: Vec<(char, char)>,
        negated: bool,
    },
    Seq(Vec<Node>),
    /// One of these.
    Alt(Vec<Node>),
    /// `min..=max` times.
    Repeat {
        node: Box<Node>,
        min: u32,
        max: u32,
    },
}

impl Node {
    fn lit(s: impl Into<String>) -> Node {
        Node::Lit(s.into())
    }

    fn class(ranges: &[(char, char)]) -> Node {
        Node::Class {
            ranges: ranges.to_vec(),
            negated: false,
        }
    }

    fn repeat(node: Node, min: u32, max: u32) -> Node {
        Node::Repeat {
            node: Box::new(node),
            min,
            max: max.max(min),
        }
    }

    fn class_has(ranges: &[(char, char)], negated: bool, c: char) -> bool {
        ranges.iter().any(|&(a, b)| a <= c && c <= b) != negated
    }
}

/// A predictor's answer format. Built by [`compile`].
#[derive(Debug, Clone, PartialEq)]
pub struct Grammar {
    pub root: Node,
}

/// Why a spec cannot be compiled into a grammar.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GrammarError {
    #[error("field `{field}`: pattern `{pattern}`: {message}")]
    Pattern {
        field: String,
        pattern: String,
        message: String,
    },
}

/// Compiles predictor `p`'s answer, as adapter `kind` has the model write
/// it, into a grammar. `constants` are the program's resolved constants
/// (patterns draw their alternatives from them).
pub fn compile(
    kind: AdapterKind,
    p: &PredictorSpec,
    constants: &Map<String, Value>,
) -> Result<Grammar, GrammarError> {
    let fields = answer_fields(p);
    let json = kind == AdapterKind::Json;
    let mut values = Vec::with_capacity(fields.len());
    for f in &fields {
        values.push(field_value(f, constants, json)?);
    }
    let mut seq = Vec::new();
    match kind {
        AdapterKind::Completion => {
            // The prompt ends with the first label and its colon.
            for (i, (f, v)) in fields.iter().zip(values).enumerate() {
                if i == 0 {
                    seq.push(Node::lit(" "));
                } else {
                    seq.push(Node::lit(format!("{}: ", f.label())));
                }
                seq.push(v);
                seq.push(Node::lit("\n"));
            }
        }
        AdapterKind::Chat => {
            for (f, v) in fields.iter().zip(values) {
                seq.push(Node::lit(format!("[[ ## {} ## ]]\n", f.name)));
                seq.push(v);
                seq.push(Node::lit("\n\n"));
            }
            seq.push(Node::lit("[[ ## completed ## ]]"));
        }
        AdapterKind::Json => {
            seq.push(Node::lit("{"));
            for (i, (f, v)) in fields.iter().zip(values).enumerate() {
                let comma = if i == 0 { "" } else { "," };
                seq.push(Node::lit(format!("{comma}\"{}\":", f.name)));
                seq.push(v);
            }
            seq.push(Node::lit("}"));
        }
    }
    Ok(Grammar {
        root: Node::Seq(seq),
    })
}

/// Checks every `pattern` of a spec's predictors against its constants
/// (unknown placeholders), so a bad spec fails when it is loaded.
pub fn check_patterns(p: &PredictorSpec, constant_names: &[&str]) -> Result<(), GrammarError> {
    for f in &p.signature.outputs {
        if let Some(pattern) = &f.pattern {
            for part in pattern_parts(f, pattern)? {
                if let PatternPart::Slot(name) = part {
                    if !BUILTIN_SLOTS.contains(&name.as_str())
                        && !constant_names.contains(&name.as_str())
                    {
                        return Err(pattern_error(
                            f,
                            pattern,
                            format!(
                                "`{{{name}}}` is neither a constant of the program nor one of {}",
                                BUILTIN_SLOTS.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

const BUILTIN_SLOTS: &[&str] = &["kebab-case", "word", "text"];

enum PatternPart {
    Text(String),
    Slot(String),
}

fn pattern_error(f: &Field, pattern: &str, message: String) -> GrammarError {
    GrammarError::Pattern {
        field: f.name.clone(),
        pattern: pattern.to_string(),
        message,
    }
}

fn pattern_parts(f: &Field, pattern: &str) -> Result<Vec<PatternPart>, GrammarError> {
    let mut parts = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(PatternPart::Text(rest[..open].to_string()));
        }
        let Some(close) = rest[open..].find('}') else {
            return Err(pattern_error(f, pattern, "a `{` without its `}`".into()));
        };
        let name = rest[open + 1..open + close].trim();
        if name.is_empty() {
            return Err(pattern_error(f, pattern, "an empty `{}`".into()));
        }
        parts.push(PatternPart::Slot(name.to_string()));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        parts.push(PatternPart::Text(rest.to_string()));
    }
    if parts.is_empty() {
        return Err(pattern_error(f, pattern, "the pattern is empty".into()));
    }
    Ok(parts)
}

/// The items of a constant: an array's strings, or a comma-separated string.
fn constant_items(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Value::String(s) => s
            .split(',')
            .map(|i| i.trim().to_string())
            .filter(|i| !i.is_empty())
            .collect(),
        other => vec![other.to_string()],
    }
}

/// What the field's constraints say, read once.
#[derive(Debug, Default)]
pub(super) struct Rules {
    kebab: bool,
    lowercase: bool,
    starts_with: Option<String>,
    /// A leading `N-M`: items of a list, or words of a text ("15-35 words").
    bounds: Option<(u32, u32)>,
    words: bool,
}

pub(super) fn rules(f: &Field) -> Rules {
    let mut r = Rules::default();
    for c in &f.constraints {
        let lower = c.trim().to_lowercase();
        if lower == "kebab-case" || lower == "kebab case" {
            r.kebab = true;
        }
        if lower.split_whitespace().any(|w| w == "lowercase") {
            r.lowercase = true;
        }
        if lower.starts_with("starts with ") {
            let quoted = c.trim()["starts with ".len()..].trim();
            let inner = quoted.trim_matches(|ch| ch == '\'' || ch == '"' || ch == '`');
            if !inner.is_empty() {
                r.starts_with = Some(inner.to_string());
            }
        }
        if let Some((a, b, tail)) = leading_range(&lower) {
            r.bounds = Some((a, b));
            r.words = tail.split_whitespace().next() == Some("words");
        }
    }
    r
}

/// `"3-6 lowercase keywords"` -> (3, 6, "lowercase keywords").
fn leading_range(s: &str) -> Option<(u32, u32, &str)> {
    let digits = |t: &str| t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n = digits(s);
    let a: u32 = s[..n].parse().ok()?;
    let rest = s[n..].trim_start().strip_prefix('-')?.trim_start();
    let m = digits(rest);
    let b: u32 = rest[..m].parse().ok()?;
    (a <= b).then_some((a, b, rest[m..].trim_start()))
}

fn kebab() -> Node {
    let seg = || Node::repeat(Node::class(&[('a', 'z'), ('0', '9')]), 1, MAX_WORD_CHARS);
    Node::Seq(vec![
        seg(),
        Node::repeat(Node::Seq(vec![Node::lit("-"), seg()]), 0, 11),
    ])
}

/// Characters free text may use: not a newline (one value per line), in
/// JSON not a quote or backslash, nothing upper-case when `lowercase`.
fn text_char(json: bool, lowercase: bool, also_not: &str) -> Node {
    let mut excluded = String::from("\n");
    if json {
        excluded.push_str("\"\\");
    }
    excluded.push_str(also_not);
    let mut ranges: Vec<(char, char)> = excluded.chars().map(|c| (c, c)).collect();
    if lowercase {
        ranges.push(('A', 'Z'));
    }
    Node::Class {
        ranges,
        negated: true,
    }
}

/// Free text of a `str` field under its rules.
fn text(r: &Rules, json: bool) -> Node {
    let mut seq = Vec::new();
    let mut prefix_words = 0;
    if let Some(p) = &r.starts_with {
        seq.push(Node::lit(p.clone()));
        prefix_words = p.split_whitespace().count() as u32;
    }
    match r.bounds.filter(|_| r.words) {
        Some((a, b)) => {
            let word = Node::repeat(text_char(json, r.lowercase, " "), 1, MAX_WORD_CHARS);
            let (a, b) = (
                a.saturating_sub(prefix_words),
                b.saturating_sub(prefix_words),
            );
            if prefix_words == 0 {
                // The first word has no space before it.
                seq.push(word.clone());
                seq.push(Node::repeat(
                    Node::Seq(vec![Node::lit(" "), word]),
                    a.saturating_sub(1),
                    b.saturating_sub(1),
                ));
            } else {
                seq.push(Node::repeat(Node::Seq(vec![Node::lit(" "), word]), a, b));
            }
        }
        None => {
            let min = if seq.is_empty() { 1 } else { 0 };
            seq.push(Node::repeat(
                text_char(json, r.lowercase, ""),
                min,
                MAX_TEXT_CHARS,
            ));
        }
    }
    Node::Seq(seq)
}

fn quoted(node: Node, json: bool) -> Node {
    if json {
        Node::Seq(vec![Node::lit("\""), node, Node::lit("\"")])
    } else {
        node
    }
}

/// One scalar value of type `ty` (a list's item, or the whole field).
pub(super) fn scalar(
    f: &Field,
    ty: &FieldType,
    r: &Rules,
    constants: &Map<String, Value>,
    json: bool,
    in_list: bool,
) -> Result<Node, GrammarError> {
    Ok(match ty {
        FieldType::Literal(values) => quoted(
            Node::Alt(values.iter().map(|v| Node::lit(v.clone())).collect()),
            json,
        ),
        FieldType::Bool => Node::Alt(vec![Node::lit("true"), Node::lit("false")]),
        FieldType::Int => Node::Seq(vec![
            Node::repeat(Node::lit("-"), 0, 1),
            Node::repeat(Node::class(&[('0', '9')]), 1, 18),
        ]),
        FieldType::Float => Node::Seq(vec![
            Node::repeat(Node::lit("-"), 0, 1),
            Node::repeat(Node::class(&[('0', '9')]), 1, 15),
            Node::repeat(
                Node::Seq(vec![
                    Node::lit("."),
                    Node::repeat(Node::class(&[('0', '9')]), 1, 15),
                ]),
                0,
                1,
            ),
        ]),
        FieldType::List(inner) => scalar(f, inner, r, constants, json, true)?,
        FieldType::Str => {
            let node = if let Some(pattern) = &f.pattern {
                let mut seq = Vec::new();
                for part in pattern_parts(f, pattern)? {
                    seq.push(match part {
                        PatternPart::Text(t) => Node::lit(t),
                        PatternPart::Slot(name) => match name.as_str() {
                            "kebab-case" => kebab(),
                            "word" => {
                                Node::repeat(text_char(json, r.lowercase, " ,"), 1, MAX_WORD_CHARS)
                            }
                            "text" => {
                                Node::repeat(text_char(json, r.lowercase, ""), 1, MAX_TEXT_CHARS)
                            }
                            constant => {
                                let Some(v) = constants.get(constant) else {
                                    return Err(pattern_error(
                                        f,
                                        pattern,
                                        format!("no constant `{constant}` in the program"),
                                    ));
                                };
                                let items = constant_items(v);
                                if items.is_empty() {
                                    return Err(pattern_error(
                                        f,
                                        pattern,
                                        format!("constant `{constant}` has no items"),
                                    ));
                                }
                                Node::Alt(items.into_iter().map(Node::Lit).collect())
                            }
                        },
                    });
                }
                Node::Seq(seq)
            } else if r.kebab {
                kebab()
            } else if in_list {
                // A list item: no comma (it separates items), bounded.
                Node::repeat(
                    text_char(json, r.lowercase, if json { "" } else { "," }),
                    1,
                    MAX_ITEM_CHARS,
                )
            } else {
                text(r, json)
            };
            quoted(node, json)
        }
    })
}

/// How many items a list of `inner` may have: its `N-M` bound, else up to
/// every literal once (or [`MAX_LIST_ITEMS`] of free text).
pub(super) fn list_bounds(inner: &FieldType, r: &Rules) -> (u32, u32) {
    let literal_count = match inner {
        FieldType::Literal(v) => v.len() as u32,
        _ => MAX_LIST_ITEMS,
    };
    match r.bounds.filter(|_| !r.words) {
        Some((a, b)) => (a, b.min(MAX_LIST_ITEMS.max(a))),
        None => (0, literal_count),
    }
}

/// The value of field `f` as the adapter writes it.
fn field_value(
    f: &Field,
    constants: &Map<String, Value>,
    json: bool,
) -> Result<Node, GrammarError> {
    let r = rules(f);
    let FieldType::List(inner) = &f.ty else {
        return scalar(f, &f.ty, &r, constants, json, false);
    };
    let item = scalar(f, inner, &r, constants, json, true)?;
    let (min, max) = list_bounds(inner, &r);
    let sep = if json { "," } else { ", " };
    let items = |min: u32| {
        Node::Seq(vec![
            item.clone(),
            Node::repeat(
                Node::Seq(vec![Node::lit(sep), item.clone()]),
                min.saturating_sub(1),
                max.saturating_sub(1),
            ),
        ])
    };
    Ok(if json {
        let body = if min == 0 {
            Node::repeat(items(1), 0, 1)
        } else {
            items(min)
        };
        Node::Seq(vec![Node::lit("["), body, Node::lit("]")])
    } else if min == 0 {
        // Rendered lists are comma-separated; an empty one is `none`.
        Node::Alt(vec![Node::lit("none"), items(1)])
    } else {
        items(min)
    })
}

impl Grammar {
    /// The grammar in llama.cpp's GBNF, rule `root`.
    pub fn to_gbnf(&self) -> String {
        format!("root ::= {}\n", gbnf(&self.root))
    }

    /// Whether the whole of `s` is a sentence of the grammar.
    pub fn matches(&self, s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        ends(&self.root, &chars, &BTreeSet::from([0])).contains(&chars.len())
    }

    /// A random sentence of the grammar (repetitions kept short), for tests
    /// that stand in for a constrained decoder.
    pub fn sample(&self, rng: &mut impl Rng) -> String {
        let mut out = String::new();
        sample(&self.root, rng, &mut out);
        out
    }
}

fn gbnf_escape(c: char, in_class: bool) -> String {
    match c {
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        '\t' => "\\t".into(),
        '\\' => "\\\\".into(),
        '"' if !in_class => "\\\"".into(),
        ']' | '^' | '-' if in_class => format!("\\{c}"),
        c => c.to_string(),
    }
}

/// A character class, `[a-z]` or `[^\n]`, in the syntax GBNF and regular
/// expressions share; `escape(c, true)` escapes `c` inside a class.
pub(super) fn class(
    ranges: &[(char, char)],
    negated: bool,
    escape: impl Fn(char, bool) -> String,
) -> String {
    let body: String = ranges
        .iter()
        .map(|&(a, b)| {
            if a == b {
                escape(a, true)
            } else {
                format!("{}-{}", escape(a, true), escape(b, true))
            }
        })
        .collect();
    format!("[{}{body}]", if negated { "^" } else { "" })
}

fn gbnf(n: &Node) -> String {
    match n {
        Node::Lit(s) => format!(
            "\"{}\"",
            s.chars().map(|c| gbnf_escape(c, false)).collect::<String>()
        ),
        Node::Class { ranges, negated } => class(ranges, *negated, gbnf_escape),
        Node::Seq(items) => format!("({})", items.iter().map(gbnf).collect::<Vec<_>>().join(" ")),
        Node::Alt(items) => format!(
            "({})",
            items.iter().map(gbnf).collect::<Vec<_>>().join(" | ")
        ),
        Node::Repeat { node, min, max } => match (min, max) {
            (0, 1) => format!("{}?", gbnf(node)),
            _ => format!("{}{{{min},{max}}}", gbnf(node)),
        },
    }
}

/// Every position where `n` can end, starting from any of `starts`.
fn ends(n: &Node, s: &[char], starts: &BTreeSet<usize>) -> BTreeSet<usize> {
    match n {
        Node::Lit(lit) => {
            let lit: Vec<char> = lit.chars().collect();
            starts
                .iter()
                .filter(|&&i| s.len() >= i + lit.len() && s[i..i + lit.len()] == lit[..])
                .map(|&i| i + lit.len())
                .collect()
        }
        Node::Class { ranges, negated } => starts
            .iter()
            .filter(|&&i| i < s.len() && Node::class_has(ranges, *negated, s[i]))
            .map(|&i| i + 1)
            .collect(),
        Node::Seq(items) => {
            let mut cur = starts.clone();
            for item in items {
                if cur.is_empty() {
                    break;
                }
                cur = ends(item, s, &cur);
            }
            cur
        }
        Node::Alt(items) => items.iter().flat_map(|i| ends(i, s, starts)).collect(),
        Node::Repeat { node, min, max } => {
            let mut out = if *min == 0 {
                starts.clone()
            } else {
                BTreeSet::new()
            };
            let mut cur = starts.clone();
            for k in 1..=*max {
                cur = ends(node, s, &cur);
                if cur.is_empty() {
                    break;
                }
                if k >= *min {
                    out.extend(cur.iter().copied());
                }
            }
            out
        }
    }
}

/// Characters a negated class may be sampled from.
const SAMPLE_ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz0123456789 -.'ABCZ";

fn sample(n: &Node, rng: &mut impl Rng, out: &mut String) {
    match n {
        Node::Lit(s) => out.push_str(s),
        Node::Class { ranges, negated } => {
            let c = if *negated {
                let allowed: Vec<char> = SAMPLE_ALPHABET
                    .chars()
                    .filter(|&c| Node::class_has(ranges, true, c))
                    .collect();
                allowed[rng.gen_range(0..allowed.len())]
            } else {
                let (a, b) = ranges[rng.gen_range(0..ranges.len())];
                char::from_u32(rng.gen_range(a as u32..=b as u32)).unwrap_or(a)
            };
            out.push(c);
        }
        Node::Seq(items) => items.iter().for_each(|i| sample(i, rng, out)),
        Node::Alt(items) => sample(&items[rng.gen_range(0..items.len())], rng, out),
        Node::Repeat { node, min, max } => {
            let k = rng.gen_range(*min..=(*max).min(min + 6));
            for _ in 0..k {
                sample(node, rng, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::adapter::{parse, render_answer};
    use crate::program::ProgramSpec;
    use rand::SeedableRng;
    use std::path::Path;

    const ADAPTERS: [AdapterKind; 3] = [
        AdapterKind::Completion,
        AdapterKind::Chat,
        AdapterKind::Json,
    ];

    /// The bundled program, its resolved constants, and the gold outputs of
    /// every bundled example.
    fn bundled() -> (ProgramSpec, Map<String, Value>, Vec<Map<String, Value>>) {
        let config = crate::config::Config::load(Path::new("config/config.yaml"), false)
            .expect("bundled config");
        let taxonomy = config.taxonomy().expect("taxonomy");
        let spec = ProgramSpec::load(Path::new("config/programs/skill_understanding.yaml"))
            .expect("bundled program");
        let constants = spec.resolve_constants(&taxonomy.names());
        let trainset =
            crate::data::load_file(Path::new("config/training/trainset.json"), &taxonomy)
                .expect("bundled trainset");
        let golds = trainset
            .examples
            .iter()
            .map(|e| spec.example_io(&e.fields).1)
            .collect();
        (spec, constants, golds)
    }

    #[test]
    fn the_grammar_accepts_every_bundled_gold_answer_in_every_adapter() {
        let (spec, constants, golds) = bundled();
        let p = &spec.predictors[0];
        assert!(golds.len() > 50);
        for kind in ADAPTERS {
            let g = compile(kind, p, &constants).expect("compiles");
            for gold in &golds {
                let answer = render_answer(kind, p, gold);
                assert!(
                    g.matches(&answer),
                    "{kind:?} rejects gold answer {answer:?}"
                );
            }
        }
    }

    #[test]
    fn the_grammar_rejects_an_invented_category_an_unknown_style_and_a_missing_field() {
        let (spec, constants, golds) = bundled();
        let p = &spec.predictors[0];
        for kind in ADAPTERS {
            let g = compile(kind, p, &constants).expect("compiles");
            let gold = &golds[0];
            let with = |field: &str, v: Value| {
                let mut m = gold.clone();
                m.insert(field.into(), v);
                render_answer(kind, p, &m)
            };
            let invented = with("taxonomy_path", Value::from("asyncio/task-groups"));
            assert!(!g.matches(&invented), "{kind:?} accepts {invented:?}");
            let no_category = with("taxonomy_path", Value::from("dataclass-slots"));
            assert!(!g.matches(&no_category), "{kind:?} accepts {no_category:?}");
            let style = with("skill_style", Value::from("tutorial"));
            assert!(!g.matches(&style), "{kind:?} accepts {style:?}");
            let not_kebab = with("name", Value::from("Task Groups"));
            assert!(!g.matches(&not_kebab), "{kind:?} accepts {not_kebab:?}");
            let mut missing = gold.clone();
            missing.remove("keywords");
            let missing = render_answer(kind, p, &missing);
            assert!(!g.matches(&missing), "{kind:?} accepts {missing:?}");
        }
    }

    #[test]
    fn every_answer_the_grammar_can_generate_parses_with_a_category_from_the_taxonomy() {
        let (spec, constants, _) = bundled();
        let p = &spec.predictors[0];
        let categories = constant_items(&constants["categories"]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for kind in ADAPTERS {
            let g = compile(kind, p, &constants).expect("compiles");
            for _ in 0..300 {
                let answer = g.sample(&mut rng);
                assert!(
                    g.matches(&answer),
                    "{kind:?}: sample not matched: {answer:?}"
                );
                let parsed =
                    parse(kind, p, &answer).unwrap_or_else(|e| panic!("{kind:?}: {e}: {answer:?}"));
                let path = parsed["taxonomy_path"].as_str().unwrap_or_default();
                let category = path.split('/').next().unwrap_or_default();
                assert!(
                    categories.iter().any(|c| c == category),
                    "{kind:?}: category `{category}` of {answer:?}"
                );
            }
        }
    }

    #[test]
    fn gbnf_escapes_quotes_newlines_and_class_metacharacters() {
        let g = Grammar {
            root: Node::Seq(vec![
                Node::lit("say \"hi\"\n"),
                Node::Class {
                    ranges: vec![
                        ('\n', '\n'),
                        ('"', '"'),
                        ('\\', '\\'),
                        (']', ']'),
                        ('-', '-'),
                    ],
                    negated: true,
                },
                Node::repeat(Node::class(&[('a', 'z')]), 0, 1),
                Node::repeat(Node::class(&[('0', '9')]), 2, 4),
            ]),
        };
        assert_eq!(
            g.to_gbnf(),
            "root ::= (\"say \\\"hi\\\"\\n\" [^\\n\"\\\\\\]\\-] [a-z]? [0-9]{2,4})\n"
        );
    }

    #[test]
    fn constraints_bound_lists_and_words_and_fix_a_prefix() {
        let field = |ty: &str, constraints: &[&str]| Field {
            name: "f".into(),
            ty: FieldType::parse(ty).expect("type"),
            description: String::new(),
            constraints: constraints.iter().map(|c| c.to_string()).collect(),
            pattern: None,
        };
        let g = |f: &Field| Grammar {
            root: field_value(f, &Map::new(), false).expect("compiles"),
        };
        let kw = g(&field("list[str]", &["3-6 lowercase keywords"]));
        assert!(kw.matches("a, b, c"));
        assert!(!kw.matches("a, b"), "fewer than 3");
        assert!(!kw.matches("a, b, c, d, e, f, g"), "more than 6");
        assert!(!kw.matches("A, b, c"), "upper case");
        let d = g(&field("str", &["starts with 'Use when'", "3-4 words"]));
        assert!(d.matches("Use when x"));
        assert!(d.matches("Use when x y"));
        assert!(!d.matches("Use when x y z"), "5 words");
        assert!(!d.matches("When x y"), "prefix");
        let subdirs = g(&field("list[Literal[a, b]]", &[]));
        assert!(subdirs.matches("none") && subdirs.matches("a, b") && !subdirs.matches("c"));
    }

    #[test]
    fn a_pattern_naming_no_constant_is_refused_when_the_spec_is_checked() {
        let (mut spec, _, _) = bundled();
        let p = &mut spec.predictors[0];
        p.signature.outputs[0].pattern = Some("{topics}/{kebab-case}".into());
        let err = check_patterns(p, &["categories"]).unwrap_err();
        assert!(err.to_string().contains("`{topics}`"), "{err}");
        p.signature.outputs[0].pattern = Some("{categories/x".into());
        assert!(check_patterns(p, &["categories"]).is_err());
    }
}
