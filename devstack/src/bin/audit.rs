//! `audit verify`: recomputes every audit chain and digest of a deployment's table (and compares
//! the digests with the Object Lock bucket's copies), and names the first broken link.
//!
//!   AWS_REGION=eu-west-1 target/release/audit verify --table mpesa-checkout-prod-Table \
//!       --bucket mpesa-checkout-prod-audit-digests
//!   AWS_ENDPOINT_URL=http://127.0.0.1:5000 target/debug/audit verify --table T   # moto
//!
//! Needs read access only (the table's Query and GetItem, the bucket's GetObject). Prints the
//! report as JSON. Exits 0 when the log is intact, 1 when a link is broken, 2 when it could not
//! run.

use std::process::ExitCode;
use std::sync::Arc;

use checkout::audit::digest::DigestArchive;
use checkout::audit::s3::S3Archive;
use checkout::audit::verify;
use checkout::store::dynamo::DynamoTable;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "audit", about = "Checks the audit trail of a deployment")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Recompute every chain and digest; name the first broken link.
    Verify {
        /// The DynamoDB table (the stack's `Table`); default `TABLE_NAME` from the environment.
        #[arg(long, env = "TABLE_NAME")]
        table: String,
        /// The digests' Object Lock bucket; without it, digests are checked in the table only.
        #[arg(long, env = "AUDIT_DIGEST_BUCKET")]
        bucket: Option<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let Args {
        command: Command::Verify { table, bucket },
    } = Args::parse();
    let sdk = checkout::aws::sdk_config().await;
    let table = DynamoTable::new(checkout::aws::dynamo_client(&sdk), table);
    let archive: Option<Arc<dyn DigestArchive>> = bucket
        .map(|bucket| Arc::new(S3Archive::new(checkout::audit::s3::client(&sdk), bucket)) as Arc<dyn DigestArchive>);
    match verify::verify(&table, archive.as_deref()).await {
        Ok(report) => {
            println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            match &report.broken {
                None => {
                    eprintln!(
                        "intact: {} chains, {} entries, {} digests ({} compared with the archive)",
                        report.chains, report.entries, report.digests, report.archived
                    );
                    ExitCode::SUCCESS
                }
                Some(broken) => {
                    eprintln!("BROKEN: {broken}");
                    ExitCode::from(1)
                }
            }
        }
        Err(error) => {
            eprintln!("audit verify could not run: {error}");
            ExitCode::from(2)
        }
    }
}
