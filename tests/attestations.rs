//! The in-toto Attestation Framework: links written as Statements (link predicate v0.3) and
//! read back by `verify` and `match-products`, SLSA provenance v1, both checked by the
//! framework's own Python bindings, and the Statements that must not pass.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tollgate::envelope::{Envelope, Format};
use tollgate::keyring::KeyRing;
use tollgate::limits::Limits;

use crate::common::{
    Reference, TestLayout, code, example_key, load_private, private_copy, run, stderr, stdout,
    tempdir, test_layout, tollgate,
};

const LAYOUT: &str = r#"
expires = "30d"
[[step]]
name = "build"
functionaries = ["keys/alice.pub"]
expected_materials = ["ALLOW src/*", "DISALLOW *"]
expected_products = ["CREATE out.txt", "DISALLOW *"]
[[step]]
name = "package"
functionaries = ["keys/alice.pub"]
expected_materials = ["MATCH out.txt WITH PRODUCTS FROM build", "DISALLOW *"]
expected_products = ["CREATE app.tar", "DISALLOW *"]
"#;

struct Project {
    dir: tempfile::TempDir,
    layout: TestLayout,
}

impl Project {
    fn new() -> Project {
        let dir = tempdir();
        let layout = test_layout(dir.path(), LAYOUT);
        fs::create_dir_all(dir.path().join("work/src")).expect("mkdir");
        fs::write(dir.path().join("work/src/main.c"), "int main;\n").expect("write");
        fs::write(dir.path().join("work/out.txt"), "built\n").expect("write");
        fs::write(dir.path().join("work/app.tar"), "packed\n").expect("write");
        Project { dir, layout }
    }

    fn links(&self) -> PathBuf {
        self.dir.path().join("links")
    }

    fn record(&self, step: &str, args: &[&str]) -> std::process::Output {
        run(tollgate()
            .current_dir(self.dir.path().join("work"))
            .args(["run", "-q", "--step", step, "--key"])
            .arg(&self.layout.alice)
            .args(args)
            .args(["--no-command", "--overwrite", "-d"])
            .arg(self.links()))
    }

    fn verify(&self) -> std::process::Output {
        run(tollgate()
            .args(["verify", "--layout"])
            .arg(&self.layout.layout)
            .arg("--layout-key")
            .arg(&self.layout.owner_pub)
            .arg("--link-dir")
            .arg(self.links()))
    }

    fn link(&self, step: &str) -> PathBuf {
        let prefix = format!("{step}.");
        fs::read_dir(self.links())
            .expect("links")
            .map(|e| e.expect("entry").path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
            })
            .expect("the step's link")
    }
}

fn payload(envelope: &Path) -> Value {
    let value: Value = serde_json::from_slice(&fs::read(envelope).expect("read")).expect("json");
    let bytes = tollgate::envelope::decode_base64(value["payload"].as_str().expect("payload"))
        .expect("base64");
    serde_json::from_slice(&bytes).expect("payload json")
}

fn valid_for_the_framework(envelope: &Path) -> String {
    let out = run(&mut Reference::get().attestation(envelope));
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

#[test]
fn a_chain_of_statements_verifies_and_each_is_valid_for_the_framework() {
    let project = Project::new();
    let out = project.record("build", &["-m", "src", "-p", "out.txt", "--statement"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A mixed chain: the second step writes a classic link.
    let out = project.record("package", &["-m", "out.txt", "-p", "app.tar"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = project.verify();
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let statement = payload(&project.link("build"));
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        statement["predicateType"],
        "https://in-toto.io/attestation/link/v0.3"
    );
    assert_eq!(statement["subject"][0]["name"], "out.txt");
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"built\n")).as_str()
    );
    assert_eq!(statement["predicate"]["name"], "build");
    assert_eq!(statement["predicate"]["materials"][0]["name"], "src/main.c");
    assert!(
        valid_for_the_framework(&project.link("build"))
            .starts_with("ok https://in-toto.io/attestation/link/v0.3 1")
    );

    // Both steps as Statements.
    let out = project.record(
        "package",
        &["-m", "out.txt", "-p", "app.tar", "--statement"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = project.verify();
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // match-products reads a Statement's subjects as the link's products.
    let out = run(tollgate()
        .current_dir(project.dir.path().join("work"))
        .args(["match-products", "--link"])
        .arg(project.link("package"))
        .args(["--paths", "app.tar", "--key"])
        .arg(&project.layout.owner_pub));
    assert_eq!(code(&out), 1, "signed by alice, not the owner");
    let out = run(tollgate()
        .current_dir(project.dir.path().join("work"))
        .args(["match-products", "--link"])
        .arg(project.link("package"))
        .args(["--paths", "app.tar", "--key"])
        .arg(project.dir.path().join("keys/alice.pub")));
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));

    // A product changed after the Statement was signed is caught like any other.
    fs::write(project.dir.path().join("work/out.txt"), "changed\n").expect("write");
    let out = project.record(
        "package",
        &["-m", "out.txt", "-p", "app.tar", "--statement"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = project.verify();
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("step package, expected_materials rule 2 (DISALLOW *): out.txt"),
        "{}",
        stderr(&out)
    );
}

/// Signs `statement` as alice into the build step's link file.
fn plant(project: &Project, statement: &Value) {
    let alice = load_private("alice");
    let bytes = Envelope::seal(statement, Format::Dsse, &[&alice]).expect("seal");
    let name = format!("build.{}.link", alice.public_key().keyid().short());
    fs::create_dir_all(project.links()).expect("mkdir");
    fs::write(project.links().join(name), bytes).expect("write");
}

#[test]
fn statements_that_are_not_valid_links_do_not_count() {
    let project = Project::new();
    // The layout's alice is a fresh key; plant links signed by the example alice instead, so
    // build the layout for her.
    let dir = tempdir();
    let keys = dir.path().join("keys");
    fs::create_dir_all(&keys).expect("mkdir");
    fs::copy(example_key("alice", "pub"), keys.join("alice.pub")).expect("copy");
    let owner = private_copy("owner", dir.path());
    fs::write(dir.path().join("layout.toml"), LAYOUT).expect("write");
    let layout = dir.path().join("root.layout");
    let out = run(tollgate()
        .args(["layout", "build"])
        .arg(dir.path().join("layout.toml"))
        .arg("--key")
        .arg(&owner)
        .arg("-o")
        .arg(&layout));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let verify = || {
        run(tollgate()
            .args(["verify", "--layout"])
            .arg(&layout)
            .arg("--layout-key")
            .arg(example_key("owner", "pub"))
            .arg("--link-dir")
            .arg(project.links()))
    };
    let digest = |c: char| c.to_string().repeat(64);
    let good = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "out.txt", "digest": {"sha256": digest('a')}}],
        "predicateType": "https://in-toto.io/attestation/link/v0.3",
        "predicate": {"name": "build", "command": [], "materials": [
            {"name": "src/main.c", "digest": {"sha256": digest('b')}, "uri": "file:src/main.c"}
        ], "byproducts": {}, "environment": {}},
        "unknownTopLevel": "ignored, as the framework requires",
    });
    plant(&project, &good);
    // The build step passes on its own (the package step has no link, so the threshold of
    // package fails next: the build step got that far).
    let out = verify();
    assert!(
        stderr(&out).contains("step package: 0 of 1"),
        "{}",
        stderr(&out)
    );

    for (change, reason) in [
        (
            json!({"predicateType": "https://slsa.dev/provenance/v1"}),
            "is not a link",
        ),
        (
            json!({"subject": [
                {"name": "out.txt", "digest": {"sha256": digest('a')}},
                {"name": "out.txt", "digest": {"sha256": digest('c')}}]}),
            "the name \\\"out.txt\\\" is given twice",
        ),
        (
            json!({"subject": [{"name": "out.txt"}]}),
            "a digest is required",
        ),
        (json!({"subject": []}), "at least one is required"),
        (
            json!({"subject": [{"name": "out.txt", "digest": {"sha256": "XYZ"}}]}),
            "not lowercase hex",
        ),
        (
            json!({"predicate": {"name": "test", "materials": []}}),
            "it records step test, not build",
        ),
    ] {
        let mut statement = good.clone();
        for (key, value) in change.as_object().expect("object") {
            statement[key] = value.clone();
        }
        plant(&project, &statement);
        let out = verify();
        assert_eq!(code(&out), 1, "{change}");
        let text = stderr(&out);
        assert!(text.contains("step build: 0 of 1"), "{change}: {text}");
        let report = run(tollgate()
            .args(["verify", "--format", "json", "--layout"])
            .arg(&layout)
            .arg("--layout-key")
            .arg(example_key("owner", "pub"))
            .arg("--link-dir")
            .arg(project.links()));
        let json_text = stdout(&report);
        assert!(json_text.contains(reason), "{change}: {json_text}");
    }
}

#[test]
fn a_statement_needs_products_and_none_is_written_without() {
    let project = Project::new();
    let out = project.record("build", &["-m", "src", "--statement"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--statement needs products"),
        "{}",
        stderr(&out)
    );
    assert!(!project.links().exists());
}

#[test]
fn provenance_describes_a_build_steps_products_and_is_valid_slsa() {
    let project = Project::new();
    let out = project.record("build", &["-m", "src", "-p", "out.txt"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let builder = private_copy("frank", project.dir.path());
    let output = project.dir.path().join("provenance.intoto.json");
    let make = |link: &Path, key: &Path| {
        run(tollgate()
            .args(["provenance", "--link"])
            .arg(link)
            .arg("--key")
            .arg(&builder)
            .args([
                "--builder-id",
                "https://ci.example.com/runners/1",
                "--link-key",
            ])
            .arg(key)
            .arg("--overwrite")
            .arg("-o")
            .arg(&output))
    };
    let out = make(
        &project.link("build"),
        &project.dir.path().join("keys/alice.pub"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(valid_for_the_framework(&output).starts_with("ok https://slsa.dev/provenance/v1 1"));
    let statement = payload(&output);
    let link: Value =
        serde_json::from_slice(&fs::read(project.link("build")).expect("read")).expect("json");
    assert_eq!(statement["subject"][0]["name"], "out.txt");
    assert_eq!(
        statement["subject"][0]["digest"],
        link["signed"]["products"]["out.txt"]
    );
    let predicate = &statement["predicate"];
    assert_eq!(
        predicate["buildDefinition"]["resolvedDependencies"][0]["digest"],
        link["signed"]["materials"]["src/main.c"]
    );
    assert_eq!(
        predicate["buildDefinition"]["externalParameters"]["step"],
        "build"
    );
    assert_eq!(
        predicate["runDetails"]["builder"]["id"],
        "https://ci.example.com/runners/1"
    );
    // Signed by the builder's key, over the exact payload (DSSE).
    let envelope =
        Envelope::from_bytes(&fs::read(&output).expect("read"), &Limits::default()).expect("env");
    let frank = load_private("frank");
    let ring = KeyRing::from_keys([frank.public_key().clone()]).expect("ring");
    assert!(envelope.verify(&ring, 1).is_ok());
    let alice = KeyRing::from_keys([load_private("alice").public_key().clone()]).expect("ring");
    assert!(envelope.verify(&alice, 1).is_err());

    // From a Statement link too; and a link not signed by the given key is refused.
    let out = project.record("build", &["-m", "src", "-p", "out.txt", "--statement"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = make(
        &project.link("build"),
        &project.dir.path().join("keys/alice.pub"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(payload(&output)["subject"], statement["subject"]);
    let out = make(&project.link("build"), &project.layout.owner_pub);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
}
