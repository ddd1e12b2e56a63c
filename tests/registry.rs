//! Vendor to buyer through a real OCI registry: Debian's `docker-registry` (the CNCF
//! Distribution registry), started by the tests on 127.0.0.1 with its storage in a temporary
//! folder and stopped at the end. A chain is recorded for an image, bundled, attached to the
//! image, pulled by image reference and verified; then the image is swapped.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate::registry::{Client, ClientOptions, ImageRef};

use crate::common::{TestLayout, code, run, stderr, stdout, tempdir, test_layout, tollgate};
use crate::oci::single;

/// A registry on a free loopback port, stopped when dropped.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
    _storage: tempfile::TempDir,
}

impl Registry {
    /// Starts one.
    pub fn start() -> Registry {
        let program = "/usr/bin/docker-registry";
        assert!(
            Path::new(program).exists(),
            "the registry tests need Debian's docker-registry: apt-get install docker-registry \
             (.ci/run installs it)"
        );
        let storage = tempdir();
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("address")
            .port();
        let address = format!("127.0.0.1:{port}");
        let config = storage.path().join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: \
                 {}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\n",
                storage.path().join("data").display()
            ),
        )
        .expect("write the registry config");
        let child = Command::new(program)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&address).is_err() {
            assert!(Instant::now() < deadline, "the registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child,
            address,
            _storage: storage,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Uploads the OCI layout folder's one image to `reference` with the library's client.
/// Uploads the OCI image layout `layout` as `app:TAG`; returns its manifest's digest.
pub fn upload(registry: &Registry, layout: &Path, tag: &str) -> String {
    let image = ImageRef::parse(&format!("{}/app:{tag}", registry.address)).expect("reference");
    let options = ClientOptions {
        insecure: true,
        ..ClientOptions::default()
    };
    let mut client = Client::new(&image, &options).expect("client");
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index")).expect("json");
    let digest = index["manifests"][0]["digest"].as_str().expect("digest");
    let blob = |digest: &str| {
        fs::read(
            layout
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .expect("blob")
    };
    let manifest_bytes = blob(digest);
    let manifest: Value = serde_json::from_slice(&manifest_bytes).expect("json");
    for part in
        std::iter::once(&manifest["config"]).chain(manifest["layers"].as_array().expect("layers"))
    {
        let media_type = part["mediaType"].as_str().expect("type");
        client
            .push_blob(
                "app",
                media_type,
                &blob(part["digest"].as_str().expect("digest")),
            )
            .expect("push a blob");
    }
    client
        .push_manifest(
            "app",
            tag,
            &manifest_bytes,
            "application/vnd.oci.image.manifest.v1+json",
        )
        .expect("push the manifest");
    digest.to_owned()
}

const LAYOUT: &str = r#"
expires = "30d"
[[step]]
name = "build"
functionaries = ["keys/alice.pub"]
expected_materials = ["DISALLOW *"]
expected_products = ["CREATE oci:image*", "DISALLOW *"]
"#;

#[test]
fn a_bundle_travels_with_its_image_and_a_swapped_image_is_refused() {
    let registry = Registry::start();
    let dir = tempdir();
    let TestLayout {
        layout,
        owner_pub,
        alice,
    } = test_layout(dir.path(), LAYOUT);
    let project = dir.path().join("project");
    let (image_dir, _) = single(&project, "image", "the real app");
    let digest = upload(&registry, &image_dir, "1.0");

    // The vendor: the chain records the image by digest, is bundled, and is attached.
    let out = run(tollgate()
        .current_dir(&project)
        .args(["run", "-q", "--step", "build", "--key"])
        .arg(&alice)
        .args(["-p", "oci:image", "--no-command", "-d", "../links"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let bundle = dir.path().join("release.bundle.json");
    let out = run(tollgate()
        .args(["bundle", "create", "--layout"])
        .arg(&layout)
        .arg("--link-dir")
        .arg(dir.path().join("links"))
        .arg("-o")
        .arg(&bundle));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let image = format!("{}/app:1.0", registry.address);
    let push = |bundle: &Path| {
        run(tollgate()
            .args(["push", &image, "--insecure-registry", "--bundle"])
            .arg(bundle))
    };
    let out = push(&bundle);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("WARNING: --insecure-registry"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&format!("(tag {})", digest.replacen(':', "-", 1))),
        "{}",
        stderr(&out)
    );

    // The buyer: pull by image reference, and verify by image reference.
    let pulled = dir.path().join("pulled.bundle.json");
    let out = run(tollgate()
        .args(["pull", &image, "--insecure-registry", "-o"])
        .arg(&pulled));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        fs::read(&pulled).expect("pulled"),
        fs::read(&bundle).expect("bundle")
    );
    let verify = || {
        run(tollgate()
            .args([
                "verify",
                "--image",
                &image,
                "--insecure-registry",
                "--layout-key",
            ])
            .arg(&owner_pub))
    };
    let out = verify();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("verified: 1 step(s)"),
        "{}",
        stdout(&out)
    );

    // The tag now names another image, with no attestation.
    let (other_dir, _) = single(&dir.path().join("other"), "image", "a lookalike");
    let other = upload(&registry, &other_dir, "1.0");
    assert_ne!(other, digest);
    let out = verify();
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("no Tollgate attestation is attached to"),
        "{}",
        stderr(&out)
    );
    // The old bundle attached to the lookalike: it verifies, but not for this image.
    let out = push(&bundle);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = verify();
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains(&format!(
            "the image {other} is not among the products of any step of the chain"
        )),
        "{}",
        stderr(&out)
    );
    let out = run(tollgate()
        .args([
            "verify",
            "--format",
            "json",
            "--image",
            &image,
            "--insecure-registry",
            "--layout-key",
        ])
        .arg(&owner_pub));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("json report");
    assert_eq!(report["verdict"], "fail");
    assert_eq!(report["failure"]["check"], "product");
}

#[test]
fn registry_errors_are_clear_and_never_pass() {
    let registry = Registry::start();
    let dir = tempdir();
    let TestLayout { owner_pub, .. } = test_layout(dir.path(), LAYOUT);
    let missing = format!("{}/app:none", registry.address);
    let out = run(tollgate()
        .args([
            "verify",
            "--image",
            &missing,
            "--insecure-registry",
            "--layout-key",
        ])
        .arg(&owner_pub));
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("no such image"), "{}", stderr(&out));

    // Plain HTTP only for this machine; TLS by default (which this registry does not speak).
    let out = run(tollgate().args(["pull", "registry.example.com/app:1", "--insecure-registry"]));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("allowed only for a registry on this machine"),
        "{}",
        stderr(&out)
    );
    let out = run(tollgate().args(["pull", &format!("{}/app:1", registry.address)]));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("https://"), "{}", stderr(&out));

    // A registry that returns a blob other than the one its manifest names.
    let fake = FakeRegistry::start();
    let out = run(tollgate()
        .args([
            "pull",
            &format!("{}/app:1.0", fake.address),
            "--insecure-registry",
            "-o",
        ])
        .arg(dir.path().join("x.json")));
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not match its digest"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("x.json").exists());

    // A registry that refuses, and one that never answers.
    let refusing = FakeRegistry::start_with(Behaviour::Refuse);
    let out = run(tollgate().args([
        "pull",
        &format!("{}/app:1.0", refusing.address),
        "--insecure-registry",
    ]));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("HTTP 403"), "{}", stderr(&out));
    let silent = FakeRegistry::start_with(Behaviour::Silent);
    let started = Instant::now();
    let out = run(tollgate()
        .args([
            "verify",
            "--image",
            &format!("{}/app:1.0", silent.address),
            "--insecure-registry",
            "--registry-timeout",
            "1",
            "--layout-key",
        ])
        .arg(&owner_pub));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        stderr(&out).to_lowercase().contains("timeout")
            || stderr(&out).to_lowercase().contains("timed out"),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("verified"));

    // A registry that is gone.
    drop(registry);
    let out = run(tollgate().args(["pull", &missing, "--insecure-registry"]));
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains(&missing.replace("/app:none", "")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn credentials_come_from_the_environment_or_a_docker_config_and_buy_a_bearer_token() {
    let dir = tempdir();
    let fake = FakeRegistry::start_with(Behaviour::Auth);
    let image = format!("{}/app:1.0", fake.address);
    let pull = |env: &[(&str, &str)]| {
        let mut command = tollgate();
        command
            .args(["pull", &image, "--insecure-registry", "--overwrite", "-o"])
            .arg(dir.path().join("pulled.json"))
            .env_remove("TOLLGATE_REGISTRY_USERNAME")
            .env_remove("TOLLGATE_REGISTRY_PASSWORD")
            .env("DOCKER_CONFIG", dir.path().join("no-config"));
        for (k, v) in env {
            command.env(k, v);
        }
        run(&mut command)
    };
    // No credentials: the token endpoint refuses, and so the pull.
    let out = pull(&[]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("token request: HTTP 401"),
        "{}",
        stderr(&out)
    );
    // From the environment.
    let out = pull(&[
        ("TOLLGATE_REGISTRY_USERNAME", "user"),
        ("TOLLGATE_REGISTRY_PASSWORD", "secret"),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        fs::read(dir.path().join("pulled.json")).expect("pulled"),
        b"the bundle as it was pushed"
    );
    // From a docker-style config.json.
    let config = dir.path().join("docker");
    fs::create_dir_all(&config).expect("mkdir");
    fs::write(
        config.join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "dXNlcjpzZWNyZXQ="}}}}}}"#,
            fake.address
        ),
    )
    .expect("write");
    let out = pull(&[("DOCKER_CONFIG", config.to_str().expect("utf-8"))]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn a_push_asks_for_the_whole_quoted_scope_pull_comma_push() {
    // Issue 14: the challenge was split on commas, so `scope="repository:app:pull,push"` was
    // read as `repository:app:pull`, and a registry that hands out tokens refused the push.
    let dir = tempdir();
    let fake = FakeRegistry::start_with(Behaviour::Auth);
    let TestLayout { layout, .. } = test_layout(dir.path(), LAYOUT);
    let links = dir.path().join("links");
    fs::create_dir_all(&links).expect("mkdir");
    let bundle = dir.path().join("release.bundle.json");
    let out = run(tollgate()
        .args(["bundle", "create", "--layout"])
        .arg(&layout)
        .arg("--link-dir")
        .arg(&links)
        .arg("-o")
        .arg(&bundle));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(tollgate()
        .args([
            "push",
            &format!("{}/app:1.0", fake.address),
            "--insecure-registry",
            "--bundle",
        ])
        .arg(&bundle)
        .env("TOLLGATE_REGISTRY_USERNAME", "user")
        .env("TOLLGATE_REGISTRY_PASSWORD", "secret")
        .env("DOCKER_CONFIG", dir.path().join("no-config")));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A pull token to read the image, then, challenged by the first upload, a token for
    // exactly the scope the challenge named.
    assert_eq!(
        *fake.token_scopes.lock().expect("scopes"),
        ["repository:app:pull", "repository:app:pull,push"]
    );
}

#[test]
fn the_referrers_api_is_asked_first() {
    let dir = tempdir();
    let fake = FakeRegistry::start_with(Behaviour::Referrers);
    let out = run(tollgate()
        .args([
            "pull",
            &format!("{}/app:1.0", fake.address),
            "--insecure-registry",
            "-o",
        ])
        .arg(dir.path().join("pulled.json")));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        fs::read(dir.path().join("pulled.json")).expect("pulled"),
        b"the bundle as it was pushed"
    );
}

/// How a fake registry misbehaves.
#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// Answers with an image, an attestation manifest, and a bundle blob whose bytes are not
    /// the ones the manifest names.
    WrongBlob,
    /// Answers 403 to everything.
    Refuse,
    /// Accepts connections and never answers.
    Silent,
    /// Serves the image and its attestation (the right blob) only with a bearer token, which
    /// its token endpoint hands out for `user:secret` in basic auth; takes pushes (uploads and
    /// manifests) only with a token for the scope `repository:app:pull,push`, which it
    /// challenges for as a token-issuing registry does.
    Auth,
    /// Has the Referrers API (OCI 1.1) and no fallback tag; serves the right blob.
    Referrers,
}

/// A registry that misbehaves as told.
struct FakeRegistry {
    address: String,
    /// The `scope` of each token request, in order, as the token endpoint read it.
    token_scopes: Arc<Mutex<Vec<String>>>,
}

impl FakeRegistry {
    fn start() -> FakeRegistry {
        FakeRegistry::start_with(Behaviour::WrongBlob)
    }

    fn start_with(behaviour: Behaviour) -> FakeRegistry {
        use sha2::{Digest, Sha256};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let sha = |bytes: &[u8]| format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
        let image = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.to_vec();
        let image_digest = sha(&image);
        let promised = b"the bundle as it was pushed".to_vec();
        let attestation = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.tollgate.bundle.v1+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                       "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                       "size": 2},
            "layers": [{"mediaType": "application/vnd.tollgate.bundle.v1+json",
                        "digest": sha(&promised), "size": promised.len()}],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": image_digest, "size": image.len()},
        }))
        .expect("json");
        let tag = image_digest.replacen(':', "-", 1);
        let attestation_digest = sha(&attestation);
        let blob_path = format!("/v2/app/blobs/{}", sha(&promised));
        let own_address = address.clone();
        let token_scopes = Arc::new(Mutex::new(Vec::new()));
        let scopes = Arc::clone(&token_scopes);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                if behaviour == Behaviour::Silent {
                    // Hold the connection open, say nothing.
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_secs(60));
                        drop(stream);
                    });
                    continue;
                }
                let text = read_request(&mut stream);
                let line = text.lines().next().unwrap_or("").to_owned();
                let method = line.split_whitespace().next().unwrap_or("").to_owned();
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                let writes = matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE");
                let authorization = text
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("authorization")
                            .then(|| value.trim().to_owned())
                    })
                    .unwrap_or_default();
                // base64("user:secret")
                let basic = "Basic dXNlcjpzZWNyZXQ=";
                let mut extra_headers = String::new();
                let (status, body): (&str, Vec<u8>) = if behaviour == Behaviour::Refuse {
                    ("403 Forbidden", b"{}".to_vec())
                } else if behaviour == Behaviour::Auth && path.starts_with("/token") {
                    let scope = path
                        .split_once('?')
                        .map(|(_, query)| query)
                        .unwrap_or("")
                        .split('&')
                        .find_map(|pair| pair.strip_prefix("scope="))
                        .unwrap_or("")
                        .to_owned();
                    scopes.lock().expect("scopes").push(scope.clone());
                    match (authorization == basic, scope.as_str()) {
                        (true, "repository:app:pull") => {
                            ("200 OK", br#"{"token":"opensesame"}"#.to_vec())
                        }
                        (true, "repository:app:pull,push") => {
                            ("200 OK", br#"{"token":"pushsesame"}"#.to_vec())
                        }
                        _ => ("401 Unauthorized", b"{}".to_vec()),
                    }
                } else if behaviour == Behaviour::Auth
                    && !(authorization == "Bearer pushsesame"
                        || (authorization == "Bearer opensesame" && !writes))
                {
                    // As a token-issuing registry does: the scope says what the request needs,
                    // and a push needs two actions, separated by a comma inside the quotes.
                    let scope = if writes {
                        "repository:app:pull,push"
                    } else {
                        "repository:app:pull"
                    };
                    extra_headers = format!(
                        "WWW-Authenticate: Bearer realm=\"http://{own}/token\",service=\"fake\",scope=\"{scope}\"\r\n",
                        own = own_address
                    );
                    ("401 Unauthorized", b"{}".to_vec())
                } else if behaviour == Behaviour::Auth
                    && method == "POST"
                    && path == "/v2/app/blobs/uploads/"
                {
                    extra_headers = "Location: /v2/app/blobs/uploads/1\r\n".to_owned();
                    ("202 Accepted", Vec::new())
                } else if behaviour == Behaviour::Auth
                    && method == "PUT"
                    && (path.starts_with("/v2/app/blobs/uploads/1?")
                        || path.starts_with("/v2/app/manifests/"))
                {
                    ("201 Created", Vec::new())
                } else if path == "/v2/app/manifests/1.0" {
                    ("200 OK", image.clone())
                } else if behaviour == Behaviour::Referrers
                    && path == format!("/v2/app/referrers/{image_digest}")
                {
                    let index = serde_json::json!({
                        "schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [
                            // Another tool's referrer, passed over.
                            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                             "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                             "digest": format!("sha256:{}", "0".repeat(64)), "size": 10},
                            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                             "artifactType": "application/vnd.tollgate.bundle.v1+json",
                             "digest": attestation_digest, "size": attestation.len()},
                        ],
                    });
                    ("200 OK", serde_json::to_vec(&index).expect("json"))
                } else if (behaviour == Behaviour::Referrers
                    && path == format!("/v2/app/manifests/{attestation_digest}"))
                    || (behaviour != Behaviour::Referrers
                        && path == format!("/v2/app/manifests/{tag}"))
                {
                    // The attestation: by digest through the Referrers API, else by the tag.
                    ("200 OK", attestation.clone())
                } else if path == blob_path
                    && matches!(behaviour, Behaviour::Auth | Behaviour::Referrers)
                {
                    ("200 OK", promised.clone())
                } else if path == blob_path {
                    ("200 OK", b"other bytes, same length!!".to_vec())
                } else {
                    ("404 Not Found", b"{}".to_vec())
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\n{extra_headers}Content-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        FakeRegistry {
            address,
            token_scopes,
        }
    }
}

/// Reads one HTTP request, its head and then as many body bytes as its `Content-Length` says
/// (at most 1 MiB), so that an answer never races a body still being sent.
fn read_request(stream: &mut TcpStream) -> String {
    let mut request = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            let length = String::from_utf8_lossy(&request[..end])
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0)
                .min(1 << 20);
            if request.len() >= end + 4 + length {
                return String::from_utf8_lossy(&request).to_string();
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&request).to_string(),
            Ok(n) => request.extend_from_slice(&chunk[..n]),
        }
    }
}
