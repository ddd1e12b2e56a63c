//! Verification speed and memory, measured against the in-toto reference on the same chain,
//! in one run: `cargo bench --bench verify`.
//!
//! A three-step layout whose links carry N artifacts on each side (step one creates them, steps
//! two and three must `MATCH` them with the previous step and `DISALLOW *` the rest), with
//! links written once under `target/bench-chains/` (classic envelopes, ed25519, as both
//! implementations write them). For N = 50,000 it times `tollgate verify` and `in-toto-verify`
//! and reports the ratios of time and peak memory; for N = 1,000,000 tollgate alone (the
//! reference would take minutes).

#[path = "../tests/common.rs"]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

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

struct Measure {
    seconds: f64,
    peak_mib: f64,
}

fn measure(label: &str, make: &dyn Fn() -> Command) -> Measure {
    let mut best: Option<Measure> = None;
    for round in 0..4 {
        let report =
            std::env::temp_dir().join(format!("tollgate-vbench-{}.time", std::process::id()));
        let inner = make();
        let mut timed = Command::new("/usr/bin/time");
        timed
            .arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&report)
            .arg(inner.get_program());
        timed.args(inner.get_args());
        if let Some(dir) = inner.get_current_dir() {
            timed.current_dir(dir);
        }
        for (key, value) in inner.get_envs() {
            if let Some(value) = value {
                timed.env(key, value);
            }
        }
        let start = Instant::now();
        let output = timed.output().expect("run /usr/bin/time");
        let seconds = start.elapsed().as_secs_f64();
        assert!(
            output.status.success(),
            "{label} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let peak_kib: f64 = fs::read_to_string(&report)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .expect("peak memory");
        let _ = fs::remove_file(&report);
        let this = Measure {
            seconds,
            peak_mib: peak_kib / 1024.0,
        };
        if round > 0 && best.as_ref().is_none_or(|b| this.seconds < b.seconds) {
            best = Some(this);
        }
        if label.contains("in-toto") && round == 1 {
            break;
        }
    }
    best.expect("a timed round")
}

fn main() {
    if !Path::new("/usr/bin/time").exists() {
        eprintln!("this benchmark needs GNU time: apt-get install time");
        std::process::exit(2);
    }
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
    for count in [50_000usize, 1_000_000] {
        let dir = root.join(format!("chain-{count}"));
        write_chain(&dir, count, &alice, &owner);
        let label = format!("3 links x {count}");
        let tollgate = measure("tollgate", &|| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_tollgate"));
            c.current_dir(&dir)
                .args(["verify", "-l", "root.layout", "-k"])
                .arg(&owner_pub);
            c
        });
        if count <= 50_000 {
            let in_toto = measure("in-toto-verify", &|| {
                let mut c = reference.tool("in-toto-verify");
                c.current_dir(&dir)
                    .args(["-l", "root.layout", "--verification-keys"])
                    .arg(&owner_pub);
                c
            });
            for (tool, m) in [("tollgate", &tollgate), ("in-toto-verify", &in_toto)] {
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
}
