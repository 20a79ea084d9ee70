//! A RON reader that keeps names and positions, the tree operations that layer scenario files,
//! and a `serde::Deserializer` over the tree.
//!
//! Scenario files are layered: a component's defaults come from a model file, the scenario
//! overrides some fields, each variant overrides more by path (`set: { "api.pool.pool_size": 30
//! }`), and a parameter sweep overrides one more. Only after layering is the tree deserialized
//! into the typed configs, and an error must then still name the file, the line:column and the
//! field path of what the person wrote. `ron::Value` cannot carry that: it keeps no positions,
//! and it drops struct and enum-variant names (ron-rs/ron issues #264 and #328), so a
//! distribution written `Exp(mean: "20ms")` cannot be layered and then deserialized back into
//! an externally tagged enum. Hence this module: [`parse`] reads RON text into a [`Node`] tree
//! that keeps every name and the [`Span`] of every value and field key; [`Node::merge`],
//! [`Node::set_path`] and friends do the layering; [`from_node`] drives serde's derived types
//! over the tree the way ron itself does, and every [`Error`] carries a position, a field path
//! such as `kinds[1].calls[0].timeout` and, for a typo, the closest expected name.
//!
//! ```
//! use faultline::model::rpc::PoolConfig;
//! use faultline::scenario::tree::{SourceId, from_node, parse};
//!
//! // A model's defaults (source 0), a scenario's override (1), a variant's `set` (2).
//! let mut pool = parse("(pool_size: 10, acquire_timeout: \"30s\")", SourceId(0)).unwrap();
//! pool.merge(parse("(acquire_timeout: \"1s\")", SourceId(1)).unwrap());
//! pool.set_path("pool_size", parse("30", SourceId(2)).unwrap()).unwrap();
//! let config: PoolConfig = from_node(&pool).unwrap();
//! assert_eq!(config.pool_size, 30);
//! assert_eq!(config.acquire_timeout.to_string(), "1s");
//!
//! // A typo is reported where it was written, with the closest field name.
//! pool.set_path("pool_sise", parse("\n  3", SourceId(2)).unwrap()).unwrap();
//! let err = from_node::<PoolConfig>(&pool).unwrap_err();
//! let at = err.span.unwrap();
//! assert_eq!((at.source, at.line, at.col), (SourceId(2), 2, 3));
//! assert_eq!(err.suggestion.as_deref(), Some("pool_size"));
//! assert_eq!(
//!     err.to_string(),
//!     "2:3: pool_sise: unknown field `pool_sise`; expected one of `pool_size`, \
//!      `acquire_timeout`, `rate` (did you mean `pool_size`?)"
//! );
//! ```
//!
//! The reader accepts the RON that people write and that `ron::to_string` prints: comments
//! (`//`, nestable `/* */`), leading `#![enable(..)]` attributes (accepted and ignored, because
//! the deserializer is always as lenient as those extensions make ron: implicit `Some`,
//! newtype variants written with their fields), trailing commas, decimal/hex/octal/binary
//! integers, floats, strings with escapes, raw strings, chars, and the structured forms. It
//! does not read byte strings, ranges or number suffixes; `5ms` gets a hint that durations are
//! strings. Everything is bounded: nesting deeper than 128 levels is an error rather
//! than a stack overflow, and no input text makes the reader panic.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Expected, IntoDeserializer, Unexpected, Visitor};

use crate::fault::suggest;

/// The deepest nesting of lists, maps, structs and tuples that [`parse`] accepts and
/// [`from_node`] follows. Scenario files nest a handful of levels; the limit exists so that a
/// hostile or broken file is an error, not a stack overflow in the recursive reader.
const DEPTH_MAX: u32 = 128;

/// Strings up to this many chars are quoted in messages; longer ones are just "a string", so a
/// message stays one line.
const DESCRIBE_STR_CHARS_MAX: usize = 32;

/// Raw strings may open with at most this many `#`s: a limit like every other, and it keeps the
/// closing-delimiter scan linear in practice.
const RAW_HASHES_MAX: usize = 255;

/// Which source text a node came from (the caller keeps the table of file names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SourceId(pub u32);

/// A position: 1-based line and column (column counts chars, not bytes), and the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    pub source: SourceId,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A value and where it was written (for a named struct or tuple, where its name starts).
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

/// A RON value with every name kept.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    /// An integer literal that fits i128 (decimal with `_` separators, `0x`, `0o`, `0b`, optional sign).
    Int(i128),
    /// A float literal (`1.5`, `1e-3`, `-0.25`, `inf`, `-inf`, `NaN`).
    Float(f64),
    /// `"..."` with escapes (`\n \t \\ \" \u{..}`) and raw strings `r"..."` / `r#"..."#`.
    Str(String),
    /// `'x'`.
    Char(char),
    /// `()`.
    Unit,
    /// A bare identifier: a unit variant or unit struct (`RoundRobin`), or `None`.
    Ident(String),
    /// `[a, b, c]` (trailing comma allowed).
    List(Vec<Node>),
    /// `{ k: v, ... }`: keys are nodes (usually strings).
    Map(Vec<(Node, Node)>),
    /// `Name(a: 1, b: 2)` or `(a: 1, b: 2)`: named fields, name optional. `Name()` is a
    /// struct with no fields.
    Struct {
        name: Option<String>,
        fields: Vec<Field>,
    },
    /// `Name(x, y)` or `(x, y)` or `Some(x)`: positional items, name optional (an anonymous
    /// one is a tuple).
    Tuple {
        name: Option<String>,
        items: Vec<Node>,
    },
}

/// One `key: value` of a struct.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

/// An error anywhere in this module: syntax, a path that cannot be followed, or a
/// deserialization error.
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    /// Where; None only for errors that have no node (rare: the message says so).
    pub span: Option<Span>,
    /// The path to the offending field from the root that was deserialized, e.g.
    /// `kinds[1].calls[0].timeout` or `pool.pool_size`; empty at the root. A map entry with
    /// an identifier-like string key is `.key`, any other string key `["weird key"]`.
    pub path: String,
    /// What is wrong, phrased for a person.
    pub message: String,
    /// A near miss: for an unknown field or variant, the closest expected name.
    pub suggestion: Option<String>,
}

impl Error {
    fn at(span: Span, path: impl Into<String>, message: impl Into<String>) -> Error {
        Error {
            span: Some(span),
            path: path.into(),
            message: message.into(),
            suggestion: None,
        }
    }

    /// Gives an error that has no position yet (one made by `custom()` in some `Deserialize`
    /// impl, or by serde's derived code) the node's position and path. The innermost call
    /// that sees the error is the one whose node it is about, so an error already located is
    /// left alone as it bubbles further up.
    fn locate(mut self, span: Span, path: &str) -> Error {
        if self.span.is_none() {
            self.span = Some(span);
            self.path = path.to_owned();
        }
        self
    }
}

impl fmt::Display for Error {
    /// `line:col: path: message (did you mean `x`?)`; the caller puts the file name in front.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(span) = self.span {
            write!(f, "{span}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, " (did you mean `{s}`?)")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Error {
        Error {
            span: None,
            path: String::new(),
            message: msg.to_string(),
            suggestion: None,
        }
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Error {
        de::Error::custom(format_args!("expected {exp}, found {}", unexpected(&unexp)))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Error {
        de::Error::custom(format_args!(
            "{} is not valid here; expected {exp}",
            unexpected(&unexp)
        ))
    }

    fn invalid_length(len: usize, exp: &dyn Expected) -> Error {
        de::Error::custom(format_args!("expected {exp}, found {len} values"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Error {
        let mut e: Error = de::Error::custom(format_args!(
            "unknown variant `{variant}`; {}",
            one_of(expected)
        ));
        e.suggestion = suggest(variant, expected.iter().copied());
        e
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Error {
        let mut e: Error = if expected.is_empty() {
            de::Error::custom(format_args!(
                "unknown field `{field}`; there are no fields here"
            ))
        } else {
            de::Error::custom(format_args!(
                "unknown field `{field}`; {}",
                one_of(expected)
            ))
        };
        e.suggestion = suggest(field, expected.iter().copied());
        e
    }

    fn missing_field(field: &'static str) -> Error {
        // `deserialize_struct` and `struct_variant` add " in `Name`", which serde does not
        // pass here.
        de::Error::custom(format_args!("{MISSING_FIELD}`{field}`"))
    }

    fn duplicate_field(field: &'static str) -> Error {
        de::Error::custom(format_args!("the field `{field}` is given twice"))
    }
}

/// The start of every missing-field message: the enclosing struct recognizes it to add its name.
const MISSING_FIELD: &str = "missing field ";

/// "expected one of `a`, `b`" for a list of names.
fn one_of(names: &[&str]) -> String {
    match names {
        [] => "there are none to choose from".to_owned(),
        [one] => format!("expected `{one}`"),
        _ => {
            let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("expected one of {}", list.join(", "))
        }
    }
}

/// Serde's `Unexpected` phrased like [`Node::describe`].
fn unexpected(u: &Unexpected<'_>) -> String {
    match *u {
        Unexpected::Bool(b) => format!("the boolean {b}"),
        Unexpected::Unsigned(n) => format!("the integer {n}"),
        Unexpected::Signed(n) => format!("the integer {n}"),
        Unexpected::Float(x) => format!("the float {x:?}"),
        Unexpected::Char(c) => format!("the character {c:?}"),
        Unexpected::Str(s) => describe_str(s),
        Unexpected::Bytes(_) => "bytes".to_owned(),
        Unexpected::Unit => "`()`".to_owned(),
        Unexpected::Option => "an option".to_owned(),
        Unexpected::NewtypeStruct => "a newtype struct".to_owned(),
        Unexpected::Seq => "a list".to_owned(),
        Unexpected::Map => "a map".to_owned(),
        Unexpected::Enum => "an enum".to_owned(),
        Unexpected::UnitVariant => "a unit variant".to_owned(),
        Unexpected::NewtypeVariant => "a newtype variant".to_owned(),
        Unexpected::TupleVariant => "a tuple variant".to_owned(),
        Unexpected::StructVariant => "a struct variant".to_owned(),
        Unexpected::Other(s) => s.to_owned(),
    }
}

fn describe_str(s: &str) -> String {
    if s.chars().count() <= DESCRIBE_STR_CHARS_MAX {
        format!("the string {s:?}")
    } else {
        "a string".to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Paths

/// Whether a map key can be written `.key` in a path rather than `["key"]`.
fn is_identifier_like(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_ident_start) && chars.all(is_ident_continue)
}

fn join_field(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn join_index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// The path of a map entry: `.key` for identifier-like string keys, `["key"]` for other
/// strings, `[5]`-style for scalar keys, `[..]` for keys that have no short form.
fn join_key(path: &str, key: &Node) -> String {
    match &key.value {
        Value::Str(s) if is_identifier_like(s) => join_field(path, s),
        Value::Str(s) => format!("{path}[{s:?}]"),
        Value::Int(n) => format!("{path}[{n}]"),
        Value::Bool(b) => format!("{path}[{b}]"),
        Value::Char(c) => format!("{path}[{c:?}]"),
        Value::Ident(n) => format!("{path}[{n}]"),
        _ => format!("{path}[..]"),
    }
}

/// One step of a path given to [`Node::set_path`] / [`Node::get_path`].
#[derive(Clone, Debug, PartialEq)]
enum Seg {
    /// A struct field or a map entry with this string key.
    Key(String),
    /// A list index.
    Index(usize),
}

/// Reads `a.b[1].c` and `pools["weird key"].x` into segments.
fn parse_path(path: &str) -> Result<Vec<Seg>, String> {
    let bad = |what: &str| format!("bad path `{path}`: {what}");
    let mut segs = Vec::new();
    let mut chars = path.chars().peekable();
    // Whether a `.` must come before the next bare key (it must, after any segment).
    let mut after_segment = false;
    while let Some(&c) = chars.peek() {
        match c {
            '.' => {
                if !after_segment {
                    return Err(bad("a `.` must follow a name or an index"));
                }
                chars.next();
                let key = take_key(&mut chars);
                if key.is_empty() {
                    return Err(bad("a name must follow each `.`"));
                }
                segs.push(Seg::Key(key));
            }
            '[' => {
                chars.next();
                if chars.peek() == Some(&'"') {
                    chars.next();
                    let mut key = String::new();
                    loop {
                        match chars.next() {
                            None => return Err(bad("unterminated `[\"`")),
                            Some('"') => break,
                            Some('\\') => match chars.next() {
                                Some(e @ ('"' | '\\')) => key.push(e),
                                _ => return Err(bad("only `\\\"` and `\\\\` escapes are allowed")),
                            },
                            Some(k) => key.push(k),
                        }
                    }
                    if chars.next() != Some(']') {
                        return Err(bad("expected `]` after the quoted key"));
                    }
                    segs.push(Seg::Key(key));
                } else {
                    let mut digits = String::new();
                    while let Some(&d) = chars.peek() {
                        if !d.is_ascii_digit() {
                            break;
                        }
                        digits.push(d);
                        chars.next();
                    }
                    if chars.next() != Some(']') || digits.is_empty() {
                        return Err(bad("expected an index such as `[0]`"));
                    }
                    let index = digits
                        .parse::<usize>()
                        .map_err(|_| bad("the index is too large"))?;
                    segs.push(Seg::Index(index));
                }
            }
            _ => {
                if after_segment {
                    return Err(bad("expected `.` or `[` between segments"));
                }
                let key = take_key(&mut chars);
                if key.is_empty() {
                    return Err(bad("unexpected `]` or `\"`"));
                }
                segs.push(Seg::Key(key));
            }
        }
        after_segment = true;
    }
    Ok(segs)
}

/// A bare path key: everything up to the next `.`, `[`, `]` or `"`.
fn take_key(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    let mut key = String::new();
    while let Some(&c) = chars.peek() {
        if matches!(c, '.' | '[' | ']' | '"') {
            break;
        }
        key.push(c);
        chars.next();
    }
    key
}

fn join_seg(path: &str, seg: &Seg) -> String {
    match seg {
        Seg::Key(k) if is_identifier_like(k) => join_field(path, k),
        Seg::Key(k) => format!("{path}[{k:?}]"),
        Seg::Index(i) => join_index(path, *i),
    }
}

/// How a message names a path: "`pool`", or "the root" for the empty path.
fn named(path: &str) -> String {
    if path.is_empty() {
        "the root".to_owned()
    } else {
        format!("`{path}`")
    }
}

fn is_some_wrapper(node: &Node) -> bool {
    matches!(&node.value, Value::Tuple { name: Some(n), items } if n == "Some" && items.len() == 1)
}

/// Looks through `Some(..)` (any number of them): a path addresses what the option holds.
fn through_some(mut node: &Node) -> &Node {
    while let Value::Tuple {
        name: Some(n),
        items,
    } = &node.value
    {
        if n != "Some" || items.len() != 1 {
            break;
        }
        node = &items[0];
    }
    node
}

fn through_some_mut(mut node: &mut Node) -> &mut Node {
    while is_some_wrapper(node) {
        match &mut node.value {
            Value::Tuple { items, .. } => node = &mut items[0],
            // is_some_wrapper just said it is a tuple.
            _ => unreachable!("a Some wrapper is a tuple"),
        }
    }
    node
}

fn str_key_is(key: &Node, wanted: &str) -> bool {
    matches!(&key.value, Value::Str(s) if s == wanted)
}

/// Scalar map keys are equal when their values are, whatever their positions; structured keys
/// never match (layering has no use for them, and comparing trees would be guesswork).
fn same_key(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Char(x), Value::Char(y)) => x == y,
        (Value::Ident(x), Value::Ident(y)) => x == y,
        _ => false,
    }
}

/// Why the walk cannot go from the node at `prefix` into `seg`, phrased for a person. `node`
/// is the node at `prefix`, already looked through `Some`.
fn step_error(node: &Node, prefix: &str, seg: &Seg, span: Span) -> Error {
    let here = named(prefix);
    let seg_path = join_seg(prefix, seg);
    match (seg, &node.value) {
        (Seg::Key(k), Value::Struct { fields, .. }) => {
            let keys: Vec<&str> = fields.iter().map(|f| f.key.as_str()).collect();
            let has = if keys.is_empty() {
                "it has no fields".to_owned()
            } else {
                let list: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
                format!("it has {}", list.join(", "))
            };
            let mut e = Error::at(span, seg_path, format!("{here} has no field `{k}`; {has}"));
            e.suggestion = suggest(k, keys.iter().copied());
            e
        }
        (Seg::Key(k), Value::Map(entries)) => {
            let keys: Vec<&str> = entries
                .iter()
                .filter_map(|(key, _)| match &key.value {
                    Value::Str(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect();
            let mut e = Error::at(span, seg_path, format!("{here} has no entry {k:?}"));
            e.suggestion = suggest(k, keys.iter().copied());
            e
        }
        (Seg::Key(_), Value::List(_)) => Error::at(
            span,
            prefix,
            format!("{here} is a list; address an item by index, such as `{prefix}[0]`"),
        ),
        (Seg::Key(_), Value::Ident(n)) if n == "None" => Error::at(
            span,
            prefix,
            format!("{here} is None here; set the whole {here} instead"),
        ),
        (Seg::Key(k), _) => Error::at(
            span,
            prefix,
            format!(
                "{here} is {} here, which has no field `{k}`; set the whole {here} instead",
                node.describe()
            ),
        ),
        (Seg::Index(i), Value::List(items)) => Error::at(
            span,
            seg_path,
            format!(
                "{here} has {} items, so the index {i} is out of range",
                items.len()
            ),
        ),
        (Seg::Index(i), _) => Error::at(
            span,
            prefix,
            format!(
                "{here} is {}, not a list, so it has no item [{i}]",
                node.describe()
            ),
        ),
    }
}

/// Where `seg` is in `node` (already looked through `Some`), if it is there.
fn locate_seg(node: &Node, seg: &Seg) -> Option<usize> {
    match (seg, &node.value) {
        (Seg::Key(k), Value::Struct { fields, .. }) => fields.iter().position(|f| f.key == *k),
        (Seg::Key(k), Value::Map(entries)) => {
            entries.iter().position(|(key, _)| str_key_is(key, k))
        }
        (Seg::Index(i), Value::List(items)) => (*i < items.len()).then_some(*i),
        _ => None,
    }
}

/// The child at `index` as found by [`locate_seg`].
fn child_mut(node: &mut Node, index: usize) -> Option<&mut Node> {
    match &mut node.value {
        Value::Struct { fields, .. } => fields.get_mut(index).map(|f| &mut f.value),
        Value::Map(entries) => entries.get_mut(index).map(|(_, v)| v),
        Value::List(items) => items.get_mut(index),
        _ => None,
    }
}

fn child_ref(node: &Node, index: usize) -> Option<&Node> {
    match &node.value {
        Value::Struct { fields, .. } => fields.get(index).map(|f| &f.value),
        Value::Map(entries) => entries.get(index).map(|(_, v)| v),
        Value::List(items) => items.get(index),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Tree operations

impl Node {
    pub fn new(value: Value, span: Span) -> Node {
        Node { value, span }
    }

    /// Struct fields by key (for [`Value::Struct`]), None otherwise.
    pub fn field(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Struct { fields, .. } => fields.iter().find(|f| f.key == key).map(|f| &f.value),
            _ => None,
        }
    }

    pub fn field_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.value {
            Value::Struct { fields, .. } => fields
                .iter_mut()
                .find(|f| f.key == key)
                .map(|f| &mut f.value),
            _ => None,
        }
    }

    /// Removes and returns a struct field (used to take `model:` and `host:` out of a
    /// component before deserializing the rest).
    pub fn take_field(&mut self, key: &str) -> Option<Node> {
        match &mut self.value {
            Value::Struct { fields, .. } => {
                let at = fields.iter().position(|f| f.key == key)?;
                Some(fields.remove(at).value)
            }
            _ => None,
        }
    }

    /// The map entry whose key is the string `key`.
    pub fn entry(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| str_key_is(k, key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Deep merge: `over` wins.
    ///
    /// - Struct onto struct: fields merged by key, recursively; keys only `over` has are
    ///   appended; a merged field takes `over`'s key span. The names must agree: a struct
    ///   named differently from the one it lands on (`LogNormal(..)` onto `Exp(..)`) replaces
    ///   it; an anonymous one merges into a named one and keeps the name, because an override
    ///   usually leaves the name out.
    /// - Map onto map: entries merged by equal scalar keys (in practice strings), recursively.
    /// - `Some(x)` onto `Some(y)` merges `x` onto `y`. `Some` is also looked through when the
    ///   other side is a struct or map, as the typed deserializer does (implicit `Some`), so
    ///   `pool: (pool_size: 30)` merges into a model's `pool: Some((pool_size: 10, ..))`.
    /// - Everything else (lists, scalars, tuples, `None`) replaces.
    ///
    /// The merged node takes `over`'s span: `over` supplied a value there.
    pub fn merge(&mut self, over: Node) {
        let Node {
            value: over_value,
            span: over_span,
        } = over;
        let leftover = match (&mut self.value, over_value) {
            (
                Value::Struct { name, fields },
                Value::Struct {
                    name: over_name,
                    fields: over_fields,
                },
            ) if names_agree(name.as_deref(), over_name.as_deref()) => {
                if over_name.is_some() {
                    *name = over_name;
                }
                for of in over_fields {
                    match fields.iter().position(|f| f.key == of.key) {
                        Some(at) => {
                            fields[at].key_span = of.key_span;
                            fields[at].value.merge(of.value);
                        }
                        None => fields.push(of),
                    }
                }
                None
            }
            (Value::Map(entries), Value::Map(over_entries)) => {
                for (k, v) in over_entries {
                    match entries.iter().position(|(ek, _)| same_key(ek, &k)) {
                        Some(at) => {
                            entries[at].0.span = k.span;
                            entries[at].1.merge(v);
                        }
                        None => entries.push((k, v)),
                    }
                }
                None
            }
            (
                Value::Tuple {
                    name: Some(n),
                    items,
                },
                Value::Tuple {
                    name: Some(over_n),
                    items: mut over_items,
                },
            ) if n == "Some" && over_n == "Some" && items.len() == 1 && over_items.len() == 1 => {
                // Both have exactly one item, checked in the guard.
                if let Some(x) = over_items.pop() {
                    items[0].merge(x);
                }
                None
            }
            (
                Value::Tuple {
                    name: Some(n),
                    items,
                },
                over_value @ (Value::Struct { .. } | Value::Map(_)),
            ) if n == "Some" && items.len() == 1 => {
                items[0].merge(Node::new(over_value, over_span));
                None
            }
            (
                base @ (Value::Struct { .. } | Value::Map(_)),
                Value::Tuple {
                    name: Some(over_n),
                    items: mut over_items,
                },
            ) if over_n == "Some"
                && over_items.len() == 1
                && matches!(over_items[0].value, Value::Struct { .. } | Value::Map(_)) =>
            {
                let inner_span = over_items[0].span;
                let mut inner = Node::new(std::mem::replace(base, Value::Unit), self.span);
                if let Some(x) = over_items.pop() {
                    inner.merge(x);
                }
                inner.span = inner_span;
                Some(Value::Tuple {
                    name: Some(over_n),
                    items: vec![inner],
                })
            }
            (_, other) => Some(other),
        };
        if let Some(v) = leftover {
            self.value = v;
        }
        self.span = over_span;
    }

    /// Sets the value at `path` relative to this node.
    ///
    /// Path syntax: `a.b.c`, a list index `kinds[1]`, a map key `pools.primary` (a segment
    /// addresses a struct field or a map entry with that string key; a key that is not a plain
    /// name is written `pools["weird key"]`); `Some(..)` is looked through. A missing *last*
    /// segment in a struct or map is inserted, with `value`'s span as its key span (the typed
    /// deserialization rejects it if the type has no such field). Anything else that cannot be
    /// followed is an error naming the path prefix that failed and what is there. Errors point
    /// at `value`'s span: the override is what the person has to fix, not the base it lands on.
    pub fn set_path(&mut self, path: &str, value: Node) -> Result<(), Error> {
        let span = value.span;
        let segs = parse_path(path).map_err(|m| Error::at(span, path, m))?;
        let Some((last, init)) = segs.split_last() else {
            return Err(Error::at(
                span,
                "",
                "the path is empty; name the field to set, such as `pool.pool_size`",
            ));
        };
        let mut cur: &mut Node = self;
        let mut prefix = String::new();
        for seg in init {
            let node = through_some_mut(cur);
            let Some(at) = locate_seg(node, seg) else {
                return Err(step_error(node, &prefix, seg, span));
            };
            prefix = join_seg(&prefix, seg);
            cur = match child_mut(node, at) {
                Some(child) => child,
                // Unreachable: locate_seg found `at` in this very node.
                None => return Err(Error::at(span, prefix, "the path could not be followed")),
            };
        }
        let node = through_some_mut(cur);
        if matches!(last, Seg::Key(_)) && node.value == Value::Unit {
            // `()` is how a struct with every field at its default is written
            // (`pools: {"primary": ()}`); setting one field of it makes it that struct.
            node.value = Value::Struct {
                name: None,
                fields: Vec::new(),
            };
        }
        if let Some(at) = locate_seg(node, last) {
            if let Some(child) = child_mut(node, at) {
                *child = value;
                return Ok(());
            }
        }
        match (last, &mut node.value) {
            (Seg::Key(k), Value::Struct { fields, .. }) => {
                fields.push(Field {
                    key: k.clone(),
                    key_span: span,
                    value,
                });
                Ok(())
            }
            (Seg::Key(k), Value::Map(entries)) => {
                entries.push((Node::new(Value::Str(k.clone()), span), value));
                Ok(())
            }
            _ => Err(step_error(node, &prefix, last, span)),
        }
    }

    /// The node at `path` (syntax as for [`Node::set_path`]); the empty path is this node.
    pub fn get_path(&self, path: &str) -> Option<&Node> {
        let segs = parse_path(path).ok()?;
        let mut cur = self;
        for seg in &segs {
            let node = through_some(cur);
            cur = child_ref(node, locate_seg(node, seg)?)?;
        }
        Some(cur)
    }

    /// A short description for messages: "the integer 5", "the string \"abc\"", "a list",
    /// "`Exp(..)`", "a struct".
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Bool(b) => format!("the boolean {b}"),
            Value::Int(n) => format!("the integer {n}"),
            Value::Float(x) => format!("the float {x:?}"),
            Value::Str(s) => describe_str(s),
            Value::Char(c) => format!("the character {c:?}"),
            Value::Unit => "`()`".to_owned(),
            Value::Ident(n) => format!("`{n}`"),
            Value::List(items) if items.is_empty() => "an empty list".to_owned(),
            Value::List(_) => "a list".to_owned(),
            Value::Map(_) => "a map".to_owned(),
            Value::Struct { name: Some(n), .. } | Value::Tuple { name: Some(n), .. } => {
                format!("`{n}(..)`")
            }
            Value::Struct { name: None, .. } => "a struct".to_owned(),
            Value::Tuple { name: None, .. } => "a tuple".to_owned(),
        }
    }
}

/// Struct names agree unless both are given and differ.
fn names_agree(base: Option<&str>, over: Option<&str>) -> bool {
    match (base, over) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

// ---------------------------------------------------------------------------------------------
// The reader

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_continue(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// ron allows `.`, `+` and `-` in raw identifiers (`r#serde-name`).
fn is_raw_ident_char(c: char) -> bool {
    is_ident_continue(c) || matches!(c, '.' | '+' | '-')
}

/// A saved reader position, for lookahead.
#[derive(Clone, Copy)]
struct Mark {
    pos: usize,
    line: u32,
    col: u32,
}

struct Parser<'t> {
    text: &'t str,
    /// Byte offset of the next char; always on a char boundary.
    pos: usize,
    line: u32,
    col: u32,
    source: SourceId,
    depth: u32,
    /// The path of the value being read, for error messages.
    path: String,
}

/// Reads RON text into a tree. Errors point at the offending character and say what was
/// expected there.
pub fn parse(text: &str, source: SourceId) -> Result<Node, Error> {
    let mut p = Parser {
        text,
        pos: 0,
        line: 1,
        col: 1,
        source,
        depth: 0,
        path: String::new(),
    };
    // A byte-order mark is invisible in an editor, so it does not count as a column.
    if text.starts_with('\u{FEFF}') {
        p.pos = '\u{FEFF}'.len_utf8();
    }
    p.skip_ws()?;
    while p.peek() == Some('#') {
        p.attribute()?;
        p.skip_ws()?;
    }
    if p.peek().is_none() {
        return Err(p.error(p.here(), "the file is empty"));
    }
    let node = p.value()?;
    debug_assert!(p.path.is_empty());
    debug_assert_eq!(p.depth, 0);
    p.skip_ws()?;
    if p.peek().is_some() {
        return Err(p.error(
            p.here(),
            format!(
                "unexpected {} after the value; a file holds exactly one value",
                p.found()
            ),
        ));
    }
    Ok(node)
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn peek_nth(&self, n: usize) -> Option<char> {
        self.text[self.pos..].chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        let yes = self.peek() == Some(c);
        if yes {
            self.bump();
        }
        yes
    }

    fn here(&self) -> Span {
        Span {
            source: self.source,
            line: self.line,
            col: self.col,
        }
    }

    fn mark(&self) -> Mark {
        Mark {
            pos: self.pos,
            line: self.line,
            col: self.col,
        }
    }

    fn reset(&mut self, m: Mark) {
        self.pos = m.pos;
        self.line = m.line;
        self.col = m.col;
    }

    fn error(&self, span: Span, message: impl Into<String>) -> Error {
        Error::at(span, self.path.clone(), message)
    }

    /// The next char as a message shows it.
    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the file".to_owned(),
            Some('\n') => "the end of the line".to_owned(),
            Some(c) => format!("`{}`", c.escape_debug()),
        }
    }

    fn eof_inside(&self, what: &str) -> Error {
        self.error(self.here(), format!("unexpected end of file inside {what}"))
    }

    fn enter(&mut self, at: Span) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > DEPTH_MAX {
            return Err(self.error(at, format!("nesting is deeper than {DEPTH_MAX} levels")));
        }
        Ok(())
    }

    fn leave(&mut self) {
        debug_assert!(self.depth > 0);
        self.depth -= 1;
    }

    fn skip_ws(&mut self) -> Result<(), Error> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() || c == '\u{200E}' || c == '\u{200F}' => {
                    self.bump();
                }
                Some('/') if self.peek_nth(1) == Some('/') => {
                    while let Some(c) = self.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                Some('/') if self.peek_nth(1) == Some('*') => self.block_comment()?,
                _ => return Ok(()),
            }
        }
    }

    fn block_comment(&mut self) -> Result<(), Error> {
        let start = self.here();
        self.bump();
        self.bump();
        // A counter, not recursion: nested comments cannot exhaust the stack.
        let mut depth: u64 = 1;
        loop {
            match self.bump() {
                None => {
                    return Err(self.error(
                        start,
                        "unterminated block comment: `/*` without a matching `*/`",
                    ));
                }
                Some('*') if self.peek() == Some('/') => {
                    self.bump();
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                Some('/') if self.peek() == Some('*') => {
                    self.bump();
                    depth = depth.saturating_add(1);
                }
                Some(_) => {}
            }
        }
    }

    /// `#![enable(..)]`: read and ignored (see the module docs for why that is safe).
    fn attribute(&mut self) -> Result<(), Error> {
        let start = self.here();
        self.bump();
        self.skip_ws()?;
        if !self.eat('!') {
            return Err(self.error(
                self.here(),
                format!(
                    "expected `!` after `#`, found {}; attributes are written `#![enable(..)]`",
                    self.found()
                ),
            ));
        }
        self.skip_ws()?;
        if !self.eat('[') {
            return Err(self.error(
                self.here(),
                format!(
                    "expected `[` after `#!`, found {}; attributes are written `#![enable(..)]`",
                    self.found()
                ),
            ));
        }
        loop {
            match self.bump() {
                None => {
                    return Err(self.error(
                        start,
                        "unterminated attribute: `#![` without a matching `]`",
                    ));
                }
                Some(']') => return Ok(()),
                Some(_) => {}
            }
        }
    }

    fn value(&mut self) -> Result<Node, Error> {
        let start = self.here();
        let Some(c) = self.peek() else {
            return Err(self.error(start, "expected a value, found the end of the file"));
        };
        match c {
            '[' => self.list(start),
            '{' => self.map(start),
            '(' => self.paren(None, start),
            '"' => {
                self.bump();
                let s = self.string_body(start)?;
                Ok(Node::new(Value::Str(s), start))
            }
            '\'' => self.char_lit(start),
            '0'..='9' | '+' | '-' | '.' => self.number(start),
            'b' if matches!(self.peek_nth(1), Some('"' | '\''))
                || (self.peek_nth(1) == Some('r')
                    && matches!(self.peek_nth(2), Some('"' | '#'))) =>
            {
                Err(self.error(
                    start,
                    "byte strings and byte literals are not supported here; use a string",
                ))
            }
            'r' if self.raw_string_ahead() => self.raw_string(start),
            c if is_ident_start(c) => self.ident_value(start),
            _ => Err(self.error(start, format!("expected a value, found {}", self.found()))),
        }
    }

    /// An identifier at the reader, raw (`r#type`) or plain, and whether it was raw.
    fn ident(&mut self) -> Option<(String, bool)> {
        let mut name = String::new();
        if self.peek() == Some('r')
            && self.peek_nth(1) == Some('#')
            && self.peek_nth(2).is_some_and(is_raw_ident_char)
        {
            self.bump();
            self.bump();
            while let Some(c) = self.peek().filter(|c| is_raw_ident_char(*c)) {
                name.push(c);
                self.bump();
            }
            return Some((name, true));
        }
        if !self.peek().is_some_and(is_ident_start) {
            return None;
        }
        while let Some(c) = self.peek().filter(|c| is_ident_continue(*c)) {
            name.push(c);
            self.bump();
        }
        Some((name, false))
    }

    fn ident_value(&mut self, start: Span) -> Result<Node, Error> {
        let Some((name, raw)) = self.ident() else {
            return Err(self.error(start, format!("expected a value, found {}", self.found())));
        };
        if !raw {
            let literal = match name.as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                "inf" => Some(Value::Float(f64::INFINITY)),
                "NaN" => Some(Value::Float(f64::NAN)),
                _ => None,
            };
            if let Some(v) = literal {
                return Ok(Node::new(v, start));
            }
        }
        let m = self.mark();
        self.skip_ws()?;
        if self.peek() == Some('(') {
            return self.paren(Some(name), start);
        }
        self.reset(m);
        Ok(Node::new(Value::Ident(name), start))
    }

    /// Whether a raw string (`r"`, `r#"`, ...) starts at the reader.
    fn raw_string_ahead(&self) -> bool {
        let mut chars = self.text[self.pos..].chars();
        if chars.next() != Some('r') {
            return false;
        }
        for c in chars {
            match c {
                '#' => {}
                '"' => return true,
                _ => return false,
            }
        }
        false
    }

    fn raw_string(&mut self, start: Span) -> Result<Node, Error> {
        self.bump(); // r
        let mut hashes = 0usize;
        while self.eat('#') {
            hashes += 1;
        }
        if hashes > RAW_HASHES_MAX {
            return Err(self.error(
                start,
                format!("a raw string may open with at most {RAW_HASHES_MAX} `#`s"),
            ));
        }
        self.bump(); // '"', checked by raw_string_ahead
        let mut s = String::new();
        loop {
            match self.bump() {
                None => return Err(self.error(start, "unterminated raw string")),
                Some('"') => {
                    let m = self.mark();
                    let mut n = 0;
                    while n < hashes && self.eat('#') {
                        n += 1;
                    }
                    if n == hashes {
                        return Ok(Node::new(Value::Str(s), start));
                    }
                    self.reset(m);
                    s.push('"');
                }
                Some(c) => s.push(c),
            }
        }
    }

    /// The rest of a `"..."` string, the opening quote already read.
    fn string_body(&mut self, start: Span) -> Result<String, Error> {
        let mut s = String::new();
        loop {
            let at = self.here();
            match self.bump() {
                None => return Err(self.error(start, "unterminated string")),
                Some('"') => return Ok(s),
                Some('\\') => {
                    if let Some(c) = self.escape(at, start, true)? {
                        s.push(c);
                    }
                }
                Some(c) => s.push(c),
            }
        }
    }

    /// The char an escape stands for, the backslash (at `at`) already read. None for a line
    /// continuation (backslash, line break, and the indentation after it), which stands for
    /// nothing and exists only in strings.
    fn escape(&mut self, at: Span, lit: Span, in_string: bool) -> Result<Option<char>, Error> {
        let unterminated = if in_string {
            "unterminated string"
        } else {
            "unterminated character literal"
        };
        let Some(c) = self.bump() else {
            return Err(self.error(lit, unterminated));
        };
        let ch = match c {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '0' => '\0',
            '\\' => '\\',
            '"' => '"',
            '\'' => '\'',
            'x' => {
                let mut v = 0u32;
                for _ in 0..2 {
                    let Some(d) = self.peek().and_then(|c| c.to_digit(16)) else {
                        return Err(self.error(at, "`\\x` takes two hex digits, as in `\\x41`"));
                    };
                    self.bump();
                    v = v * 16 + d;
                }
                if v > 0x7F {
                    return Err(self.error(
                        at,
                        format!(
                            "`\\x{v:02X}` is not ASCII; write other characters as `\\u{{{v:X}}}`"
                        ),
                    ));
                }
                // At most 0x7F, checked above.
                char::from(v as u8)
            }
            'u' => {
                if !self.eat('{') {
                    return Err(self.error(at, "a Unicode escape is written `\\u{..}`"));
                }
                let mut v = 0u32;
                let mut digits = 0;
                while let Some(d) = self.peek().and_then(|c| c.to_digit(16)) {
                    self.bump();
                    digits += 1;
                    if digits > 6 {
                        return Err(self.error(at, "a Unicode escape has at most 6 hex digits"));
                    }
                    v = v * 16 + d;
                }
                if digits == 0 || !self.eat('}') {
                    return Err(self.error(
                        at,
                        "a Unicode escape is written `\\u{..}` with 1 to 6 hex digits",
                    ));
                }
                match char::from_u32(v) {
                    Some(ch) => ch,
                    None => {
                        return Err(
                            self.error(at, format!("`\\u{{{v:X}}}` is not a Unicode scalar value"))
                        );
                    }
                }
            }
            '\n' | '\r' if in_string => {
                if c == '\r' && !self.eat('\n') {
                    return Err(self.error(at, "unknown escape `\\r` (a lone carriage return)"));
                }
                while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
                    self.bump();
                }
                return Ok(None);
            }
            other => {
                return Err(self.error(at, format!("unknown escape `\\{}`", other.escape_debug())));
            }
        };
        Ok(Some(ch))
    }

    fn char_lit(&mut self, start: Span) -> Result<Node, Error> {
        self.bump(); // '
        let at = self.here();
        let c = match self.bump() {
            None => return Err(self.error(start, "unterminated character literal")),
            Some('\'') => return Err(self.error(start, "empty character literal `''`")),
            Some('\\') => match self.escape(at, start, false)? {
                Some(c) => c,
                // Line continuations are rejected outside strings, so this is unreachable in
                // practice; an error keeps it from ever being a panic.
                None => return Err(self.error(at, "a character literal cannot be empty")),
            },
            Some(c) => c,
        };
        if !self.eat('\'') {
            return Err(self.error(
                self.here(),
                format!(
                    "expected `'` to close the character literal, found {}; a character \
                     literal holds one character (strings use double quotes)",
                    self.found()
                ),
            ));
        }
        Ok(Node::new(Value::Char(c), start))
    }

    fn number(&mut self, start: Span) -> Result<Node, Error> {
        let start_pos = self.pos;
        let mut neg = false;
        if let Some(c @ ('+' | '-')) = self.peek() {
            neg = c == '-';
            self.bump();
        }
        for (word, value) in [("inf", f64::INFINITY), ("NaN", f64::NAN)] {
            if self.text[self.pos..].starts_with(word)
                && !self.peek_nth(word.len()).is_some_and(is_ident_continue)
            {
                for _ in 0..word.len() {
                    self.bump();
                }
                return Ok(Node::new(
                    Value::Float(if neg { -value } else { value }),
                    start,
                ));
            }
        }
        let radix = match (self.peek(), self.peek_nth(1)) {
            (Some('0'), Some('x')) => Some(16),
            (Some('0'), Some('o')) => Some(8),
            (Some('0'), Some('b')) => Some(2),
            _ => None,
        };
        if let Some(radix) = radix {
            self.bump();
            self.bump();
            let mut magnitude: u128 = 0;
            let mut digits = 0;
            while let Some(c) = self.peek() {
                if c == '_' {
                    self.bump();
                    continue;
                }
                let Some(d) = c.to_digit(radix) else { break };
                self.bump();
                digits += 1;
                magnitude = match magnitude
                    .checked_mul(u128::from(radix))
                    .and_then(|m| m.checked_add(u128::from(d)))
                {
                    Some(m) => m,
                    None => return Err(self.error(start, "this integer does not fit in an i128")),
                };
            }
            if digits == 0 {
                return Err(self.error(
                    self.here(),
                    format!(
                        "expected digits after the base prefix, found {}",
                        self.found()
                    ),
                ));
            }
            self.no_suffix(start_pos)?;
            return match signed(magnitude, neg) {
                Some(n) => Ok(Node::new(Value::Int(n), start)),
                None => Err(self.error(start, "this integer does not fit in an i128")),
            };
        }
        let first = self.peek();
        let starts_number = first.is_some_and(|c| c.is_ascii_digit())
            || (first == Some('.') && self.peek_nth(1).is_some_and(|c| c.is_ascii_digit()));
        if !starts_number {
            let what = if self.pos == start_pos {
                format!("expected a value, found {}", self.found())
            } else {
                format!("expected a number after the sign, found {}", self.found())
            };
            return Err(self.error(self.here(), what));
        }
        let int_part = self.digits();
        let mut float = false;
        let mut frac_part = String::new();
        // `1..2` would be a range, which is not supported; leave the dots to the caller's error.
        if self.peek() == Some('.') && self.peek_nth(1) != Some('.') {
            self.bump();
            float = true;
            frac_part = self.digits();
        }
        let mut exp_part = String::new();
        if matches!(self.peek(), Some('e' | 'E')) {
            let after = self.peek_nth(1);
            let signed_digit = matches!(after, Some('+' | '-'))
                && self.peek_nth(2).is_some_and(|c| c.is_ascii_digit());
            if after.is_some_and(|c| c.is_ascii_digit()) || signed_digit {
                self.bump();
                float = true;
                if let Some(s @ ('+' | '-')) = self.peek() {
                    exp_part.push(s);
                    self.bump();
                }
                exp_part.push_str(&self.digits());
            }
        }
        self.no_suffix(start_pos)?;
        if float {
            // Normalized so that the standard parser sees `0.5` for `.5` and `1.0` for `1.`.
            let text = format!(
                "{}{}.{}e{}",
                if neg { "-" } else { "" },
                if int_part.is_empty() { "0" } else { &int_part },
                if frac_part.is_empty() {
                    "0"
                } else {
                    &frac_part
                },
                if exp_part.is_empty() { "0" } else { &exp_part },
            );
            return match text.parse::<f64>() {
                Ok(x) => Ok(Node::new(Value::Float(x), start)),
                Err(_) => Err(self.error(start, "this is not a valid number")),
            };
        }
        let mut magnitude: u128 = 0;
        for d in int_part.chars().filter_map(|c| c.to_digit(10)) {
            magnitude = match magnitude
                .checked_mul(10)
                .and_then(|m| m.checked_add(u128::from(d)))
            {
                Some(m) => m,
                None => return Err(self.error(start, "this integer does not fit in an i128")),
            };
        }
        match signed(magnitude, neg) {
            Some(n) => Ok(Node::new(Value::Int(n), start)),
            None => Err(self.error(start, "this integer does not fit in an i128")),
        }
    }

    /// Decimal digits, `_` separators dropped.
    fn digits(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_digit() {
                s.push(c);
            } else if c != '_' {
                break;
            }
            self.bump();
        }
        s
    }

    /// A number must not run into letters: `5ms` is a duration written without quotes, and
    /// saying so is more useful than "expected `,`".
    fn no_suffix(&mut self, start_pos: usize) -> Result<(), Error> {
        if !self.peek().is_some_and(is_ident_continue) {
            return Ok(());
        }
        let at = self.here();
        let number = &self.text[start_pos..self.pos];
        let mut word = String::new();
        while let Some(c) = self.peek().filter(|c| is_ident_continue(*c)) {
            word.push(c);
            self.bump();
        }
        let mut message = format!("unexpected `{word}` right after the number `{number}`");
        if word.starts_with(['n', 'u', 'm', 's', 'h', 'd']) {
            message.push_str(&format!(
                "; durations are written as strings, such as \"{number}{word}\""
            ));
        }
        Err(self.error(at, message))
    }

    fn list(&mut self, start: Span) -> Result<Node, Error> {
        self.enter(start)?;
        self.bump();
        let what = format!("the list that starts at {start}");
        let items = self.items(']', &what)?;
        self.leave();
        Ok(Node::new(Value::List(items), start))
    }

    /// Comma-separated values up to `close`, the opening bracket already read.
    fn items(&mut self, close: char, what: &str) -> Result<Vec<Node>, Error> {
        let mut items = Vec::new();
        loop {
            self.skip_ws()?;
            match self.peek() {
                None => return Err(self.eof_inside(what)),
                Some(c) if c == close => {
                    self.bump();
                    return Ok(items);
                }
                Some(_) => {}
            }
            let len = self.path.len();
            self.path = join_index(&self.path, items.len());
            let item = self.value()?;
            self.path.truncate(len);
            items.push(item);
            self.skip_ws()?;
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some(c) if c == close => {
                    self.bump();
                    return Ok(items);
                }
                None => return Err(self.eof_inside(what)),
                Some(c) => {
                    let hint = if c == ':' && close == ')' {
                        "; a tuple cannot mix positional values and `name: value` fields"
                    } else {
                        ""
                    };
                    return Err(self.error(
                        self.here(),
                        format!(
                            "expected `,` or `{close}` after an item of {what}, found {}{hint}",
                            self.found()
                        ),
                    ));
                }
            }
        }
    }

    fn map(&mut self, start: Span) -> Result<Node, Error> {
        self.enter(start)?;
        self.bump();
        let what = format!("the map that starts at {start}");
        let mut entries: Vec<(Node, Node)> = Vec::new();
        let mut seen: BTreeMap<String, Span> = BTreeMap::new();
        loop {
            self.skip_ws()?;
            match self.peek() {
                None => return Err(self.eof_inside(&what)),
                Some('}') => {
                    self.bump();
                    break;
                }
                Some(_) => {}
            }
            let key = self.value()?;
            if let Value::Str(k) = &key.value {
                if let Some(first) = seen.get(k) {
                    return Err(self.error(
                        key.span,
                        format!("the key {k:?} is given twice (first at {first})"),
                    ));
                }
                seen.insert(k.clone(), key.span);
            }
            self.skip_ws()?;
            if !self.eat(':') {
                return Err(self.error(
                    self.here(),
                    format!("expected `:` after the map key, found {}", self.found()),
                ));
            }
            self.skip_ws()?;
            let len = self.path.len();
            self.path = join_key(&self.path, &key);
            let value = self.value()?;
            self.path.truncate(len);
            entries.push((key, value));
            self.skip_ws()?;
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some('}') => {
                    self.bump();
                    break;
                }
                None => return Err(self.eof_inside(&what)),
                Some(_) => {
                    return Err(self.error(
                        self.here(),
                        format!(
                            "expected `,` or `}}` after an entry of {what}, found {}",
                            self.found()
                        ),
                    ));
                }
            }
        }
        self.leave();
        Ok(Node::new(Value::Map(entries), start))
    }

    /// `(..)` after an optional name: a unit, a struct (fields) or a tuple (items).
    fn paren(&mut self, name: Option<String>, start: Span) -> Result<Node, Error> {
        let open = self.here();
        self.enter(open)?;
        self.bump();
        let what = match &name {
            Some(n) => format!("`{n}(..)` that starts at {start}"),
            None => format!("the parentheses that start at {start}"),
        };
        self.skip_ws()?;
        let is_some = name.as_deref() == Some("Some");
        let node = if self.peek() == Some(')') {
            self.bump();
            match name {
                _ if is_some => {
                    return Err(self.error(
                        start,
                        "`Some` takes exactly one value, as in `Some(5)`; write `None` for nothing",
                    ));
                }
                None => Node::new(Value::Unit, start),
                Some(n) => Node::new(
                    Value::Struct {
                        name: Some(n),
                        fields: Vec::new(),
                    },
                    start,
                ),
            }
        } else if self.struct_ahead() {
            let fields = self.fields(&what)?;
            if is_some {
                // `Some(a: 1)` is `Some((a: 1))`, as with ron's `unwrap_variant_newtypes`. The
                // struct is a level of its own in the tree.
                self.enter(open)?;
                self.leave();
                let inner = Node::new(Value::Struct { name: None, fields }, open);
                Node::new(
                    Value::Tuple {
                        name,
                        items: vec![inner],
                    },
                    start,
                )
            } else {
                Node::new(Value::Struct { name, fields }, start)
            }
        } else {
            let items = self.items(')', &what)?;
            if is_some && items.len() != 1 {
                return Err(self.error(
                    start,
                    format!(
                        "`Some` takes exactly one value, as in `Some(5)`, but here it has {}",
                        items.len()
                    ),
                ));
            }
            Node::new(Value::Tuple { name, items }, start)
        };
        self.leave();
        Ok(node)
    }

    /// Whether the parentheses just opened hold `name: value` fields.
    fn struct_ahead(&mut self) -> bool {
        let m = self.mark();
        let yes = self.ident().is_some() && self.skip_ws().is_ok() && self.peek() == Some(':');
        self.reset(m);
        yes
    }

    /// `name: value` fields up to `)`, the opening parenthesis already read.
    fn fields(&mut self, what: &str) -> Result<Vec<Field>, Error> {
        let mut fields: Vec<Field> = Vec::new();
        let mut seen: BTreeMap<String, Span> = BTreeMap::new();
        loop {
            self.skip_ws()?;
            match self.peek() {
                None => return Err(self.eof_inside(what)),
                Some(')') => {
                    self.bump();
                    return Ok(fields);
                }
                Some(_) => {}
            }
            let key_span = self.here();
            let Some((key, _)) = self.ident() else {
                return Err(self.error(
                    key_span,
                    format!(
                        "expected a field name or `)` in {what}, found {}",
                        self.found()
                    ),
                ));
            };
            let len = self.path.len();
            self.path = join_field(&self.path, &key);
            if let Some(first) = seen.get(&key) {
                return Err(self.error(
                    key_span,
                    format!("the field `{key}` is given twice (first at {first})"),
                ));
            }
            seen.insert(key.clone(), key_span);
            self.skip_ws()?;
            if !self.eat(':') {
                return Err(self.error(
                    self.here(),
                    format!(
                        "expected `:` after the field name `{key}`, found {}",
                        self.found()
                    ),
                ));
            }
            self.skip_ws()?;
            let value = self.value()?;
            self.path.truncate(len);
            self.skip_ws()?;
            let next = self.peek();
            fields.push(Field {
                key,
                key_span,
                value,
            });
            match next {
                Some(',') => {
                    self.bump();
                }
                Some(')') => {
                    self.bump();
                    return Ok(fields);
                }
                None => return Err(self.eof_inside(what)),
                Some(_) => {
                    let key = fields.last().map_or("", |f| f.key.as_str());
                    return Err(self.error(
                        self.here(),
                        format!(
                            "expected `,` or `)` after the field `{key}`, found {}",
                            self.found()
                        ),
                    ));
                }
            }
        }
    }
}

/// `magnitude` with a sign, if it fits an i128.
fn signed(magnitude: u128, neg: bool) -> Option<i128> {
    if !neg {
        return i128::try_from(magnitude).ok();
    }
    if magnitude == i128::MIN.unsigned_abs() {
        return Some(i128::MIN);
    }
    i128::try_from(magnitude).ok().map(|n| -n)
}

// ---------------------------------------------------------------------------------------------
// The writer

/// The line width [`to_ron_pretty`] keeps to where it can.
const PRETTY_WIDTH: usize = 100;

/// One level of indentation in [`to_ron_pretty`]'s output.
const PRETTY_INDENT: &str = "    ";

/// A tree as RON text on one line (`Exp(mean: "20ms")`, `{"a": [1, 2]}`), for messages and
/// reports of what a variant overrides. [`parse`] reads it back to the same tree, spans aside.
pub fn to_ron(n: &Node) -> String {
    let mut out = String::new();
    write_flat(&mut out, n, usize::MAX);
    out
}

/// A tree as indented RON text, for files a person reads: a value that fits on the rest of its
/// line is written there, as [`to_ron`] writes it; a longer list, map, struct or tuple is broken
/// with one item a line, indented four spaces, each followed by a comma. The text ends with a
/// line break.
///
/// It round-trips: for every tree [`parse`] can produce, `parse(&to_ron_pretty(&node))` is
/// `node` again but for the spans. Comments are not part of the tree, so they are not written.
///
/// ```
/// use faultline::scenario::tree::{SourceId, parse, to_ron_pretty};
///
/// let node = parse(r#"(name: "spike", faults: [(at: "5m", fault: Heal)])"#, SourceId(0)).unwrap();
/// assert_eq!(to_ron_pretty(&node), "(name: \"spike\", faults: [(at: \"5m\", fault: Heal)])\n");
/// let long = parse(&format!("[{}]", ["\"a fairly long string\""; 6].join(", ")), SourceId(0)).unwrap();
/// assert_eq!(to_ron_pretty(&long), format!("[\n{}]\n", "    \"a fairly long string\",\n".repeat(6)));
/// ```
pub fn to_ron_pretty(n: &Node) -> String {
    let mut out = String::new();
    write_pretty(&mut out, n, 0, 0, 0);
    out.push('\n');
    out
}

/// Writes `n` on one line; stops early (returning false) once `out` is longer than `limit`
/// bytes, so that [`write_pretty`] can ask "does it fit?" without writing a whole large value.
fn write_flat(out: &mut String, n: &Node, limit: usize) -> bool {
    fn items(out: &mut String, open: &str, close: &str, items: &[Node], limit: usize) -> bool {
        out.push_str(open);
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if !write_flat(out, x, limit) {
                return false;
            }
        }
        out.push_str(close);
        out.len() <= limit
    }
    match &n.value {
        Value::List(xs) => items(out, "[", "]", xs, limit),
        Value::Tuple { name, items: xs } => {
            write_name(out, name.as_deref());
            items(out, "(", ")", xs, limit)
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                if !write_flat(out, k, limit) {
                    return false;
                }
                out.push_str(": ");
                if !write_flat(out, v, limit) {
                    return false;
                }
            }
            out.push('}');
            out.len() <= limit
        }
        Value::Struct { name, fields } => {
            write_name(out, name.as_deref());
            out.push('(');
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_key(out, &f.key);
                out.push_str(": ");
                if !write_flat(out, &f.value, limit) {
                    return false;
                }
            }
            out.push(')');
            out.len() <= limit
        }
        _ => {
            write_scalar(out, n);
            out.len() <= limit
        }
    }
}

/// Writes `n` starting at column `col` (in chars) of a line indented `depth` levels, with
/// `tail` chars to follow it on the same line (the `,` after an item).
fn write_pretty(out: &mut String, n: &Node, depth: usize, col: usize, tail: usize) {
    let breakable = match &n.value {
        Value::List(xs) | Value::Tuple { items: xs, .. } => !xs.is_empty(),
        Value::Map(entries) => !entries.is_empty(),
        Value::Struct { fields, .. } => !fields.is_empty(),
        _ => false,
    };
    if !breakable {
        write_flat(out, n, usize::MAX);
        return;
    }
    // `room` counts chars and `write_flat`'s limit bytes: a text of multi-byte chars may give
    // up on one line a little early, never run past the width.
    let room = PRETTY_WIDTH.saturating_sub(col + tail);
    let mut flat = String::new();
    if write_flat(&mut flat, n, room) && flat.chars().count() <= room {
        out.push_str(&flat);
        return;
    }
    let inner = PRETTY_INDENT.repeat(depth + 1);
    let inner_col = inner.len();
    let line = |out: &mut String| {
        out.push('\n');
        out.push_str(&inner);
    };
    let close = |out: &mut String, c: char| {
        out.push('\n');
        out.push_str(&PRETTY_INDENT.repeat(depth));
        out.push(c);
    };
    match &n.value {
        Value::List(xs) => {
            out.push('[');
            for x in xs {
                line(out);
                write_pretty(out, x, depth + 1, inner_col, 1);
                out.push(',');
            }
            close(out, ']');
        }
        Value::Tuple { name, items: xs } => {
            write_name(out, name.as_deref());
            out.push('(');
            for x in xs {
                line(out);
                write_pretty(out, x, depth + 1, inner_col, 1);
                out.push(',');
            }
            close(out, ')');
        }
        Value::Map(entries) => {
            out.push('{');
            for (k, v) in entries {
                line(out);
                let key = to_ron(k);
                out.push_str(&key);
                out.push_str(": ");
                write_pretty(out, v, depth + 1, inner_col + key.chars().count() + 2, 1);
                out.push(',');
            }
            close(out, '}');
        }
        Value::Struct { name, fields } => {
            write_name(out, name.as_deref());
            out.push('(');
            for f in fields {
                line(out);
                let start = out.len();
                write_key(out, &f.key);
                out.push_str(": ");
                let key_cols = out[start..].chars().count();
                write_pretty(out, &f.value, depth + 1, inner_col + key_cols, 1);
                out.push(',');
            }
            close(out, ')');
        }
        // Scalars cannot be broken and were written above.
        _ => write_scalar(out, n),
    }
}

/// Whether `s` reads back as an identifier without the raw prefix `r#`.
fn is_plain_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_ident_start) && chars.all(is_ident_continue)
}

/// A struct, tuple or enum-variant name; `r#` where the plain form would read as something
/// else (`true`, `inf`) or is not an identifier at all (`a-b`).
fn write_name(out: &mut String, name: Option<&str>) {
    if let Some(name) = name {
        if !is_plain_ident(name) || matches!(name, "true" | "false" | "inf" | "NaN") {
            out.push_str("r#");
        }
        out.push_str(name);
    }
}

/// A field key: the reader takes any identifier there, so only non-identifiers need `r#`.
fn write_key(out: &mut String, key: &str) {
    if !is_plain_ident(key) {
        out.push_str("r#");
    }
    out.push_str(key);
}

fn write_scalar(out: &mut String, n: &Node) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = match &n.value {
        Value::Bool(b) => write!(out, "{b}"),
        Value::Int(i) => write!(out, "{i}"),
        // `{:?}` keeps every digit a float needs to read back the same, and writes `1.0` for
        // a whole number (so it stays a float), `inf`, `-inf` and `NaN`.
        Value::Float(x) => write!(out, "{x:?}"),
        // Rust's escapes (`\n`, `\"`, `\u{..}`) are all ones the reader knows.
        Value::Str(s) => write!(out, "{s:?}"),
        Value::Char(c) => write!(out, "{c:?}"),
        Value::Unit => write!(out, "()"),
        Value::Ident(name) => {
            write_name(out, Some(name));
            Ok(())
        }
        Value::List(_) | Value::Map(_) | Value::Struct { .. } | Value::Tuple { .. } => {
            write_flat(out, n, usize::MAX);
            Ok(())
        }
    };
}

// ---------------------------------------------------------------------------------------------
// The deserializer

/// Deserialize a typed value from a tree.
///
/// The tree is read the way ron reads text, with ron's lenient extensions always on: a value
/// where an `Option` is expected is an implicit `Some`; a newtype variant may be written with
/// the fields of the struct it wraps (`Service(workers: 4)` for `Service(ServiceSpec)`); a
/// newtype struct may be written bare, `(x)` or `Name(x)`. A little more is accepted than ron
/// does, where the intent is unambiguous: an integer where a float is wanted, a unit variant
/// as a string (`"Dot"`), a struct whose fields all have defaults as `()` or its bare name, a
/// string-keyed map written as a struct (`(a: 1)` for `BTreeMap<String, _>`), a one-char
/// string for a `char`. Types that call `deserialize_any` (untagged enums, `Scalar`) see a
/// named struct or tuple as a plain map or sequence: serde has no way to pass the name
/// through `any`.
pub fn from_node<T: de::DeserializeOwned>(node: &Node) -> Result<T, Error> {
    T::deserialize(De {
        node,
        path: String::new(),
        nameless: false,
        depth: 0,
    })
}

/// A deserializer for one node.
struct De<'a> {
    node: &'a Node,
    /// The path from the root, for errors.
    path: String,
    /// Read the node as if it had no name: the name was already used up as an enum variant's
    /// (a newtype variant written with the fields of the struct it wraps).
    nameless: bool,
    depth: u32,
}

impl<'a> De<'a> {
    fn child(&self, node: &'a Node, path: String) -> Result<De<'a>, Error> {
        let depth = self.depth + 1;
        if depth > DEPTH_MAX {
            return Err(Error::at(
                node.span,
                path,
                format!("nesting is deeper than {DEPTH_MAX} levels"),
            ));
        }
        Ok(De {
            node,
            path,
            nameless: false,
            depth,
        })
    }

    /// The same node again, for an implicit `Some` or a newtype struct written bare.
    fn again(&self) -> De<'a> {
        De {
            node: self.node,
            path: self.path.clone(),
            nameless: self.nameless,
            depth: self.depth,
        }
    }

    fn nameless(&self) -> De<'a> {
        De {
            nameless: true,
            ..self.again()
        }
    }

    fn name(&self) -> Option<&'a str> {
        if self.nameless {
            return None;
        }
        match &self.node.value {
            Value::Struct { name, .. } | Value::Tuple { name, .. } => name.as_deref(),
            _ => None,
        }
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::at(self.node.span, self.path.clone(), message)
    }

    fn mismatch(&self, expected: impl fmt::Display) -> Error {
        let mut found = self.node.describe();
        if let Value::Ident(n) = &self.node.value {
            if n != "None" {
                found = format!("the bare name `{n}`");
            }
        }
        self.error(format!("expected {expected}, found {found}"))
    }

    fn items<V: Visitor<'a>>(&self, items: &'a [Node], visitor: V) -> Result<V::Value, Error> {
        let mut access = Items {
            parent: self,
            items,
            next: 0,
        };
        let value = visitor.visit_seq(&mut access)?;
        if access.next < items.len() {
            return Err(self.error(format!(
                "found {} values, but only {} were expected",
                items.len(),
                access.next
            )));
        }
        Ok(value)
    }

    fn fields<V: Visitor<'a>>(
        &self,
        fields: &'a [Field],
        struct_name: Option<&str>,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let access = Fields {
            parent: self,
            fields,
            next: 0,
        };
        visitor.visit_map(access).map_err(|mut e| {
            // The derived code reports a missing field without saying which struct lacks it.
            if let Some(name) = struct_name {
                if e.span.is_none() && e.message.starts_with(MISSING_FIELD) {
                    e.message.push_str(&format!(" in `{name}`"));
                }
            }
            e
        })
    }

    fn entries<V: Visitor<'a>>(
        &self,
        entries: &'a [(Node, Node)],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_map(Entries {
            parent: self,
            entries,
            next: 0,
        })
    }

    fn int<T: TryFrom<i128>>(&self, ty: &str) -> Result<T, Error> {
        match &self.node.value {
            Value::Int(n) => T::try_from(*n).map_err(|_| {
                let article = if ty.starts_with('i') { "an" } else { "a" };
                self.error(format!("{n} does not fit in {article} {ty}"))
            }),
            _ => Err(self.mismatch(format_args!("an integer ({ty})"))),
        }
    }

    fn float(&self, expected: &dyn Expected) -> Result<f64, Error> {
        match &self.node.value {
            Value::Float(x) => Ok(*x),
            // An integer is a float written without a fraction; i128 to f64 rounds as a float
            // literal of that size would.
            Value::Int(n) => Ok(*n as f64),
            _ => Err(self.mismatch(format_args!("{expected}"))),
        }
    }

    fn any<V: Visitor<'a>>(&self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(n) => {
                if let Ok(u) = u64::try_from(*n) {
                    visitor.visit_u64(u)
                } else if let Ok(i) = i64::try_from(*n) {
                    visitor.visit_i64(i)
                } else if let Ok(u) = u128::try_from(*n) {
                    visitor.visit_u128(u)
                } else {
                    visitor.visit_i128(*n)
                }
            }
            Value::Float(x) => visitor.visit_f64(*x),
            Value::Str(s) => visitor.visit_str(s),
            Value::Char(c) => visitor.visit_char(*c),
            Value::Unit => visitor.visit_unit(),
            Value::Ident(n) if n == "None" => visitor.visit_none(),
            Value::Ident(n) => visitor.visit_str(n),
            Value::List(items) => self.items(items, visitor),
            Value::Tuple {
                name: Some(n),
                items,
            } if n == "Some" && items.len() == 1 && !self.nameless => {
                visitor.visit_some(self.child(&items[0], self.path.clone())?)
            }
            Value::Tuple { items, .. } => self.items(items, visitor),
            Value::Map(entries) => self.entries(entries, visitor),
            Value::Struct { fields, .. } => self.fields(fields, None, visitor),
        }
    }

    fn option<V: Visitor<'a>>(&self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Ident(n) if n == "None" => visitor.visit_none(),
            Value::Tuple { items, .. } if self.name() == Some("Some") && items.len() == 1 => {
                visitor.visit_some(self.child(&items[0], self.path.clone())?)
            }
            _ => visitor.visit_some(self.again()),
        }
    }

    /// The positional items of a node read as a sequence or tuple: a list, an anonymous
    /// tuple, or a tuple with the name `name` (when the type has one).
    fn positional(&self, name: Option<&str>) -> Option<&'a [Node]> {
        match &self.node.value {
            Value::List(items) => Some(items),
            Value::Tuple { items, .. } => match (self.name(), name) {
                (None, _) => Some(items),
                (Some(a), Some(b)) if a == b => Some(items),
                _ => None,
            },
            _ => None,
        }
    }

    fn tuple<V: Visitor<'a>>(
        &self,
        name: Option<&str>,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let Some(items) = self.positional(name) else {
            if len == 0 && self.node.value == Value::Unit {
                return visitor.visit_seq(&mut Items {
                    parent: self,
                    items: &[],
                    next: 0,
                });
            }
            return Err(match (self.name(), name) {
                (Some(found), Some(want)) => {
                    self.error(format!("expected `{want}(..)`, found `{found}(..)`"))
                }
                (_, Some(want)) => self.mismatch(format_args!("`{want}(..)` with {len} values")),
                (_, None) => self.mismatch(format_args!("a tuple of {len} values")),
            });
        };
        if items.len() != len {
            let what = match name {
                Some(n) => format!("`{n}(..)`"),
                None => "a tuple".to_owned(),
            };
            return Err(self.error(format!(
                "expected {what} of {len} values, found {} values",
                items.len()
            )));
        }
        self.items(items, visitor)
    }

    fn strukt<V: Visitor<'a>>(
        &self,
        name: &str,
        expected: &[&str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Struct { fields, .. } => match self.name() {
                Some(found) if found != name => {
                    Err(self.error(format!("expected `{name}(..)`, found `{found}(..)`")))
                }
                _ => self.fields(fields, Some(name), visitor),
            },
            // `()` and the bare name are a struct whose fields all take their defaults.
            Value::Unit => self.fields(&[], Some(name), visitor),
            Value::Ident(n) if n == name => self.fields(&[], Some(name), visitor),
            Value::Tuple { .. } => Err(self.error(format!(
                "expected `{name}(..)` with named fields, as in `({}: ..)`, found {}",
                expected.first().copied().unwrap_or("field"),
                self.node.describe()
            ))),
            _ => Err(self.mismatch(format_args!("`{name}(..)`"))),
        }
    }

    fn enumeration<V: Visitor<'a>>(
        &self,
        name: &str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let variant = match &self.node.value {
            Value::Ident(v) | Value::Str(v) => Some(v.as_str()),
            Value::Tuple { .. } | Value::Struct { .. } => self.name(),
            _ => None,
        };
        let Some(variant) = variant else {
            let hint = match &self.node.value {
                Value::Tuple { .. } | Value::Struct { .. } => " (the variant name is missing)",
                _ => "",
            };
            let list: Vec<String> = variants.iter().map(|v| format!("`{v}`")).collect();
            return Err(self.error(format!(
                "expected a variant of `{name}` ({}), found {}{hint}",
                list.join(", "),
                self.node.describe()
            )));
        };
        visitor.visit_enum(Enum { de: self, variant })
    }
}

/// Every node-level call gives the errors leaving it this node's position, unless an inner
/// call already did.
macro_rules! located {
    ($self:ident, $body:expr) => {{
        let r = $body;
        r.map_err(|e| e.locate($self.node.span, &$self.path))
    }};
}

macro_rules! int_method {
    ($method:ident, $visit:ident, $ty:ty) => {
        fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
            located!(
                self,
                self.int::<$ty>(stringify!($ty))
                    .and_then(|n| visitor.$visit(n))
            )
        }
    };
}

impl<'a> de::Deserializer<'a> for De<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        located!(self, self.any(visitor))
    }

    fn deserialize_bool<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        located!(
            self,
            match &self.node.value {
                Value::Bool(b) => visitor.visit_bool(*b),
                _ => Err(self.mismatch("`true` or `false`")),
            }
        )
    }

    int_method!(deserialize_i8, visit_i8, i8);
    int_method!(deserialize_i16, visit_i16, i16);
    int_method!(deserialize_i32, visit_i32, i32);
    int_method!(deserialize_i64, visit_i64, i64);
    int_method!(deserialize_i128, visit_i128, i128);
    int_method!(deserialize_u8, visit_u8, u8);
    int_method!(deserialize_u16, visit_u16, u16);
    int_method!(deserialize_u32, visit_u32, u32);
    int_method!(deserialize_u64, visit_u64, u64);
    int_method!(deserialize_u128, visit_u128, u128);

    fn deserialize_f32<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        located!(
            self,
            self.float(&"a number (f32)")
                .and_then(|x| visitor.visit_f32(x as f32))
        )
    }

    fn deserialize_f64<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        located!(
            self,
            self.float(&"a number (f64)")
                .and_then(|x| visitor.visit_f64(x))
        )
    }

    fn deserialize_char<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        located!(self, {
            let one = match &self.node.value {
                Value::Char(c) => Some(*c),
                Value::Str(s) => {
                    let mut chars = s.chars();
                    chars.next().filter(|_| chars.next().is_none())
                }
                _ => None,
            };
            match one {
                Some(c) => visitor.visit_char(c),
                None => Err(self.mismatch("a character such as 'x'")),
            }
        })
    }

    fn deserialize_str<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        located!(
            self,
            match &self.node.value {
                Value::Str(s) => visitor.visit_str(s),
                Value::Ident(n) if n != "None" => Err(self.error(format!(
                    "expected {}, found the bare name `{n}`; strings are written in quotes: \"{n}\"",
                    &visitor as &dyn Expected
                ))),
                _ => Err(self.mismatch(&visitor as &dyn Expected)),
            }
        )
    }

    fn deserialize_string<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        located!(
            self,
            match &self.node.value {
                Value::Str(s) => visitor.visit_bytes(s.as_bytes()),
                Value::List(items) => self.items(items, visitor),
                _ => Err(self.mismatch("a string or a list of bytes")),
            }
        )
    }

    fn deserialize_byte_buf<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        located!(self, self.option(visitor))
    }

    fn deserialize_unit<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        located!(
            self,
            match &self.node.value {
                Value::Unit => visitor.visit_unit(),
                _ => Err(self.mismatch("`()`")),
            }
        )
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        located!(
            self,
            match &self.node.value {
                Value::Unit => visitor.visit_unit(),
                Value::Ident(n) if n == name => visitor.visit_unit(),
                Value::Struct { fields, .. } if fields.is_empty() && self.name() == Some(name) => {
                    visitor.visit_unit()
                }
                _ => Err(self.mismatch(format_args!("`{name}` or `()`"))),
            }
        )
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        located!(
            self,
            match &self.node.value {
                // ron writes a newtype struct `(x)` (or `Name(x)` with struct names on).
                Value::Tuple { items, .. }
                    if items.len() == 1 && self.name().is_none_or(|n| n == name) =>
                {
                    visitor.visit_newtype_struct(self.child(&items[0], self.path.clone())?)
                }
                _ => visitor.visit_newtype_struct(self.again()),
            }
        )
    }

    fn deserialize_seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        located!(
            self,
            match self.positional(None) {
                Some(items) => self.items(items, visitor),
                None => Err(self.mismatch("a list such as `[a, b]`")),
            }
        )
    }

    fn deserialize_tuple<V: Visitor<'a>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        located!(self, self.tuple(None, len, visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        located!(self, self.tuple(Some(name), len, visitor))
    }

    fn deserialize_map<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        located!(
            self,
            match &self.node.value {
                Value::Map(entries) => self.entries(entries, visitor),
                Value::Struct { fields, .. } => self.fields(fields, None, visitor),
                _ => Err(self.mismatch("a map such as `{\"key\": value}`")),
            }
        )
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        located!(self, self.strukt(name, fields, visitor))
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        located!(self, self.enumeration(name, variants, visitor))
    }

    fn deserialize_identifier<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        located!(
            self,
            match &self.node.value {
                Value::Ident(s) | Value::Str(s) => visitor.visit_str(s),
                _ => Err(self.mismatch("a name")),
            }
        )
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

/// The items of a list or tuple.
struct Items<'a, 'p> {
    parent: &'p De<'a>,
    items: &'a [Node],
    next: usize,
}

impl<'a> de::SeqAccess<'a> for Items<'a, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(item) = self.items.get(self.next) else {
            return Ok(None);
        };
        let de = self
            .parent
            .child(item, join_index(&self.parent.path, self.next))?;
        self.next += 1;
        seed.deserialize(de).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.next)
    }
}

/// The fields of a struct, as a map with identifier keys.
struct Fields<'a, 'p> {
    parent: &'p De<'a>,
    fields: &'a [Field],
    next: usize,
}

impl<'a> de::MapAccess<'a> for Fields<'a, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(field) = self.fields.get(self.next) else {
            return Ok(None);
        };
        let key: de::value::StrDeserializer<'_, Error> = field.key.as_str().into_deserializer();
        // An unknown field is reported by the derived code while it reads the key: give it
        // the key's position.
        seed.deserialize(key)
            .map(Some)
            .map_err(|e| e.locate(field.key_span, &join_field(&self.parent.path, &field.key)))
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some(field) = self.fields.get(self.next) else {
            return Err(self
                .parent
                .error("a field value was asked for after the last field"));
        };
        self.next += 1;
        let de = self
            .parent
            .child(&field.value, join_field(&self.parent.path, &field.key))?;
        seed.deserialize(de)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.fields.len() - self.next)
    }
}

/// The entries of a map.
struct Entries<'a, 'p> {
    parent: &'p De<'a>,
    entries: &'a [(Node, Node)],
    next: usize,
}

impl<'a> de::MapAccess<'a> for Entries<'a, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, _)) = self.entries.get(self.next) else {
            return Ok(None);
        };
        let de = self.parent.child(key, join_key(&self.parent.path, key))?;
        seed.deserialize(de).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some((key, value)) = self.entries.get(self.next) else {
            return Err(self
                .parent
                .error("a map value was asked for after the last entry"));
        };
        self.next += 1;
        let de = self.parent.child(value, join_key(&self.parent.path, key))?;
        seed.deserialize(de)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len() - self.next)
    }
}

/// An enum value: `Ident`, `"Str"`, `Name(..)`.
struct Enum<'a, 'p> {
    de: &'p De<'a>,
    variant: &'a str,
}

impl<'a, 'p> de::EnumAccess<'a> for Enum<'a, 'p> {
    type Error = Error;
    type Variant = Enum<'a, 'p>;

    fn variant_seed<V: DeserializeSeed<'a>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let name: de::value::StrDeserializer<'_, Error> = self.variant.into_deserializer();
        // The variant's name starts where the node does, so an unknown variant points there.
        let v = seed
            .deserialize(name)
            .map_err(|e| e.locate(self.de.node.span, &self.de.path))?;
        Ok((v, self))
    }
}

impl<'a> de::VariantAccess<'a> for Enum<'a, '_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match &self.de.node.value {
            Value::Ident(_) | Value::Str(_) => Ok(()),
            Value::Struct { fields, .. } if fields.is_empty() => Ok(()),
            _ => Err(self.de.error(format!(
                "`{v}` takes no value; write just `{v}`",
                v = self.variant
            ))),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'a>>(self, seed: T) -> Result<T::Value, Error> {
        match &self.de.node.value {
            Value::Tuple { items, .. } if items.len() == 1 => {
                seed.deserialize(self.de.child(&items[0], self.de.path.clone())?)
            }
            // `Service(workers: 4)` for `Service(ServiceSpec)`, and `V(a, b)` for `V((a, b))`:
            // the whole node, its name used up, is the wrapped value.
            Value::Tuple { .. } | Value::Struct { .. } => seed.deserialize(self.de.nameless()),
            _ => Err(self.de.error(format!(
                "`{v}` needs a value: write `{v}(..)`",
                v = self.variant
            ))),
        }
    }

    fn tuple_variant<V: Visitor<'a>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        match &self.de.node.value {
            Value::Tuple { items, .. } => {
                if items.len() != len {
                    return Err(self.de.error(format!(
                        "expected `{}(..)` of {len} values, found {} values",
                        self.variant,
                        items.len()
                    )));
                }
                self.de.items(items, visitor)
            }
            Value::Struct { .. } => Err(self.de.error(format!(
                "`{}` takes {len} positional values, not named fields",
                self.variant
            ))),
            _ => Err(self.de.error(format!(
                "`{v}` needs {len} values: write `{v}(..)`",
                v = self.variant
            ))),
        }
    }

    fn struct_variant<V: Visitor<'a>>(
        self,
        expected: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.de.node.value {
            Value::Struct { fields, .. } => self.de.fields(fields, Some(self.variant), visitor),
            // A bare name: every field must have a default, and the derived code says which
            // one is missing otherwise.
            Value::Ident(_) | Value::Str(_) => self.de.fields(&[], Some(self.variant), visitor),
            _ => Err(self.de.error(format!(
                "`{v}` takes named fields, as in `{v}({}: ..)`, not positional values",
                expected.first().copied().unwrap_or("field"),
                v = self.variant
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::{Dist, Scalar};
    use crate::engine::time::{SimDuration, SimTime};
    use crate::fault::{Fault, FaultEntry};
    use crate::model::rpc::{CallConfig, KindConfig, PoolConfig, ServiceConfig};
    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    const SRC: SourceId = SourceId(7);

    fn sp(line: u32, col: u32) -> Span {
        Span {
            source: SRC,
            line,
            col,
        }
    }

    fn p(text: &str) -> Node {
        match parse(text, SRC) {
            Ok(node) => node,
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }

    fn perr(text: &str) -> Error {
        match parse(text, SRC) {
            Ok(node) => panic!("{text:?} should not parse, but gave {node:?}"),
            Err(e) => e,
        }
    }

    fn de<T: de::DeserializeOwned>(text: &str) -> T {
        match from_node(&p(text)) {
            Ok(v) => v,
            Err(e) => panic!("{text:?} should deserialize: {e}"),
        }
    }

    fn derr<T: de::DeserializeOwned + fmt::Debug>(text: &str) -> Error {
        match from_node::<T>(&p(text)) {
            Ok(v) => panic!("{text:?} should not deserialize, but gave {v:?}"),
            Err(e) => e,
        }
    }

    fn v(text: &str) -> Value {
        p(text).value
    }

    fn ms(n: u64) -> SimDuration {
        SimDuration::from_millis(n)
    }

    // --- the reader ---------------------------------------------------------------------------

    #[test]
    fn reads_scalars() {
        assert_eq!(v("true"), Value::Bool(true));
        assert_eq!(v("false"), Value::Bool(false));
        assert_eq!(v("42"), Value::Int(42));
        assert_eq!(v("-7"), Value::Int(-7));
        assert_eq!(v("+3"), Value::Int(3));
        assert_eq!(v("1_000_000"), Value::Int(1_000_000));
        assert_eq!(v("0x1F"), Value::Int(31));
        assert_eq!(v("-0x10"), Value::Int(-16));
        assert_eq!(v("0o17"), Value::Int(15));
        assert_eq!(v("0b1010_1010"), Value::Int(170));
        assert_eq!(v(&i128::MAX.to_string()), Value::Int(i128::MAX));
        assert_eq!(v(&i128::MIN.to_string()), Value::Int(i128::MIN));
        assert_eq!(v("1.5"), Value::Float(1.5));
        assert_eq!(v("1e-3"), Value::Float(1e-3));
        assert_eq!(v("1E3"), Value::Float(1000.0));
        assert_eq!(v("-0.25"), Value::Float(-0.25));
        assert_eq!(v("2."), Value::Float(2.0));
        assert_eq!(v(".5"), Value::Float(0.5));
        assert_eq!(v("1_0.2_5"), Value::Float(10.25));
        assert_eq!(v("1e400"), Value::Float(f64::INFINITY));
        assert_eq!(v("inf"), Value::Float(f64::INFINITY));
        assert_eq!(v("+inf"), Value::Float(f64::INFINITY));
        assert_eq!(v("-inf"), Value::Float(f64::NEG_INFINITY));
        assert!(matches!(v("NaN"), Value::Float(x) if x.is_nan()));
        assert!(matches!(v("-NaN"), Value::Float(x) if x.is_nan() && x.is_sign_negative()));
        assert_eq!(v("()"), Value::Unit);
        assert_eq!(v("RoundRobin"), Value::Ident("RoundRobin".into()));
        assert_eq!(v("None"), Value::Ident("None".into()));
        assert_eq!(v("r#type"), Value::Ident("type".into()));
        assert_eq!(v("r#true"), Value::Ident("true".into()));
        assert_eq!(v("infinity"), Value::Ident("infinity".into()));
    }

    #[test]
    fn reads_strings_and_chars() {
        assert_eq!(
            v(r#""a\nb\t\\\"\'\0\r\x41\u{1F600}\u{e9}""#),
            Value::Str("a\nb\t\\\"'\0\rA\u{1F600}\u{e9}".into())
        );
        assert_eq!(v(r#""""#), Value::Str(String::new()));
        assert_eq!(v("\"two\nlines\""), Value::Str("two\nlines".into()));
        assert_eq!(v("\"con\\\n     tinued\""), Value::Str("continued".into()));
        assert_eq!(v("\"con\\\r\n\ttinued\""), Value::Str("continued".into()));
        assert_eq!(v(r#"r"raw \n""#), Value::Str("raw \\n".into()));
        assert_eq!(
            v(r##"r#"has "quotes""#"##),
            Value::Str("has \"quotes\"".into())
        );
        assert_eq!(v(r###"r##"a "# b"##"###), Value::Str("a \"# b".into()));
        assert_eq!(v("'x'"), Value::Char('x'));
        assert_eq!(v(r"'\n'"), Value::Char('\n'));
        assert_eq!(v(r"'\''"), Value::Char('\''));
        assert_eq!(v(r"'\\'"), Value::Char('\\'));
        assert_eq!(v("'é'"), Value::Char('é'));
        assert_eq!(v("'\"'"), Value::Char('"'));
        assert_eq!(v(r"'\u{E9}'"), Value::Char('é'));
    }

    #[test]
    fn reads_structured_values() {
        let list = v("[1, 2,]");
        let Value::List(items) = list else {
            panic!("a list")
        };
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].value, Value::Int(2));
        assert_eq!(v("[]"), Value::List(vec![]));

        let Value::Map(entries) = v(r#"{"a": 1, 2: "b",}"#) else {
            panic!("a map")
        };
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0.value, Value::Str("a".into()));
        assert_eq!(entries[1].0.value, Value::Int(2));
        assert_eq!(entries[1].1.value, Value::Str("b".into()));

        let Value::Struct { name, fields } = v(r#"Exp(mean: "20ms")"#) else {
            panic!("a struct")
        };
        assert_eq!(name.as_deref(), Some("Exp"));
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].key, "mean");
        assert_eq!(fields[0].value.value, Value::Str("20ms".into()));

        let Value::Struct { name, fields } = v("(a: 1, r#type: 2,)") else {
            panic!("a struct")
        };
        assert_eq!(name, None);
        assert_eq!(fields[1].key, "type");

        let Value::Tuple { name, items } = v("Pair (1, 2)") else {
            panic!("a tuple")
        };
        assert_eq!(name.as_deref(), Some("Pair"));
        assert_eq!(items.len(), 2);
        let Value::Tuple { name, items } = v("(5)") else {
            panic!("a tuple")
        };
        assert_eq!(name, None);
        assert_eq!(items.len(), 1);
        assert_eq!(
            v("Name()"),
            Value::Struct {
                name: Some("Name".into()),
                fields: vec![]
            }
        );

        let Value::Tuple { name, items } = v("Some(3)") else {
            panic!("a tuple")
        };
        assert_eq!(name.as_deref(), Some("Some"));
        assert_eq!(items[0].value, Value::Int(3));
        // `Some(a: 1)` is `Some((a: 1))`.
        let some_fields = p("Some(a: 1)");
        assert!(is_some_wrapper(&some_fields));
        let inner = through_some(&some_fields);
        assert_eq!(inner.field("a").map(|n| &n.value), Some(&Value::Int(1)));
        assert_eq!(inner.span, sp(1, 5));
    }

    #[test]
    fn skips_comments_attributes_and_trailing_commas() {
        let text = "\u{FEFF}#![enable(implicit_some)]\n\
                    # ! [ enable(unwrap_newtypes) ]\n\
                    // a line comment\n\
                    /* a block /* nested */ still a comment */\n\
                    ( // after the paren\n\
                    \ta: 1, /* inline */ b: [ 1 , 2 , ] , // trailing\n\
                    )\n\
                    // after the value";
        let node = p(text);
        assert_eq!(node.span, sp(5, 1));
        assert_eq!(node.field("a").map(|n| &n.value), Some(&Value::Int(1)));
        let b = node.field("b").expect("field b");
        assert_eq!(b.span, sp(6, 24));
        assert!(matches!(&b.value, Value::List(items) if items.len() == 2));
        assert_eq!(v("/**/ 5 /* x */"), Value::Int(5));
        assert_eq!(plain("[1,/* , */2]"), plain("[1, 2]"));
    }

    #[test]
    fn positions_count_lines_and_chars() {
        let text = "(\n  name: \"ünïcödé\", x: 1,\n  dist: Exp(mean: \"20ms\"),\n  list: [\n    (a: 1),\n  ],\r\n  map: {\"k\": 2},\n)";
        let node = p(text);
        assert_eq!(node.span, sp(1, 1));
        let Value::Struct { fields, .. } = &node.value else {
            panic!("a struct")
        };
        let spans: Vec<(&str, Span, Span)> = fields
            .iter()
            .map(|f| (f.key.as_str(), f.key_span, f.value.span))
            .collect();
        assert_eq!(
            spans,
            vec![
                ("name", sp(2, 3), sp(2, 9)),
                // Columns count chars: the accented string is 9 chars but 14 bytes.
                ("x", sp(2, 20), sp(2, 23)),
                ("dist", sp(3, 3), sp(3, 9)),
                ("list", sp(4, 3), sp(4, 9)),
                ("map", sp(7, 3), sp(7, 8)),
            ]
        );
        assert_eq!(node.get_path("dist.mean").map(|n| n.span), Some(sp(3, 19)));
        assert_eq!(node.get_path("list[0]").map(|n| n.span), Some(sp(5, 5)));
        assert_eq!(node.get_path("list[0].a").map(|n| n.span), Some(sp(5, 9)));
        let Some(Node {
            value: Value::Map(entries),
            ..
        }) = node.field("map")
        else {
            panic!("a map")
        };
        assert_eq!(entries[0].0.span, sp(7, 9));
        assert_eq!(entries[0].1.span, sp(7, 14));
        assert_eq!(sp(3, 19).source, SRC);
    }

    #[test]
    fn syntax_errors_point_at_the_offending_char() {
        let cases: &[(&str, Span, &str, &str)] = &[
            (
                "(workers: 4 queue: 5)",
                sp(1, 13),
                "",
                "expected `,` or `)` after the field `workers`, found `q`",
            ),
            ("\"abc", sp(1, 1), "", "unterminated string"),
            ("(a: \"abc)", sp(1, 5), "a", "unterminated string"),
            (
                "[\n  1,\n  2",
                sp(3, 4),
                "",
                "unexpected end of file inside the list that starts at 1:1",
            ),
            (
                "(a: [1, (b: 2",
                sp(1, 14),
                "a[1]",
                "unexpected end of file inside the parentheses that start at 1:9",
            ),
            (
                "Exp(mean: 1",
                sp(1, 12),
                "",
                "unexpected end of file inside `Exp(..)` that starts at 1:1",
            ),
            ("", sp(1, 1), "", "the file is empty"),
            ("  // only a comment\n", sp(2, 1), "", "the file is empty"),
            (
                "1 2",
                sp(1, 3),
                "",
                "unexpected `2` after the value; a file holds exactly one value",
            ),
            (r#""\q""#, sp(1, 2), "", "unknown escape `\\q`"),
            (
                r#""\u{D800}""#,
                sp(1, 2),
                "",
                "`\\u{D800}` is not a Unicode scalar value",
            ),
            (
                r#""\x80""#,
                sp(1, 2),
                "",
                "`\\x80` is not ASCII; write other characters as `\\u{80}`",
            ),
            (
                "(a: 1, a: 2)",
                sp(1, 8),
                "a",
                "the field `a` is given twice (first at 1:2)",
            ),
            (
                "{\"k\": 1, \"k\": 2}",
                sp(1, 10),
                "",
                "the key \"k\" is given twice (first at 1:2)",
            ),
            (
                "(timeout: 5ms)",
                sp(1, 12),
                "timeout",
                "unexpected `ms` right after the number `5`; durations are written as \
                 strings, such as \"5ms\"",
            ),
            (
                "[12abc]",
                sp(1, 4),
                "[0]",
                "unexpected `abc` right after the number `12`",
            ),
            (
                "/* open /* nested */",
                sp(1, 1),
                "",
                "unterminated block comment: `/*` without a matching `*/`",
            ),
            (
                "(a: [1, @])",
                sp(1, 9),
                "a[1]",
                "expected a value, found `@`",
            ),
            (
                "{\"a\" 1}",
                sp(1, 6),
                "",
                "expected `:` after the map key, found `1`",
            ),
            (
                "(a 1)",
                sp(1, 4),
                "",
                "expected `,` or `)` after an item of the parentheses that start at 1:1, \
                 found `1`",
            ),
            (
                "(1, a: 2)",
                sp(1, 6),
                "",
                "expected `,` or `)` after an item of the parentheses that start at 1:1, \
                 found `:`; a tuple cannot mix positional values and `name: value` fields",
            ),
            (
                "(a: 1, 2)",
                sp(1, 8),
                "",
                "expected a field name or `)` in the parentheses that start at 1:1, found `2`",
            ),
            (
                "'ab'",
                sp(1, 3),
                "",
                "expected `'` to close the character literal, found `b`; a character literal \
                 holds one character (strings use double quotes)",
            ),
            ("''", sp(1, 1), "", "empty character literal `''`"),
            (
                "Some(1, 2)",
                sp(1, 1),
                "",
                "`Some` takes exactly one value, as in `Some(5)`, but here it has 2",
            ),
            (
                "Some()",
                sp(1, 1),
                "",
                "`Some` takes exactly one value, as in `Some(5)`; write `None` for nothing",
            ),
            (
                "[1, 2]]",
                sp(1, 7),
                "",
                "unexpected `]` after the value; a file holds exactly one value",
            ),
            (
                "b\"bytes\"",
                sp(1, 1),
                "",
                "byte strings and byte literals are not supported here; use a string",
            ),
            (
                "170141183460469231731687303715884105728",
                sp(1, 1),
                "",
                "this integer does not fit in an i128",
            ),
            (
                "-x",
                sp(1, 2),
                "",
                "expected a number after the sign, found `x`",
            ),
            (
                "0x",
                sp(1, 3),
                "",
                "expected digits after the base prefix, found the end of the file",
            ),
            ("r#\"open", sp(1, 1), "", "unterminated raw string"),
            (
                "#[enable(x)] 5",
                sp(1, 2),
                "",
                "expected `!` after `#`, found `[`; attributes are written `#![enable(..)]`",
            ),
            (
                "(a:\n",
                sp(2, 1),
                "a",
                "expected a value, found the end of the file",
            ),
        ];
        for (text, span, path, message) in cases {
            let e = perr(text);
            assert_eq!(e.message, *message, "message for {text:?}");
            assert_eq!(e.span, Some(*span), "position for {text:?}: {e}");
            assert_eq!(e.path, *path, "path for {text:?}");
            assert_eq!(e.suggestion, None, "suggestion for {text:?}");
        }
    }

    #[test]
    fn nesting_is_limited() {
        let ok = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert!(parse(&ok, SRC).is_ok());
        let deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        let e = perr(&deep);
        assert_eq!(e.span, Some(sp(1, 129)));
        assert_eq!(e.message, "nesting is deeper than 128 levels");
        assert_eq!(e.path.matches("[0]").count(), 128);
        // Far beyond the limit, unclosed, in every bracket kind: still an error, not a crash.
        for open in ["[", "{\"k\": ", "(a: ", "(", "Some(", "X("] {
            let e = perr(&open.repeat(100_000));
            assert!(e.message.contains("deeper than 128"), "{open}: {e}");
        }
        // A tree built by hand can be deeper than any parsed one; from_node refuses it too.
        #[derive(Debug, Deserialize)]
        struct Deep(#[allow(dead_code)] Vec<Deep>);
        let mut node = Node::new(Value::List(vec![]), sp(1, 1));
        for _ in 0..200 {
            node = Node::new(Value::List(vec![node]), sp(1, 1));
        }
        let e = from_node::<Deep>(&node).unwrap_err();
        assert_eq!(e.message, "nesting is deeper than 128 levels");
        assert!(from_node::<Deep>(&p(&ok)).is_ok());
    }

    // --- the deserializer ---------------------------------------------------------------------

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Pool {
        size: u32,
        #[serde(default)]
        timeout: Option<SimDuration>,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    enum Shape {
        Dot,
        Circle(f64),
        Rect(u32, u32),
        Poly {
            sides: u8,
            #[serde(default)]
            label: String,
        },
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Spec {
        workers: u32,
        #[serde(default)]
        queue: Option<u32>,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    enum Component {
        Service(Spec),
        Cache { size: u32 },
    }

    #[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
    struct Meters(u32);

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Pair(i32, String);

    #[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
    struct Marker;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Everything {
        name: String,
        ch: char,
        ratio: f64,
        flags: (bool, bool),
        shapes: Vec<Shape>,
        pools: BTreeMap<String, Pool>,
        meters: Meters,
        pair: Pair,
        marker: Marker,
        maybe: Option<Pool>,
        nothing: Option<u32>,
        #[serde(default)]
        extra: u8,
        comp: Component,
        unit: (),
    }

    const EVERYTHING: &str = r#"Everything(
        name: "api",
        ch: 'x',
        ratio: 2, // an integer where a float is wanted
        flags: (true, false),
        shapes: [Dot, "Dot", Circle(1.5), Rect(2, 3), Poly(sides: 5), Poly(sides: 3, label: "tri")],
        pools: {"primary": (size: 10), "primary db": Pool(size: 2, timeout: "1s")},
        meters: 5,
        pair: Pair(-1, "one"),
        marker: Marker,
        maybe: (size: 1),
        nothing: None,
        comp: Service(workers: 4),
        unit: (),
    )"#;

    fn everything() -> Everything {
        Everything {
            name: "api".into(),
            ch: 'x',
            ratio: 2.0,
            flags: (true, false),
            shapes: vec![
                Shape::Dot,
                Shape::Dot,
                Shape::Circle(1.5),
                Shape::Rect(2, 3),
                Shape::Poly {
                    sides: 5,
                    label: String::new(),
                },
                Shape::Poly {
                    sides: 3,
                    label: "tri".into(),
                },
            ],
            pools: BTreeMap::from([
                (
                    "primary".to_owned(),
                    Pool {
                        size: 10,
                        timeout: None,
                    },
                ),
                (
                    "primary db".to_owned(),
                    Pool {
                        size: 2,
                        timeout: Some(SimDuration::from_secs(1)),
                    },
                ),
            ]),
            meters: Meters(5),
            pair: Pair(-1, "one".into()),
            marker: Marker,
            maybe: Some(Pool {
                size: 1,
                timeout: None,
            }),
            nothing: None,
            extra: 0,
            comp: Component::Service(Spec {
                workers: 4,
                queue: None,
            }),
            unit: (),
        }
    }

    #[test]
    fn deserializes_derived_types() {
        assert_eq!(de::<Everything>(EVERYTHING), everything());
    }

    #[test]
    fn enums_take_all_four_shapes() {
        assert_eq!(de::<Shape>("Dot"), Shape::Dot);
        assert_eq!(de::<Shape>("\"Dot\""), Shape::Dot);
        assert_eq!(de::<Shape>("Circle(0.5)"), Shape::Circle(0.5));
        assert_eq!(de::<Shape>("Rect(1, 2,)"), Shape::Rect(1, 2));
        assert_eq!(
            de::<Shape>("Poly(sides: 4, label: \"sq\")"),
            Shape::Poly {
                sides: 4,
                label: "sq".into()
            }
        );
        let spec = Component::Service(Spec {
            workers: 4,
            queue: Some(8),
        });
        // A newtype variant written with the fields of what it wraps, or with the value.
        assert_eq!(de::<Component>("Service(workers: 4, queue: 8)"), spec);
        assert_eq!(de::<Component>("Service((workers: 4, queue: 8))"), spec);
        assert_eq!(
            de::<Component>("Service(Spec(workers: 4, queue: Some(8)))"),
            spec
        );
        assert_eq!(
            de::<Component>("Cache(size: 3)"),
            Component::Cache { size: 3 }
        );
        let e = derr::<Component>("Service(workers: 4, queu: 8)");
        assert_eq!(e.path, "queu");
        assert_eq!(e.span, Some(sp(1, 21)));
        assert_eq!(e.suggestion.as_deref(), Some("queue"));
        let e = derr::<Shape>("Circle");
        assert_eq!(e.message, "`Circle` needs a value: write `Circle(..)`");
        let e = derr::<Shape>("Dot(1)");
        assert_eq!(e.message, "`Dot` takes no value; write just `Dot`");
        let e = derr::<Shape>("Rect(1)");
        assert_eq!(e.message, "expected `Rect(..)` of 2 values, found 1 values");
        let e = derr::<Shape>("Rect(a: 1)");
        assert_eq!(
            e.message,
            "`Rect` takes 2 positional values, not named fields"
        );
        let e = derr::<Shape>("Rect");
        assert_eq!(e.message, "`Rect` needs 2 values: write `Rect(..)`");
        assert_eq!(e.span, Some(sp(1, 1)));
        let e = derr::<Shape>("Poly(4)");
        assert_eq!(
            e.message,
            "`Poly` takes named fields, as in `Poly(sides: ..)`, not positional values"
        );
        let e = derr::<Shape>("Poly");
        assert_eq!(e.message, "missing field `sides` in `Poly`");
        let e = derr::<Shape>("(sides: 4)");
        assert_eq!(
            e.message,
            "expected a variant of `Shape` (`Dot`, `Circle`, `Rect`, `Poly`), found a struct \
             (the variant name is missing)"
        );
        let e = derr::<Shape>("5");
        assert_eq!(
            e.message,
            "expected a variant of `Shape` (`Dot`, `Circle`, `Rect`, `Poly`), found the integer 5"
        );
        let e = derr::<Vec<Shape>>("[Dot, Cirlce(1.0)]");
        assert_eq!(e.suggestion.as_deref(), Some("Circle"));
        assert_eq!(e.span, Some(sp(1, 7)));
        assert_eq!(e.path, "[1]");
    }

    #[test]
    fn options_are_implicit_or_explicit() {
        let pool = Some(Pool {
            size: 1,
            timeout: Some(ms(5)),
        });
        assert_eq!(de::<Option<Pool>>("(size: 1, timeout: \"5ms\")"), pool);
        assert_eq!(
            de::<Option<Pool>>("Some((size: 1, timeout: Some(\"5ms\")))"),
            pool
        );
        assert_eq!(de::<Option<Pool>>("Some(size: 1, timeout: \"5ms\")"), pool);
        assert_eq!(de::<Option<Pool>>("Pool(size: 1, timeout: \"5ms\")"), pool);
        assert_eq!(de::<Option<Pool>>("None"), None);
        assert_eq!(de::<Option<Option<u8>>>("Some(None)"), Some(None));
        assert_eq!(de::<Option<Option<u8>>>("Some(Some(3))"), Some(Some(3)));
        assert_eq!(de::<Option<Option<u8>>>("3"), Some(Some(3)));
        assert_eq!(
            de::<Option<SimDuration>>("\"2s\""),
            Some(SimDuration::from_secs(2))
        );
    }

    #[test]
    fn maps_from_braces_or_fields() {
        let want = BTreeMap::from([("a".to_owned(), 1u8), ("b".to_owned(), 2)]);
        assert_eq!(de::<BTreeMap<String, u8>>("{\"a\": 1, \"b\": 2}"), want);
        assert_eq!(de::<BTreeMap<String, u8>>("(a: 1, b: 2)"), want);
        assert_eq!(de::<BTreeMap<String, u8>>("Named(a: 1, b: 2)"), want);
        assert_eq!(
            de::<BTreeMap<u32, char>>("{1: 'a', 0x10: 'b'}"),
            BTreeMap::from([(1, 'a'), (16, 'b')])
        );
        let e = derr::<BTreeMap<String, Pool>>("{\"ok\": (size: 1), \"bad key\": (size: \"x\")}");
        assert_eq!(e.path, "[\"bad key\"].size");
        assert_eq!(e.span, Some(sp(1, 37)));
        let e = derr::<BTreeMap<String, Pool>>("{\"ok\": (size: -1)}");
        assert_eq!(e.path, "ok.size");
        assert_eq!(e.message, "-1 does not fit in a u32");
    }

    #[test]
    fn tuples_newtypes_and_units() {
        assert_eq!(
            de::<(u8, String, bool)>("(1, \"a\", true)"),
            (1, "a".into(), true)
        );
        assert_eq!(de::<(u8, u8)>("[1, 2]"), (1, 2));
        assert_eq!(de::<[u8; 3]>("[1, 2, 3]"), [1, 2, 3]);
        assert_eq!(de::<Pair>("(1, \"a\")"), Pair(1, "a".into()));
        assert_eq!(de::<Pair>("Pair(1, \"a\")"), Pair(1, "a".into()));
        assert_eq!(de::<Meters>("5"), Meters(5));
        assert_eq!(de::<Meters>("(5)"), Meters(5));
        assert_eq!(de::<Meters>("Meters(5)"), Meters(5));
        assert_eq!(de::<Marker>("Marker"), Marker);
        assert_eq!(de::<Marker>("()"), Marker);
        de::<()>("()");
        assert_eq!(de::<Vec<u8>>("(1, 2)"), vec![1, 2]);
        assert_eq!(de::<char>("\"é\""), 'é');
        assert_eq!(de::<f32>("1.5"), 1.5);
        assert_eq!(
            de::<i128>("-170141183460469231731687303715884105728"),
            i128::MIN
        );
        let e = derr::<Pair>("Other(1, \"a\")");
        assert_eq!(e.message, "expected `Pair(..)`, found `Other(..)`");
        let e = derr::<Pair>("(1, \"a\", 3)");
        assert_eq!(e.message, "expected `Pair(..)` of 2 values, found 3 values");
        let e = derr::<(u8, u8)>("(1)");
        assert_eq!(e.message, "expected a tuple of 2 values, found 1 values");
        let e = derr::<Marker>("Other");
        assert_eq!(
            e.message,
            "expected `Marker` or `()`, found the bare name `Other`"
        );
        let e = derr::<char>("\"ab\"");
        assert_eq!(
            e.message,
            "expected a character such as 'x', found the string \"ab\""
        );
        let e = derr::<Vec<u8>>("{}");
        assert_eq!(e.message, "expected a list such as `[a, b]`, found a map");
    }

    #[test]
    fn any_sees_plain_data() {
        // serde_json's Value is built through deserialize_any: it shows what `any` produces.
        let json: serde_json::Value = de(
            r#"(a: 1, b: -2, c: 1.5, d: "s", e: 'c', f: true, g: None, h: Some(3),
                i: [1, (2, 3)], j: {"k": ()}, k: Name(x: 1), l: Tag(1, 2), m: Ident)"#,
        );
        assert_eq!(
            json,
            serde_json::json!({
                "a": 1, "b": -2, "c": 1.5, "d": "s", "e": "c", "f": true, "g": null, "h": 3,
                "i": [1, [2, 3]], "j": {"k": null}, "k": {"x": 1}, "l": [1, 2], "m": "Ident",
            })
        );
        // Beyond u64 and i64 the visitor is offered i128, which serde_json declines.
        let e = derr::<serde_json::Value>("-170141183460469231731687303715884105728");
        assert_eq!(e.span, Some(sp(1, 1)));
    }

    // --- the crate's real types ---------------------------------------------------------------

    #[test]
    fn reads_the_crates_types() {
        assert_eq!(de::<SimDuration>("\"250ms\""), ms(250));
        assert_eq!(
            de::<SimTime>("\"1h30m\""),
            SimTime::from_nanos(5_400_000_000_000)
        );
        assert_eq!(
            de::<Dist>("Exp(mean: \"20ms\")"),
            Dist::Exp {
                mean: Scalar::duration(ms(20))
            }
        );
        assert_eq!(
            de::<Dist>("LogNormal(p50: \"20ms\", p99: \"200ms\")"),
            Dist::LogNormal {
                p50: Scalar::duration(ms(20)),
                p99: Scalar::duration(ms(200)),
            }
        );
        assert_eq!(
            de::<Dist>("Zipf(n: 10000, s: 1.1)"),
            Dist::Zipf { n: 10000, s: 1.1 }
        );
        assert_eq!(de::<Dist>("Const(5)"), Dist::Const(Scalar::number(5.0)));
        assert_eq!(
            de::<Dist>("Empirical([\"1ms\", 2])"),
            Dist::Empirical(vec![Scalar::duration(ms(1)), Scalar::number(2.0)])
        );
        assert_eq!(
            de::<FaultEntry>("(at: \"5m\", fault: Crash(target: \"db\"))"),
            FaultEntry {
                at: Some(SimTime::from_nanos(300_000_000_000)),
                from: None,
                until: None,
                fault: Fault::Crash {
                    target: "db".into()
                },
            }
        );
        assert_eq!(de::<Fault>("Heal"), Fault::Heal);
    }

    const SERVICE: &str = r#"
        // The api tier: two request kinds, one of them through the pool.
        (
            workers: 8,
            queue_capacity: 100,
            kinds: [
                (name: "get", service: Exp(mean: "2ms")),
                (
                    name: "put",
                    service: LogNormal(p50: "5ms", p99: "50ms"),
                    calls: [(target: "db", timeout: "250ms", pool: "main")],
                ),
            ],
            pools: {"main": (pool_size: 4)},
        )
    "#;

    fn service() -> ServiceConfig {
        ServiceConfig {
            workers: 8,
            queue_capacity: Some(100),
            kinds: vec![
                KindConfig {
                    name: "get".into(),
                    service: Dist::Exp {
                        mean: Scalar::duration(ms(2)),
                    },
                    calls: vec![],
                    cache: None,
                },
                KindConfig {
                    name: "put".into(),
                    service: Dist::LogNormal {
                        p50: Scalar::duration(ms(5)),
                        p99: Scalar::duration(ms(50)),
                    },
                    calls: vec![CallConfig {
                        target: "db".into(),
                        kind: 0.into(),
                        timeout: ms(250),
                        pool: Some("main".into()),
                        fallback: false,
                        breaker: None,
                        retry: None,
                    }],
                    cache: None,
                },
            ],
            pools: BTreeMap::from([(
                "main".to_string(),
                PoolConfig {
                    pool_size: 4,
                    acquire_timeout: SimDuration::from_secs(30),
                    rate: None,
                },
            )]),
            drop_expired: false,
            shed_by_deadline: false,
            propagate_deadline: false,
            queue: Default::default(),
            memory: None,
            warmup: None,
            retry_after: None,
            rate_limit: None,
        }
    }

    #[test]
    fn reads_a_service_config() {
        assert_eq!(de::<ServiceConfig>(SERVICE), service());
    }

    #[test]
    fn unknown_fields_point_at_the_key() {
        let text = "(\n  workers: 4,\n  kinds: [],\n  pools: {\"a\": (pool_sise: 3)},\n)";
        let e = derr::<ServiceConfig>(text);
        assert_eq!(e.span, Some(sp(4, 17)));
        assert_eq!(e.path, "pools.a.pool_sise");
        assert_eq!(
            e.message,
            "unknown field `pool_sise`; expected one of `pool_size`, `acquire_timeout`, `rate`"
        );
        assert_eq!(e.suggestion.as_deref(), Some("pool_size"));
        assert_eq!(
            e.to_string(),
            "4:17: pools.a.pool_sise: unknown field `pool_sise`; expected one of `pool_size`, \
             `acquire_timeout`, `rate` (did you mean `pool_size`?)"
        );
        let e = derr::<ServiceConfig>("(workers: 4, kinds: [], zzz: 1)");
        assert_eq!(e.suggestion, None);
        assert_eq!(e.span, Some(sp(1, 25)));
        assert_eq!(e.path, "zzz");
        let text = "(workers: 1, kinds: [(name: \"a\", service: Exp(mean: 1),\n calls: [(target: \"db\", timout: \"1s\")])])";
        let e = derr::<ServiceConfig>(text);
        assert_eq!(e.path, "kinds[0].calls[0].timout");
        assert_eq!(e.span, Some(sp(2, 25)));
        assert_eq!(e.suggestion.as_deref(), Some("timeout"));
    }

    #[test]
    fn unknown_variants_point_at_the_name() {
        let text = "(workers: 1, kinds: [(name: \"a\", service: Expo(mean: \"1ms\"))])";
        let e = derr::<ServiceConfig>(text);
        assert_eq!(e.span, Some(sp(1, 43)));
        assert_eq!(e.path, "kinds[0].service");
        assert!(
            e.message
                .starts_with("unknown variant `Expo`; expected one of `Const`, `Exp`, `LogNormal`"),
            "{e}"
        );
        assert_eq!(e.suggestion.as_deref(), Some("Exp"));
        let e = derr::<Fault>("\"Heel\"");
        assert_eq!(e.suggestion.as_deref(), Some("Heal"));
    }

    #[test]
    fn bad_values_point_at_the_value() {
        let text =
            "(\n  workers: 1,\n  kinds: [(name: \"a\", service: Exp(mean: \"5 parsecs\"))],\n)";
        let e = derr::<ServiceConfig>(text);
        assert_eq!(e.span, Some(sp(3, 42)));
        assert_eq!(e.path, "kinds[0].service.mean");
        assert!(
            e.message.starts_with("invalid duration \"5 parsecs\""),
            "{e}"
        );
        assert!(
            e.to_string()
                .starts_with("3:42: kinds[0].service.mean: invalid duration")
        );

        let e = derr::<FaultEntry>("(at: 5, fault: Heal)");
        assert_eq!(e.span, Some(sp(1, 6)));
        assert_eq!(e.path, "at");
        assert_eq!(
            e.message,
            "expected a duration string such as \"250ms\", \"45s\" or \"1h30m\", found the integer 5"
        );
        let e = derr::<Dist>("Exp(mean: true)");
        assert_eq!(e.path, "mean");
        assert_eq!(
            e.message,
            "expected a number such as 0.3 or a duration string such as \"20ms\", found the \
             boolean true"
        );
    }

    #[test]
    fn wrong_types_read_well() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "(workers: \"4\", kinds: [])",
                "workers",
                "expected an integer (u32), found the string \"4\"",
            ),
            (
                "(workers: 4.5, kinds: [])",
                "workers",
                "expected an integer (u32), found the float 4.5",
            ),
            (
                "(workers: -1, kinds: [])",
                "workers",
                "-1 does not fit in a u32",
            ),
            (
                "(workers: 4, kinds: 5)",
                "kinds",
                "expected a list such as `[a, b]`, found the integer 5",
            ),
            (
                "(workers: 4, kinds: [], pools: {\"a\": [1]})",
                "pools.a",
                "expected `PoolConfig(..)`, found a list",
            ),
            (
                "(workers: 4, kinds: [], pools: {\"a\": Foo(pool_size: 1)})",
                "pools.a",
                "expected `PoolConfig(..)`, found `Foo(..)`",
            ),
            (
                "(workers: 4, kinds: [], pools: {\"a\": (1, 2)})",
                "pools.a",
                "expected `PoolConfig(..)` with named fields, as in `(pool_size: ..)`, found a \
                 tuple",
            ),
            (
                "(workers: 1, kinds: [(name: api, service: Exp(mean: 1))])",
                "kinds[0].name",
                "expected a string, found the bare name `api`; strings are written in quotes: \"api\"",
            ),
            (
                "(workers: 1, kinds: [(name: \"a\", service: Exp(mean: 1), calls: [(target: \"b\", timeout: \"1s\", fallback: 1)])])",
                "kinds[0].calls[0].fallback",
                "expected `true` or `false`, found the integer 1",
            ),
        ];
        for (text, path, message) in cases {
            let e = derr::<ServiceConfig>(text);
            assert_eq!(e.message, *message, "{text}");
            assert_eq!(e.path, *path, "{text}");
            assert!(e.span.is_some());
        }
        assert_eq!(derr::<u8>("300").message, "300 does not fit in a u8");
        assert_eq!(derr::<i8>("300").message, "300 does not fit in an i8");
        assert_eq!(
            derr::<String>("None").message,
            "expected a string, found `None`"
        );
        assert_eq!(
            derr::<f64>("\"1\"").message,
            "expected a number (f64), found the string \"1\""
        );
        assert_eq!(
            derr::<()>("5").message,
            "expected `()`, found the integer 5"
        );
    }

    #[test]
    fn missing_fields_name_the_struct() {
        let e = derr::<ServiceConfig>("\n  (kinds: [])");
        assert_eq!(e.message, "missing field `workers` in `ServiceConfig`");
        assert_eq!(e.span, Some(sp(2, 3)));
        assert_eq!(e.path, "");
        assert_eq!(
            e.to_string(),
            "2:3: missing field `workers` in `ServiceConfig`"
        );
        let e = derr::<FaultEntry>("(at: \"1s\", fault: Crash())");
        assert_eq!(e.message, "missing field `target` in `Crash`");
        assert_eq!(e.span, Some(sp(1, 19)));
        assert_eq!(e.path, "fault");
        let e = derr::<Vec<Pool>>("[(size: 1), ()]");
        assert_eq!(e.message, "missing field `size` in `Pool`");
        assert_eq!(e.path, "[1]");
    }

    #[test]
    fn errors_display_and_custom() {
        let e: Error = de::Error::custom("plain");
        assert_eq!(e.span, None);
        assert_eq!(e.path, "");
        assert_eq!(e.to_string(), "plain");
        let e = Error {
            span: Some(sp(3, 5)),
            path: "pool.pool_size".into(),
            message: "bad".into(),
            suggestion: Some("x".into()),
        };
        assert_eq!(
            e.to_string(),
            "3:5: pool.pool_size: bad (did you mean `x`?)"
        );
        let e: Error = de::Error::unknown_field("x", &[]);
        assert_eq!(e.message, "unknown field `x`; there are no fields here");
        let e: Error = de::Error::unknown_variant("B", &["A"]);
        assert_eq!(e.message, "unknown variant `B`; expected `A`");
        assert_eq!(e.suggestion.as_deref(), Some("A"));
        let e: Error = de::Error::invalid_length(3, &"a pair");
        assert_eq!(e.message, "expected a pair, found 3 values");
        let e: Error = de::Error::invalid_value(Unexpected::Signed(-1), &"a positive count");
        assert_eq!(
            e.message,
            "the integer -1 is not valid here; expected a positive count"
        );
        let e: Error = de::Error::duplicate_field("a");
        assert_eq!(e.message, "the field `a` is given twice");
    }

    // --- layering -----------------------------------------------------------------------------

    #[test]
    fn merge_merges_fields_and_replaces_the_rest() {
        let mut base = p("(a: 1, b: (c: 2, d: 3), l: [1, 2], t: (1, 2), s: \"x\")");
        let over = p("(\n b: (d: 4, e: 5),\n l: [9],\n t: (7,),\n f: 6)");
        base.merge(over);
        let mut got = base.clone();
        strip_spans(&mut got);
        assert_eq!(
            got,
            plain("(a: 1, b: (c: 2, d: 4, e: 5), l: [9], t: (7,), s: \"x\", f: 6)")
        );
        let Value::Struct { fields, .. } = &base.value else {
            panic!("a struct")
        };
        let keys: Vec<&str> = fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "l", "t", "s", "f"]);
        // Spans: `over`'s where it supplied the value, the base's elsewhere.
        assert_eq!(base.span, sp(1, 1));
        assert_eq!(fields[0].key_span, sp(1, 2));
        assert_eq!(fields[1].key_span, sp(2, 2));
        assert_eq!(fields[1].value.span, sp(2, 5));
        assert_eq!(base.get_path("b.c").map(|n| n.span), Some(sp(1, 15)));
        assert_eq!(base.get_path("b.d").map(|n| n.span), Some(sp(2, 9)));
        assert_eq!(base.get_path("l").map(|n| n.span), Some(sp(3, 5)));
        assert_eq!(fields[5].key_span, sp(5, 2));
    }

    /// Sets every span to the default, to compare trees by value.
    fn strip_spans(node: &mut Node) {
        node.span = Span::default();
        match &mut node.value {
            Value::List(items) | Value::Tuple { items, .. } => {
                items.iter_mut().for_each(strip_spans)
            }
            Value::Map(entries) => {
                for (k, v) in entries {
                    strip_spans(k);
                    strip_spans(v);
                }
            }
            Value::Struct { fields, .. } => {
                for f in fields {
                    f.key_span = Span::default();
                    strip_spans(&mut f.value);
                }
            }
            _ => {}
        }
    }

    fn merged(base: &str, over: &str) -> Node {
        let mut b = p(base);
        b.merge(p(over));
        strip_spans(&mut b);
        b
    }

    fn plain(text: &str) -> Node {
        let mut n = p(text);
        strip_spans(&mut n);
        n
    }

    #[test]
    fn merge_cases() {
        let cases: &[(&str, &str, &str)] = &[
            ("Some((x: 1, y: 2))", "Some((y: 3))", "Some((x: 1, y: 3))"),
            ("Some((x: 1, y: 2))", "(y: 3)", "Some((x: 1, y: 3))"),
            ("(x: 1, y: 2)", "Some((y: 3))", "Some((x: 1, y: 3))"),
            ("Some(1)", "Some(2)", "Some(2)"),
            ("Some((x: 1))", "None", "None"),
            ("None", "Some((x: 1))", "Some((x: 1))"),
            ("Exp(mean: 1)", "Exp(mean: 2)", "Exp(mean: 2)"),
            ("Exp(mean: 1)", "(mean: 2)", "Exp(mean: 2)"),
            ("(mean: 1)", "Exp(mean: 2)", "Exp(mean: 2)"),
            (
                "Exp(mean: 1)",
                "LogNormal(p50: 1, p99: 2)",
                "LogNormal(p50: 1, p99: 2)",
            ),
            ("Pair(1, 2)", "Pair(3)", "Pair(3)"),
            ("[1, 2, 3]", "[]", "[]"),
            ("(a: [1])", "(a: 2)", "(a: 2)"),
            ("5", "(a: 1)", "(a: 1)"),
            (
                "{\"a\": (x: 1), \"b\": 2}",
                "{\"a\": (y: 2), \"c\": 3}",
                "{\"a\": (x: 1, y: 2), \"b\": 2, \"c\": 3}",
            ),
            ("{1: (x: 1)}", "{1: (x: 2)}", "{1: (x: 2)}"),
            ("{\"a\": 1}", "(a: 2)", "(a: 2)"),
        ];
        for (base, over, want) in cases {
            assert_eq!(merged(base, over), plain(want), "{base} <- {over}");
        }
    }

    #[test]
    fn layering_model_scenario_variant() {
        // A model file, a scenario override, a variant's `set`, then the typed config.
        let mut tree = p(SERVICE);
        tree.merge(
            parse(
                "(workers: 16, pools: {\"main\": (acquire_timeout: \"1s\")})",
                SourceId(1),
            )
            .unwrap(),
        );
        let thirty = parse("30", SourceId(2)).unwrap();
        tree.set_path("pools.main.pool_size", thirty).unwrap();
        tree.set_path(
            "kinds[1].calls[0].timeout",
            parse("\"2s\"", SourceId(2)).unwrap(),
        )
        .unwrap();
        let got: ServiceConfig = from_node(&tree).unwrap();
        let mut want = service();
        want.workers = 16;
        want.pools.insert(
            "main".into(),
            PoolConfig {
                pool_size: 30,
                acquire_timeout: SimDuration::from_secs(1),
                rate: None,
            },
        );
        want.kinds[1].calls[0].timeout = SimDuration::from_secs(2);
        assert_eq!(got, want);
        // A typo in the variant's `set` is reported at the override, in its own source.
        tree.set_path("pools.main.pool_sise", parse("\n 3", SourceId(2)).unwrap())
            .unwrap();
        let e = from_node::<ServiceConfig>(&tree).unwrap_err();
        assert_eq!(
            e.span,
            Some(Span {
                source: SourceId(2),
                line: 2,
                col: 2
            })
        );
        assert_eq!(e.path, "pools.main.pool_sise");
        assert_eq!(e.suggestion.as_deref(), Some("pool_size"));
    }

    const TREE: &str = r#"(
        workers: 1,
        kinds: [(name: "a"), (name: "b")],
        pool: Some((size: 2)),
        nothing: None,
        pools: {"primary": (size: 1), "primary db": (size: 2)},
    )"#;

    fn set(path: &str, value: &str) -> Result<Node, Error> {
        let mut tree = p(TREE);
        tree.set_path(path, parse(value, SourceId(9)).unwrap())?;
        Ok(tree)
    }

    #[test]
    fn set_path_sets_and_inserts() {
        let at = |n: &Node, path: &str| n.get_path(path).map(|n| n.value.clone());
        let t = set("workers", "5").unwrap();
        assert_eq!(at(&t, "workers"), Some(Value::Int(5)));
        let t = set("kinds[1].name", "\"z\"").unwrap();
        assert_eq!(at(&t, "kinds[1].name"), Some(Value::Str("z".into())));
        assert_eq!(at(&t, "kinds[0].name"), Some(Value::Str("a".into())));
        let t = set("pool.size", "7").unwrap();
        assert_eq!(at(&t, "pool.size"), Some(Value::Int(7)));
        assert!(is_some_wrapper(t.field("pool").unwrap()));
        let t = set("pool.timeout", "\"1s\"").unwrap();
        let pool = through_some(t.field("pool").unwrap());
        let Value::Struct { fields, .. } = &pool.value else {
            panic!("a struct")
        };
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1].key, "timeout");
        assert_eq!(fields[1].key_span.source, SourceId(9));
        assert_eq!(fields[1].key_span, fields[1].value.span);
        let t = set("pools.primary.size", "9").unwrap();
        assert_eq!(at(&t, "pools.primary.size"), Some(Value::Int(9)));
        let t = set("pools[\"primary db\"].size", "8").unwrap();
        assert_eq!(at(&t, "pools[\"primary db\"].size"), Some(Value::Int(8)));
        let t = set("pools.secondary", "(size: 3)").unwrap();
        assert_eq!(at(&t, "pools.secondary.size"), Some(Value::Int(3)));
        assert!(
            t.field("pools")
                .and_then(|n| n.entry("secondary"))
                .is_some()
        );
        let t = set("kinds[0]", "(name: \"new\")").unwrap();
        assert_eq!(at(&t, "kinds[0].name"), Some(Value::Str("new".into())));
        let t = set("nothing", "4").unwrap();
        assert_eq!(at(&t, "nothing"), Some(Value::Int(4)));
        let t = set("brand_new", "1").unwrap();
        assert_eq!(at(&t, "brand_new"), Some(Value::Int(1)));
    }

    #[test]
    fn set_path_errors_say_what_is_there() {
        let value_span = Some(Span {
            source: SourceId(9),
            line: 1,
            col: 1,
        });
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            (
                "pol.size",
                "pol",
                "the root has no field `pol`; it has `workers`, `kinds`, `pool`, `nothing`, `pools`",
                Some("pool"),
            ),
            (
                "kinds[5].name",
                "kinds[5]",
                "`kinds` has 2 items, so the index 5 is out of range",
                None,
            ),
            (
                "kinds[2]",
                "kinds[2]",
                "`kinds` has 2 items, so the index 2 is out of range",
                None,
            ),
            (
                "pool[0]",
                "pool",
                "`pool` is a struct, not a list, so it has no item [0]",
                None,
            ),
            (
                "nothing.size",
                "nothing",
                "`nothing` is None here; set the whole `nothing` instead",
                None,
            ),
            (
                "workers.x",
                "workers",
                "`workers` is the integer 1 here, which has no field `x`; set the whole `workers` instead",
                None,
            ),
            (
                "kinds.name",
                "kinds",
                "`kinds` is a list; address an item by index, such as `kinds[0]`",
                None,
            ),
            (
                "pools.primery.size",
                "pools.primery",
                "`pools` has no entry \"primery\"",
                Some("primary"),
            ),
            (
                "kinds[0].nme.x",
                "kinds[0].nme",
                "`kinds[0]` has no field `nme`; it has `name`",
                Some("name"),
            ),
            (
                "",
                "",
                "the path is empty; name the field to set, such as `pool.pool_size`",
                None,
            ),
            (
                "a..b",
                "a..b",
                "bad path `a..b`: a name must follow each `.`",
                None,
            ),
            (
                "a[x]",
                "a[x]",
                "bad path `a[x]`: expected an index such as `[0]`",
                None,
            ),
            (
                ".a",
                ".a",
                "bad path `.a`: a `.` must follow a name or an index",
                None,
            ),
            (
                "a[\"b",
                "a[\"b",
                "bad path `a[\"b`: unterminated `[\"`",
                None,
            ),
        ];
        for (path, err_path, message, suggestion) in cases {
            let e = set(path, "0").unwrap_err();
            assert_eq!(e.message, *message, "{path}");
            assert_eq!(e.path, *err_path, "{path}");
            assert_eq!(e.suggestion.as_deref(), *suggestion, "{path}");
            assert_eq!(e.span, value_span, "{path}");
        }
    }

    #[test]
    fn get_path_and_accessors() {
        let mut t = p(TREE);
        assert_eq!(t.get_path("").map(|n| n.span), Some(sp(1, 1)));
        assert_eq!(
            t.get_path("kinds[1].name").map(|n| &n.value),
            Some(&Value::Str("b".into()))
        );
        assert_eq!(
            t.get_path("pool.size").map(|n| &n.value),
            Some(&Value::Int(2))
        );
        assert!(is_some_wrapper(t.get_path("pool").unwrap()));
        assert_eq!(
            t.get_path("pools[\"primary db\"].size").map(|n| &n.value),
            Some(&Value::Int(2))
        );
        assert_eq!(t.get_path("kinds[2]"), None);
        assert_eq!(t.get_path("nothing.size"), None);
        assert_eq!(t.get_path("workers.x"), None);
        assert_eq!(t.get_path("a..b"), None);
        assert_eq!(t.field("workers").map(|n| &n.value), Some(&Value::Int(1)));
        assert_eq!(t.field("zzz"), None);
        assert_eq!(t.entry("workers"), None);
        let pools = t.field("pools").unwrap();
        assert_eq!(
            pools
                .entry("primary")
                .and_then(|n| n.field("size"))
                .map(|n| &n.value),
            Some(&Value::Int(1))
        );
        assert_eq!(pools.entry("nope"), None);
        if let Some(w) = t.field_mut("workers") {
            w.value = Value::Int(3);
        }
        assert_eq!(t.field("workers").map(|n| &n.value), Some(&Value::Int(3)));
        let taken = t.take_field("pools").unwrap();
        assert!(matches!(taken.value, Value::Map(_)));
        assert_eq!(t.field("pools"), None);
        assert_eq!(t.take_field("pools"), None);
        assert_eq!(p("5").take_field("a"), None);
    }

    #[test]
    fn describe_reads_well() {
        let cases: &[(&str, &str)] = &[
            ("5", "the integer 5"),
            ("1.0", "the float 1.0"),
            ("true", "the boolean true"),
            ("\"abc\"", "the string \"abc\""),
            (
                "\"a string far longer than thirty-two characters\"",
                "a string",
            ),
            ("'x'", "the character 'x'"),
            ("()", "`()`"),
            ("None", "`None`"),
            ("RoundRobin", "`RoundRobin`"),
            ("[]", "an empty list"),
            ("[1]", "a list"),
            ("{}", "a map"),
            ("Exp(mean: 1)", "`Exp(..)`"),
            ("Some(1)", "`Some(..)`"),
            ("(a: 1)", "a struct"),
            ("(1, 2)", "a tuple"),
        ];
        for (text, want) in cases {
            assert_eq!(p(text).describe(), *want, "{text}");
        }
    }

    // --- properties ---------------------------------------------------------------------------

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Point(i32, i32);

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    enum Leaf {
        Empty,
        Wrapped(u32),
        Both(i8, bool),
        Named {
            x: f64,
            label: String,
        },
        Inner(Meters),
        Nested(Box<Leaf>),
        Many(Vec<Leaf>),
        /// A newtype variant around a struct: `Config(workers: ..)` with
        /// `unwrap_variant_newtypes`.
        Config(Spec),
        Boxed(Point),
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Zoo {
        flag: bool,
        small: u8,
        signed: i64,
        big: u64,
        ratio: f64,
        text: String,
        letter: char,
        maybe: Option<u32>,
        twice: Option<Option<bool>>,
        leaves: Vec<Leaf>,
        table: BTreeMap<String, i32>,
        pair: (i16, String),
        meters: Meters,
        point: Point,
        marker: Marker,
        unit: (),
    }

    fn float() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>().prop_filter("finite", |x| x.is_finite()),
            -1e6..1e6f64,
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.0),
        ]
    }

    fn leaf() -> impl Strategy<Value = Leaf> {
        let simple = prop_oneof![
            Just(Leaf::Empty),
            any::<u32>().prop_map(Leaf::Wrapped),
            (any::<i8>(), any::<bool>()).prop_map(|(a, b)| Leaf::Both(a, b)),
            (float(), any::<String>()).prop_map(|(x, label)| Leaf::Named { x, label }),
            any::<u32>().prop_map(|m| Leaf::Inner(Meters(m))),
            (any::<u32>(), any::<Option<u32>>())
                .prop_map(|(workers, queue)| Leaf::Config(Spec { workers, queue })),
            (any::<i32>(), any::<i32>()).prop_map(|(x, y)| Leaf::Boxed(Point(x, y))),
        ];
        simple.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                inner.clone().prop_map(|l| Leaf::Nested(Box::new(l))),
                prop::collection::vec(inner, 0..3).prop_map(Leaf::Many),
            ]
        })
    }

    prop_compose! {
        fn zoo()(
            flag in any::<bool>(),
            small in any::<u8>(),
            signed in any::<i64>(),
            big in any::<u64>(),
            ratio in float(),
            text in any::<String>(),
            letter in any::<char>(),
            maybe in any::<Option<u32>>(),
            twice in any::<Option<Option<bool>>>(),
            leaves in prop::collection::vec(leaf(), 0..4),
            table in prop::collection::btree_map(any::<String>(), any::<i32>(), 0..4),
            pair in (any::<i16>(), any::<String>()),
            meters in any::<u32>(),
            point in (any::<i32>(), any::<i32>()),
        ) -> Zoo {
            Zoo {
                flag, small, signed, big, ratio, text, letter, maybe, twice, leaves, table, pair,
                meters: Meters(meters),
                point: Point(point.0, point.1),
                marker: Marker,
                unit: (),
            }
        }
    }

    /// Valid RON texts to mutate.
    const SEEDS: &[&str] = &[
        EVERYTHING,
        SERVICE,
        TREE,
        "Exp(mean: \"20ms\")",
        "[1, 0x2, 3.5e1, 'c', r#\"x\"#]",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_never_panics_on_arbitrary_text(text in any::<String>()) {
            let _ = parse(&text, SRC);
        }

        #[test]
        fn parse_never_panics_on_ron_like_text(text in "[\\[\\]{}()<>:,\"'#!/*\\\\ .+\\-_a-zA-Z0-9rbxue\n\té]{0,80}") {
            if let Ok(node) = parse(&text, SRC) {
                let _ = from_node::<Everything>(&node);
                let _ = from_node::<serde_json::Value>(&node);
            }
        }

        #[test]
        fn parse_never_panics_on_mutated_ron(
            seed in 0..SEEDS.len(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<char>()), 1..6),
        ) {
            let mut chars: Vec<char> = SEEDS[seed].chars().collect();
            for (at, op, c) in edits {
                let i = at.index(chars.len() + 1);
                match op {
                    0 if i < chars.len() => { chars.remove(i); }
                    1 => chars.insert(i, c),
                    2 if i < chars.len() => chars[i] = c,
                    // Cut the text short: every unterminated form.
                    _ => chars.truncate(i),
                }
            }
            let text: String = chars.into_iter().collect();
            if let Ok(node) = parse(&text, SRC) {
                let _ = from_node::<Everything>(&node);
                let _ = from_node::<ServiceConfig>(&node);
                let _ = from_node::<serde_json::Value>(&node);
            }
        }

        #[test]
        fn reads_what_ron_writes(zoo in zoo()) {
            use ron::extensions::Extensions;
            use ron::ser::PrettyConfig;
            let configs = [
                None,
                // Named forms, comments (`/*[0]*/`) and more whitespace.
                Some(PrettyConfig::new().struct_names(true).enumerate_arrays(true)),
                // Raw strings, `#![enable(..)]`, and the forms the extensions leave out.
                Some(
                    PrettyConfig::new().escape_strings(false).extensions(
                        Extensions::IMPLICIT_SOME
                            | Extensions::UNWRAP_NEWTYPES
                            | Extensions::UNWRAP_VARIANT_NEWTYPES,
                    ),
                ),
            ];
            for config in configs {
                let text = match config {
                    None => ron::to_string(&zoo).unwrap(),
                    Some(config) => ron::ser::to_string_pretty(&zoo, config).unwrap(),
                };
                let by_ron: Zoo = ron::from_str(&text).unwrap();
                prop_assert_eq!(&by_ron, &zoo);
                let node = parse(&text, SRC)
                    .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
                let ours: Zoo = from_node(&node)
                    .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
                prop_assert_eq!(&ours, &zoo);
            }
        }
    }

    // --- the writer ---------------------------------------------------------------------------

    /// Identifiers the reader gives back as they are written, and ones that need `r#`.
    fn ident_name() -> impl Strategy<Value = String> + Clone {
        prop_oneof![
            "[a-zA-Z_][a-zA-Z0-9_]{0,6}",
            "[a-zA-Z0-9_][a-zA-Z0-9_.+-]{0,6}",
            prop::sample::select(vec![
                "true", "false", "inf", "NaN", "None", "Some", "r", "b"
            ])
            .prop_map(str::to_string),
        ]
    }

    fn leaf_node() -> impl Strategy<Value = Node> {
        let value = prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i128>().prop_map(Value::Int),
            float().prop_map(Value::Float),
            any::<String>().prop_map(Value::Str),
            any::<char>().prop_map(Value::Char),
            Just(Value::Unit),
            ident_name().prop_map(Value::Ident),
        ];
        value.prop_map(|v| Node::new(v, Span::default()))
    }

    /// Trees in the image of the reader: what `parse` can give (no empty anonymous struct or
    /// tuple, which read as `()`; `Some` with exactly one item; distinct field and string
    /// keys), spans left at the default.
    fn any_node() -> impl Strategy<Value = Node> {
        leaf_node().prop_recursive(4, 48, 5, |inner| {
            let node = |v: Value| Node::new(v, Span::default());
            let name = prop::option::of(ident_name());
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5)
                    .prop_map(move |xs| node(Value::List(xs))),
                prop::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(move |kvs| {
                    let mut seen = Vec::new();
                    let entries = kvs
                        .into_iter()
                        .filter(|(k, _)| match &k.value {
                            Value::Str(s) if seen.contains(s) => false,
                            Value::Str(s) => {
                                seen.push(s.clone());
                                true
                            }
                            _ => true,
                        })
                        .collect();
                    node(Value::Map(entries))
                }),
                (
                    name.clone()
                        .prop_filter("`Some` is a tuple", |n| n.as_deref() != Some("Some")),
                    prop::collection::btree_map(ident_name(), inner.clone(), 0..4),
                )
                    .prop_filter("`()` is the unit", |(n, fs)| n.is_some() || !fs.is_empty())
                    .prop_map(move |(name, fields)| {
                        let fields = fields
                            .into_iter()
                            .map(|(key, value)| Field {
                                key,
                                key_span: Span::default(),
                                value,
                            })
                            .collect();
                        node(Value::Struct { name, fields })
                    }),
                (name, prop::collection::vec(inner.clone(), 1..4)).prop_map(
                    move |(name, items)| {
                        let items = if name.as_deref() == Some("Some") {
                            items.into_iter().take(1).collect()
                        } else {
                            items
                        };
                        node(Value::Tuple { name, items })
                    }
                ),
            ]
        })
    }

    /// Whether two trees are equal but for their spans (and NaN is NaN).
    fn same(a: &Node, b: &Node) -> bool {
        let (mut a, mut b) = (a.clone(), b.clone());
        strip_spans(&mut a);
        strip_spans(&mut b);
        fn nan_to_text(n: &mut Node) {
            match &mut n.value {
                Value::Float(x) if x.is_nan() => {
                    n.value = Value::Ident(format!("NaN{}", x.is_sign_negative()))
                }
                Value::List(xs) | Value::Tuple { items: xs, .. } => {
                    xs.iter_mut().for_each(nan_to_text)
                }
                Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                    nan_to_text(k);
                    nan_to_text(v);
                }),
                Value::Struct { fields, .. } => {
                    fields.iter_mut().for_each(|f| nan_to_text(&mut f.value))
                }
                _ => {}
            }
        }
        nan_to_text(&mut a);
        nan_to_text(&mut b);
        a == b
    }

    #[test]
    fn pretty_and_flat_text_read_back_to_the_same_tree() {
        let mut runner = crate::prop::runner(1024, 4096, 11);
        let result = runner.run(&any_node(), |node| {
            for (how, text) in [("pretty", to_ron_pretty(&node)), ("flat", to_ron(&node))] {
                let back = parse(&text, SRC)
                    .map_err(|e| TestCaseError::fail(format!("{how}: {e}\n{text}")))?;
                prop_assert!(
                    same(&back, &node),
                    "{how} differs:\n{text}\n{back:?}\n{node:?}"
                );
            }
            let pretty = to_ron_pretty(&node);
            prop_assert!(pretty.ends_with('\n'));
            prop_assert_eq!(
                pretty.lines().count() == 1,
                pretty.trim_end() == to_ron(&node)
            );
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }

    #[test]
    fn pretty_text_is_indented_and_within_the_width() {
        let node = p(TREE);
        let text = to_ron_pretty(&node);
        assert!(same(&p(&text), &node), "{text}");
        assert!(text.lines().count() > 3, "a long value is broken:\n{text}");
        for line in text.lines() {
            assert!(line.chars().count() <= PRETTY_WIDTH, "too long: {line}");
            let indent = line.len() - line.trim_start().len();
            assert_eq!(
                indent % PRETTY_INDENT.len(),
                0,
                "indented by levels: {line:?}"
            );
        }
        // Every shipped scenario and model reads back the same, within the width.
        let files = crate::scenario::SHIPPED
            .iter()
            .map(|(_, path, text)| (*path, *text))
            .chain(crate::scenario::models::FILES.iter().copied());
        for (path, text) in files {
            let node = p(text);
            let pretty = to_ron_pretty(&node);
            assert!(same(&p(&pretty), &node), "{path}:\n{pretty}");
            let long = pretty.lines().filter(|l| l.chars().count() > PRETTY_WIDTH);
            // Only a value that cannot be broken (a long string) may run past the width.
            for line in long {
                assert!(line.trim_end_matches(',').ends_with('"'), "{path}: {line}");
            }
        }
        // A short value stays on one line, as `to_ron` writes it.
        let short = p("Exp(mean: \"20ms\")");
        assert_eq!(to_ron_pretty(&short), "Exp(mean: \"20ms\")\n");
        assert_eq!(to_ron(&short), "Exp(mean: \"20ms\")");
        // Names the reader would take for something else are written raw.
        let tricky = Node::new(Value::Ident("true".into()), Span::default());
        assert_eq!(to_ron(&tricky), "r#true");
        assert_eq!(
            parse("r#true", SRC).unwrap().value,
            Value::Ident("true".into())
        );
        let odd = p("(r#a-b: r#x.y(c: inf))");
        assert_eq!(to_ron(&odd), "(r#a-b: r#x.y(c: inf))");
        assert!(same(&p(&to_ron(&odd)), &odd));
        // A broken struct: one field a line, each with a trailing comma, the close on its own.
        let wide = format!("Wide(a: \"{}\", b: [1, 2])", "x".repeat(90));
        assert_eq!(
            to_ron_pretty(&p(&wide)),
            format!("Wide(\n    a: \"{}\",\n    b: [1, 2],\n)\n", "x".repeat(90))
        );
    }
}
