//! Parameter substitution: `{name}` in rule tokens, expected commands and inspection commands
//! replaced by values given at verification time, as the reference's `str.format` does.
//!
//! Values are literal text: a value never becomes two argv elements or a new rule token, it is
//! never expanded again, and it may hold only `A-Z a-z 0-9 . _ - + / : @ = ,` (THREATS I1).
//! Rules built from substituted tokens are parsed and checked like any others, so a value such
//! as `../../etc` still meets the artifact-name checks (I2). `{{` and `}}` stand for braces; an
//! unknown `{name}` is an error, as in the reference.

use std::collections::BTreeMap;

use serde_json::Value;

/// Why substitution failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// A parameter name or value outside the allowed characters.
    #[error("parameter {name}={value:?}: {reason}")]
    Invalid {
        /// The name.
        name: String,
        /// The value.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The layout names a parameter that was not given.
    #[error("the layout uses {{{0}}}, but no value was given for {0}")]
    Missing(String),
    /// A brace that opens or closes nothing.
    #[error("unbalanced brace in {0:?} (write {{{{ or }}}} for a literal brace)")]
    Unbalanced(String),
}

/// Checks parameter names and values.
pub fn check(params: &BTreeMap<String, String>) -> Result<(), ParamError> {
    for (name, value) in params {
        let invalid = |reason| ParamError::Invalid {
            name: name.clone(),
            value: value.clone(),
            reason,
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(invalid("names use A-Z, a-z, 0-9 and _"));
        }
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b".-_+/:@=,".contains(&b);
        if !value.bytes().all(allowed) {
            return Err(invalid(
                "values may hold only A-Z a-z 0-9 . _ - + / : @ = , (no spaces, quotes, braces or shell characters)",
            ));
        }
    }
    Ok(())
}

/// Substitutes into one string.
pub fn substitute(text: &str, params: &BTreeMap<String, String>) -> Result<String, ParamError> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|(_, n)| *n) == Some('{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek().map(|(_, n)| *n) == Some('}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let rest = &text[at + 1..];
                let Some(end) = rest.find('}') else {
                    return Err(ParamError::Unbalanced(text.to_owned()));
                };
                let name = &rest[..end];
                let value = params
                    .get(name)
                    .ok_or_else(|| ParamError::Missing(name.to_owned()))?;
                out.push_str(value);
                for _ in 0..=name.chars().count() {
                    chars.next();
                }
            }
            '}' => return Err(ParamError::Unbalanced(text.to_owned())),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Substitutes into a layout payload: every rule token, every `expected_command` element and
/// every inspection `run` element.
pub fn apply(layout: &mut Value, params: &BTreeMap<String, String>) -> Result<(), ParamError> {
    let each = |list: Option<&mut Value>| -> Result<(), ParamError> {
        if let Some(Value::Array(items)) = list {
            for item in items {
                match item {
                    Value::String(s) => *s = substitute(s, params)?,
                    Value::Array(tokens) => {
                        for token in tokens {
                            if let Value::String(s) = token {
                                *s = substitute(s, params)?;
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    };
    for key in ["steps", "inspect"] {
        if let Some(Value::Array(items)) = layout.get_mut(key) {
            for item in items {
                for field in [
                    "expected_materials",
                    "expected_products",
                    "expected_command",
                    "run",
                ] {
                    each(item.get_mut(field))?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn substitutes_literally() {
        let p = params(&[("version", "1.2.3"), ("pkg", "tool")]);
        assert_eq!(
            substitute("{pkg}-{version}.tar.gz", &p),
            Ok("tool-1.2.3.tar.gz".into())
        );
        assert_eq!(substitute("{{literal}}", &p), Ok("{literal}".into()));
        assert_eq!(
            substitute("{missing}", &p),
            Err(ParamError::Missing("missing".into()))
        );
        assert!(matches!(
            substitute("a}b", &p),
            Err(ParamError::Unbalanced(_))
        ));
        assert!(matches!(
            substitute("{open", &p),
            Err(ParamError::Unbalanced(_))
        ));
    }

    #[test]
    fn i1_values_with_shell_or_format_characters_are_refused() {
        for value in [
            "x; rm -rf ~",
            "$(curl x)",
            "`id`",
            "{other}",
            "a b",
            "q\"uote",
        ] {
            assert!(
                matches!(
                    check(&params(&[("v", value)])),
                    Err(ParamError::Invalid { .. })
                ),
                "{value}"
            );
        }
        assert!(check(&params(&[("v", "registry.example/app:1.2@sha256")])).is_ok());
        // A value is never expanded again.
        let p = params(&[("a", "b"), ("b", "c")]);
        assert_eq!(substitute("{a}", &p), Ok("b".into()));
    }
}
