//! `list`: workflows by filter, a keyset page at a time (instance id byte
//! order).

use std::fmt::Write as _;

use sayiir_diesel_dashboard::inspect::{self, ListFilter, Page};

use super::Out;
use crate::args::ListArgs;
use crate::error::CliError;
use crate::output::{Table, or_dash};

/// Runs `list`.
pub async fn run(out: &Out<'_>, args: &ListArgs) -> Result<(), CliError> {
    let mut conn = out.connect().await?;
    let filter = ListFilter {
        status: args.status,
        definition: args.definition.as_ref().map(|h| h.0.clone()),
        tag: args.tag.clone(),
        older_than: args.older_than,
        newer_than: args.newer_than,
        prefix: args.prefix.clone(),
        after: args.after.clone(),
        limit: args.limit,
    };
    let page = inspect::list(&mut conn, &filter).await?;
    crate::output::emit(out.json, &page, render)
}

fn render(page: &Page) -> String {
    let mut t = Table::new(&[
        "INSTANCE",
        "STATUS",
        "POSITION",
        "REV",
        "CREATED",
        "UPDATED",
        "DEFINITION",
    ]);
    for w in &page.workflows {
        t.row(vec![
            w.instance_id.clone(),
            w.status.to_owned(),
            or_dash(w.position.as_deref()),
            w.revision.to_string(),
            w.created_at.clone(),
            w.updated_at.clone(),
            w.definition.get(..12).unwrap_or(&w.definition).to_owned(),
        ]);
    }
    let mut text = if t.is_empty() {
        "no workflows\n".to_owned()
    } else {
        t.render()
    };
    if let Some(after) = &page.next_after {
        let _ = writeln!(text, "more: --after {after}");
    }
    text
}
