//! What the benchmarks share: timing a command under GNU time for its wall time and peak
//! memory, and the tests' large Syft-shaped SBOM generator (`big_sbom::big_sbom`).

// The same file the tests use (`tests/tools/big_sbom.rs`); a bench that has no SBOM leaves it
// unused.
#[allow(dead_code)]
#[path = "../../tests/tools/big_sbom.rs"]
pub mod big_sbom;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// One command's best run.
pub struct Measure {
    /// Wall time, in seconds.
    pub seconds: f64,
    /// Peak resident memory, in MiB.
    pub peak_mib: f64,
}

/// Exits with a message unless GNU time is installed.
pub fn require_gnu_time() {
    if !Path::new("/usr/bin/time").exists() {
        eprintln!("this benchmark needs GNU time: apt-get install time");
        std::process::exit(2);
    }
}

/// Runs the command `make` builds once to warm the page cache, then `rounds` times; the
/// fastest run counts.
pub fn measure(label: &str, rounds: usize, make: &dyn Fn() -> Command) -> Measure {
    let mut best: Option<Measure> = None;
    for round in 0..=rounds {
        let report =
            std::env::temp_dir().join(format!("tollgate-bench-{}.time", std::process::id()));
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
            .expect("peak memory in GNU time's report");
        let _ = fs::remove_file(&report);
        let this = Measure {
            seconds,
            peak_mib: peak_kib / 1024.0,
        };
        if round > 0 && best.as_ref().is_none_or(|b| this.seconds < b.seconds) {
            best = Some(this);
        }
    }
    best.expect("at least one timed round")
}
