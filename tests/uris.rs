//! Artifacts named by URI: `dir:` (one digest for a folder, as the reference's resolver
//! computes it) and `file:`, recorded, tied across steps by rules, re-resolved by inspections
//! and `match-products`, and their bad input.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{
    Reference, TestLayout, code, private_copy, run, stderr, stdout, tempdir, test_layout, tollgate,
};

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, bytes).expect("write");
}

/// A folder with nesting, non-ASCII names, a space, an empty file, CRLF text, a file the
/// default excludes leave out, an empty sub-folder and a symlinked file.
fn vendor_tree(root: &Path) {
    write(&root.join("vendor/a/b/f.txt"), b"x");
    write(
        &root.join("vendor/Z/\u{e9}t\u{e9}.rs"),
        "fn main() {}\r\n".as_bytes(),
    );
    write(&root.join("vendor/sp ace"), b"");
    write(&root.join("vendor/_x"), b"c");
    write(&root.join("vendor/old.link"), b"excluded by default");
    fs::create_dir_all(root.join("vendor/empty")).expect("mkdir");
    std::os::unix::fs::symlink("_x", root.join("vendor/alias")).expect("symlink");
    fs::create_dir_all(root.join("nothing")).expect("mkdir");
}

fn materials(link: &Path) -> serde_json::Value {
    let value: serde_json::Value =
        serde_json::from_slice(&fs::read(link).expect("read link")).expect("json");
    value["signed"]["materials"].clone()
}

fn only_link(dir: &Path) -> PathBuf {
    let links: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(links.len(), 1, "{links:?}");
    links[0].clone()
}

#[test]
fn dir_digests_and_file_uris_are_recorded_exactly_as_the_reference_records_them() {
    let reference = Reference::get();
    for extra in [
        &[][..],
        &["--exclude", "*.txt"][..],
        &["--lstrip-paths", "vendor/"][..],
    ] {
        let dir = tempdir();
        vendor_tree(dir.path());
        let key = private_copy("ed25519", dir.path());
        let paths = [
            "dir:vendor",
            "dir:nothing",
            "dir:vendor/a",
            "file:vendor/_x",
            "vendor/sp ace",
        ];
        let ours = dir.path().join("ours");
        let out = run(tollgate()
            .current_dir(dir.path())
            .args(["run", "-q", "--step", "t", "--key"])
            .arg(&key)
            .arg("-m")
            .args(paths)
            .args(["--no-command", "-d"])
            .arg(&ours)
            .args(extra));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let theirs = dir.path().join("theirs");
        fs::create_dir(&theirs).expect("mkdir");
        let out = run(reference
            .tool("in-toto-run")
            .current_dir(dir.path())
            .args(["-n", "t", "--signing-key"])
            .arg(&key)
            .arg("-m")
            .args(paths)
            .args(["-x", "-d"])
            .arg(&theirs)
            .args(extra));
        assert_eq!(code(&out), 0, "in-toto-run: {}", stderr(&out));
        let ours = materials(&only_link(&ours));
        let theirs = materials(&only_link(&theirs));
        assert_eq!(ours, theirs, "with {extra:?}");
        // Five artifacts, the empty folder hashing the empty listing.
        assert_eq!(ours.as_object().expect("map").len(), 5);
        assert_eq!(
            ours["dir:nothing"]["sha256"],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}

#[test]
fn a_dir_uri_that_cannot_be_resolved_is_a_clear_error_and_writes_no_link() {
    let dir = tempdir();
    vendor_tree(dir.path());
    std::os::unix::fs::symlink("vendor", dir.path().join("linked")).expect("symlink");
    // A folder on the way that leads out of the recording root (THREATS G1).
    let outside = tempdir();
    fs::create_dir_all(outside.path().join("secrets")).expect("mkdir");
    std::os::unix::fs::symlink(outside.path(), dir.path().join("away")).expect("symlink");
    let key = private_copy("ed25519", dir.path());
    let record = |path: &str, extra: &[&str]| {
        run(tollgate()
            .current_dir(dir.path())
            .args(["run", "-q", "--step", "t", "--key"])
            .arg(&key)
            .args(["-m", path, "--no-command", "-d", "links"])
            .args(extra))
    };
    for (path, message) in [
        (
            "dir:away/secrets",
            "dir:away/secrets: leads outside the recording root",
        ),
        (
            "dir:missing",
            "dir:missing: no such file or folder (pass --allow-missing",
        ),
        ("dir:vendor/_x", "dir:vendor/_x: is not a folder"),
        (
            "dir:./vendor",
            "write the folder as a relative path such as dir:vendor",
        ),
        (
            "dir:vendor/",
            "write the folder as a relative path such as dir:vendor",
        ),
        (
            "dir:../x",
            "write the folder as a relative path such as dir:vendor",
        ),
        (
            "dir:linked",
            "dir:linked: is a symlink; name the folder it leads to",
        ),
    ] {
        let out = record(path, &[]);
        assert_eq!(code(&out), 2, "{path}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{path}: {}", stderr(&out));
        assert!(
            !dir.path().join("links").exists(),
            "{path}: a link was written"
        );
    }
    let out = record("dir:missing", &["--allow-missing"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        materials(&only_link(&dir.path().join("links"))),
        serde_json::json!({})
    );
}

/// A layout where `vendor` produces `dir:vendor`, `build` must use exactly that folder, and
/// an inspection checks the folder the verifier holds.
const VENDOR_LAYOUT: &str = r#"
expires = "30d"
[[step]]
name = "vendor"
functionaries = ["keys/alice.pub"]
expected_materials = ["DISALLOW *"]
expected_products = ["CREATE dir:vendor", "DISALLOW *"]
[[step]]
name = "build"
functionaries = ["keys/alice.pub"]
expected_materials = ["MATCH dir:vendor WITH PRODUCTS FROM vendor", "DISALLOW *"]
expected_products = ["DISALLOW *"]
[[inspection]]
name = "vendored"
run = ["true"]
expected_materials = ["MATCH dir:vendor WITH PRODUCTS FROM vendor", "ALLOW vendor/*", "DISALLOW *"]
expected_products = ["MATCH dir:vendor WITH PRODUCTS FROM vendor", "ALLOW vendor/*", "DISALLOW *"]
"#;

#[test]
fn dir_artifacts_tie_steps_together_and_a_changed_folder_is_caught() {
    let dir = tempdir();
    let project = dir.path().join("project");
    vendor_tree(&project);
    let TestLayout {
        layout,
        owner_pub: owner,
        alice,
    } = test_layout(dir.path(), VENDOR_LAYOUT);
    let links = dir.path().join("links");
    let step = |name: &str, side: &str| {
        let out = run(tollgate()
            .current_dir(&project)
            .args(["run", "-q", "--step", name, "--key"])
            .arg(&alice)
            .args([side, "dir:vendor", "--no-command", "-d"])
            .arg(&links));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    };
    let verify = || {
        run(tollgate()
            .args(["verify", "--layout"])
            .arg(&layout)
            .arg("--layout-key")
            .arg(&owner)
            .arg("--link-dir")
            .arg(&links)
            .arg("--workdir")
            .arg(&project))
    };
    step("vendor", "-p");
    step("build", "-m");
    let out = verify();
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // The buyer's copy of the folder differs: the inspection re-resolves dir:vendor.
    write(&project.join("vendor/a/b/f.txt"), b"changed");
    let out = verify();
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains(
            "inspection vendored, expected_materials rule 3 (DISALLOW *): dir:vendor was not \
             consumed by any earlier rule; it differs from dir:vendor among the products of step \
             vendor"
        ),
        "{}",
        stderr(&out)
    );

    // A build that used a different folder than was vendored.
    fs::remove_dir_all(&links).expect("rm");
    step("vendor", "-p");
    write(&project.join("vendor/new.c"), b"int backdoor;");
    step("build", "-m");
    let out = verify();
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("step build, expected_materials rule 2 (DISALLOW *): dir:vendor"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn match_products_resolves_dir_uris() {
    let dir = tempdir();
    vendor_tree(dir.path());
    let key = private_copy("ed25519", dir.path());
    let out = run(tollgate()
        .current_dir(dir.path())
        .args(["run", "-q", "--step", "t", "--key"])
        .arg(&key)
        .args(["-p", "dir:vendor", "--no-command", "-d", "links"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let link = only_link(&dir.path().join("links"));
    let check = || {
        run(tollgate()
            .current_dir(dir.path())
            .args(["match-products", "--link"])
            .arg(&link)
            .args(["--paths", "dir:vendor"]))
    };
    let out = check();
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    write(&dir.path().join("vendor/_x"), b"tampered");
    let out = check();
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains("dir:vendor"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}
