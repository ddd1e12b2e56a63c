//! The names of the files in-toto metadata travels in, in one place: a link's file name, an
//! unfinished link's, and the folder of a sublayout's links. Recording writes these names,
//! verification and bundles read them; all of them ask here.

use std::collections::BTreeSet;

use crate::model::keys::KeyId;
use crate::model::name::StepName;

/// The suffix of every link file.
pub const LINK_SUFFIX: &str = ".link";

/// The file name of a link: `STEP.KEYID8.link`, or `STEP.link` unsigned.
pub fn link_file_name(step: &StepName, keyid: Option<&KeyId>) -> String {
    match keyid {
        Some(keyid) => format!("{step}.{}{LINK_SUFFIX}", keyid.short()),
        None => format!("{step}{LINK_SUFFIX}"),
    }
}

/// The file name of an unfinished link between `record start` and `record stop`:
/// `.STEP.KEYID8.link-unfinished`, as `in-toto-record` names it.
pub fn unfinished_file_name(step: &StepName, keyid: &KeyId) -> String {
    format!(".{step}.{}{LINK_SUFFIX}-unfinished", keyid.short())
}

/// The folder of a sublayout's links, `STEP.KEYID8`, and the key it is named after: the
/// first, in keyid order, of the authorised keys whose signatures on the sublayout verified
/// (`signers`). Never the keyid in the sublayout's file name, which is only a hint: `bundle
/// create` packs a sublayout's links where verification reads them only because both ask
/// here. `None` when no key verified it.
pub fn sublayout_folder<'a>(
    step: &StepName,
    signers: &'a BTreeSet<KeyId>,
) -> Option<(&'a KeyId, String)> {
    let keyid = signers.iter().next()?;
    Some((keyid, format!("{step}.{}", keyid.short())))
}

/// Whether `file` is named like a signed link of `step` (`STEP.SOMETHING.link`, one dot-free
/// part in the middle), whichever key it names.
pub fn names_a_link_of(step: &StepName, file: &str) -> bool {
    file.strip_prefix(step.as_str())
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_suffix(LINK_SUFFIX))
        .is_some_and(|middle| !middle.is_empty() && !middle.contains('.'))
}

/// The step (or inspection) a link file names: `build` for `build.3d95a2f0.link` and for
/// `build.link`; `None` for a file that is no link.
pub fn step_of_link_file(file: &str) -> Option<&str> {
    let stem = file.strip_suffix(LINK_SUFFIX)?;
    Some(stem.rsplit_once('.').map_or(stem, |(step, _)| step))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str) -> StepName {
        StepName::new(name).expect("valid step name")
    }

    #[test]
    fn link_names_round_trip_through_their_readers() {
        assert!(names_a_link_of(&step("build"), "build.3d95a2f0.link"));
        assert!(!names_a_link_of(&step("build"), "build.link"));
        assert!(!names_a_link_of(&step("build"), "build..link"));
        assert!(!names_a_link_of(&step("build"), "build.a.b.link"));
        assert!(!names_a_link_of(&step("build"), "builder.3d95a2f0.link"));
        assert!(!names_a_link_of(
            &step("build"),
            "build.3d95a2f0.link-unfinished"
        ));
        assert_eq!(step_of_link_file("build.3d95a2f0.link"), Some("build"));
        assert_eq!(step_of_link_file("build.link"), Some("build"));
        assert_eq!(step_of_link_file("build.txt"), None);
    }
}
