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
";

/// The named template's text, or `None` for an unknown name.
pub fn template(name: &str) -> Option<String> {
    match name {
        "minimal" => Some(MINIMAL.to_owned()),
        "release" => {
            // The example without its header, its test-only keys replaced by the user's own.
            let body = RELEASE.split_once("\n\n").map_or(RELEASE, |(_, body)| body);
            Some(format!(
                "{RELEASE_HEADER}\n{}",
                body.replace("../keys-example/test-only-", "keys/")
            ))
        }
        _ => None,
    }
}
