//! What is wrong with a scenario, said the way a compiler says it: every problem found, each
//! with the file, line and column, the path to the field, what was expected, a "did you mean"
//! for a near miss, and the offending line quoted with a caret under it.
//!
//! A scenario is checked in stages (syntax, then each component, fault, check and variant on
//! its own, then the model as a whole), and a stage that fails does not stop the others that
//! do not depend on it, so one report lists every independent problem rather than the first.

use std::fmt;

use crate::scenario::tree::{self, SourceId, Span};

/// The texts problems point into: the scenario file, the embedded model files it used, and
/// command-line values (`--param`). Indexed by [`SourceId`].
#[derive(Clone, Debug, Default)]
pub struct Sources {
    entries: Vec<(String, String)>,
}

impl Sources {
    /// Registers a text under a display name (a path, `models/rpc/service.ron`, `--param`).
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> SourceId {
        let id = SourceId(self.entries.len() as u32);
        self.entries.push((name.into(), text.into()));
        id
    }

    /// The display name of a source.
    pub fn name(&self, id: SourceId) -> &str {
        self.entries
            .get(id.0 as usize)
            .map_or("<unknown>", |(n, _)| n.as_str())
    }

    /// The source registered under `name`, if any.
    pub fn find(&self, name: &str) -> Option<SourceId> {
        let at = self.entries.iter().position(|(n, _)| n == name)?;
        Some(SourceId(at as u32))
    }

    /// Line `line` (1-based) of a source, without its line break.
    fn line(&self, span: Span) -> Option<&str> {
        let (_, text) = self.entries.get(span.source.0 as usize)?;
        text.lines().nth(span.line.checked_sub(1)? as usize)
    }
}

/// One thing wrong with a scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// Where, if the problem has a place in a text.
    pub span: Option<Span>,
    /// The field, as a path from the scenario's root: `components.api.workers`.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
    /// A near miss ("session_timeout"), shown as "did you mean `session_timeout`?".
    pub suggestion: Option<String>,
}

impl Problem {
    pub fn new(span: Option<Span>, path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            span,
            path: path.into(),
            message: message.into(),
            suggestion: None,
        }
    }

    pub fn suggest(mut self, suggestion: Option<String>) -> Self {
        self.suggestion = suggestion;
        self
    }

    /// A tree error (syntax or deserialization) found under `prefix`, a path from the root.
    pub fn from_tree(prefix: &str, e: tree::Error) -> Self {
        Problem {
            span: e.span,
            path: join(prefix, &e.path),
            message: e.message,
            suggestion: e.suggestion,
        }
    }
}

/// Joins two field paths: `components.api` + `workers`, or + `[0].name`.
pub fn join(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_string(),
        (_, true) => prefix.to_string(),
        _ if rest.starts_with('[') => format!("{prefix}{rest}"),
        _ => format!("{prefix}.{rest}"),
    }
}

/// Every problem found in one scenario, with the texts to quote them from.
#[derive(Clone, Debug)]
pub struct ScenarioError {
    /// The scenario's display name (its path, or the shipped name).
    pub file: String,
    pub problems: Vec<Problem>,
    pub sources: Sources,
}

impl ScenarioError {
    /// A problem that has no place in any text (a missing file, say).
    pub fn plain(file: impl Into<String>, message: impl Into<String>) -> Self {
        ScenarioError {
            file: file.into(),
            problems: vec![Problem::new(None, "", message)],
            sources: Sources::default(),
        }
    }

    /// The report as text; `color` adds ANSI colour to the headings.
    pub fn render(&self, color: bool) -> String {
        let (red, blue, bold, reset) = if color {
            ("\x1b[1;31m", "\x1b[1;34m", "\x1b[1m", "\x1b[0m")
        } else {
            ("", "", "", "")
        };
        let mut out = String::new();
        for p in &self.problems {
            let place = match p.span {
                Some(s) => format!("{}:{}:{}", self.sources.name(s.source), s.line, s.col),
                None => self.file.clone(),
            };
            let path = if p.path.is_empty() {
                String::new()
            } else {
                format!("{}: ", p.path)
            };
            out.push_str(&format!(
                "{red}error{reset}{bold}: {place}: {path}{}{reset}\n",
                p.message
            ));
            if let Some(span) = p.span
                && let Some(line) = self.sources.line(span)
            {
                let number = span.line.to_string();
                let pad = " ".repeat(number.len());
                let caret = " ".repeat(span.col.saturating_sub(1) as usize);
                out.push_str(&format!("{blue}{pad} |{reset}\n"));
                out.push_str(&format!("{blue}{number} |{reset} {line}\n"));
                out.push_str(&format!("{blue}{pad} |{reset} {caret}{red}^{reset}\n"));
            }
            if let Some(s) = &p.suggestion {
                out.push_str(&format!("  = help: did you mean `{s}`?\n"));
            }
        }
        let n = self.problems.len();
        out.push_str(&format!(
            "{} problem{} in {}\n",
            n,
            if n == 1 { "" } else { "s" },
            self.file
        ));
        out
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for ScenarioError {}

/// Collects problems while a scenario is checked stage by stage.
#[derive(Debug, Default)]
pub(crate) struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, p: Problem) {
        // The same problem can be found from two variants; say it once.
        if !self.0.contains(&p) {
            self.0.push(p);
        }
    }

    /// Keeps the value, or records the problem and gives None.
    pub fn keep<T>(&mut self, r: Result<T, Problem>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(p) => {
                self.push(p);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
