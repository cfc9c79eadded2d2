//! The module layout stays acyclic: no top-level module of the library reaches, through
//! `crate::…` paths, a module that reaches back to it. Read from the sources, so a new
//! `use crate::proxy::…` in `config/` fails here with the files that make the cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level module → the top-level modules it uses → the files that use them.
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

#[test]
fn top_level_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    assert!(
        graph.len() >= 10,
        "expected the library's modules, found {:?}",
        graph.keys().collect::<Vec<_>>()
    );
    let cycles = cycles(&graph);
    let mut report = String::new();
    for cycle in &cycles {
        report.push_str(&format!("cycle {cycle:?}:\n"));
        for from in cycle {
            for (to, files) in &graph[from] {
                if cycle.contains(to) {
                    report.push_str(&format!("  {from} -> {to} in {files:?}\n"));
                }
            }
        }
    }
    assert!(cycles.is_empty(), "{report}");
}

/// `qa/` (the stand-in gateway) is a separate product in the same crate: only the binary's
/// `mock-gateway` and `notify` commands use it, never the proxy, the admin or anything else
/// in the library (see `lib.rs`).
#[test]
fn nothing_in_the_library_uses_qa() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    assert!(
        graph.contains_key("qa"),
        "src/qa/ is gone: update this test"
    );
    let users: Vec<String> = graph
        .iter()
        .filter_map(|(from, uses)| Some(format!("{from} in {:?}", uses.get("qa")?)))
        .collect();
    assert!(users.is_empty(), "the library uses qa: {users:?}");
}

#[test]
fn the_check_finds_a_cycle_when_there_is_one() {
    let mut graph = Graph::new();
    let mut edge = |from: &str, to: &str| {
        graph
            .entry(from.to_owned())
            .or_default()
            .entry(to.to_owned())
            .or_default()
            .insert(format!("{from}/mod.rs"));
    };
    edge("proxy", "runtime");
    edge("runtime", "state");
    edge("state", "proxy");
    edge("config", "schedule");
    edge("admin", "config");
    graph.entry("schedule".to_owned()).or_default();
    let found = cycles(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0],
        BTreeSet::from(["proxy", "runtime", "state"].map(String::from))
    );
}

#[test]
fn uses_are_read_from_paths_groups_and_not_from_comments_or_unit_tests() {
    let text = "//! Docs mention crate::admin.\n\
                use crate::{config::Config, schedule};\n\
                use crate::response::Body; // crate::decide in a comment\n\
                fn f() { crate::clock::now(); }\n\
                #[cfg(test)]\n\
                mod tests { use crate::proxy; fn f() { format!(\"{}\", 1); } }\n\
                fn after() { crate::upstream::probe(); }\n";
    let used = uses(text);
    assert_eq!(
        used,
        BTreeSet::from(["clock", "config", "response", "schedule", "upstream"].map(String::from))
    );
}

/// The graph of `src/`'s top-level modules (`lib.rs`, `main.rs` and the binary's `cli/`
/// are roots, not modules).
fn module_graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    let mut modules = BTreeSet::new();
    for entry in fs::read_dir(src).expect("src/ is readable") {
        let path = entry.expect("src/ entry").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        if matches!(name.as_str(), "lib" | "main" | "cli") {
            continue;
        }
        if path.is_dir() || path.extension().is_some_and(|e| e == "rs") {
            modules.insert(name);
        }
    }
    for module in &modules {
        let node = graph.entry(module.clone()).or_default();
        for file in rust_files(src, module) {
            if file.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let text = fs::read_to_string(&file).expect("source is readable");
            let shown = file
                .strip_prefix(src)
                .unwrap_or(&file)
                .display()
                .to_string();
            for used in uses(&text) {
                if &used != module && modules.contains(&used) {
                    node.entry(used).or_default().insert(shown.clone());
                }
            }
        }
    }
    graph
}

/// `src/NAME.rs` and everything under `src/NAME/`.
fn rust_files(src: &Path, module: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let single = src.join(format!("{module}.rs"));
    if single.is_file() {
        files.push(single);
    }
    let mut dirs = vec![src.join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// The top-level modules a source file names as `crate::NAME` or `crate::{NAME, …}`,
/// outside comments and its `#[cfg(test)] mod tests`.
fn uses(text: &str) -> BTreeSet<String> {
    let code: String = without_unit_tests(text)
        .lines()
        .map(|line| line.find("//").map_or(line, |at| &line[..at]))
        .collect::<Vec<_>>()
        .join("\n");
    let mut used = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = group.split('}').next().unwrap_or_default();
            // Only the first segment of each item at the group's top level.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_ascii_lowercase() || c == '_') && depth == 0 => {
                        used.insert(ident(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                used.insert(name);
            }
        }
    }
    used
}

/// `text` without its `#[cfg(test)] mod tests { … }` block (braces counted; the braces in
/// format strings come in pairs).
fn without_unit_tests(text: &str) -> String {
    const MARK: &str = "#[cfg(test)]\nmod tests {";
    let Some(start) = text.find(MARK) else {
        return text.to_owned();
    };
    let mut depth = 0usize;
    for (i, c) in text[start + MARK.len() - 1..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    let end = start + MARK.len() - 1 + i + 1;
                    return format!("{}{}", &text[..start], &text[end..]);
                }
            }
            _ => {}
        }
    }
    text[..start].to_owned()
}

fn ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// Every strongly connected set of more than one module (Tarjan).
fn cycles(graph: &Graph) -> Vec<BTreeSet<String>> {
    struct Walk<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<BTreeSet<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flat_map(BTreeMap::keys) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.insert(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}
