//! A Statement's JSON turned once into CEL values, with a summary of its shape for the cost
//! bound.
//!
//! Numbers: an integral value that fits `i64` (`7`, `7.0`, `7e0`, `-3`) becomes an `int`,
//! anything else (fractions, integers beyond `i64`, `u64` values above `i64::MAX`) a
//! `double`; the crate compares `int` and `double` with each other both ways, so `7.5 > 7`
//! and `x == 7` hold whatever the JSON form of `x`.
//!
//! The conversion walks the JSON with an explicit stack (no recursion), and refuses input
//! nested deeper than [`MAX_INPUT_DEPTH`] levels, so a hostile predicate cannot exhaust the
//! stack here or when the values are dropped.
//!
//! The shape summary merges every element of a list into one `[]` child: for each path of
//! field names and `[]` steps, the longest list (or map, or string) and the heaviest value
//! seen there. The `cost` module reads it to bound what a rule may iterate over.

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString,
};
use cel::common::value::Val;
use serde_json::Value;

use super::shared::Shared;

/// How deep the JSON handed to rules may nest. Honest predicates nest a few levels (SPDX,
/// CycloneDX and SLSA stay under 16); the metadata parser caps depth lower still.
pub const MAX_INPUT_DEPTH: usize = 128;

/// The weight of `bytes` bytes of string: one unit per 16 bytes, plus one for the value.
pub(super) fn string_weight(bytes: usize) -> u64 {
    1 + (bytes as u64).div_ceil(16)
}

/// What the values at one path of the input look like, over every occurrence.
#[derive(Debug, Default)]
pub(super) struct ShapeNode {
    /// The most elements (list), entries (map) or bytes (string) of a value here.
    pub max_len: u64,
    /// The heaviest value here: one unit per value inside it, plus string bytes / 16.
    pub max_weight: u64,
    /// The heaviest string here (strings are copied when a rule copies them; lists and
    /// maps are shared, see `shared`).
    pub max_string_weight: u64,
    /// The shapes of the map fields seen here.
    pub fields: HashMap<String, usize>,
    /// The shape of the list elements seen here.
    pub elem: Option<usize>,
}

/// The shape summary of one converted input.
#[derive(Debug, Default)]
pub(super) struct Shapes {
    /// Every shape; indices are shape ids.
    pub nodes: Vec<ShapeNode>,
}

impl Shapes {
    pub(super) fn add(&mut self) -> usize {
        self.nodes.push(ShapeNode::default());
        self.nodes.len() - 1
    }

    fn field(&mut self, shape: usize, key: &str) -> usize {
        if let Some(&id) = self.nodes[shape].fields.get(key) {
            return id;
        }
        let id = self.add();
        self.nodes[shape].fields.insert(key.to_owned(), id);
        id
    }

    fn elem(&mut self, shape: usize) -> usize {
        if let Some(id) = self.nodes[shape].elem {
            return id;
        }
        let id = self.add();
        self.nodes[shape].elem = Some(id);
        id
    }

    fn record(&mut self, shape: usize, len: u64, weight: u64) {
        let node = &mut self.nodes[shape];
        node.max_len = node.max_len.max(len);
        node.max_weight = node.max_weight.max(weight);
    }
}

/// One container being built, from the JSON container it consumes.
enum Frame {
    List {
        items: std::vec::IntoIter<Value>,
        out: Vec<Box<dyn Val>>,
        shape: usize,
        weight: u64,
    },
    Map {
        entries: serde_json::map::IntoIter,
        out: HashMap<CelMapKey<'static>, Box<dyn Val>>,
        pending: Option<String>,
        shape: usize,
        weight: u64,
    },
}

/// Why a value could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TooDeep;

/// A JSON number as CEL sees it.
fn number(n: &serde_json::Number) -> Box<dyn Val> {
    if let Some(i) = n.as_i64() {
        return Box::new(CelInt::from(i));
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    // Integral and within i64: an int (7.0, 7e0). The bounds are exact powers of two, so the
    // cast below cannot saturate.
    if f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f)
    {
        return Box::new(CelInt::from(f as i64));
    }
    Box::new(CelDouble::from(f))
}

/// Converts `value`, recording its shape under `shape`. The JSON is consumed as it is
/// converted: strings move into the CEL values rather than being copied, and each container is
/// freed once its contents moved, so a large predicate is not held twice.
pub(super) fn convert(
    value: Value,
    shapes: &mut Shapes,
    shape: usize,
) -> Result<Box<dyn Val>, TooDeep> {
    let mut stack: Vec<Frame> = Vec::new();
    // The value being placed, with its shape; containers open a frame instead.
    let mut next: Option<(Value, usize)> = Some((value, shape));
    loop {
        if let Some((value, shape)) = next.take() {
            let done: (Box<dyn Val>, u64) = match value {
                Value::Null => (Box::new(CelNull), 1),
                Value::Bool(b) => (Box::new(CelBool::from(b)), 1),
                Value::Number(n) => (number(&n), 1),
                Value::String(s) => {
                    let weight = string_weight(s.len());
                    shapes.record(shape, s.len() as u64, weight);
                    let node = &mut shapes.nodes[shape];
                    node.max_string_weight = node.max_string_weight.max(weight);
                    (Box::new(CelString::from(s)), weight)
                }
                Value::Array(items) => {
                    if stack.len() >= MAX_INPUT_DEPTH {
                        dismantle(Value::Array(items), stack);
                        return Err(TooDeep);
                    }
                    let len = items.len();
                    stack.push(Frame::List {
                        items: items.into_iter(),
                        out: Vec::with_capacity(len),
                        shape,
                        weight: 1,
                    });
                    continue;
                }
                Value::Object(map) => {
                    if stack.len() >= MAX_INPUT_DEPTH {
                        dismantle(Value::Object(map), stack);
                        return Err(TooDeep);
                    }
                    let len = map.len();
                    stack.push(Frame::Map {
                        entries: map.into_iter(),
                        out: HashMap::with_capacity(len),
                        pending: None,
                        shape,
                        weight: 1,
                    });
                    continue;
                }
            };
            match place(&mut stack, done) {
                Some(root) => return Ok(root),
                None => continue,
            }
        }
        // Advance the innermost container: its next child, or the finished container.
        let Some(top) = stack.last_mut() else {
            // Unreachable: the root is returned when placed.
            return Ok(Box::new(CelNull));
        };
        match top {
            Frame::List { items, shape, .. } => {
                let shape = *shape;
                if let Some(item) = items.next() {
                    next = Some((item, shapes.elem(shape)));
                    continue;
                }
            }
            Frame::Map {
                entries,
                pending,
                shape,
                ..
            } => {
                let shape = *shape;
                if let Some((key, item)) = entries.next() {
                    let field = shapes.field(shape, &key);
                    *pending = Some(key);
                    next = Some((item, field));
                    continue;
                }
            }
        }
        // The container is complete.
        let Some(frame) = stack.pop() else {
            return Ok(Box::new(CelNull));
        };
        let done: (Box<dyn Val>, u64) = match frame {
            Frame::List {
                out, shape, weight, ..
            } => {
                shapes.record(shape, out.len() as u64, weight);
                (Box::new(Shared(Arc::new(CelList::from(out)))), weight)
            }
            Frame::Map {
                out, shape, weight, ..
            } => {
                shapes.record(shape, out.len() as u64, weight);
                (Box::new(Shared(Arc::new(CelMap::from(out)))), weight)
            }
        };
        if let Some(root) = place(&mut stack, done) {
            return Ok(root);
        }
    }
}

/// Frees what is left of a value too deep to convert without recursing (serde_json's own drop
/// recurses once per level).
fn dismantle(value: Value, stack: Vec<Frame>) {
    let mut pending = vec![value];
    for frame in stack {
        match frame {
            Frame::List { items, .. } => pending.extend(items),
            Frame::Map { entries, .. } => pending.extend(entries.map(|(_, v)| v)),
        }
    }
    while let Some(value) = pending.pop() {
        match value {
            Value::Array(items) => pending.extend(items),
            Value::Object(map) => pending.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// Puts a finished value into its parent, or returns it when it is the root.
fn place(stack: &mut [Frame], (value, child_weight): (Box<dyn Val>, u64)) -> Option<Box<dyn Val>> {
    match stack.last_mut() {
        None => Some(value),
        Some(Frame::List { out, weight, .. }) => {
            *weight = weight.saturating_add(child_weight);
            out.push(value);
            None
        }
        Some(Frame::Map {
            out,
            pending,
            weight,
            ..
        }) => {
            *weight = weight.saturating_add(child_weight);
            let key = pending.take().unwrap_or_default();
            *weight = weight.saturating_add(string_weight(key.len()));
            out.insert(CelMapKey::from(key), value);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_int_when_integral_and_in_range() {
        let int = |text: &str| {
            let value: Value = serde_json::from_str(text).expect("json");
            let Value::Number(n) = value else {
                panic!("not a number")
            };
            number(&n).downcast_ref::<CelInt>().map(|i| *i.inner())
        };
        assert_eq!(int("7"), Some(7));
        assert_eq!(int("7.0"), Some(7));
        assert_eq!(int("7e0"), Some(7));
        assert_eq!(int("-3"), Some(-3));
        assert_eq!(int("7.5"), None);
        assert_eq!(int("18446744073709551615"), None);
        assert_eq!(int("1e300"), None);
    }

    #[test]
    fn shapes_merge_list_elements() {
        let value = serde_json::json!({"components": [
            {"name": "a", "licenses": [1, 2, 3]},
            {"name": "bb", "licenses": [1]},
        ]});
        let mut shapes = Shapes::default();
        let root = shapes.add();
        convert(value, &mut shapes, root).expect("converts");
        let components = shapes.nodes[root].fields["components"];
        assert_eq!(shapes.nodes[components].max_len, 2);
        let elem = shapes.nodes[components].elem.expect("elements");
        let licenses = shapes.nodes[elem].fields["licenses"];
        assert_eq!(shapes.nodes[licenses].max_len, 3);
    }

    #[test]
    fn deep_input_is_refused_without_recursion() {
        let mut value = Value::Null;
        for _ in 0..100_000 {
            value = Value::Array(vec![value]);
        }
        let mut shapes = Shapes::default();
        let root = shapes.add();
        // Refused, and what is left freed without overflowing the stack.
        assert_eq!(convert(value, &mut shapes, root).err(), Some(TooDeep));
    }
}
