//! `matches` with a cache of compiled patterns.
//!
//! The crate compiles the pattern on every call, which dominates a rule such as
//! `components.all(c, c.name.matches('^[a-z0-9-]+$'))` over 100,000 components. Compiled
//! rules call [`MATCHES`] instead (the parser cannot produce that name, so a rule cannot call
//! it any other way); it keeps up to [`CACHED_PATTERNS`] compiled patterns, each under the
//! regex crate's default size limit, and behaves as the crate's `matches` otherwise.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cel::common::types::{CelBool, CelString, STRING_TYPE};
use cel::common::value::CowVal;
use cel::{DeclarationError, Env, ExecutionError};

/// The name compiled rules call for `matches`.
pub(super) const MATCHES: &str = "@tollgate_matches";

/// How many compiled patterns are kept; the cache is emptied when full.
pub(super) const CACHED_PATTERNS: usize = 256;

/// Declares [`MATCHES`] as a global `(string, string)` and a member `string.(string)`.
pub(super) fn declare(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_overload(
        MATCHES,
        "tollgate_matches_string_string",
        vec![STRING_TYPE, STRING_TYPE],
        matches,
    )?;
    env.add_member_overload(
        MATCHES,
        "tollgate_string_matches_string",
        STRING_TYPE,
        vec![STRING_TYPE],
        matches,
    )
}

fn compiled(pattern: &str) -> Result<Arc<regex::Regex>, regex::Error> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<regex::Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Ok(cache) = cache.lock()
        && let Some(regex) = cache.get(pattern)
    {
        return Ok(Arc::clone(regex));
    }
    let regex = Arc::new(regex::Regex::new(pattern)?);
    if let Ok(mut cache) = cache.lock() {
        if cache.len() >= CACHED_PATTERNS {
            cache.clear();
        }
        cache.insert(pattern.to_owned(), Arc::clone(&regex));
    }
    Ok(regex)
}

fn matches<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let text = |i: usize| {
        args.get(i)
            .and_then(|a| a.downcast_ref::<CelString>())
            .map(|s| s.inner())
    };
    let (Some(haystack), Some(pattern)) = (text(0), text(1)) else {
        return Err(ExecutionError::invalid_argument_count(2, args.len()));
    };
    match compiled(pattern) {
        Ok(regex) => Ok(CowVal::owned(CelBool::from(regex.is_match(haystack)))),
        Err(err) => Err(ExecutionError::function_error(
            "matches",
            format!("'{pattern}' not a valid regex:\n{err}"),
        )),
    }
}

/// Renames every `matches` call in `expr` to [`MATCHES`], without recursion.
pub(super) fn use_cached_matches(expr: &mut cel::IdedExpr) {
    use cel::common::ast::{EntryExpr, Expr};
    let mut stack = vec![expr];
    while let Some(expr) = stack.pop() {
        match &mut expr.expr {
            Expr::Call(call) => {
                if call.func_name == "matches"
                    && call.args.len() + usize::from(call.target.is_some()) == 2
                {
                    call.func_name = MATCHES.to_owned();
                }
                if let Some(target) = call.target.as_deref_mut() {
                    stack.push(target);
                }
                stack.extend(call.args.iter_mut());
            }
            Expr::Comprehension(c) => {
                let c = c.as_mut();
                stack.push(&mut c.iter_range);
                stack.push(&mut c.accu_init);
                stack.push(&mut c.loop_cond);
                stack.push(&mut c.loop_step);
                stack.push(&mut c.result);
            }
            Expr::List(list) => stack.extend(list.elements.iter_mut()),
            Expr::Map(map) => {
                for entry in &mut map.entries {
                    match &mut entry.expr {
                        EntryExpr::MapEntry(e) => {
                            stack.push(&mut e.key);
                            stack.push(&mut e.value);
                        }
                        EntryExpr::StructField(f) => stack.push(&mut f.value),
                    }
                }
            }
            Expr::Struct(s) => {
                for entry in &mut s.entries {
                    match &mut entry.expr {
                        EntryExpr::MapEntry(e) => {
                            stack.push(&mut e.key);
                            stack.push(&mut e.value);
                        }
                        EntryExpr::StructField(f) => stack.push(&mut f.value),
                    }
                }
            }
            Expr::Select(select) => stack.push(select.operand.as_mut()),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
}
