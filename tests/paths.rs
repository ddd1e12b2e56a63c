//! Every writer and every path (issue 13): output files into folders that do not exist yet,
//! bad paths reported as bad input, and the working folder the inspections copy, sized before
//! it is copied.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::{code, run, stderr, stdout, tempdir, test_layout, tollgate};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

/// A layout with no steps and no inspections, signed by a fresh owner key.
const EMPTY_LAYOUT: &str = "expires = \"30d\"\n";

#[test]
fn issue13_writers_create_the_folders_missing_above_their_output() {
    let dir = tempdir();
    let base = dir.path();

    // keygen: the key's folder is made private (0700), the key stays 0600.
    let key = base.join("keys/ci/owner");
    let out = run(tollgate().args(["keygen", "-o"]).arg(&key));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&base.join("keys/ci/owner.pub")), 0o644);
    assert_eq!(mode(&base.join("keys/ci")), 0o700);
    // ... and is still never written over.
    let before = fs::read(&key).expect("read");
    let again = run(tollgate().args(["keygen", "-o"]).arg(&key));
    assert_eq!(code(&again), 2);
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    assert_eq!(fs::read(&key).expect("read"), before);

    // A file where a folder should be is named, as bad input.
    fs::write(base.join("plain"), "x").expect("write");
    let out = run(tollgate()
        .args(["keygen", "-o"])
        .arg(base.join("plain/sub/owner")));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{}: is not a folder, so nothing can be written in it",
            base.join("plain").display()
        )),
        "{}",
        stderr(&out)
    );

    // layout new
    let source = base.join("new/sub/layout.toml");
    let out = run(tollgate()
        .args(["layout", "new", "--template", "release", "-o"])
        .arg(&source));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        fs::read_to_string(&source)
            .expect("read")
            .contains("[[step]]")
    );

    // layout build
    let plain = base.join("layout.toml");
    fs::write(&plain, EMPTY_LAYOUT).expect("write");
    let layout = base.join("out/signed/root.layout");
    let out = run(tollgate()
        .args(["layout", "build"])
        .arg(&plain)
        .arg("--key")
        .arg(&key)
        .arg("-o")
        .arg(&layout));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(mode(&layout), 0o644);

    // layout sign -o, by a second owner
    let second = base.join("second");
    let out = run(tollgate().args(["keygen", "-o"]).arg(&second));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let resigned = base.join("resigned/root.layout");
    let out = run(tollgate()
        .args(["layout", "sign"])
        .arg(&layout)
        .arg("--key")
        .arg(&second)
        .arg("-o")
        .arg(&resigned));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(resigned.is_file());

    // bundle create
    let bundle = base.join("ship/v1/release.bundle.json");
    let out = run(tollgate()
        .args(["bundle", "create", "--layout"])
        .arg(&layout)
        .arg("--link-dir")
        .arg(base)
        .arg("-o")
        .arg(&bundle));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        fs::read_to_string(&bundle)
            .expect("read")
            .contains("tollgate-bundle/v1")
    );
}

#[test]
fn issue13_a_missing_link_dir_or_workdir_is_bad_input_not_a_failed_verification() {
    let dir = tempdir();
    let signed = test_layout(dir.path(), EMPTY_LAYOUT);
    let verify = |extra: &[&std::ffi::OsStr]| {
        run(tollgate()
            .args(["verify", "--layout"])
            .arg(&signed.layout)
            .arg("--layout-key")
            .arg(&signed.owner_pub)
            .args(extra))
    };
    // The layout itself verifies: what follows is about the paths only.
    let out = verify(&["--link-dir".as_ref(), dir.path().as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let missing = dir.path().join("links2");
    let out = verify(&["--link-dir".as_ref(), missing.as_os_str()]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "--link-dir: the folder {} (the links) does not exist",
            missing.display()
        )),
        "{}",
        stderr(&out)
    );

    let file = dir.path().join("layout.toml");
    let out = verify(&["--link-dir".as_ref(), file.as_os_str()]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is a file, not a folder"),
        "{}",
        stderr(&out)
    );

    let out = verify(&[
        "--link-dir".as_ref(),
        dir.path().as_os_str(),
        "--workdir".as_ref(),
        missing.as_os_str(),
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "--workdir: the folder {} (the working folder of the inspections) does not exist",
            missing.display()
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn issue13_keygen_encrypt_without_a_terminal_names_the_password_flags() {
    let dir = tempdir();
    let key = dir.path().join("owner");
    // `setsid` takes the terminal away, as in CI.
    let out = run(std::process::Command::new("setsid")
        .arg(env!("CARGO_BIN_EXE_tollgate"))
        .args(["keygen", "--encrypt", "-o"])
        .arg(&key)
        .stdin(std::process::Stdio::null()));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("--encrypt: cannot ask for a password: no terminal"),
        "{text}"
    );
    assert!(
        text.contains("pass --password-file FILE or --password-env VAR instead of --encrypt"),
        "{text}"
    );
    assert!(!key.exists());
}

/// A kept demo: its layout, owner key, links, and the folder a buyer received.
struct Demo {
    kept: PathBuf,
}

impl Demo {
    fn new(dir: &Path) -> Demo {
        let kept = dir.join("demo");
        let out = run(tollgate().args(["demo", "--keep"]).arg(&kept));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        Demo { kept }
    }

    /// `tollgate verify` of the demo's chain, run in `cwd`.
    fn verify(&self, cwd: &Path, extra: &[&str]) -> std::process::Output {
        run(tollgate()
            .current_dir(cwd)
            .args(["verify", "--layout"])
            .arg(self.kept.join("root.layout"))
            .arg("--layout-key")
            .arg(self.kept.join("owner.pub"))
            .arg("--link-dir")
            .arg(self.kept.join("links"))
            .args(extra))
    }
}

#[test]
fn issue13_a_working_folder_over_the_limit_stops_verify_before_copying() {
    let dir = tempdir();
    let demo = Demo::new(dir.path());
    let buyer = demo.kept.join("buyer");
    // The buyer's folder holds dist/, app.tar.gz and app.tar.gz.sha256: three entries.
    let out = demo.verify(&buyer, &["--max-workdir-files", "2"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains(&format!(
            "the working folder {} holds more than 2 entries, over the limit \
             max_workdir_files; the inspections run on a copy of it",
            buyer.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("pass --workdir DIR naming the folder that holds only the received product")
            && text.contains("--max-workdir-files N"),
        "{text}"
    );

    let out = demo.verify(&buyer, &["--max-workdir-bytes", "100"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("holds more than 100 bytes in files")
            && stderr(&out).contains("--max-workdir-bytes N"),
        "{}",
        stderr(&out)
    );

    // At the limits, it verifies.
    let out = demo.verify(&buyer, &["--max-workdir-files", "3"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn issue13_an_inspection_refusing_a_stray_file_points_at_workdir() {
    let dir = tempdir();
    let demo = Demo::new(dir.path());
    let buyer = demo.kept.join("buyer");
    fs::write(buyer.join("notes.txt"), "unrelated").expect("write");
    let out = demo.verify(&buyer, &[]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "notes.txt is in the working folder ({}) but no step produced it: the inspections \
             run on a copy of that folder, and --workdir names the folder holding the received \
             product",
            buyer.display()
        )),
        "{}",
        stderr(&out)
    );
    let json = demo.verify(&buyer, &["--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&json)).expect("json");
    assert!(
        report["failure"]["reason"]
            .as_str()
            .expect("reason")
            .contains("--workdir names the folder holding the received product"),
        "{report}"
    );
}

#[test]
fn issue13_a_failed_inspection_shows_its_commands_stderr() {
    let dir = tempdir();
    let demo = Demo::new(dir.path());
    let buyer = demo.kept.join("buyer");
    fs::remove_file(buyer.join("dist/app.tar.gz")).expect("remove");
    let out = demo.verify(&buyer, &[]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("inspection unpack: [\"tar\", \"-xzf\", \"dist/app.tar.gz\"] exited with 2; its stderr: \"tar")
            && text.contains("dist/app.tar.gz: Cannot open: No such file or directory"),
        "{text}"
    );
}

#[test]
fn issue13_a_sublayouts_inspections_are_held_to_the_workdir_limit_too() {
    let dir = tempdir();
    // The root: one step, build, performed by alice, who delegates it to a sublayout whose
    // step compile produces out.txt and whose inspection looks at the working folder.
    let signed = test_layout(
        dir.path(),
        r#"
expires = "30d"
[[step]]
name = "build"
functionaries = ["keys/alice.pub"]
expected_materials = ["DISALLOW *"]
expected_products = ["CREATE out.txt", "DISALLOW *"]
"#,
    );
    let keyid = {
        let out = run(tollgate()
            .args(["key", "id"])
            .arg(dir.path().join("keys/alice.pub")));
        stdout(&out).trim()[..8].to_owned()
    };
    let links = dir.path().join("links");
    let inner = links.join(format!("build.{keyid}"));
    let sub_source = dir.path().join("sub.toml");
    fs::write(
        &sub_source,
        r#"
expires = "30d"
[[step]]
name = "compile"
functionaries = ["keys/alice.pub"]
expected_materials = ["DISALLOW *"]
expected_products = ["CREATE out.txt", "DISALLOW *"]

[[inspection]]
name = "look"
run = ["true"]
expected_materials = ["MATCH out.txt WITH PRODUCTS FROM compile", "DISALLOW *"]
expected_products = ["MATCH out.txt WITH PRODUCTS FROM compile", "DISALLOW *"]
"#,
    )
    .expect("write");
    let out = run(tollgate()
        .args(["layout", "build"])
        .arg(&sub_source)
        .arg("--key")
        .arg(&signed.alice)
        .arg("-o")
        .arg(links.join(format!("build.{keyid}.link"))));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let work = dir.path().join("work");
    fs::create_dir_all(&work).expect("mkdir");
    fs::write(work.join("out.txt"), "built").expect("write");
    let out = run(tollgate()
        .current_dir(&work)
        .args(["run", "-q", "--step", "compile", "--key"])
        .arg(&signed.alice)
        .args(["-p", "out.txt", "--no-command", "-d"])
        .arg(&inner));
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let verify = |extra: &[&str]| {
        run(tollgate()
            .args(["verify", "--layout"])
            .arg(&signed.layout)
            .arg("--layout-key")
            .arg(&signed.owner_pub)
            .arg("--link-dir")
            .arg(&links)
            .arg("--workdir")
            .arg(&work)
            .args(extra))
    };
    let out = verify(&[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = verify(&["--max-workdir-bytes", "1"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "the working folder {} holds more than 1 bytes in files",
            work.display()
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn issue13_a_file_the_inspections_cannot_record_points_at_workdir_not_at_excluding_it() {
    let dir = tempdir();
    let demo = Demo::new(dir.path());
    let buyer = demo.kept.join("buyer");
    std::os::unix::fs::symlink("gone", buyer.join("stale")).expect("symlink");
    let out = demo.verify(&buyer, &[]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "(the inspections record the whole working folder, {}, and verify excludes nothing: \
             pass --workdir naming the folder that holds only the received product)",
            buyer.display()
        )),
        "{}",
        stderr(&out)
    );
}
