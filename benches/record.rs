//! Recording throughput, measured against the in-toto reference and OpenSSL on the same trees,
//! in one run: `cargo bench --bench record`.
//!
//! Two trees are generated once under `target/bench-trees/` (50,000 files totalling 1 GiB with
//! sizes from a few bytes to several MiB, and 50,000 files totalling 100 MiB). For each, with
//! the page cache warm, it times `tollgate run --materials TREE -- true`, the reference's
//! `in-toto-run` doing the same, and `openssl dgst -sha256` over the same files on every core,
//! and measures this machine's SHA-256 limit (an in-memory buffer hashed on every core with the
//! `sha2` crate). It reports wall time, throughput, ratios and peak memory (GNU time's maximum
//! resident set size), beside a floor: the same files opened, read and hashed on every core
//! from a list made beforehand, with nothing else (no walk, checks or link), which no recorder
//! can beat here. Each tool writes its link into a folder of its own, and the two links are
//! read back: both must record every file of the tree, with the same digests, or the bench
//! stops. Then it times both recording each tree as one `dir:` digest, and checks that the
//! two digests are equal.

#[path = "../tests/common.rs"]
mod common;
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use std::time::Instant;

const GIB: u64 = 1024 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

struct Tree {
    name: &'static str,
    files: usize,
    bytes: u64,
}

const TREES: [Tree; 2] = [
    Tree {
        name: "50k-files-1GiB",
        files: 50_000,
        bytes: GIB,
    },
    Tree {
        name: "50k-files-100MiB",
        files: 50_000,
        bytes: 100 * MIB,
    },
];

/// A small deterministic generator, so every run measures the same trees.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// File sizes skewed like a source tree: most files small, a few of several MiB; scaled to the
/// total and capped at 8 MiB.
fn sizes(tree: &Tree) -> Vec<u64> {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let raw: Vec<f64> = (0..tree.files)
        .map(|_| (10.0f64).powf(1.0 + 6.0 * rng.unit().powi(3)))
        .collect();
    let scale = tree.bytes as f64 / raw.iter().sum::<f64>();
    let mut sizes: Vec<u64> = raw
        .iter()
        .map(|s| ((s * scale) as u64).clamp(1, 8 * MIB))
        .collect();
    // Put what the cap and rounding left over into the smallest files, evenly.
    let mut missing = tree.bytes.saturating_sub(sizes.iter().sum());
    let count = sizes.len();
    let mut i = 0;
    while missing > 0 {
        let add = missing.min(4096);
        let slot = &mut sizes[i % count];
        if *slot + add <= 8 * MIB {
            *slot += add;
            missing -= add;
        }
        i += 7;
    }
    sizes
}

fn generate(tree: &Tree, root: &Path) -> PathBuf {
    let dir = root.join(tree.name);
    let marker = dir.join(".complete");
    if marker.exists() {
        return dir;
    }
    let _ = fs::remove_dir_all(&dir);
    eprintln!("generating {} ...", tree.name);
    let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
    let mut buffer = vec![0u8; 8 * MIB as usize];
    for chunk in buffer.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next().to_le_bytes()[..chunk.len()]);
    }
    for (i, size) in sizes(tree).into_iter().enumerate() {
        // 100 folders of 500 files, two levels deep.
        let folder = dir.join(format!("d{:02}/e{:02}", i % 10, (i / 10) % 10));
        if i < 100 {
            fs::create_dir_all(&folder).expect("mkdir");
        }
        let offset = (rng.next() % (buffer.len() as u64 - size + 1)) as usize;
        fs::write(
            folder.join(format!("f{i}.dat")),
            &buffer[offset..offset + size as usize],
        )
        .expect("write");
    }
    fs::write(&marker, "").expect("marker");
    dir
}

/// Hashes an in-memory buffer on every core: the most any recorder could do here.
fn sha256_limit(threads: usize) -> f64 {
    let per_thread = 512 * MIB as usize;
    let buffer = vec![0x5au8; per_thread];
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut hasher = Sha256::new();
                for chunk in buffer.chunks(256 * 1024) {
                    hasher.update(chunk);
                }
                hasher.finalize()
            });
        }
    });
    (threads * per_thread) as f64 / start.elapsed().as_secs_f64() / GIB as f64
}

/// `tollgate run` recording `materials` (in `parent`) with `key`, its link written into
/// `links`.
fn tollgate_run(parent: &Path, key: &Path, materials: &str, links: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    c.current_dir(parent)
        .args(["run", "-q", "--overwrite", "--step", "bench", "--key"])
        .arg(key)
        .args(["-m", materials, "-d"])
        .arg(links)
        .args(["--", "true"]);
    c
}

/// The reference's `in-toto-run` doing what [`tollgate_run`] does.
fn in_toto_run(
    reference: &common::Reference,
    parent: &Path,
    key: &Path,
    materials: &str,
    links: &Path,
) -> Command {
    let mut c = reference.tool("in-toto-run");
    c.current_dir(parent)
        .args(["-n", "bench", "--signing-key"])
        .arg(key)
        .args(["-m", materials, "-d"])
        .arg(links)
        .args(["--", "true"]);
    c
}

/// The files under `dir`, listed once.
fn list_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("file type").is_dir() {
            list_files(&entry.path(), out);
        } else {
            out.push(entry.path());
        }
    }
}

/// The signed payload of the link `tool` wrote into `folder` for step `bench` with the key
/// whose short keyid is `keyid`. A missing or unreadable link is a panic: a tool that wrote
/// nothing was not measured doing the work.
fn recorded(folder: &Path, keyid: &str, tool: &str) -> serde_json::Value {
    let path = folder.join(format!("bench.{keyid}.link"));
    let bytes = fs::read(&path)
        .unwrap_or_else(|e| panic!("{tool} wrote no link at {}: {e}", path.display()));
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{tool}'s link {} is not JSON: {e}", path.display()));
    match value.get("signed") {
        Some(signed) => signed.clone(),
        None => panic!("{tool}'s link {} holds no signed payload", path.display()),
    }
}

/// The artifacts a link records on `side` ("materials" or "products"); a panic if absent.
fn artifacts<'a>(
    link: &'a serde_json::Value,
    side: &str,
    tool: &str,
) -> &'a serde_json::Map<String, serde_json::Value> {
    link[side]
        .as_object()
        .unwrap_or_else(|| panic!("{tool}'s link has no {side}"))
}

/// Checks that both tools recorded the same artifacts, every file of `dir` among the
/// materials, so that the times compare the same work.
fn assert_same_record(
    ours: &serde_json::Value,
    theirs: &serde_json::Value,
    dir: &Path,
    parent: &Path,
) {
    let mut files = Vec::new();
    list_files(dir, &mut files);
    let materials = artifacts(ours, "materials", "tollgate");
    for file in &files {
        let name = file
            .strip_prefix(parent)
            .expect("under the parent")
            .to_str()
            .expect("UTF-8 name");
        assert!(
            materials.contains_key(name),
            "tollgate did not record {name}"
        );
    }
    assert_eq!(
        materials.len(),
        files.len(),
        "tollgate recorded other files"
    );
    for side in ["materials", "products"] {
        assert!(
            artifacts(ours, side, "tollgate") == artifacts(theirs, side, "in-toto-run"),
            "{}: tollgate and in-toto-run recorded different {side}",
            dir.display()
        );
    }
}

/// The least time any recorder could take on this machine: every file opened, read in
/// 256 KiB pieces into SHA-256 and closed, on every core, from a list made beforehand: no
/// walk, no checks, no link. Best of three, in seconds.
fn file_floor(dir: &Path, threads: usize) -> f64 {
    let mut files = Vec::new();
    list_files(dir, &mut files);
    let next = std::sync::atomic::AtomicUsize::new(0);
    (0..4)
        .map(|_| {
            next.store(0, std::sync::atomic::Ordering::Relaxed);
            let start = Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(|| {
                        let mut buffer = vec![0u8; 256 * 1024];
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(path) = files.get(i) else { break };
                            let mut file = fs::File::open(path).expect("open");
                            let mut hasher = Sha256::new();
                            loop {
                                let n = std::io::Read::read(&mut file, &mut buffer).expect("read");
                                if n == 0 {
                                    break;
                                }
                                hasher.update(&buffer[..n]);
                            }
                            std::hint::black_box(hasher.finalize());
                        }
                    });
                }
            });
            start.elapsed().as_secs_f64()
        })
        // The first round warms the page cache.
        .skip(1)
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    support::require_gnu_time();
    let reference = common::Reference::get();
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("bench-trees");
    fs::create_dir_all(&root).expect("mkdir");
    let scratch = common::tempdir();
    let key = common::private_copy("ed25519", scratch.path());
    let keyid = common::load_public("ed25519").keyid().short().to_owned();
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    let limit = sha256_limit(threads);
    println!(
        "machine: {threads} cores; SHA-256 limit (sha2, in memory, all cores): {limit:.2} GiB/s"
    );
    println!();
    println!(
        "{:<18} {:<12} {:>9} {:>10} {:>9} {:>12} {:>10}",
        "tree", "tool", "seconds", "GiB/s", "% limit", "vs in-toto", "peak MiB"
    );
    for tree in &TREES {
        let dir = generate(tree, &root);
        let parent = dir.parent().expect("parent").to_owned();
        // Each tool writes into a folder of its own (the link's name is the same), so that
        // each link read back below is that tool's.
        let (ours, theirs) = (
            scratch.path().join(format!("{}-tollgate", tree.name)),
            scratch.path().join(format!("{}-in-toto", tree.name)),
        );
        fs::create_dir_all(&ours).expect("mkdir");
        fs::create_dir_all(&theirs).expect("mkdir");
        let tollgate = support::measure("tollgate", 3, &|| {
            tollgate_run(&parent, &key, tree.name, &ours)
        });
        let in_toto = support::measure("in-toto-run", 3, &|| {
            in_toto_run(reference, &parent, &key, tree.name, &theirs)
        });
        assert_same_record(
            &recorded(&ours, &keyid, "tollgate"),
            &recorded(&theirs, &keyid, "in-toto-run"),
            &dir,
            &parent,
        );
        let openssl = support::measure("openssl", 3, &|| {
            let mut c = Command::new("sh");
            c.current_dir(&parent).arg("-c").arg(format!(
                "find {} -type f -print0 | xargs -0 -P{threads} -n 1000 openssl dgst -sha256 > /dev/null",
                tree.name
            ));
            c
        });
        let floor = support::Measure {
            seconds: file_floor(&dir, threads),
            peak_mib: 0.0,
        };
        let gib = tree.bytes as f64 / GIB as f64;
        for (tool, m) in [
            ("tollgate", &tollgate),
            ("in-toto-run", &in_toto),
            ("openssl", &openssl),
            ("floor", &floor),
        ] {
            let throughput = gib / m.seconds;
            let peak = if tool == "floor" {
                "-".to_owned()
            } else {
                format!("{:.1}", m.peak_mib)
            };
            println!(
                "{:<18} {:<12} {:>9.3} {:>10.2} {:>8.0}% {:>11.1}x {:>10}",
                tree.name,
                tool,
                m.seconds,
                throughput,
                100.0 * throughput / limit,
                in_toto.seconds / m.seconds,
                peak
            );
        }
        println!(
            "{:<18} tollgate runs at {:.0}% of the floor's speed",
            tree.name,
            100.0 * floor.seconds / tollgate.seconds
        );
    }

    println!(
        "(floor: each file opened, read, hashed and closed on every core from a list made \
         beforehand, in this process: no walk, no checks, no link, no process start)"
    );

    // One digest for a whole folder (`dir:`), which both compute over every file.
    println!();
    for tree in &TREES {
        let dir = generate(tree, &root);
        let parent = dir.parent().expect("parent").to_owned();
        let uri = format!("dir:{}", tree.name);
        let ours = scratch.path().join("dir-ours");
        let theirs = scratch.path().join("dir-theirs");
        fs::create_dir_all(&ours).expect("mkdir");
        fs::create_dir_all(&theirs).expect("mkdir");
        let tollgate =
            support::measure("tollgate", 3, &|| tollgate_run(&parent, &key, &uri, &ours));
        let in_toto = support::measure("in-toto-run", 3, &|| {
            in_toto_run(reference, &parent, &key, &uri, &theirs)
        });
        // The same digest, or the comparison means nothing.
        let digest = |folder: &Path, tool: &str| {
            let link = recorded(folder, &keyid, tool);
            match artifacts(&link, "materials", tool).get(&uri) {
                Some(digest) => digest.clone(),
                None => panic!("{tool} did not record {uri}"),
            }
        };
        assert_eq!(
            digest(&ours, "tollgate"),
            digest(&theirs, "in-toto-run"),
            "{uri}"
        );
        let products = |folder: &Path, tool: &str| {
            artifacts(&recorded(folder, &keyid, tool), "products", tool).clone()
        };
        assert_eq!(
            products(&ours, "tollgate"),
            products(&theirs, "in-toto-run"),
            "{uri}"
        );
        for (tool, m) in [("tollgate", &tollgate), ("in-toto-run", &in_toto)] {
            println!(
                "{:<22} {:<12} {:>9.3} {:>11.1}x {:>10.1}",
                uri,
                tool,
                m.seconds,
                in_toto.seconds / m.seconds,
                m.peak_mib
            );
        }
    }
}
