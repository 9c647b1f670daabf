//! What one `make bench` run found: rows (a figure, and where there is one,
//! the reference it is judged against, measured in the same run) and series
//! (figures against a variable, for the plot). Printed as a table at the end
//! and written to `target/bench/results.json`.

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Default, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub rows: Vec<Row>,
    pub series: BTreeMap<String, Series>,
}

#[derive(Serialize)]
pub struct Machine {
    pub cores: usize,
    pub scale: f64,
    pub git_commit: Option<String>,
    pub started_at: String,
}

impl Default for Machine {
    fn default() -> Self {
        let git_commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        Self { cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1), scale: 1.0, git_commit, started_at: chrono::Utc::now().to_rfc3339() }
    }
}

/// One figure. `ratio` is `value / reference.value`; `goal` is the largest
/// ratio (or, with no reference, value) that meets the goal.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub section: String,
    pub figure: String,
    pub value: f64,
    pub unit: String,
    pub reference: Option<Reference>,
    pub ratio: Option<f64>,
    pub goal: Option<f64>,
    pub met: Option<bool>,
    pub note: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Reference {
    pub name: String,
    pub value: f64,
}

/// Points `(x, y)` of one line of a plot, e.g. fan-out time against runtimes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Series {
    pub x_label: String,
    pub y_label: String,
    pub points: Vec<(f64, f64)>,
}

impl Row {
    /// Judges the row against `reference` (same unit, same run).
    pub fn against(&mut self, name: &str, value: f64) -> &mut Self {
        self.reference = Some(Reference { name: name.to_string(), value });
        self.ratio = (value > 0.0).then(|| self.value / value);
        self.judge();
        self
    }

    /// The goal: the ratio (or the value, with no reference) must not exceed `max`.
    pub fn goal(&mut self, max: f64) -> &mut Self {
        self.goal = Some(max);
        self.judge();
        self
    }

    pub fn note(&mut self, note: impl Into<String>) -> &mut Self {
        self.note = Some(note.into());
        self
    }

    fn judge(&mut self) {
        self.met = self.goal.map(|goal| match (&self.reference, self.ratio) {
            (Some(_), Some(ratio)) => ratio <= goal,
            (Some(_), None) => false,
            (None, _) => self.value <= goal,
        });
    }
}

impl Report {
    /// Adds a row and returns it to be judged: `report.row(..).against(..).goal(1.5)`.
    pub fn row(&mut self, section: &str, figure: &str, value: f64, unit: &str) -> &mut Row {
        self.rows.push(Row {
            section: section.to_string(),
            figure: figure.to_string(),
            value,
            unit: unit.to_string(),
            reference: None,
            ratio: None,
            goal: None,
            met: None,
            note: None,
        });
        let last = self.rows.len() - 1;
        &mut self.rows[last]
    }

    /// Appends a point to the series `name`.
    pub fn point(&mut self, name: &str, x_label: &str, y_label: &str, x: f64, y: f64) {
        let series =
            self.series.entry(name.to_string()).or_insert_with(|| Series { x_label: x_label.to_string(), y_label: y_label.to_string(), points: vec![] });
        series.points.push((x, y));
    }

    /// The table every run ends with: one line per row.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut section = "";
        for row in &self.rows {
            if row.section != section {
                section = &row.section;
                out.push_str(&format!("\n== {section}\n"));
            }
            let mut line = format!("{:<58} {:>12} {:<6}", row.figure, format_value(row.value), row.unit);
            if let Some(reference) = &row.reference {
                line.push_str(&format!(" vs {} {}", reference.name, format_value(reference.value)));
                if let Some(ratio) = row.ratio {
                    line.push_str(&format!(" = {ratio:.2}x"));
                }
            }
            if let (Some(goal), Some(met)) = (row.goal, row.met) {
                line.push_str(&format!(" (goal <= {}: {})", format_value(goal), if met { "met" } else { "NOT met" }));
            }
            out.push_str(line.trim_end());
            out.push('\n');
            if let Some(note) = &row.note {
                out.push_str(&format!("    {note}\n"));
            }
        }
        out
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_against_a_reference_is_judged_by_its_ratio() {
        let mut report = Report::default();
        report.row("init", "berth-api median", 6.0, "ms").against("hello world", 4.0).goal(1.5);
        report.row("init", "berth-sweeper median", 7.0, "ms").against("hello world", 4.0).goal(1.5);
        assert_eq!(report.rows[0].ratio, Some(1.5));
        assert_eq!(report.rows[0].met, Some(true));
        assert_eq!(report.rows[1].met, Some(false));
        let table = report.table();
        assert!(table.contains("= 1.50x (goal <= 1.50: met)"), "{table}");
        assert!(table.contains("= 1.75x (goal <= 1.50: NOT met)"), "{table}");
    }

    #[test]
    fn a_row_without_a_reference_is_judged_by_its_value() {
        let mut report = Report::default();
        report.row("memory", "peak RSS at 1 GiB", 70.0, "MiB").goal(64.0);
        assert_eq!(report.rows[0].met, Some(false));
    }

    #[test]
    fn the_json_holds_rows_and_series() {
        let mut report = Report::default();
        report.row("calls", "deploy to 10 runtimes", 13.0, "calls");
        report.point("fanout_seconds", "runtimes", "seconds", 10.0, 1.5);
        report.point("fanout_seconds", "runtimes", "seconds", 100.0, 9.0);
        let path = std::env::temp_dir().join(format!("berth-bench-report-{}.json", std::process::id()));
        report.write_json(&path).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(json["rows"][0]["value"], 13.0);
        assert_eq!(json["series"]["fanout_seconds"]["points"][1], serde_json::json!([100.0, 9.0]));
    }
}
