//! `git:REV` artifacts: a revision recorded by commit, tree and files, the link's environment,
//! rules across steps ("the commit reviewed is the commit built"), and bad input. The
//! repositories are made by the tests with the git command line.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::common::{
    TestLayout, code, private_copy, run, stderr, stdout, tempdir, test_layout, tollgate,
};

pub fn git(repo: &Path, args: &[&str]) -> Vec<u8> {
    let out = run(Command::new("git")
        .current_dir(repo)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"])
        .args(args));
    assert_eq!(code(&out), 0, "git {args:?}: {}", stderr(&out));
    out.stdout
}

fn git_text(repo: &Path, args: &[&str]) -> String {
    String::from_utf8(git(repo, args))
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// A repository with two commits on `main`, a tag `v1` on the first, and an ignored file.
pub fn repository(root: &Path) -> PathBuf {
    let repo = root.join("repo");
    fs::create_dir_all(repo.join("src")).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"]);
    fs::write(repo.join("src/main.rs"), "fn main() {}\n").expect("write");
    fs::write(repo.join("README"), "hello\n").expect("write");
    fs::write(repo.join(".gitignore"), "target/\n").expect("write");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    git(&repo, &["tag", "v1"]);
    fs::write(repo.join("src/lib.rs"), "pub fn f() {}\n").expect("write");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "two"]);
    // Ignored: never makes the tree dirty.
    fs::create_dir_all(repo.join("target")).expect("mkdir");
    fs::write(repo.join("target/out"), "built").expect("write");
    repo
}

fn record(repo: &Path, key: &Path, links: &Path, args: &[&str]) -> std::process::Output {
    run(tollgate()
        .current_dir(repo)
        .args(["run", "-q", "--step", "s", "--key"])
        .arg(key)
        .args(args)
        .args(["--no-command", "--overwrite", "-d"])
        .arg(links))
}

fn signed(link: &Path) -> serde_json::Value {
    let value: serde_json::Value =
        serde_json::from_slice(&fs::read(link).expect("read")).expect("json");
    value["signed"].clone()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn a_revision_is_recorded_by_commit_tree_and_files_whatever_it_is_called() {
    let dir = tempdir();
    let repo = repository(dir.path());
    let key = private_copy("ed25519", dir.path());
    let links = dir.path().join("links");
    let link = links.join("s.63273c36.link");

    let out = record(&repo, &key, &links, &["-m", "git:HEAD", "--git-files"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let head = signed(&link);
    let materials = &head["materials"];
    let commit = git_text(&repo, &["rev-parse", "HEAD"]);
    let tree = git_text(&repo, &["rev-parse", "HEAD^{tree}"]);
    assert_eq!(materials["git:commit"]["gitCommit"], commit.as_str());
    assert_eq!(
        materials["git:commit"]["sha256"],
        sha256(&git(&repo, &["cat-file", "commit", "HEAD"])).as_str()
    );
    assert_eq!(materials["git:tree"]["gitTree"], tree.as_str());
    assert_eq!(
        materials["git:tree"]["sha256"],
        sha256(&git(&repo, &["cat-file", "tree", "HEAD^{tree}"])).as_str()
    );
    assert_eq!(
        materials["git:file/src/lib.rs"]["sha256"],
        sha256(b"pub fn f() {}\n").as_str()
    );
    assert_eq!(
        materials["git:file/src/lib.rs"]["gitBlob"],
        git_text(&repo, &["rev-parse", "HEAD:src/lib.rs"]).as_str()
    );
    let names: Vec<&String> = materials.as_object().expect("map").keys().collect();
    assert_eq!(
        names,
        [
            "git:commit",
            "git:file/.gitignore",
            "git:file/README",
            "git:file/src/lib.rs",
            "git:file/src/main.rs",
            "git:tree"
        ]
    );
    let git_env = &head["environment"]["tollgate"]["git"]["materials"];
    assert_eq!(git_env["rev"], "HEAD");
    assert_eq!(git_env["commit"], commit.as_str());
    assert_eq!(git_env["branch"], "main");
    assert_eq!(git_env["signed"], false);
    assert_eq!(git_env["dirty"], false);

    // The same commit by branch and by id: the same artifacts.
    for rev in ["git:main", &format!("git:{commit}")] {
        let out = record(&repo, &key, &links, &["-m", rev, "--git-files"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(signed(&link)["materials"], *materials, "{rev}");
    }
    // The tag names the first commit: without --git-files, only its commit and tree.
    let out = record(&repo, &key, &links, &["-p", "git:v1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let tagged = signed(&link);
    assert_eq!(
        tagged["products"]["git:commit"]["gitCommit"],
        git_text(&repo, &["rev-parse", "v1^{commit}"]).as_str()
    );
    assert_eq!(tagged["products"].as_object().expect("map").len(), 2);
    assert_eq!(
        tagged["environment"]["tollgate"]["git"]["products"]["branch"],
        serde_json::Value::Null
    );
    // --repo reads a repository elsewhere.
    let out = run(tollgate()
        .current_dir(dir.path())
        .args(["run", "-q", "--step", "s", "--key"])
        .arg(&key)
        .args(["-m", "git:HEAD", "--repo"])
        .arg(&repo)
        .args(["--no-command", "--overwrite", "-d"])
        .arg(&links));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        signed(&link)["materials"]["git:commit"]["gitCommit"],
        commit.as_str()
    );
}

#[test]
fn a_dirty_tree_a_missing_revision_or_no_repository_is_refused_and_writes_no_link() {
    let dir = tempdir();
    let repo = repository(dir.path());
    let key = private_copy("ed25519", dir.path());
    let links = dir.path().join("links");
    let refused = |args: &[&str], message: &str| {
        let out = record(&repo, &key, &links, args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
        assert!(!links.exists(), "{args:?}: a link was written");
    };
    refused(&["-m", "git:nope"], "git:nope: no such revision");
    refused(&["-m", "git:"], "git:: no revision");
    refused(&["-m", "git:HEAD:README"], "does not name a commit");
    refused(
        &["-m", "git:HEAD", "git:v1"],
        "record one revision per side",
    );
    let out = run(tollgate()
        .current_dir(dir.path())
        .args(["run", "-q", "--step", "s", "--key"])
        .arg(&key)
        .args(["-m", "git:HEAD", "--no-command", "-d"])
        .arg(&links));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("is not a git repository"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("--repo DIR"));

    // A changed tracked file, then an untracked one: dirty either way.
    fs::write(repo.join("README"), "changed\n").expect("write");
    refused(&["-m", "git:HEAD"], "has changes: commit or stash them");
    git(&repo, &["checkout", "-q", "README"]);
    fs::write(repo.join("new.txt"), "untracked\n").expect("write");
    refused(&["-m", "git:HEAD"], "pass --allow-dirty");
    let out = record(&repo, &key, &links, &["-m", "git:HEAD", "--allow-dirty"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let link = signed(&links.join("s.63273c36.link"));
    assert_eq!(
        link["environment"]["tollgate"]["git"]["materials"]["dirty"],
        true
    );
}

#[test]
fn a_signed_commit_is_reported_as_signed() {
    let dir = tempdir();
    let repo = repository(dir.path());
    // A commit object carrying a gpgsig header (its validity is not Tollgate's to check here).
    let raw = String::from_utf8(git(&repo, &["cat-file", "commit", "HEAD"])).expect("utf-8");
    let (headers, message) = raw.split_once("\n\n").expect("commit");
    let with_signature = format!(
        "{headers}\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n \
         -----END PGP SIGNATURE-----\n\n{message}"
    );
    let path = dir.path().join("commit.txt");
    fs::write(&path, with_signature).expect("write");
    let id = git_text(
        &repo,
        &[
            "hash-object",
            "-t",
            "commit",
            "-w",
            path.to_str().expect("utf-8"),
        ],
    );
    git(&repo, &["update-ref", "refs/heads/signed", &id]);
    let key = private_copy("ed25519", dir.path());
    let links = dir.path().join("links");
    let out = record(&repo, &key, &links, &["-m", "git:signed"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let link = signed(&links.join("s.63273c36.link"));
    let env = &link["environment"]["tollgate"]["git"]["materials"];
    assert_eq!(env["signed"], true);
    assert_eq!(env["branch"], "signed");
    assert_eq!(link["materials"]["git:commit"]["gitCommit"], id.as_str());
    let out = record(&repo, &key, &links, &["-m", "git:main"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let link = signed(&links.join("s.63273c36.link"));
    assert_eq!(
        link["environment"]["tollgate"]["git"]["materials"]["signed"],
        false
    );
}

/// A layout: review records the commit it approved; source checks out that commit and its
/// files; build uses exactly the source's files; an inspection checks the verifier's HEAD.
const GIT_LAYOUT: &str = r#"
expires = "30d"
[[step]]
name = "review"
functionaries = ["keys/alice.pub"]
expected_materials = ["ALLOW git:commit", "ALLOW git:tree", "DISALLOW *"]
expected_products = ["DISALLOW *"]
[[step]]
name = "source"
functionaries = ["keys/alice.pub"]
expected_materials = ["DISALLOW *"]
expected_products = [
  "MATCH git:commit WITH MATERIALS FROM review",
  "MATCH git:tree WITH MATERIALS FROM review",
  "CREATE git:file/*",
  "DISALLOW *",
]
[[step]]
name = "build"
functionaries = ["keys/alice.pub"]
expected_materials = [
  "MATCH git:commit WITH PRODUCTS FROM source",
  "MATCH git:tree WITH PRODUCTS FROM source",
  "MATCH git:file/* WITH PRODUCTS FROM source",
  "DISALLOW *",
]
expected_products = ["DISALLOW *"]
[[inspection]]
name = "head"
run = ["true"]
expected_materials = [
  "MATCH git:commit WITH PRODUCTS FROM source",
  "MATCH git:tree WITH PRODUCTS FROM source",
  "DISALLOW git:*",
  "ALLOW *",
]
expected_products = ["ALLOW *"]
"#;

#[test]
fn the_commit_reviewed_must_be_the_commit_built() {
    let dir = tempdir();
    let repo = repository(dir.path());
    let TestLayout {
        layout,
        owner_pub: owner,
        alice,
    } = test_layout(dir.path(), GIT_LAYOUT);
    let links = dir.path().join("links");
    let step = |name: &str, args: &[&str]| {
        let out = run(tollgate()
            .current_dir(&repo)
            .args(["run", "-q", "--step", name, "--key"])
            .arg(&alice)
            .args(args)
            .args(["--no-command", "--overwrite", "-d"])
            .arg(&links));
        assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
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
            .arg(&repo))
    };
    step("review", &["-m", "git:HEAD"]);
    step("source", &["-p", "git:HEAD", "--git-files"]);
    step("build", &["-m", "git:HEAD", "--git-files"]);
    let out = verify();
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // A commit lands after the review; CI checks out and builds the new one.
    fs::write(repo.join("src/lib.rs"), "pub fn f() { backdoor() }\n").expect("write");
    git(&repo, &["commit", "-q", "-am", "three"]);
    step("source", &["-p", "git:HEAD", "--git-files"]);
    step("build", &["-m", "git:HEAD", "--git-files"]);
    let out = verify();
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stderr(&out).contains(
            "step source, expected_products rule 4 (DISALLOW *): git:commit was not consumed by \
             any earlier rule; it differs from git:commit among the materials of step review"
        ),
        "{}",
        stderr(&out)
    );

    // The reviewed commit checked out, but the build read other files.
    git(&repo, &["checkout", "-q", "HEAD~1"]);
    step("source", &["-p", "git:HEAD", "--git-files"]);
    git(&repo, &["checkout", "-q", "main"]);
    let out = verify();
    assert_eq!(code(&out), 1);
    let reason = stderr(&out);
    assert!(
        reason.contains(
            "step build, expected_materials rule 4 (DISALLOW *): git:commit was not consumed"
        ),
        "{reason}"
    );
    assert!(
        reason.contains("also refused: git:file/src/lib.rs, git:tree"),
        "{reason}"
    );

    // Everything on the reviewed commit again, but the verifier holds another HEAD.
    git(&repo, &["checkout", "-q", "HEAD~1"]);
    step("build", &["-m", "git:HEAD", "--git-files"]);
    let out = verify();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    git(&repo, &["checkout", "-q", "main"]);
    let out = verify();
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains(
            "inspection head, expected_materials rule 3 (DISALLOW git:*): git:commit was not \
             consumed by any earlier rule; it differs from git:commit among the products of step \
             source"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn match_products_compares_a_revision_with_a_link() {
    let dir = tempdir();
    let repo = repository(dir.path());
    let key = private_copy("ed25519", dir.path());
    let links = dir.path().join("links");
    let out = record(&repo, &key, &links, &["-p", "git:HEAD", "--git-files"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let check = |rev: &str| {
        run(tollgate()
            .current_dir(&repo)
            .args(["match-products", "--link"])
            .arg(links.join("s.63273c36.link"))
            .args(["--paths", rev, "--git-files"]))
    };
    let out = check("git:main");
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let out = check("git:v1");
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert!(text.contains("digests differ: git:commit"), "{text}");
    assert!(
        text.contains("only in the link's products: git:file/src/lib.rs"),
        "{text}"
    );
}
