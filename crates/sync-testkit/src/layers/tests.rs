use super::*;

/// Import cycles that exist today in crates that others are reshaping, as
/// exact member sets. A cycle may shrink or vanish (the test then says which
/// entry to update); it may not grow, merge with another, or appear anew.
/// [`ROOT`] (`crate`) stands for items written in the crate's `lib.rs`.
const KNOWN_DEBT: &[(&str, &[&str])] = &[
    // Every other library crate is free of cycles (odps-tunnel and odps-emulator since issue 19).
    (
        "sync-core",
        &[
            "checkpoint",
            "config",
            "conflict",
            "error",
            "heartbeat",
            "listing",
            "mapping",
            "merge",
            "mirror",
            "naming",
            "odps_sql",
            "osc",
            "oversized",
            "precheck",
            "private_fs",
            "retry",
            "rowconv",
            "run",
            "schema_history",
            "sink",
            "state_lock",
            "status",
            "transform",
            "verify",
            "xa",
        ],
    ),
];

/// The only crates that may carry a debt (others are reshaping them); every
/// other library crate stays at zero cycles.
const DEBT_CRATES: &[&str] = &["sync-core"];

/// Library crates that must be found (a rename must not drop one silently).
const EXPECTED: &[&str] = &[
    "binlog-parser",
    "mysql-source",
    "odps-tunnel",
    "odps-emulator",
    "sync-core",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every library crate of the workspace: `crates/*`, `benches` and
/// `examples` with a `src/lib.rs`.
fn library_crates() -> Vec<PathBuf> {
    let ws = workspace();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(ws.join("crates"))
        .expect("crates/ is readable")
        .map(|e| e.expect("crates/ entry").path())
        .chain([ws.join("benches"), ws.join("examples")])
        .filter(|d| d.join("src/lib.rs").is_file())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn library_crates_have_no_import_cycles_beyond_the_known_debt() {
    let crates = library_crates();
    let names: Vec<String> = crates
        .iter()
        .filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for expected in EXPECTED {
        assert!(
            names.iter().any(|n| n == expected),
            "library crate {expected} not found among {names:?}"
        );
    }
    for (krate, _) in KNOWN_DEBT {
        assert!(
            DEBT_CRATES.contains(krate),
            "{krate} must stay free of import cycles: fix the cycle instead of recording it"
        );
    }
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    let mut seen_debt = vec![false; KNOWN_DEBT.len()];
    for dir in &crates {
        let graph = scan_crate(dir).unwrap_or_else(|e| panic!("scanning {}: {e}", dir.display()));
        for cycle in graph.cycles() {
            let within = KNOWN_DEBT.iter().enumerate().find(|(_, (krate, members))| {
                *krate == graph.name() && cycle.iter().all(|m| members.contains(&m.as_str()))
            });
            match within {
                Some((i, (_, members))) => {
                    seen_debt[i] = true;
                    if cycle.len() < members.len() {
                        notes.push(format!(
                            "{}: the known cycle {members:?} shrank to {:?}: update KNOWN_DEBT",
                            graph.name(),
                            cycle
                        ));
                    }
                }
                None => failures.push(graph.report(&cycle)),
            }
        }
    }
    for ((krate, members), seen) in KNOWN_DEBT.iter().zip(&seen_debt) {
        if !seen {
            notes.push(format!(
                "{krate}: the known cycle {members:?} is gone: remove it from KNOWN_DEBT"
            ));
        }
    }
    for note in &notes {
        println!("layers: {note}");
    }
    assert!(
        failures.is_empty(),
        "new or bigger import cycles between top-level modules (move the shared piece into a lower \
         module both can use; see the spec's \"Layers\"):\n\n{}",
        failures.join("\n")
    );
}

/// Writes `files` (path under the crate dir, text) into a temporary crate.
fn fake_crate(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

fn edges(graph: &ModuleGraph) -> Vec<String> {
    graph
        .edges
        .keys()
        .map(|(f, t)| format!("{f}->{t}"))
        .collect()
}

#[test]
fn every_way_of_naming_another_module_is_an_edge() {
    let dir = fake_crate(&[
        (
            "src/lib.rs",
            "pub mod a;\nmod b;\npub mod c;\npub mod d;\npub mod e;\npub mod f;\npub mod g;\n\
             pub use g::Thing;\npub use d::{self as dee, Other as O};\n",
        ),
        // a: a use tree, reaching b and (through the root's re-export) g.
        ("src/a.rs", "use crate::{b::X, Thing};\n"),
        // b: nested folder; a child file reaching c with super::super, and
        // an inline path to d written without `use`.
        (
            "src/b.rs",
            "mod inner;\nfn f() { let _ = crate::d::y(); }\n",
        ),
        (
            "src/b/inner.rs",
            "use super::super::c::Z;\nuse super::sibling_of_inner;\n",
        ),
        // c: only comments, strings and test code name other modules.
        (
            "src/c.rs",
            "// crate::e::A\n/// [`x`](crate::e::x)\nconst S: &str = \"crate::e::B\";\n\
             const R: &str = r#\"crate::e::C\"#;\n#[cfg(test)]\nmod tests { use crate::e::D; }\n\
             #[cfg(test)]\nuse crate::f::E;\n",
        ),
        // d: a `pub use` re-export and a glob.
        (
            "src/d/mod.rs",
            "pub use crate::e::Reexported;\nuse crate::f::*;\n",
        ),
        (
            "src/e.rs",
            "pub(crate) fn e() {}\npub(in crate::a) fn e2() {}\n",
        ),
        // f: an inline module that reaches out with super::.
        ("src/f.rs", "mod inner {\n    use super::super::g::W;\n}\n"),
        ("src/g.rs", "pub struct Thing;\n"),
    ]);
    let graph = scan_crate(dir.path()).expect("scans");
    assert_eq!(
        edges(&graph),
        ["a->b", "a->g", "b->c", "b->d", "d->e", "d->f", "f->g"],
        "{graph:?}"
    );
    assert!(graph.cycles().is_empty());
    let sites: Vec<String> = graph
        .sites("b", "c")
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(sites, [Path::new("src/b/inner.rs:1").display().to_string()]);
}

#[test]
fn cycles_are_reported_with_the_lines_that_make_them() {
    let dir = fake_crate(&[
        (
            "src/lib.rs",
            "pub mod error;\npub mod header;\npub mod parse;\npub mod leaf;\n\
             pub use error::Error;\npub fn helper() {}\n",
        ),
        (
            "src/error.rs",
            "use crate::header::EventType;\nuse crate::leaf::L;\n",
        ),
        ("src/header.rs", "\n\nuse crate::parse::u8_;\n"),
        (
            "src/parse.rs",
            "fn f() -> crate::Error { todo!() }\nfn g() { crate::helper() }\n",
        ),
        ("src/leaf.rs", "pub struct L;\n"),
    ]);
    let graph = scan_crate(dir.path()).expect("scans");
    let cycles = graph.cycles();
    let members: BTreeSet<String> = ["error", "header", "parse"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(cycles, std::slice::from_ref(&members));
    let report = graph.report(&members);
    assert!(
        report.contains("a loop: error -> header -> parse -> error"),
        "{report}"
    );
    assert!(
        report.contains("parse -> error: src/parse.rs:1"),
        "{report}"
    );
    assert!(
        report.contains("header -> parse: src/header.rs:3"),
        "{report}"
    );
    assert!(!report.contains("leaf"), "{report}");
    // `crate::helper` is the root's own item: parse depends on the root.
    assert_eq!(graph.sites("parse", ROOT).len(), 1);
}

#[test]
fn the_root_is_a_node_when_its_own_items_are_used() {
    let dir = fake_crate(&[
        (
            "src/lib.rs",
            "pub mod server;\npub fn start() { server::run(); }\npub fn http_date() {}\n",
        ),
        (
            "src/server.rs",
            "use crate::http_date;\npub fn run() { http_date(); }\n",
        ),
    ]);
    let graph = scan_crate(dir.path()).expect("scans");
    let cycle: BTreeSet<String> = [ROOT, "server"].iter().map(|s| s.to_string()).collect();
    assert_eq!(graph.cycles(), [cycle]);
}

#[test]
fn unfollowable_layouts_are_errors() {
    let missing = fake_crate(&[("src/lib.rs", "mod gone;\n")]);
    assert!(matches!(
        scan_crate(missing.path()),
        Err(ScanError::MissingModule { .. })
    ));
    let path_attr = fake_crate(&[
        ("src/lib.rs", "#[path = \"x.rs\"]\nmod y;\n"),
        ("src/x.rs", ""),
    ]);
    assert!(matches!(
        scan_crate(path_attr.path()),
        Err(ScanError::Unsupported { .. })
    ));
    let glob = fake_crate(&[("src/lib.rs", "mod a;\npub use a::*;\n"), ("src/a.rs", "")]);
    assert!(matches!(
        scan_crate(glob.path()),
        Err(ScanError::Unsupported { .. })
    ));
}
