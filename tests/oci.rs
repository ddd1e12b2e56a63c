//! `oci:` artifacts: container images as OCI layout folders and archives, built by the tests
//! byte by byte (blobs, manifest, index), recorded by their registry digests, checked blob by
//! blob, and tampering caught between steps.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::common::{
    TestLayout, code, private_copy, run, stderr, stdout, tempdir, test_layout, tollgate,
};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The configuration blob of the image `descriptor` names in `layout`, as JSON: what `skopeo
/// inspect --config` prints for it.
pub fn config_of(layout: &Path, descriptor: &serde_json::Value) -> serde_json::Value {
    let read = |digest: &serde_json::Value| -> serde_json::Value {
        let hex = digest
            .as_str()
            .expect("digest")
            .trim_start_matches("sha256:");
        serde_json::from_slice(&fs::read(layout.join("blobs/sha256").join(hex)).expect("blob"))
            .expect("json")
    };
    let manifest = read(&descriptor["digest"]);
    read(&manifest["config"]["digest"])
}

/// Writes a blob into `layout/blobs/sha256/` and returns its descriptor.
fn blob(layout: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    let hex = sha(bytes);
    let dir = layout.join("blobs/sha256");
    fs::create_dir_all(&dir).expect("mkdir");
    fs::write(dir.join(&hex), bytes).expect("write blob");
    json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len()})
}

/// A one-layer image whose layer holds `app` with `content`; returns the manifest descriptor.
pub fn image(layout: &Path, content: &str, arch: &str) -> serde_json::Value {
    image_as(layout, content, arch, None)
}

/// [`image`], whose configuration names `user` (`config.User`) when given.
pub fn image_as(layout: &Path, content: &str, arch: &str, user: Option<&str>) -> serde_json::Value {
    let mut layer = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    layer
        .append_data(&mut header, "app", content.as_bytes())
        .expect("layer");
    let layer = layer.into_inner().expect("layer bytes");
    let layer = blob(layout, "application/vnd.oci.image.layer.v1.tar", &layer);
    let mut config = json!({
        "architecture": arch, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
        "config": {"Entrypoint": ["/app"]},
    });
    if let Some(user) = user {
        config["config"]["User"] = json!(user);
    }
    let config = blob(
        layout,
        "application/vnd.oci.image.config.v1+json",
        &serde_json::to_vec(&config).expect("json"),
    );
    let manifest = json!({
        "schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": [layer],
    });
    let mut descriptor = blob(
        layout,
        MANIFEST,
        &serde_json::to_vec(&manifest).expect("json"),
    );
    descriptor["platform"] = json!({"os": "linux", "architecture": arch});
    descriptor
}

pub fn finish(layout: &Path, manifests: Vec<serde_json::Value>) {
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("write");
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests});
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).expect("json"),
    )
    .expect("write");
}

/// An OCI layout folder `dir/NAME` of one image, and the same as an archive `dir/NAME.tar`.
pub fn single(dir: &Path, name: &str, content: &str) -> (PathBuf, serde_json::Value) {
    single_as(dir, name, content, None)
}

/// [`single`], whose configuration names `user` when given.
pub fn single_as(
    dir: &Path,
    name: &str,
    content: &str,
    user: Option<&str>,
) -> (PathBuf, serde_json::Value) {
    let layout = dir.join(name);
    let descriptor = image_as(&layout, content, "amd64", user);
    let mut tagged = descriptor.clone();
    tagged["annotations"] = json!({"org.opencontainers.image.ref.name": "app:1.0"});
    finish(&layout, vec![tagged]);
    let mut archive = tar::Builder::new(Vec::new());
    archive.append_dir_all(".", &layout).expect("archive");
    fs::write(
        dir.join(format!("{name}.tar")),
        archive.into_inner().expect("bytes"),
    )
    .expect("write");
    (layout, descriptor)
}

fn record(dir: &Path, key: &Path, args: &[&str]) -> std::process::Output {
    run(tollgate()
        .current_dir(dir)
        .args(["run", "-q", "--step", "s", "--key"])
        .arg(key)
        .args(args)
        .args(["--no-command", "--overwrite", "-d", "links"]))
}

fn products(dir: &Path) -> serde_json::Value {
    let link: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("links/s.63273c36.link")).expect("read"))
            .expect("json");
    link["signed"]["products"].clone()
}

#[test]
fn an_image_is_recorded_by_its_registry_digests_from_a_folder_or_an_archive() {
    let dir = tempdir();
    let key = private_copy("ed25519", dir.path());
    let (layout, descriptor) = single(dir.path(), "image", "#!/bin/sh\necho hi\n");
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(
            layout.join("blobs/sha256").join(
                descriptor["digest"]
                    .as_str()
                    .expect("digest")
                    .trim_start_matches("sha256:"),
            ),
        )
        .expect("manifest"),
    )
    .expect("json");
    let hex = |d: &serde_json::Value| {
        d["digest"]
            .as_str()
            .expect("digest")
            .trim_start_matches("sha256:")
            .to_owned()
    };
    for path in ["oci:image", "oci:image.tar"] {
        let out = record(dir.path(), &key, &["-p", path]);
        assert_eq!(code(&out), 0, "{path}: {}", stderr(&out));
        let recorded = products(dir.path());
        assert_eq!(
            recorded,
            json!({
                path: {"sha256": hex(&descriptor)},
                format!("{path}#config"): {"sha256": hex(&manifest["config"])},
                format!("{path}#layer/0"): {"sha256": hex(&manifest["layers"][0])},
            }),
            "{path}"
        );
    }
}

#[test]
fn a_corrupt_incomplete_truncated_or_ambiguous_image_is_refused_and_writes_no_link() {
    let dir = tempdir();
    let key = private_copy("ed25519", dir.path());
    let (layout, _) = single(dir.path(), "image", "app");
    let refused = |path: &str, extra: &[&str], message: &str| {
        let _ = fs::remove_dir_all(dir.path().join("links"));
        let mut args = vec!["-p", path];
        args.extend(extra);
        let out = record(dir.path(), &key, &args);
        assert_eq!(code(&out), 2, "{path}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{path}: {}", stderr(&out));
        assert!(!dir.path().join("links").exists(), "{path}: a link");
    };
    // A truncated archive.
    let bytes = fs::read(dir.path().join("image.tar")).expect("read");
    fs::write(dir.path().join("short.tar"), &bytes[..bytes.len() / 2]).expect("write");
    refused("oci:short.tar", &[], "oci:short.tar:");
    // Not an image at all.
    fs::write(dir.path().join("plain.tar"), b"not a tar file at all").expect("write");
    refused("oci:plain.tar", &[], "oci:plain.tar:");
    refused("oci:missing", &[], "oci:missing: no such file or folder");
    let outside = tempdir();
    single(outside.path(), "elsewhere", "app");
    std::os::unix::fs::symlink(outside.path(), dir.path().join("away")).expect("symlink");
    refused(
        "oci:away/elsewhere.tar",
        &[],
        "oci:away/elsewhere.tar: leads outside the recording root",
    );
    fs::create_dir_all(dir.path().join("empty")).expect("mkdir");
    refused("oci:empty", &[], "no oci-layout: not an OCI image layout");

    // A layer blob whose bytes no longer match its digest, and one that is gone.
    let blobs = layout.join("blobs/sha256");
    let config_and_layers: Vec<PathBuf> = fs::read_dir(&blobs)
        .expect("read")
        .map(|e| e.expect("entry").path())
        .collect();
    let layer = config_and_layers
        .iter()
        .find(|p| fs::read(p).expect("read").len() > 1000)
        .expect("the layer is the tar blob")
        .clone();
    let original = fs::read(&layer).expect("read");
    let mut tampered = original.clone();
    tampered[600] ^= 1;
    fs::write(&layer, &tampered).expect("write");
    refused("oci:image", &[], "does not match its digest");
    fs::remove_file(&layer).expect("rm");
    refused("oci:image", &[], "is missing: the image is incomplete");
    fs::write(&layer, &original).expect("restore");
    let out = record(dir.path(), &key, &["-p", "oci:image"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // An index of two platforms: an error that lists them, unless --platform picks one.
    let multi = dir.path().join("multi");
    let amd = image(&multi, "amd", "amd64");
    let arm = image(&multi, "arm", "arm64");
    let attestation = json!({"mediaType": MANIFEST, "digest": amd["digest"], "size": amd["size"],
                             "platform": {"os": "unknown", "architecture": "unknown"}});
    finish(&multi, vec![amd.clone(), arm.clone(), attestation]);
    refused(
        "oci:multi",
        &[],
        "the index lists 2 images; pick one with --platform: linux/amd64",
    );
    refused(
        "oci:multi",
        &["--platform", "linux/s390x"],
        "no image for platform linux/s390x",
    );
    let out = record(
        dir.path(),
        &key,
        &["-p", "oci:multi", "--platform", "linux/arm64"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        products(dir.path())["oci:multi"]["sha256"],
        arm["digest"]
            .as_str()
            .expect("digest")
            .trim_start_matches("sha256:")
    );
}

/// Build makes the image; scan and sign must be about exactly that image.
const SWAP_LAYOUT: &str = r#"
expires = "30d"
[[step]]
name = "build"
functionaries = ["keys/alice.pub"]
expected_materials = ["DISALLOW *"]
expected_products = ["CREATE oci:image.tar*", "DISALLOW *"]
[[step]]
name = "scan"
functionaries = ["keys/alice.pub"]
expected_materials = ["MATCH oci:image.tar* WITH PRODUCTS FROM build", "DISALLOW *"]
expected_products = ["DISALLOW *"]
[[step]]
name = "sign"
functionaries = ["keys/alice.pub"]
expected_materials = ["MATCH oci:image.tar* WITH MATERIALS FROM scan", "DISALLOW *"]
expected_products = ["DISALLOW *"]
"#;

#[test]
fn an_image_swapped_between_scan_and_sign_is_caught() {
    let dir = tempdir();
    let TestLayout {
        layout,
        owner_pub,
        alice,
    } = test_layout(dir.path(), SWAP_LAYOUT);
    let project = dir.path().join("project");
    single(&project, "image", "the real app");
    let step = |name: &str, side: &str| {
        let out = run(tollgate()
            .current_dir(&project)
            .args(["run", "-q", "--step", name, "--key"])
            .arg(&alice)
            .args([
                side,
                "oci:image.tar",
                "--no-command",
                "--overwrite",
                "-d",
                "../links",
            ]));
        assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
    };
    let verify = || {
        run(tollgate()
            .args(["verify", "--layout"])
            .arg(&layout)
            .arg("--layout-key")
            .arg(&owner_pub)
            .arg("--link-dir")
            .arg(dir.path().join("links")))
    };
    step("build", "-p");
    step("scan", "-m");
    step("sign", "-m");
    let out = verify();
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));

    // Another image arrives at the signing step.
    fs::remove_dir_all(project.join("image")).expect("rm");
    single(&project, "image", "a lookalike");
    step("sign", "-m");
    let out = verify();
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains(
            "step sign, expected_materials rule 2 (DISALLOW *): oci:image.tar was not consumed \
             by any earlier rule; it differs from oci:image.tar among the materials of step scan"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn match_products_compares_an_image_with_a_link() {
    let dir = tempdir();
    let key = private_copy("ed25519", dir.path());
    single(dir.path(), "image", "app v1");
    let out = record(dir.path(), &key, &["-p", "oci:image.tar"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let check = || {
        run(tollgate()
            .current_dir(dir.path())
            .args(["match-products", "--link", "links/s.63273c36.link"])
            .args(["--paths", "oci:image.tar"]))
    };
    let out = check();
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    fs::remove_dir_all(dir.path().join("image")).expect("rm");
    single(dir.path(), "image", "app v2");
    let out = check();
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    for name in [
        "oci:image.tar",
        "oci:image.tar#config",
        "oci:image.tar#layer/0",
    ] {
        assert!(
            text.contains(&format!("digests differ: {name}\n")),
            "{text}"
        );
    }
}
