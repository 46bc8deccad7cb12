//! `send-event`: delivers an external event through the dashboard
//! crate's `act::send_event`, which resumes a workflow parked at that
//! signal name or buffers the event.

use std::io::Read as _;

use bytes::Bytes;
use sayiir_diesel_dashboard::act;

use super::Out;
use super::actions::answer;
use crate::args::SendEventArgs;
use crate::error::CliError;

/// Runs `send-event`.
pub async fn run(out: &Out<'_>, args: &SendEventArgs) -> Result<(), CliError> {
    let payload = payload(args)?;
    let backend = out.backend().await?;
    let mut conn = out.connect().await?;
    let outcome = act::send_event(
        &backend,
        &mut conn,
        &args.id,
        &args.name,
        payload,
        args.allow_unknown,
    )
    .await?;
    answer(out, outcome)
}

/// The payload from the argument, the file, or stdin (`-`).
fn payload(args: &SendEventArgs) -> Result<Bytes, CliError> {
    match (&args.payload, &args.payload_file) {
        (Some(text), None) => Ok(Bytes::from(text.clone().into_bytes())),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| CliError::Failed(format!("cannot read stdin: {e}")))?;
            Ok(Bytes::from(buf))
        }
        (None, Some(path)) => std::fs::read(path)
            .map(Bytes::from)
            .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", path.display()))),
        _ => Err(CliError::Usage(
            "give the payload either as an argument or with --payload-file".to_owned(),
        )),
    }
}
