//! Bundles: a layout and its links in one file, verified without unpacking, and every way a
//! bundle can be wrong (missing, extra, duplicated, edited or truncated contents).

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::common::{TestLayout, code, run, stderr, stdout, tempdir, test_layout, tollgate};

/// A kept demo (the release pipeline, recorded) and the tarball a buyer received.
fn demo(dir: &Path) -> PathBuf {
    let kept = dir.join("demo");
    let out = run(tollgate().args(["demo", "--keep"]).arg(&kept));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    kept
}

fn shipped(dir: &Path, kept: &Path, name: &str) -> PathBuf {
    let folder = dir.join(name);
    fs::create_dir_all(folder.join("dist")).expect("mkdir");
    for file in ["app.tar.gz", "app.tar.gz.sha256"] {
        fs::copy(
            kept.join("project/dist").join(file),
            folder.join("dist").join(file),
        )
        .expect("copy");
    }
    folder
}

fn create(kept: &Path, output: &Path) -> std::process::Output {
    run(tollgate()
        .args(["bundle", "create", "--layout"])
        .arg(kept.join("root.layout"))
        .arg("--link-dir")
        .arg(kept.join("links"))
        .arg("-o")
        .arg(output))
}

fn verify_bundle(bundle: &Path, owner: &Path, workdir: &Path) -> std::process::Output {
    run(tollgate()
        .args(["verify", "--bundle"])
        .arg(bundle)
        .arg("--layout-key")
        .arg(owner)
        .arg("--workdir")
        .arg(workdir))
}

fn edit(bundle: &Path, change: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut value: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle).expect("read")).expect("json");
    change(&mut value);
    let edited = bundle.with_file_name("edited.bundle.json");
    fs::write(&edited, serde_json::to_vec(&value).expect("json")).expect("write");
    edited
}

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[test]
fn a_bundle_verifies_without_unpacking_and_still_catches_a_swapped_product() {
    let dir = tempdir();
    let kept = demo(dir.path());
    let bundle = dir.path().join("release.bundle.json");
    let out = create(&kept, &bundle);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Six links and the scanner's SBOM attestation, which bundles carry as they carry links.
    assert!(
        stderr(&out).contains("the layout and 7 link(s)"),
        "{}",
        stderr(&out)
    );

    let out = run(tollgate().args(["bundle", "list"]).arg(&bundle));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let listing = stdout(&out);
    for name in [
        "root.layout",
        "build.3d95a2f0.link",
        "review.61dbe027.link",
        "sign.077f9619.link",
    ] {
        assert!(listing.contains(&format!("{name}  ")), "{listing}");
    }

    let owner = kept.join("owner.pub");
    let out = verify_bundle(&bundle, &owner, &shipped(dir.path(), &kept, "buyer"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("release.bundle.json: verified: 5 step(s)"));

    // The buyer's tarball (and its checksum) are the attacker's: the bundle's links say so.
    let swapped = shipped(dir.path(), &kept, "swapped");
    for file in ["app.tar.gz", "app.tar.gz.sha256"] {
        fs::copy(
            kept.join("buyer-tampered/dist").join(file),
            swapped.join("dist").join(file),
        )
        .expect("copy");
    }
    let out = verify_bundle(&bundle, &owner, &swapped);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("inspection unpack, expected_materials rule 2 (DISALLOW *)"),
        "{}",
        stderr(&out)
    );

    // Only the owner's key counts: another key does not make the bundle pass.
    let out = verify_bundle(
        &bundle,
        &crate::common::example_key("alice", "pub"),
        &shipped(dir.path(), &kept, "other-key"),
    );
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("layout signature"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bundle_missing_a_link_or_holding_an_extra_duplicated_edited_or_cut_one_fails() {
    let dir = tempdir();
    let kept = demo(dir.path());
    let bundle = dir.path().join("release.bundle.json");
    let out = create(&kept, &bundle);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let owner = kept.join("owner.pub");
    let mut n = 0;
    let mut check = |bundle: &Path, code_wanted: i32, message: &str| {
        n += 1;
        let out = verify_bundle(
            bundle,
            &owner,
            &shipped(dir.path(), &kept, &format!("b{n}")),
        );
        assert_eq!(code(&out), code_wanted, "{message}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(message),
            "{message}: {}",
            stderr(&out)
        );
        assert!(!stdout(&out).contains("verified"), "{message}");
    };

    // A link left out (with its manifest entry): the step's threshold is not met.
    let missing = edit(&bundle, |b| {
        b["links"]
            .as_object_mut()
            .expect("links")
            .remove("scan.4f172783.link");
        b["manifest"]
            .as_object_mut()
            .expect("manifest")
            .remove("scan.4f172783.link");
    });
    check(
        &missing,
        1,
        "step scan: 0 of 1 required functionaries signed a link (no link found in the bundle); it \
         accepts links signed by key 4f172783",
    );

    // An extra link the layout does not use, manifest and all.
    let extra = edit(&bundle, |b| {
        let text = b["links"]["scan.4f172783.link"]
            .as_str()
            .expect("text")
            .to_owned();
        b["manifest"]["stray.4f172783.link"] = sha(&text).into();
        b["links"]["stray.4f172783.link"] = text.into();
    });
    check(
        &extra,
        2,
        "holds a link the layout does not use: stray.4f172783.link",
    );

    // A link's text edited, manifest unchanged: damaged.
    let damaged = edit(&bundle, |b| {
        let text = b["links"]["build.3d95a2f0.link"].as_str().expect("text");
        b["links"]["build.3d95a2f0.link"] = text.replacen("tar", "taz", 1).into();
    });
    check(
        &damaged,
        2,
        "build.3d95a2f0.link: its text does not match the bundle's manifest",
    );

    // The same edit with the manifest updated: the manifest authenticates nothing, the
    // functionary's signature does.
    let forged = edit(&bundle, |b| {
        let text = b["links"]["build.3d95a2f0.link"]
            .as_str()
            .expect("text")
            .replacen("\"tar\"", "\"taz\"", 1);
        b["manifest"]["build.3d95a2f0.link"] = sha(&text).into();
        b["links"]["build.3d95a2f0.link"] = text.into();
    });
    check(
        &forged,
        1,
        "step build: 0 of 1 required functionaries signed a link",
    );

    // A name twice (the JSON object holds a duplicate key).
    let text = fs::read_to_string(&bundle).expect("read");
    let entry_start = text.find("\"build.3d95a2f0.link\": \"").expect("entry");
    let entry_end = entry_start + text[entry_start..].find("\",\n").expect("end") + 3;
    let duplicated = format!(
        "{}{}{}",
        &text[..entry_end],
        &text[entry_start..entry_end],
        &text[entry_end..]
    );
    let path = dir.path().join("duplicated.bundle.json");
    fs::write(&path, duplicated).expect("write");
    check(&path, 2, "not a valid bundle: duplicate");

    // Cut short in transit.
    let path = dir.path().join("cut.bundle.json");
    fs::write(&path, &text.as_bytes()[..text.len() / 2]).expect("write");
    check(&path, 2, "not a valid bundle");
}

#[test]
fn a_bundle_carries_a_sublayout_and_its_links() {
    let dir = tempdir();
    // The root: one step, build, performed by alice, who delegates it to a sublayout.
    let TestLayout {
        layout,
        owner_pub,
        alice,
    } = test_layout(
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
    fs::create_dir_all(&inner).expect("mkdir");
    // The sublayout, signed by alice, saved where the root's build link goes; its one step
    // "compile" (also alice) produces out.txt.
    record_sublayout(
        dir.path(),
        &alice,
        "keys/alice.pub",
        &links.join(format!("build.{keyid}.link")),
        &inner,
    );

    // From the folder, then from a bundle made of it.
    let out = run(tollgate()
        .args(["verify", "--layout"])
        .arg(&layout)
        .arg("--layout-key")
        .arg(&owner_pub)
        .arg("--link-dir")
        .arg(&links));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let bundle = dir.path().join("sub.bundle.json");
    let out = run(tollgate()
        .args(["bundle", "create", "--layout"])
        .arg(&layout)
        .arg("--link-dir")
        .arg(&links)
        .arg("-o")
        .arg(&bundle));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let value: serde_json::Value =
        serde_json::from_slice(&fs::read(&bundle).expect("read")).expect("json");
    let names: Vec<&String> = value["links"].as_object().expect("links").keys().collect();
    assert_eq!(
        names,
        [
            &format!("build.{keyid}.link"),
            &format!("build.{keyid}/compile.{keyid}.link")
        ]
    );
    let out = run(tollgate()
        .args(["verify", "--bundle"])
        .arg(&bundle)
        .arg("--layout-key")
        .arg(&owner_pub));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Without the sublayout's own link, the sublayout fails, and so the root.
    let missing = edit(&bundle, |b| {
        let name = format!("build.{keyid}/compile.{keyid}.link");
        b["links"].as_object_mut().expect("links").remove(&name);
        b["manifest"]
            .as_object_mut()
            .expect("manifest")
            .remove(&name);
    });
    let out = run(tollgate()
        .args(["verify", "--bundle"])
        .arg(&missing)
        .arg("--layout-key")
        .arg(&owner_pub));
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("its sublayout failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn issue13_bundle_create_warns_for_every_step_short_of_its_threshold_and_strict_refuses() {
    let dir = tempdir();
    let kept = demo(dir.path());
    let links = dir.path().join("links2");
    fs::create_dir_all(&links).expect("mkdir");
    for entry in fs::read_dir(kept.join("links")).expect("links") {
        let entry = entry.expect("entry");
        fs::copy(entry.path(), links.join(entry.file_name())).expect("copy");
    }
    // The build link signed with the wrong CI secret (alice's key, which build does not
    // accept), and the scan link missing.
    let alice = crate::common::private_copy("alice", dir.path());
    let out = run(tollgate()
        .arg("sign")
        .arg(links.join("build.3d95a2f0.link"))
        .arg("--key")
        .arg(&alice));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let alice8 = {
        let out = run(tollgate()
            .args(["key", "id"])
            .arg(crate::common::example_key("alice", "pub")));
        stdout(&out).trim()[..8].to_owned()
    };
    assert!(links.join(format!("build.{alice8}.link")).is_file());
    fs::remove_file(links.join("build.3d95a2f0.link")).expect("remove");
    fs::remove_file(links.join("scan.4f172783.link")).expect("remove");

    let create_from = |extra: &[&str], output: &Path| {
        run(tollgate()
            .args(["bundle", "create", "--layout"])
            .arg(kept.join("root.layout"))
            .arg("--link-dir")
            .arg(&links)
            .arg("-o")
            .arg(output)
            .args(extra))
    };
    let bundle = dir.path().join("release.bundle.json");
    let out = create_from(&[], &bundle);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains(&format!(
            "warning: step build: 0 of 1 required link(s) by distinct keys it accepts (3d95a2f0) \
             are in {}; ignored build.{alice8}.link: signed by {alice8}, a key step build does \
             not accept (left out); the buyer's verification will fail at this step",
            links.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "warning: step scan: 0 of 1 required link(s) by distinct keys it accepts (4f172783) \
             are in {}; no other link file for it was found",
            links.display()
        )),
        "{text}"
    );
    // Steps whose links are all there are not mentioned.
    for step in ["review", "source", "sign"] {
        assert!(!text.contains(&format!("step {step}:")), "{text}");
    }
    assert!(bundle.is_file());

    let strict = dir.path().join("strict.bundle.json");
    let out = create_from(&["--strict"], &strict);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("error: step build: 0 of 1")
            && stderr(&out).contains("2 step(s) short of their threshold; ")
            && stderr(&out).contains("not written (--strict)"),
        "{}",
        stderr(&out)
    );
    assert!(!strict.exists());

    // A folder that is not there is a typo, not a bundle without links.
    let out = run(tollgate()
        .args(["bundle", "create", "--layout"])
        .arg(kept.join("root.layout"))
        .arg("--link-dir")
        .arg(dir.path().join("no-such-links"))
        .arg("-o")
        .arg(&strict));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "--link-dir: the folder {} does not exist",
            dir.path().join("no-such-links").display()
        )),
        "{}",
        stderr(&out)
    );
    assert!(!strict.exists());

    // With every link there, --strict writes the bundle, silently.
    let complete = dir.path().join("complete.bundle.json");
    let out = run(tollgate()
        .args(["bundle", "create", "--strict", "--layout"])
        .arg(kept.join("root.layout"))
        .arg("--link-dir")
        .arg(kept.join("links"))
        .arg("-o")
        .arg(&complete));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(complete.is_file());
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

#[test]
fn issue14_a_sublayout_named_for_one_key_but_signed_by_another_is_packed_where_verify_reads() {
    let dir = tempdir();
    let keys = dir.path().join("keys");
    fs::create_dir_all(&keys).expect("mkdir");
    let out = run(tollgate().args(["keygen", "-o"]).arg(keys.join("bob")));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let bob = keys.join("bob");
    // The root: build accepts alice and bob, one of them is enough.
    let TestLayout {
        layout, owner_pub, ..
    } = test_layout(
        dir.path(),
        r#"
expires = "30d"
[[step]]
name = "build"
functionaries = ["keys/alice.pub", "keys/bob.pub"]
threshold = 1
expected_materials = ["DISALLOW *"]
expected_products = ["CREATE out.txt", "DISALLOW *"]
"#,
    );
    let keyid8 = |name: &str| {
        let out = run(tollgate()
            .args(["key", "id"])
            .arg(keys.join(format!("{name}.pub"))));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stdout(&out).trim()[..8].to_owned()
    };
    let (alice8, bob8) = (keyid8("alice"), keyid8("bob"));
    // The sublayout, signed by bob but saved under alice's name: the file name is only a hint,
    // so verification counts it for bob and reads its links in build.BOB8/, not build.ALICE8/.
    let links = dir.path().join("links");
    let inner = links.join(format!("build.{bob8}"));
    fs::create_dir_all(&inner).expect("mkdir");
    record_sublayout(
        dir.path(),
        &bob,
        "keys/bob.pub",
        &links.join(format!("build.{alice8}.link")),
        &inner,
    );

    let from_folder = run(tollgate()
        .args(["verify", "--layout"])
        .arg(&layout)
        .arg("--layout-key")
        .arg(&owner_pub)
        .arg("--link-dir")
        .arg(&links));
    assert_eq!(code(&from_folder), 0, "{}", stderr(&from_folder));
    let bundle = dir.path().join("sub.bundle.json");
    let out = run(tollgate()
        .args(["bundle", "create", "--layout"])
        .arg(&layout)
        .arg("--link-dir")
        .arg(&links)
        .arg("-o")
        .arg(&bundle));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let value: serde_json::Value =
        serde_json::from_slice(&fs::read(&bundle).expect("read")).expect("json");
    let names: std::collections::BTreeSet<&str> = value["links"]
        .as_object()
        .expect("links")
        .keys()
        .map(String::as_str)
        .collect();
    let expected = [
        format!("build.{alice8}.link"),
        format!("build.{bob8}/compile.{bob8}.link"),
    ];
    assert_eq!(names, expected.iter().map(String::as_str).collect());
    // The same verdict from the bundle as from the folder.
    let from_bundle = run(tollgate()
        .args(["verify", "--bundle"])
        .arg(&bundle)
        .arg("--layout-key")
        .arg(&owner_pub));
    assert_eq!(
        code(&from_bundle),
        code(&from_folder),
        "{}",
        stderr(&from_bundle)
    );
}

/// Builds a one-step sublayout ("compile", performed by `signer_pub`, creating out.txt), signed
/// by `signer` and saved as `saved_as`, and records its compile link, signed by `signer`, into
/// `inner`.
fn record_sublayout(dir: &Path, signer: &Path, signer_pub: &str, saved_as: &Path, inner: &Path) {
    let sub_source = dir.join("sub.toml");
    fs::write(
        &sub_source,
        format!(
            "expires = \"30d\"\n[[step]]\nname = \"compile\"\nfunctionaries = [\"{signer_pub}\"]\n\
             expected_materials = [\"DISALLOW *\"]\n\
             expected_products = [\"CREATE out.txt\", \"DISALLOW *\"]\n"
        ),
    )
    .expect("write");
    let out = run(tollgate()
        .args(["layout", "build"])
        .arg(&sub_source)
        .arg("--key")
        .arg(signer)
        .arg("-o")
        .arg(saved_as));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let work = dir.join("work");
    fs::create_dir_all(&work).expect("mkdir");
    fs::write(work.join("out.txt"), "built").expect("write");
    let out = run(tollgate()
        .current_dir(&work)
        .args(["run", "-q", "--step", "compile", "--key"])
        .arg(signer)
        .args(["-p", "out.txt", "--no-command", "-d"])
        .arg(inner));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// Issue 14: verification reads sublayouts nested at most 4 deep, and `bundle create`
/// collected them 8 deep, packing links that verification never reads. Both now follow
/// `Limits::max_sublayout_depth`: a chain 4 deep is packed whole and verifies from the
/// bundle; one 5 deep is refused, and its bundle holds nothing below the 4th sublayout.
#[test]
fn issue14_a_bundle_holds_no_deeper_sublayout_chain_than_verification_reads() {
    for (levels, verifies) in [(4, true), (5, false)] {
        let dir = tempdir();
        let (test, links, keyid) = sublayout_chain(dir.path(), levels);
        let out = run(tollgate()
            .args(["verify", "--layout"])
            .arg(&test.layout)
            .arg("--layout-key")
            .arg(&test.owner_pub)
            .arg("--link-dir")
            .arg(&links));
        assert_eq!(code(&out) == 0, verifies, "{levels}: {}", stderr(&out));
        if !verifies {
            assert!(
                stderr(&out).contains("sublayouts nest deeper than 4"),
                "{}",
                stderr(&out)
            );
        }
        let bundle = dir.path().join("chain.bundle.json");
        let out = run(tollgate()
            .args(["bundle", "create", "--layout"])
            .arg(&test.layout)
            .arg("--link-dir")
            .arg(&links)
            .arg("-o")
            .arg(&bundle));
        assert_eq!(code(&out), 0, "{levels}: {}", stderr(&out));
        let value: serde_json::Value =
            serde_json::from_slice(&fs::read(&bundle).expect("read")).expect("json");
        let names: Vec<&String> = value["links"].as_object().expect("links").keys().collect();
        let folder = format!("build.{keyid}/");
        // Each level's sublayout, saved as the build link of the folder above it, and (only
        // when the chain is within the limit) the compile link at the bottom.
        let mut expected: Vec<String> = (0..levels)
            .map(|depth| format!("{}build.{keyid}.link", folder.repeat(depth)))
            .collect();
        if verifies {
            expected.push(format!("{}compile.{keyid}.link", folder.repeat(levels)));
        }
        expected.sort();
        let mut names: Vec<String> = names.into_iter().cloned().collect();
        names.sort();
        assert_eq!(names, expected, "{levels}");
        let out = run(tollgate()
            .args(["verify", "--bundle"])
            .arg(&bundle)
            .arg("--layout-key")
            .arg(&test.owner_pub));
        assert_eq!(code(&out) == 0, verifies, "{levels}: {}", stderr(&out));
    }
}

/// A root layout whose step build (alice) is a chain of `levels` sublayouts, each nested in
/// the one above: every level a one-step layout delegating build to alice again, the deepest
/// a step compile that alice records. Returns the layout, the link folder and alice's short
/// keyid.
fn sublayout_chain(dir: &Path, levels: usize) -> (TestLayout, PathBuf, String) {
    let test = test_layout(
        dir,
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
            .arg(dir.join("keys/alice.pub")));
        stdout(&out).trim()[..8].to_owned()
    };
    let links = dir.join("links");
    let mut folder = links.clone();
    for _ in 1..levels {
        fs::create_dir_all(&folder).expect("mkdir");
        let source = dir.join("delegate.toml");
        fs::write(
            &source,
            "expires = \"30d\"\n[[step]]\nname = \"build\"\nfunctionaries = [\"keys/alice.pub\"]\n\
             expected_materials = [\"DISALLOW *\"]\n\
             expected_products = [\"CREATE out.txt\", \"DISALLOW *\"]\n",
        )
        .expect("write");
        let out = run(tollgate()
            .current_dir(dir)
            .args(["layout", "build"])
            .arg(&source)
            .arg("--key")
            .arg(&test.alice)
            .arg("-o")
            .arg(folder.join(format!("build.{keyid}.link"))));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        folder = folder.join(format!("build.{keyid}"));
    }
    let inner = folder.join(format!("build.{keyid}"));
    fs::create_dir_all(&inner).expect("mkdir");
    record_sublayout(
        dir,
        &test.alice,
        "keys/alice.pub",
        &folder.join(format!("build.{keyid}.link")),
        &inner,
    );
    (test, links, keyid)
}
