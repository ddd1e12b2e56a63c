//! The CI examples of `examples/ci/`, run for real: `step.sh` records every step of
//! `layouts/release.toml` with the test-only keys handed over as PEM text (as CI secrets are),
//! `verify-release.sh` passes the honest release and fails a tampered one, no key leaks into
//! any output or stays behind on disk, and both pipelines call only steps the layout has.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::*;

/// Who performs each step, in the pipeline's order (`source` is recorded separately).
const REVIEWERS: [&str; 2] = ["alice", "bob"];
const AFTER_SOURCE: [(&str, &str); 3] = [("build", "dan"), ("scan", "erin"), ("sign", "frank")];

/// Every private key the pipeline handles, whose text must never be printed.
const PRIVATE_KEYS: [&str; 8] = [
    "alice",
    "bob",
    "carol",
    "dan",
    "erin",
    "frank",
    "owner",
    "ed25519-encrypted",
];

/// The sample project's source tree.
const SOURCES: [(&str, &str); 4] = [
    (
        "src/main.c",
        "#include \"greet.h\"\nint main(void) { return greet(\"ci\"); }\n",
    ),
    (
        "src/greet.c",
        "#include <stdio.h>\nint greet(const char *w) { return printf(\"hi %s\\n\", w) < 0; }\n",
    ),
    ("src/greet.h", "int greet(const char *w);\n"),
    ("src/docs/README.md", "# app\n"),
];

fn script(name: &str) -> PathBuf {
    repo().join("examples/ci").join(name)
}

fn key_text(name: &str) -> String {
    fs::read_to_string(example_key(name, "pem")).expect("read key")
}

/// The base64 lines of every private key: none may appear in any output.
fn secret_lines() -> Vec<String> {
    PRIVATE_KEYS
        .iter()
        .flat_map(|name| {
            key_text(name)
                .lines()
                .filter(|l| !l.starts_with("-----") && l.len() >= 16)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn assert_no_secret(what: &str, text: &str) {
    for line in secret_lines() {
        assert!(
            !text.contains(&line),
            "{what} contains private key text:\n{text}"
        );
    }
}

/// What Syft 1.18.1 writes for the sample tarball (`syft scan file:dist/app.tar.gz -o
/// cyclonedx-json@1.6`): it finds no package among C sources, so it leaves `components` out.
const SYFT_SBOM: &str = r#"{"$schema":"http://cyclonedx.org/schema/bom-1.6.schema.json","bomFormat":"CycloneDX","specVersion":"1.6","serialNumber":"urn:uuid:04d2c664-66cd-4481-b067-e401d75968cc","version":1,"metadata":{"timestamp":"2026-12-08T01:40:12Z","tools":{"components":[{"type":"application","author":"anchore","name":"syft","version":"1.18.1"}]},"component":{"bom-ref":"bb05a8a7a4549d07","type":"file","name":"app.tar.gz"}}}"#;

/// The same SBOM had the release pulled in left-pad, which the layout's policy denies.
const LEFT_PAD_SBOM: &str = r#"{"$schema":"http://cyclonedx.org/schema/bom-1.6.schema.json","bomFormat":"CycloneDX","specVersion":"1.6","version":1,"metadata":{"component":{"type":"file","name":"app.tar.gz"}},"components":[{"bom-ref":"pkg:npm/left-pad@1.3.0","type":"library","name":"left-pad","version":"1.3.0","licenses":[{"license":{"id":"WTFPL"}}],"purl":"pkg:npm/left-pad@1.3.0"}]}"#;

/// A CI workspace: the project checkout, its `$TMPDIR`, and a `tar` that logs its environment.
struct Ci {
    _dir: tempfile::TempDir,
    project: PathBuf,
    tmp: PathBuf,
    shims: PathBuf,
    env_log: PathBuf,
    /// Every stdout and stderr the scripts printed.
    printed: Vec<(String, String)>,
}

impl Ci {
    fn new() -> Ci {
        let dir = tempdir();
        let project = dir.path().join("project");
        let tmp = dir.path().join("tmp");
        let shims = dir.path().join("shims");
        for folder in [&project, &tmp, &shims] {
            fs::create_dir_all(folder).expect("mkdir");
        }
        // A `tar` in front of the real one that logs the environment the step's command gets,
        // to show the key is not in it. The log lives outside the recorded tree.
        let env_log = dir.path().join("tar-env.log");
        let real_tar = find_on_path("tar");
        let shim = shims.join("tar");
        fs::write(
            &shim,
            format!(
                "#!/bin/sh\nenv >>'{}'\nexec '{}' \"$@\"\n",
                env_log.display(),
                real_tar.display()
            ),
        )
        .expect("write tar shim");
        set_mode(&shim, 0o755);
        Ci {
            project,
            tmp,
            shims,
            env_log,
            printed: Vec::new(),
            _dir: dir,
        }
    }

    /// A command for one of the scripts, run in the project as a CI job runs it: the built
    /// tollgate in `TOLLGATE`, `TMPDIR` a folder of its own, no key unless given.
    fn script(&self, name: &str) -> Command {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut search = vec![self.shims.clone()];
        search.extend(std::env::split_paths(&path));
        let mut command = Command::new(script(name));
        command
            .current_dir(&self.project)
            .env("PATH", std::env::join_paths(search).expect("PATH"))
            .env("TOLLGATE", env!("CARGO_BIN_EXE_tollgate"))
            .env("TMPDIR", &self.tmp)
            .env_remove("TOLLGATE_KEY")
            .env_remove("TOLLGATE_KEY_PASSWORD")
            .env_remove("TOLLGATE_LINKS")
            .env_remove("TOLLGATE_OWNER_PUB");
        command
    }

    /// Runs a command, keeping what it printed for the leak check.
    fn run(&mut self, command: &mut Command) -> Output {
        let out = run(command);
        self.printed.push((stdout(&out), stderr(&out)));
        out
    }

    /// `step.sh STEP` with `who`'s key as PEM text in `TOLLGATE_KEY`; it must succeed.
    fn step(&mut self, step: &str, who: &str) {
        let mut command = self.script("step.sh");
        command.arg(step).env("TOLLGATE_KEY", key_text(who));
        let out = self.run(&mut command);
        assert_eq!(
            code(&out),
            0,
            "step.sh {step} as {who}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        self.assert_no_temp_files(&format!("step.sh {step}"));
    }

    /// Nothing the scripts create in `$TMPDIR` (the key file above all) is left behind.
    fn assert_no_temp_files(&self, after: &str) {
        let left: Vec<_> = fs::read_dir(&self.tmp)
            .expect("read tmp")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(left.is_empty(), "{after} left {left:?} in TMPDIR");
    }

    fn write_sources(&self) {
        for (path, text) in SOURCES {
            let to = self.project.join(path);
            fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
            fs::write(to, text).expect("write source");
        }
    }

    /// The five steps, each by its functionary. With `two_halves`, `source` is recorded with
    /// `source-start` before the checkout and `source-stop` after it.
    fn record_chain(&mut self, two_halves: bool) {
        if two_halves {
            self.step("source-start", "carol");
            assert_eq!(self.links_named(".source."), 1, "an unfinished source link");
        }
        self.write_sources();
        for reviewer in REVIEWERS {
            self.step("review", reviewer);
        }
        self.step(if two_halves { "source-stop" } else { "source" }, "carol");
        for (step, who) in AFTER_SOURCE {
            if step == "scan" {
                // The scan job's scanner writes the SBOM before step.sh runs.
                fs::write(self.project.join("sbom.cdx.json"), SYFT_SBOM).expect("write SBOM");
            }
            self.step(step, who);
        }
        // One link per functionary, under the step's name, and the scanner's SBOM
        // attestation; no unfinished link left over.
        let names: Vec<String> = self.link_files();
        assert_eq!(names.len(), 7, "{names:?}");
        for (prefix, count) in [
            ("review.", 2),
            ("source.", 1),
            ("build.", 1),
            ("scan.", 2),
            ("sign.", 1),
        ] {
            assert_eq!(self.links_named(prefix), count, "{prefix} in {names:?}");
        }
        let erin = load_public("erin").keyid().short().to_owned();
        for name in [
            format!("scan.{erin}.link"),
            format!("scan.{erin}.cyclonedx.intoto.json"),
        ] {
            assert!(names.contains(&name), "no {name} in {names:?}");
        }
        let checksum = fs::read_to_string(self.project.join("dist/app.tar.gz.sha256"))
            .expect("sign wrote the checksum");
        assert_eq!(checksum, checksum_line(&self.project.join("dist")));
    }

    fn link_files(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.project.join("links"))
            .expect("read links")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn links_named(&self, prefix: &str) -> usize {
        self.link_files()
            .iter()
            .filter(|n| n.starts_with(prefix))
            .count()
    }

    /// The owner builds the signed layout from `layouts/release.toml`, and commits it with
    /// their public key, as `examples/ci/README.md` says.
    fn build_layout(&mut self) {
        let keys = self.tmp.parent().expect("ci dir").join("owner-keys");
        fs::create_dir_all(&keys).expect("mkdir");
        let owner = private_copy("owner", &keys);
        let out = self.run(
            tollgate()
                .current_dir(&self.project)
                .args(["layout", "build"])
                .arg(repo().join("layouts/release.toml"))
                .arg("--key")
                .arg(&owner)
                .args(["-o", "root.layout"]),
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        fs::copy(example_key("owner", "pub"), self.project.join("owner.pub"))
            .expect("copy owner.pub");
    }

    /// `verify-release.sh` as both pipelines call it; returns its output and the report.
    fn verify(&mut self, report: &str, owner_in_env: bool) -> (Output, Value) {
        let mut command = self.script("verify-release.sh");
        command.args([
            "-l",
            "root.layout",
            "-d",
            "links",
            "-a",
            "dist",
            "-r",
            report,
        ]);
        if owner_in_env {
            let pem = fs::read_to_string(example_key("owner", "pub")).expect("read");
            command.env("TOLLGATE_OWNER_PUB", pem);
        } else {
            command.args(["-k", "owner.pub"]);
        }
        let _ = fs::remove_file(self.project.join(report));
        let out = self.run(&mut command);
        self.assert_no_temp_files("verify-release.sh");
        let path = self.project.join(report);
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), stderr(&out)));
        let value: Value = serde_json::from_str(&text).expect("the report is JSON");
        (out, value)
    }

    /// No key text in anything printed, in any link, or in the step commands' environment.
    fn assert_nothing_leaked(&self) {
        assert!(!self.printed.is_empty());
        for (out, err) in &self.printed {
            assert_no_secret("stdout", out);
            assert_no_secret("stderr", err);
        }
        for name in self.link_files() {
            let text = fs::read_to_string(self.project.join("links").join(&name)).expect("read");
            assert_no_secret(&name, &text);
        }
        let env = fs::read_to_string(&self.env_log).expect("tar ran, logging its environment");
        assert!(env.contains("TOLLGATE="), "the shim logged the environment");
        assert!(
            !env.contains("TOLLGATE_KEY="),
            "the step's command saw the key"
        );
        assert_no_secret("the step command's environment", &env);
    }
}

fn find_on_path(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").expect("PATH");
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is not on the PATH"))
}

/// `dist/app.tar.gz.sha256` as `sha256sum` writes it.
fn checksum_line(dist: &Path) -> String {
    let bytes = fs::read(dist.join("app.tar.gz")).expect("read tarball");
    format!("{}  dist/app.tar.gz\n", hex::encode(Sha256::digest(&bytes)))
}

fn assert_report(out: &Output, report: &Value, verdict: &str) {
    assert_eq!(
        report["verdict"],
        verdict,
        "{report:#}\n{}{}",
        stdout(out),
        stderr(out)
    );
}

fn honest_chain_verifies_and_tampering_fails(two_halves: bool) {
    let mut ci = Ci::new();
    ci.record_chain(two_halves);
    ci.build_layout();

    // The honest release passes, with the owner's key from the repository...
    let (out, report) = ci.verify("verify-report.json", false);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_report(&out, &report, "pass");
    assert_eq!(report["failure"], Value::Null);
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(steps, ["review", "source", "build", "scan", "sign"]);
    assert_eq!(
        report["inspections"].as_array().expect("inspections").len(),
        2
    );
    assert!(stdout(&out).contains("root.layout: verified: 5 step(s) and 2 inspection(s)"));
    assert!(stdout(&out).contains("release verified; report in verify-report.json"));
    // ...and with the key as PEM text in TOLLGATE_OWNER_PUB.
    let (out, report) = ci.verify("report-env.json", true);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_report(&out, &report, "pass");
    // The work folders were fresh copies: nothing was unpacked into the project.
    assert!(!ci.project.join("dist/src").exists());

    let dist = ci.project.join("dist");
    let honest = fs::read(dist.join("app.tar.gz")).expect("read");

    // Bytes appended to the tarball, the checksum recomputed to match.
    let mut appended = honest.clone();
    appended.extend_from_slice(b"\0\0tampered");
    fs::write(dist.join("app.tar.gz"), &appended).expect("write");
    fs::write(dist.join("app.tar.gz.sha256"), checksum_line(&dist)).expect("write");
    let (out, report) = ci.verify("verify-report.json", false);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    assert_report(&out, &report, "fail");
    assert!(stderr(&out).contains("release NOT verified (exit 1)"));

    // A tarball repacked with a backdoor in it, and a checksum to match: the rules catch it.
    let attacker = ci.tmp.parent().expect("ci dir").join("attacker");
    for (path, text) in SOURCES {
        let to = attacker.join(path);
        fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        fs::write(to, text).expect("write");
    }
    fs::write(attacker.join("src/backdoor.c"), "void backdoor(void) {}\n").expect("write");
    let packed = run(Command::new("tar")
        .arg("-czf")
        .arg(dist.join("app.tar.gz"))
        .arg("src")
        .current_dir(&attacker));
    assert_eq!(code(&packed), 0, "{}", stderr(&packed));
    fs::write(dist.join("app.tar.gz.sha256"), checksum_line(&dist)).expect("write");
    let (out, report) = ci.verify("verify-report.json", true);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    assert_report(&out, &report, "fail");
    let reason = report["failure"]["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("dist/app.tar.gz") && reason.contains("products of step sign"),
        "{reason}"
    );
    assert!(
        stderr(&out).contains("verification FAILED"),
        "{}",
        stderr(&out)
    );

    // The honest tarball back, but one reviewer's link missing: the threshold is not met.
    fs::write(dist.join("app.tar.gz"), &honest).expect("write");
    fs::write(dist.join("app.tar.gz.sha256"), checksum_line(&dist)).expect("write");
    let (out, _) = ci.verify("verify-report.json", false);
    assert_eq!(
        code(&out),
        0,
        "the honest release verifies again: {}",
        stderr(&out)
    );

    // The scanner's SBOM lists left-pad, which the layout's policy denies: the release is
    // refused by the rule, with its message.
    let attest = |ci: &mut Ci, sbom: &str| {
        fs::write(ci.project.join("sbom.cdx.json"), sbom).expect("write SBOM");
        let keys = ci.tmp.parent().expect("ci dir").join("erin-keys");
        fs::create_dir_all(&keys).expect("mkdir");
        let out = ci.run(
            tollgate()
                .current_dir(&ci.project)
                .args(["attest", "--step", "scan", "--key"])
                .arg(private_copy("erin", &keys))
                .args([
                    "--predicate-type",
                    "cyclonedx",
                    "--predicate",
                    "sbom.cdx.json",
                ])
                .args(["--subject", "dist/app.tar.gz", "-d", "links", "--overwrite"]),
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    };
    attest(&mut ci, LEFT_PAD_SBOM);
    let (out, report) = ci.verify("verify-report.json", false);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    assert_report(&out, &report, "fail");
    assert_eq!(report["failure"]["check"], "predicate", "{report:#}");
    assert_eq!(
        report["failure"]["predicate"]["debug"], "a denied component is in the release",
        "{report:#}"
    );
    attest(&mut ci, SYFT_SBOM);
    let (out, _) = ci.verify("verify-report.json", false);
    assert_eq!(code(&out), 0, "the honest SBOM again: {}", stderr(&out));

    let review = ci
        .link_files()
        .into_iter()
        .find(|n| n.starts_with("review."))
        .expect("a review link");
    fs::remove_file(ci.project.join("links").join(review)).expect("remove");
    let (out, report) = ci.verify("verify-report.json", false);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    assert_report(&out, &report, "fail");
    assert!(
        report["failure"]["reason"]
            .as_str()
            .expect("a reason")
            .contains("review"),
        "{report:#}"
    );

    ci.assert_nothing_leaked();
}

#[test]
fn ci_scripts_record_the_release_chain_and_verify_release_gates_it() {
    honest_chain_verifies_and_tampering_fails(false);
}

#[test]
fn ci_scripts_record_source_in_two_halves_around_the_checkout() {
    honest_chain_verifies_and_tampering_fails(true);
}

#[test]
fn step_sh_refuses_an_unknown_step_or_a_missing_key_and_leaves_no_key_behind() {
    let mut ci = Ci::new();
    ci.write_sources();

    let mut unknown = ci.script("step.sh");
    unknown.arg("deploy").env("TOLLGATE_KEY", key_text("dan"));
    let out = ci.run(&mut unknown);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("unknown step 'deploy'"),
        "{}",
        stderr(&out)
    );

    let out = ci.run(&mut ci.script("step.sh"));
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).starts_with("usage: "), "{}", stderr(&out));

    let out = ci.run(ci.script("step.sh").arg("review"));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("TOLLGATE_KEY is not set"),
        "{}",
        stderr(&out)
    );
    let out = ci.run(ci.script("step.sh").arg("review").env("TOLLGATE_KEY", ""));
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("TOLLGATE_KEY is not set"));

    let out = ci.run(
        ci.script("step.sh")
            .arg("review")
            .env("TOLLGATE_KEY", key_text("alice"))
            .env("TOLLGATE", ci.project.join("no-such-tollgate")),
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("cannot find the tollgate program"),
        "{}",
        stderr(&out)
    );
    assert!(!ci.project.join("links").exists(), "no link was written");

    // The scan step attests the scanner's SBOM: without one, nothing is recorded.
    fs::create_dir_all(ci.project.join("dist")).expect("mkdir");
    let out = ci.run(
        ci.script("step.sh")
            .arg("scan")
            .env("TOLLGATE_KEY", key_text("erin")),
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no SBOM at 'sbom.cdx.json': run the scanner first"),
        "{}",
        stderr(&out)
    );
    assert!(!ci.project.join("links").exists(), "no link was written");
    ci.assert_no_temp_files("step.sh scan without an SBOM");

    // A failing tollgate (not a PEM key) still removes the key file.
    let out = ci.run(
        ci.script("step.sh")
            .arg("review")
            .env("TOLLGATE_KEY", "not a key"),
    );
    assert_ne!(code(&out), 0);
    ci.assert_no_temp_files("a failed step.sh");

    // An encrypted key needs TOLLGATE_KEY_PASSWORD; with it, the link is written.
    let encrypted = key_text("ed25519-encrypted");
    let out = ci.run(
        ci.script("step.sh")
            .arg("review")
            .env("TOLLGATE_KEY", &encrypted)
            .env("TOLLGATE_LINKS", "review-links"),
    );
    assert_ne!(code(&out), 0, "no password, no link");
    ci.assert_no_temp_files("step.sh without a password");
    let password = fs::read_to_string(repo().join("keys-example/test-only-password.txt"))
        .expect("read password");
    let out = ci.run(
        ci.script("step.sh")
            .arg("review")
            .env("TOLLGATE_KEY", &encrypted)
            .env("TOLLGATE_KEY_PASSWORD", password.trim_end_matches('\n'))
            .env("TOLLGATE_LINKS", "review-links"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    ci.assert_no_temp_files("step.sh with an encrypted key");
    let written: Vec<_> = fs::read_dir(ci.project.join("review-links"))
        .expect("TOLLGATE_LINKS names the link folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(written[0].starts_with("review.") && written[0].ends_with(".link"));

    for (out, err) in &ci.printed {
        assert_no_secret("stdout", out);
        assert_no_secret("stderr", err);
    }
}

#[test]
fn verify_release_sh_needs_the_owner_key_and_something_to_verify() {
    let mut ci = Ci::new();
    let out = ci.run(&mut ci.script("verify-release.sh"));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no layout at 'root.layout'"),
        "{}",
        stderr(&out)
    );

    fs::write(ci.project.join("root.layout"), "{}").expect("write");
    fs::create_dir_all(ci.project.join("links")).expect("mkdir");
    let out = ci.run(&mut ci.script("verify-release.sh"));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no dist/app.tar.gz"),
        "{}",
        stderr(&out)
    );

    fs::create_dir_all(ci.project.join("dist")).expect("mkdir");
    fs::write(ci.project.join("dist/app.tar.gz"), "x").expect("write");
    fs::write(ci.project.join("dist/app.tar.gz.sha256"), "x").expect("write");
    let out = ci.run(&mut ci.script("verify-release.sh"));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no owner key: pass -k OWNER.pub, or set TOLLGATE_OWNER_PUB"),
        "{}",
        stderr(&out)
    );
    ci.assert_no_temp_files("verify-release.sh without a key");
}

/// The scripts are executable, as the pipelines call them directly.
#[test]
fn ci_scripts_are_executable_posix_sh() {
    for name in ["step.sh", "verify-release.sh"] {
        let path = script(name);
        let mode = fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{name} is not executable");
        let text = fs::read_to_string(&path).expect("read");
        assert!(text.starts_with("#!/bin/sh\n"), "{name}");
        assert!(text.contains("\nset -eu\n"), "{name}");
        let out = run(Command::new("sh").arg("-n").arg(&path));
        assert_eq!(code(&out), 0, "sh -n {name}: {}", stderr(&out));
    }
}

/// The step names of `layouts/release.toml`.
fn layout_steps() -> BTreeSet<String> {
    let text = fs::read_to_string(repo().join("layouts/release.toml")).expect("read layout");
    let table: toml::Table = toml::from_str(&text).expect("parse layout source");
    table["step"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["name"].as_str().expect("step name").to_owned())
        .collect()
}

/// The `examples/ci/...` files a pipeline references, and the arguments it passes to
/// `step.sh`.
fn pipeline_references(yaml: &str) -> (BTreeSet<String>, Vec<String>) {
    let mut files = BTreeSet::new();
    let mut steps = Vec::new();
    for line in yaml.lines() {
        let mut rest = line;
        while let Some(at) = rest.find("examples/ci/") {
            let tail = &rest[at + "examples/ci/".len()..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
                .unwrap_or(tail.len());
            let file = &tail[..end];
            files.insert(file.to_owned());
            let after = &tail[end..];
            if file == "step.sh" {
                let arg = after
                    .trim_start()
                    .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                    .next()
                    .unwrap_or("");
                assert!(
                    after.starts_with(' ') && !arg.is_empty(),
                    "step.sh without a step: {line}"
                );
                steps.push(arg.to_owned());
            }
            rest = after;
        }
    }
    (files, steps)
}

#[test]
fn both_pipelines_call_existing_scripts_and_only_the_layouts_steps() {
    let layout = layout_steps();
    assert_eq!(
        layout,
        ["build", "review", "scan", "sign", "source"]
            .map(String::from)
            .into()
    );
    for (name, reviews) in [("github-actions.yml", 1), ("gitlab-ci.yml", 2)] {
        let text = fs::read_to_string(script(name)).expect("read pipeline");
        // What the pipeline does, not what its comments say.
        let yaml: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        let (files, steps) = pipeline_references(&yaml);
        assert!(
            files.contains("step.sh") && files.contains("verify-release.sh"),
            "{name}: {files:?}"
        );
        for file in files.iter().filter(|f| f.ends_with(".sh")) {
            assert!(script(file).is_file(), "{name} calls examples/ci/{file}");
        }
        let called: BTreeSet<String> = steps
            .iter()
            .map(|s| {
                s.strip_suffix("-start")
                    .or_else(|| s.strip_suffix("-stop"))
                    .unwrap_or(s)
                    .to_owned()
            })
            .collect();
        for step in &called {
            assert!(layout.contains(step), "{name} records step {step}");
        }
        assert_eq!(called, layout, "{name} records every step of the layout");
        assert_eq!(
            steps.iter().filter(|s| *s == "review").count(),
            reviews,
            "{name}: {steps:?}"
        );
        // Every functionary's key comes from a secret of its own; the owner's never does.
        for who in ["ALICE", "BOB", "CAROL", "DAN", "ERIN", "FRANK"] {
            assert!(
                yaml.contains(&format!("TOLLGATE_KEY_{who}")),
                "{name}: {who}"
            );
        }
        assert!(!yaml.contains("TOLLGATE_KEY_OWNER"), "{name}");
        assert!(!text.contains("PRIVATE KEY-----"), "{name}");
        assert!(
            yaml.contains("root.layout") && yaml.contains("owner.pub"),
            "{name}"
        );
        assert!(yaml.contains("verify-report.json"), "{name}");
    }
}

#[test]
fn step_sh_takes_a_pasted_key_with_crlf_and_trailing_blank_lines() {
    let mut ci = Ci::new();
    ci.write_sources();
    let pasted = format!("{}\n\n", key_text("alice").replace('\n', "\r\n"));
    let out = ci.run(
        ci.script("step.sh")
            .arg("review")
            .env("TOLLGATE_KEY", pasted),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    ci.assert_no_temp_files("step.sh with a pasted key");
    assert_eq!(ci.links_named("review."), 1, "{:?}", ci.link_files());
    assert_no_secret("stdout", &stdout(&out));
    assert_no_secret("stderr", &stderr(&out));
}
