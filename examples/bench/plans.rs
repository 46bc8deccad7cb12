//! Plans for `--scale`: auto_explain records read back from the server's
//! log, `EXPLAIN` output, and one-line summaries of what a plan scanned.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// One auto_explain record: the statement's duration, its text, its plan.
pub struct Record {
    pub duration_ms: f64,
    pub query: String,
    pub plan: String,
}

/// The log's length now (read records after it later).
pub fn log_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The log's text after byte `offset`.
pub fn log_since(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path)
        && f.seek(SeekFrom::Start(offset)).is_ok()
    {
        let mut bytes = Vec::new();
        if f.read_to_end(&mut bytes).is_ok() {
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    text
}

/// auto_explain records in `log` (text format: a `duration: … ms  plan:`
/// line, then tab-indented lines: the query text, then the plan, which
/// starts at the first line with a cost estimate).
pub fn records(log: &str) -> Vec<Record> {
    let mut out = Vec::new();
    let mut lines = log.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line
            .split("duration: ")
            .nth(1)
            .filter(|r| r.contains("plan:"))
        else {
            continue;
        };
        let duration_ms = rest
            .split_whitespace()
            .next()
            .and_then(|d| d.parse::<f64>().ok())
            .unwrap_or(f64::NAN);
        let mut query = Vec::new();
        let mut plan = Vec::new();
        while let Some(next) = lines.peek() {
            let Some(body) = next.strip_prefix('\t') else {
                break;
            };
            if plan.is_empty() && !body.contains("(cost=") {
                query.push(body.trim_start_matches("Query Text: ").to_owned());
            } else {
                plan.push(body.to_owned());
            }
            lines.next();
        }
        out.push(Record {
            duration_ms,
            query: query.join("\n"),
            plan: plan.join("\n"),
        });
    }
    out
}

/// The first line of a statement that is not a comment, shortened.
pub fn label(query: &str) -> String {
    let line = query
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("--") && !l.starts_with("/*"))
        .unwrap_or("");
    let line: String = line.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(60).collect()
}

/// The table and index reads of a plan with their actual rows and loops
/// (or, for a plan logged without ANALYZE, the estimated rows: `est N`),
/// e.g. `idx tasks_runnable_idx 4x2; SEQ task_outputs 0x8` (`SEQ`: a
/// sequential scan; `idx`/`idx-only`/`bitmap`: index scans by index name;
/// CTE, subquery and heap steps of bitmap scans are left out).
pub fn scans(plan: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    for line in plan.lines() {
        let node = line.trim().trim_start_matches("->").trim();
        let head = node.split("  (").next().unwrap_or(node).trim();
        let word = |after: &str| {
            head.split(after)
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("?")
                .to_owned()
        };
        let what = if head.starts_with("Seq Scan on ") || head.starts_with("Parallel Seq Scan on ")
        {
            format!("SEQ {}", word(" on "))
        } else if head.starts_with("Index Only Scan") {
            format!("idx-only {}", word(" using "))
        } else if head.starts_with("Index Scan") {
            format!("idx {}", word(" using "))
        } else if head.starts_with("Bitmap Index Scan on ") {
            format!("bitmap {}", word(" on "))
        } else {
            continue;
        };
        let actual = node
            .split("(actual")
            .nth(1)
            .map(|a| {
                let field = |key: &str| {
                    a.split(key)
                        .nth(1)
                        .and_then(|v| v.split([' ', ')']).next())
                        .unwrap_or("?")
                        .to_owned()
                };
                format!(" {}x{}", field("rows="), field("loops="))
            })
            .unwrap_or_else(|| {
                // No ANALYZE: the planner's estimate, or a node that never ran.
                match node.split("rows=").nth(1).and_then(|r| r.split(' ').next()) {
                    Some(est) if !plan.contains("(actual") => format!(" est {est}"),
                    _ => " never run".to_owned(),
                }
            });
        let entry = format!("{what}{actual}");
        if !seen.contains(&entry) {
            seen.push(entry);
        }
    }
    if seen.is_empty() {
        "no scan".to_owned()
    } else {
        seen.join("; ")
    }
}

/// The tables a plan reads sequentially (`Seq Scan`), with actual rows.
pub fn seq_scans(plan: &str) -> Vec<String> {
    scans(plan)
        .split("; ")
        .filter(|s| s.starts_with("SEQ "))
        .map(|s| s.trim_start_matches("SEQ ").to_owned())
        .collect()
}

/// `Execution Time: … ms` of an `EXPLAIN ANALYZE` output.
pub fn execution_ms(plan: &str) -> Option<f64> {
    plan.lines()
        .find_map(|l| l.trim().strip_prefix("Execution Time: "))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// For each statement on the backend's tables (text mentions `sayiir`)
/// that ran at least `min_runs` times in `records`: one line per distinct
/// plan with its runs and median duration.
pub fn summary(records: &[Record], min_runs: usize) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for r in records {
        let l = label(&r.query);
        if r.query.contains("sayiir") && !labels.contains(&l) {
            labels.push(l);
        }
    }
    let mut out = Vec::new();
    for l in labels {
        let runs: Vec<&Record> = records.iter().filter(|r| label(&r.query) == l).collect();
        if runs.len() < min_runs {
            continue;
        }
        let mut shapes: Vec<(String, Vec<f64>)> = Vec::new();
        for r in &runs {
            let shape = scans(&r.plan);
            match shapes.iter_mut().find(|(s, _)| *s == shape) {
                Some((_, d)) => d.push(r.duration_ms),
                None => shapes.push((shape, vec![r.duration_ms])),
            }
        }
        for (shape, mut d) in shapes {
            d.sort_by(f64::total_cmp);
            let median = d.get(d.len() / 2).copied().unwrap_or(f64::NAN);
            out.push(format!(
                "{l}: {} run(s), median {median:.3} ms: {shape}",
                d.len()
            ));
        }
    }
    out
}
