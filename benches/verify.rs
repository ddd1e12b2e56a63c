//! Verification speed and memory, measured against the in-toto reference on the same chain,
//! in one run: `cargo bench --bench verify`.
//!
//! A three-step layout whose links carry N artifacts on each side (step one creates them, steps
//! two and three must `MATCH` them with the previous step and `DISALLOW *` the rest), with
//! links written once under `target/bench-chains/` (classic envelopes, ed25519, as both
//! implementations write them). For N = 50,000 it times `tollgate verify` and `in-toto-verify`
//! and reports the ratios of time and peak memory; for N = 1,000,000 tollgate alone (the
//! reference would take minutes). For N = 50,000 it also verifies the chain from one bundle
//! file (`tollgate bundle create`) and reports the bundle's size.

#[path = "../tests/common.rs"]
mod common;
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use tollgate::artifact::{ArtifactPath, Artifacts, DigestSet};
use tollgate::envelope::{Envelope, Format};
use tollgate::keys::PrivateKey;
use tollgate::link::Link;
use tollgate::name::StepName;

fn artifacts(count: usize) -> Artifacts {
    (0..count)
        .map(|i| {
            let name = format!("src/module{:03}/file{i:07}.rs", i % 997);
            let mut digest = [0u8; 32];
            digest[..8].copy_from_slice(&(i as u64).to_le_bytes());
            (
                ArtifactPath::new(&name).expect("name"),
                DigestSet::sha256(&digest),
            )
        })
        .collect()
}

fn write_chain(dir: &Path, count: usize, alice: &PrivateKey, owner: &PrivateKey) {
    let marker = dir.join(".complete");
    if marker.exists() {
        return;
    }
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).expect("mkdir");
    eprintln!("writing a chain of {count} artifacts ...");
    let keyid = alice.public_key().keyid();
    let step = |name: &str, materials: Vec<Vec<&str>>, products: Vec<Vec<&str>>| {
        json!({"_type": "step", "name": name, "threshold": 1, "pubkeys": [keyid.as_str()],
               "expected_command": [], "expected_materials": materials,
               "expected_products": products})
    };
    let layout = json!({
        "_type": "layout",
        "expires": "2099-01-01T00:00:00Z",
        "readme": "benchmark",
        "keys": { keyid.as_str(): alice.public_key().to_layout_entry(&keyid) },
        "steps": [
            step("one", vec![], vec![vec!["CREATE", "src/*"], vec!["DISALLOW", "*"]]),
            step("two",
                 vec![vec!["MATCH", "src/*", "WITH", "PRODUCTS", "FROM", "one"], vec!["DISALLOW", "*"]],
                 vec![vec!["MATCH", "src/*", "WITH", "PRODUCTS", "FROM", "one"], vec!["DISALLOW", "*"]]),
            step("three",
                 vec![vec!["MATCH", "src/*", "WITH", "PRODUCTS", "FROM", "two"], vec!["DISALLOW", "*"]],
                 vec![vec!["MATCH", "src/*", "WITH", "PRODUCTS", "FROM", "two"], vec!["DISALLOW", "*"]]),
        ],
        "inspect": [],
    });
    let mut envelope = Envelope::unsigned(layout, Format::Classic);
    envelope.sign(owner).expect("sign");
    fs::write(dir.join("root.layout"), envelope.to_bytes()).expect("write");
    let all = artifacts(count);
    for (name, materials) in [("one", false), ("two", true), ("three", true)] {
        let link = Link {
            name: StepName::new(name).expect("name"),
            command: Vec::new(),
            materials: if materials {
                all.clone()
            } else {
                Artifacts::new()
            },
            products: all.clone(),
            byproducts: Default::default(),
            environment: Default::default(),
        };
        let bytes = Envelope::seal(&link, Format::Classic, &[alice]).expect("seal");
        fs::write(dir.join(format!("{name}.{}.link", keyid.short())), bytes).expect("write");
    }
    fs::write(marker, "").expect("marker");
}

fn main() {
    support::require_gnu_time();
    let reference = common::Reference::get();
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("bench-chains");
    let alice = common::load_private("ed25519");
    let owner = common::load_private("ecdsa-p256");
    let owner_pub = common::example_key("ecdsa-p256", "pub");
    println!(
        "{:<22} {:<16} {:>9} {:>10} {:>11} {:>12}",
        "chain", "tool", "seconds", "peak MiB", "x faster", "memory share"
    );
    let mut bundle_row = None;
    for count in [50_000usize, 1_000_000] {
        let dir = root.join(format!("chain-{count}"));
        write_chain(&dir, count, &alice, &owner);
        let label = format!("3 links x {count}");
        let tollgate = support::measure("tollgate", 3, &|| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_tollgate"));
            c.current_dir(&dir)
                .args(["verify", "-l", "root.layout", "-k"])
                .arg(&owner_pub);
            c
        });
        if count <= 50_000 {
            // The same chain from one bundle file, as a buyer receives it.
            let bundle = dir.join("chain.bundle.json");
            let made = Command::new(env!("CARGO_BIN_EXE_tollgate"))
                .current_dir(&dir)
                .args(["bundle", "create", "-l", "root.layout", "--overwrite", "-o"])
                .arg(&bundle)
                .output()
                .expect("bundle create");
            assert!(made.status.success(), "bundle create failed");
            let from_bundle = support::measure("tollgate --bundle", 3, &|| {
                let mut c = Command::new(env!("CARGO_BIN_EXE_tollgate"));
                c.current_dir(&dir)
                    .args(["verify", "--bundle"])
                    .arg(&bundle)
                    .arg("-k")
                    .arg(&owner_pub);
                c
            });
            let size = fs::metadata(&bundle).expect("bundle").len();
            bundle_row = Some((label.clone(), from_bundle, size));
            let in_toto = support::measure("in-toto-verify", 1, &|| {
                let mut c = reference.tool("in-toto-verify");
                c.current_dir(&dir)
                    .args(["-l", "root.layout", "--verification-keys"])
                    .arg(&owner_pub);
                c
            });
            for (tool, m) in [("tollgate", &tollgate), ("in-toto-verify", &in_toto)]
                .into_iter()
                .chain(
                    bundle_row
                        .as_ref()
                        .map(|(_, m, _)| ("tollgate --bundle", m)),
                )
            {
                println!(
                    "{:<22} {:<16} {:>9.3} {:>10.1} {:>10.1}x {:>11.0}%",
                    label,
                    tool,
                    m.seconds,
                    m.peak_mib,
                    in_toto.seconds / m.seconds,
                    100.0 * m.peak_mib / in_toto.peak_mib
                );
            }
        } else {
            println!(
                "{:<22} {:<16} {:>9.3} {:>10.1} {:>11} {:>12}",
                label, "tollgate", tollgate.seconds, tollgate.peak_mib, "-", "-"
            );
        }
    }
    if let Some((label, _, size)) = bundle_row {
        println!(
            "bundle of {label}: {:.1} MiB in one file",
            size as f64 / (1024.0 * 1024.0)
        );
    }
}
