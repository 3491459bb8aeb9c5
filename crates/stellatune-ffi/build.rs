//! Two jobs, both from the sources:
//! - From the one status list, the `Status` enum in `src/status.rs`, it generates the
//!   `STELLATUNE_*` constants, the name table and the docs table into `OUT_DIR` (see that
//!   file for what each one is for).
//! - It generates `include/stellatune.h` into `OUT_DIR` with cbindgen, from `src/lib.rs` and
//!   the generated constants. The committed copy in `include/` is what C and Dart callers
//!   use; `tests/header.rs` fails when it differs from a fresh generation.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let crate_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");

    // The crate does not compile without these, so a broken list fails the build here with
    // a message that says which line.
    let list = std::fs::read_to_string(crate_dir.join("src").join("status.rs"))
        .expect("read src/status.rs");
    let statuses = parse_status_list(&list).unwrap_or_else(|e| panic!("src/status.rs: {e}"));
    write(&out_dir.join("status_consts.rs"), &consts_rs(&statuses));
    write(&out_dir.join("status_impl.rs"), &impl_rs(&statuses));
    write(&out_dir.join("status_table.md"), &table_md(&statuses));

    let header = out_dir.join("include").join("stellatune.h");
    let generated = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .map_err(|e| e.to_string())
        .and_then(|config| {
            cbindgen::Builder::new()
                .with_config(config)
                .with_src(crate_dir.join("src").join("lib.rs"))
                .with_src(out_dir.join("status_consts.rs"))
                .generate()
                .map_err(|e| e.to_string())
        });
    match generated {
        Ok(bindings) => {
            if let Some(dir) = header.parent() {
                if let Err(e) = std::fs::create_dir_all(dir) {
                    println!("cargo:warning=cannot create {}: {e}", dir.display());
                    return;
                }
            }
            bindings.write_to_file(&header);
        }
        // A header problem must not break the library build of every consumer; the header
        // test fails loudly instead.
        Err(e) => println!("cargo:warning=cbindgen could not generate stellatune.h: {e}"),
    }
}

fn write(path: &Path, text: &str) {
    // Unchanged files keep their timestamps, so nothing that includes them rebuilds.
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return;
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

struct Entry {
    variant: String,
    value: i32,
    /// The documentation, one string per `///` line ("" for a paragraph break).
    doc: Vec<String>,
}

impl Entry {
    fn c_name(&self) -> String {
        if self.variant == "Ok" {
            return "STELLATUNE_OK".into();
        }
        let mut name = String::from("STELLATUNE_ERR_");
        for (i, ch) in self.variant.chars().enumerate() {
            if ch.is_ascii_uppercase() && i > 0 {
                name.push('_');
            }
            name.push(ch.to_ascii_uppercase());
        }
        name
    }

    /// The paragraphs of the documentation, each on one line.
    fn paragraphs(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut current = String::new();
        for line in &self.doc {
            if line.is_empty() {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            } else {
                if !current.is_empty() {
                    current.push(' ');
                }
                current.push_str(line);
            }
        }
        if !current.is_empty() {
            out.push(current);
        }
        out
    }
}

/// Reads the variants of `pub enum Status { ... }`: `///` lines, then `Name = value,`.
fn parse_status_list(source: &str) -> Result<Vec<Entry>, String> {
    let mut lines = source.lines().enumerate();
    lines
        .by_ref()
        .find(|(_, line)| line.trim() == "pub enum Status {")
        .ok_or("no `pub enum Status {` line")?;
    let mut entries = Vec::new();
    let mut doc = Vec::new();
    for (number, line) in lines {
        let line = line.trim();
        if line == "}" {
            if !doc.is_empty() {
                return Err(format!(
                    "line {}: documentation without a variant",
                    number + 1
                ));
            }
            if entries.is_empty() {
                return Err("the enum is empty".into());
            }
            return Ok(entries);
        }
        if let Some(text) = line.strip_prefix("///") {
            doc.push(text.strip_prefix(' ').unwrap_or(text).trim_end().to_owned());
            continue;
        }
        let Some((variant, value)) = line
            .strip_suffix(',')
            .and_then(|item| item.split_once(" = "))
        else {
            return Err(format!(
                "line {}: expected `Name = value,` or a `///` line, found `{line}`",
                number + 1
            ));
        };
        let value: i32 = value
            .parse()
            .map_err(|e| format!("line {}: value `{value}`: {e}", number + 1))?;
        let valid_name = variant
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase())
            && variant.chars().all(|c| c.is_ascii_alphanumeric());
        if !valid_name {
            return Err(format!("line {}: bad variant name `{variant}`", number + 1));
        }
        if doc.is_empty() {
            return Err(format!("line {}: `{variant}` is undocumented", number + 1));
        }
        entries.push(Entry {
            variant: variant.to_owned(),
            value,
            doc: std::mem::take(&mut doc),
        });
    }
    Err("the enum never closes".into())
}

const GENERATED: &str =
    "// Generated by build.rs from the `Status` enum in src/status.rs. Do not edit.\n";

fn consts_rs(entries: &[Entry]) -> String {
    let mut out = String::from(GENERATED);
    for entry in entries {
        out.push('\n');
        for line in &entry.doc {
            if line.is_empty() {
                out.push_str("///\n");
            } else {
                let _ = writeln!(out, "/// {line}");
            }
        }
        let _ = writeln!(out, "pub const {}: i32 = {};", entry.c_name(), entry.value);
    }
    out
}

fn impl_rs(entries: &[Entry]) -> String {
    let mut out = String::from(GENERATED);
    out.push_str("\nimpl Status {\n    /// Every status, in the order of the list.\n");
    let _ = writeln!(out, "    pub const ALL: [Status; {}] = [", entries.len());
    for entry in entries {
        let _ = writeln!(out, "        Status::{},", entry.variant);
    }
    out.push_str("    ];\n\n");
    out.push_str("    /// The symbolic C name, e.g. `STELLATUNE_ERR_NOT_FOUND`.\n");
    out.push_str("    pub const fn name(self) -> &'static CStr {\n        match self {\n");
    for entry in entries {
        let _ = writeln!(
            out,
            "            Status::{} => c\"{}\",",
            entry.variant,
            entry.c_name()
        );
    }
    out.push_str("        }\n    }\n}\n\n");
    // What build.rs read must be what the compiler sees.
    out.push_str("const _: () = {\n");
    for entry in entries {
        let _ = writeln!(
            out,
            "    assert!(crate::{} == Status::{} as i32);",
            entry.c_name(),
            entry.variant
        );
    }
    out.push_str("};\n");
    out
}

fn table_md(entries: &[Entry]) -> String {
    let mut out =
        String::from("| code | name | meaning | what the app does |\n| ---: | --- | --- | --- |\n");
    for entry in entries {
        let (todo, meaning): (Vec<String>, Vec<String>) = entry
            .paragraphs()
            .into_iter()
            .partition(|p| p.starts_with("What to do: "));
        let todo = todo
            .first()
            .map(|p| p.trim_start_matches("What to do: ").to_owned())
            .unwrap_or_default();
        let cell = |text: &str| text.replace('|', "\\|");
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} |",
            entry.value,
            entry.c_name(),
            cell(&meaning.join(" ")),
            cell(&todo)
        );
    }
    out
}
