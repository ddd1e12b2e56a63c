//! A large CycloneDX 1.6 SBOM shaped like Syft's, for the timing and hostile-input cases.
//! Shared by the tests (`tests/tools.rs`) and the benchmarks (`benches/support`), which include
//! this file by path; it uses nothing but `serde_json`.

use serde_json::{Value, json};

/// The licenses the components cycle through, as SPDX identifiers.
pub const BIG_SBOM_LICENSES: [&str; 4] = ["MIT", "Apache-2.0", "BSD-3-Clause", "ISC"];

/// A CycloneDX 1.6 document as `syft scan -o cyclonedx-json@1.6` writes it for a Rust project
/// (the same top-level fields and component fields), with `components` library components
/// `crate-0000000` ... named, versioned and with a `pkg:cargo` purl, each with one license from
/// [`BIG_SBOM_LICENSES`] (in turn) as `{"license": {"id": ...}}`. Deterministic: the same
/// count gives the same document.
pub fn big_sbom(components: usize) -> Value {
    let list: Vec<Value> = (0..components)
        .map(|i| {
            let name = format!("crate-{i:07}");
            let version = format!("{}.{}.{}", i % 7, i % 13, i % 101);
            let purl = format!("pkg:cargo/{name}@{version}");
            json!({
                "bom-ref": format!("{purl}?package-id={i:016x}"),
                "type": "library",
                "name": name,
                "version": version,
                "licenses": [{"license": {"id": BIG_SBOM_LICENSES[i % BIG_SBOM_LICENSES.len()]}}],
                "cpe": format!("cpe:2.3:a:{name}:{name}:{version}:*:*:*:*:*:*:*"),
                "purl": purl,
                "externalReferences": [
                    {"url": "registry+https://github.com/rust-lang/crates.io-index", "type": "distribution"}
                ],
                "properties": [
                    {"name": "syft:package:foundBy", "value": "rust-cargo-lock-cataloger"},
                    {"name": "syft:package:language", "value": "rust"},
                    {"name": "syft:package:type", "value": "rust-crate"},
                    {"name": "syft:package:metadataType", "value": "rust-cargo-lock-entry"},
                    {"name": "syft:location:0:path", "value": "/Cargo.lock"}
                ]
            })
        })
        .collect();
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": "urn:uuid:5f0e4a56-7a37-4c1e-9f52-3c0b6a1f2d10",
        "version": 1,
        "metadata": {
            "timestamp": "2026-01-01T00:00:00Z",
            "tools": {"components": [
                {"type": "application", "author": "anchore", "name": "syft", "version": "1.18.1"}
            ]},
            "component": {"bom-ref": "big-sbom", "type": "file", "name": "big-project"}
        },
        "components": list
    })
}
