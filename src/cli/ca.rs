//! `countersign ca init`: creates the local CA used for HTTPS interception,
//! and says how to make apps trust it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct CaArgs {
    #[command(subcommand)]
    command: CaCommand,
}

#[derive(Debug, Subcommand)]
enum CaCommand {
    /// Create ca.pem and ca-key.pem (mode 0600) in a folder.
    Init {
        /// Folder to write the CA into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn ca(args: CaArgs) -> ExitCode {
    match args.command {
        CaCommand::Init { out } => match crate::pki::ca::init(&out) {
            Ok(files) => {
                println!(
                    "Created {} and {}.",
                    files.cert.display(),
                    files.key.display()
                );
                println!();
                println!("Point countersign at them:");
                println!("  [intercept]");
                println!("  ca_cert = \"{}\"", files.cert.display());
                println!("  ca_key = \"{}\"", files.key.display());
                println!();
                println!(
                    "Make the app trust {} (never the key):",
                    files.cert.display()
                );
                println!("  OpenSSL/curl/Go/Ruby: SSL_CERT_FILE (a bundle that includes it)");
                println!("  Python requests:      REQUESTS_CA_BUNDLE");
                println!("  Node.js:              NODE_EXTRA_CA_CERTS");
                println!("  Java:                 keytool -importcert -cacerts -file ca.pem");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("countersign ca init: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
