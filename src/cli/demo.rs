//! `tollgate demo`: the whole chain on a sample project, in one command. The owner builds the
//! release layout of `layouts/release.toml`; five steps are recorded as their functionaries,
//! the scanner also attesting the tarball's SBOM; the buyer verifies what was shipped and it
//! passes; an attacker swaps the tarball (and its checksum) and verification fails, naming the
//! rule that caught it; a later release whose SBOM lists a denied component is refused by the
//! layout's policy, naming the rule and its message.
//!
//! No scanner can be assumed on a fresh machine, so the demo writes the SBOM itself (a
//! stand-in for a real scanner such as syft, and it says so); everything after that, the
//! attestation and its verification, is what a real pipeline does.
//!
//! The keys are the TEST-ONLY keys of `keys-example/`, built into the binary so the demo runs
//! anywhere. It needs `tar`, `gzip` and `sha256sum` on the PATH, as the layout's commands do.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::Utc;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tollgate::authoring::check::{self, Severity};
use tollgate::authoring::source;
use tollgate::envelope::{Envelope, Format};
use tollgate::keyring::KeyRing;
use tollgate::keys::PrivateKey;
use tollgate::limits::Limits;
use tollgate::name::StepName;
use tollgate::record::{self, AttestOptions, CommandOptions, Output, RecordOptions, RunRequest};
use tollgate::verify::report::{Check, Report};
use tollgate::verify::{self, VerifyOptions};

use super::failure::{Failure, INTERNAL, NOT_VERIFIED, USAGE};

/// Arguments of `tollgate demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the project, links and layout in DIR (which must not exist yet) instead of a
    /// temporary folder that is removed at the end.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
}

const LAYOUT_SOURCE: &str = include_str!("../../layouts/release.toml");

/// The people of the demo and their test-only keys: (name, role, private key, public key).
const PEOPLE: &[(&str, &str, &str, &str)] = &[
    (
        "owner",
        "project owner",
        include_str!("../../keys-example/test-only-owner.pem"),
        include_str!("../../keys-example/test-only-owner.pub"),
    ),
    (
        "alice",
        "reviewer",
        include_str!("../../keys-example/test-only-alice.pem"),
        include_str!("../../keys-example/test-only-alice.pub"),
    ),
    (
        "bob",
        "reviewer",
        include_str!("../../keys-example/test-only-bob.pem"),
        include_str!("../../keys-example/test-only-bob.pub"),
    ),
    (
        "carol",
        "CI checkout",
        include_str!("../../keys-example/test-only-carol.pem"),
        include_str!("../../keys-example/test-only-carol.pub"),
    ),
    (
        "dan",
        "builder",
        include_str!("../../keys-example/test-only-dan.pem"),
        include_str!("../../keys-example/test-only-dan.pub"),
    ),
    (
        "erin",
        "scanner",
        include_str!("../../keys-example/test-only-erin.pem"),
        include_str!("../../keys-example/test-only-erin.pub"),
    ),
    (
        "frank",
        "release manager",
        include_str!("../../keys-example/test-only-frank.pem"),
        include_str!("../../keys-example/test-only-frank.pub"),
    ),
];

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

/// The libraries the stand-in scanner finds in every release: (name, version, purl, SPDX id).
const COMPONENTS: &[(&str, &str, &str, &str)] = &[
    ("zlib", "1.3.1", "pkg:generic/zlib@1.3.1", "Zlib"),
    ("musl", "1.2.5", "pkg:generic/musl@1.2.5", "MIT"),
];

/// What the later release pulls in, which the layout's policy denies.
const LEFT_PAD: (&str, &str, &str, &str) = ("left-pad", "1.3.0", "pkg:npm/left-pad@1.3.0", "WTFPL");

/// The later release's web page, which depends on left-pad.
const WEB_PAGE: (&str, &str) = (
    "src/web/package.json",
    "{\n  \"name\": \"app-web\",\n  \"dependencies\": {\"left-pad\": \"1.3.0\"}\n}\n",
);

/// One release of the sample project: its working folder and the folder its links go to.
struct Demo {
    root: PathBuf,
    project: PathBuf,
    links: PathBuf,
    /// Record without a line per step (the later release, whose steps are as before).
    quiet: bool,
}

fn key(name: &str) -> Result<PrivateKey, Failure> {
    let (_, _, pem, _) = PEOPLE
        .iter()
        .find(|p| p.0 == name)
        .ok_or_else(|| Failure::new(INTERNAL, format!("no demo key {name}")))?;
    PrivateKey::from_pem(pem, None)
        .map_err(|e| Failure::new(INTERNAL, format!("demo key {name}: {e}")))
}

fn io(action: &str, path: &Path, e: std::io::Error) -> Failure {
    Failure::new(INTERNAL, format!("{action} {}: {e}", path.display()))
}

fn write_file(path: &Path, text: &[u8]) -> Result<(), Failure> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| io("create", parent, e))?;
    }
    fs::write(path, text).map_err(|e| io("write", path, e))
}

fn step_name(name: &str) -> Result<StepName, Failure> {
    StepName::new(name).map_err(|e| Failure::new(INTERNAL, e.to_string()))
}

/// Runs `tollgate demo`.
pub fn run(args: Args) -> Result<u8, Failure> {
    let temporary;
    let root = match &args.keep {
        Some(dir) => {
            if dir.exists() {
                return Err(Failure::new(
                    USAGE,
                    format!("--keep {}: it exists already", dir.display()),
                )
                .hint("name a folder that does not exist yet"));
            }
            fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
            // Absolute: the tools run in folders of their own (a relative name broke `tar`).
            fs::canonicalize(dir).map_err(|e| io("find", dir, e))?
        }
        None => {
            temporary = tempfile::Builder::new()
                .prefix("tollgate-demo-")
                .tempdir()
                .map_err(|e| Failure::new(INTERNAL, format!("a temporary folder: {e}")))?;
            temporary.path().to_owned()
        }
    };
    let demo = Demo {
        project: root.join("project"),
        links: root.join("links"),
        root,
        quiet: false,
    };
    println!("Tollgate demo: a five-step release pipeline, recorded and verified.");
    println!(
        "All keys are the TEST-ONLY keys of keys-example/: public, never to be trusted.\n\
         Working in {}{}\n",
        demo.root.display(),
        if args.keep.is_some() {
            " (kept)"
        } else {
            " (removed at the end; --keep DIR keeps it)"
        }
    );
    let layout = demo.build_layout()?;
    demo.record_steps(SOURCES, COMPONENTS)?;

    println!("\n3. The buyer receives dist/app.tar.gz and its checksum, and verifies them:");
    let honest = demo.ship("buyer", None)?;
    let report = demo.verify(&layout, &honest)?;
    print_report(&report, &demo.root);

    println!(
        "\n4. An attacker swaps the tarball for one with src/backdoor.c in it, and updates the \
         checksum to match:"
    );
    let tampered = demo.ship("buyer-tampered", Some(("src/backdoor.c", BACKDOOR)))?;
    let tampered_report = demo.verify(&layout, &tampered)?;
    print_report(&tampered_report, &demo.root);

    println!(
        "\n5. A later release adds a web page that pulls in left-pad, which the layout's policy \
         denies. Every step is recorded as before (in later/), and the scanner's SBOM lists it:"
    );
    let later = Demo {
        project: demo.root.join("later/project"),
        links: demo.root.join("later/links"),
        root: demo.root.clone(),
        quiet: true,
    };
    let mut sources = SOURCES.to_vec();
    sources.push(WEB_PAGE);
    let mut components = COMPONENTS.to_vec();
    components.push(LEFT_PAD);
    later.record_steps(&sources, &components)?;
    let refused = later.ship("later/buyer", None)?;
    let refused_report = later.verify(&layout, &refused)?;
    print_report(&refused_report, &demo.root);

    println!();
    let refused_by_policy = refused_report
        .failure
        .as_ref()
        .is_some_and(|f| f.check == Check::Predicate);
    if report.passed() && !tampered_report.passed() && refused_by_policy {
        println!(
            "Demo complete: the honest chain passed, the tampered tarball was caught, and the \
             release with a denied component was refused."
        );
        if args.keep.is_some() {
            println!(
                "Verify it yourself:\n  cd {}/buyer && tollgate verify --layout ../root.layout \
                 --layout-key ../owner.pub --link-dir ../links",
                demo.root.display()
            );
        }
        Ok(0)
    } else {
        Err(Failure::new(
            NOT_VERIFIED,
            "the demo did not turn out as it should: the honest chain must pass, the \
             tampered one fail, and the release with a denied component fail its policy",
        ))
    }
}

const BACKDOOR: &str = "void backdoor(void) { /* sends your keys away */ }\n";

impl Demo {
    /// Step 1: the owner compiles `layouts/release.toml` and signs it.
    fn build_layout(&self) -> Result<Vec<u8>, Failure> {
        let limits = Limits::default();
        let mut public = |written: &str| {
            let name = written
                .rsplit('/')
                .next()
                .and_then(|f| f.strip_prefix("test-only-"))
                .and_then(|f| f.strip_suffix(".pub"))
                .unwrap_or(written);
            let (_, _, _, pem) = PEOPLE
                .iter()
                .find(|p| p.0 == name)
                .ok_or_else(|| format!("no demo key {name}"))?;
            tollgate::keys::PublicKey::from_pem(pem).map_err(|e| e.to_string())
        };
        let compiled = source::compile(LAYOUT_SOURCE, &mut public, Utc::now(), &limits)
            .map_err(|e| Failure::new(INTERNAL, format!("layouts/release.toml: {e}")))?;
        let findings = check::check(&compiled.layout, &compiled.declared, Utc::now());
        if let Some(finding) = findings.iter().find(|f| f.severity == Severity::Error) {
            return Err(Failure::new(INTERNAL, finding.to_string()));
        }
        let owner = key("owner")?;
        let mut envelope = Envelope::unsigned(compiled.layout.to_value(), Format::Classic);
        envelope
            .sign(&owner)
            .map_err(|e| Failure::new(INTERNAL, e.to_string()))?;
        let bytes = envelope.to_bytes();
        let path = self.root.join("root.layout");
        write_file(&path, &bytes)?;
        write_file(
            &self.root.join("owner.pub"),
            PEOPLE[0].3.as_bytes(), // the owner's public key, for verifying by hand
        )?;
        let layout = &compiled.layout;
        println!(
            "1. The owner builds the layout from layouts/release.toml and signs it: root.layout"
        );
        println!(
            "   {} steps ({}), {} inspections ({}), expires {}",
            layout.steps.len(),
            layout
                .steps
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            layout.inspections.len(),
            layout
                .inspections
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            tollgate::timestamp::format(&layout.expires)
        );
        Ok(bytes)
    }

    fn options(&self) -> RecordOptions {
        RecordOptions {
            base_path: Some(self.project.clone()),
            ..RecordOptions::default()
        }
    }

    fn output(&self) -> Output<'_> {
        Output {
            folder: &self.links,
            format: Format::Classic,
            overwrite: false,
            statement: false,
        }
    }

    fn run_step(
        &self,
        who: &str,
        step: &str,
        materials: &[&str],
        products: &[&str],
        command: Option<&[&str]>,
    ) -> Result<(), Failure> {
        let request = RunRequest {
            step: step_name(step)?,
            materials: materials.iter().map(|s| s.to_string()).collect(),
            products: products.iter().map(|s| s.to_string()).collect(),
            command: command.map(|c| c.iter().map(|s| s.to_string()).collect()),
            record: self.options(),
            run: CommandOptions {
                record_streams: true,
                current_dir: Some(self.project.clone()),
                silent: true,
                ..CommandOptions::default()
            },
        };
        let outcome = record::run(&request, &key(who)?, &self.output())
            .map_err(|e| Failure::new(INTERNAL, format!("step {step}: {e}")))?;
        if outcome.return_value.is_some_and(|code| code != 0) {
            return Err(Failure::new(
                INTERNAL,
                format!("step {step}: {:?} failed", request.command),
            ));
        }
        self.told(who, step, command.map(|c| c.join(" ")), &outcome)
    }

    fn told(
        &self,
        who: &str,
        step: &str,
        what: Option<String>,
        outcome: &record::Outcome,
    ) -> Result<(), Failure> {
        if self.quiet {
            return Ok(());
        }
        let role = PEOPLE.iter().find(|p| p.0 == who).map_or("", |p| p.1);
        let file = outcome
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!(
            "   {step:<7} {who} ({role}){}: {} material(s), {} product(s) -> links/{file}",
            what.map(|w| format!(": `{w}`")).unwrap_or_default(),
            outcome.link.materials.len(),
            outcome.link.products.len(),
        );
        Ok(())
    }

    /// Step 2: the five steps, each by its functionary, on `sources`; the scanner's SBOM lists
    /// `components`.
    fn record_steps(
        &self,
        sources: &[(&str, &str)],
        components: &[(&str, &str, &str, &str)],
    ) -> Result<(), Failure> {
        for (path, text) in sources {
            write_file(&self.project.join(path), text.as_bytes())?;
        }
        if !self.quiet {
            println!("\n2. The functionaries record the steps, each link signed with their key:");
        }
        // Both reviewers approve the same tree.
        self.run_step("alice", "review", &["src"], &[], None)?;
        self.run_step("bob", "review", &["src"], &[], None)?;
        // CI checks the reviewed tree out, in a job of its own (record start ... stop).
        let options = self.options();
        let carol = key("carol")?;
        let source = step_name("source")?;
        record::start(&source, &[], &options, &carol, &self.output())
            .map_err(|e| Failure::new(INTERNAL, format!("step source: {e}")))?;
        let outcome = record::stop(&source, &["src".into()], &options, &carol, &self.output())
            .map_err(|e| Failure::new(INTERNAL, format!("step source: {e}")))?;
        self.told(
            "carol",
            "source",
            Some("record start; checkout; record stop".into()),
            &outcome,
        )?;
        // The build packs the source.
        let dist = self.project.join("dist");
        fs::create_dir_all(&dist).map_err(|e| io("create", &dist, e))?;
        self.run_step(
            "dan",
            "build",
            &["src"],
            &["dist"],
            Some(&["tar", "-czf", "dist/app.tar.gz", "src"]),
        )?;
        self.run_step(
            "erin",
            "scan",
            &["dist/app.tar.gz"],
            &[],
            Some(&["tar", "-tzf", "dist/app.tar.gz"]),
        )?;
        self.attest_sbom(components)?;
        // The release manager publishes the checksum (record start ... stop around it).
        let frank = key("frank")?;
        let sign = step_name("sign")?;
        record::start(
            &sign,
            &["dist/app.tar.gz".into()],
            &options,
            &frank,
            &self.output(),
        )
        .map_err(|e| Failure::new(INTERNAL, format!("step sign: {e}")))?;
        write_checksum(&dist)?;
        let outcome = record::stop(&sign, &["dist".into()], &options, &frank, &self.output())
            .map_err(|e| Failure::new(INTERNAL, format!("step sign: {e}")))?;
        self.told(
            "frank",
            "sign",
            Some(
                "record start; sha256sum dist/app.tar.gz > dist/app.tar.gz.sha256; record stop"
                    .into(),
            ),
            &outcome,
        )
    }

    /// The scanner attests the tarball's SBOM. The SBOM is written here, a stand-in for what a
    /// real scanner writes (`syft scan file:dist/app.tar.gz -o cyclonedx-json=sbom.cdx.json`).
    fn attest_sbom(&self, components: &[(&str, &str, &str, &str)]) -> Result<(), Failure> {
        // Beside the project, not in it: it is no artifact of any step.
        let sbom = self
            .project
            .parent()
            .unwrap_or(&self.root)
            .join("sbom.cdx.json");
        let text = serde_json::to_vec_pretty(&stand_in_sbom(components))
            .map_err(|e| Failure::new(INTERNAL, format!("the stand-in SBOM: {e}")))?;
        write_file(&sbom, &text)?;
        let options = AttestOptions {
            step: step_name("scan")?,
            predicate_type: "cyclonedx".into(),
            predicate: sbom,
            subjects: vec!["dist/app.tar.gz".into()],
            record: self.options(),
        };
        let attested = record::attest(&options, &key("erin")?)
            .map_err(|e| Failure::new(INTERNAL, format!("step scan, the SBOM: {e}")))?;
        let path = self.links.join(&attested.file_name);
        tollgate::fsio::write_atomic(&path, &attested.bytes, tollgate::fsio::Mode::Public, false)
            .map_err(|e| Failure::new(INTERNAL, format!("step scan, the SBOM: {e}")))?;
        let names: Vec<&str> = components.iter().map(|c| c.0).collect();
        let folder = self
            .links
            .strip_prefix(&self.root)
            .unwrap_or(&self.links)
            .display()
            .to_string();
        if self.quiet {
            println!(
                "   scan    erin (scanner): an SBOM listing {} -> {folder}/{}",
                names.join(", "),
                attested.file_name
            );
        } else {
            println!(
                "   scan    erin (scanner): an SBOM listing {} (CycloneDX 1.6, written by the \
                 demo as a stand-in for a real scanner such as syft), attested over \
                 dist/app.tar.gz -> {folder}/{}",
                names.join(", "),
                attested.file_name
            );
        }
        Ok(())
    }

    /// What a buyer receives: the tarball and its checksum, in a folder of their own. With
    /// `extra`, an attacker's tarball holding one more file, and a checksum to match.
    fn ship(&self, folder: &str, extra: Option<(&str, &str)>) -> Result<PathBuf, Failure> {
        let buyer = self.root.join(folder);
        let dist = buyer.join("dist");
        fs::create_dir_all(&dist).map_err(|e| io("create", &dist, e))?;
        match extra {
            None => {
                for file in ["app.tar.gz", "app.tar.gz.sha256"] {
                    let from = self.project.join("dist").join(file);
                    fs::copy(&from, dist.join(file)).map_err(|e| io("copy", &from, e))?;
                }
            }
            Some((path, text)) => {
                let workshop = self.root.join("attacker");
                for (source, body) in SOURCES {
                    write_file(&workshop.join(source), body.as_bytes())?;
                }
                write_file(&workshop.join(path), text.as_bytes())?;
                let tarball = dist.join("app.tar.gz");
                let status = std::process::Command::new("tar")
                    .arg("-czf")
                    .arg(&tarball)
                    .arg("src")
                    .current_dir(&workshop)
                    .status()
                    .map_err(|e| Failure::new(USAGE, format!("cannot run tar: {e}")))?;
                if !status.success() {
                    return Err(Failure::new(INTERNAL, "tar failed"));
                }
                write_checksum(&dist)?;
            }
        }
        Ok(buyer)
    }

    fn verify(&self, layout: &[u8], buyer: &Path) -> Result<Report, Failure> {
        let owner = key("owner")?;
        let ring = KeyRing::from_keys([owner.public_key().clone()])
            .map_err(|e| Failure::new(INTERNAL, e.to_string()))?;
        let mut options = VerifyOptions::new(&self.links);
        options.workdir = Some(buyer.to_owned());
        println!(
            "   tollgate verify --layout root.layout --layout-key owner.pub --link-dir {} \
             --workdir {}",
            self.links
                .strip_prefix(&self.root)
                .unwrap_or(&self.links)
                .display(),
            buyer.strip_prefix(&self.root).unwrap_or(buyer).display()
        );
        verify::verify(layout, &ring, &options)
            .map_err(|e| Failure::new(INTERNAL, format!("root.layout: {e}")))
    }
}

/// Writes `dist/app.tar.gz.sha256` as `sha256sum` does, so `sha256sum --check` reads it.
fn write_checksum(dist: &Path) -> Result<(), Failure> {
    let tarball = dist.join("app.tar.gz");
    let bytes = fs::read(&tarball).map_err(|e| io("read", &tarball, e))?;
    let line = format!("{}  dist/app.tar.gz\n", hex::encode(Sha256::digest(&bytes)));
    write_file(&dist.join("app.tar.gz.sha256"), line.as_bytes())
}

/// A CycloneDX 1.6 SBOM of the tarball listing `components` (name, version, purl, SPDX license
/// id), shaped as syft writes one.
fn stand_in_sbom(components: &[(&str, &str, &str, &str)]) -> Value {
    let listed: Vec<Value> = components
        .iter()
        .map(|(name, version, purl, license)| {
            json!({
                "bom-ref": purl,
                "type": "library",
                "name": name,
                "version": version,
                "licenses": [{"license": {"id": license}}],
                "purl": purl,
            })
        })
        .collect();
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {
            "timestamp": tollgate::timestamp::format(&Utc::now()),
            "tools": {"components": [{
                "type": "application",
                "name": "tollgate demo (a stand-in for a real scanner)",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": {"type": "file", "name": "dist/app.tar.gz"},
        },
        "components": listed,
    })
}

/// Prints the report with each functionary's name beside their keyid, and file paths relative
/// to the demo's folder `root`.
fn print_report(report: &Report, root: &Path) {
    let prefix = format!("{}/", root.display());
    let names: Vec<(String, &str)> = PEOPLE
        .iter()
        .filter_map(|(name, _, _, public)| {
            let key = tollgate::keys::PublicKey::from_pem(public).ok()?;
            Some((key.keyid().short().to_owned(), *name))
        })
        .collect();
    for line in super::verify::describe(report) {
        let mut line = line.replace(&prefix, "");
        // "the file key 077f9619 signed" reads "the file frank signed"; a bare keyid gets the
        // name beside it, but not a keyid in a file name (scan.4f172783.link).
        for (short, name) in &names {
            let in_file_name = format!(".{short}.");
            let placeholder = "\u{0}";
            line = line.replace(&in_file_name, placeholder);
            for (phrase, named) in [
                (format!("keys {short}"), name.to_string()),
                (format!("key {short}"), name.to_string()),
                (format!(" and {short}"), format!(" and {name}")),
            ] {
                line = line.replace(&phrase, &named);
            }
            line = line.replace(short.as_str(), &format!("{name} {short}"));
            line = line.replace(placeholder, &in_file_name);
        }
        println!("   {line}");
    }
}
