//! The container release of `layouts/container.toml` end to end: review and source on a git
//! commit, a build producing an image archive, scan and sign over the image's digests, and the
//! buyer's inspection of the image they hold. Each step is recorded by its functionary's
//! test-only key; the image is built by the test (there is no container engine here), so the
//! build step is recorded without running its command (a warning, not a failure).

use std::fs;
use std::path::Path;

use crate::common::{code, private_copy, repo, run, stderr, stdout, tempdir, tollgate};
use crate::git::{git, repository};
use crate::oci::single;

#[test]
fn a_container_release_verifies_and_a_swapped_image_is_caught() {
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
    single(&project.join("dist"), "image", "#!/bin/sh\necho release\n");
    step(
        "dan",
        "build",
        &["-m", "git:HEAD", "--git-files", "-p", "oci:dist/image.tar"],
    );
    step("erin", "scan", &["-m", "oci:dist/image.tar"]);
    step(
        "frank",
        "sign",
        &["-m", "oci:dist/image.tar", "-p", "oci:dist/image.tar"],
    );

    let buyer = |name: &str, image: &Path| {
        let folder = dir.path().join(name);
        fs::create_dir_all(folder.join("dist")).expect("mkdir");
        fs::copy(image, folder.join("dist/image.tar")).expect("copy");
        run(tollgate()
            .args(["verify", "--layout"])
            .arg(&layout)
            .arg("--layout-key")
            .arg(repo().join("keys-example/test-only-owner.pub"))
            .arg("--link-dir")
            .arg(&links)
            .arg("--workdir")
            .arg(&folder))
    };
    let out = buyer("buyer", &project.join("dist/image.tar"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("verified: 5 step(s) and 1 inspection(s) passed"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("warning: build: build.3d95a2f0.link: ran [], the layout expects"),
        "the build step's command mismatch is a warning: {}",
        stderr(&out)
    );

    // The buyer is handed a lookalike image.
    let elsewhere = dir.path().join("elsewhere");
    single(&elsewhere, "image", "#!/bin/sh\necho compromised\n");
    let out = buyer("buyer-swapped", &elsewhere.join("image.tar"));
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

#[test]
fn the_committed_container_layout_is_built_from_its_source_and_signed_by_the_owner() {
    crate::common::assert_committed_layout("container");
}
