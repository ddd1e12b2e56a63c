//! `tollgate key id` and `tollgate key show`: what a public key is called and how a layout
//! holds it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::failure::Failure;
use super::keyfile;

/// The `key` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print a public key's keyid, as the in-toto reference computes it.
    Id {
        /// A public key file (PEM).
        public_key: PathBuf,
    },
    /// Print a public key: its keyid, type and scheme, or (--format json) the entry a layout's
    /// `keys` map holds for it.
    Show {
        /// A public key file (PEM).
        public_key: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

/// Output formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// The layout `keys` entry, `{"KEYID": {...}}`.
    Json,
}

/// Runs a `key` subcommand.
pub fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Id { public_key } => {
            let key = keyfile::public_key(&public_key)?;
            println!("{}", key.keyid());
        }
        Command::Show { public_key, format } => {
            let key = keyfile::public_key(&public_key)?;
            let keyid = key.keyid();
            match format {
                Format::Json => {
                    let entry = BTreeMap::from([(keyid.to_string(), key.to_layout_entry(&keyid))]);
                    let text = serde_json::to_string_pretty(&entry)
                        .map_err(|e| Failure::new(super::failure::INTERNAL, e.to_string()))?;
                    println!("{text}");
                }
                Format::Text => {
                    println!("keyid:        {keyid}");
                    println!("legacy keyid: {}", key.legacy_keyid());
                    println!("keytype:      {}", key.scheme().keytype());
                    println!("scheme:       {}", key.scheme().name());
                    let pem = key.to_pem().map_err(|e| Failure::key(&public_key, e))?;
                    print!("{pem}");
                }
            }
        }
    }
    Ok(())
}
