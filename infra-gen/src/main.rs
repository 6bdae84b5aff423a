//! `infra-gen`: synthesizes the stack into `generated/` (or checks that it is up to date).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(version, about = "Synthesize the AWS stack as Terraform JSON", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
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

#[derive(Subcommand, Debug)]
enum Command {
    /// Print a Markdown review of what the current synthesis changes against `generated/` at a git
    /// revision: resources, IAM permissions, trust, network rules and exposure.
    Review {
        /// Git revision to compare with (default: the merge base with the main branch, or HEAD).
        #[arg(long)]
        base: Option<String>,
        /// Exit with status 3 when any permission, trust, network rule or exposure broadens.
        #[arg(long)]
        fail_on_broadening: bool,
        /// The generated folder, relative to the repository root.
        #[arg(long, default_value = "generated")]
        dir: String,
        /// Synthesize with one NAT gateway per availability zone.
        #[arg(long)]
        nat_per_az: bool,
    },
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

fn review(base: Option<&str>, fail_on_broadening: bool, dir: &str, nat_per_az: bool) -> Result<ExitCode, String> {
    let repo = Path::new(".");
    let base = base.map(str::to_string).unwrap_or_else(|| infra_gen::review::default_base(repo));
    let before = infra_gen::review::documents_at(repo, &base, dir)?;
    let config = infra_gen::AppConfig { nat_per_az, ..Default::default() };
    let after = infra_gen::build(&config)
        .and_then(|stack| stack.documents())
        .map_err(|e| format!("synthesis failed: {e}"))?;
    let review = infra_gen::review::Review::new(&before, &after);
    print!("{}", review.to_markdown(&base));
    if fail_on_broadening && review.broadens() {
        eprintln!("infra-gen: the change broadens permissions or exposure (--fail-on-broadening)");
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

fn run(cli: &Cli) -> Result<ExitCode, String> {
    if let Some(Command::Review { base, fail_on_broadening, dir, nat_per_az }) = &cli.command {
        return review(base.as_deref(), *fail_on_broadening, dir, *nat_per_az);
    }
    let config = infra_gen::AppConfig { nat_per_az: cli.nat_per_az, ..Default::default() };
    let files = infra_gen::synth_files(&config).map_err(|e| format!("synthesis failed: {e}"))?;
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
