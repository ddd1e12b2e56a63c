//! The container release of `layouts/container.toml` end to end: review and source on a git
//! commit, a build producing an image archive, scan and sign over the image's digests, and the
//! buyer's inspection of the image they hold. Each step is recorded by its functionary's
//! test-only key; the image is built by the test (there is no container engine here), so the
//! build step is recorded without running its command (a warning, not a failure). The scanner
//! also attests the image's SBOM and its OCI configuration (the archive's config blob, as
//! `skopeo inspect --config` prints it), and the layout's policy refuses an image that runs as
//! root.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{code, private_copy, repo, run, stderr, stdout, tempdir, tollgate};
use crate::git::{git, repository};
use crate::oci::{config_of, single_as};

/// The predicate type of an image's OCI configuration, as `layouts/container.toml` names it.
const OCI_CONFIG: &str = "https://tollgate.dev/attestation/oci-config/v1";

/// The image's SBOM, CycloneDX 1.6 as a scanner writes it.
const SBOM: &str = r#"{"$schema":"http://cyclonedx.org/schema/bom-1.6.schema.json","bomFormat":"CycloneDX","specVersion":"1.6","version":1,"metadata":{"component":{"type":"container","name":"dist/image.tar"}},"components":[{"bom-ref":"pkg:generic/app@1.0","type":"application","name":"app","version":"1.0","licenses":[{"license":{"id":"MIT"}}],"purl":"pkg:generic/app@1.0"}]}"#;

/// A container release recorded step by step, the image's configuration naming `user`.
struct Release {
    dir: tempfile::TempDir,
    project: PathBuf,
    layout: PathBuf,
    links: PathBuf,
}

impl Release {
    fn record(user: Option<&str>) -> Release {
        let dir = tempdir();
        let project = repository(dir.path());
        fs::write(project.join(".gitignore"), "target/\ndist/\n").expect("write");
        fs::write(project.join("Dockerfile"), "FROM scratch\nCOPY app /app\n").expect("write");
        git(&project, &["add", "."]);
        git(&project, &["commit", "-q", "-m", "container"]);

        let owner = private_copy("owner", dir.path());
        let layout = dir.path().join("container.layout");
        let out = run(tollgate()
            .args(["layout", "build"])
            .arg(repo().join("layouts/container.toml"))
            .arg("--key")
            .arg(&owner)
            .arg("-o")
            .arg(&layout));
        assert_eq!(code(&out), 0, "{}", stderr(&out));

        let links = dir.path().join("links");
        let step = |who: &str, name: &str, args: &[&str]| {
            let key = private_copy(who, dir.path());
            let out = run(tollgate()
                .current_dir(&project)
                .args(["run", "-q", "--step", name, "--key"])
                .arg(&key)
                .args(args)
                .args(["--no-command", "-d"])
                .arg(&links));
            assert_eq!(code(&out), 0, "{name} by {who}: {}", stderr(&out));
        };
        step("alice", "review", &["-m", "git:HEAD"]);
        step("bob", "review", &["-m", "git:HEAD"]);
        step("carol", "source", &["-p", "git:HEAD", "--git-files"]);
        // The image the build produced (built here, byte by byte, as an OCI archive).
        let (image, descriptor) = single_as(
            &project.join("dist"),
            "image",
            "#!/bin/sh\necho release\n",
            user,
        );
        step(
            "dan",
            "build",
            &["-m", "git:HEAD", "--git-files", "-p", "oci:dist/image.tar"],
        );
        step("erin", "scan", &["-m", "oci:dist/image.tar"]);
        // The scanner attests the image's SBOM and its configuration.
        let config = dir.path().join("config.json");
        fs::write(
            &config,
            serde_json::to_vec_pretty(&config_of(&image, &descriptor)).expect("json"),
        )
        .expect("write");
        let sbom = dir.path().join("sbom.json");
        fs::write(&sbom, SBOM).expect("write");
        let erin = private_copy("erin", dir.path());
        for (kind, predicate) in [("cyclonedx", &sbom), (OCI_CONFIG, &config)] {
            let out = run(tollgate()
                .current_dir(&project)
                .args(["attest", "-q", "--step", "scan", "--key"])
                .arg(&erin)
                .args(["--predicate-type", kind, "--predicate"])
                .arg(predicate)
                .args(["--subject", "oci:dist/image.tar", "-d"])
                .arg(&links));
            assert_eq!(code(&out), 0, "attest {kind}: {}", stderr(&out));
        }
        step(
            "frank",
            "sign",
            &["-m", "oci:dist/image.tar", "-p", "oci:dist/image.tar"],
        );
        Release {
            dir,
            project,
            layout,
            links,
        }
    }

    /// `tollgate verify` by a buyer holding `image` as `dist/image.tar` in a folder `name`.
    fn verify(&self, name: &str, image: &Path) -> Output {
        let folder = self.dir.path().join(name);
        fs::create_dir_all(folder.join("dist")).expect("mkdir");
        fs::copy(image, folder.join("dist/image.tar")).expect("copy");
        run(tollgate()
            .args(["verify", "--layout"])
            .arg(&self.layout)
            .arg("--layout-key")
            .arg(repo().join("keys-example/test-only-owner.pub"))
            .arg("--link-dir")
            .arg(&self.links)
            .arg("--workdir")
            .arg(&folder))
    }

    fn image(&self) -> PathBuf {
        self.project.join("dist/image.tar")
    }
}

#[test]
fn a_container_release_verifies_and_a_swapped_image_is_caught() {
    // The image runs as user 1000: the policy over its configuration lets it through.
    let release = Release::record(Some("1000"));
    let out = release.verify("buyer", &release.image());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("verified: 5 step(s) and 1 inspection(s) passed"),
        "{}",
        stdout(&out)
    );
    for predicate in ["https://cyclonedx.org/bom", OCI_CONFIG] {
        let line = format!("{predicate}: 1 of 1 required attestation(s) passed every rule");
        assert!(
            stdout(&out).contains(&line),
            "no {line:?} in {}",
            stdout(&out)
        );
    }
    assert!(
        stderr(&out).contains("warning: build: build.3d95a2f0.link: ran [], the layout expects"),
        "the build step's command mismatch is a warning: {}",
        stderr(&out)
    );

    // The buyer is handed a lookalike image.
    let elsewhere = release.dir.path().join("elsewhere");
    single_as(
        &elsewhere,
        "image",
        "#!/bin/sh\necho compromised\n",
        Some("1000"),
    );
    let out = release.verify("buyer-swapped", &elsewhere.join("image.tar"));
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains(
            "inspection image, expected_materials rule 3 (DISALLOW *): oci:dist/image.tar was \
             not consumed by any earlier rule; it differs from oci:dist/image.tar among the \
             products of step sign"
        ),
        "{}",
        stderr(&out)
    );
}

/// An image whose configuration runs as root, by name or by naming no user at all, is refused
/// by the policy rule over the scanner's OCI-config attestation, with the rule's message.
#[test]
fn an_image_that_runs_as_root_is_refused_by_the_policy_with_its_message() {
    for user in [Some("root"), Some("0:0"), None] {
        let release = Release::record(user);
        let out = release.verify("buyer", &release.image());
        assert_eq!(code(&out), 1, "{user:?}: {}{}", stdout(&out), stderr(&out));
        let text = stderr(&out);
        for wanted in [
            "verification FAILED",
            "scan",
            OCI_CONFIG,
            "the image runs as root: set USER to a non-root user in the Dockerfile",
        ] {
            assert!(text.contains(wanted), "{user:?}: no {wanted:?} in {text}");
        }
        // The JSON report names the check and the rule.
        let json = run(tollgate()
            .args(["verify", "--format", "json", "--layout"])
            .arg(&release.layout)
            .arg("--layout-key")
            .arg(repo().join("keys-example/test-only-owner.pub"))
            .arg("--link-dir")
            .arg(&release.links)
            .arg("--workdir")
            .arg(release.dir.path().join("buyer")));
        assert_eq!(code(&json), 1);
        let report: serde_json::Value = serde_json::from_str(&stdout(&json)).expect("json");
        assert_eq!(report["failure"]["check"], "predicate", "{report:#}");
        assert_eq!(
            report["failure"]["predicate"]["predicate_type"], OCI_CONFIG,
            "{report:#}"
        );
        assert_eq!(report["failure"]["predicate"]["rule"], 1, "{report:#}");
    }
}

#[test]
fn the_committed_container_layout_is_built_from_its_source_and_signed_by_the_owner() {
    crate::common::assert_committed_layout("container");
}
