//! CEL rules over an attestation (ITE-11): compiled once from a layout's expected attributes,
//! evaluated against each Statement with a bounded cost, and answered as an [`Outcome`].
//!
//! A rule sees three variables: `subject` (the Statement's subjects, a list of maps),
//! `predicateType` (a string) and `predicate` (the predicate's JSON). The `cel` crate's
//! standard library and macros (`has`, `all`, `exists`, `exists_one`, `map`, `filter`) are on,
//! with its `strings`, `math` and `lists` extensions. JSON numbers that are integral and fit
//! `i64` (`7`, `7.0`, `7e0`) are `int`s, others `double`s; `int` and `double` compare with
//! each other both ways (`7.5 > 7`, `x == 7` for a JSON `7.0`).
//!
//! # Parameters
//!
//! `{name}` outside the rule's string literals is replaced by the layout parameter's value as a
//! double-quoted CEL string literal, every quote, backslash, control and non-ASCII character
//! escaped, so no value can change the expression around it. An unknown name is an error;
//! braces that do not hold a name (`{'a': 1}`, a regex's `{3}` inside a string) are left as
//! they are.
//!
//! # Bounds (fail closed, deterministic)
//!
//! Compiling refuses a rule longer than [`Limits::max_cel_rule_bytes`], nested deeper than
//! [`Limits::max_cel_depth`] (brackets are counted before the parser runs, the parser's own
//! recursion is capped, and so is the compiled tree's depth, which also bounds the
//! interpreter's recursion), or with more than [`Limits::max_cel_nodes`] nodes.
//!
//! The crate has no evaluation budget, so evaluation is bounded before it starts: the
//! attestation is converted once ([`CelInput`]), recording for every path of its JSON (list
//! elements merged) the longest list and heaviest value seen there; each rule's cost over
//! that input is then bounded from its expression tree (see the `cost` module: per
//! comprehension, the longest list at the path it iterates, nested comprehensions
//! multiplying; lists and strings the rule builds counted by what builds them). A rule whose
//! bound exceeds [`Limits::max_cel_cost`] is not run at all and its outcome is an
//! [`Outcome::Error`] naming the cap: a quadratic `exists` inside `all` over 100,000
//! components is refused at once, while linear rules over them run. Input nested deeper than
//! [`MAX_INPUT_DEPTH`] is refused when converted, without recursion.
//!
//! Two things keep honest rules fast over large predicates: the input's lists and maps are
//! shared rather than copied each time the crate iterates over them, and `matches` reuses
//! compiled patterns instead of compiling one per call.
//!
//! # Outcomes
//!
//! `true` and `false` are [`Outcome::True`] and [`Outcome::False`]; reading a field that is
//! absent (the crate's "no such key") is [`Outcome::NoClaim`]; anything else (a non-boolean
//! result, a type error, the cost cap) is [`Outcome::Error`]. `has(predicate.x)` tests for a
//! field without reading it.

mod cost;
mod functions;
mod shared;
mod value;

pub use value::MAX_INPUT_DEPTH;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use cel::common::ast::Expr;
use cel::common::types::CelBool;
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, Env, ExecutionError, IdedExpr, Value};

use crate::base::limits::{Limit, Limits};

/// Why a rule could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CelError {
    /// The rule's text is longer than the cap.
    #[error(
        "the rule is {len} bytes long, more than {limit} ({max}) allows: shorten it or split it into several rules"
    )]
    TooLong {
        /// Its length in bytes (after parameters are substituted).
        len: usize,
        /// The cap.
        max: usize,
        /// [`Limit::CelRuleBytes`].
        limit: Limit,
    },
    /// The rule nests deeper than the cap.
    #[error("the rule nests more than {max} levels deep ({limit}): flatten it")]
    TooDeep {
        /// The cap.
        max: usize,
        /// [`Limit::CelDepth`].
        limit: Limit,
    },
    /// The rule's expression tree has more nodes than the cap.
    #[error(
        "the rule has {nodes} expression nodes, more than {limit} ({max}) allows: split it into several rules"
    )]
    TooManyNodes {
        /// How many it has.
        nodes: usize,
        /// The cap.
        max: usize,
        /// [`Limit::CelNodes`].
        limit: Limit,
    },
    /// The rule is not valid CEL.
    #[error("the rule is not valid CEL at line {line}, column {column}: {message}")]
    Parse {
        /// The line (from 1).
        line: usize,
        /// The column, as the parser counts it.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The rule names a parameter that was not given.
    #[error("the rule uses {{{0}}}, but no parameter {0} was given (pass --param {0}=VALUE)")]
    UnknownParam(String),
    /// The CEL environment (standard library and extensions) could not be built.
    #[error("the CEL environment could not be built: {0}")]
    Environment(String),
}

/// The answer of one rule over one attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The rule holds.
    True,
    /// The rule does not hold.
    False,
    /// The rule read a field the attestation does not have.
    NoClaim {
        /// The absent field's name.
        field: String,
    },
    /// The rule could not be answered: an error, a non-boolean result, or a bound exceeded.
    Error {
        /// What went wrong.
        message: String,
    },
}

/// A compiled rule: checked against the caps, parsed, macros expanded.
#[derive(Debug)]
pub struct CelRule {
    text: String,
    expr: IdedExpr,
}

/// One Statement converted once for every rule evaluated over it.
#[derive(Debug)]
pub struct CelInput {
    converted: Result<Converted, String>,
}

#[derive(Debug)]
struct Converted {
    subject: Box<dyn Val>,
    predicate_type: Box<dyn Val>,
    predicate: Box<dyn Val>,
    shapes: value::Shapes,
    roots: [(&'static str, usize); 3],
}

/// The environment every rule runs in: the standard library and macros, and the strings,
/// math and lists extensions.
fn env() -> Result<Arc<Env>, CelError> {
    static ENV: OnceLock<Result<Arc<Env>, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        env.add_extension(cel::extensions::strings)
            .and_then(|()| env.add_extension(cel::extensions::math))
            .and_then(|()| env.add_extension(cel::extensions::lists))
            .and_then(|()| functions::declare(&mut env))
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(env))
    })
    .clone()
    .map_err(CelError::Environment)
}

impl CelRule {
    /// Compiles `text`, with `{name}` replaced by the quoted value of parameter `name`.
    pub fn compile(
        text: &str,
        params: &BTreeMap<String, String>,
        limits: &Limits,
    ) -> Result<CelRule, CelError> {
        let expr = compile(text, Some(params), limits)?;
        Ok(CelRule {
            text: text.to_owned(),
            expr,
        })
    }

    /// The rule as written, before parameters were substituted.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Evaluates the rule over `input`, first bounding its cost (see the module docs).
    pub fn evaluate(&self, input: &CelInput, limits: &Limits) -> Outcome {
        let converted = match &input.converted {
            Ok(converted) => converted,
            Err(message) => {
                return Outcome::Error {
                    message: message.clone(),
                };
            }
        };
        let mut analyzer =
            cost::Analyzer::new(&converted.shapes, &converted.roots, limits.max_cel_cost);
        if analyzer.cost(&self.expr).is_err() {
            return Outcome::Error {
                message: format!(
                    "the rule could cost more than {} ({}) over this attestation, so it was not run: \
                     avoid nesting loops over long lists (such as exists inside all)",
                    Limit::CelCost,
                    limits.max_cel_cost
                ),
            };
        }
        let env = match env() {
            Ok(env) => env,
            Err(e) => {
                return Outcome::Error {
                    message: e.to_string(),
                };
            }
        };
        let mut context = Context::with_env(env);
        context.set_variable_resolver(converted);
        match Value::resolve_val(&self.expr, &context) {
            Ok(value) => match value.downcast_ref::<CelBool>() {
                Some(b) if *b.inner() => Outcome::True,
                Some(_) => Outcome::False,
                None => Outcome::Error {
                    message: format!(
                        "the rule returned {}, not a boolean",
                        value.get_type().name()
                    ),
                },
            },
            Err(ExecutionError::NoSuchKey(field)) => Outcome::NoClaim {
                field: field.to_string(),
            },
            Err(e) => Outcome::Error {
                message: e.to_string(),
            },
        }
    }
}

impl CelInput {
    /// Converts a Statement's `subject`, `predicateType` and `predicate` (absent ones are
    /// `null`) once, with the shape summary the cost bound reads.
    pub fn new(statement: &serde_json::Value) -> CelInput {
        // serde_json clones recursively: a value too deep to convert is not cloned.
        if let Some(name) = too_deep(statement) {
            return CelInput::too_deep(name);
        }
        CelInput::from_statement(statement.clone())
    }

    fn too_deep(name: &str) -> CelInput {
        CelInput {
            converted: Err(format!(
                "the attestation's {name} nests deeper than {} levels, more than rules read",
                value::MAX_INPUT_DEPTH
            )),
        }
    }

    /// [`CelInput::new`] consuming the Statement: its strings move into the converted form and
    /// its containers are freed as they are converted, so that a large predicate is not held
    /// twice.
    pub fn from_statement(mut statement: serde_json::Value) -> CelInput {
        let mut shapes = value::Shapes::default();
        let mut converted = Vec::with_capacity(3);
        for name in ["subject", "predicateType", "predicate"] {
            let shape = shapes.add();
            let json = statement
                .as_object_mut()
                .and_then(|o| o.remove(name))
                .unwrap_or(serde_json::Value::Null);
            match value::convert(json, &mut shapes, shape) {
                Ok(v) => converted.push((v, shape)),
                Err(value::TooDeep) => return CelInput::too_deep(name),
            }
        }
        let mut parts = converted.into_iter();
        let converted = match (parts.next(), parts.next(), parts.next()) {
            (Some((subject, s)), Some((predicate_type, t)), Some((predicate, p))) => {
                Ok(Converted {
                    subject,
                    predicate_type,
                    predicate,
                    shapes,
                    roots: [("subject", s), ("predicateType", t), ("predicate", p)],
                })
            }
            _ => Err("the attestation could not be converted".to_owned()),
        };
        CelInput { converted }
    }
}

/// The first of the Statement's fields CEL reads that nests deeper than
/// [`value::MAX_INPUT_DEPTH`], found without recursion.
fn too_deep(statement: &serde_json::Value) -> Option<&'static str> {
    ["subject", "predicateType", "predicate"]
        .into_iter()
        .find(|name| {
            let mut stack: Vec<(&serde_json::Value, usize)> =
                statement.get(name).map(|v| (v, 0)).into_iter().collect();
            while let Some((value, depth)) = stack.pop() {
                let children: Box<dyn Iterator<Item = &serde_json::Value>> = match value {
                    serde_json::Value::Array(items) => Box::new(items.iter()),
                    serde_json::Value::Object(map) => Box::new(map.values()),
                    _ => continue,
                };
                if depth >= value::MAX_INPUT_DEPTH {
                    return true;
                }
                stack.extend(children.map(|child| (child, depth + 1)));
            }
            false
        })
}

impl VariableResolver for Converted {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let value: &'b dyn Val = match variable {
            "subject" => self.subject.as_ref(),
            "predicateType" => self.predicate_type.as_ref(),
            "predicate" => self.predicate.as_ref(),
            _ => return None,
        };
        Some(CowVal::Borrowed(value))
    }
}

/// Checks a rule as `layout check` does, before parameters are known: each `{name}` stands for
/// a string.
pub fn check_syntax(text: &str, limits: &Limits) -> Result<(), CelError> {
    compile(text, None, limits).map(|_| ())
}

fn compile(
    text: &str,
    params: Option<&BTreeMap<String, String>>,
    limits: &Limits,
) -> Result<IdedExpr, CelError> {
    let too_long = |len| CelError::TooLong {
        len,
        max: limits.max_cel_rule_bytes,
        limit: Limit::CelRuleBytes,
    };
    let too_deep = CelError::TooDeep {
        max: limits.max_cel_depth,
        limit: Limit::CelDepth,
    };
    if text.len() > limits.max_cel_rule_bytes {
        return Err(too_long(text.len()));
    }
    let (source, depth) = substitute(text, params)?;
    if source.len() > limits.max_cel_rule_bytes {
        return Err(too_long(source.len()));
    }
    if depth > limits.max_cel_depth {
        return Err(too_deep);
    }
    let parser = env()?
        .parser()
        .max_recursion_depth(u16::try_from(limits.max_cel_depth).unwrap_or(u16::MAX - 1));
    let mut expr = parser.parse(&source).map_err(|errors| {
        let first = errors.errors.first();
        let message = first.map_or_else(|| "unknown error".to_owned(), |e| e.msg.clone());
        if message.starts_with("Recursion limit") {
            return too_deep.clone();
        }
        let (line, column) = first.map_or((0, 0), |e| e.pos);
        CelError::Parse {
            line: usize::try_from(line).unwrap_or(0),
            column: usize::try_from(column).unwrap_or(0),
            message,
        }
    })?;
    let (nodes, deepest) = measure(&expr);
    if deepest > limits.max_cel_depth {
        return Err(too_deep);
    }
    if nodes > limits.max_cel_nodes {
        return Err(CelError::TooManyNodes {
            nodes,
            max: limits.max_cel_nodes,
            limit: Limit::CelNodes,
        });
    }
    functions::use_cached_matches(&mut expr);
    Ok(expr)
}

/// The number of nodes of `expr` and its depth, walked without recursion.
fn measure(expr: &IdedExpr) -> (usize, usize) {
    let mut stack = vec![(expr, 1usize)];
    let (mut nodes, mut deepest) = (0, 0);
    while let Some((expr, depth)) = stack.pop() {
        nodes += 1;
        deepest = deepest.max(depth);
        let below = depth + 1;
        match &expr.expr {
            Expr::Call(call) => {
                stack.extend(call.target.iter().map(|t| (t.as_ref(), below)));
                stack.extend(call.args.iter().map(|a| (a, below)));
            }
            Expr::Comprehension(c) => {
                for part in [
                    &c.iter_range,
                    &c.accu_init,
                    &c.loop_cond,
                    &c.loop_step,
                    &c.result,
                ] {
                    stack.push((part, below));
                }
            }
            Expr::List(list) => stack.extend(list.elements.iter().map(|e| (e, below))),
            Expr::Map(map) => {
                for entry in &map.entries {
                    push_entry(&mut stack, &entry.expr, below);
                }
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    push_entry(&mut stack, &entry.expr, below);
                }
            }
            Expr::Select(select) => stack.push((&select.operand, below)),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
    (nodes, deepest)
}

fn push_entry<'e>(
    stack: &mut Vec<(&'e IdedExpr, usize)>,
    entry: &'e cel::common::ast::EntryExpr,
    depth: usize,
) {
    match entry {
        cel::common::ast::EntryExpr::MapEntry(e) => {
            stack.push((&e.key, depth));
            stack.push((&e.value, depth));
        }
        cel::common::ast::EntryExpr::StructField(f) => stack.push((&f.value, depth)),
    }
}

/// Replaces `{name}` outside string literals with the quoted parameter value (or `""` when
/// `params` is `None`), and measures the bracket nesting outside string literals.
fn substitute(
    text: &str,
    params: Option<&BTreeMap<String, String>>,
) -> Result<(String, usize), CelError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' {
            // A string literal: copied as is, to its closing quote.
            let raw = i > 0
                && matches!(chars[i - 1], 'r' | 'R')
                && !(i > 1 && (chars[i - 2].is_alphanumeric() || chars[i - 2] == '_'));
            let triple = chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c);
            let quote_len = if triple { 3 } else { 1 };
            let start = i;
            i += quote_len;
            while i < chars.len() {
                if chars[i] == '\\' && !raw {
                    i += 2;
                    continue;
                }
                if chars[i] == c
                    && (!triple || (chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c)))
                {
                    i += quote_len;
                    break;
                }
                i += 1;
            }
            let end = i.min(chars.len());
            out.extend(&chars[start..end]);
            continue;
        }
        if c == '{' {
            let name_len = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                .count();
            if name_len > 0 && chars.get(i + 1 + name_len) == Some(&'}') {
                let name: String = chars[i + 1..i + 1 + name_len].iter().collect();
                match params {
                    Some(params) => {
                        let value = params
                            .get(&name)
                            .ok_or_else(|| CelError::UnknownParam(name.clone()))?;
                        out.push_str(&quote(value));
                    }
                    None => out.push_str("\"\""),
                }
                i += name_len + 2;
                continue;
            }
        }
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    Ok((out, deepest))
}

/// `value` as a double-quoted CEL string literal that means exactly `value`.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            ' '..='~' => out.push(c),
            c if u32::from(c) <= 0xFFFF => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
