//! `sayiir-diesel`: the admin command line of sayiir-diesel. It reads the
//! `sayiir` tables through the library's typed report fragments and acts on
//! workflows through the same store calls workers use.
#![deny(missing_docs)]
#![deny(clippy::pedantic)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::todo,
    clippy::unimplemented
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod args;
mod commands;
use sayiir_diesel_dashboard::duration;
mod error;
mod hex;
mod output;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let Some(url) = cli.database_url.clone() else {
        args::Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "no database: pass --database-url or set DATABASE_URL",
            )
            .exit()
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sayiir-diesel: cannot start the async runtime: {e}");
            return ExitCode::from(error::EXIT_FAILED);
        }
    };
    match runtime.block_on(commands::run(cli.command, &url, cli.json)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sayiir-diesel: {err}");
            err.exit_code()
        }
    }
}
