//! The layout source: a TOML file a person writes and reviews, compiled into a checked
//! [`Layout`].
//!
//! ```toml
//! readme = "Release pipeline of example-app"
//! expires = "180d"                       # or "2027-06-30", or "2027-06-30T00:00:00Z"
//!
//! [[step]]
//! name = "build"
//! functionaries = ["keys/builder.pub"]   # public key files, relative to this file
//! threshold = 1                          # how many of them must agree (default 1)
//! expected_command = ["make", "app"]
//! materials = ["src"]                    # optional: what the functionary records (-m)
//! products = ["dist"]                    # optional: ... and (-p); `layout check` uses them
//! expected_materials = ["MATCH src/* WITH PRODUCTS FROM source", "DISALLOW *"]
//! expected_products = ["CREATE dist/app", "DISALLOW *"]
//!
//! [[step]]                              # a step that expects signed attestations (ITE-10/11)
//! name = "scan"
//! functionaries = ["keys/scanner.pub"]
//! link = false                           # optional: attestations only, no link (default true)
//! expected_materials = ["MATCH dist/app.tar.gz WITH PRODUCTS FROM build", "DISALLOW *"]
//! [[step.predicate]]
//! type = "cyclonedx"                     # a short name or the predicate type's URI
//! functionaries = ["keys/scanner.pub"]   # optional: the step's by default
//! threshold = 1                          # optional
//! rules = [                              # CEL over subject, predicateType and predicate
//!   "predicate.components.all(c, c.name != 'left-pad')",
//!   { rule = "size(predicate.components) > 0", debug = "the SBOM is empty", warn = false, allow_if_no_claim = false },
//! ]
//!
//! [[inspection]]
//! name = "unpack"
//! run = ["tar", "-xzf", "dist/app.tar.gz"]
//! expected_materials = ["MATCH dist/* WITH PRODUCTS FROM build", "DISALLOW *"]
//! expected_products = ["ALLOW *"]
//! ```
//!
//! A rule is written as one string and split at whitespace, or, for a pattern that holds a
//! space, as a list of its tokens. Compiling builds the layout's JSON form and loads it with
//! [`Layout::from_value`], so that whatever compiles is exactly what `verify` accepts.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::base::limits::Limits;
use crate::base::timestamp;
use crate::model::keys::{KeyId, PublicKey};
use crate::model::layout::{Layout, LayoutError};
use crate::model::name::StepName;

/// Why a source does not compile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// Not valid TOML, or a field that is missing, unknown or of the wrong type.
    #[error("{0}")]
    Toml(#[source] toml::de::Error),
    /// The expiry is neither a duration nor a date.
    #[error(
        "expires = {0:?}: expected a duration such as \"90d\" (h, d, w or y), a date such as \
         \"2027-06-30\", or a time such as \"2027-06-30T00:00:00Z\""
    )]
    Expires(String),
    /// `[step]` or `[inspection]` with one pair of brackets: TOML then reads one table, but
    /// the source wants a list of them.
    #[error(
        "line {line}: [{table}] is one table, but a layout source lists each {table} in its own \
         [[{table}]] (two pairs of brackets): write [[{table}]]"
    )]
    SingleTable {
        /// `step` or `inspection`.
        table: &'static str,
        /// The header's line, from 1.
        line: usize,
    },
    /// Functionary key files that could not be read: every one, so that a single run names
    /// them all.
    #[error("{}", keys.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Keys {
        /// Each unreadable key file, in source order.
        keys: Vec<KeyProblem>,
    },
    /// A step that needs a link but names no functionary.
    #[error(
        "{location}: missing field `functionaries`: list the public key files of those who \
         perform the step (or, for a step done by attestations alone, write link = false and \
         [[step.predicate]] tables)"
    )]
    NoFunctionaries {
        /// Which step (`step[0] "build"`).
        location: String,
    },
    /// A `[[step.predicate]]` that cannot be compiled.
    #[error("{location}: {reason}")]
    Predicate {
        /// Which step and predicate (`step[2] "scan" predicate[0]`).
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// The compiled layout does not load (a rule, a threshold, a name ...).
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// A functionary key file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: functionary key {path:?}: {reason}")]
pub struct KeyProblem {
    /// Which step (`step[0] "build"`).
    pub location: String,
    /// The key file as written.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// One or more words: a string split at whitespace, or a list taken as it is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
enum Words {
    #[default]
    None,
    Line(String),
    List(Vec<String>),
}

impl Words {
    fn tokens(&self) -> Vec<String> {
        match self {
            Words::None => Vec::new(),
            Words::Line(line) => line.split_whitespace().map(str::to_owned).collect(),
            Words::List(list) => list.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    #[serde(default)]
    readme: String,
    expires: String,
    #[serde(default, rename = "step")]
    steps: Vec<RawStep>,
    #[serde(default, rename = "inspection")]
    inspections: Vec<RawInspection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: String,
    #[serde(default)]
    functionaries: Vec<String>,
    #[serde(default = "yes")]
    link: bool,
    #[serde(default, rename = "predicate")]
    predicates: Vec<RawPredicate>,
    #[serde(default = "one")]
    threshold: i64,
    #[serde(default)]
    expected_command: Words,
    materials: Option<Vec<String>>,
    products: Option<Vec<String>>,
    #[serde(default)]
    expected_materials: Vec<Words>,
    #[serde(default)]
    expected_products: Vec<Words>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInspection {
    name: String,
    run: Words,
    #[serde(default)]
    expected_materials: Vec<Words>,
    #[serde(default)]
    expected_products: Vec<Words>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPredicate {
    #[serde(rename = "type")]
    type_: String,
    functionaries: Option<Vec<String>>,
    #[serde(default = "one")]
    threshold: i64,
    /// Each a string or a table, read one by one so that an error names the rule.
    #[serde(default)]
    rules: Vec<toml::Value>,
}

/// A rule: its CEL text alone, or a table with its options.
#[derive(Debug)]
enum RawRule {
    Text(String),
    Table(RawRuleTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuleTable {
    rule: String,
    debug: Option<String>,
    #[serde(default)]
    warn: bool,
    #[serde(default)]
    allow_if_no_claim: bool,
}

impl RawRule {
    fn read(value: &toml::Value) -> Result<RawRule, String> {
        match value {
            toml::Value::String(text) => Ok(RawRule::Text(text.clone())),
            toml::Value::Table(_) => RawRuleTable::deserialize(value.clone())
                .map(RawRule::Table)
                .map_err(|e| e.message().to_owned()),
            other => Err(format!(
                "a rule is a CEL string or a table {{ rule = \"...\", debug = \"...\", warn = \
                 false, allow_if_no_claim = false }}, not a {}",
                other.type_str()
            )),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            RawRule::Text(rule) => json!({"rule": rule, "warn": false, "allow_if_no_claim": false}),
            RawRule::Table(t) => {
                let mut value = json!({
                    "rule": t.rule, "warn": t.warn, "allow_if_no_claim": t.allow_if_no_claim,
                });
                if let (Some(debug), Some(object)) = (&t.debug, value.as_object_mut()) {
                    object.insert("debug".into(), Value::from(debug.as_str()));
                }
                value
            }
        }
    }
}

fn one() -> i64 {
    1
}

fn yes() -> bool {
    true
}

/// The paths a step's functionary records, as the source declares them (not part of the
/// signed layout, which has no place for them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declared {
    /// What is recorded as materials (`-m`), if declared.
    pub materials: Option<Vec<String>>,
    /// What is recorded as products (`-p`), if declared.
    pub products: Option<Vec<String>>,
}

/// A compiled source.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The layout, checked as `verify` checks it.
    pub layout: Layout,
    /// Per step, the paths its functionary records.
    pub declared: BTreeMap<StepName, Declared>,
    /// Each functionary key's file as the source names it (the first name, if several name
    /// the same key), for pictures and messages that people read.
    pub key_files: BTreeMap<KeyId, String>,
}

/// Compiles a source. `key` reads a functionary's public key from the path written in the
/// source (the caller decides what it is relative to); `now` anchors a relative expiry.
pub fn compile(
    text: &str,
    key: &mut dyn FnMut(&str) -> Result<PublicKey, String>,
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<Compiled, SourceError> {
    let raw: RawSource = toml::from_str(text).map_err(|e| match single_table(text) {
        Some((table, line)) => SourceError::SingleTable { table, line },
        None => SourceError::Toml(e),
    })?;
    let expires = parse_expiry(&raw.expires, now)?;
    let mut keys = Map::new();
    let mut key_files = BTreeMap::new();
    let mut problems = Vec::new();
    let mut steps = Vec::with_capacity(raw.steps.len());
    let mut declared = Vec::with_capacity(raw.steps.len());
    for (index, step) in raw.steps.iter().enumerate() {
        let location = format!("step[{index}] {:?}", step.name);
        let mut keyids = |paths: &[String], location: &str| -> Vec<String> {
            let mut keyids = Vec::with_capacity(paths.len());
            for path in paths {
                let public = match key(path) {
                    Ok(public) => public,
                    Err(reason) => {
                        problems.push(KeyProblem {
                            location: location.to_owned(),
                            path: path.clone(),
                            reason,
                        });
                        continue;
                    }
                };
                let keyid = public.keyid();
                key_files
                    .entry(keyid.clone())
                    .or_insert_with(|| path.clone());
                keys.insert(keyid.to_string(), public.to_layout_entry(&keyid));
                keyids.push(keyid.to_string());
            }
            keyids
        };
        if step.link && step.functionaries.is_empty() {
            return Err(SourceError::NoFunctionaries { location });
        }
        let functionaries = keyids(&step.functionaries, &location);
        let mut predicates = Vec::with_capacity(step.predicates.len());
        for (p_index, predicate) in step.predicates.iter().enumerate() {
            let predicate_type = match crate::model::attestation::predicate_type(&predicate.type_) {
                Ok(uri) => uri,
                Err(e) => {
                    return Err(SourceError::Predicate {
                        location: format!("{location} predicate[{p_index}]"),
                        reason: e.to_string(),
                    });
                }
            };
            let mut attributes = Vec::with_capacity(predicate.rules.len());
            for (r_index, rule) in predicate.rules.iter().enumerate() {
                let rule = RawRule::read(rule).map_err(|reason| SourceError::Predicate {
                    location: format!("{location} predicate[{p_index}] rules[{r_index}]"),
                    reason,
                })?;
                attributes.push(rule.to_value());
            }
            let own = match &predicate.functionaries {
                Some(paths) => keyids(paths, &format!("{location} predicate[{p_index}]")),
                None => functionaries.clone(),
            };
            predicates.push(json!({
                "predicate_type": predicate_type,
                "functionaries": own,
                "threshold": predicate.threshold,
                "expected_attributes": attributes,
            }));
        }
        // `link = false`: the step is done by attestations alone, with no keys of its own.
        let (pubkeys, threshold) = if step.link {
            (functionaries, step.threshold)
        } else {
            if predicates.is_empty() {
                return Err(SourceError::Predicate {
                    location,
                    reason: "link = false needs at least one [[step.predicate]]: a step must \
                             require a link, attestations, or both"
                        .into(),
                });
            }
            (Vec::new(), 0)
        };
        let mut compiled = json!({
            "_type": "step",
            "name": step.name,
            "threshold": threshold,
            "pubkeys": pubkeys,
            "expected_command": step.expected_command.tokens(),
            "expected_materials": rules(&step.expected_materials),
            "expected_products": rules(&step.expected_products),
        });
        if !predicates.is_empty()
            && let Some(object) = compiled.as_object_mut()
        {
            object.insert("expected_predicates".into(), Value::Array(predicates));
        }
        steps.push(compiled);
        declared.push((
            step.name.clone(),
            Declared {
                materials: step.materials.clone(),
                products: step.products.clone(),
            },
        ));
    }
    if !problems.is_empty() {
        return Err(SourceError::Keys { keys: problems });
    }
    let inspections: Vec<Value> = raw
        .inspections
        .iter()
        .map(|inspection| {
            json!({
                "_type": "inspection",
                "name": inspection.name,
                "run": inspection.run.tokens(),
                "expected_materials": rules(&inspection.expected_materials),
                "expected_products": rules(&inspection.expected_products),
            })
        })
        .collect();
    let value = json!({
        "_type": "layout",
        "expires": timestamp::format(&expires),
        "readme": raw.readme,
        "keys": keys,
        "steps": steps,
        "inspect": inspections,
    });
    let layout = Layout::from_value(&value, limits)?;
    // The names loaded, so each is a valid step name.
    let declared = declared
        .into_iter()
        .filter_map(|(name, paths)| StepName::new(&name).ok().map(|n| (n, paths)))
        .collect();
    Ok(Compiled {
        layout,
        declared,
        key_files,
    })
}

/// The first `[step]` or `[inspection]` header written with one pair of brackets, and its
/// line: serde's own error for it ("invalid type: map, expected a sequence") does not say
/// what to write instead.
fn single_table(text: &str) -> Option<(&'static str, usize)> {
    text.lines().enumerate().find_map(|(index, line)| {
        let header = line.split('#').next().unwrap_or("").trim();
        let inner = header.strip_prefix('[')?.strip_suffix(']')?;
        if inner.starts_with('[') {
            return None;
        }
        match inner.trim() {
            "step" => Some(("step", index + 1)),
            "inspection" => Some(("inspection", index + 1)),
            "step.predicate" => Some(("step.predicate", index + 1)),
            _ => None,
        }
    })
}

fn rules(list: &[Words]) -> Vec<Vec<String>> {
    list.iter().map(Words::tokens).collect()
}

/// An expiry as the source writes it: a duration from `now` (`12h`, `90d`, `8w`, `1y` of 365
/// days), a date (midnight UTC), or a timestamp in the layout's own form.
pub fn parse_expiry(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, SourceError> {
    let fail = || SourceError::Expires(text.to_owned());
    if let Ok(time) = timestamp::parse(text) {
        return Ok(time);
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(fail);
    }
    let split = text.len().checked_sub(1).ok_or_else(fail)?;
    let (count, unit) = text.split_at(split);
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fail());
    }
    let count: i64 = count.parse().map_err(|_| fail())?;
    let hours = match unit {
        "h" => 1,
        "d" => 24,
        "w" => 24 * 7,
        "y" => 24 * 365,
        _ => return Err(fail()),
    };
    let span = count
        .checked_mul(hours)
        .and_then(Duration::try_hours)
        .ok_or_else(fail)?;
    let expires = now.checked_add_signed(span).ok_or_else(fail)?;
    // Whole seconds, as the layout stores them.
    timestamp::parse(&timestamp::format(&expires)).map_err(|_| fail())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        timestamp::parse("2026-11-30T12:00:00Z").expect("time")
    }

    #[test]
    fn expiry_forms() {
        let at = |text: &str| parse_expiry(text, now()).map(|t| timestamp::format(&t));
        assert_eq!(at("90d").expect("days"), "2027-02-28T12:00:00Z");
        assert_eq!(at("12h").expect("hours"), "2026-12-01T00:00:00Z");
        assert_eq!(at("2w").expect("weeks"), "2026-12-14T12:00:00Z");
        assert_eq!(at("1y").expect("years"), "2027-11-30T12:00:00Z");
        assert_eq!(at("2027-06-30").expect("date"), "2027-06-30T00:00:00Z");
        assert_eq!(
            at("2027-06-30T08:00:00Z").expect("time"),
            "2027-06-30T08:00:00Z"
        );
        for bad in ["", "d", "90", "90m", "-1d", "1.5d", "2027-02-30", "soon"] {
            assert!(
                matches!(at(bad), Err(SourceError::Expires(_))),
                "{bad:?} accepted"
            );
        }
        assert!(at("99999999999999y").is_err());
    }
}
