//! The names of the files in-toto metadata travels in, in one place: a link's file name, an
//! unfinished link's, an attestation's, and the folder of a sublayout's links. Recording writes these names,
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

/// The suffix of every attestation file.
pub const ATTESTATION_SUFFIX: &str = ".intoto.json";

/// The file name of an attestation: `STEP.KEYID8.SLUG.intoto.json`, where `SLUG` is the
/// predicate type's short name or a hash of its URI ([`crate::model::attestation::slug`]).
/// The name is a hint only: the step an attestation counts for is the one its signed
/// subjects name.
pub fn attestation_file_name(step: &StepName, keyid: &KeyId, predicate_type: &str) -> String {
    format!(
        "{step}.{}.{}{ATTESTATION_SUFFIX}",
        keyid.short(),
        crate::model::attestation::slug(predicate_type)
    )
}

/// Whether `file` is named like an attestation of `step`: `STEP.` then exactly eight
/// lowercase hex characters, a dot, a slug of `[a-z0-9-]+` and `.intoto.json`, so that the
/// files of a step `a.b` are never taken for step `a`'s.
pub fn names_an_attestation_of(step: &StepName, file: &str) -> bool {
    let Some(middle) = file
        .strip_prefix(step.as_str())
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_suffix(ATTESTATION_SUFFIX))
    else {
        return false;
    };
    let Some((keyid8, slug)) = middle.split_once('.') else {
        return false;
    };
    keyid8.len() == 8
        && keyid8
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && !slug.is_empty()
        && slug
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
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

    #[test]
    fn attestation_names_round_trip_and_never_cross_steps() {
        let keyid: KeyId = "3d95a2f0".repeat(8).parse().expect("a keyid");
        for predicate_type in [
            "https://cyclonedx.org/bom",
            "https://in-toto.io/attestation/test-result/v0.1",
            "https://example.com/custom/v1",
        ] {
            for name in ["a", "a.b", "scan", "a.3d95a2f0"] {
                let file = attestation_file_name(&step(name), &keyid, predicate_type);
                assert!(names_an_attestation_of(&step(name), &file), "{file}");
                for other in ["a", "a.b", "scan", "a.3d95a2f0", "sca"] {
                    if other != name {
                        assert!(
                            !names_an_attestation_of(&step(other), &file),
                            "{other} {file}"
                        );
                    }
                }
            }
        }
        assert_eq!(
            attestation_file_name(&step("scan"), &keyid, "https://cyclonedx.org/bom"),
            "scan.3d95a2f0.cyclonedx.intoto.json"
        );
        for file in [
            "scan.3d95a2f0.link",
            "scan.3D95A2F0.spdx.intoto.json",
            "scan.3d95a2f.spdx.intoto.json",
            "scan.3d95a2f0..intoto.json",
            "scan.3d95a2f0.Spdx.intoto.json",
            "scan.3d95a2f0.sp.dx.intoto.json",
            "scan.spdx.intoto.json",
        ] {
            assert!(!names_an_attestation_of(&step("scan"), file), "{file}");
        }
    }
}
