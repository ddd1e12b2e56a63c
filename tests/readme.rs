//! The README's promises, run as written: its five-minute tour in an empty folder.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::{self, code, stderr, stdout};

/// The first ```sh block after `heading` in README.md.
fn sh_block_after(heading: &str) -> String {
    let readme = fs::read_to_string(common::repo().join("README.md")).expect("read README.md");
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README.md has no {heading:?} section"));
    let rest = &readme[start..];
    let open = rest.find("```sh\n").expect("a ```sh block in the section") + "```sh\n".len();
    let close = rest[open..].find("```").expect("the block closes") + open;
    rest[open..close].to_owned()
}

/// The tour's lines, with the install line left out: the test puts the freshly built
/// `tollgate` first on PATH instead, which is what `cargo install --path .` does.
fn tour_script() -> String {
    let block = sh_block_after("## A five-minute tour");
    let install = block
        .lines()
        .filter(|l| l.starts_with("cargo install"))
        .count();
    assert_eq!(install, 1, "the tour installs tollgate once:\n{block}");
    block
        .lines()
        .filter(|l| !l.starts_with("cargo install"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn readme_tour_runs_as_written_in_an_empty_folder() {
    let dir = common::tempdir();
    let script = tour_script();
    assert!(
        script.contains("tollgate verify"),
        "the tour ends in a verification:\n{script}"
    );
    let bin = Path::new(env!("CARGO_BIN_EXE_tollgate"))
        .parent()
        .expect("the binary's folder")
        .to_owned();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = common::run(
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(dir.path())
            .env("PATH", path)
            .env("EDITOR", "true")
            .env_remove("VISUAL"),
    );
    assert_eq!(
        code(&out),
        0,
        "the tour failed in an empty folder:\n{script}\nstdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    // Every command ran in the folder, and the last one verified the chain it recorded.
    assert!(dir.path().join("keys/owner").is_file());
    assert!(dir.path().join("root.layout").is_file());
    let links: Vec<_> = fs::read_dir(dir.path())
        .expect("list the folder")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("build.") && n.ends_with(".link"))
        .collect();
    assert_eq!(links.len(), 1, "one build link: {links:?}");
    let text = stdout(&out);
    assert!(
        text.contains("verified: 1 step(s)"),
        "the tour's verify passed:\n{text}"
    );
}
