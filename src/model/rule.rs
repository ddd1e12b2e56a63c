//! Artifact rules, parsed from their token lists into a typed rule when the layout is loaded.
//!
//! The grammar is the reference's (keywords in any case; patterns, prefixes and step names
//! case-sensitive). THREATS F5 lists lowercase keywords for rejection, but the reference's
//! `unpack_rule` lowercases every token before it compares keywords, so `match foo with
//! products from build` is a valid rule there; refusing it would refuse layouts the reference
//! writes and verifies. Interop wins: keywords are read in any ASCII case (see the README's
//! "Where Tollgate is stricter than the reference"):
//!
//! ```text
//! MATCH <pattern> [IN <source-prefix>] WITH (MATERIALS|PRODUCTS) [IN <destination-prefix>] FROM <step>
//! CREATE <pattern>      DELETE <pattern>      MODIFY <pattern>
//! ALLOW <pattern>       DISALLOW <pattern>    REQUIRE <artifact-name>
//! ```
//!
//! Anything else is an error naming the rule's index (THREATS F5). What a rule means when it
//! is applied is the verifier's business; this module only checks its form.

use crate::model::artifact::ArtifactPath;
use crate::model::name::StepName;
use crate::model::pattern::Pattern;

/// Why a rule is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {tokens:?}: {reason}")]
pub struct RuleError {
    /// The rule's tokens as written.
    pub tokens: Vec<String>,
    /// Which part of the grammar the rule breaks.
    pub problem: RuleProblem,
    /// What is wrong.
    pub reason: String,
}

/// Which part of the grammar a rejected rule breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleProblem {
    /// No tokens at all.
    Empty,
    /// The first token is no rule type.
    UnknownType,
    /// `CREATE`, `DELETE`, `MODIFY`, `ALLOW`, `DISALLOW` or `REQUIRE` without exactly one
    /// argument.
    Arity,
    /// A `MATCH` of the wrong length, or with `WITH`, `IN` or `FROM` missing or misplaced.
    MatchForm,
    /// Neither `MATERIALS` nor `PRODUCTS` after `WITH`.
    ArtifactKind,
    /// A pattern that does not compile or can never match.
    Pattern,
    /// `REQUIRE` given a pattern, or a name that is no artifact path.
    RequireName,
    /// A prefix after `IN` that is no artifact path (an empty one included).
    Prefix,
    /// A step name after `FROM` that is no step name.
    StepName,
}

/// Which side of a link a `MATCH` compares against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    /// The link's materials.
    Materials,
    /// The link's products.
    Products,
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleKind {
    /// `MATCH pattern [IN src] WITH kind [IN dst] FROM step`.
    Match {
        /// The pattern, matched against names with `source_prefix` removed.
        pattern: Pattern,
        /// Only artifacts under this folder are candidates (no trailing `/`).
        source_prefix: Option<String>,
        /// Which side of the other step's link to compare against.
        kind: ArtifactKind,
        /// The folder the other step holds them under (no trailing `/`).
        destination_prefix: Option<String>,
        /// The other step.
        from: StepName,
    },
    /// `CREATE pattern`.
    Create(Pattern),
    /// `DELETE pattern`.
    Delete(Pattern),
    /// `MODIFY pattern`.
    Modify(Pattern),
    /// `ALLOW pattern`.
    Allow(Pattern),
    /// `DISALLOW pattern`.
    Disallow(Pattern),
    /// `REQUIRE name`: a literal name, no pattern.
    Require(ArtifactPath),
}

/// A checked rule, with its tokens as written (which is what layouts store and sign).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRule {
    tokens: Vec<String>,
    kind: RuleKind,
}

impl ArtifactRule {
    /// Parses one rule from its tokens.
    pub fn parse(tokens: &[String]) -> Result<ArtifactRule, RuleError> {
        let fail = |(problem, reason): (RuleProblem, String)| RuleError {
            tokens: tokens.to_vec(),
            problem,
            reason,
        };
        let keyword = |i: usize| tokens.get(i).map(|t| t.to_ascii_lowercase());
        let pattern = |i: usize| checked_pattern(&tokens[i]).map_err(fail);
        let Some(first) = keyword(0) else {
            return Err(fail((RuleProblem::Empty, "empty rule".into())));
        };
        let kind = match first.as_str() {
            "create" | "delete" | "modify" | "allow" | "disallow" | "require" => {
                if tokens.len() != 2 {
                    return Err(fail((
                        RuleProblem::Arity,
                        format!(
                            "{} takes exactly one argument, got {}",
                            first.to_uppercase(),
                            tokens.len() - 1
                        ),
                    )));
                }
                match first.as_str() {
                    "create" => RuleKind::Create(pattern(1)?),
                    "delete" => RuleKind::Delete(pattern(1)?),
                    "modify" => RuleKind::Modify(pattern(1)?),
                    "allow" => RuleKind::Allow(pattern(1)?),
                    "disallow" => RuleKind::Disallow(pattern(1)?),
                    _ => {
                        // Off-spec: the reference reads `REQUIRE *.tar` as the literal name
                        // "*.tar", which is never what the author meant.
                        if tokens[1].contains(['*', '?', '[']) {
                            return Err(fail((
                                RuleProblem::RequireName,
                                "REQUIRE takes a literal artifact name, not a pattern".into(),
                            )));
                        }
                        RuleKind::Require(
                            ArtifactPath::new(&tokens[1])
                                .map_err(|e| fail((RuleProblem::RequireName, e.to_string())))?,
                        )
                    }
                }
            }
            "match" => parse_match(tokens).map_err(fail)?,
            other => {
                return Err(fail((
                    RuleProblem::UnknownType,
                    format!(
                        "unknown rule type {other:?}: expected MATCH, CREATE, DELETE, MODIFY, \
                         ALLOW, DISALLOW or REQUIRE"
                    ),
                )));
            }
        };
        Ok(ArtifactRule {
            tokens: tokens.to_vec(),
            kind,
        })
    }

    /// The tokens as written.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// What the rule does.
    pub fn kind(&self) -> &RuleKind {
        &self.kind
    }
}

/// A pattern that could match an artifact name: compiled, and with no `.` or `..` component
/// and no leading `/`, which no recorded name has (so such a pattern is a mistake, or an
/// injected parameter; THREATS I2).
fn checked_pattern(text: &str) -> Result<Pattern, (RuleProblem, String)> {
    if text.starts_with('/') || text.split('/').any(|c| c == "." || c == "..") {
        return Err((
            RuleProblem::Pattern,
            format!(
                "pattern {text:?} can never match: artifact names are relative, with no . or .. \
                 parts"
            ),
        ));
    }
    Pattern::new(text).map_err(|e| (RuleProblem::Pattern, e.to_string()))
}

const MATCH_FORM: &str =
    "expected MATCH <pattern> [IN <prefix>] WITH (MATERIALS|PRODUCTS) [IN <prefix>] FROM <step>";

fn parse_match(tokens: &[String]) -> Result<RuleKind, (RuleProblem, String)> {
    let lower: Vec<String> = tokens.iter().map(|t| t.to_ascii_lowercase()).collect();
    let is = |i: usize, word: &str| lower.get(i).map(String::as_str) == Some(word);
    // Positions of WITH, the source IN and the destination IN for the three valid lengths.
    let (with, source_in, destination_in) = match tokens.len() {
        6 => (2, None, None),
        8 if is(2, "in") => (4, Some(3), None),
        8 => (2, None, Some(5)),
        10 => (4, Some(3), Some(7)),
        n => return Err((RuleProblem::MatchForm, format!("{n} tokens: {MATCH_FORM}"))),
    };
    let from = tokens.len() - 2;
    let shape_ok = is(with, "with")
        && source_in.is_none_or(|i| is(i - 1, "in"))
        && destination_in.is_none_or(|i| is(i - 1, "in"))
        && is(from, "from");
    if !shape_ok {
        return Err((RuleProblem::MatchForm, MATCH_FORM.into()));
    }
    let kind = match lower[with + 1].as_str() {
        "materials" => ArtifactKind::Materials,
        "products" => ArtifactKind::Products,
        other => {
            return Err((
                RuleProblem::ArtifactKind,
                format!("{other:?} after WITH: expected MATERIALS or PRODUCTS"),
            ));
        }
    };
    let prefix = |i: Option<usize>| -> Result<Option<String>, (RuleProblem, String)> {
        let Some(i) = i else { return Ok(None) };
        let trimmed = tokens[i].strip_suffix('/').unwrap_or(&tokens[i]);
        ArtifactPath::new(trimmed)
            .map(|p| Some(p.as_str().to_owned()))
            .map_err(|e| (RuleProblem::Prefix, format!("prefix after IN: {e}")))
    };
    Ok(RuleKind::Match {
        pattern: checked_pattern(&tokens[1])?,
        source_prefix: prefix(source_in)?,
        kind,
        destination_prefix: prefix(destination_in)?,
        from: StepName::new(&tokens[from + 1])
            .map_err(|e| (RuleProblem::StepName, format!("step after FROM: {e}")))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Result<ArtifactRule, RuleError> {
        let tokens: Vec<String> = text.split(' ').map(str::to_owned).collect();
        ArtifactRule::parse(&tokens)
    }

    #[test]
    fn all_forms_parse() {
        assert!(matches!(
            rule("CREATE foo").expect("ok").kind(),
            RuleKind::Create(_)
        ));
        assert!(matches!(
            rule("disallow *").expect("ok").kind(),
            RuleKind::Disallow(_)
        ));
        assert!(matches!(
            rule("REQUIRE a/b").expect("ok").kind(),
            RuleKind::Require(_)
        ));
        match rule("MATCH *.py IN src WITH PRODUCTS IN out/ FROM build")
            .expect("ok")
            .kind()
        {
            RuleKind::Match {
                source_prefix,
                destination_prefix,
                kind,
                from,
                ..
            } => {
                assert_eq!(source_prefix.as_deref(), Some("src"));
                assert_eq!(destination_prefix.as_deref(), Some("out"));
                assert_eq!(*kind, ArtifactKind::Products);
                assert_eq!(from.as_str(), "build");
            }
            other => panic!("{other:?}"),
        }
        match rule("match foo with materials in dst from clone")
            .expect("ok")
            .kind()
        {
            RuleKind::Match {
                source_prefix,
                destination_prefix,
                kind,
                ..
            } => {
                assert_eq!(*source_prefix, None);
                assert_eq!(destination_prefix.as_deref(), Some("dst"));
                assert_eq!(*kind, ArtifactKind::Materials);
            }
            other => panic!("{other:?}"),
        }
    }

    /// Keywords are read in any case, as the reference's `unpack_rule` reads them (see the
    /// module documentation); patterns and step names keep their case.
    #[test]
    fn keywords_in_any_case_parse_as_the_reference_parses_them() {
        for text in [
            "match Foo with products from Build",
            "MaTcH Foo In Src WiTh PRODUCTS iN Out FrOm Build",
            "create Foo",
            "Require Foo",
        ] {
            let parsed = rule(text).expect(text);
            assert_eq!(parsed.tokens().join(" "), text);
            match parsed.kind() {
                RuleKind::Match { from, pattern, .. } => {
                    assert_eq!(from.as_str(), "Build");
                    assert!(pattern.matches("Foo") && !pattern.matches("foo"));
                }
                RuleKind::Create(pattern) => assert!(!pattern.matches("foo")),
                RuleKind::Require(name) => assert_eq!(name.as_str(), "Foo"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn f5_grammar_edge_cases_rejected() {
        use RuleProblem::*;
        let problem = |tokens: &[String]| match ArtifactRule::parse(tokens) {
            Err(e) => e.problem,
            Ok(rule) => panic!("{tokens:?} parsed as {:?}", rule.kind()),
        };
        for (text, expected) in [
            ("MATCH foo WITH PRODUCTS FROM", MatchForm),
            ("MATCH foo WITH PRODUCTS", MatchForm),
            ("MATCH foo WITH THINGS FROM x", ArtifactKind),
            ("MATCH foo IN WITH PRODUCTS FROM x", MatchForm),
            ("MATCH foo WITH PRODUCTS FROM x extra", MatchForm),
            ("MATCH foo TO PRODUCTS FROM x", MatchForm),
            ("MATCH foo WITH PRODUCTS FROM ../x", StepName),
            ("MATCH ../foo WITH PRODUCTS FROM x", Pattern),
            ("MATCH foo IN ../src WITH PRODUCTS FROM x", Prefix),
            ("CREATE", Arity),
            ("CREATE a b", Arity),
            ("COPY foo", UnknownType),
            ("REQUIRE *", RequireName),
            ("REQUIRE ./a", RequireName),
            ("ALLOW foo[", Pattern),
            ("ALLOW ../../etc/*", Pattern),
            ("DISALLOW /etc/passwd", Pattern),
            ("CREATE ./out", Pattern),
        ] {
            let tokens: Vec<String> = text.split(' ').map(str::to_owned).collect();
            assert_eq!(problem(&tokens), expected, "{text}");
        }
        assert_eq!(problem(&[]), Empty);
        assert_eq!(
            problem(&["MATCH foo WITH PRODUCTS FROM x".to_owned()]),
            UnknownType
        );
        let empty_prefix: Vec<String> = ["MATCH", "f", "IN", "", "WITH", "PRODUCTS", "FROM", "x"]
            .map(str::to_owned)
            .to_vec();
        assert_eq!(problem(&empty_prefix), Prefix);
    }
}
