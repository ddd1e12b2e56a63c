//! The cost bound: an upper bound on the work a rule can do over one input, computed from the
//! rule's expression tree and the input's shape summary before the rule runs.
//!
//! Each sub-expression gets an abstract value: the input path it stands for when known, a
//! bound on its length (list elements, map entries, string bytes) and a bound on its weight
//! (one unit per value inside it plus one per 16 bytes of string). Its cost is the work to
//! evaluate it, in the same units:
//!
//! * a field read or a literal costs one; reading a field of a value the rule built also
//!   copies it (its weight);
//! * building a list or map costs the weight of what goes in (the crate copies the values),
//!   except lists and maps of the input, which are shared (one unit; their strings copied);
//! * a function or operator costs one plus the weight of its arguments (it may read them
//!   whole), and some more where they do more: `matches` 16 plus the product of text and pattern,
//!   `distinct` the square of its list, `sort` 64 per unit;
//! * a comprehension (`all`, `exists`, `exists_one`, `map`, `filter`, `sortBy`) costs 16,
//!   its range, then, per element, 4 plus the copy of the element (as above) plus its condition and
//!   step, times the most elements the range can hold: the longest list recorded at that
//!   input path, or for a list the rule built, its length bound. Nested comprehensions
//!   therefore multiply: `components.all(c, components.exists(...))` costs about n².
//! * what a comprehension accumulates (the list `map` and `filter` build) grows by the
//!   weight one step adds, times the number of elements; appending to it costs only the new
//!   elements, as the crate appends in place.
//!
//! Results that can be larger than their arguments are bounded by what the function can
//! produce: `+` the sum, `split` one string per byte, `join` the list plus a separator per
//! element, `replace` a replacement per byte, `format` 100 digits of precision per argument,
//! `lists.range(n)` `n` elements when `n` is a literal (and no bound, so refused, otherwise).
//! Anything else is bounded by the weight of its arguments plus 32 units. Arithmetic
//! saturates, so a bound too large to count is refused like any other.

use cel::IdedExpr;
use cel::common::ast::{EntryExpr, Expr, LiteralValue};

use super::value::{Shapes, string_weight};

/// The fixed cost of running a comprehension (the crate opens a scope and binds variables),
/// in units, measured against the rest so that a unit stays near the same time.
const PER_COMPREHENSION: u64 = 16;

/// The fixed cost of one iteration of a comprehension, on top of its condition and step.
const PER_ELEMENT: u64 = 4;

/// What the analysis knows about the value of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Abs {
    /// The input path this value is read from, when known.
    pub shape: Option<usize>,
    /// The most elements, entries or string bytes the value can hold.
    pub len: u64,
    /// The most units it can weigh.
    pub weight: u64,
}

impl Abs {
    const SCALAR: Abs = Abs {
        shape: None,
        len: 0,
        weight: 1,
    };

    /// A value about which only its weight is known: no longer than 16 × its weight.
    fn unknown(weight: u64) -> Abs {
        Abs {
            shape: None,
            len: weight.saturating_mul(16),
            weight,
        }
    }

    fn join(self, other: Abs) -> Abs {
        Abs {
            shape: if self.shape == other.shape {
                self.shape
            } else {
                None
            },
            len: self.len.max(other.len),
            weight: self.weight.max(other.weight),
        }
    }
}

/// The bound exceeded the budget (or could not be counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Exceeded;

/// A variable in scope: a comprehension's element or accumulator, or an input root.
struct Binding {
    name: String,
    value: Abs,
    /// The accumulator of a comprehension that the crate appends to in place.
    append: bool,
}

/// Bounds the cost of one expression against one input.
pub(super) struct Analyzer<'a> {
    shapes: &'a Shapes,
    scopes: Vec<Binding>,
    budget: u64,
}

impl<'a> Analyzer<'a> {
    /// An analyzer over `shapes`, with the input roots bound by name to their shapes.
    pub fn new(shapes: &'a Shapes, roots: &[(&str, usize)], budget: u64) -> Analyzer<'a> {
        let mut analyzer = Analyzer {
            shapes,
            scopes: Vec::new(),
            budget,
        };
        for (name, shape) in roots {
            let value = analyzer.shape(*shape);
            analyzer.scopes.push(Binding {
                name: (*name).to_owned(),
                value,
                append: false,
            });
        }
        analyzer
    }

    /// The bound on the cost of evaluating `expr`, or [`Exceeded`] when over the budget.
    pub fn cost(&mut self, expr: &IdedExpr) -> Result<u64, Exceeded> {
        let (_, cost) = self.expr(expr)?;
        if cost > self.budget {
            return Err(Exceeded);
        }
        Ok(cost)
    }

    fn shape(&self, id: usize) -> Abs {
        match self.shapes.nodes.get(id) {
            Some(node) => Abs {
                shape: Some(id),
                len: node.max_len,
                weight: node.max_weight.max(1),
            },
            None => Abs::SCALAR,
        }
    }

    /// What copying `value` costs: a value of the input is shared (one unit) unless it is a
    /// string, which is copied; a value the rule built is copied whole.
    fn copy(&self, value: Abs) -> u64 {
        match value.shape.and_then(|id| self.shapes.nodes.get(id)) {
            Some(node) => node.max_string_weight.max(1),
            None => value.weight,
        }
    }

    fn lookup(&self, name: &str) -> Option<&Binding> {
        self.scopes.iter().rev().find(|b| b.name == name)
    }

    fn check(&self, cost: u64) -> Result<u64, Exceeded> {
        if cost > self.budget {
            Err(Exceeded)
        } else {
            Ok(cost)
        }
    }

    fn expr(&mut self, expr: &IdedExpr) -> Result<(Abs, u64), Exceeded> {
        match &expr.expr {
            Expr::Unspecified => Ok((Abs::SCALAR, 1)),
            Expr::Literal(literal) => Ok((literal_abs(literal), 1)),
            Expr::Ident(name) => {
                let value = self.lookup(name).map_or(Abs::SCALAR, |b| b.value);
                Ok((value, 1))
            }
            Expr::Select(select) => {
                let (operand, cost) = self.expr(&select.operand)?;
                if select.test {
                    return Ok((Abs::SCALAR, cost.saturating_add(1)));
                }
                let value = match operand.shape {
                    Some(id) => match self.shapes.nodes[id].fields.get(&select.field) {
                        Some(&field) => self.shape(field),
                        // Absent everywhere in the input: the read fails.
                        None => Abs::SCALAR,
                    },
                    None => Abs::unknown(operand.weight),
                };
                let copy = if operand.shape.is_some() {
                    0
                } else {
                    value.weight
                };
                Ok((
                    value,
                    self.check(cost.saturating_add(1).saturating_add(copy))?,
                ))
            }
            Expr::List(list) => {
                let mut cost = 1u64;
                let mut weight = 1u64;
                for element in &list.elements {
                    let (value, c) = self.expr(element)?;
                    cost = cost.saturating_add(c).saturating_add(self.copy(value));
                    weight = weight.saturating_add(value.weight);
                }
                let value = Abs {
                    shape: None,
                    len: list.elements.len() as u64,
                    weight,
                };
                Ok((value, self.check(cost)?))
            }
            Expr::Map(map) => self.entries(map.entries.iter().map(|e| &e.expr)),
            Expr::Struct(strct) => self.entries(strct.entries.iter().map(|e| &e.expr)),
            Expr::Call(call) => {
                let mut args: Vec<&IdedExpr> = Vec::with_capacity(call.args.len() + 1);
                let mut name = call.func_name.clone();
                match call.target.as_deref() {
                    // `lists.range(n)`: a namespaced function, not a member call on a variable.
                    Some(IdedExpr {
                        expr: Expr::Ident(namespace),
                        ..
                    }) if self.lookup(namespace).is_none() => {
                        name = format!("{namespace}.{name}");
                    }
                    Some(target) => args.push(target),
                    None => {}
                }
                args.extend(call.args.iter());
                self.call(&name, &args)
            }
            Expr::Comprehension(comprehension) => {
                let (range, range_cost) = self.expr(&comprehension.iter_range)?;
                let (init, init_cost) = self.expr(&comprehension.accu_init)?;
                let element = match range.shape.map(|id| &self.shapes.nodes[id]) {
                    Some(node) if node.fields.is_empty() && node.elem.is_some() => {
                        self.shape(node.elem.unwrap_or_default())
                    }
                    _ => Abs::unknown(range.weight),
                };
                let append = appends_in_place(comprehension);
                let iterations = range.len;
                let bind = |this: &mut Self, accu: Abs| {
                    this.scopes.push(Binding {
                        name: comprehension.iter_var.clone(),
                        value: element,
                        append: false,
                    });
                    if let Some(var2) = &comprehension.iter_var2 {
                        this.scopes.push(Binding {
                            name: var2.clone(),
                            value: Abs::unknown(range.weight),
                            append: false,
                        });
                    }
                    this.scopes.push(Binding {
                        name: comprehension.accu_var.clone(),
                        value: accu,
                        append,
                    });
                };
                let unbind = |this: &mut Self| {
                    let n = 2 + usize::from(comprehension.iter_var2.is_some());
                    let keep = this.scopes.len().saturating_sub(n);
                    this.scopes.truncate(keep);
                };
                // Pass 1: how much one step adds to the accumulator.
                bind(self, init);
                let first = self.expr(&comprehension.loop_step);
                unbind(self);
                let (step, step_cost) = first?;
                let grow_len = step.len.saturating_sub(init.len);
                let grow_weight = step.weight.saturating_sub(init.weight);
                let accu = if grow_len == 0 && grow_weight == 0 {
                    init.join(step)
                } else {
                    Abs::unknown(0).join(Abs {
                        shape: None,
                        len: init.len.saturating_add(grow_len.saturating_mul(iterations)),
                        weight: init
                            .weight
                            .saturating_add(grow_weight.saturating_mul(iterations)),
                    })
                };
                // Pass 2: the costs with the accumulator at its largest.
                bind(self, accu);
                let costs = (|| {
                    let step_cost = if accu == init {
                        step_cost
                    } else {
                        self.expr(&comprehension.loop_step)?.1
                    };
                    let (_, cond_cost) = self.expr(&comprehension.loop_cond)?;
                    let (result, result_cost) = self.expr(&comprehension.result)?;
                    Ok((step_cost, cond_cost, result, result_cost))
                })();
                unbind(self);
                let (step_cost, cond_cost, result, result_cost) = costs?;
                let per_element = self
                    .copy(element)
                    .saturating_add(step_cost)
                    .saturating_add(cond_cost)
                    .saturating_add(PER_ELEMENT);
                let cost = range_cost
                    .saturating_add(PER_COMPREHENSION)
                    .saturating_add(init_cost)
                    .saturating_add(per_element.saturating_mul(iterations))
                    .saturating_add(result_cost)
                    .saturating_add(result.weight);
                Ok((result, self.check(cost)?))
            }
        }
    }

    fn entries<'e>(
        &mut self,
        entries: impl Iterator<Item = &'e EntryExpr>,
    ) -> Result<(Abs, u64), Exceeded> {
        let mut cost = 1u64;
        let mut weight = 1u64;
        let mut len = 0u64;
        for entry in entries {
            let parts: Vec<&IdedExpr> = match entry {
                EntryExpr::MapEntry(e) => vec![&e.key, &e.value],
                EntryExpr::StructField(f) => vec![&f.value],
            };
            for part in parts {
                let (value, c) = self.expr(part)?;
                cost = cost.saturating_add(c).saturating_add(self.copy(value));
                weight = weight.saturating_add(value.weight);
            }
            len += 1;
        }
        let value = Abs {
            shape: None,
            len,
            weight,
        };
        Ok((value, self.check(cost)?))
    }

    fn call(&mut self, name: &str, args: &[&IdedExpr]) -> Result<(Abs, u64), Exceeded> {
        let mut values = Vec::with_capacity(args.len());
        let mut cost = 1u64;
        for arg in args {
            let (value, c) = self.expr(arg)?;
            cost = cost.saturating_add(c);
            values.push(value);
        }
        let weight = |i: usize| values.get(i).map_or(1, |v: &Abs| v.weight);
        let len = |i: usize| values.get(i).map_or(0, |v: &Abs| v.len);
        let all_weights = values
            .iter()
            .fold(0u64, |sum, v| sum.saturating_add(v.weight));
        let (value, work) = match name {
            // Short-circuits and negation: no copies.
            "_&&_" | "_||_" | "!_" | "@not_strictly_false" => (Abs::SCALAR, 1),
            "_?_:_" => (
                values
                    .get(1)
                    .copied()
                    .unwrap_or(Abs::SCALAR)
                    .join(values.get(2).copied().unwrap_or(Abs::SCALAR)),
                1,
            ),
            // Reads without copying: `size` looks at the length only, comparisons walk both
            // sides together, the others read their arguments once.
            "size" => (Abs::SCALAR, 1),
            "_==_" | "_!=_" | "_<_" | "_<=_" | "_>_" | "_>=_" => {
                (Abs::SCALAR, weight(0).min(weight(1)))
            }
            "@in" | "contains" | "startsWith" | "endsWith" | "indexOf" | "lastIndexOf" => {
                (Abs::SCALAR, all_weights)
            }
            // 16 for finding the compiled pattern, then text × pattern.
            "matches" | super::functions::MATCHES => (
                Abs::SCALAR,
                weight(0)
                    .saturating_mul(weight(1))
                    .saturating_add(all_weights)
                    .saturating_add(16),
            ),
            // Numbers (and empty strings or lists): nothing grows.
            "_+_" if len(0) == 0 && len(1) == 0 => (Abs::SCALAR, 1),
            "_+_" => {
                let value = Abs {
                    shape: None,
                    len: len(0).saturating_add(len(1)),
                    weight: weight(0).saturating_add(weight(1)),
                };
                let in_place = matches!(
                    &args.first().map(|a| &a.expr),
                    Some(Expr::Ident(accu)) if self.lookup(accu).is_some_and(|b| b.append)
                );
                // In place, the new elements move over (their copies were counted when
                // the list holding them was built).
                let work = if in_place {
                    len(1).saturating_add(1)
                } else {
                    value.weight
                };
                (value, work)
            }
            "_[_]" | "_[?_]" => {
                let target = values.first().copied().unwrap_or(Abs::SCALAR);
                let value = match (target.shape, args.get(1).map(|a| &a.expr)) {
                    (Some(id), Some(Expr::Literal(LiteralValue::String(key)))) => self.shapes.nodes
                        [id]
                        .fields
                        .get(key.inner())
                        .map_or(Abs::SCALAR, |&f| self.shape(f)),
                    (Some(id), _) if self.shapes.nodes[id].fields.is_empty() => self.shapes.nodes
                        [id]
                        .elem
                        .map_or(Abs::SCALAR, |e| self.shape(e)),
                    _ => Abs::unknown(target.weight),
                };
                let copy = if target.shape.is_some() {
                    0
                } else {
                    value.weight
                };
                (value, weight(1).saturating_add(copy))
            }
            "split" => {
                let pieces = len(0).saturating_add(1);
                let value = Abs::unknown(pieces.saturating_add(weight(0)));
                (value, value.weight.saturating_add(weight(0)))
            }
            "join" => {
                let sep = values.get(1).map_or(0, |v| v.len);
                let bytes = len(0)
                    .saturating_mul(sep)
                    .saturating_add(weight(0).saturating_mul(16));
                let value = Abs::unknown(string_weight_u64(bytes));
                (value, value.weight.saturating_add(weight(0)))
            }
            "replace" => {
                let text = len(0);
                let new = values.get(2).map_or(0, |v| v.len);
                let bytes = text
                    .saturating_add(1)
                    .saturating_mul(new)
                    .saturating_add(text);
                let value = Abs::unknown(string_weight_u64(bytes));
                (value, value.weight.saturating_add(all_weights))
            }
            "format" => {
                // Each argument prints at most its own bytes or a number with 100 digits of
                // precision (the crate's cap) and 309 of integer part.
                let bytes = len(0)
                    .saturating_add(weight(1).saturating_mul(16))
                    .saturating_add(len(1).saturating_mul(512));
                let value = Abs::unknown(string_weight_u64(bytes));
                (value, value.weight.saturating_add(all_weights))
            }
            "strings.quote" | "base64.encode" => {
                let value =
                    Abs::unknown(string_weight_u64(len(0).saturating_mul(6)).saturating_add(1));
                (value, value.weight.saturating_add(all_weights))
            }
            "lists.range" => match args.first().map(|a| &a.expr) {
                Some(Expr::Literal(LiteralValue::Int(n))) => {
                    let n = u64::try_from(*n.inner()).unwrap_or(0);
                    let value = Abs {
                        shape: None,
                        len: n,
                        weight: n.saturating_add(1),
                    };
                    (value, value.weight)
                }
                _ => (Abs::unknown(u64::MAX), u64::MAX),
            },
            "distinct" => (Abs::unknown(weight(0)), weight(0).saturating_mul(weight(0))),
            "sort" | "@sortByAssociatedKeys" => {
                (Abs::unknown(all_weights), all_weights.saturating_mul(64))
            }
            _ => (
                Abs::unknown(all_weights.saturating_add(32)),
                all_weights.saturating_add(32),
            ),
        };
        Ok((value, self.check(cost.saturating_add(work))?))
    }
}

fn string_weight_u64(bytes: u64) -> u64 {
    1u64.saturating_add(bytes.div_ceil(16))
}

fn literal_abs(literal: &LiteralValue) -> Abs {
    match literal {
        LiteralValue::String(s) => Abs {
            shape: None,
            len: s.inner().len() as u64,
            weight: string_weight(s.inner().len()),
        },
        LiteralValue::Bytes(b) => Abs {
            shape: None,
            len: b.inner().len() as u64,
            weight: string_weight(b.inner().len()),
        },
        _ => Abs::SCALAR,
    }
}

/// Whether the crate runs this comprehension by appending to a list in place (its
/// `AppendStep`): an empty list to start, a literal condition, the accumulator as result, and
/// a step `accu + [..]`, maybe guarded as `g ? accu + [..] : accu`.
fn appends_in_place(c: &cel::common::ast::ComprehensionExpr) -> bool {
    let accu = c.accu_var.as_str();
    let is_accu = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(name) if name == accu);
    let appends = |e: &IdedExpr| match &e.expr {
        Expr::Call(call) if call.func_name == "_+_" && call.target.is_none() => {
            matches!(call.args.as_slice(), [lhs, rhs] if is_accu(lhs) && matches!(rhs.expr, Expr::List(_)))
        }
        _ => false,
    };
    let empty_init = matches!(&c.accu_init.expr, Expr::List(list) if list.elements.is_empty());
    if !empty_init || !is_accu(&c.result) || !matches!(c.loop_cond.expr, Expr::Literal(_)) {
        return false;
    }
    match &c.loop_step.expr {
        Expr::Call(call) if call.func_name == "_?_:_" && call.target.is_none() => {
            matches!(call.args.as_slice(), [_, step, otherwise] if is_accu(otherwise) && appends(step))
        }
        _ => appends(&c.loop_step),
    }
}
