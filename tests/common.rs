//! Shared test fixtures: the `tollgate` binary, temporary folders, example keys, and the
//! Python reference implementation in a virtual environment under `target/`.

#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use tollgate::keys::{PrivateKey, PublicKey};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh temporary folder, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("tollgate-test-")
        .tempdir()
        .expect("create a temporary folder")
}

/// A `tollgate` command.
pub fn tollgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
}

/// Runs a command and returns its output.
pub fn run(command: &mut Command) -> Output {
    command.output().expect("start the command")
}

/// The exit code, or a failure if it died by a signal.
pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

/// Stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The key types of `keys-example/`, as their file name infix.
pub const KEY_TYPES: [&str; 4] = ["ed25519", "ecdsa-p256", "ecdsa-p384", "rsa"];

/// The path of an example key file, e.g. `example_key("ed25519", "pub")`.
pub fn example_key(kind: &str, ext: &str) -> PathBuf {
    repo()
        .join("keys-example")
        .join(format!("test-only-{kind}.{ext}"))
}

/// Copies an example private key into `dir` with mode 0600 (git checks files out 0644).
pub fn private_copy(kind: &str, dir: &Path) -> PathBuf {
    let to = dir.join(format!("{kind}.pem"));
    fs::copy(example_key(kind, "pem"), &to).expect("copy key");
    set_mode(&to, 0o600);
    to
}

/// Sets a file's permission bits.
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Loads an example private key through the library.
pub fn load_private(kind: &str) -> PrivateKey {
    let pem = fs::read_to_string(example_key(kind, "pem")).expect("read key");
    PrivateKey::from_pem(&pem, None).expect("example key loads")
}

/// Loads an example public key through the library.
pub fn load_public(kind: &str) -> PublicKey {
    let pem = fs::read_to_string(example_key(kind, "pub")).expect("read key");
    PublicKey::from_pem(&pem).expect("example key loads")
}

/// Text full of what canonical JSON and Python's JSON treat specially.
pub const TRICKY_TEXT: &str = "h\u{e9}llo \"q\" \\ back\ttab\nnewline \u{2713} \u{1F600}";

/// The Python reference implementation, installed once per checkout.
pub struct Reference {
    venv: PathBuf,
}

impl Reference {
    /// The reference, installing it into `target/reference-venv` on first use. Installation
    /// failure fails the test: interoperability is never skipped.
    pub fn get() -> &'static Reference {
        static REFERENCE: OnceLock<Reference> = OnceLock::new();
        REFERENCE.get_or_init(install_reference)
    }

    /// A command for one of the reference's programs (`in-toto-verify`, ...).
    pub fn tool(&self, name: &str) -> Command {
        let mut command = Command::new(self.venv.join("bin").join(name));
        command.env("PYTHONUTF8", "1");
        command
    }

    /// A command running `tests/reference/attestation.py` (the in-toto-attestation package's
    /// checks of a Statement) on an envelope file.
    pub fn attestation(&self, envelope: &Path) -> Command {
        let mut command = Command::new(self.venv.join("bin").join("python"));
        command
            .env("PYTHONUTF8", "1")
            .arg(repo().join("tests/reference/attestation.py"))
            .arg(envelope);
        command
    }

    /// A command running `tests/reference/ref.py` with the given subcommand.
    pub fn script(&self, subcommand: &str) -> Command {
        let mut command = Command::new(self.venv.join("bin").join("python"));
        command
            .env("PYTHONUTF8", "1")
            .arg(repo().join("tests/reference/ref.py"))
            .arg(subcommand);
        command
    }
}

fn install_reference() -> Reference {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_owned();
    let venv = target.join("reference-venv");
    let requirements = repo().join("tests/reference/requirements.txt");
    let wanted = fs::read_to_string(&requirements).expect("read requirements");
    let marker = venv.join(".tollgate-installed");

    // Another test process may be installing at the same time: take a lock.
    fs::create_dir_all(&target).expect("create target dir");
    let lock = File::create(target.join("reference-venv.lock")).expect("create lock file");
    lock.lock().expect("lock reference install");
    if fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        let _ = fs::remove_dir_all(&venv);
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let status = Command::new(&python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {python} to create the reference venv: {e}"));
        assert!(status.success(), "python3 -m venv failed");
        let status = Command::new(venv.join("bin/pip"))
            .args(["install", "--disable-pip-version-check", "--quiet", "-r"])
            .arg(&requirements)
            .status()
            .expect("run pip");
        assert!(
            status.success(),
            "installing the in-toto reference from PyPI failed (see pip's output above)"
        );
        fs::write(&marker, &wanted).expect("write install marker");
    }
    Reference { venv }
}

/// A minimal unsigned layout (no steps) with a readme, as a bare payload.
pub fn bare_layout(readme: &str) -> serde_json::Value {
    serde_json::json!({
        "_type": "layout",
        "expires": "2099-01-01T00:00:00Z",
        "readme": readme,
        "keys": {},
        "steps": [],
        "inspect": [],
    })
}

/// A layout for a test: keys made with `tollgate keygen` under `dir/keys/` (the owner, and alice
/// the functionary), and `source` (TOML naming `keys/alice.pub`) built and signed by the owner.
pub struct TestLayout {
    /// The signed layout.
    pub layout: PathBuf,
    /// The owner's public key.
    pub owner_pub: PathBuf,
    /// Alice's private key.
    pub alice: PathBuf,
}

/// Builds a [`TestLayout`] from a layout source.
pub fn test_layout(dir: &Path, source: &str) -> TestLayout {
    let keys = dir.join("keys");
    fs::create_dir_all(&keys).expect("mkdir");
    for name in ["owner", "alice"] {
        let out = run(tollgate().args(["keygen", "-o"]).arg(keys.join(name)));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let path = dir.join("layout.toml");
    fs::write(&path, source).expect("write the layout source");
    let layout = dir.join("root.layout");
    let out = run(tollgate()
        .args(["layout", "build"])
        .arg(&path)
        .arg("--key")
        .arg(keys.join("owner"))
        .arg("-o")
        .arg(&layout));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    TestLayout {
        layout,
        owner_pub: keys.join("owner.pub"),
        alice: keys.join("alice"),
    }
}

/// Checks that `layouts/NAME.layout` is signed by the example owner and is what
/// `layouts/NAME.toml` compiles to, but for its expiry (relative to when it was built).
pub fn assert_committed_layout(name: &str) {
    let committed = repo().join(format!("layouts/{name}.layout"));
    let out = run(tollgate()
        .args(["sign", "--verify"])
        .arg(&committed)
        .arg("--key")
        .arg(example_key("owner", "pub")));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let dir = tempdir();
    let owner = private_copy("owner", dir.path());
    let fresh = dir.path().join("fresh.layout");
    let out = run(tollgate()
        .args(["layout", "build"])
        .arg(repo().join(format!("layouts/{name}.toml")))
        .arg("--key")
        .arg(&owner)
        .arg("-o")
        .arg(&fresh));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let signed = |path: &Path| {
        let value: serde_json::Value =
            serde_json::from_slice(&fs::read(path).expect("read")).expect("json");
        let mut signed = value["signed"].clone();
        signed["expires"] = serde_json::Value::Null;
        signed
    };
    assert_eq!(signed(&committed), signed(&fresh));
}
