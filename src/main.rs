//! The `mailintake` command line: thin glue over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use mailintake::check;
use mailintake::rules::RuleSet;

#[derive(Parser)]
#[command(
    name = "mailintake",
    version,
    about = "E-mail → support tickets for СТП ГБУЗС «МИАЦ» (приказ № 852)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Judge mail files against the rules: one JSON verdict per line.
    Check {
        /// Rule folder.
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// A human view instead of JSON Lines.
        #[arg(long)]
        pretty: bool,
        /// Print throughput and latency figures instead of verdicts (judging every file N times).
        #[arg(long, value_name = "ROUNDS")]
        bench: Option<usize>,
        /// .eml files or folders of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Validate rule files.
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
}

#[derive(Subcommand)]
enum RulesAction {
    /// Check every rule file; each error names file, line and key.
    Check {
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check {
            rules,
            pretty,
            bench,
            paths,
        } => {
            let rules = match RuleSet::load(&rules) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("mailintake: invalid rules: {e}");
                    return ExitCode::from(2);
                }
            };
            let files = match check::expand(&paths) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("mailintake: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(rounds) = bench {
                return match check::bench(&files, &rules, rounds.max(1)) {
                    Ok(s) => {
                        println!("{s}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("mailintake: {e}");
                        ExitCode::from(2)
                    }
                };
            }
            let shown: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
            if check::run(&files, &shown, &rules, pretty) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Command::Rules {
            action: RulesAction::Check { rules },
        } => match RuleSet::check(&rules) {
            Ok(_) => {
                println!("rules in {} are valid", rules.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in &errors {
                    eprintln!("{e}");
                }
                ExitCode::from(1)
            }
        },
    }
}
