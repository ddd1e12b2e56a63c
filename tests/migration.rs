//! Moving a pipeline off in-toto 3.1.0 (issue 13, items 1, 2, 4, 10 and 12): the reference's
//! command lines work with the program name changed, `record start`/`stop` keep the unfinished
//! link where the reference keeps it, and the common slips are told what to do.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::*;

/// The ed25519 example key's keyid prefix.
const KEYID8: &str = "63273c36";

/// A signed link's payload (classic envelope).
fn payload(path: &Path) -> serde_json::Value {
    let value: serde_json::Value =
        serde_json::from_slice(&fs::read(path).expect("read link")).expect("json");
    value["signed"].clone()
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

fn in_dir(dir: &Path, args: &[&str]) -> std::process::Output {
    run(tollgate().current_dir(dir).args(args))
}

// ---------------------------------------------------------------------------------------------
// Item 1: record start / record stop -d DIR, as the reference's own help shows them.

#[test]
fn issue13_record_stop_d_finds_the_unfinished_link_in_the_working_folder() {
    let dir = tempdir();
    let d = dir.path();
    private_copy("ed25519", d);
    fs::write(d.join("src"), "source").expect("write");
    // The reference's help: `in-toto-record start -n edit-files --signing-key KEY -m .` ...
    let out = in_dir(
        d,
        &[
            "record",
            "start",
            "-n",
            "edit",
            "--signing-key",
            "ed25519.pem",
            "-m",
            "src",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let unfinished = format!(".edit.{KEYID8}.link-unfinished");
    assert!(d.join(&unfinished).is_file(), "{:?}", names(d));
    fs::write(d.join("out"), "binary").expect("write");
    // ... then `in-toto-record stop -d path/to/target/dir -n edit-files --signing-key KEY -p .`
    let out = in_dir(
        d,
        &[
            "record",
            "stop",
            "-d",
            "target/dir",
            "-n",
            "edit",
            "--signing-key",
            "ed25519.pem",
            "-p",
            "out",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Only the final link goes into -d; the unfinished one is gone from the working folder.
    let target = d.join("target/dir");
    assert_eq!(
        names(&target),
        BTreeSet::from([format!("edit.{KEYID8}.link")])
    );
    assert!(!d.join(&unfinished).exists(), "{:?}", names(d));
    let link = payload(&target.join(format!("edit.{KEYID8}.link")));
    assert_eq!(link["materials"]["src"]["sha256"], sha256_hex(b"source"));
    assert_eq!(link["products"]["out"]["sha256"], sha256_hex(b"binary"));
}

#[test]
fn issue13_record_start_d_is_still_found_by_stop_d_and_two_unfinished_links_are_refused() {
    let dir = tempdir();
    let d = dir.path();
    private_copy("ed25519", d);
    fs::write(d.join("src"), "source").expect("write");
    let start = |extra: &[&str]| {
        let mut args = vec![
            "record",
            "start",
            "-n",
            "b",
            "-k",
            "ed25519.pem",
            "-m",
            "src",
        ];
        args.extend_from_slice(extra);
        in_dir(d, &args)
    };
    let stop = || {
        in_dir(
            d,
            &[
                "record",
                "stop",
                "-n",
                "b",
                "-k",
                "ed25519.pem",
                "-p",
                "src",
                "-d",
                "links",
            ],
        )
    };
    // Older Tollgate scripts pass -d to both halves.
    let out = start(&["-d", "links"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = stop();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        names(&d.join("links")),
        BTreeSet::from([format!("b.{KEYID8}.link")])
    );
    // A retried stop job: the link is there, so say that stop already ran.
    let out = stop();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "no unfinished link in the working folder nor in links (links/b.{KEYID8}.link is \
             there: this step's `record stop` already ran)"
        )),
        "{}",
        stderr(&out)
    );
    // An unfinished link in both places: which one is current cannot be told.
    assert_eq!(code(&start(&["-d", "links"])), 0);
    assert_eq!(code(&start(&[])), 0);
    let out = stop();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("links/.b.{KEYID8}.link-unfinished"))
            && err.contains("a second unfinished link for step b, besides")
            && err.contains(&format!(" .b.{KEYID8}.link-unfinished")),
        "{err}"
    );
}

#[test]
fn issue13_record_start_and_stop_interoperate_with_the_reference() {
    let reference = Reference::get();
    let dir = tempdir();
    let d = dir.path();
    private_copy("ed25519", d);
    fs::write(d.join("src"), "source").expect("write");
    fs::write(d.join("out"), "binary").expect("write");
    let reference_record = |stage: &str, args: &[&str]| {
        let out = run(reference
            .tool("in-toto-record")
            .current_dir(d)
            .arg(stage)
            .args(["--signing-key", "ed25519.pem"])
            .args(args));
        assert_eq!(code(&out), 0, "in-toto-record {stage}: {}", stderr(&out));
    };
    let tollgate_record = |stage: &str, args: &[&str]| {
        let out = in_dir(
            d,
            &[&["record", stage, "--signing-key", "ed25519.pem"], args].concat(),
        );
        assert_eq!(code(&out), 0, "tollgate record {stage}: {}", stderr(&out));
    };
    // The reference starts, Tollgate stops.
    reference_record("start", &["-n", "one", "-m", "src"]);
    tollgate_record("stop", &["-n", "one", "-p", "out", "-d", "links"]);
    // Tollgate starts, the reference stops.
    tollgate_record("start", &["-n", "two", "-m", "src"]);
    reference_record("stop", &["-n", "two", "-p", "out", "-d", "links"]);
    assert_eq!(
        names(&d.join("links")),
        BTreeSet::from([format!("one.{KEYID8}.link"), format!("two.{KEYID8}.link")])
    );
    assert!(
        !names(d).iter().any(|n| n.ends_with(".link-unfinished")),
        "{:?}",
        names(d)
    );
    for step in ["one", "two"] {
        let link = d.join(format!("links/{step}.{KEYID8}.link"));
        let out = run(tollgate()
            .args(["sign", "--verify"])
            .arg(&link)
            .arg("-k")
            .arg(example_key("ed25519", "pub")));
        assert_eq!(code(&out), 0, "{step}: {}", stderr(&out));
        let link = payload(&link);
        assert_eq!(link["name"], step);
        assert_eq!(link["materials"]["src"]["sha256"], sha256_hex(b"source"));
        assert_eq!(link["products"]["out"]["sha256"], sha256_hex(b"binary"));
    }
}

// ---------------------------------------------------------------------------------------------
// Item 2: every flag of the reference's five commands.

/// One option line of an argparse `--help`: its spellings and whether it takes a value.
#[derive(Debug, Clone)]
struct RefOption {
    spellings: Vec<String>,
    arity: Arity,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Arity {
    None,
    Optional,
    Required,
}

/// The options that an argparse `--help` lists: lines `  -x <v>, --xx <v>   description`.
fn parse_help(help: &str) -> Vec<RefOption> {
    let mut options = Vec::new();
    for line in help.lines() {
        let Some(rest) = line.strip_prefix("  ") else {
            continue;
        };
        if !rest.starts_with('-') {
            continue;
        }
        let head = rest.split("  ").next().unwrap_or(rest).trim_end();
        let mut spellings = Vec::new();
        let mut arity = Arity::None;
        for part in head.split(", ") {
            let mut tokens = part.splitn(2, ' ');
            let flag = tokens.next().expect("a flag").to_owned();
            assert!(flag.starts_with('-'), "cannot read {line:?}");
            arity = match tokens.next() {
                None => Arity::None,
                Some(meta) if meta.starts_with('[') => Arity::Optional,
                Some(_) => Arity::Required,
            };
            spellings.push(flag);
        }
        options.push(RefOption { spellings, arity });
    }
    options
}

fn reference_help(reference: &Reference, tool: &str, sub: Option<&str>) -> Vec<RefOption> {
    let mut command = reference.tool(tool);
    command.env("COLUMNS", "80");
    if let Some(sub) = sub {
        command.arg(sub);
    }
    let out = run(command.arg("--help"));
    assert_eq!(code(&out), 0, "{tool} --help: {}", stderr(&out));
    let options = parse_help(&stdout(&out));
    assert!(options.len() >= 2, "{tool}: {}", stdout(&out));
    options
}

/// Whether `text` holds `flag` as a whole word (not as a part of a longer flag).
fn has_flag(text: &str, flag: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices(flag).any(|(at, _)| {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(at + flag.len()).copied();
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// Flags (by the reference's spelling) and their values.
type Baseline = Vec<(&'static str, Vec<String>)>;

/// A reference command, the Tollgate command it maps to, and how to exercise it.
struct Walk {
    tool: &'static str,
    sub: Option<&'static str>,
    tollgate: &'static [&'static str],
    /// Prepares a fresh folder; returns the baseline arguments, by the reference's spellings.
    setup: fn(&Path) -> Baseline,
    /// The value to give a flag (by its longest spelling), for flags that take one.
    value: fn(&str) -> Option<&'static str>,
}

fn walks() -> Vec<Walk> {
    fn key_and_src(d: &Path) {
        private_copy("ed25519", d);
        fs::write(d.join("src"), "source").expect("write");
    }
    fn recording_value(flag: &str) -> Option<&'static str> {
        Some(match flag {
            "--step-name" => "build",
            "--signing-key" => "ed25519.pem",
            "--materials" | "--products" => "src",
            "--password" => "secret",
            "--gpg" => "8465A1E2E0FB2B40ADB2478E18FB3F537E0C8A17",
            "--gpg-home" => "gnupg",
            "--exclude" => "*.tmp",
            "--base-path" => ".",
            "--lstrip-paths" => "nothing/",
            "--metadata-directory" => "links",
            "--run-timeout" => "30",
            _ => return None,
        })
    }
    vec![
        Walk {
            tool: "in-toto-run",
            sub: None,
            tollgate: &["run"],
            setup: |d| {
                key_and_src(d);
                vec![
                    ("--step-name", vec!["build".into()]),
                    ("--signing-key", vec!["ed25519.pem".into()]),
                    ("--no-command", vec![]),
                ]
            },
            value: recording_value,
        },
        Walk {
            tool: "in-toto-record",
            sub: None,
            tollgate: &["record"],
            setup: |_| vec![],
            value: |_| None,
        },
        Walk {
            tool: "in-toto-record",
            sub: Some("start"),
            tollgate: &["record", "start"],
            setup: |d| {
                key_and_src(d);
                vec![
                    ("--step-name", vec!["build".into()]),
                    ("--signing-key", vec!["ed25519.pem".into()]),
                ]
            },
            value: recording_value,
        },
        Walk {
            tool: "in-toto-record",
            sub: Some("stop"),
            tollgate: &["record", "stop"],
            setup: |d| {
                key_and_src(d);
                let out = in_dir(
                    d,
                    &[
                        "record",
                        "start",
                        "-n",
                        "build",
                        "-k",
                        "ed25519.pem",
                        "-m",
                        "src",
                    ],
                );
                assert_eq!(code(&out), 0, "{}", stderr(&out));
                vec![
                    ("--step-name", vec!["build".into()]),
                    ("--signing-key", vec!["ed25519.pem".into()]),
                ]
            },
            value: recording_value,
        },
        Walk {
            tool: "in-toto-verify",
            sub: None,
            tollgate: &["verify"],
            setup: |d| {
                let t = test_layout(
                    d,
                    "expires = \"30d\"\n[[step]]\nname = \"build\"\nfunctionaries = \
                     [\"keys/alice.pub\"]\nexpected_products = [\"ALLOW *\"]\n",
                );
                let out = run(tollgate()
                    .current_dir(d)
                    .args(["run", "-n", "build", "-x", "-d", "links", "-k"])
                    .arg(&t.alice));
                assert_eq!(code(&out), 0, "{}", stderr(&out));
                vec![
                    ("--layout", vec!["root.layout".into()]),
                    ("--verification-keys", vec!["keys/owner.pub".into()]),
                    ("--link-dir", vec!["links".into()]),
                ]
            },
            value: |flag| {
                Some(match flag {
                    "--layout" => "root.layout",
                    "--verification-keys" => "keys/owner.pub",
                    "--gpg" => "8465A1E2E0FB2B40ADB2478E18FB3F537E0C8A17",
                    "--gpg-home" => "gnupg",
                    "--link-dir" => "links",
                    "--inspection-timeout" => "20",
                    _ => return None,
                })
            },
        },
        Walk {
            tool: "in-toto-sign",
            sub: None,
            tollgate: &["sign"],
            setup: |d| {
                private_copy("ed25519", d);
                private_copy("bob-ed25519", d);
                fs::copy(example_key("bob-ed25519", "pub"), d.join("bob.pub")).expect("copy");
                fs::write(
                    d.join("root.layout"),
                    serde_json::to_vec(&bare_layout("walk")).expect("json"),
                )
                .expect("write");
                // Signed by bob: the walk signs with another key, appends, or checks bob's.
                let out = in_dir(d, &["sign", "root.layout", "-k", "bob-ed25519.pem"]);
                assert_eq!(code(&out), 0, "{}", stderr(&out));
                vec![
                    ("--file", vec!["root.layout".into()]),
                    ("--key", vec!["ed25519.pem".into()]),
                ]
            },
            value: |flag| {
                Some(match flag {
                    "--file" => "root.layout",
                    "--key" => "ed25519.pem",
                    "--gpg" => "8465A1E2E0FB2B40ADB2478E18FB3F537E0C8A17",
                    "--gpg-home" => "gnupg",
                    "--output" => "signed.layout",
                    _ => return None,
                })
            },
        },
        Walk {
            tool: "in-toto-match-products",
            sub: None,
            tollgate: &["match-products"],
            setup: |d| {
                key_and_src(d);
                let out = in_dir(
                    d,
                    &["run", "-n", "build", "-k", "ed25519.pem", "-p", "src", "-x"],
                );
                assert_eq!(code(&out), 0, "{}", stderr(&out));
                vec![
                    ("--link", vec![format!("build.{KEYID8}.link")]),
                    ("--paths", vec!["src".into()]),
                ]
            },
            value: |flag| {
                Some(match flag {
                    "--link" => "build.63273c36.link",
                    "--paths" => "src",
                    "--exclude" => "*.tmp",
                    "--lstrip-paths" => "nothing/",
                    _ => return None,
                })
            },
        },
    ]
}

/// The reference's GPG options, which Tollgate refuses (PEM keys only).
const REFUSED: [&str; 3] = ["-g", "--gpg", "--gpg-home"];

#[test]
fn issue13_every_flag_of_the_reference_commands_is_accepted_or_refused_with_what_to_use() {
    let reference = Reference::get();
    let mut tried = 0;
    for walk in walks() {
        let what = format!("{} {}", walk.tool, walk.sub.unwrap_or(""))
            .trim()
            .to_owned();
        let options = reference_help(reference, walk.tool, walk.sub);
        let help = {
            let out = run(tollgate().args(walk.tollgate).arg("--help"));
            assert_eq!(code(&out), 0, "{}", stderr(&out));
            stdout(&out)
        };
        for option in &options {
            let longest = option
                .spellings
                .iter()
                .max_by_key(|s| s.len())
                .expect("a spelling")
                .clone();
            for spelling in &option.spellings {
                // `--help` shows every spelling, so a migrating user can look it up there.
                assert!(
                    has_flag(&help, spelling),
                    "tollgate {} --help does not mention {what}'s {spelling}:\n{help}",
                    walk.tollgate.join(" ")
                );
                let values: Vec<Option<&str>> = match option.arity {
                    Arity::None => vec![None],
                    Arity::Optional => vec![None, (walk.value)(&longest)],
                    Arity::Required => vec![(walk.value)(&longest)],
                };
                for value in values {
                    if option.arity != Arity::None
                        && value.is_none()
                        && option.arity == Arity::Required
                    {
                        panic!("{what}'s {spelling} takes a value this test does not know");
                    }
                    let dir = tempdir();
                    let d = dir.path();
                    let mut baseline = (walk.setup)(d);
                    if spelling == "--verify" {
                        // Checking signatures takes the public key.
                        baseline.retain(|(flag, _)| *flag != "--key");
                        baseline.push(("--key", vec!["bob.pub".into()]));
                    }
                    let mut args: Vec<String> =
                        walk.tollgate.iter().map(|s| (*s).to_owned()).collect();
                    let mut replaced = false;
                    for (flag, values) in &baseline {
                        if option.spellings.iter().any(|s| s == flag) {
                            replaced = true;
                            args.push(spelling.clone());
                            args.extend(value.map(str::to_owned));
                        } else {
                            args.push((*flag).to_owned());
                            args.extend(values.iter().cloned());
                        }
                    }
                    if !replaced {
                        args.push(spelling.clone());
                        args.extend(value.map(str::to_owned));
                    }
                    let out = run(Command::new(env!("CARGO_BIN_EXE_tollgate"))
                        .current_dir(d)
                        .args(&args));
                    tried += 1;
                    let (out_text, err) = (stdout(&out), stderr(&out));
                    let shown = format!("{what}'s {spelling}: tollgate {args:?}\n{out_text}{err}");
                    assert!(!err.contains("unexpected argument"), "{shown}");
                    if REFUSED.contains(&spelling.as_str()) {
                        assert_eq!(code(&out), 2, "{shown}");
                        assert!(
                            err.contains("GPG keys are not supported; use ") && err.contains("PEM"),
                            "{shown}"
                        );
                    } else {
                        assert_eq!(code(&out), 0, "{shown}");
                    }
                    if spelling == "--version" {
                        assert!(out_text.contains(env!("CARGO_PKG_VERSION")), "{shown}");
                    }
                }
            }
        }
    }
    assert!(tried > 80, "only {tried} flags tried");
}

/// README's table of in-toto flag equivalences lists every flag of the five reference
/// commands, in a row for its command.
#[test]
fn issue13_readme_lists_every_flag_of_the_reference_commands() {
    let reference = Reference::get();
    let readme = fs::read_to_string(repo().join("README.md")).expect("read README");
    let section = readme
        .split("## Coming from in-toto")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has a section \"Coming from in-toto...\"");
    for walk in walks() {
        let options = reference_help(reference, walk.tool, walk.sub);
        let rows: Vec<&str> = section
            .lines()
            .filter(|line| {
                let first = line.split('|').nth(1).unwrap_or("");
                has_flag(first, walk.tool) && walk.sub.is_none_or(|sub| first.contains(sub))
            })
            .collect();
        let flags: String = rows
            .iter()
            .filter_map(|row| row.split('|').nth(2))
            .collect::<Vec<_>>()
            .join(" ");
        for option in options {
            for spelling in &option.spellings {
                assert!(
                    has_flag(&flags, spelling),
                    "README's table has no row for {} {}'s {spelling}",
                    walk.tool,
                    walk.sub.unwrap_or("")
                );
            }
        }
    }
}

#[test]
fn issue13_password_takes_a_value_or_prompts_as_in_in_toto_run() {
    let dir = tempdir();
    let d = dir.path();
    let out = run(tollgate()
        .current_dir(d)
        .args(["keygen", "-o", "enc", "--password-env", "KEY_PASSWORD"])
        .env("KEY_PASSWORD", "s3cret"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for (n, flag) in ["-P", "--password"].iter().enumerate() {
        let step = format!("s{n}");
        let out = in_dir(
            d,
            &[
                "run",
                "-n",
                &step,
                "--signing-key",
                "enc",
                flag,
                "s3cret",
                "-x",
            ],
        );
        assert_eq!(code(&out), 0, "{flag}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("visible to other users"),
            "{}",
            stderr(&out)
        );
    }
    let out = in_dir(
        d,
        &[
            "run",
            "-n",
            "bad",
            "--signing-key",
            "enc",
            "-P",
            "wrong",
            "-x",
        ],
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot decrypt the private key"),
        "{}",
        stderr(&out)
    );
    // Tollgate's own --prompt takes no value: the word after it stays what it was (here the
    // file to sign), and with no terminal to ask on, it says which flags to use instead.
    // (setsid: no controlling terminal, even when the tests run in one.)
    let out = run(std::process::Command::new("setsid")
        .arg(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(d)
        .args(["sign", "--prompt", "enc.pub", "--key", "enc"])
        .stdin(std::process::Stdio::null()));
    let text = stderr(&out);
    assert_eq!(code(&out), 2, "{text}");
    assert!(!text.contains("required arguments"), "{text}");
    assert!(text.contains("cannot ask for a password"), "{text}");
    assert!(
        text.contains("--password-file FILE or --password-env VAR"),
        "{text}"
    );
}

#[test]
fn issue13_gpg_is_refused_naming_the_pem_option_even_without_a_pem_key() {
    let dir = tempdir();
    let d = dir.path();
    let cases: [(&[&str], &str); 4] = [
        (&["run", "-n", "b", "--gpg", "--", "true"], "--signing-key"),
        (
            &["record", "start", "-n", "b", "-g", "ABCD"],
            "--signing-key",
        ),
        (
            &["verify", "-l", "root.layout", "--gpg", "ABCD"],
            "--verification-keys",
        ),
        (&["sign", "-f", "root.layout", "--gpg-home", "x"], "--key"),
    ];
    for (args, instead) in cases {
        let out = in_dir(d, args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("GPG keys are not supported; use ") && err.contains(instead),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn issue13_quiet_verify_prints_nothing_and_keeps_the_exit_code() {
    let dir = tempdir();
    let d = dir.path();
    let t = test_layout(
        d,
        "expires = \"30d\"\n[[step]]\nname = \"build\"\nfunctionaries = [\"keys/alice.pub\"]\n",
    );
    let verify = |quiet: bool| {
        let mut command = tollgate();
        command
            .current_dir(d)
            .args([
                "verify",
                "-l",
                "root.layout",
                "--verification-keys",
                "keys/owner.pub",
            ])
            .args(["--link-dir", "links"]);
        if quiet {
            command.arg("-q");
        }
        run(&mut command)
    };
    // An empty link folder: the step has no link, so verification fails (1), silently.
    std::fs::create_dir(d.join("links")).expect("mkdir links");
    let out = verify(true);
    assert_eq!(code(&out), 1);
    assert_eq!((stdout(&out), stderr(&out)), (String::new(), String::new()));
    let out = run(tollgate()
        .current_dir(d)
        .args(["run", "-n", "build", "-x", "-d", "links", "-k"])
        .arg(&t.alice));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = verify(true);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let out = verify(false);
    assert!(stdout(&out).contains("verified"), "{}", stdout(&out));
}

#[test]
fn issue13_older_in_toto_spellings_key_type_and_layout_keys_still_work() {
    let dir = tempdir();
    let d = dir.path();
    let t = test_layout(
        d,
        "expires = \"30d\"\n[[step]]\nname = \"build\"\nfunctionaries = [\"keys/alice.pub\"]\n",
    );
    let out = run(tollgate()
        .current_dir(d)
        .args([
            "run", "-n", "build", "-t", "ed25519", "-x", "-d", "links", "-k",
        ])
        .arg(&t.alice));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("note: --key-type is ignored: Tollgate reads the key type from the key file"),
        "{}",
        stderr(&out)
    );
    let out = in_dir(
        d,
        &[
            "verify",
            "--layout",
            "root.layout",
            "--layout-keys",
            "keys/owner.pub",
            "--key-type",
            "ed25519",
            "--link-dir",
            "links",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--key-type is ignored"),
        "{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// Item 4: a retried step.

#[test]
fn issue13_a_retried_step_is_told_exactly_what_to_pass() {
    let dir = tempdir();
    let d = dir.path();
    private_copy("ed25519", d);
    fs::write(d.join("out"), "first").expect("write");
    let step = |extra: &[&str]| {
        in_dir(
            d,
            &[
                &["run", "-n", "build", "-k", "ed25519.pem", "-p", "out", "-x"],
                extra,
            ]
            .concat(),
        )
    };
    assert_eq!(code(&step(&[])), 0);
    fs::write(d.join("out"), "second").expect("write");
    let out = step(&[]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("build.{KEYID8}.link: already exists"))
            && err.contains("recorded here before with this key (a retried job?)")
            && err.contains("pass --overwrite to replace the link, as in-toto-run does"),
        "{err}"
    );
    // The first link is untouched; with --overwrite the retry replaces it.
    let link = d.join(format!("build.{KEYID8}.link"));
    assert_eq!(
        payload(&link)["products"]["out"]["sha256"],
        sha256_hex(b"first")
    );
    let out = step(&["--overwrite"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        payload(&link)["products"]["out"]["sha256"],
        sha256_hex(b"second")
    );
}

// ---------------------------------------------------------------------------------------------
// Item 10: content before permissions.

#[test]
fn issue13_a_public_key_as_signing_key_is_told_so_before_its_mode() {
    let dir = tempdir();
    let d = dir.path();
    let public = d.join("alice.pub");
    fs::copy(example_key("ed25519", "pub"), &public).expect("copy");
    set_mode(&public, 0o644);
    fs::write(
        d.join("root.layout"),
        serde_json::to_vec(&bare_layout("x")).expect("json"),
    )
    .expect("write");
    for args in [
        &["run", "-n", "b", "--signing-key", "alice.pub", "-x"][..],
        &["sign", "root.layout", "-k", "alice.pub"][..],
    ] {
        let out = in_dir(d, args);
        assert_eq!(code(&out), 2, "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("alice.pub: the file holds a \"PUBLIC KEY\" block")
                && err.contains("this is a public key: pass the private key file"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("chmod"), "{args:?}: {err}");
    }
    // A private key others can read is still refused, with the chmod hint.
    let key = private_copy("ed25519", d);
    set_mode(&key, 0o644);
    let out = in_dir(d, &["run", "-n", "b", "--signing-key", "ed25519.pem", "-x"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------------------------
// Item 12 (part): the command written without `--`.

#[test]
fn issue13_a_command_without_double_dash_is_pointed_at_double_dash() {
    let dir = tempdir();
    let d = dir.path();
    private_copy("ed25519", d);
    fs::write(d.join("src"), "source").expect("write");
    let base = ["run", "-n", "build", "-k", "ed25519.pem"];
    // Taken as materials: `-m` reads every word up to the next flag.
    let out = in_dir(
        d,
        &[&base[..], &["-m", "src", "tar", "czf", "out.tgz", "src"]].concat(),
    );
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains(
            "no command given: `tar czf out.tgz src` was read as material paths (-m takes every \
             word up to the next flag)"
        ) && err.contains("put the command after `--`: ... -m src -- tar czf out.tgz src"),
        "{err}"
    );
    // Taken as products, the product itself not there yet.
    let out = in_dir(
        d,
        &[
            &base[..],
            &["-p", "out.tgz", "tar", "czf", "out.tgz", "src"],
        ]
        .concat(),
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("put the command after `--`: ... -p out.tgz -- tar czf out.tgz src"),
        "{}",
        stderr(&out)
    );
    // With an option of its own, clap stops at the option: still pointed at `--`.
    let out = in_dir(
        d,
        &[&base[..], &["-m", "src", "tar", "-czf", "out.tgz", "src"]].concat(),
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains(
            "hint: if `tar -czf out.tgz src` is the command to record, put `--` before it: \
             tollgate run [OPTIONS] -- tar -czf out.tgz src"
        ),
        "{}",
        stderr(&out)
    );
    // Straight after the options.
    let out = in_dir(d, &[&base[..], &["tar", "czf", "out.tgz", "src"]].concat());
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("put `--` before it: tollgate run [OPTIONS] -- tar czf out.tgz src"),
        "{}",
        stderr(&out)
    );
    assert!(!d.join(format!("build.{KEYID8}.link")).exists());
}
