//! How a failed command is reported: one message naming the file and what went wrong, an
//! optional line saying what to do, and an exit code.

use std::path::Path;

use tollgate::document::DocumentError;
use tollgate::envelope::EnvelopeError;
use tollgate::fsio::FsError;
use tollgate::keys::KeyError;
use tollgate::record::RecordError;

/// A signature or policy did not verify.
pub const NOT_VERIFIED: u8 = 1;
/// Bad input or usage.
pub const USAGE: u8 = 2;
/// An internal or I/O error.
pub const INTERNAL: u8 = 3;

/// The `openssl` command that re-encrypts a legacy-encrypted private key with PBES2 and
/// AES-256 (OpenSSL 3 reads the old schemes only with its legacy provider loaded).
pub fn reencrypt_command(path: &Path) -> String {
    let shown = path.display();
    format!(
        "`openssl pkcs8 -topk8 -v2 aes-256-cbc -iter 600000 -provider legacy -provider default \
         -in {shown} -out {shown}.new` (then replace the file with {shown}.new)"
    )
}

/// A failed command.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// What went wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Failure {
    /// A failure with an exit code and message.
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds what to do.
    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    /// Writes the failure to stderr.
    pub fn print(&self) {
        eprintln!("tollgate: error: {}", printable(&self.message));
        if let Some(hint) = &self.hint {
            eprintln!("  hint: {}", printable(hint));
        }
    }

    /// A file-system error.
    pub fn fs(err: FsError) -> Failure {
        let code = match &err {
            FsError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => USAGE,
            FsError::Io { .. } => INTERNAL,
            _ => USAGE,
        };
        Failure::new(code, err.to_string())
    }

    /// A key that cannot be read or used.
    pub fn key(path: &Path, err: KeyError) -> Failure {
        let failure = Failure::new(USAGE, format!("{}: {err}", path.display()));
        match err {
            KeyError::PasswordNeeded => failure.hint(
                "pass --password-file FILE, --password-env VAR, or -P/--password to be asked",
            ),
            KeyError::WrongPassword => failure.hint("check the password source"),
            KeyError::UnsupportedEncryption { .. } => failure.hint(format!(
                "re-encrypt it with AES (PBES2), which Tollgate and the reference read: {}",
                reencrypt_command(path)
            )),
            _ => failure,
        }
    }

    /// A metadata file that cannot be signed or does not verify.
    pub fn document(path: &Path, err: DocumentError) -> Failure {
        let code = match &err {
            DocumentError::Envelope(
                EnvelopeError::Threshold { .. }
                | EnvelopeError::NoSignatures
                | EnvelopeError::WrongPayloadType(_),
            ) => NOT_VERIFIED,
            _ => USAGE,
        };
        let message = match &err {
            DocumentError::AppendToLink => "--append is for layouts: a link records one \
                                            functionary's work and carries one signature"
                .to_owned(),
            DocumentError::LinkSignedByOne(_) => {
                "a link is signed by one key: give exactly one --key".to_owned()
            }
            DocumentError::AppendWouldNotVerify => {
                format!("{err}; sign without --append to re-sign it in the full form")
            }
            _ => err.to_string(),
        };
        let failure = Failure::new(code, format!("{}: {message}", path.display()));
        match err {
            DocumentError::Envelope(EnvelopeError::Threshold { signers, .. }) => {
                let mut notes = Vec::new();
                if signers.unattributed > 0 {
                    notes.push(format!(
                        "{} signature(s) verified under none of the given keys",
                        signers.unattributed
                    ));
                }
                notes.push("check that you passed the right public keys".into());
                failure.hint(notes.join("; "))
            }
            _ => failure,
        }
    }
}

/// A recording error as the command line words it: the library's message, with the option
/// that changes the outcome named where there is one.
pub fn record_message(err: &RecordError) -> String {
    match err {
        RecordError::Missing(_) => format!("{err} (pass --allow-missing to skip missing paths)"),
        RecordError::LstripCollision(name) => {
            format!("--lstrip-paths makes two artifacts share the name {name:?}")
        }
        RecordError::LstripPrefixes(a, b) => {
            format!("--lstrip-paths {a:?} and {b:?}: one is a prefix of the other")
        }
        RecordError::DirtyTree { .. } => {
            format!("{err}: commit or stash them, or pass --allow-dirty (the link then says so)")
        }
        RecordError::NotARepository { .. } => format!("{err}; pass --repo DIR"),
        RecordError::SeveralImages { uri, images } => format!(
            "{uri}: the index lists {} images; pick one with --platform: {}",
            images.len(),
            images.join(", ")
        ),
        _ => err.to_string(),
    }
}

/// Writes an output file (atomically, readable by all, creating the folders missing above it),
/// refusing to replace one unless `overwrite`, and saying how when it refuses.
pub fn write_output(path: &Path, bytes: &[u8], overwrite: bool) -> Result<(), Failure> {
    tollgate::fsio::create_parents(path, tollgate::fsio::Mode::Public).map_err(Failure::fs)?;
    tollgate::fsio::write_atomic(path, bytes, tollgate::fsio::Mode::Public, overwrite).map_err(
        |e| {
            let failure = Failure::fs(e);
            if path.exists() && !overwrite {
                failure.hint("pass --overwrite to replace it")
            } else {
                failure
            }
        },
    )
}

/// Text from outside (a file name, a keyid a signature claims, a command's stderr) made safe to
/// print on a terminal: control characters other than line breaks and tabs, and the characters
/// that reorder or break lines invisibly (bidi overrides and isolates, U+2028, U+2029), are
/// written as `\u{...}`, so that no file can recolour, rewrite or hide the verdict.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
    };
    if !text.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if hidden(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}
