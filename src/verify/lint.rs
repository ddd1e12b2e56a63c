//! Findings that do not change the verdict: rules that matched nothing, rule lists without a
//! final `DISALLOW *`, links for steps the layout does not name.

use std::collections::BTreeSet;
use std::path::Path;

use crate::model::layout::Layout;
use crate::model::name::StepName;

use super::{Run, rules};

impl Run<'_> {
    pub(super) fn note_rules(&mut self, item: &StepName, outcomes: &[rules::ListOutcome]) {
        for outcome in outcomes {
            for (i, rule) in outcome.rules.iter().enumerate() {
                if rule.matched_nothing {
                    self.warn(
                        Some(item),
                        format!(
                            "{} rule {} ({}) matched no artifact",
                            outcome.side.name(),
                            i + 1,
                            rule.rule
                        ),
                    );
                }
            }
        }
    }

    /// Findings about the layout itself that do not change the verdict.
    pub(super) fn lint(&mut self, layout: &Layout, link_dir: &Path) {
        let lists = layout
            .steps
            .iter()
            .map(|s| {
                (
                    &s.name,
                    [
                        (&s.expected_materials, "expected_materials"),
                        (&s.expected_products, "expected_products"),
                    ],
                )
            })
            .chain(layout.inspections.iter().map(|i| {
                (
                    &i.name,
                    [
                        (&i.expected_materials, "expected_materials"),
                        (&i.expected_products, "expected_products"),
                    ],
                )
            }));
        let mut found = Vec::new();
        for (name, pair) in lists {
            for (rules, field) in pair {
                let ends_in_disallow = rules.last().is_some_and(
                    |r| matches!(r.kind(), crate::model::rule::RuleKind::Disallow(p) if p.as_str() == "*"),
                );
                // An empty list accepts everything and says so; a list of rules that ends
                // without DISALLOW * only looks as if it restricted anything (THREATS F8).
                if !rules.is_empty() && !ends_in_disallow {
                    found.push((name.clone(), format!("{field} does not end in DISALLOW *: artifacts no rule mentions are accepted")));
                }
            }
        }
        for (name, message) in found {
            self.warn(Some(&name), message);
        }
        // Links for steps the layout does not name (THREATS E1).
        let steps: BTreeSet<&str> = layout.steps.iter().map(|s| s.name.as_str()).collect();
        // (A bundle holding a link its layout does not use is refused when it is read.)
        if let Some(files) = self.source().list(link_dir) {
            let mut strangers = BTreeSet::new();
            for file in &files {
                let Some(step) = crate::model::files::step_of_link_file(file) else {
                    continue;
                };
                if !steps.contains(step)
                    && !layout.inspections.iter().any(|i| i.name.as_str() == step)
                {
                    strangers.insert(file.to_owned());
                }
            }
            for file in strangers {
                self.warn(
                    None,
                    format!("{file}: a link for a step the layout does not name; ignored"),
                );
            }
        }
    }
}
