//! The shape of the code, checked: modules sit on floors and import only from their own floor
//! or lower ones, no module imports itself back through others (no cycle among top-level
//! modules, nor among files), handlers stay thin, and a long file is long for a reason
//! written in docs/ARCHITECTURE.md. The floor order is written down once, here, and in
//! docs/ARCHITECTURE.md's map.
//!
//! Imports are read from the sources (`crate::…` paths, including `use crate::{a, b}`);
//! test code — a `#[cfg(test)]` module at the end of a file, or a `tests.rs` file — is not
//! part of the shape.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Floors, lowest first. A module may import from its own floor and the floors below.
const FLOORS: &[&[&str]] = &[
    // Pure data and the one error type.
    &["wire", "mask", "error"],
    // Pure translation between the wire formats (every dialect).
    &["translate"],
    // Configuration and the swappable settings snapshot.
    &["config", "live", "labels"],
    // Services: the upstream, credentials, storage, statistics, caches, limits.
    &[
        "access",
        "cache",
        "fetch",
        "kept",
        "keys",
        "limits",
        "metrics",
        "models",
        "persist",
        "signatures",
        "stats",
        "store",
        "telemetry",
        "upstream",
        "vertex",
    ],
    // The application state.
    &["state"],
    // What works on the whole state: the request pipeline, the dashboard's services,
    // background jobs and shutdown.
    &["pipeline", "admin", "background", "shutdown"],
    // HTTP handlers and their extractors; the web dashboard's pages.
    &["routes", "web"],
    // Assembly: the router, the listener, the command line, the server, the binary.
    &["app", "serve", "cli", "lib", "main"],
];

/// Lines a file may have (test code excluded) before docs/ARCHITECTURE.md must say why.
const LONG_FILE: usize = 600;
/// Lines a handler in `routes/` may have.
const LONG_HANDLER: usize = 30;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` → `a::b`; `src/a/mod.rs` → `a`.
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The code of a file without its test module and without comments.
fn product_code(text: &str) -> String {
    let code = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    code.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::` path in `code`, as segment lists (groups expanded one level).
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let path: Vec<String> = item
                    .trim()
                    .split("::")
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                if !path.is_empty() {
                    out.push(path);
                }
            }
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let path: Vec<String> = rest[..end]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if !path.is_empty() {
            out.push(path);
        }
    }
    out
}

struct Crate {
    /// Module path → its file.
    files: BTreeMap<String, PathBuf>,
    /// Module path → the modules it imports (other than itself).
    imports: BTreeMap<String, BTreeSet<String>>,
}

fn read_crate() -> Crate {
    let mut paths = Vec::new();
    rust_files(&src(), &mut paths);
    let files: BTreeMap<String, PathBuf> = paths
        .into_iter()
        .map(|p| (module_of(&p), p))
        .filter(|(m, _)| !m.ends_with("tests") && m != "tests")
        .collect();
    let mut imports = BTreeMap::new();
    for (module, path) in &files {
        let code = product_code(&std::fs::read_to_string(path).unwrap());
        let mut targets = BTreeSet::new();
        for segments in crate_paths(&code) {
            // The longest prefix that names a module file.
            let found = (1..=segments.len())
                .rev()
                .map(|k| segments[..k].join("::"))
                .find(|m| files.contains_key(m));
            if let Some(target) = found
                && &target != module
            {
                targets.insert(target);
            }
        }
        imports.insert(module.clone(), targets);
    }
    Crate { files, imports }
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

fn floor_of(top: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&top))
}

/// The cycles of a graph (strongly connected components of two or more nodes).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[w].min(self.low[v]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.index[w].min(self.low[v]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.found
}

#[test]
fn every_module_has_a_floor_and_imports_only_from_its_floor_or_below() {
    let krate = read_crate();
    let mut wrong = Vec::new();
    for (module, targets) in &krate.imports {
        let Some(own) = floor_of(top(module)) else {
            wrong.push(format!(
                "`{}` is on no floor (add it to FLOORS)",
                top(module)
            ));
            continue;
        };
        for target in targets {
            let theirs = floor_of(top(target)).unwrap_or(usize::MAX);
            if theirs > own {
                wrong.push(format!(
                    "{module} (floor {own}) imports {target} (floor {theirs}), a higher floor"
                ));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_module_imports_itself_back_through_others() {
    let krate = read_crate();
    let mut tops: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, targets) in &krate.imports {
        let entry = tops.entry(top(module).to_owned()).or_default();
        for t in targets {
            if top(t) != top(module) {
                entry.insert(top(t).to_owned());
            }
        }
    }
    let top_cycles = cycles(&tops);
    assert!(
        top_cycles.is_empty(),
        "cycles among modules: {top_cycles:?}"
    );
    let file_cycles = cycles(&krate.imports);
    assert!(
        file_cycles.is_empty(),
        "cycles among files: {file_cycles:?}"
    );
}

#[test]
fn the_check_sees_imports_and_cycles() {
    // The reader itself: a grouped import, a nested path, a comment that is not code.
    let code = "use crate::{a, b::c};\nfn f() { crate::d::e::f(); } // crate::g";
    let paths = crate_paths(&product_code(code));
    assert_eq!(
        paths,
        vec![
            vec!["a".to_owned()],
            vec!["b".to_owned(), "c".to_owned()],
            vec!["d".to_owned(), "e".to_owned(), "f".to_owned()]
        ]
    );
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("x", vec!["y"]),
        ("y", vec!["z"]),
        ("z", vec!["x"]),
        ("w", vec!["x"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(cycles(&graph), vec![vec!["x", "y", "z"]]);
}

#[test]
fn long_files_are_explained_in_the_architecture_notes() {
    let krate = read_crate();
    let notes =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ARCHITECTURE.md"))
            .unwrap();
    let mut unexplained = Vec::new();
    for path in krate.files.values() {
        let lines = product_code(&std::fs::read_to_string(path).unwrap())
            .lines()
            .count();
        let rel = path
            .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if lines > LONG_FILE && !notes.contains(&rel) {
            unexplained.push(format!("{rel}: {lines} lines"));
        }
    }
    assert!(
        unexplained.is_empty(),
        "files over {LONG_FILE} lines with no note in docs/ARCHITECTURE.md: {unexplained:?}"
    );
}

#[test]
fn handlers_are_thin() {
    let mut paths = Vec::new();
    rust_files(&src().join("routes"), &mut paths);
    // The extractors and their helpers are not handlers.
    paths.retain(|p| {
        !["mod.rs", "auth.rs", "body.rs"]
            .iter()
            .any(|f| p.ends_with(f))
    });
    let mut fat = Vec::new();
    for path in paths {
        let code = product_code(&std::fs::read_to_string(&path).unwrap());
        let lines: Vec<&str> = code.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.starts_with("pub async fn ") {
                continue;
            }
            let len = lines[i..]
                .iter()
                .position(|l| *l == "}")
                .map_or(lines.len() - i, |end| end + 1);
            if len > LONG_HANDLER {
                fat.push(format!("{}: `{line}` has {len} lines", path.display()));
            }
        }
    }
    assert!(
        fat.is_empty(),
        "handlers over {LONG_HANDLER} lines: {fat:?}"
    );
}
