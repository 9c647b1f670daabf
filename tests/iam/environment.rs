//! Every environment variable Berth's code reads is set by the SAM template or
//! documented, with its default, in README's configuration section.

use crate::template::Template;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where the code that runs in the functions and the local runner lives (the
/// agent has its own configuration and documentation).
const SOURCES: [&str; 3] = ["functions", "shared", "local"];

/// Set by Lambda itself in every function's environment (its reserved
/// variables, and the prefixes of its own families), never by Berth's template:
/// the functions build their SDK configuration from them in Lambda.
const SET_BY_AWS: [&str; 11] = [
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_LAMBDA_",
    "AWS_XRAY_",
    "AWS_REGION",
];

#[test]
fn every_environment_variable_the_code_reads_is_set_by_the_template_or_documented_with_its_default() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let read = variables_read(&root);
    for expected in ["BERTH_TABLE", "BERTH_JWT_ISSUER", "BERTH_KMS_KEY_ID", "BERTH_BIND"] {
        assert!(read.contains_key(expected), "the scan finds {expected} (found {read:?})");
    }

    let template = Template::load();
    let set: BTreeSet<String> = template.resources_of("AWS::Serverless::Function").iter().flat_map(|f| template.environment_of(f).into_keys()).collect();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let configuration = section(&readme, "## Configuration");

    let mut report = vec![];
    let mut neither = vec![];
    for (variable, files) in &read {
        let row = configuration.lines().find(|l| l.starts_with('|') && l.contains(&format!("`{variable}")));
        let documented_default = row.is_some_and(|r| r.contains("default") || r.contains("standard SDK variables"));
        let how = match (set.contains(variable), documented_default, SET_BY_AWS.contains(&variable.as_str())) {
            (true, _, _) => "set by the template",
            (false, true, _) => "documented default",
            (false, false, true) => "set by AWS",
            (false, false, false) => {
                neither.push(format!("{variable} (read in {})", files.join(", ")));
                "NEITHER"
            }
        };
        report.push(format!("  {variable:<36} {how}"));
    }
    eprintln!("environment variables the code reads:\n{}", report.join("\n"));
    assert!(
        neither.is_empty(),
        "read, but neither set by infra/template.yaml nor documented with a default in README's Configuration:\n{}",
        neither.join("\n")
    );
}

/// `## Configuration` up to the next `## ` heading.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text.find(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("README has a {heading} section"));
    let rest = &text[start + heading.len() + 2..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// Each variable named by a string literal (`"BERTH_..."`, `"AWS_..."`,
/// `"RUST_LOG"`) in the non-test code: `std::env::var("X")`, the helpers
/// that wrap it (`var("X", default)`), and clap's `env = "X"`. A literal
/// passed to `.env(` is a variable set for a child process, not read.
fn variables_read(root: &Path) -> BTreeMap<String, Vec<String>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for dir in SOURCES {
        for file in rust_files(&root.join(dir)) {
            let text = std::fs::read_to_string(&file).expect("a source file");
            // Unit tests sit at the end of a file, after `#[cfg(test)]`.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let shown = file.strip_prefix(root).unwrap_or(&file).display().to_string();
            for (at, name) in literals(code) {
                if code[..at].trim_end().ends_with(".env(") {
                    continue;
                }
                let files = found.entry(name).or_default();
                if !files.contains(&shown) {
                    files.push(shown.clone());
                }
            }
        }
    }
    found
}

fn literals(code: &str) -> Vec<(usize, String)> {
    let mut out = vec![];
    let mut rest = code;
    let mut offset = 0;
    while let Some(open) = rest.find('"') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('"') else { break };
        let word = &after[..close];
        let named = (word.starts_with("BERTH_") || word.starts_with("AWS_") || word == "RUST_LOG")
            && word.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if named {
            out.push((offset + open, word.to_string()));
        }
        // Move past the opening quote only: the closing one may open the next literal.
        offset += open + 1 + close + 1;
        rest = &after[close + 1..];
    }
    out
}

/// The `.rs` files under `dir`, but not under a `tests/` directory (integration tests).
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![];
    let Ok(entries) = std::fs::read_dir(dir) else { return files };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if !matches!(path.file_name().and_then(|n| n.to_str()), Some("tests" | "target")) {
                files.extend(rust_files(&path));
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}
