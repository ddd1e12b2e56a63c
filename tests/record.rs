//! Recording steps: `tollgate run`, `record start`/`stop` and `mock`, against the reference and
//! against the recorder rows of the threat catalogue (G, J).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tollgate::envelope::Envelope;
use tollgate::keyring::KeyRing;
use tollgate::limits::Limits;
use tollgate::record::{RecordError, RecordOptions, record_artifacts};

use crate::common::*;

/// A tree with what trips recorders up: non-ASCII names, spaces, quotes, empty files, a
/// symlinked file, nested folders, and files the default excludes leave out.
fn tricky_tree(root: &Path) {
    let tree = root.join("tree");
    fs::create_dir_all(tree.join("sub/deep")).expect("mkdir");
    fs::create_dir_all(tree.join(".git")).expect("mkdir");
    for (name, content) in [
        ("a.txt", "a\n"),
        ("h\u{e9}llo w\u{f6}rld.txt", "x"),
        ("empty", ""),
        ("quote\"s", "q"),
        ("sub/deep/f.rs", "fn main() {}\n"),
        ("sub/space name", "s"),
        ("x.pyc", "compiled"),
        ("old.link", "link"),
        ("notes~", "backup"),
        (".git/HEAD", "ref"),
        ("crlf.txt", "one\r\ntwo\rthree\n"),
    ] {
        fs::write(tree.join(name), content).expect("write");
    }
    std::os::unix::fs::symlink("a.txt", tree.join("link-to-a")).expect("symlink");
    std::os::unix::fs::symlink("../a.txt", tree.join("sub/up-link")).expect("symlink");
}

fn signed_payload(path: &Path) -> Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Envelope::from_bytes(&bytes, &Limits::default())
        .expect("decode")
        .unverified_payload()
        .expect("payload")
}

fn only_link(dir: &Path) -> PathBuf {
    let links: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".link"))
        .collect();
    assert_eq!(links.len(), 1, "{links:?}");
    links.into_iter().next().expect("one link")
}

#[test]
fn tollgate_and_the_reference_record_the_same_artifacts() {
    let reference = Reference::get();
    let dir = tempdir();
    tricky_tree(dir.path());
    let key = private_copy("ed25519", dir.path());
    let cases: Vec<Vec<&str>> = vec![
        vec!["-m", "tree", "-p", "tree"],
        vec!["-m", ".", "-p", "tree/a.txt", "tree/sub"],
        vec!["-m", "tree", "-p", "tree", "--lstrip-paths", "tree/"],
        vec!["-m", ".", "-p", ".", "--base-path", "tree"],
        vec!["-m", "tree", "-p", "tree", "--exclude", "*.txt", "sub/deep"],
        vec!["-m", "./tree//sub/../a.txt", "-p", "tree/sub/up-link"],
    ];
    for (i, flags) in cases.iter().enumerate() {
        let ours = dir.path().join(format!("ours-{i}"));
        let theirs = dir.path().join(format!("theirs-{i}"));
        fs::create_dir(&theirs).expect("mkdir");
        let out = run(tollgate()
            .current_dir(dir.path())
            .args(["run", "--step", "s", "--key"])
            .arg(&key)
            .arg("-d")
            .arg(&ours)
            .args(flags)
            .args(["--", "true"]));
        assert_eq!(code(&out), 0, "{flags:?}: {}", stderr(&out));
        let out = run(reference
            .tool("in-toto-run")
            .current_dir(dir.path())
            .args(["-n", "s", "--signing-key"])
            .arg(&key)
            .arg("-d")
            .arg(&theirs)
            .args(flags)
            .args(["--", "true"]));
        assert_eq!(code(&out), 0, "{flags:?}: {}", stderr(&out));
        let ours = signed_payload(&only_link(&ours));
        let theirs = signed_payload(&only_link(&theirs));
        assert!(
            !ours["materials"].as_object().expect("map").is_empty(),
            "{flags:?}"
        );
        assert_eq!(ours["materials"], theirs["materials"], "{flags:?}");
        assert_eq!(ours["products"], theirs["products"], "{flags:?}");
        assert_eq!(ours["command"], theirs["command"], "{flags:?}");
        assert_eq!(ours["byproducts"], theirs["byproducts"], "{flags:?}");
    }
}

/// Builds a two-step chain with tollgate under a layout made by the reference's API, and checks
/// it with `in-toto-verify`.
fn chain(functionaries: [&str; 2], dsse: bool) {
    let reference = Reference::get();
    let dir = tempdir();
    let work = dir.path();
    let bare = work.join("bare.layout");
    let out = run(reference
        .script("make-layout")
        .arg("--out")
        .arg(&bare)
        .args([
            "--expires",
            "2099-01-01T00:00:00Z",
            "--readme",
            "chain",
            "--steps",
        ])
        .arg("--key")
        .arg(example_key(functionaries[0], "pub"))
        .arg("--key")
        .arg(example_key(functionaries[1], "pub")));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let owner = private_copy("ecdsa-p256", work);
    let layout = work.join("root.layout");
    let mut sign = reference.script("sign-layout");
    sign.arg("--in")
        .arg(&bare)
        .arg("--key")
        .arg(&owner)
        .arg("--out")
        .arg(&layout);
    if dsse {
        sign.arg("--dsse");
    }
    assert_eq!(code(&run(&mut sign)), 0);

    let first = private_copy(functionaries[0], work);
    let second = private_copy(functionaries[1], work);
    let envelope: &[&str] = if dsse { &["--dsse"] } else { &[] };
    let tollgate_in = |args: &[&str], key: &Path| {
        let split = args.iter().position(|a| *a == "--").unwrap_or(args.len());
        let out = run(tollgate()
            .current_dir(work)
            .args(&args[..split])
            .arg("--key")
            .arg(key)
            .args(envelope)
            .arg("-q")
            .args(&args[split..]));
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    };
    tollgate_in(
        &[
            "run",
            "--step",
            "clone",
            "-p",
            "project",
            "--",
            "sh",
            "-c",
            "mkdir -p project && echo 'print(1)' > project/foo.py && echo x > project/README",
        ],
        &first,
    );
    // package: threshold 2; one functionary runs it in one go, the other spans two jobs.
    tollgate_in(
        &["record", "start", "--step", "package", "-m", "project"],
        &second,
    );
    tollgate_in(
        &[
            "run",
            "--step",
            "package",
            "-m",
            "project",
            "-p",
            "project.tar.gz",
            "--",
            "tar",
            "czf",
            "project.tar.gz",
            "project",
        ],
        &first,
    );
    tollgate_in(
        &[
            "record",
            "stop",
            "--step",
            "package",
            "-p",
            "project.tar.gz",
        ],
        &second,
    );

    let verify = || {
        run(reference
            .tool("in-toto-verify")
            .current_dir(work)
            .arg("--layout")
            .arg(&layout)
            .arg("--verification-keys")
            .arg(example_key("ecdsa-p256", "pub"))
            .args(["--link-dir", "."]))
    };
    let out = verify();
    assert_eq!(
        code(&out),
        0,
        "{functionaries:?} dsse={dsse}: {}",
        stderr(&out)
    );

    // The verdict means something: a source file changed after `clone` fails the chain.
    fs::write(work.join("project/foo.py"), "print(2)\n").expect("write");
    tollgate_in(
        &[
            "run",
            "--step",
            "package",
            "-m",
            "project",
            "-p",
            "project.tar.gz",
            "--overwrite",
            "--",
            "tar",
            "czf",
            "project.tar.gz",
            "project",
        ],
        &first,
    );
    let out = verify();
    assert_eq!(code(&out), 1, "tampered chain passed: {}", stdout(&out));
}

#[test]
fn a_chain_recorded_by_tollgate_passes_in_toto_verify_ed25519_rsa_classic() {
    chain(["ed25519", "rsa"], false);
}

#[test]
fn a_chain_recorded_by_tollgate_passes_in_toto_verify_ecdsa_dsse() {
    chain(["ecdsa-p256", "ecdsa-p384"], true);
}

#[test]
fn a_chain_recorded_by_tollgate_passes_in_toto_verify_rsa_ed25519_dsse() {
    chain(["rsa", "ed25519"], true);
}

fn options(root: &Path) -> RecordOptions {
    RecordOptions {
        base_path: Some(root.to_owned()),
        ..RecordOptions::default()
    }
}

fn record_in(
    paths: &[&str],
    options: &RecordOptions,
) -> Result<tollgate::record::Recorded, RecordError> {
    let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    record_artifacts(&paths, options)
}

#[test]
fn g1_symlinks_out_of_the_root_are_refused() {
    let dir = tempdir();
    let root = dir.path().join("root");
    fs::create_dir(&root).expect("mkdir");
    fs::write(dir.path().join("secret"), "s").expect("write");
    std::os::unix::fs::symlink("../secret", root.join("escape")).expect("symlink");
    std::os::unix::fs::symlink("/etc", root.join("etc")).expect("symlink");
    for path in ["escape", "etc", "."] {
        match record_in(&[path], &options(&root)) {
            Err(RecordError::OutsideRoot { .. }) => {}
            other => panic!("{path}: {other:?}"),
        }
    }
    assert!(matches!(
        record_in(&["../secret"], &options(&root)),
        Err(RecordError::OutsideRoot { .. })
    ));
    // Through the command line: no link written.
    let key = private_copy("ed25519", dir.path());
    let out = run(tollgate()
        .current_dir(&root)
        .args(["run", "--step", "s", "--key"])
        .arg(&key)
        .args(["-m", ".", "--", "true"]));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("leads outside the recording root"),
        "{}",
        stderr(&out)
    );
    assert!(fs::read_dir(&root).expect("read").all(|e| {
        !e.expect("entry")
            .file_name()
            .to_string_lossy()
            .ends_with(".link")
    }));
}

#[test]
fn g2_symlink_loops_end_with_an_error() {
    let dir = tempdir();
    let root = dir.path();
    std::os::unix::fs::symlink(".", root.join("a")).expect("symlink");
    let follow = RecordOptions {
        follow_symlink_dirs: true,
        ..options(root)
    };
    assert!(matches!(
        record_in(&["."], &follow),
        Err(RecordError::SymlinkLoop { .. })
    ));
    // Without following, the folder symlink is noted, not walked.
    let recorded = record_in(&["."], &options(root)).expect("records");
    assert_eq!(recorded.unfollowed_symlink_dirs, ["a"]);

    let dir = tempdir();
    let root = dir.path();
    fs::create_dir_all(root.join("x")).expect("mkdir");
    fs::create_dir_all(root.join("z")).expect("mkdir");
    std::os::unix::fs::symlink("../z", root.join("x/y")).expect("symlink");
    std::os::unix::fs::symlink("../x", root.join("z/w")).expect("symlink");
    assert!(matches!(
        record_in(
            &["."],
            &RecordOptions {
                follow_symlink_dirs: true,
                ..options(root)
            }
        ),
        Err(RecordError::SymlinkLoop { .. })
    ));
    // A self-referencing symlink.
    let dir = tempdir();
    std::os::unix::fs::symlink("self", dir.path().join("self")).expect("symlink");
    assert!(matches!(
        record_in(&["."], &options(dir.path())),
        Err(RecordError::SymlinkLoop { .. })
    ));
}

#[test]
fn g3_dangling_symlinks_are_reported() {
    let dir = tempdir();
    std::os::unix::fs::symlink("nowhere", dir.path().join("dangling")).expect("symlink");
    match record_in(&["."], &options(dir.path())) {
        Err(RecordError::DanglingSymlink { path, .. }) => assert_eq!(path, "dangling"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn g4_fifos_and_sockets_are_refused_without_opening_them() {
    let dir = tempdir();
    let status = Command::new("mkfifo")
        .arg(dir.path().join("pipe"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    match record_in(&["."], &options(dir.path())) {
        Err(RecordError::SpecialFile { path, kind }) => {
            assert_eq!(path, "pipe");
            assert_eq!(kind, "a FIFO");
        }
        other => panic!("{other:?}"),
    }
    let dir = tempdir();
    let _listener = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).expect("bind");
    assert!(matches!(
        record_in(&["."], &options(dir.path())),
        Err(RecordError::SpecialFile {
            kind: "a socket",
            ..
        })
    ));
    // A symlink to a FIFO is refused too, by a stat, not an open.
    let dir = tempdir();
    assert!(
        Command::new("mkfifo")
            .arg(dir.path().join("p"))
            .status()
            .expect("mkfifo")
            .success()
    );
    std::os::unix::fs::symlink("p", dir.path().join("to-pipe")).expect("symlink");
    assert!(matches!(
        record_in(&["to-pipe"], &options(dir.path())),
        Err(RecordError::SpecialFile { .. })
    ));
}

/// Runs `during` while another thread keeps appending to `path` (64 MiB to start with, so
/// that hashing it takes a while).
fn while_growing<T>(path: &Path, during: impl FnOnce() -> T) -> T {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    fs::write(path, vec![7u8; 64 * 1024 * 1024]).expect("write");
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (path, done) = (path.to_owned(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut file = fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .expect("open");
            while !done.load(Ordering::Relaxed) {
                file.write_all(b"more").expect("append");
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(5));
    let result = during();
    done.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    result
}

#[test]
fn g5_a_file_that_grows_while_hashed_writes_no_link() {
    let dir = tempdir();
    let path = dir.path().join("growing");
    let result = while_growing(&path, || record_in(&["growing"], &options(dir.path())));
    assert!(
        matches!(result, Err(RecordError::Changed { .. })),
        "{result:?}"
    );
    // Through the CLI: refused, and the folder holds no link and no temporary file.
    let key = private_copy("ed25519", dir.path());
    let out = while_growing(&path, || {
        run(tollgate()
            .current_dir(dir.path())
            .args(["run", "--step", "s", "--key"])
            .arg(&key)
            .args(["-m", "growing", "--", "true"]))
    });
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("growing: artifact changed during recording"),
        "{}",
        stderr(&out)
    );
    let mut left: Vec<String> = fs::read_dir(dir.path())
        .expect("read_dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["ed25519.pem", "growing"],
        "no link, no temporary file"
    );
}

#[test]
fn g6_an_unreadable_file_or_folder_fails_naming_it_and_writes_no_link() {
    let dir = tempdir();
    let tree = dir.path().join("tree");
    fs::create_dir_all(tree.join("locked")).expect("mkdir");
    fs::write(tree.join("a"), "a").expect("write");
    fs::write(tree.join("secret"), "s").expect("write");
    fs::write(tree.join("locked/x"), "x").expect("write");
    let key = private_copy("ed25519", dir.path());
    let (secret, locked, x) = (
        tree.join("secret"),
        tree.join("locked"),
        tree.join("locked/x"),
    );
    give_to_normal_user(&[
        dir.path(),
        &key,
        &tree,
        &tree.join("a"),
        &secret,
        &locked,
        &x,
    ]);
    // Runs as a user permissions apply to (root would read anything).
    let record = |side: &str| {
        let mut command = tollgate();
        command
            .current_dir(dir.path())
            .args(["run", "--step", "s", "--key"])
            .arg(&key)
            .args([side, "tree", "-d", "links", "--", "true"]);
        run(&mut as_normal_user(command))
    };
    let no_link = |message: &str| {
        assert!(
            !dir.path().join("links").exists(),
            "no link and no temporary file: {message}"
        );
    };
    // A file mode 000 among the materials.
    set_mode(&secret, 0o000);
    let out = record("-m");
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("recording materials: tree/secret: cannot read: Permission denied"),
        "{}",
        stderr(&out)
    );
    no_link(&stderr(&out));
    set_mode(&secret, 0o644);
    // A folder mode 000 among the products.
    set_mode(&locked, 0o000);
    let out = record("-p");
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains(&format!(
            "recording products: {}: cannot open the folder: Permission denied",
            locked.display()
        )),
        "{message}"
    );
    no_link(&message);
    // Readable again, the same run records: it was the permissions.
    set_mode(&locked, 0o755);
    let out = record("-p");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let link = signed_payload(&dir.path().join("links/s.63273c36.link"));
    assert_eq!(link["products"]["tree/secret"]["sha256"], sha256_hex(b"s"));
    assert_eq!(
        link["products"]["tree/locked/x"]["sha256"],
        sha256_hex(b"x")
    );
}

#[test]
fn g8_normalised_line_endings_are_hashed_and_recorded_in_the_signed_link() {
    let dir = tempdir();
    fs::write(dir.path().join("crlf.txt"), "one\r\ntwo\rthree\n").expect("write");
    let key = private_copy("ed25519", dir.path());
    let out = run(tollgate()
        .current_dir(dir.path())
        .args(["run", "--step", "s", "--key"])
        .arg(&key)
        .args(["-m", "crlf.txt", "--normalize-line-endings", "--", "true"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let link = signed_payload(&only_link(dir.path()));
    // sha256 of "one\ntwo\nthree\n"
    assert_eq!(
        link["materials"]["crlf.txt"]["sha256"],
        sha256_hex(b"one\ntwo\nthree\n")
    );
    assert_eq!(
        link["environment"]["tollgate"]["normalize_line_endings"],
        true
    );
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

#[test]
fn g9_configuration_in_the_tree_is_ignored_unless_asked_for() {
    let dir = tempdir();
    fs::write(dir.path().join(".gitignore"), "secret.txt\n").expect("write");
    fs::write(
        dir.path().join(".in_totorc"),
        "[settings]\nARTIFACT_EXCLUDE_PATTERNS=secret.txt\n",
    )
    .expect("write");
    fs::write(dir.path().join("secret.txt"), "s").expect("write");
    let recorded = record_in(&["."], &options(dir.path())).expect("records");
    let names: Vec<&str> = recorded.artifacts.keys().map(|p| p.as_str()).collect();
    assert_eq!(names, [".gitignore", ".in_totorc", "secret.txt"]);
    let with_gitignore = RecordOptions {
        use_gitignore: true,
        ..options(dir.path())
    };
    let recorded = record_in(&["."], &with_gitignore).expect("records");
    assert!(
        !recorded
            .artifacts
            .keys()
            .any(|p| p.as_str() == "secret.txt")
    );
}

#[test]
fn missing_paths_fail_unless_allowed_and_names_are_checked() {
    let dir = tempdir();
    assert!(matches!(
        record_in(&["typo"], &options(dir.path())),
        Err(RecordError::Missing(p)) if p == "typo"
    ));
    let lenient = RecordOptions {
        allow_missing: true,
        ..options(dir.path())
    };
    assert_eq!(
        record_in(&["typo"], &lenient).expect("skips").missing,
        ["typo"]
    );

    fs::write(dir.path().join("back\\slash"), "b").expect("write");
    assert!(matches!(
        record_in(&["."], &options(dir.path())),
        Err(RecordError::Name(_))
    ));
    fs::remove_file(dir.path().join("back\\slash")).expect("rm");

    fs::create_dir_all(dir.path().join("a/x")).expect("mkdir");
    fs::create_dir_all(dir.path().join("b/x")).expect("mkdir");
    fs::write(dir.path().join("a/x/f"), "1").expect("write");
    fs::write(dir.path().join("b/x/f"), "2").expect("write");
    let strip = |prefixes: &[&str]| RecordOptions {
        lstrip_paths: prefixes.iter().map(|p| p.to_string()).collect(),
        ..options(dir.path())
    };
    assert!(matches!(
        record_in(&["a", "b"], &strip(&["a/", "b/"])),
        Err(RecordError::LstripCollision(name)) if name == "x/f"
    ));
    assert!(matches!(
        record_in(&["a"], &strip(&["a/", "a/x/"])),
        Err(RecordError::LstripPrefixes(..))
    ));
}

fn run_step(dir: &Path, key: &Path, extra: &[&str], command: &[&str]) -> std::process::Output {
    run(tollgate()
        .current_dir(dir)
        .args(["run", "--step", "s", "--key"])
        .arg(key)
        .args(extra)
        .arg("--")
        .args(command))
}

#[test]
fn j5_the_command_s_outcome_is_recorded_and_passed_on() {
    let dir = tempdir();
    let key = private_copy("ed25519", dir.path());
    let out = run_step(
        dir.path(),
        &key,
        &["-s"],
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("out"),
        "the command's output still reaches the console"
    );
    let link = signed_payload(&only_link(dir.path()));
    assert_eq!(link["byproducts"]["return-value"], 3);
    assert_eq!(link["byproducts"]["stdout"], "out\n");
    assert_eq!(link["byproducts"]["stderr"], "err\n");

    let dir = tempdir();
    let key = private_copy("ed25519", dir.path());
    let out = run_step(dir.path(), &key, &[], &["sh", "-c", "kill -9 $$"]);
    assert_eq!(code(&out), 137);
    let link = signed_payload(&only_link(dir.path()));
    assert_eq!(link["byproducts"]["return-value"], -9);

    let dir = tempdir();
    let key = private_copy("ed25519", dir.path());
    let out = run_step(dir.path(), &key, &[], &["no-such-command-tollgate"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("cannot run \"no-such-command-tollgate\""),
        "{}",
        stderr(&out)
    );
    assert!(!fs::read_dir(dir.path()).expect("dir").any(|e| {
        e.expect("entry")
            .file_name()
            .to_string_lossy()
            .ends_with(".link")
    }));

    let dir = tempdir();
    let key = private_copy("ed25519", dir.path());
    let out = run_step(
        dir.path(),
        &key,
        &["-s", "--max-stream-bytes", "10"],
        &["sh", "-c", "printf 0123456789abcdef"],
    );
    assert_eq!(code(&out), 0);
    assert_eq!(stdout(&out), "0123456789abcdef");
    let link = signed_payload(&only_link(dir.path()));
    assert_eq!(link["byproducts"]["stdout"], "0123456789");
    assert_eq!(
        link["byproducts"]["truncated"],
        serde_json::json!(["stdout"])
    );
}

#[test]
fn j4_bad_keys_write_no_link() {
    let dir = tempdir();
    let public = dir.path().join("pub.pem");
    fs::copy(example_key("ed25519", "pub"), &public).expect("copy");
    set_mode(&public, 0o600);
    let corrupt = dir.path().join("corrupt.pem");
    fs::write(
        &corrupt,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .expect("write");
    set_mode(&corrupt, 0o600);
    let encrypted = private_copy("ed25519-encrypted", dir.path());
    for (key, extra, message) in [
        (&public, vec![], "this is a public key"),
        (&corrupt, vec![], "malformed key"),
        (
            &encrypted,
            vec!["--password-env", "TOLLGATE_NO_SUCH_VAR"],
            "not set",
        ),
    ] {
        let out = run(tollgate()
            .current_dir(dir.path())
            .env("TOLLGATE_TEST", "1")
            .args(["run", "--step", "s", "--key"])
            .arg(key)
            .args(extra)
            .args(["--", "true"]));
        assert_eq!(code(&out), 2);
        assert!(stderr(&out).contains(message), "{}", stderr(&out));
    }
    let out = run(tollgate()
        .current_dir(dir.path())
        .env("TOLLGATE_PW", "wrong")
        .args(["run", "--step", "s", "--key"])
        .arg(&encrypted)
        .args(["--password-env", "TOLLGATE_PW", "--", "true"]));
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("wrong password"), "{}", stderr(&out));
    assert!(!fs::read_dir(dir.path()).expect("dir").any(|e| {
        e.expect("entry")
            .file_name()
            .to_string_lossy()
            .ends_with(".link")
    }));
}

#[test]
fn j2_concurrent_recorders_never_corrupt_or_clobber() {
    let dir = tempdir();
    fs::write(dir.path().join("input"), "data").expect("write");
    let key = private_copy("ed25519", dir.path());
    let spawn = |step: &str| {
        tollgate()
            .current_dir(dir.path())
            .args(["run", "-q", "--step", step, "--key"])
            .arg(&key)
            .args(["-m", "input", "-d", "links", "--", "true"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let children: Vec<_> = (0..8)
        .map(|i| {
            let step = format!("step{}", i % 4);
            let child = spawn(&step);
            (step, child)
        })
        .collect();
    let outcomes: Vec<(String, i32, String)> = children
        .into_iter()
        .map(|(step, c)| {
            let out = c.wait_with_output().expect("wait");
            let code = out.status.code().expect("code");
            (
                step,
                code,
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .collect();
    // Each step has exactly one winner, silent under -q, and one loser refused because the
    // winner's link is there: not for any other reason (a lost race on the folder, a
    // half-written file).
    for i in 0..4 {
        let step = format!("step{i}");
        let runs: Vec<&(String, i32, String)> =
            outcomes.iter().filter(|(s, _, _)| *s == step).collect();
        let winners: Vec<_> = runs.iter().filter(|(_, c, _)| *c == 0).collect();
        let losers: Vec<_> = runs.iter().filter(|(_, c, _)| *c != 0).collect();
        assert_eq!(winners.len(), 1, "{step}: {outcomes:?}");
        assert_eq!(losers.len(), 1, "{step}: {outcomes:?}");
        assert_eq!(winners[0].2, "", "{step}: the winner says nothing");
        let (_, code, message) = losers[0];
        assert_eq!(*code, 2, "{step}: {message}");
        assert!(
            message.contains(&format!("{step}.63273c36.link: already exists")),
            "{step}: {message}"
        );
    }
    let ring = KeyRing::from_keys([load_public("ed25519")]).expect("ring");
    let mut names: Vec<String> = fs::read_dir(dir.path().join("links"))
        .expect("links")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        (0..4)
            .map(|i| format!("step{i}.63273c36.link"))
            .collect::<Vec<_>>(),
        "one link per step and no temporary files left"
    );
    for (i, name) in names.iter().enumerate() {
        let link = dir.path().join("links").join(name);
        let bytes = fs::read(&link).expect("read");
        Envelope::from_bytes(&bytes, &Limits::default())
            .expect("parses")
            .verify(&ring, 1)
            .expect("verifies");
        let payload = signed_payload(&link);
        assert_eq!(payload["name"], format!("step{i}"), "{name}");
        assert_eq!(
            payload["materials"]["input"]["sha256"],
            "3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7",
            "{name}"
        );
    }
}

/// The names in `folder` other than `keep`, sorted; none when the folder is absent.
fn entries_besides(folder: &Path, keep: &str) -> Vec<String> {
    let mut names: Vec<String> = match fs::read_dir(folder) {
        Ok(entries) => entries
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name != keep)
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// What a SIGKILL can leave of an atomic write: `fsio`'s temporary file (no destructor runs),
/// which no reader of links mistakes for one (they read `*.link` only).
fn assert_only_temporary_files(left: &[String], round: usize) {
    for name in left {
        assert!(
            name.starts_with(".tollgate-") && name.ends_with(".tmp") && !name.contains(".link"),
            "round {round}: unexpected file {name} beside the link"
        );
    }
}

#[test]
fn j1_a_killed_recorder_leaves_no_partial_link() {
    let dir = tempdir();
    let key = private_copy("ed25519", dir.path());
    let ring = KeyRing::from_keys([load_public("ed25519")]).expect("ring");
    let folder = dir.path().join("links");
    let name = "s.63273c36.link";
    let link = folder.join(name);
    // A 4 MB byproduct makes a 4 MB link: writing and flushing it takes long enough for a
    // kill to land in the middle of it.
    let start = || {
        tollgate()
            .current_dir(dir.path())
            .args(["run", "-q", "-s", "--step", "s", "--key"])
            .arg(&key)
            .args(["-d", "links", "--", "sh", "-c"])
            .arg("head -c 4000000 /dev/zero | tr '\\0' a")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn")
    };
    // How long a whole run takes here, to spread the kills over it.
    let started = std::time::Instant::now();
    let status = start().wait().expect("wait");
    assert!(status.success(), "an unkilled run records the step");
    let whole = started.elapsed();
    let (mut complete, mut none, mut mid_write) = (0, 0, 0);
    // Kills after a share of a whole run (from before the write to well after it), and kills
    // as soon as anything appears in the folder, that is while the link is being written.
    let kills = [0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 3.0]
        .map(Some)
        .into_iter()
        .chain([None; 4]);
    for (round, share) in kills.enumerate() {
        let _ = fs::remove_dir_all(&folder);
        let mut child = start();
        let write_under_way = match share {
            Some(share) => {
                std::thread::sleep(whole.mul_f64(share));
                false
            }
            None => loop {
                if !entries_besides(&folder, "").is_empty() {
                    break child.try_wait().expect("poll").is_none();
                }
                if child.try_wait().expect("poll").is_some() {
                    break false;
                }
                std::hint::spin_loop();
            },
        };
        let _ = child.kill();
        let _ = child.wait();
        let left = entries_besides(&folder, name);
        assert_only_temporary_files(&left, round);
        match fs::read(&link) {
            Ok(bytes) => {
                Envelope::from_bytes(&bytes, &Limits::default())
                    .unwrap_or_else(|e| {
                        panic!("round {round}: a link under its final name is whole: {e}")
                    })
                    .verify(&ring, 1)
                    .unwrap_or_else(|e| panic!("round {round}: and signed: {e}"));
                complete += 1;
            }
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "round {round}");
                none += 1;
                if write_under_way && !left.is_empty() {
                    mid_write += 1;
                }
            }
        }
    }
    assert!(complete > 0, "no round ended with a complete link");
    assert!(none > 0, "no round ended with no link");
    assert!(
        mid_write > 0,
        "no kill landed while the link was being written ({complete} complete, {none} none)"
    );
}

/// Whether the tests run as root (`/proc/self` belongs to the effective user).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").expect("stat /proc/self").uid() == 0
}

/// The user that root's tests drop to, so that file permissions apply: `nobody`.
const NOBODY: u32 = 65534;

/// `command` run as a user file permissions apply to: as is for a normal user, and as `nobody`
/// (through `setpriv`) for root, who ignores them.
fn as_normal_user(command: Command) -> Command {
    if !is_root() {
        return command;
    }
    let mut wrapped = Command::new("setpriv");
    wrapped.args([
        format!("--reuid={NOBODY}"),
        format!("--regid={NOBODY}"),
        "--clear-groups".to_owned(),
    ]);
    wrapped.arg(command.get_program()).args(command.get_args());
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
}

/// Hands `paths` to the user of [`as_normal_user`] (a no-op for a normal user, who owns them).
fn give_to_normal_user(paths: &[&Path]) {
    if is_root() {
        for path in paths {
            std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).expect("chown");
        }
    }
}

/// Records step `s` with `tollgate run`, the link going to `dir/out`, which is a fresh tmpfs
/// mounted with `options` in a mount namespace of the run's own (`unshare --mount` for root,
/// with `--user --map-root-user` for a normal user): the mount lives and dies with the run, so
/// nothing is left to unmount whatever happens to the test. The command prints `bytes` bytes,
/// recorded as a byproduct. Returns the run's output and the folder's entries as the recorder
/// left them, listed before the mount goes away.
fn record_into_tmpfs(dir: &Path, options: &str, bytes: usize) -> (std::process::Output, String) {
    let out = dir.join("out");
    let listing = dir.join("listing");
    fs::create_dir(&out).expect("mkdir");
    let key = private_copy("ed25519", dir);
    let mut unshare = Command::new("unshare");
    if !is_root() {
        unshare.args(["--user", "--map-root-user"]);
    }
    let script = r#"out=$1 listing=$2 options=$3; shift 3
        mount -t tmpfs -o "$options" tmpfs "$out" || exit 99
        "$@"; code=$?
        ls -A "$out" > "$listing" || exit 98
        exit $code"#;
    let output = run(unshare
        .args(["--mount", "sh", "-c", script, "sh"])
        .args([&out, &listing])
        .arg(options)
        .arg(env!("CARGO_BIN_EXE_tollgate"))
        .args(["run", "-s", "--step", "s", "--key"])
        .arg(&key)
        .arg("-d")
        .arg(&out)
        .args(["--", "sh", "-c"])
        .arg(format!("head -c {bytes} /dev/zero | tr '\\0' a")));
    assert!(
        !matches!(output.status.code(), Some(98 | 99)) && listing.exists(),
        "cannot mount a tmpfs in a private mount namespace (this test needs root, or \
         unprivileged user namespaces for `unshare --user`): {}",
        stderr(&output)
    );
    let left = fs::read_to_string(&listing).expect("read listing");
    (output, left)
}

/// What every failure to write the link must look like: exit 3, the link's path named, and
/// nothing left in the folder (no link, no temporary file).
fn assert_refused_cleanly(output: &std::process::Output, left: &str, folder: &Path, cause: &str) {
    let message = stderr(output);
    assert_eq!(code(output), 3, "{message}");
    let path = folder.join("s.63273c36.link");
    assert!(
        message.contains(&format!("{}: cannot ", path.display())) && message.contains(cause),
        "{message}"
    );
    assert_eq!(left, "", "no link and no temporary file: {message}");
}

#[test]
fn j1_a_full_disk_fails_naming_the_link_and_leaves_nothing() {
    let dir = tempdir();
    // 64 KiB of room, a 1 MB link: the write runs out of space part way.
    let (output, left) = record_into_tmpfs(dir.path(), "size=64k", 1_000_000);
    assert_refused_cleanly(
        &output,
        &left,
        &dir.path().join("out"),
        "No space left on device",
    );
    // The same folder with room takes the link: it was the space.
    let dir = tempdir();
    let (output, left) = record_into_tmpfs(dir.path(), "size=4m", 1_000_000);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(left, "s.63273c36.link\n");
}

#[test]
fn j1_a_read_only_folder_fails_naming_the_link_and_leaves_nothing() {
    // A read-only file system (EROFS).
    let dir = tempdir();
    let (output, left) = record_into_tmpfs(dir.path(), "ro", 100);
    assert_refused_cleanly(
        &output,
        &left,
        &dir.path().join("out"),
        "Read-only file system",
    );
    // A folder the recorder may not write in (EACCES), as a user permissions apply to.
    let dir = tempdir();
    let out = dir.path().join("out");
    fs::create_dir(&out).expect("mkdir");
    let key = private_copy("ed25519", dir.path());
    give_to_normal_user(&[dir.path(), &key]);
    set_mode(&out, 0o555);
    let mut command = tollgate();
    command
        .current_dir(dir.path())
        .args(["run", "--step", "s", "--key"])
        .arg(&key)
        .arg("-d")
        .arg(&out)
        .args(["--", "true"]);
    let output = run(&mut as_normal_user(command));
    let left: Vec<String> = entries_besides(&out, "");
    assert_refused_cleanly(&output, &left.join("\n"), &out, "Permission denied");
}

#[test]
fn record_start_and_stop_make_one_link_and_check_the_key() {
    let dir = tempdir();
    fs::write(dir.path().join("src"), "source").expect("write");
    let alice = private_copy("ed25519", dir.path());
    let bob = private_copy("bob-ed25519", dir.path());
    let step = |args: &[&str], key: &Path| {
        run(tollgate()
            .current_dir(dir.path())
            .args(args)
            .arg("--key")
            .arg(key))
    };
    let out = step(&["record", "start", "--step", "build", "-m", "src"], &alice);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let unfinished = dir.path().join(".build.63273c36.link-unfinished");
    assert!(unfinished.exists());
    fs::write(dir.path().join("out"), "binary").expect("write");
    // Bob cannot finish alice's step.
    let out = step(&["record", "stop", "--step", "build", "-p", "out"], &bob);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no unfinished link"),
        "{}",
        stderr(&out)
    );
    // Nor can anyone finish it once it has been tampered with.
    let original = fs::read(&unfinished).expect("read");
    fs::write(
        &unfinished,
        String::from_utf8(original.clone())
            .expect("utf8")
            .replace("\"src\"", "\"srd\""),
    )
    .expect("write");
    let out = step(&["record", "stop", "--step", "build", "-p", "out"], &alice);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("not signed by this key"),
        "{}",
        stderr(&out)
    );
    fs::write(&unfinished, original).expect("restore");
    let out = step(&["record", "stop", "--step", "build", "-p", "out"], &alice);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!unfinished.exists());
    let link = signed_payload(&dir.path().join("build.63273c36.link"));
    assert_eq!(link["materials"]["src"]["sha256"], sha256_hex(b"source"));
    assert_eq!(link["products"]["out"]["sha256"], sha256_hex(b"binary"));
}

#[test]
fn mock_writes_an_unsigned_link_that_sign_can_sign() {
    let dir = tempdir();
    fs::write(dir.path().join("input"), "data").expect("write");
    let out = run(tollgate().current_dir(dir.path()).args([
        "mock",
        "--step",
        "try",
        "--",
        "sh",
        "-c",
        "echo hello > output",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let path = dir.path().join("try.link");
    let value: Value = serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
    assert_eq!(value["signatures"], serde_json::json!([]));
    assert!(value["signed"]["materials"].get("input").is_some());
    assert!(value["signed"]["products"].get("output").is_some());
    let key = private_copy("ed25519", dir.path());
    let out = run(tollgate()
        .current_dir(dir.path())
        .arg("sign")
        .arg(&path)
        .arg("-k")
        .arg(&key));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(dir.path().join("try.63273c36.link").exists());
}

#[test]
fn the_reference_s_flag_spellings_work() {
    let dir = tempdir();
    fs::write(dir.path().join("in"), "data").expect("write");
    let key = private_copy("ed25519", dir.path());
    let out = run(tollgate()
        .current_dir(dir.path())
        .args(["run", "-n", "step", "--signing-key"])
        .arg(&key)
        .args([
            "-m",
            "in",
            "-p",
            "in",
            "-s",
            "-d",
            "out",
            "--use-dsse",
            "--exclude",
            "*.tmp",
        ])
        .args([
            "--lstrip-paths",
            "x/",
            "--base-path",
            ".",
            "--",
            "echo",
            "hi",
        ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let link = dir.path().join("out/step.63273c36.link");
    let value: Value = serde_json::from_slice(&fs::read(&link).expect("read")).expect("json");
    assert_eq!(value["payloadType"], "application/vnd.in-toto+json");
    let payload = signed_payload(&link);
    assert_eq!(payload["byproducts"]["stdout"], "hi\n");
    assert_eq!(
        payload["environment"]["tollgate"]["exclude_patterns"],
        serde_json::json!(["*.tmp"])
    );
    let out = run(tollgate()
        .current_dir(dir.path())
        .args(["run", "--step-name", "other", "--key"])
        .arg(&key)
        .args(["-x", "-m", "in"]));
    assert_eq!(
        code(&out),
        0,
        "--no-command records without a command: {}",
        stderr(&out)
    );
    let link = signed_payload(&dir.path().join("other.63273c36.link"));
    assert_eq!(link["command"], serde_json::json!([]));
    assert_eq!(link["byproducts"], serde_json::json!({}));
}

#[test]
fn a_command_over_its_timeout_is_killed_and_gets_no_link() {
    let dir = tempdir();
    let key = private_copy("ed25519", dir.path());
    let started = std::time::Instant::now();
    let out = run_step(dir.path(), &key, &["--timeout", "1"], &["sleep", "30"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("longer than 1 s and was killed"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("s.63273c36.link").exists());
}

/// Where the reference mangles, tollgate refuses: a backslash in a Unix file name would be
/// recorded by `in-toto-run` as a `/` (in-toto#565), naming a file that does not exist.
#[test]
fn backslash_names_are_refused_where_the_reference_mangles_them() {
    let reference = Reference::get();
    let dir = tempdir();
    fs::create_dir(dir.path().join("tree")).expect("mkdir");
    fs::write(dir.path().join("tree/back\\slash"), "b").expect("write");
    let key = private_copy("ed25519", dir.path());
    let out = run_step(dir.path(), &key, &["-m", "tree"], &["true"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("contains a backslash"),
        "{}",
        stderr(&out)
    );
    let theirs = dir.path().join("theirs");
    fs::create_dir(&theirs).expect("mkdir");
    let out = run(reference
        .tool("in-toto-run")
        .current_dir(dir.path())
        .args(["-n", "s", "--signing-key"])
        .arg(&key)
        .args(["-m", "tree", "-d"])
        .arg(&theirs)
        .args(["--", "true"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let link = signed_payload(&only_link(&theirs));
    assert!(link["materials"].get("tree/back/slash").is_some(), "{link}");
}

#[test]
fn names_that_are_not_utf8_are_refused() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempdir();
    let name = std::ffi::OsStr::from_bytes(b"bad\xffname");
    fs::write(dir.path().join(name), "x").expect("write");
    assert!(matches!(
        record_in(&["."], &options(dir.path())),
        Err(RecordError::NonUtf8Name(_))
    ));
}

/// THREATS G7: a file far larger than memory is hashed in constant memory (a sparse file, so
/// that the test stays fast).
#[test]
fn g7_huge_files_hash_in_constant_memory() {
    let dir = tempdir();
    let file = fs::File::create(dir.path().join("huge")).expect("create");
    file.set_len(6 * 1024 * 1024 * 1024).expect("sparse 6 GiB");
    let key = private_copy("ed25519", dir.path());
    // Python reports the peak resident memory of the child it ran.
    let script = format!(
        "import resource, subprocess, sys\n\
         r = subprocess.run([{bin:?}, 'run', '-q', '--step', 's', '--key', {key:?}, '-m', 'huge', '--', 'true'], cwd={cwd:?})\n\
         print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
        bin = env!("CARGO_BIN_EXE_tollgate"),
        key = key.display().to_string(),
        cwd = dir.path().display().to_string(),
    );
    let out = run(Command::new("python3").arg("-c").arg(script));
    let text = stdout(&out);
    let mut fields = text.split_whitespace();
    assert_eq!(fields.next(), Some("0"), "{text} {}", stderr(&out));
    let peak_kib: u64 = fields.next().and_then(|v| v.parse().ok()).expect("peak");
    assert!(peak_kib < 64 * 1024, "peak {peak_kib} KiB");
    let link = signed_payload(&dir.path().join("s.63273c36.link"));
    // sha256 of 6 GiB of zero bytes
    assert_eq!(
        link["materials"]["huge"]["sha256"],
        zeros_sha256(6 * 1024 * 1024 * 1024)
    );
}

fn zeros_sha256(len: u64) -> String {
    use sha2::Digest;
    let block = vec![0u8; 1 << 20];
    let mut hasher = sha2::Sha256::new();
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        hasher.update(&block[..n]);
        left -= n as u64;
    }
    hex::encode(hasher.finalize())
}

/// THREATS G7: paths longer than PATH_MAX. Files are opened relative to their folder, so a tree
/// deeper than any path the kernel accepts whole is still recorded, under its full name.
#[test]
fn g7_paths_beyond_path_max_are_recorded() {
    use rustix::fs::{Mode, OFlags};
    let dir = tempdir();
    let segment = "d".repeat(200);
    let mut folder = rustix::fs::open(
        dir.path(),
        OFlags::DIRECTORY | OFlags::RDONLY,
        Mode::empty(),
    )
    .expect("open");
    let mut name = String::new();
    for _ in 0..25 {
        rustix::fs::mkdirat(&folder, segment.as_str(), Mode::from_raw_mode(0o755))
            .expect("mkdirat");
        folder = rustix::fs::openat(
            &folder,
            segment.as_str(),
            OFlags::DIRECTORY | OFlags::RDONLY,
            Mode::empty(),
        )
        .expect("openat");
        name.push_str(&segment);
        name.push('/');
    }
    let file = rustix::fs::openat(
        &folder,
        "deep.txt",
        OFlags::CREATE | OFlags::WRONLY,
        Mode::from_raw_mode(0o644),
    )
    .expect("create");
    rustix::io::write(&file, b"deep").expect("write");
    name.push_str("deep.txt");
    assert!(name.len() > 4096, "deeper than PATH_MAX");
    let recorded = record_in(&["."], &options(dir.path())).expect("records");
    assert_eq!(
        recorded
            .artifacts
            .get(&name)
            .map(|d| d.get("sha256").map(|h| h.into_owned())),
        Some(Some(sha256_hex(b"deep")))
    );
    // std's remove_dir_all works relative to folder descriptors, so the tree goes with `dir`.
    let root = dir.path().to_owned();
    drop(dir);
    assert!(!root.exists());
}

/// Runs `tollgate ARGS` on a terminal (a pseudo-terminal from util-linux `script`) and returns
/// what the terminal showed.
fn on_a_terminal(dir: &Path, args: &str) -> (i32, String) {
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_tollgate"));
    let out = run(Command::new("script").current_dir(dir).args([
        "-q",
        "-e",
        "-c",
        &command,
        "/dev/null",
    ]));
    (
        code(&out),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_progress_line_shows_on_a_terminal_once_the_work_takes_a_moment_and_never_with_quiet() {
    let dir = tempdir();
    fs::create_dir_all(dir.path().join("src")).expect("mkdir");
    for i in 0..5 {
        fs::write(dir.path().join(format!("src/{i}.txt")), "x").expect("write");
    }
    let key = private_copy("ed25519", dir.path());
    let base = format!(
        "run --step s --key {} -m src --overwrite -d links",
        key.display()
    );
    let (status, screen) = on_a_terminal(dir.path(), &format!("{base} -- sleep 1"));
    assert_eq!(status, 0, "{screen}");
    assert!(screen.contains("hashing: 5/5 files, 0.0 MiB"), "{screen:?}");
    // The line is cleared before the summary, so nothing is left half-written.
    assert!(screen.contains("\r\x1b[K"), "{screen:?}");
    let (status, screen) = on_a_terminal(dir.path(), &format!("{base} -q -- sleep 1"));
    assert_eq!(status, 0, "{screen}");
    assert!(!screen.contains("hashing:"), "{screen:?}");
    // Not on a terminal: no progress line in what a CI log captures.
    let out = run(tollgate()
        .current_dir(dir.path())
        .args(["run", "--step", "s", "--key"])
        .arg(&key)
        .args([
            "-m",
            "src",
            "--overwrite",
            "-d",
            "links",
            "--",
            "sleep",
            "1",
        ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("hashing:"), "{}", stderr(&out));
}
