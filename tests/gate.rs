//! Issue 16, first step: the decision service's config is refused at start with its file,
//! field and reason, and a good one is read whole (keys included, paths relative to it).

use std::fs;
use std::path::Path;

use tollgate::gate::config::{self, GateConfig};
use tollgate::limits::Limits;

use crate::common::{code, run, stderr, tempdir, tollgate};

const GOOD: &str = r#"
listen = "127.0.0.1:8443"
tls_cert = "gate.crt"
tls_key = "gate.key"
store = "decisions.sqlite"
signing_key = "gate.pem"
verifier_id = "https://gate.example.com"
deadline = "8s"
insecure_registries = ["127.0.0.1:5000"]

[[policy]]
name = "app"
images = ["registry.example.com/app/*"]
layout_keys = ["owner.pub"]
resource_uri = "pkg:oci/app"
vsa_keys = ["ci-verifier.pub"]
vsa_max_age = "24h"

[[policy]]
name = "tools"
images = ["registry.example.com/tools/**", "127.0.0.1:5000/tools"]
layout_keys = ["owner.pub"]
layout_digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
resource_uri = "pkg:oci/tools"
"#;

/// A folder with the key and certificate files GOOD names, and the config at `gate.toml`.
fn setup(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempdir();
    for name in ["owner", "ci-verifier"] {
        let out = run(tollgate().args(["keygen", "-o"]).arg(dir.path().join(name)));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    // The config names the service's own key as gate.pem.
    fs::rename(dir.path().join("owner"), dir.path().join("gate.pem")).expect("rename");
    fs::write(dir.path().join("gate.crt"), "certificate").expect("write");
    fs::write(dir.path().join("gate.key"), "key").expect("write");
    let path = dir.path().join("gate.toml");
    fs::write(&path, text).expect("write");
    (dir, path)
}

fn load(path: &Path) -> Result<GateConfig, config::ConfigError> {
    config::load(path, &Limits::default())
}

#[test]
fn issue16_a_good_config_is_read_whole_with_paths_relative_to_it() {
    let (dir, path) = setup(GOOD);
    let config = load(&path).expect("a good config");
    assert_eq!(config.listen.to_string(), "127.0.0.1:8443");
    let tls = config.tls.as_ref().expect("tls");
    assert_eq!(tls.cert, dir.path().join("gate.crt"));
    assert_eq!(config.store, dir.path().join("decisions.sqlite"));
    assert_eq!(config.deadline, chrono::Duration::seconds(8));
    assert_eq!(config.policies.len(), 2);
    let app = &config.policies[0];
    assert_eq!(app.layout_keys.len(), 1);
    assert_eq!(app.vsa_keys.len(), 1);
    assert_eq!(app.vsa_max_age, Some(chrono::Duration::hours(24)));
    assert_eq!(
        config.policies[1].layout_digest.as_deref(),
        Some("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    );
    // The first policy whose patterns match the repository decides; none, none.
    let named = |image: &str| config.policy_for(image).map(|p| p.name.as_str());
    assert_eq!(named("registry.example.com/app/web@sha256:ab"), Some("app"));
    assert_eq!(named("registry.example.com/app/web:1.0"), Some("app"));
    assert_eq!(named("registry.example.com/app/web/extra:1"), None);
    assert_eq!(named("registry.example.com/tools/a/b:2"), Some("tools"));
    assert_eq!(named("127.0.0.1:5000/tools:latest"), Some("tools"));
    assert_eq!(named("evil.example.com/app/web"), None);
}

#[test]
fn issue16_a_bad_config_is_refused_naming_its_file_field_and_reason() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "listen = \"127.0.0.1:8443\"",
            "listen = \"8443\"",
            "listen: \"8443\" is not an address",
        ),
        (
            "tls_cert = \"gate.crt\"\ntls_key = \"gate.key\"\n",
            "",
            "tls_cert: missing: the service speaks HTTPS",
        ),
        (
            "listen = \"127.0.0.1:8443\"\ntls_cert = \"gate.crt\"\ntls_key = \"gate.key\"\n",
            "listen = \"0.0.0.0:8080\"\ninsecure_http = true\n",
            "insecure_http: plain HTTP only on a loopback address, not 0.0.0.0",
        ),
        (
            "tls_key = \"gate.key\"",
            "tls_key = \"missing.key\"",
            "tls_key: \"missing.key\": no such file",
        ),
        (
            "signing_key = \"gate.pem\"",
            "signing_key = \"nope.pem\"",
            "signing_key: \"nope.pem\": no such file",
        ),
        (
            "verifier_id = \"https://gate.example.com\"",
            "verifier_id = \"gate.example.com\"",
            "verifier_id: \"gate.example.com\" is not a URI",
        ),
        ("deadline = \"8s\"", "deadline = \"8\"", "deadline: "),
        (
            "deadline = \"8s\"",
            "deadline = \"5m\"",
            "deadline: \"5m\" is out of range",
        ),
        (
            "insecure_registries = [\"127.0.0.1:5000\"]",
            "insecure_registries = [\"registry.example.com:5000\"]",
            "insecure_registries[0]: \"registry.example.com:5000\": plain HTTP to a registry only on loopback",
        ),
        (
            "images = [\"registry.example.com/app/*\"]",
            "images = [\"registry.example.com/app:latest\"]",
            "policy[0].images[0]: \"registry.example.com/app:latest\" holds a tag",
        ),
        (
            "images = [\"registry.example.com/tools/**\", \"127.0.0.1:5000/tools\"]",
            "images = [\"registry.example.com/app/*\"]",
            "policy[1].images[0]: \"registry.example.com/app/*\" is listed by an earlier policy too",
        ),
        (
            "name = \"tools\"",
            "name = \"app\"",
            "policy[1].name: \"app\" names two policies",
        ),
        (
            "vsa_keys = [\"ci-verifier.pub\"]",
            "vsa_keys = [\"gate.crt\"]",
            "policy[0].vsa_keys[0]: \"gate.crt\": not a public key",
        ),
        (
            "vsa_max_age = \"24h\"\n",
            "",
            "policy[0].vsa_max_age: missing: a trusted VSA needs a maximum age",
        ),
        (
            "layout_digest = \"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"",
            "layout_digest = \"sha256:0123\"",
            "policy[1].layout_digest: \"sha256:0123\" is not a SHA-256",
        ),
        (
            "resource_uri = \"pkg:oci/tools\"",
            "resource_uri = \"tools\"",
            "policy[1].resource_uri: \"tools\" is not a URI",
        ),
        (
            "store = \"decisions.sqlite\"",
            "store = \"decisions.sqlite\"\nstor = \"typo\"",
            "unknown field `stor`",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(
            GOOD.contains(from),
            "the case edits the good config: {from}"
        );
        let (_dir, path) = setup(&GOOD.replacen(from, to, 1));
        let error = load(&path).expect_err(expected);
        let text = error.to_string();
        assert!(text.starts_with(&path.display().to_string()), "{text}");
        assert!(text.contains(expected), "{expected:?} in {text}");
    }
    // No policy at all.
    let head = GOOD.split("[[policy]]").next().expect("head");
    let (_dir, path) = setup(head);
    let text = load(&path).expect_err("no policy").to_string();
    assert!(text.contains("policy: no [[policy]]"), "{text}");
    // Plain HTTP on loopback is allowed only when asked for loudly.
    let plain = GOOD.replace(
        "tls_cert = \"gate.crt\"\ntls_key = \"gate.key\"\n",
        "insecure_http = true\n",
    );
    let (_dir, path) = setup(&plain);
    let config = load(&path).expect("plain HTTP on loopback");
    assert!(config.tls.is_none());
}

mod store {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    use chrono::{Duration, TimeZone, Utc};
    use tollgate::gate::store::{Decision, DecisionPath, Filter, Store};

    use crate::common::tempdir;

    fn decision(image: &str, digest: &str, allowed: bool, minute: u32) -> Decision {
        let time = Utc
            .with_ymd_and_hms(2026, 12, 8, 10, minute, 0)
            .single()
            .expect("time");
        Decision {
            id: 0,
            time,
            image: image.to_owned(),
            digest: digest.to_owned(),
            policy: "app".to_owned(),
            allowed,
            path: DecisionPath::Slow,
            reason: format!("decided at minute {minute}"),
            depends_on: "policy-1".to_owned(),
            valid_until: Some(time + Duration::hours(1)),
            vsa: allowed.then(|| b"{\"payload\": \"...\"}".to_vec()),
        }
    }

    #[test]
    fn issue16_decisions_are_kept_across_a_restart_and_reused_only_while_valid() {
        let dir = tempdir();
        let path = dir.path().join("decisions.sqlite");
        let first = decision("r.io/app:1", "sha256:aa", true, 0);
        let mut second = decision("r.io/app:2", "sha256:bb", false, 5);
        // A registry timeout: recorded for the audit, never reused.
        let mut unreliable = decision("r.io/app:3", "sha256:cc", false, 6);
        unreliable.valid_until = None;
        {
            let store = Store::open(&path).expect("open");
            assert_eq!(store.record(&first).expect("record"), 1);
            second.id = store.record(&second).expect("record");
            unreliable.id = store.record(&unreliable).expect("record");
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("store")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "the audit log is its owner's");
        let store = Store::open(&path).expect("reopen");
        let at = |minute| first.time + Duration::minutes(minute);
        let known = store.known("sha256:aa", "policy-1", at(30)).expect("query");
        assert_eq!(
            known.map(|d| (d.id, d.allowed, d.vsa.is_some())),
            Some((1, true, true))
        );
        // Another policy digest, a time past validity, an unreliable outcome: none reused.
        assert!(
            store
                .known("sha256:aa", "policy-2", at(30))
                .expect("query")
                .is_none()
        );
        assert!(
            store
                .known("sha256:aa", "policy-1", at(60))
                .expect("query")
                .is_none()
        );
        assert!(
            store
                .known("sha256:cc", "policy-1", at(7))
                .expect("query")
                .is_none()
        );
        // The audit log: newest first, by image or digest, since a time.
        let all = store.list(&Filter::default()).expect("list");
        assert_eq!(all.iter().map(|d| d.id).collect::<Vec<_>>(), vec![3, 2, 1]);
        assert_eq!(all[1], second);
        let by_image = store
            .list(&Filter {
                image: Some("r.io/app:2".into()),
                ..Filter::default()
            })
            .expect("list");
        assert_eq!(by_image, vec![second.clone()]);
        let by_digest = store
            .list(&Filter {
                image: Some("sha256:aa".into()),
                ..Filter::default()
            })
            .expect("list");
        assert_eq!(by_digest.len(), 1);
        let since = store
            .list(&Filter {
                since: Some(at(5)),
                ..Filter::default()
            })
            .expect("list");
        assert_eq!(since.iter().map(|d| d.id).collect::<Vec<_>>(), vec![3, 2]);
    }

    #[test]
    fn issue16_a_file_that_is_not_a_store_is_refused_naming_it() {
        let dir = tempdir();
        let path = dir.path().join("decisions.sqlite");
        std::fs::write(&path, b"not a database, but a file someone left here").expect("write");
        let error = Store::open(&path).expect_err("not a database");
        assert!(error.to_string().contains("decision store"), "{error}");
        assert!(error.to_string().contains("decisions.sqlite"), "{error}");
    }

    /// Set in the child this test starts: the child writes decisions until it is killed.
    const CHILD: &str = "TOLLGATE_TEST_STORE_CHILD";

    #[test]
    fn issue16_kill_9_loses_no_committed_decision() {
        if let Some(path) = std::env::var_os(CHILD) {
            // The child: record decisions forever, saying each one once it is committed.
            let store = Store::open(std::path::Path::new(&path)).expect("open");
            for n in 0.. {
                let id = store
                    .record(&decision(&format!("r.io/app:{n}"), "sha256:aa", true, 0))
                    .expect("record");
                println!("committed {id}");
            }
            return;
        }
        let dir = tempdir();
        let path = dir.path().join("decisions.sqlite");
        let mut child = Command::new(std::env::current_exe().expect("this test binary"))
            .args([
                "--exact",
                "gate::store::issue16_kill_9_loses_no_committed_decision",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the writer");
        let stdout = child.stdout.take().expect("stdout");
        let mut committed = 0i64;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            if let Some(id) = line.strip_prefix("committed ") {
                committed = id.trim().parse().expect("id");
                if committed >= 200 {
                    break;
                }
            }
        }
        // SIGKILL, in the middle of its next writes.
        child.kill().expect("kill -9");
        let _ = child.wait();
        assert!(committed >= 200, "the writer committed {committed}");
        let store = Store::open(&path).expect("the store opens after kill -9");
        let kept = store.list(&Filter::default()).expect("list");
        let newest = kept.first().map(|d| d.id).unwrap_or(0);
        assert!(
            newest >= committed,
            "committed {committed}, kept up to {newest}"
        );
        // Every number up to the newest is there, once: nothing torn, nothing lost.
        let ids: Vec<i64> = kept.iter().rev().map(|d| d.id).collect();
        assert_eq!(ids, (1..=newest).collect::<Vec<_>>());
        let check = Command::new("python3")
            .args(["-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('pragma integrity_check').fetchone()[0])"])
            .arg(&path)
            .output()
            .expect("python3");
        assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "ok");
    }
}
