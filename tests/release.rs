//! The example layout `layouts/release.toml`, compiled by Tollgate, against a chain recorded
//! entirely by the reference's own tools (`in-toto-run`, `in-toto-record start`/`stop`), each
//! step signed by its functionary's key from `keys-example/`, just as `tollgate demo` records
//! it. The reference's `in-toto-verify` and `tollgate verify` must both pass what was shipped,
//! in both layout envelopes, and both must reject a tarball with a backdoor in it whose
//! checksum file was updated to match.
//!
//! The scan step of `release.toml` also expects a CycloneDX SBOM attested by the scanner
//! (ITE-10/11 `expected_predicates`), which the reference cannot read. The reference verifies
//! the layout built from the same source with its `[[step.predicate]]` tables taken out (a
//! layout without predicates is byte for byte what it was before them, which the tests check);
//! Tollgate verifies the real one, with an SBOM that `tollgate attest` signed with the
//! scanner's key over the reference's chain.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;
use crate::tools::{CYCLONEDX, sample_project, syft};

/// The functionaries of `layouts/release.toml` (all keys in `keys-example/test-only-*`).
const PEOPLE: [&str; 7] = ["owner", "alice", "bob", "carol", "dan", "erin", "frank"];

/// The sample project's source tree.
const SOURCES: &[(&str, &str)] = &[
    (
        "src/main.c",
        "#include \"greet.h\"\n\nint main(void) { return greet(\"world\"); }\n",
    ),
    (
        "src/greet.c",
        "#include <stdio.h>\n#include \"greet.h\"\n\nint greet(const char *who) {\n    \
         return printf(\"hello, %s\\n\", who) < 0;\n}\n",
    ),
    ("src/greet.h", "int greet(const char *who);\n"),
    ("src/README.md", "# app\n\nSays hello.\n"),
];

const BACKDOOR: &str = "void backdoor(void) { /* sends your keys away */ }\n";

/// Both envelopes `tollgate layout build` writes.
const LAYOUT_FORMATS: [&str; 2] = ["classic", "dsse"];

/// `layouts/release.toml` without its `[[step.predicate]]` tables, with its key paths made
/// absolute (it is written outside the repository): the layout for `in-toto-verify` 3.1.0,
/// which refuses a step with `expected_predicates`.
fn without_predicates() -> String {
    let source = fs::read_to_string(repo().join("layouts/release.toml")).expect("read source");
    let mut kept = Vec::new();
    let mut skipping = false;
    for line in source.lines() {
        if line.starts_with("[[") {
            skipping = line.trim() == "[[step.predicate]]";
        }
        if !skipping {
            kept.push(line);
        }
    }
    let keys = format!("\"{}/", repo().join("keys-example").display());
    let text = kept.join("\n").replace("\"../keys-example/", &keys);
    assert!(
        !text.contains("[[step.predicate]]") && !text.contains("rules ="),
        "{text}"
    );
    text
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    fs::write(path, text).expect("write");
}

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

/// A chain recorded by the reference, and the layout built twice by Tollgate.
struct Release {
    dir: tempfile::TempDir,
    keys: PathBuf,
    project: PathBuf,
    links: PathBuf,
}

impl Release {
    fn key(&self, who: &str) -> PathBuf {
        self.keys.join(format!("{who}.pem"))
    }

    /// Runs a reference tool in the project folder as `who`, and checks it succeeded.
    fn reference(
        &self,
        tool: &str,
        subcommand: Option<&str>,
        step: &str,
        who: &str,
        args: &[&str],
    ) {
        let mut command = Reference::get().tool(tool);
        command.current_dir(&self.project);
        if let Some(subcommand) = subcommand {
            command.arg(subcommand);
        }
        command
            .args(["--step-name", step, "--signing-key"])
            .arg(self.key(who))
            .args(args);
        let out = run(&mut command);
        assert_eq!(
            code(&out),
            0,
            "{tool} {} ({step}, {who}): {}{}",
            subcommand.unwrap_or(""),
            stdout(&out),
            stderr(&out)
        );
    }

    fn link_dir(&self) -> String {
        self.links.to_str().expect("utf-8 temp path").to_owned()
    }

    /// Step 2 of the demo, by the reference's tools: both reviewers sign off the source, CI
    /// checks it out, the builder packs it, the scanner lists it (and attests its SBOM with
    /// `tollgate attest`), the release manager publishes its checksum. Every link (and the
    /// attestation) goes to `links/`.
    fn record() -> Release {
        let dir = tempdir();
        let keys = dir.path().join("keys");
        fs::create_dir(&keys).expect("mkdir");
        for who in PEOPLE {
            // The reference (and Tollgate) want private keys that only their owner can read.
            private_copy(who, &keys);
        }
        let release = Release {
            keys,
            project: dir.path().join("project"),
            links: dir.path().join("links"),
            dir,
        };
        fs::create_dir(&release.links).expect("mkdir");
        for (path, text) in SOURCES {
            write(&release.project.join(path), text);
        }
        let links = release.link_dir();
        let links = links.as_str();

        // `-x`: a sign-off, with no command run. `-d`: where the link goes (default: the cwd).
        for who in ["alice", "bob"] {
            release.reference(
                "in-toto-run",
                None,
                "review",
                who,
                &["-m", "src", "-x", "-d", links],
            );
        }
        // `record start` takes no `-d`: it leaves `.source.KEYID.link-unfinished` in its cwd,
        // where `record stop` (which does take `-d`) finds it, completes it and removes it.
        release.reference("in-toto-record", Some("start"), "source", "carol", &[]);
        release.reference(
            "in-toto-record",
            Some("stop"),
            "source",
            "carol",
            &["-p", "src", "-d", links],
        );

        fs::create_dir(release.project.join("dist")).expect("mkdir");
        release.reference(
            "in-toto-run",
            None,
            "build",
            "dan",
            &[
                "-m",
                "src",
                "-p",
                "dist",
                "-d",
                links,
                "--",
                "tar",
                "-czf",
                "dist/app.tar.gz",
                "src",
            ],
        );
        release.reference(
            "in-toto-run",
            None,
            "scan",
            "erin",
            &[
                "-m",
                "dist/app.tar.gz",
                "-s",
                "-d",
                links,
                "--",
                "tar",
                "-tzf",
                "dist/app.tar.gz",
            ],
        );
        // The scanner's SBOM: Syft's own CycloneDX 1.6 output, for the sample project with a
        // real lock file (its crates pass the deny-list; Syft offline names no licenses).
        let sbom = release.dir.path().join("sbom.cdx.json");
        let bytes = syft(&sample_project(), CYCLONEDX);
        let value: serde_json::Value = serde_json::from_slice(&bytes).expect("Syft wrote JSON");
        let components = value["components"].as_array().map_or(0, Vec::len);
        assert!(
            components > 3,
            "the rules run over Syft's components: {value:#}"
        );
        fs::write(&sbom, bytes).expect("write SBOM");
        let out = run(tollgate()
            .current_dir(&release.project)
            .args(["attest", "--step", "scan", "--key"])
            .arg(release.key("erin"))
            .args(["--predicate-type", "cyclonedx", "--predicate"])
            .arg(&sbom)
            .args(["--subject", "dist/app.tar.gz", "-d", links]));
        assert_eq!(code(&out), 0, "tollgate attest: {}", stderr(&out));

        release.reference(
            "in-toto-record",
            Some("start"),
            "sign",
            "frank",
            &["-m", "dist/app.tar.gz"],
        );
        let out = run(std::process::Command::new("sha256sum")
            .arg("dist/app.tar.gz")
            .current_dir(&release.project));
        assert_eq!(code(&out), 0, "sha256sum: {}", stderr(&out));
        let line = stdout(&out);
        assert!(
            line.len() == 64 + "  dist/app.tar.gz\n".len() && line.ends_with("  dist/app.tar.gz\n"),
            "sha256sum format: {line:?}"
        );
        write(&release.project.join("dist/app.tar.gz.sha256"), &line);
        release.reference(
            "in-toto-record",
            Some("stop"),
            "sign",
            "frank",
            &["-p", "dist", "-d", links],
        );

        // Exactly one link per functionary, named STEP.KEYID8.link, all in links/, and the
        // scanner's SBOM attestation beside them (the reference reads only the links it looks
        // for by name); nothing left behind in the project (no stray link, no unfinished one).
        let short = |who: &str| load_public(who).keyid().short().to_owned();
        let mut expected: BTreeSet<String> = [
            ("review", "alice"),
            ("review", "bob"),
            ("source", "carol"),
            ("build", "dan"),
            ("scan", "erin"),
            ("sign", "frank"),
        ]
        .iter()
        .map(|(step, who)| format!("{step}.{}.link", short(who)))
        .collect();
        expected.insert(format!("scan.{}.cyclonedx.intoto.json", short("erin")));
        assert_eq!(names(&release.links), expected);
        assert_eq!(
            names(&release.project),
            BTreeSet::from(["dist".to_owned(), "src".to_owned()])
        );
        assert_eq!(
            names(&release.project.join("dist")),
            BTreeSet::from(["app.tar.gz".to_owned(), "app.tar.gz.sha256".to_owned()])
        );
        release
    }

    /// Step 1 of the demo, by Tollgate: `layouts/release.toml` compiled and signed by the
    /// owner. The source names its functionaries' keys relative to its own folder, so the
    /// repository's file is built in place, written into the temp folder. With `for_reference`,
    /// the same source without its `[[step.predicate]]` tables ([`without_predicates`]).
    fn build_layout(&self, format: &str, for_reference: bool) -> PathBuf {
        let which = if for_reference {
            "reference"
        } else {
            "tollgate"
        };
        let layout = self
            .dir
            .path()
            .join(format!("root-{which}-{format}.layout"));
        let source = if for_reference {
            let path = self.dir.path().join("release-without-predicates.toml");
            write(&path, &without_predicates());
            path
        } else {
            repo().join("layouts/release.toml")
        };
        let mut command = tollgate();
        command
            .args(["layout", "build"])
            .arg(&source)
            .arg("--key")
            .arg(self.key("owner"))
            .arg("-o")
            .arg(&layout);
        if format == "dsse" {
            command.arg("--dsse");
        }
        let out = run(&mut command);
        assert_eq!(code(&out), 0, "layout build --{format}: {}", stderr(&out));
        let text = fs::read_to_string(&layout).expect("read layout");
        // The envelope is the one asked for: DSSE carries a base64 payload, classic `signed`.
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        let key = if format == "dsse" {
            "payload"
        } else {
            "signed"
        };
        assert!(value.get(key).is_some(), "{format} layout: {text}");
        assert_eq!(
            text_of_layout(&layout).contains("expected_predicates"),
            !for_reference,
            "{which} {format} layout: {text}"
        );
        layout
    }

    /// What a buyer receives: a folder holding only `dist/app.tar.gz` and its checksum. With
    /// `tampered`, an attacker's tarball holding `src/backdoor.c` too, and a matching checksum.
    fn ship(&self, folder: &str, tampered: bool) -> PathBuf {
        let buyer = self.dir.path().join(folder);
        let dist = buyer.join("dist");
        fs::create_dir_all(&dist).expect("mkdir");
        if tampered {
            let workshop = self.dir.path().join(format!("{folder}-attacker"));
            for (path, text) in SOURCES {
                write(&workshop.join(path), text);
            }
            write(&workshop.join("src/backdoor.c"), BACKDOOR);
            let out = run(std::process::Command::new("tar")
                .arg("-czf")
                .arg(dist.join("app.tar.gz"))
                .arg("src")
                .current_dir(&workshop));
            assert_eq!(code(&out), 0, "tar: {}", stderr(&out));
            let out = run(std::process::Command::new("sha256sum")
                .arg("dist/app.tar.gz")
                .current_dir(&buyer));
            assert_eq!(code(&out), 0, "sha256sum: {}", stderr(&out));
            fs::write(dist.join("app.tar.gz.sha256"), stdout(&out).as_bytes()).expect("write");
            assert_ne!(
                fs::read(dist.join("app.tar.gz")).expect("read"),
                fs::read(self.project.join("dist/app.tar.gz")).expect("read"),
            );
        } else {
            for file in ["app.tar.gz", "app.tar.gz.sha256"] {
                fs::copy(self.project.join("dist").join(file), dist.join(file)).expect("copy");
            }
        }
        buyer
    }

    /// `in-toto-verify`, run (as its inspections must be) in the buyer's folder.
    fn verify_reference(&self, layout: &Path, buyer: &Path) -> Output {
        run(Reference::get()
            .tool("in-toto-verify")
            .current_dir(buyer)
            .arg("--layout")
            .arg(layout)
            .arg("--verification-keys")
            .arg(example_key("owner", "pub"))
            .arg("--link-dir")
            .arg(&self.links))
    }

    /// `tollgate verify`, with the buyer's folder as its `--workdir` (run from elsewhere).
    fn verify_tollgate(&self, layout: &Path, buyer: &Path) -> Output {
        run(tollgate()
            .current_dir(self.dir.path())
            .arg("verify")
            .arg("--layout")
            .arg(layout)
            .arg("--layout-key")
            .arg(example_key("owner", "pub"))
            .arg("--link-dir")
            .arg(&self.links)
            .arg("--workdir")
            .arg(buyer))
    }
}

/// The payload a layout file signs, as text (DSSE: decoded from base64).
fn text_of_layout(path: &Path) -> String {
    let value: serde_json::Value =
        serde_json::from_slice(&fs::read(path).expect("read layout")).expect("json");
    match value.get("payload").and_then(|p| p.as_str()) {
        Some(payload) => {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(payload)
                .expect("base64");
            String::from_utf8(bytes).expect("utf-8")
        }
        None => value["signed"].to_string(),
    }
}

/// The layout without `[[step.predicate]]` is the layout with predicates, less its
/// `expected_predicates`: adding a policy changes nothing else that the reference reads.
#[test]
fn the_release_layout_without_its_predicates_is_the_same_layout_less_expected_predicates() {
    let release = Release {
        dir: tempdir(),
        keys: PathBuf::new(),
        project: PathBuf::new(),
        links: PathBuf::new(),
    };
    let keys = release.dir.path().join("keys");
    fs::create_dir(&keys).expect("mkdir");
    private_copy("owner", &keys);
    let release = Release { keys, ..release };
    let signed = |path: &Path| {
        let mut value: serde_json::Value =
            serde_json::from_str(&text_of_layout(path)).expect("json");
        value["expires"] = serde_json::Value::Null;
        value
    };
    let theirs = signed(&release.build_layout("classic", true));
    let mut ours = signed(&release.build_layout("classic", false));
    let scan = ours["steps"]
        .as_array_mut()
        .expect("steps")
        .iter_mut()
        .find(|s| s["name"] == "scan")
        .expect("a scan step");
    let predicates = scan
        .as_object_mut()
        .expect("a step")
        .remove("expected_predicates")
        .expect("scan expects predicates");
    assert_eq!(predicates[0]["predicate_type"], "https://cyclonedx.org/bom");
    assert_eq!(theirs, ours);
}

#[test]
fn the_release_layout_verifies_a_chain_recorded_by_the_reference() {
    let release = Release::record();
    for format in LAYOUT_FORMATS {
        let reference_layout = release.build_layout(format, true);
        let layout = release.build_layout(format, false);

        let buyer = release.ship(&format!("buyer-reference-{format}"), false);
        let theirs = release.verify_reference(&reference_layout, &buyer);
        assert_eq!(
            code(&theirs),
            0,
            "in-toto-verify, {format} layout: {}{}",
            stdout(&theirs),
            stderr(&theirs)
        );
        assert!(
            stderr(&theirs).is_empty(),
            "in-toto-verify, {format} layout: {}",
            stderr(&theirs)
        );
        // The reference ran both inspections in its cwd: they unpacked the tarball there and
        // wrote their (unsigned) links beside it.
        assert_eq!(
            names(&buyer),
            BTreeSet::from([
                "checksum.link".to_owned(),
                "dist".to_owned(),
                "src".to_owned(),
                "unpack.link".to_owned(),
            ]),
            "{format}"
        );

        let buyer = release.ship(&format!("buyer-tollgate-{format}"), false);
        let ours = release.verify_tollgate(&layout, &buyer);
        assert_eq!(
            code(&ours),
            0,
            "tollgate verify, {format} layout: {}",
            stderr(&ours)
        );
        let text = stdout(&ours);
        assert!(
            text.contains("verified: 5 step(s) and 2 inspection(s) passed"),
            "{format}: {text}"
        );
        for line in [
            "step review: 2 of 2 required key(s) signed",
            "step source: 1 of 1 required key(s) signed",
            "step build: 1 of 1 required key(s) signed",
            "step scan: 1 of 1 required key(s) signed",
            "https://cyclonedx.org/bom: 1 of 1 required attestation(s) passed every rule",
            "step sign: 1 of 1 required key(s) signed",
            "inspection unpack: `tar -xzf dist/app.tar.gz` exited 0",
            "inspection checksum: `sha256sum --check --strict dist/app.tar.gz.sha256` exited 0",
        ] {
            assert!(text.contains(line), "{format}: no {line:?} in {text}");
        }
        // A difference by design: Tollgate runs the inspections in a scratch copy of --workdir
        // and keeps their links in memory, so the buyer's folder is left as it was (THREATS
        // I5), where the reference unpacks the tarball there and leaves unpack.link and
        // checksum.link beside it.
        assert_eq!(
            names(&buyer),
            BTreeSet::from(["dist".to_owned()]),
            "{format}"
        );
    }
}

#[test]
fn a_backdoored_tarball_with_a_matching_checksum_is_rejected_by_both() {
    let release = Release::record();
    for format in LAYOUT_FORMATS {
        let reference_layout = release.build_layout(format, true);
        let layout = release.build_layout(format, false);

        // Both stop at the same rule: the tarball the `unpack` inspection starts from is not
        // the one `sign` published, so `MATCH dist/* WITH PRODUCTS FROM sign` leaves it (and
        // the checksum file) to `DISALLOW *`; the backdoor shows only in the reference's trace of
        // unpack's products.
        let buyer = release.ship(&format!("buyer-reference-{format}"), true);
        let theirs = release.verify_reference(&reference_layout, &buyer);
        let text = stderr(&theirs);
        assert_eq!(code(&theirs), 1, "in-toto-verify, {format} layout: {text}");
        for wanted in [
            "Full trace for 'expected_materials' of item 'unpack'",
            "'src/backdoor.c'",
        ] {
            assert!(text.contains(wanted), "{format}: no {wanted:?} in {text}");
        }
        // The reference lists the artifacts in a Python set's order, which varies from run to
        // run (string hashing is randomised): compare them as a set.
        let matched = text
            .split_once("RuleVerificationError: 'DISALLOW *' matched the following artifacts: [")
            .and_then(|(_, rest)| rest.split_once(']'))
            .map(|(list, _)| list.split(", ").map(str::to_owned).collect::<BTreeSet<_>>())
            .unwrap_or_else(|| panic!("{format}: no DISALLOW * failure in {text}"));
        assert_eq!(
            matched,
            BTreeSet::from([
                "'dist/app.tar.gz'".to_owned(),
                "'dist/app.tar.gz.sha256'".to_owned()
            ]),
            "{format}: {text}"
        );

        let buyer = release.ship(&format!("buyer-tollgate-{format}"), true);
        let ours = release.verify_tollgate(&layout, &buyer);
        let text = stderr(&ours);
        assert_eq!(code(&ours), 1, "tollgate verify, {format} layout: {text}");
        assert!(!stdout(&ours).contains("verified:"), "{}", stdout(&ours));
        for wanted in [
            "verification FAILED",
            "inspection unpack",
            "expected_materials rule 2 (DISALLOW *)",
            "dist/app.tar.gz",
        ] {
            assert!(text.contains(wanted), "{format}: no {wanted:?} in {text}");
        }
    }
}

/// The release policy's license allow-list over SBOMs shaped as scanners write them: a
/// component without `licenses` (the scanner could not tell) and an allowed SPDX expression
/// pass; a license known only by name, or one not on the list, is refused by rule 3 with its
/// message. The chain is the demo's, kept; only the scanner's attestation changes.
#[test]
fn the_release_license_allow_list_refuses_unlisted_and_unnamed_licenses() {
    let dir = tempdir();
    let kept = dir.path().join("demo");
    let out = run(tollgate().args(["demo", "--keep"]).arg(&kept));
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let erin = private_copy("erin", dir.path());
    let sbom = dir.path().join("sbom.json");
    for (licenses, passes) in [
        (None, true),
        (Some(r#"[{"expression": "MIT OR Apache-2.0"}]"#), true),
        (Some(r#"[{"license": {"id": "Apache-2.0"}}]"#), true),
        (
            Some(r#"[{"license": {"name": "Custom Corp License"}}]"#),
            false,
        ),
        (Some(r#"[{"license": {"id": "GPL-3.0-only"}}]"#), false),
    ] {
        let component = match licenses {
            Some(list) => format!(r#"{{"type": "library", "name": "lib", "licenses": {list}}}"#),
            None => r#"{"type": "library", "name": "lib"}"#.to_owned(),
        };
        write(
            &sbom,
            &format!(
                r#"{{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{component}]}}"#
            ),
        );
        let out = run(tollgate()
            .current_dir(kept.join("project"))
            .args(["attest", "-q", "--step", "scan", "--key"])
            .arg(&erin)
            .args(["--predicate-type", "cyclonedx", "--predicate"])
            .arg(&sbom)
            .args(["--subject", "dist/app.tar.gz", "--overwrite", "-d"])
            .arg(kept.join("links")));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let out = run(tollgate()
            .current_dir(kept.join("buyer"))
            .args(["verify", "--format", "json", "--layout", "../root.layout"])
            .args(["--layout-key", "../owner.pub", "--link-dir", "../links"]));
        let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
        if passes {
            assert_eq!(code(&out), 0, "{licenses:?}: {report:#}");
        } else {
            assert_eq!(code(&out), 1, "{licenses:?}: {report:#}");
            let failure = &report["failure"];
            assert_eq!(failure["check"], "predicate", "{licenses:?}: {report:#}");
            assert_eq!(failure["predicate"]["rule"], 3, "{licenses:?}: {report:#}");
            assert!(
                failure["predicate"]["debug"].as_str().is_some_and(
                    |d| d.starts_with("a component's license is not on the allow-list")
                ),
                "{licenses:?}: {report:#}"
            );
        }
    }
}
