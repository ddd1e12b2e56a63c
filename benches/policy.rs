//! Policy speed and memory: `cargo bench --bench policy`.
//!
//! A two-step chain: `build` (a link) creates `dist/app.tar.gz`; `scan` (attestations only)
//! expects a CycloneDX SBOM of 100,000 components (shaped as Syft writes them) about that
//! file, signed by the scanner, with five CEL rules: a deny list, a license allow-list over
//! each component's licenses, a purl check, a component count, and a version parameter. It
//! times `tollgate verify` on that chain, and on the same chain with no rule, so that the
//! rules' share is seen (loading, checking and converting the SBOM is the rest). The reference
//! cannot read a layout with expected predicates, so there is no ratio to it here. The files
//! are written once under `target/bench-policy/`.

#[path = "../tests/common.rs"]
mod common;
mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use tollgate::artifact::{ArtifactPath, Artifacts, DigestSet};
use tollgate::envelope::{Envelope, Format};
use tollgate::keys::PrivateKey;
use tollgate::link::Link;
use tollgate::name::StepName;

const COMPONENTS: usize = 100_000;

const RULES: [&str; 5] = [
    "predicate.components.all(c, !(c.name in ['left-pad', 'event-stream', 'colors']))",
    "predicate.components.all(c, c.licenses.all(l, l.license.id in ['MIT', 'Apache-2.0', 'BSD-3-Clause', 'ISC', 'MPL-2.0', 'Unlicense', 'Zlib', 'BSD-2-Clause']))",
    "predicate.components.all(c, c.purl.startsWith('pkg:cargo/'))",
    "size(predicate.components) > 1000",
    "predicate.specVersion == {spec}",
];

fn write_chain(dir: &Path, rules: &[&str], alice: &PrivateKey, owner: &PrivateKey) {
    let marker = dir.join(".complete");
    if marker.exists() {
        return;
    }
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).expect("mkdir");
    let keyid = alice.public_key().keyid();
    let attributes: Vec<Value> = rules
        .iter()
        .map(|r| json!({"rule": r, "warn": false, "allow_if_no_claim": false}))
        .collect();
    let layout = json!({
        "_type": "layout",
        "expires": "2099-01-01T00:00:00Z",
        "readme": "policy benchmark",
        "keys": { keyid.as_str(): alice.public_key().to_layout_entry(&keyid) },
        "steps": [
            {"_type": "step", "name": "build", "threshold": 1, "pubkeys": [keyid.as_str()],
             "expected_command": [], "expected_materials": [["DISALLOW", "*"]],
             "expected_products": [["CREATE", "dist/app.tar.gz"], ["DISALLOW", "*"]]},
            {"_type": "step", "name": "scan", "threshold": 0, "pubkeys": [],
             "expected_command": [],
             "expected_materials": [["MATCH", "dist/app.tar.gz", "WITH", "PRODUCTS", "FROM", "build"],
                                    ["DISALLOW", "*"]],
             "expected_products": [["DISALLOW", "*"]],
             "expected_predicates": [{
                 "predicate_type": "https://cyclonedx.org/bom",
                 "functionaries": [keyid.as_str()], "threshold": 1,
                 "expected_attributes": attributes}]},
        ],
        "inspect": [],
    });
    let mut envelope = Envelope::unsigned(layout, Format::Classic);
    envelope.sign(owner).expect("sign");
    fs::write(dir.join("root.layout"), envelope.to_bytes()).expect("write");
    let mut digest = [0u8; 32];
    digest[0] = 7;
    let product: Artifacts = [(
        ArtifactPath::new("dist/app.tar.gz").expect("name"),
        DigestSet::sha256(&digest),
    )]
    .into_iter()
    .collect();
    let link = Link {
        name: StepName::new("build").expect("name"),
        command: Vec::new(),
        materials: Artifacts::new(),
        products: product.clone(),
        byproducts: Default::default(),
        environment: Default::default(),
    };
    let bytes = Envelope::seal(&link, Format::Classic, &[alice]).expect("seal");
    fs::write(dir.join(format!("build.{}.link", keyid.short())), bytes).expect("write");
    let scan = StepName::new("scan").expect("name");
    let statement = tollgate::attestation::statement(
        &scan,
        &product,
        "https://cyclonedx.org/bom",
        support::big_sbom::big_sbom(COMPONENTS),
    )
    .expect("statement");
    let bytes = Envelope::seal(&statement, Format::Dsse, &[alice]).expect("seal");
    let name = tollgate::files::attestation_file_name(&scan, &keyid, "https://cyclonedx.org/bom");
    fs::write(dir.join(name), bytes).expect("write");
    fs::write(marker, "").expect("marker");
}

fn main() {
    support::require_gnu_time();
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("bench-policy");
    let alice = common::load_private("ed25519");
    let owner = common::load_private("ecdsa-p256");
    let owner_pub = common::example_key("ecdsa-p256", "pub");
    println!(
        "{:<44} {:>9} {:>10} {:>12}",
        "chain (SBOM of 100,000 components)", "seconds", "peak MiB", "SBOM MiB"
    );
    for (label, rules) in [
        ("scan step: 5 rules", &RULES[..]),
        ("scan step: no rule", &[][..]),
    ] {
        let dir = root.join(format!("rules-{}", rules.len()));
        write_chain(&dir, rules, &alice, &owner);
        let size: u64 = fs::read_dir(&dir)
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".intoto.json"))
            .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
            .sum();
        let m = support::measure("tollgate", 3, &|| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_tollgate"));
            c.current_dir(&dir)
                .args(["verify", "-l", "root.layout", "--param", "spec=1.6", "-k"])
                .arg(&owner_pub);
            c
        });
        println!(
            "{:<44} {:>9.3} {:>10.1} {:>12.1}",
            label,
            m.seconds,
            m.peak_mib,
            size as f64 / (1024.0 * 1024.0)
        );
    }
}
