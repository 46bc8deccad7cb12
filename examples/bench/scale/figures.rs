//! The scale table: a figure for each backend per row, and its text.

/// One row of the scale table: a figure for each backend.
struct Fig {
    part: &'static str,
    name: String,
    pg: Option<f64>,
    di: Option<f64>,
    note_pg: String,
    note_di: String,
}

#[derive(Default)]
pub(super) struct Figures(Vec<Fig>);

impl Figures {
    pub(super) fn set(
        &mut self,
        part: &'static str,
        name: &str,
        backend: &str,
        v: Option<f64>,
        note: &str,
    ) {
        let i = match self.0.iter().position(|f| f.part == part && f.name == name) {
            Some(i) => i,
            None => {
                self.0.push(Fig {
                    part,
                    name: name.to_owned(),
                    pg: None,
                    di: None,
                    note_pg: String::new(),
                    note_di: String::new(),
                });
                self.0.len() - 1
            }
        };
        let f = &mut self.0[i];
        if backend == "diesel" {
            f.di = v;
            f.note_di = note.to_owned();
        } else {
            f.pg = v;
            f.note_pg = note.to_owned();
        }
    }

    pub(super) fn table(&self) -> String {
        let fmt = |v: Option<f64>| match v {
            None => "-".to_owned(),
            Some(v) if v >= 100.0 => format!("{v:.0}"),
            Some(v) if v >= 10.0 => format!("{v:.1}"),
            Some(v) => format!("{v:.2}"),
        };
        let mut s = format!(
            "\n{:<8} {:<58} {:>9} {:>9} {:>9}  {}\n{}\n",
            "part",
            "figure (lower is better)",
            "postgres",
            "diesel",
            "diesel/pg",
            "notes (postgres | diesel)",
            "-".repeat(120)
        );
        for f in &self.0 {
            let ratio = match (f.di, f.pg) {
                (Some(d), Some(p)) if p > 0.0 => format!("{:.2}x", d / p),
                _ => "-".to_owned(),
            };
            let notes = if f.note_pg.is_empty() && f.note_di.is_empty() {
                String::new()
            } else {
                format!("{} | {}", f.note_pg, f.note_di)
            };
            s.push_str(&format!(
                "{:<8} {:<58} {:>9} {:>9} {:>9}  {}\n",
                f.part,
                f.name,
                fmt(f.pg),
                fmt(f.di),
                ratio,
                notes
            ));
        }
        s
    }
}
