//! `infra-gen`: synthesizes the stack into `generated/` (or checks that it is up to date).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(version, about = "Synthesize the AWS stack as Terraform JSON")]
struct Cli {
    /// Directory the Terraform JSON is written to.
    #[arg(long, default_value = "generated")]
    out: PathBuf,
    /// Write nothing; exit non-zero naming every file that differs from a fresh synthesis.
    #[arg(long)]
    check: bool,
    /// One NAT gateway per availability zone instead of one for the VPC.
    #[arg(long)]
    nat_per_az: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("infra-gen: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode, String> {
    let config = infra_gen::AppConfig { nat_per_az: cli.nat_per_az, ..Default::default() };
    let files = infra_gen::build(&config)
        .and_then(|stack| stack.synth())
        .map_err(|e| format!("synthesis failed: {e}"))?;
    if cli.check {
        let stale = infra_gen::output::stale_files(&cli.out, &files).map_err(|e| e.to_string())?;
        if stale.is_empty() {
            println!("infra-gen: {} is up to date ({} files)", cli.out.display(), files.len());
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!("infra-gen: {} is stale; run `cargo run -p infra-gen` and commit the result:", cli.out.display());
        for s in stale {
            eprintln!("  {s}");
        }
        return Ok(ExitCode::FAILURE);
    }
    let written = infra_gen::output::write(&cli.out, &files).map_err(|e| e.to_string())?;
    let out: &Path = &cli.out;
    println!(
        "infra-gen: wrote {} files to {} ({} changed)",
        files.len(),
        out.display(),
        written
    );
    Ok(ExitCode::SUCCESS)
}
