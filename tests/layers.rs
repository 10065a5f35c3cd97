//! The house keeps one direction: a top-level module of the library may use only
//! modules of a lower layer. The order is written once, here; `src/lib.rs`'s
//! `//! # Layout` says the same in words, and this test checks it names every module.
//!
//! Test code (`tests.rs` files, `#[cfg(test)]` modules) may reach up for fixtures;
//! the library itself may not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bottom to top. Modules in one layer do not use each other.
const LAYERS: &[&[&str]] = &[
    &["units"],            // leaf helpers: durations, byte sizes, `${VAR}`
    &["sample", "logs"],   // readers: /proc and cgroups; the app's output
    &["analysis", "wrap"], // verdicts from samples and log counts; the child process
    &["words"],            // every verdict in words, once
    &["actions"],          // acting before the kill: a signal, a command
    &["alerts"],           // rules over verdicts, delivery
    &["config"],           // every section validated, using each module's types
    &["history"],          // chart points from samples
    &["state"],            // what a tick publishes
    &["tick"],             // the tick loop and its analysis state
    &["metrics", "page"],  // presentation
    &["http"],             // the server over them
    &["run"],              // a whole run: bind, tasks, shutdown
    &["report", "demo"],   // commands built on a run
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The library code of a file: comments and `#[cfg(test)]` modules left out.
fn library_code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            // Skip the item that follows: a `mod x;` line or a `mod x { … }` block.
            let mut depth = 0i32;
            for l in lines.by_ref() {
                depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
                if depth <= 0 && (l.contains('}') || l.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Every top-level module named by a `crate::` path, including `crate::{a, b::c}`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
    }
    found
}

#[test]
fn no_module_uses_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    let mut modules = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "main" || module == "lib" || rel.ends_with("tests.rs") {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            problems.push(format!("{module}: not in LAYERS; give it a layer"));
            continue;
        };
        modules.insert(module.clone(), own);
        let text = std::fs::read_to_string(f).unwrap();
        for dep in crate_paths(&library_code(&text)) {
            if dep == module {
                continue;
            }
            match layer_of(&dep) {
                None => problems.push(format!("{}: crate::{dep} is not in LAYERS", rel.display())),
                Some(l) if l >= own => problems.push(format!(
                    "{}: {module} (layer {own}) uses crate::{dep} (layer {l}), which is not below it",
                    rel.display()
                )),
                Some(_) => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(modules.len() > 15, "found only {modules:?}");
}

#[test]
fn the_layout_in_lib_rs_names_every_module() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let layout: String = lib
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let position = |m: &str| {
        layout
            .find(&format!("[`{m}`]"))
            .unwrap_or_else(|| panic!("lib.rs's Layout does not name [`{m}`]"))
    };
    for pair in LAYERS.windows(2) {
        let lower = pair[0].iter().map(|m| position(m)).max().unwrap();
        let upper = pair[1].iter().map(|m| position(m)).min().unwrap();
        assert!(
            lower < upper,
            "lib.rs's Layout names {:?} before {:?}, a lower layer",
            pair[1],
            pair[0]
        );
    }
}

#[test]
fn the_check_sees_an_upward_import() {
    // The parser itself: a grouped import is read, a comment and a test module are not.
    let code = library_code(
        "use crate::{units, alerts::Alert};\n// crate::run in a comment\n#[cfg(test)]\nmod tests {\n    use crate::run;\n}\nfn f() { crate::page::render(); }\n",
    );
    assert_eq!(crate_paths(&code), ["units", "alerts", "page"]);
}
