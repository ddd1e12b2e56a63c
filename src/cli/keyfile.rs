//! Reading key files named on the command line, and the password options for encrypted ones.

use std::path::{Path, PathBuf};

use tollgate::fsio;
use tollgate::keys::{KeyError, PrivateKey, PublicKey};
use tollgate::limits::{Limit, Limits};
use zeroize::Zeroizing;

use super::failure::{Failure, USAGE};

/// Where the password of an encrypted private key comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of FILE.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["password_env", "password"])]
    pub password_file: Option<PathBuf>,
    /// Read the password from the environment variable VAR (for CI).
    #[arg(long, value_name = "VAR", conflicts_with = "password")]
    pub password_env: Option<String>,
    /// The password itself or, given bare, ask for it on the terminal. A password on the
    /// command line is visible to other users of the machine: prefer --password-file or
    /// --password-env [in-toto: -P/--password [PASSWORD]].
    #[arg(
        short = 'P',
        long = "password",
        value_name = "PASSWORD",
        num_args = 0..=1,
        conflicts_with_all = ["password_file", "password_env", "prompt"]
    )]
    pub password: Option<Option<String>>,
    /// Ask for the password on the terminal (what a bare -P does).
    #[arg(long, conflicts_with_all = ["password_file", "password_env"])]
    pub prompt: bool,
}

/// Older in-toto's `-t/--key-type`: Tollgate reads the type from the key file, so the option is
/// accepted and ignored, with a note.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyTypeArgs {
    /// Not needed: the key type is read from the key file; accepted and ignored
    /// [in-toto before 1.0: -t/--key-type].
    #[arg(short = 't', long = "key-type", value_name = "TYPE", num_args = 1..)]
    pub key_type: Vec<String>,
}

impl KeyTypeArgs {
    /// Says on stderr that the option changes nothing.
    pub fn note(&self) {
        if !self.key_type.is_empty() {
            eprintln!("note: --key-type is ignored: Tollgate reads the key type from the key file");
        }
    }
}

/// The reference's GPG options, refused with what to use instead: Tollgate signs and verifies
/// with PEM keys only.
#[derive(Debug, Clone, clap::Args)]
pub struct GpgArgs {
    /// Not supported: GPG keys cannot be used; give a PEM key instead (`tollgate keygen`
    /// makes one) [in-toto: -g/--gpg [KEYID...]].
    #[arg(short = 'g', long = "gpg", value_name = "KEYID", num_args = 0..)]
    pub gpg: Option<Vec<String>>,
    /// Not supported, as --gpg [in-toto: --gpg-home DIR].
    #[arg(long = "gpg-home", value_name = "DIR")]
    pub gpg_home: Option<PathBuf>,
}

impl GpgArgs {
    /// Refuses the GPG options; `instead` says which PEM option to use.
    pub fn refuse(&self, instead: &str) -> Result<(), Failure> {
        let flag = if self.gpg.is_some() {
            "--gpg"
        } else if self.gpg_home.is_some() {
            "--gpg-home"
        } else {
            return Ok(());
        };
        Err(Failure::new(
            USAGE,
            format!("{flag}: GPG keys are not supported; use {instead}"),
        )
        .hint("`tollgate keygen -o KEY` makes a PEM key pair (KEY and KEY.pub)"))
    }
}

impl PasswordArgs {
    /// The password from the chosen source. `purpose` words the terminal prompt.
    pub fn read(&self, purpose: &str) -> Result<Option<Zeroizing<String>>, Failure> {
        if let Some(path) = &self.password_file {
            let bytes = fsio::read_capped(
                path,
                Limits::DEFAULT.max_key_file_bytes,
                Limit::KeyFileBytes,
            )
            .map_err(Failure::fs)?;
            let text = String::from_utf8(bytes).map_err(|_| {
                Failure::new(
                    USAGE,
                    format!("{}: the password file is not UTF-8", path.display()),
                )
            })?;
            let text = Zeroizing::new(text);
            let line = text.lines().next().unwrap_or("");
            return Ok(Some(Zeroizing::new(line.to_owned())));
        }
        if let Some(var) = &self.password_env {
            return match std::env::var(var) {
                Ok(value) => Ok(Some(Zeroizing::new(value))),
                Err(_) => Err(Failure::new(
                    USAGE,
                    format!("--password-env {var}: the variable is not set, or not UTF-8"),
                )),
            };
        }
        if let Some(Some(value)) = &self.password {
            eprintln!(
                "warning: a password given on the command line is visible to other users of \
                 this machine; prefer --password-file or --password-env"
            );
            return Ok(Some(Zeroizing::new(value.clone())));
        }
        if self.prompt || matches!(self.password, Some(None)) {
            return rpassword::prompt_password(format!("{purpose}: "))
                .map(|p| Some(Zeroizing::new(p)))
                .map_err(|e| {
                    Failure::new(
                        USAGE,
                        format!("-P/--password: cannot ask for a password: {e}"),
                    )
                    .hint(
                        "without a terminal, give it with --password-file FILE or \
                             --password-env VAR",
                    )
                });
        }
        Ok(None)
    }
}

fn read_text(path: &Path) -> Result<String, Failure> {
    let bytes = fsio::read_capped(
        path,
        Limits::DEFAULT.max_key_file_bytes,
        Limit::KeyFileBytes,
    )
    .map_err(Failure::fs)?;
    String::from_utf8(bytes).map_err(|_| {
        Failure::new(
            USAGE,
            format!("{}: not a PEM file (not text)", path.display()),
        )
    })
}

/// Reads a public key file (SubjectPublicKeyInfo or PKCS#1 PEM).
pub fn public_key(path: &Path) -> Result<PublicKey, Failure> {
    let text = read_text(path)?;
    PublicKey::from_pem(&text).map_err(|e| Failure::key(path, e))
}

/// Reads a private key file, asking for its password when it is encrypted. Unless
/// `insecure_permissions`, a key file that others may read is refused, as ssh does; what the
/// file holds is checked first, so that a public key given by mistake is told so before it is
/// told to change its mode.
pub fn private_key(
    path: &Path,
    password: &PasswordArgs,
    insecure_permissions: bool,
) -> Result<PrivateKey, Failure> {
    let text = Zeroizing::new(read_text(path)?);
    let encrypted = PrivateKey::pem_is_encrypted(&text);
    if !encrypted {
        let key = PrivateKey::from_pem(&text, None).map_err(|e| Failure::key(path, e))?;
        if !insecure_permissions {
            check_permissions(path)?;
        }
        return Ok(key);
    }
    // Encrypted: refuse a readable file before asking for its password, and ask only when a
    // password can open it (a scheme Tollgate does not decrypt, or a derivation too costly to
    // try, is said at once).
    if !insecure_permissions {
        check_permissions(path)?;
    }
    match PrivateKey::from_pem(&text, None) {
        Err(KeyError::PasswordNeeded) => {}
        Err(e) => return Err(Failure::key(path, e)),
        Ok(key) => return Ok(key),
    }
    let from_source = password.read(&format!("password for {}", path.display()))?;
    let secret = match from_source {
        Some(p) => Some(p),
        None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => Some(Zeroizing::new(
            rpassword::prompt_password(format!("password for {}: ", path.display()))
                .map_err(|e| Failure::new(USAGE, format!("cannot read a password: {e}")))?,
        )),
        None => None,
    };
    let key = PrivateKey::from_pem(&text, secret.as_ref().map(|p| p.as_bytes()))
        .map_err(|e| Failure::key(path, e))?;
    if let Some(scheme) = PrivateKey::legacy_encryption(&text) {
        eprintln!(
            "warning: {}: the key is encrypted with {scheme}, a legacy scheme (56-bit DES) \
             whose password can be found by brute force; re-encrypt it: {}",
            path.display(),
            super::failure::reencrypt_command(path)
        );
    }
    Ok(key)
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(()); // the read that follows reports the problem
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Failure::new(
            USAGE,
            format!(
                "{}: private key file is accessible by others (mode {mode:04o})",
                path.display()
            ),
        )
        .hint(format!(
            "run `chmod 600 {}`, or pass --insecure-key-permissions",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_: &Path) -> Result<(), Failure> {
    Ok(())
}
