//! Named caps on every read of untrusted data.
//!
//! Each limit has a documented default and is checked before the work it bounds: file sizes
//! before the bytes are read, signature counts before any cryptography, artifact counts before
//! the artifacts are checked. Exceeding one is a typed error that names the limit, never a
//! silent truncation.

/// Caps on untrusted input, with defaults chosen to fit the largest honest metadata seen in
/// practice while keeping a hostile file from exhausting memory or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest metadata file (layout, link or envelope) read, in bytes. A DSSE payload
    /// decodes to fewer bytes than its envelope, so this caps it too. Default 256 MiB, room for
    /// a link that records about a million artifacts.
    pub max_metadata_bytes: u64,
    /// The most signatures one document may carry, checked before any signature is verified.
    /// Default 64.
    pub max_signatures: usize,
    /// The most artifacts one link may record as materials, and again as products.
    /// Default 2,000,000.
    pub max_artifacts: usize,
    /// The most keys one layout may declare. Default 1,024.
    pub max_keys: usize,
    /// The most link files of a step not named after one of its keys (`STEP.*.link`) that are
    /// read, when the step falls short of its threshold, to say who signed them; they never
    /// count. Default 16.
    pub max_stray_links: usize,
    /// The most attestation files (`STEP.*.intoto.json`) read for one step that expects
    /// predicates; the rest are named in a warning and never count. Default 256.
    pub max_attestations: usize,
    /// The most bytes of regular files in the working folder that `verify` copies for the
    /// inspections, counted (without following symlinks) before anything is copied. Default
    /// 1 GiB: a received release, not a shared temporary folder.
    pub max_workdir_bytes: u64,
    /// The most entries (files, folders and symlinks) in that working folder, counted the same
    /// way. Default 100,000.
    pub max_workdir_files: usize,
    /// How deep sublayouts may nest below the root layout: a link that is itself a layout is
    /// verified as a sublayout at most this many levels down, and refused below that.
    /// A bundle collects the links of sublayouts no deeper than this either, so it can hold
    /// no deeper chain than verification reads. Default 4.
    pub max_sublayout_depth: usize,
    /// The most bytes of a step's stdout, and again of its stderr, that recording keeps as
    /// byproducts; the rest still reaches the console. Default 16 MiB.
    pub max_byproduct_bytes: usize,
    /// The largest JSON document of an OCI image (`oci-layout`, `index.json`, an index, a
    /// manifest) that recording an `oci:` artifact reads. Default 4 MiB.
    pub max_oci_json_bytes: u64,
    /// The most bytes of such documents kept in memory from one image archive; larger files
    /// and those beyond this are hashed as they stream past. Default 64 MiB.
    pub max_oci_kept_bytes: u64,
    /// How many image indexes nested in one another recording an `oci:` artifact follows
    /// down to a manifest. Default 8.
    pub max_oci_index_depth: usize,
    /// The largest manifest or blob read from a registry. Default 256 MiB.
    pub max_registry_bytes: u64,
    /// The largest key file or password file read. Default 1 MiB: a 16,384-bit RSA key in PEM
    /// is under 13 KiB.
    pub max_key_file_bytes: u64,
    /// The longest CEL rule (an expected attribute of a layout's expected predicate), in
    /// bytes, after parameters are substituted. Default 4 KiB.
    pub max_cel_rule_bytes: usize,
    /// How deeply a CEL rule may nest: the parser's recursion (parentheses, calls, macro
    /// bodies) and the depth of the compiled expression tree, where a macro such as `all`
    /// counts two levels. Default 32.
    pub max_cel_depth: usize,
    /// The most nodes the compiled expression tree of a CEL rule may hold, macros expanded.
    /// Default 512.
    pub max_cel_nodes: usize,
    /// The most work one CEL rule may do over one attestation, in cost units (about one
    /// value visited, copied or compared, or 16 bytes of a string), bounded before the rule
    /// runs from the rule and the shape of the attestation's JSON; a rule that could exceed
    /// it is refused without being run. Default 20,000,000: linear rules over a 100,000-component SBOM
    /// cost 2 to 6 million; the most expensive rule accepted runs in about a second.
    pub max_cel_cost: u64,
}

impl Limits {
    /// The default caps, documented on each field.
    pub const DEFAULT: Limits = Limits {
        max_metadata_bytes: 256 * 1024 * 1024,
        max_signatures: 64,
        max_artifacts: 2_000_000,
        max_keys: 1024,
        max_stray_links: 16,
        max_attestations: 256,
        max_workdir_bytes: 1024 * 1024 * 1024,
        max_workdir_files: 100_000,
        max_sublayout_depth: 4,
        max_byproduct_bytes: 16 * 1024 * 1024,
        max_oci_json_bytes: 4 * 1024 * 1024,
        max_oci_kept_bytes: 64 * 1024 * 1024,
        max_oci_index_depth: 8,
        max_registry_bytes: 256 * 1024 * 1024,
        max_key_file_bytes: 1024 * 1024,
        max_cel_rule_bytes: 4096,
        max_cel_depth: 32,
        max_cel_nodes: 512,
        max_cel_cost: 20_000_000,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Which limit an input exceeded; carried inside the errors of the operations that check them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// [`Limits::max_metadata_bytes`].
    MetadataBytes,
    /// [`Limits::max_signatures`].
    Signatures,
    /// [`Limits::max_artifacts`].
    Artifacts,
    /// [`Limits::max_keys`].
    Keys,
    /// [`Limits::max_workdir_bytes`].
    WorkdirBytes,
    /// [`Limits::max_workdir_files`].
    WorkdirFiles,
    /// [`Limits::max_key_file_bytes`].
    KeyFileBytes,
    /// [`Limits::max_cel_rule_bytes`].
    CelRuleBytes,
    /// [`Limits::max_cel_depth`].
    CelDepth,
    /// [`Limits::max_cel_nodes`].
    CelNodes,
    /// [`Limits::max_cel_cost`].
    CelCost,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limit::MetadataBytes => "max_metadata_bytes",
            Limit::Signatures => "max_signatures",
            Limit::Artifacts => "max_artifacts",
            Limit::Keys => "max_keys",
            Limit::WorkdirBytes => "max_workdir_bytes",
            Limit::WorkdirFiles => "max_workdir_files",
            Limit::KeyFileBytes => "max_key_file_bytes",
            Limit::CelRuleBytes => "max_cel_rule_bytes",
            Limit::CelDepth => "max_cel_depth",
            Limit::CelNodes => "max_cel_nodes",
            Limit::CelCost => "max_cel_cost",
        })
    }
}
