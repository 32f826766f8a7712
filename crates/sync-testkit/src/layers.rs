//! Import cycles between the top-level modules of a library crate.
//!
//! [`scan_crate`] reads a crate's `src/lib.rs` and every module file it
//! declares (following `mod x;` the way rustc does: `x.rs` or `x/mod.rs`,
//! then `x/*.rs` for its children) and builds the graph of its top-level
//! modules: an edge `a -> b` for every path in `a`'s files that names
//! something in `b`. [`ModuleGraph::cycles`] returns its strongly connected
//! components, and [`ModuleGraph::report`] says for one of them the cycle and,
//! for each edge in it, the `file:line` that creates it.
//!
//! What makes an edge:
//! * `use` declarations, `pub use` re-exports included, with their trees
//!   (`use crate::{a::X, b::{Y, Z}}`, `use super::*`, `as` renames);
//! * paths used inline without `use`: `crate::x::f()`, `super::super::y::T`,
//!   `$crate::z` in a macro (counted where the macro is written);
//! * a path to a name that the crate root re-exports (`crate::Error` with
//!   `pub use error::Error` in `lib.rs`) counts as a path to the module it
//!   comes from;
//! * the crate root's own items (functions and types written in `lib.rs`)
//!   form the node [`ROOT`]: a module that uses them depends on the root, and
//!   the root depends on the modules its own code uses (inline paths and
//!   private `use`s). Its `pub use` list is a facade, not a dependency.
//!
//! Limits (a hand-written scanner, not rustc's name resolution):
//! * items under `#[cfg(test)]` are skipped (test code may reach anywhere);
//!   other `cfg`s count, whatever the features;
//! * comments, doc comments (intra-doc links included), string, raw-string,
//!   byte and character literals never make edges; macro bodies are read as
//!   plain tokens;
//! * a bare path in a submodule (`json::Json` made visible by a glob import of
//!   the root) is not seen; every way the workspace writes paths is;
//! * `#[path = ".."]` on a module and a glob re-export of a local module in
//!   the crate root are refused with an error, not guessed at.

mod lex;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use lex::{Tok, Token};

/// The node of the crate root's own items (those written in `lib.rs`).
pub const ROOT: &str = "crate";

/// Where an edge comes from: a file (relative to the crate's directory) and a
/// 1-based line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Site {
    /// The file, e.g. `src/events/rows.rs`.
    pub file: PathBuf,
    /// The line of the path segment that names the other module.
    pub line: usize,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// Why a crate could not be scanned.
#[derive(Debug)]
pub enum ScanError {
    /// A source file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A literal or comment never ends.
    Unterminated {
        /// The file.
        path: PathBuf,
        /// What never ends, and where it starts.
        detail: String,
    },
    /// `mod x;` names a file that is in neither place rustc looks.
    MissingModule {
        /// The file with the declaration.
        path: PathBuf,
        /// Its line.
        line: usize,
        /// The module's name.
        name: String,
    },
    /// Something the scanner does not follow (`#[path]`, a glob re-export
    /// of a local module in the root).
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// What it is, and how to write it instead.
        what: &'static str,
    },
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Self::Unterminated { path, detail } => write!(f, "{}: {detail}", path.display()),
            Self::MissingModule { path, line, name } => write!(
                f,
                "{}:{line}: `mod {name};` has no {name}.rs or {name}/mod.rs",
                path.display()
            ),
            Self::Unsupported { path, line, what } => {
                write!(
                    f,
                    "{}:{line}: the layer scanner does not follow {what}",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for ScanError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The dependency graph between the top-level modules of one crate.
#[derive(Debug)]
pub struct ModuleGraph {
    name: String,
    modules: BTreeSet<String>,
    edges: BTreeMap<(String, String), BTreeSet<Site>>,
}

/// Scans the library crate in `crate_dir` (which holds `src/lib.rs`).
///
/// # Errors
/// [`ScanError`] when a file cannot be read or tokenized, a declared module
/// file is missing, or the crate uses something the scanner does not follow.
pub fn scan_crate(crate_dir: &Path) -> Result<ModuleGraph, ScanError> {
    let mut walk = Walk {
        crate_dir: crate_dir.to_path_buf(),
        modules: BTreeSet::new(),
        refs: Vec::new(),
    };
    let src = crate_dir.join("src");
    walk.file(&src.join("lib.rs"), &[], &src)?;
    let name = crate_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    walk.resolve(name)
}

impl ModuleGraph {
    /// The crate's directory name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The top-level modules (and [`ROOT`]).
    pub fn modules(&self) -> impl Iterator<Item = &str> {
        self.modules.iter().map(String::as_str)
    }

    /// The sites of the edge `from -> to`, empty when there is none.
    pub fn sites(&self, from: &str, to: &str) -> Vec<&Site> {
        self.edges
            .get(&(from.to_owned(), to.to_owned()))
            .map(|s| s.iter().collect())
            .unwrap_or_default()
    }

    /// Every import cycle: the strongly connected components with more than
    /// one module, each as its sorted member set, sorted.
    pub fn cycles(&self) -> Vec<BTreeSet<String>> {
        let mut tarjan = Tarjan {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            next: 0,
            out: Vec::new(),
        };
        for m in &self.modules {
            if !tarjan.index.contains_key(m.as_str()) {
                tarjan.visit(m);
            }
        }
        let mut out: Vec<BTreeSet<String>> = tarjan
            .out
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|c| c.into_iter().map(str::to_owned).collect())
            .collect();
        out.sort();
        out
    }

    /// A readable account of one cycle: a shortest loop through its first
    /// member, then every edge between its members with the lines that make
    /// it.
    pub fn report(&self, cycle: &BTreeSet<String>) -> String {
        let mut s = String::new();
        let members: Vec<&str> = cycle.iter().map(String::as_str).collect();
        let _ = writeln!(
            s,
            "{}: import cycle between {}",
            self.name,
            members.join(", ")
        );
        if let Some(path) = self.shortest_loop(cycle) {
            let _ = writeln!(s, "  a loop: {}", path.join(" -> "));
        }
        let _ = writeln!(s, "  edges inside it (the lines that create them):");
        for ((from, to), sites) in &self.edges {
            if cycle.contains(from) && cycle.contains(to) {
                let shown: Vec<String> = sites.iter().take(3).map(Site::to_string).collect();
                let more = match sites.len().saturating_sub(3) {
                    0 => String::new(),
                    n => format!(" (+{n} more)"),
                };
                let _ = writeln!(s, "    {from} -> {to}: {}{more}", shown.join(", "));
            }
        }
        s
    }

    fn successors<'a>(&'a self, from: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.edges
            .keys()
            .filter(move |(f, _)| f == from)
            .map(|(_, t)| t.as_str())
    }

    fn shortest_loop(&self, cycle: &BTreeSet<String>) -> Option<Vec<String>> {
        let start = cycle.iter().next()?;
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([start.as_str()]);
        while let Some(at) = queue.pop_front() {
            for next in self.successors(at).filter(|n| cycle.contains(*n)) {
                if next == start {
                    // Walk back from `at` to `start`, then close the loop.
                    let mut path = vec![at.to_owned()];
                    let mut cur = at;
                    while let Some(p) = parent.get(cur) {
                        path.push((*p).to_owned());
                        cur = p;
                    }
                    path.reverse();
                    path.push(start.clone());
                    return Some(path);
                }
                if !parent.contains_key(next) && next != start {
                    parent.insert(next, at);
                    queue.push_back(next);
                }
            }
        }
        None
    }
}

struct Tarjan<'g> {
    graph: &'g ModuleGraph,
    index: BTreeMap<&'g str, usize>,
    low: BTreeMap<&'g str, usize>,
    stack: Vec<&'g str>,
    on_stack: BTreeSet<&'g str>,
    next: usize,
    out: Vec<Vec<&'g str>>,
}

impl<'g> Tarjan<'g> {
    fn visit(&mut self, v: &'g str) {
        self.index.insert(v, self.next);
        self.low.insert(v, self.next);
        self.next += 1;
        self.stack.push(v);
        self.on_stack.insert(v);
        for w in self.graph.successors(v) {
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
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack.remove(w);
                component.push(w);
                if w == v {
                    break;
                }
            }
            self.out.push(component);
        }
    }
}

/// A path found in a file, before names are resolved.
struct Ref {
    /// The module the path is written in (`[]` is the root).
    scope: Vec<String>,
    /// Its segments, each with its line.
    segs: Vec<(String, usize)>,
    file: PathBuf,
    kind: RefKind,
    /// The name a `use .. as name` gives it.
    alias: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RefKind {
    Inline,
    Use,
    /// A `pub use` (any `pub(..)`): in the root, a facade.
    PubUse,
    /// `use path::*`.
    Glob,
}

struct Walk {
    crate_dir: PathBuf,
    /// Top-level module names, from the root's `mod` declarations.
    modules: BTreeSet<String>,
    refs: Vec<Ref>,
}

impl Walk {
    fn rel(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.crate_dir)
            .unwrap_or(path)
            .to_path_buf()
    }

    /// Reads one file of module `scope`; `child_dir` is where its `mod x;`
    /// children live.
    fn file(&mut self, path: &Path, scope: &[String], child_dir: &Path) -> Result<(), ScanError> {
        let rel = self.rel(path);
        let text = std::fs::read_to_string(path).map_err(|source| ScanError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let toks = lex::tokenize(&text).map_err(|e| ScanError::Unterminated {
            path: rel.clone(),
            detail: e.to_string(),
        })?;
        let toks = strip_cfg_test(&toks);
        let is_ident = |k: usize, s: &str| matches!(toks.get(k), Some(Token { tok: Tok::Ident(i), .. }) if i == s);
        let is_punct = |k: usize, c: char| matches!(toks.get(k), Some(Token { tok: Tok::Punct(p), .. }) if *p == c);
        // Inline `mod x { .. }` blocks around the current token: name and the
        // brace depth outside them.
        let mut inline: Vec<(String, usize)> = Vec::new();
        let mut depth = 0usize;
        let mut k = 0;
        while k < toks.len() {
            let line = toks[k].line;
            let cur_scope = || -> Vec<String> {
                scope
                    .iter()
                    .cloned()
                    .chain(inline.iter().map(|(n, _)| n.clone()))
                    .collect()
            };
            match &toks[k].tok {
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => {
                    depth = depth.saturating_sub(1);
                    if inline.last().is_some_and(|(_, d)| *d == depth) {
                        inline.pop();
                    }
                }
                Tok::Punct('#') if is_punct(k + 1, '[') && is_ident(k + 2, "path") => {
                    return Err(ScanError::Unsupported {
                        path: rel,
                        line,
                        what: "#[path] on a module (declare it where rustc looks by default)",
                    });
                }
                Tok::Ident(kw) if kw == "mod" => {
                    if let Some(Token {
                        tok: Tok::Ident(name),
                        ..
                    }) = toks.get(k + 1)
                    {
                        let name = name.trim_start_matches("r#").to_owned();
                        if is_punct(k + 2, ';') {
                            let mut dir = child_dir.to_path_buf();
                            for (n, _) in &inline {
                                dir.push(n);
                            }
                            let mut child_scope = cur_scope();
                            if child_scope.is_empty() {
                                self.modules.insert(name.clone());
                            }
                            child_scope.push(name.clone());
                            let flat = dir.join(format!("{name}.rs"));
                            let nested = dir.join(&name).join("mod.rs");
                            let file = if flat.is_file() {
                                flat
                            } else if nested.is_file() {
                                nested
                            } else {
                                return Err(ScanError::MissingModule {
                                    path: rel,
                                    line,
                                    name,
                                });
                            };
                            self.file(&file, &child_scope, &dir.join(&name))?;
                            k += 3;
                            continue;
                        }
                        if is_punct(k + 2, '{') {
                            if scope.is_empty() && inline.is_empty() {
                                self.modules.insert(name.clone());
                            }
                            inline.push((name, depth));
                            k += 2;
                            continue;
                        }
                    }
                }
                Tok::Ident(kw) if kw == "use" => {
                    let public =
                        is_ident(k.wrapping_sub(1), "pub") || is_punct(k.wrapping_sub(1), ')');
                    let mut trees = Vec::new();
                    let end = use_tree(&toks, k + 1, Vec::new(), &mut trees);
                    for (segs, glob, alias) in trees {
                        let kind = match (glob, public) {
                            (true, _) => RefKind::Glob,
                            (false, true) => RefKind::PubUse,
                            (false, false) => RefKind::Use,
                        };
                        self.refs.push(Ref {
                            scope: cur_scope(),
                            segs,
                            file: rel.clone(),
                            kind,
                            alias,
                        });
                    }
                    k = end.max(k + 1);
                    continue;
                }
                Tok::Ident(first)
                    if matches!(
                        toks.get(k + 1),
                        Some(Token {
                            tok: Tok::PathSep,
                            ..
                        })
                    ) =>
                {
                    let prev_sep = matches!(
                        toks.get(k.wrapping_sub(1)),
                        Some(Token {
                            tok: Tok::PathSep,
                            ..
                        })
                    );
                    let keyword = matches!(first.as_str(), "crate" | "super" | "self");
                    let root_scope = scope.is_empty() && inline.is_empty();
                    if !prev_sep && !is_ident(k.wrapping_sub(1), "in") && (keyword || root_scope) {
                        let mut segs = vec![(first.clone(), line)];
                        let mut j = k + 1;
                        while let (
                            Some(Token {
                                tok: Tok::PathSep, ..
                            }),
                            Some(Token {
                                tok: Tok::Ident(s),
                                line,
                            }),
                        ) = (toks.get(j), toks.get(j + 1))
                        {
                            segs.push((s.clone(), *line));
                            j += 2;
                        }
                        self.refs.push(Ref {
                            scope: cur_scope(),
                            segs,
                            file: rel.clone(),
                            kind: RefKind::Inline,
                            alias: None,
                        });
                        k = j;
                        continue;
                    }
                }
                _ => {}
            }
            k += 1;
        }
        Ok(())
    }

    fn resolve(self, name: String) -> Result<ModuleGraph, ScanError> {
        // What each name the root brings in (`use`, `pub use`) stands for:
        // `Some(module)`, or `None` for something from another crate.
        let mut root_names: BTreeMap<String, Option<String>> = BTreeMap::new();
        for r in self.refs.iter().filter(|r| r.scope.is_empty()) {
            let Some(abs) = absolute(&r.scope, &r.segs) else {
                continue;
            };
            let target = abs
                .first()
                .map(|(s, _)| s.clone())
                .filter(|s| self.modules.contains(s));
            if r.kind == RefKind::Glob {
                if target.is_some() {
                    return Err(ScanError::Unsupported {
                        path: r.file.clone(),
                        line: r.segs[0].1,
                        what: "a glob re-export of a local module in the crate root (name the items)",
                    });
                }
                continue;
            }
            let name = r
                .alias
                .clone()
                .or_else(|| abs.last().map(|(l, _)| l.clone()));
            if let Some(name) = name {
                root_names.insert(name, target);
            }
        }
        let mut modules = self.modules.clone();
        let mut edges: BTreeMap<(String, String), BTreeSet<Site>> = BTreeMap::new();
        for r in &self.refs {
            let from = r.scope.first().cloned().unwrap_or_else(|| ROOT.to_owned());
            if from == ROOT && r.kind == RefKind::PubUse {
                continue;
            }
            let Some(abs) = absolute(&r.scope, &r.segs) else {
                continue;
            };
            let Some((first, line)) = abs.first() else {
                continue;
            };
            let to = if self.modules.contains(first) {
                first.clone()
            } else if let Some(target) = root_names.get(first) {
                match target {
                    Some(m) => m.clone(),
                    None => continue,
                }
            } else if r.scope.is_empty() {
                // A bare path in the root that is neither a module nor an
                // import: another crate, or the root's own item.
                continue;
            } else {
                ROOT.to_owned()
            };
            if from != to {
                if to == ROOT || from == ROOT {
                    modules.insert(ROOT.to_owned());
                }
                edges.entry((from, to)).or_default().insert(Site {
                    file: r.file.clone(),
                    line: *line,
                });
            }
        }
        Ok(ModuleGraph {
            name,
            modules,
            edges,
        })
    }
}

/// The path from the crate root that `segs`, written in module `scope`,
/// names; `None` when it starts elsewhere (another crate, a local name).
fn absolute(scope: &[String], segs: &[(String, usize)]) -> Option<Vec<(String, usize)>> {
    let (first, _) = segs.first()?;
    let mut base: Vec<(String, usize)> = match first.as_str() {
        "crate" => Vec::new(),
        "self" | "super" => scope.iter().map(|s| (s.clone(), 0)).collect(),
        _ if scope.is_empty() => Vec::new(),
        _ => return None,
    };
    let mut rest = segs;
    if first == "crate" {
        rest = &segs[1..];
    }
    let mut leading = true;
    for (seg, line) in rest {
        match seg.as_str() {
            "self" if leading => {}
            "super" if leading => {
                base.pop()?;
            }
            _ => {
                leading = false;
                base.push((seg.clone(), *line));
            }
        }
    }
    Some(base)
}

/// One path of a use tree: its segments with lines, whether it ends in `*`,
/// and its `as` name.
type UsePath = (Vec<(String, usize)>, bool, Option<String>);

/// Parses one use tree starting at `k`; pushes each full path (whether it
/// ends in `*`, and its `as` name) to `out`; returns the index after the tree (at `,`, `}`
/// or `;`).
fn use_tree(
    toks: &[Token],
    mut k: usize,
    prefix: Vec<(String, usize)>,
    out: &mut Vec<UsePath>,
) -> usize {
    let mut path = prefix;
    while let Some(t) = toks.get(k) {
        match &t.tok {
            Tok::PathSep => k += 1,
            Tok::Ident(a) if a == "as" => {
                let alias = match toks.get(k + 1).map(|t| &t.tok) {
                    Some(Tok::Ident(name)) => Some(name.clone()),
                    _ => None,
                };
                out.push((path, false, alias));
                return k + 2;
            }
            Tok::Ident(seg) => {
                if seg != "self" || path.is_empty() {
                    path.push((seg.clone(), t.line));
                }
                k += 1;
            }
            Tok::Punct('*') => {
                out.push((path, true, None));
                return k + 1;
            }
            Tok::Punct('{') => {
                k += 1;
                loop {
                    match toks.get(k).map(|t| &t.tok) {
                        None => return k,
                        Some(Tok::Punct('}')) => return k + 1,
                        Some(Tok::Punct(',')) => k += 1,
                        Some(_) => {
                            let next = use_tree(toks, k, path.clone(), out);
                            k = next.max(k + 1);
                        }
                    }
                }
            }
            _ => {
                if !path.is_empty() {
                    out.push((path, false, None));
                }
                return k;
            }
        }
    }
    k
}

/// Drops every item under `#[cfg(test)]`: the attribute, any attributes
/// after it, and the item up to its `;` or its closing brace.
fn strip_cfg_test(toks: &[Token]) -> Vec<Token> {
    let is = |k: usize, t: Tok| toks.get(k).is_some_and(|x| x.tok == t);
    let ident = |s: &str| Tok::Ident(s.to_owned());
    let mut out = Vec::with_capacity(toks.len());
    let mut k = 0;
    while k < toks.len() {
        let cfg_test = is(k, Tok::Punct('#'))
            && is(k + 1, Tok::Punct('['))
            && is(k + 2, ident("cfg"))
            && is(k + 3, Tok::Punct('('))
            && is(k + 4, ident("test"))
            && is(k + 5, Tok::Punct(')'))
            && is(k + 6, Tok::Punct(']'));
        if !cfg_test {
            out.push(toks[k].clone());
            k += 1;
            continue;
        }
        k += 7;
        // The item: up to `;` outside brackets, or through its first
        // top-level brace block (`mod tests { .. }`, `fn f() { .. }`).
        let mut depth = 0usize;
        while let Some(t) = toks.get(k) {
            k += 1;
            match t.tok {
                Tok::Punct('(' | '[') => depth += 1,
                Tok::Punct(')' | ']') => depth = depth.saturating_sub(1),
                Tok::Punct(';') if depth == 0 => break,
                Tok::Punct('{') if depth == 0 => {
                    let mut braces = 1usize;
                    while let Some(t) = toks.get(k) {
                        k += 1;
                        match t.tok {
                            Tok::Punct('{') => braces += 1,
                            Tok::Punct('}') => {
                                braces -= 1;
                                if braces == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
