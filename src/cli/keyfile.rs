//! Reading key files named on the command line, and the password options for encrypted ones.

use std::path::{Path, PathBuf};

use tollgate::fsio;
use tollgate::keys::{PrivateKey, PublicKey};
use tollgate::limits::Limit;
use zeroize::Zeroizing;

use super::failure::{Failure, USAGE};

/// Key files are small; anything over this is not a key.
const MAX_KEY_FILE_BYTES: u64 = 1024 * 1024;

/// Where the password of an encrypted private key comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of FILE.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["password_env", "prompt"])]
    pub password_file: Option<PathBuf>,
    /// Read the password from the environment variable VAR (for CI).
    #[arg(long, value_name = "VAR", conflicts_with = "prompt")]
    pub password_env: Option<String>,
    /// Ask for the password on the terminal.
    #[arg(short = 'P', long)]
    pub prompt: bool,
}

impl PasswordArgs {
    /// The password from the chosen source. `purpose` words the terminal prompt.
    pub fn read(&self, purpose: &str) -> Result<Option<Zeroizing<String>>, Failure> {
        if let Some(path) = &self.password_file {
            let bytes = fsio::read_capped(path, MAX_KEY_FILE_BYTES, Limit::MetadataBytes)
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
        if self.prompt {
            return rpassword::prompt_password(format!("{purpose}: "))
                .map(|p| Some(Zeroizing::new(p)))
                .map_err(|e| Failure::new(USAGE, format!("cannot read a password: {e}")));
        }
        Ok(None)
    }
}

fn read_text(path: &Path) -> Result<String, Failure> {
    let bytes =
        fsio::read_capped(path, MAX_KEY_FILE_BYTES, Limit::MetadataBytes).map_err(Failure::fs)?;
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
/// `insecure_permissions`, a key file that others may read is refused, as ssh does.
pub fn private_key(
    path: &Path,
    password: &PasswordArgs,
    insecure_permissions: bool,
) -> Result<PrivateKey, Failure> {
    if !insecure_permissions {
        check_permissions(path)?;
    }
    let text = Zeroizing::new(read_text(path)?);
    let secret = if PrivateKey::pem_is_encrypted(&text) {
        let from_source = password.read(&format!("password for {}", path.display()))?;
        match from_source {
            Some(p) => Some(p),
            None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => Some(Zeroizing::new(
                rpassword::prompt_password(format!("password for {}: ", path.display()))
                    .map_err(|e| Failure::new(USAGE, format!("cannot read a password: {e}")))?,
            )),
            None => None,
        }
    } else {
        None
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
