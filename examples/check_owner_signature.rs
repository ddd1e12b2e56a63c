//! Checks that a layout was signed by its owner, then lists its steps: the library calls behind
//! `tollgate sign --verify`, for programs that embed Tollgate.
//!
//! ```sh
//! cargo run --example check_owner_signature -- layouts/demo.layout keys-example/test-only-ed25519.pub
//! ```

use std::process::ExitCode;

use tollgate::document;
use tollgate::keyring::KeyRing;
use tollgate::keys::PublicKey;
use tollgate::limits::Limits;
use tollgate::metadata::Metadata;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [layout_path, key_path] = args.as_slice() else {
        eprintln!("usage: check_owner_signature LAYOUT OWNER.pub");
        return ExitCode::from(2);
    };
    match check(layout_path, key_path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(1)
        }
    }
}

fn check(layout_path: &str, key_path: &str) -> Result<(), String> {
    let limits = Limits::default();
    let pem = std::fs::read_to_string(key_path).map_err(|e| format!("{key_path}: {e}"))?;
    let owner = PublicKey::from_pem(&pem).map_err(|e| format!("{key_path}: {e}"))?;
    let ring = KeyRing::from_keys([owner]).map_err(|e| e.to_string())?;
    let bytes = std::fs::read(layout_path).map_err(|e| format!("{layout_path}: {e}"))?;
    let checked =
        document::verify_all(&bytes, &ring, &limits).map_err(|e| format!("{layout_path}: {e}"))?;
    let Metadata::Layout(layout) = checked.metadata else {
        return Err(format!("{layout_path}: a link, not a layout"));
    };
    println!(
        "{layout_path}: signed by its owner, expires {}",
        layout.expires
    );
    for step in &layout.steps {
        println!(
            "  step {}: {} of {} functionaries must agree",
            step.name,
            step.threshold,
            step.pubkeys.len()
        );
    }
    for inspection in &layout.inspections {
        println!(
            "  inspection {}: runs {:?}",
            inspection.name, inspection.run
        );
    }
    Ok(())
}
