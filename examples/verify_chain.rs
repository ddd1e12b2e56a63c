//! Verifies a supply chain with the library, as a release gate written in Rust would: the
//! layout's signatures and expiry, every step's links and rules, and the inspections, then a
//! decision on the report.
//!
//! ```sh
//! cargo run --release -- demo --keep /tmp/demo
//! mkdir -p /tmp/shipped/dist && cp /tmp/demo/project/dist/app.tar.gz* /tmp/shipped/dist/
//! cargo run --example verify_chain -- /tmp/demo/root.layout /tmp/demo/owner.pub /tmp/demo/links /tmp/shipped
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use tollgate::keyring::KeyRing;
use tollgate::keys::PublicKey;
use tollgate::verify::{self, VerifyOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [layout, owner, links, workdir] = args.as_slice() else {
        eprintln!("usage: verify_chain LAYOUT OWNER.pub LINK_DIR WORKDIR");
        return ExitCode::from(2);
    };
    match gate(layout, owner, links, workdir) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Returns whether the chain verified; an error for input that could not be read.
fn gate(layout: &str, owner: &str, links: &str, workdir: &str) -> Result<bool, String> {
    let layout_bytes = std::fs::read(layout).map_err(|e| format!("{layout}: {e}"))?;
    let pem = std::fs::read_to_string(owner).map_err(|e| format!("{owner}: {e}"))?;
    let key = PublicKey::from_pem(&pem).map_err(|e| format!("{owner}: {e}"))?;
    let owners = KeyRing::from_keys([key]).map_err(|e| e.to_string())?;

    let mut options = VerifyOptions::new(links);
    options.workdir = Some(PathBuf::from(workdir));
    let report =
        verify::verify(&layout_bytes, &owners, &options).map_err(|e| format!("{layout}: {e}"))?;

    for step in &report.steps {
        println!(
            "step {}: {} of {} key(s) signed",
            step.name,
            step.signers.len(),
            step.threshold
        );
    }
    for warning in &report.warnings {
        println!("warning: {}", warning.message);
    }
    match &report.failure {
        None if report.passed() => {
            println!("PASS: release may ship");
            Ok(true)
        }
        Some(failure) => {
            println!("FAIL: {}", failure.reason);
            Ok(false)
        }
        None => Ok(false), // never a pass that was not earned
    }
}
