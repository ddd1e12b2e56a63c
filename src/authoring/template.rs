//! The starting points `layout new` writes: commented layout sources a project owner edits.

/// The templates' names, the default first.
pub const NAMES: &[&str] = &["minimal", "release"];

const MINIMAL: &str = include_str!("templates/minimal.toml");

/// The example release pipeline in `layouts/`, whose functionaries are the test-only keys.
const RELEASE: &str = include_str!("../../layouts/release.toml");

const RELEASE_HEADER: &str = "\
# A Tollgate layout source: a five-step release pipeline. Build it into a signed in-toto
# layout with:
#   tollgate layout build layout.toml --key owner.pem -o root.layout
# and check it at any time with `tollgate layout check layout.toml`.
#
# Each functionary needs a key pair: `tollgate keygen -o keys/alice` writes keys/alice (the
# private key, for the functionary alone) and keys/alice.pub (named below). Key paths are
# relative to this file.
#
# The example this comes from (layouts/release.toml in Tollgate's repository) also makes the
# scan step attest an SBOM under a policy (a step.predicate table); it is left out here, since a
# layout that expects attestations cannot be read by the reference's in-toto-verify. Copy it
# from there, or see the README's \"Policy over attestations\", to add one.
";

/// The named template's text, or `None` for an unknown name.
pub fn template(name: &str) -> Option<String> {
    match name {
        "minimal" => Some(MINIMAL.to_owned()),
        "release" => {
            // The example without its header and its attestation policy, its test-only keys
            // replaced by the user's own.
            let body = RELEASE.split_once("\n\n").map_or(RELEASE, |(_, body)| body);
            Some(format!(
                "{RELEASE_HEADER}\n{}",
                without_predicates(body).replace("../keys-example/test-only-", "keys/")
            ))
        }
        _ => None,
    }
}

/// `source` without its `[[step.predicate]]` tables, each with the comment paragraph just
/// above it (a table ends at the first blank line, as in `layouts/release.toml`).
fn without_predicates(source: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut skipping = false;
    for line in source.split_inclusive('\n') {
        if line.trim_end() == "[[step.predicate]]" {
            while kept.last().is_some_and(|l| l.starts_with('#')) {
                kept.pop();
            }
            skipping = true;
        }
        if skipping {
            if line.trim().is_empty() {
                skipping = false;
            } else {
                continue;
            }
        }
        kept.push(line);
    }
    let mut text = kept.concat();
    // Two tables in a row leave two blank lines: keep one.
    while text.contains("\n\n\n") {
        text = text.replace("\n\n\n", "\n\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_template_leaves_out_the_attestation_policy_and_keeps_every_step() {
        assert!(RELEASE.contains("[[step.predicate]]"));
        let text = template("release").expect("the release template");
        for gone in [
            "[[step.predicate]]",
            "rules = [",
            "tollgate attest",
            "allow_if_no_claim",
        ] {
            assert!(!text.contains(gone), "{gone} in\n{text}");
        }
        assert_eq!(text.matches("[[step]]").count(), 5, "{text}");
        assert!(
            text.contains(
                "expected_products = [\"DISALLOW *\"]\n\n# The release manager publishes"
            ),
            "{text}"
        );
        assert!(!text.contains("\n\n\n"), "{text}");
    }

    #[test]
    fn without_predicates_drops_each_table_with_the_comment_above_it() {
        let source = "[[step]]\nname = \"a\"\n\n# policy\n[[step.predicate]]\ntype = \"x\"\n\n[[step]]\nname = \"b\"\n";
        assert_eq!(
            without_predicates(source),
            "[[step]]\nname = \"a\"\n\n[[step]]\nname = \"b\"\n"
        );
    }
}
