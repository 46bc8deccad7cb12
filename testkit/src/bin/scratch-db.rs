//! `scratch-db CMD ARGS…`: runs CMD with `DATABASE_URL` pointing at a fresh,
//! empty database on a throwaway server (or on the server of an existing
//! `DATABASE_URL`), then cleans up. Used by `.ci/run` and the quick start.

use std::process::{Command, ExitCode};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("usage: scratch-db CMD [ARGS…]");
        return ExitCode::from(2);
    };
    let outcome = async {
        let db = sayiir_diesel_testkit::empty_database().await?;
        let status = Command::new(cmd)
            .args(rest)
            .env("DATABASE_URL", db.url())
            .status()?;
        Ok::<_, sayiir_diesel_testkit::Error>(status.code().unwrap_or(1))
    }
    .await;
    match outcome {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("scratch-db: {e}");
            ExitCode::from(1)
        }
    }
}
