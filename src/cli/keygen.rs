//! `tollgate keygen`: create a key pair.

use std::path::PathBuf;

use tollgate::fsio::{self, Mode};
use tollgate::keys::{KeyKind, PrivateKey};

use super::failure::{Failure, USAGE};
use super::keyfile::PasswordArgs;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum KeyType {
    /// Ed25519 (the default).
    Ed25519,
    /// ECDSA on P-256.
    Ecdsa,
    /// ECDSA on P-384.
    EcdsaP384,
    /// ECDSA on P-521 (`ecdsa-sha2-nistp521`, as in-toto-golang and securesystemslib name it).
    EcdsaP521,
    /// RSA, signing with RSA-PSS-SHA256.
    Rsa,
}

/// Arguments of `tollgate keygen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kind of key.
    #[arg(short = 't', long = "type", value_enum, default_value = "ed25519")]
    key_type: KeyType,
    /// RSA modulus size in bits (2048 to 8192).
    #[arg(long, default_value_t = 3072)]
    bits: usize,
    /// Where to write the private key; the public key goes to PATH.pub.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    output: PathBuf,
    /// Encrypt the private key with a password asked for on the terminal.
    #[arg(long, conflicts_with_all = ["password_file", "password_env", "password"])]
    encrypt: bool,
    #[command(flatten)]
    password: PasswordArgs,
}

/// Asks for a password on the terminal. Without one (in CI, or with input piped in) the
/// prompt cannot be shown, and the error says which flags give the password instead.
fn ask(prompt: &str) -> Result<String, Failure> {
    rpassword::prompt_password(prompt).map_err(|e| {
        Failure::new(
            USAGE,
            format!("--encrypt: cannot ask for a password: no terminal to ask on ({e})"),
        )
        .hint(
            "without a terminal, pass --password-file FILE or --password-env VAR instead of \
             --encrypt (the key is then encrypted with that password)",
        )
    })
}

/// Runs `tollgate keygen`.
pub fn run(args: Args) -> Result<(), Failure> {
    let kind = match args.key_type {
        KeyType::Ed25519 => KeyKind::Ed25519,
        KeyType::Ecdsa => KeyKind::EcdsaP256,
        KeyType::EcdsaP384 => KeyKind::EcdsaP384,
        KeyType::EcdsaP521 => KeyKind::EcdsaP521,
        KeyType::Rsa => KeyKind::Rsa(args.bits),
    };
    let mut public_path = args.output.clone().into_os_string();
    public_path.push(".pub");
    let public_path = PathBuf::from(public_path);
    for path in [&args.output, &public_path] {
        if path.symlink_metadata().is_ok() {
            return Err(Failure::new(
                USAGE,
                format!(
                    "{}: already exists; keygen never overwrites a key",
                    path.display()
                ),
            ));
        }
    }

    let password = if args.encrypt {
        let first = ask("password for the new key: ")?;
        let second = ask("the same password again: ")?;
        if first != second {
            return Err(Failure::new(USAGE, "the two passwords differ"));
        }
        Some(zeroize::Zeroizing::new(first))
    } else {
        args.password.read("password for the new key")?
    };
    if password.as_ref().is_some_and(|p| p.is_empty()) {
        return Err(Failure::new(USAGE, "the password is empty"));
    }

    let key = PrivateKey::generate(kind).map_err(|e| Failure::key(&args.output, e))?;
    let private_pem = key
        .to_pkcs8_pem(password.as_ref().map(|p| p.as_bytes()))
        .map_err(|e| Failure::key(&args.output, e))?;
    let public_pem = key
        .public_key()
        .to_pem()
        .map_err(|e| Failure::key(&public_path, e))?;

    // A missing folder (`-o keys/owner`) is made 0700; the key itself stays 0600 and is never
    // written over an existing file.
    fsio::create_parents(&args.output, Mode::Private).map_err(Failure::fs)?;
    fsio::write_atomic(&args.output, private_pem.as_bytes(), Mode::Private, false)
        .map_err(Failure::fs)?;
    if let Err(err) = fsio::write_atomic(&public_path, public_pem.as_bytes(), Mode::Public, false) {
        // Leave no half pair behind.
        let _ = std::fs::remove_file(&args.output);
        return Err(Failure::fs(err));
    }
    let keyid = key.public_key().keyid();
    println!("{keyid}");
    eprintln!(
        "wrote {} (private, mode 0600{}) and {}",
        args.output.display(),
        if password.is_some() {
            ", encrypted"
        } else {
            ""
        },
        public_path.display()
    );
    Ok(())
}
