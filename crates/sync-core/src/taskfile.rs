//! Reading a task file, with errors that name the key and its line.
//!
//! The TOML and serde messages ("invalid type: string, expected u32") are
//! turned into ours: which key, on which line, what was expected and what
//! was found, and for a misspelt key the nearest known one.
//!
//! ```
//! use sync_core::taskfile::parse;
//! let err = parse("[source]\nurl = 5\n", "task.toml").expect_err("wrong type");
//! assert_eq!((err.line, err.key.as_deref()), (2, Some("source.url")));
//! assert!(err.to_string().contains("must be a string"));
//! ```

use crate::config::TaskConfig;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use toml::de::{DeTable, DeValue};

/// A task file that cannot be used.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub struct ConfigError {
    /// The file, as given.
    pub file: String,
    /// 1-based line of the problem (0 when unknown, e.g. the file is unreadable).
    pub line: usize,
    /// Dotted key, e.g. `source.server_id`, when the problem is one key.
    pub key: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task file {}", self.file)?;
        if self.line > 0 {
            write!(f, ", line {}", self.line)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Reads and parses a task file.
///
/// # Errors
/// [`ConfigError`] when the file cannot be read or is not a valid task file.
pub fn load(path: &Path) -> Result<TaskConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: 0,
        key: None,
        message: format!("cannot read it: {e}"),
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses a task file's text; `file` names it in errors.
///
/// # Errors
/// [`ConfigError`] naming the line, and the key when there is one.
pub fn parse(text: &str, file: &str) -> Result<TaskConfig, ConfigError> {
    let error = |span: Option<Range<usize>>, key: Option<String>, message: String| ConfigError {
        file: file.to_owned(),
        line: span.map_or(0, |s| line_of(text, s.start)),
        key,
        message,
    };
    let doc = DeTable::parse(text).map_err(|e| {
        error(
            e.span(),
            None,
            format!("not valid TOML: {}", e.message().trim()),
        )
    })?;
    let cfg = toml::from_str::<TaskConfig>(text).map_err(|e| {
        let span = e.span();
        let path = span
            .as_ref()
            // An empty or whole-file span points at the top level.
            .filter(|s| {
                let whole_file = s.start == 0 && s.end >= text.trim_end().len();
                !(s.is_empty() || whole_file)
            })
            .and_then(|s| key_at(doc.get_ref(), s))
            .unwrap_or_default();
        let (key, message) = explain(e.message().trim(), &path);
        error(span, key, message)
    })?;
    match invalid_value(&cfg) {
        None => Ok(cfg),
        Some((path, message)) => {
            let keys: Vec<String> = path.iter().map(|k| (*k).to_owned()).collect();
            Err(error(
                span_of(doc.get_ref(), &keys),
                Some(keys.join(".")),
                message,
            ))
        }
    }
}

/// Values that parse but cannot work: (key path, message).
fn invalid_value(cfg: &TaskConfig) -> Option<(Vec<&str>, String)> {
    let sync = &cfg.sync;
    if cfg.source.server_id == 0 {
        return Some((
            vec!["source", "server_id"],
            "`source.server_id` cannot be 0: the source refuses a replica without an id; \
             choose a number in 1–4294967295 that no other replica of the source uses"
                .into(),
        ));
    }
    if let Err((key, message)) = crate::osc::Classifier::new(&cfg.objects.online_ddl) {
        return Some((
            vec!["objects", "online_ddl", key],
            format!("`objects.online_ddl.{key}`: {message}"),
        ));
    }
    if sync.types.is_empty() {
        return Some((
            vec!["sync", "types"],
            "`sync.types` is empty: list at least one of \"schema\", \"full\", \"incremental\""
                .into(),
        ));
    }
    for (key, value) in [
        ("chunk_rows", sync.chunk_rows),
        ("chunk_mb", sync.chunk_mb),
        ("parallelism", sync.parallelism as u64),
        ("batch_rows", sync.batch_rows as u64),
        ("flush_interval_ms", sync.flush_interval_ms),
        ("max_batch_records", sync.max_batch_records as u64),
    ] {
        if value == 0 {
            return Some((
                vec!["sync", key],
                format!("`sync.{key}` must be at least 1"),
            ));
        }
    }
    if !cfg.source.failover_urls.is_empty() && cfg.source.resume != crate::config::ResumeBy::Gtid {
        return Some((
            vec!["source", "failover_urls"],
            "`source.failover_urls` needs `source.resume = \"gtid\"`: binlog file offsets differ from server to server".into(),
        ));
    }
    if let Some(kind) = sync.ddl.refused() {
        return Some((
            vec!["sync", "ddl", kind.key()],
            format!(
                "`sync.ddl.{}` cannot be \"apply\": only add_column and create_table are applied to the destination; \
                 use \"ignore\" or \"stop\"",
                kind.key()
            ),
        ));
    }
    if let Some(bad) = cfg
        .throttle
        .invalid()
        .or_else(|| cfg.retry.invalid())
        .or_else(|| cfg.heartbeat.invalid())
    {
        return Some(bad);
    }
    if let crate::config::DestinationConfig::Local {
        compression: Some(codec),
        ..
    } = &cfg.destination
        && crate::config::ParquetCompression::from_name(codec).is_none()
    {
        return Some((
            vec!["destination", "compression"],
            format!(
                "`destination.compression` cannot be {codec:?}; it is one of {}",
                crate::config::ParquetCompression::NAMES
                    .map(|n| format!("{n:?}"))
                    .join(", ")
            ),
        ));
    }
    if let crate::config::DestinationConfig::Maxcompute(mc) = &cfg.destination
        && let Some(zone) = &mc.timezone
        && let Err(e) = crate::timezone::Zone::parse(zone)
    {
        return Some((
            vec!["destination", "timezone"],
            format!("`destination.timezone`: {e}"),
        ));
    }
    // An upsert session lives at most 24 hours; a day between commits
    // would be no mirror at all.
    if let crate::config::DestinationConfig::Maxcompute(mc) = &cfg.destination
        && mc.mirror_commit_seconds > 86_400
    {
        return Some((
            vec!["destination", "mirror_commit_seconds"],
            format!(
                "`destination.mirror_commit_seconds` is {}: at most 86400 (a day); 60 suits the \
                 service's limit of about one commit per minute per table",
                mc.mirror_commit_seconds
            ),
        ));
    }
    if let Some(zone) = &cfg.sync.partition_timezone
        && let Err(e) = crate::timezone::Zone::parse(zone)
    {
        return Some((
            vec!["sync", "partition_timezone"],
            format!("`sync.partition_timezone`: {e}"),
        ));
    }
    if cfg.objects.include.is_empty() {
        return Some((
            vec!["objects", "include"],
            "`objects.include` is empty: nothing would be synced; list `db.table` patterns such as \"shop.*\"".into(),
        ));
    }
    for (name, options) in &cfg.objects.tables {
        let path = vec!["objects", "tables", name.as_str()];
        if name.split('.').count() != 2 || name.split('.').any(str::is_empty) {
            return Some((
                path,
                format!("[objects.tables.\"{name}\"] must name one table as \"db.table\""),
            ));
        }
        if options.columns.as_ref().is_some_and(Vec::is_empty) {
            return Some((
                path,
                format!(
                    "[objects.tables.\"{name}\"] columns is empty: list the columns to sync, or leave it out to sync all"
                ),
            ));
        }
    }
    None
}

/// Where `path` is written (its key), for the error line.
fn span_of(table: &DeTable<'_>, path: &[String]) -> Option<Range<usize>> {
    let (first, rest) = path.split_first()?;
    let (k, v) = table.iter().find(|(k, _)| k.get_ref() == first.as_str())?;
    match (rest.is_empty(), v.get_ref()) {
        (true, _) => Some(k.span()),
        (false, DeValue::Table(t)) => span_of(t, rest).or(Some(k.span())),
        (false, _) => Some(k.span()),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dotted path of the innermost key whose key or value covers `span`.
fn key_at(table: &DeTable<'_>, span: &Range<usize>) -> Option<Vec<String>> {
    let covers = |s: Range<usize>| s.start <= span.start && span.end <= s.end;
    for (k, v) in table {
        // A `[section]`'s own span is its header only: look inside first.
        let inner = match v.get_ref() {
            DeValue::Table(t) => key_at(t, span),
            DeValue::Array(items) => items.iter().find_map(|item| match item.get_ref() {
                DeValue::Table(t) => key_at(t, span),
                _ => None,
            }),
            _ => None,
        };
        if let Some(mut path) = inner {
            path.insert(0, k.get_ref().to_string());
            return Some(path);
        }
        if covers(k.span()) || covers(v.span()) {
            return Some(vec![k.get_ref().to_string()]);
        }
    }
    None
}

/// Our message for serde's: (dotted key, message).
fn explain(serde: &str, path: &[String]) -> (Option<String>, String) {
    let here = path.join(".");
    let section = |p: &[String]| {
        if p.is_empty() {
            "at the top level".to_owned()
        } else {
            format!("in [{}]", p.join("."))
        }
    };
    if let Some(rest) = serde.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or_default();
        let known = backticked(rest.split_once("expected").map_or("", |x| x.1));
        let parent = &path[..path.len().saturating_sub(1)];
        let mut key = parent.to_vec();
        key.push(name.to_owned());
        let hint = match closest(name, &known) {
            Some(k) => format!("; did you mean `{k}`?"),
            None if known.is_empty() => String::new(),
            None => format!("; known keys: {}", known.join(", ")),
        };
        return (
            Some(key.join(".")),
            format!("unknown key `{name}` {}{hint}", section(parent)),
        );
    }
    if let Some(rest) = serde.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        let mut key = path.to_vec();
        key.push(name.to_owned());
        return (
            Some(key.join(".")),
            format!("the required key `{name}` is missing {}", section(path)),
        );
    }
    if let Some(rest) = serde.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "?"));
        return (
            Some(here.clone()),
            format!(
                "`{here}` must be {}, but it is {}",
                plain_type(expected),
                found
            ),
        );
    }
    if let Some(rest) = serde.strip_prefix("unknown variant `") {
        let value = rest.split('`').next().unwrap_or_default();
        let known = backticked(rest.split_once("expected").map_or("", |x| x.1));
        return (
            Some(here.clone()),
            format!(
                "`{here}` cannot be \"{value}\"; it is one of {}",
                known
                    .iter()
                    .map(|k| format!("\"{k}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    if let Some(rest) = serde.strip_prefix("invalid value: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "?"));
        if let Some(range) = integer_range(expected)
            && found.starts_with("integer ")
        {
            return (
                Some(here.clone()),
                format!("`{here}` is out of range ({range}), it is {found}"),
            );
        }
        return (
            Some(here.clone()),
            format!(
                "`{here}` must be {}, but it is {found}",
                plain_type(expected)
            ),
        );
    }
    let key = (!here.is_empty()).then_some(here);
    (key, serde.to_owned())
}

/// serde's type words as a task file's author would say them.
fn plain_type(expected: &str) -> String {
    let e = expected.trim();
    let word = match e {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a non-negative whole number",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a string" => "a string",
        "a sequence" => "an array, e.g. [\"a\", \"b\"]",
        "a map" => "a table",
        _ => return e.to_owned(),
    };
    word.to_owned()
}

/// The values an integer type of serde's takes, as `min–max`.
fn integer_range(expected: &str) -> Option<String> {
    let (min, max): (i128, i128) = match expected.trim() {
        "u8" => (0, u8::MAX.into()),
        "u16" => (0, u16::MAX.into()),
        "u32" => (0, u32::MAX.into()),
        "u64" => (0, u64::MAX.into()),
        "usize" => (0, usize::MAX as i128),
        "i8" => (i8::MIN.into(), i8::MAX.into()),
        "i16" => (i16::MIN.into(), i16::MAX.into()),
        "i32" => (i32::MIN.into(), i32::MAX.into()),
        "i64" => (i64::MIN.into(), i64::MAX.into()),
        _ => return None,
    };
    Some(format!("{min}–{max}"))
}

fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The known key nearest to a misspelt one (at most a third of it changed).
fn closest(name: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, k)| *d <= (k.len().max(name.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "[source]\nurl = \"mysql://root@127.0.0.1:3307\"\nserver_id = 3\n\
                        [destination]\nkind = \"local\"\npath = \"w\"\n\
                        [objects]\ninclude = [\"shop.*\"]\n\
                        [sync]\ntypes = [\"schema\"]\nstate_dir = \"s\"\n";

    #[test]
    fn mirror_keys_parse_with_their_defaults_and_a_bound() {
        let mc = |extra: &str| {
            GOOD.replace(
                "kind = \"local\"\npath = \"w\"\n",
                &format!(
                    "kind = \"maxcompute\"\nendpoint = \"http://127.0.0.1:1/api\"\nproject = \"p\"\n{extra}"
                ),
            )
        };
        let mirror = |cfg: TaskConfig| match cfg.destination {
            crate::config::DestinationConfig::Maxcompute(m) => (m.mirror, m.mirror_commit_seconds),
            other => panic!("maxcompute, not {other:?}"),
        };
        let cfg = parse(&mc(""), "task.toml").expect("defaults");
        assert_eq!(mirror(cfg), (false, 60));
        let cfg = parse(
            &mc("mirror = true\nmirror_commit_seconds = 0\n"),
            "task.toml",
        )
        .expect("on");
        assert_eq!(mirror(cfg), (true, 0));
        let err = parse(
            &mc("mirror = true\nmirror_commit_seconds = 90000\n"),
            "task.toml",
        )
        .expect_err("over a day");
        assert_eq!(
            err.key.as_deref(),
            Some("destination.mirror_commit_seconds")
        );
    }

    #[test]
    fn a_good_file_parses() {
        let cfg = parse(GOOD, "task.toml").expect("good");
        assert_eq!(cfg.source.server_id, 3);
    }

    #[test]
    fn online_ddl_patterns_parse_as_in_the_readme_and_a_bad_one_names_its_key() {
        let readme = "[objects.online_ddl]\nfollow = true\n\
             shadow_tables = ['^_.+_(gho|new)$', '^tp_\\d+_ogt_.+$']\n\
             helper_tables = ['^_.+_(ghc|ghk)$', '^tp_\\d+_ogl_.+$']\n\
             trash_tables = ['^_.+_(del|old)$', '^tp_\\d+_del_.+$']\n";
        let text = GOOD.replace("[sync]\n", &format!("{readme}[sync]\n"));
        let cfg = parse(&text, "task.toml").expect("good");
        assert_eq!(
            cfg.objects.online_ddl,
            crate::config::OnlineDdlConfig::default()
        );
        let text = GOOD.replace(
            "[sync]\n",
            "[objects.online_ddl]\ntrash_tables = ['_(old']\n[sync]\n",
        );
        let err = parse(&text, "task.toml").expect_err("bad pattern");
        assert_eq!(err.key.as_deref(), Some("objects.online_ddl.trash_tables"));
        assert!(err.message.contains("not a regular expression"), "{err}");
    }

    #[test]
    fn the_debug_form_of_a_task_holds_no_password() {
        let text = GOOD.replace(
            "mysql://root@127.0.0.1:3307\"",
            "mysql://repl:Zq/7?x#k@p:ss@10.0.0.1:3306/shop\"\n\
             resume = \"gtid\"\nfailover_urls = [\"mysql://repl:Zq/7?x#k@p:ss@10.0.0.2:3306\"]",
        );
        let cfg = parse(&text, "task.toml").expect("good");
        let shown = format!("{cfg:?}");
        for piece in ["Zq/7", "p:ss", "x#k"] {
            assert!(!shown.contains(piece), "{shown}");
        }
        assert!(
            shown.contains("10.0.0.1") && shown.contains("10.0.0.2"),
            "{shown}"
        );
    }

    #[test]
    fn a_misspelt_key_is_named_with_its_line_and_the_likely_key() {
        let text = GOOD.replace("server_id = 3", "servr_id = 3");
        let err = parse(&text, "task.toml").expect_err("typo");
        assert_eq!(err.line, 3);
        assert_eq!(err.key.as_deref(), Some("source.servr_id"));
        assert_eq!(
            err.to_string(),
            "task file task.toml, line 3: unknown key `servr_id` in [source]; did you mean `server_id`?"
        );
        let text = GOOD.replace("[objects]\n", "[objects]\ncapitalisation = \"upper\"\n");
        let err = parse(&text, "t.toml").expect_err("typo");
        assert!(
            err.message.contains("did you mean `capitalization`"),
            "{err}"
        );
        assert_eq!(err.line, 8);
    }

    #[test]
    fn the_local_parquet_settings_parse_and_a_wrong_codec_is_named() {
        use crate::config::{DestinationConfig, ParquetCompression};
        let text = GOOD.replace(
            "path = \"w\"\n",
            "path = \"w\"\ncompression = \"snappy\"\ndictionary = true\n",
        );
        let cfg = parse(&text, "task.toml").expect("settings");
        assert!(matches!(
            cfg.destination,
            DestinationConfig::Local {
                compression: Some(ref c),
                dictionary: true,
                ..
            } if ParquetCompression::from_name(c) == Some(ParquetCompression::Snappy)
        ));
        let text = GOOD.replace("path = \"w\"\n", "path = \"w\"\ncompression = \"gzip\"\n");
        let err = parse(&text, "task.toml").expect_err("codec");
        assert!(
            err.message.contains("gzip") && err.message.contains("zstd"),
            "{err}"
        );
        assert_eq!(err.line, 7, "{err}");
    }

    #[test]
    fn a_wrong_type_names_the_key_and_what_it_must_be() {
        let text = GOOD.replace("server_id = 3", "server_id = \"three\"");
        let err = parse(&text, "task.toml").expect_err("type");
        assert_eq!(
            (err.line, err.key.as_deref()),
            (3, Some("source.server_id"))
        );
        assert_eq!(
            err.message,
            "`source.server_id` must be a non-negative whole number, but it is string \"three\""
        );
        let text = GOOD.replace("include = [\"shop.*\"]", "include = \"shop.*\"");
        let err = parse(&text, "task.toml").expect_err("type");
        assert_eq!((err.line, err.key.as_deref()), (8, Some("objects.include")));
        assert!(err.message.contains("must be an array"), "{err}");
        let text = GOOD.replace("[objects]\n", "[objects]\ncapitalization = \"title\"\n");
        let err = parse(&text, "task.toml").expect_err("variant");
        assert_eq!(err.key.as_deref(), Some("objects.capitalization"));
        assert!(
            err.message.contains("\"lower\", \"upper\", \"source\""),
            "{err}"
        );
    }

    #[test]
    fn a_missing_required_key_is_named_with_its_section() {
        let text = GOOD.replace("state_dir = \"s\"\n", "");
        let err = parse(&text, "task.toml").expect_err("missing");
        assert_eq!(err.key.as_deref(), Some("sync.state_dir"));
        assert_eq!(err.line, 9, "the [sync] header");
        assert_eq!(
            err.message,
            "the required key `state_dir` is missing in [sync]"
        );
        // [destination] may be left out (a program passing its own sink);
        // [objects] may not.
        let err =
            parse("[source]\nurl = \"x\"\nserver_id = 1\n", "task.toml").expect_err("missing");
        assert_eq!(err.key.as_deref(), Some("objects"), "{err}");
    }

    #[test]
    fn values_that_cannot_work_are_named_with_their_line() {
        let text = GOOD.replace(
            "state_dir = \"s\"\n",
            "state_dir = \"s\"\nparallelism = 0\n",
        );
        let err = parse(&text, "task.toml").expect_err("zero");
        assert_eq!(
            (err.line, err.key.as_deref()),
            (12, Some("sync.parallelism"))
        );
        assert_eq!(err.message, "`sync.parallelism` must be at least 1");
        let text = GOOD.replace("server_id = 3", "server_id = 0");
        let err = parse(&text, "task.toml").expect_err("zero id");
        assert_eq!(
            (err.line, err.key.as_deref()),
            (3, Some("source.server_id"))
        );
        assert!(err.message.contains("1–4294967295"), "{err}");
        let text = GOOD.replace("server_id = 3", "server_id = 99999999999");
        let err = parse(&text, "task.toml").expect_err("too big");
        assert_eq!(
            (err.line, err.key.as_deref()),
            (3, Some("source.server_id"))
        );
        assert_eq!(
            err.message,
            "`source.server_id` is out of range (0–4294967295), it is integer `99999999999`"
        );
        let text = GOOD.replace("types = [\"schema\"]", "types = []");
        let err = parse(&text, "task.toml").expect_err("empty");
        assert_eq!((err.line, err.key.as_deref()), (10, Some("sync.types")));
        let text = format!("{GOOD}[objects.tables.\"orders\"]\nname = \"o\"\n");
        let err = parse(&text, "task.toml").expect_err("no db");
        assert_eq!(err.line, 12);
        assert!(err.message.contains("\"db.table\""), "{err}");
    }

    #[test]
    fn unsupported_events_is_stop_skip_or_an_error_with_its_line() {
        use crate::config::UnsupportedEvents;
        let cfg = parse(GOOD, "task.toml").expect("default");
        assert_eq!(cfg.sync.unsupported_events, UnsupportedEvents::Stop);
        let text = GOOD.replace(
            "state_dir = \"s\"\n",
            "state_dir = \"s\"\nunsupported_events = \"skip\"\n",
        );
        let cfg = parse(&text, "task.toml").expect("skip");
        assert_eq!(cfg.sync.unsupported_events, UnsupportedEvents::Skip);
        let text = GOOD.replace(
            "state_dir = \"s\"\n",
            "state_dir = \"s\"\nunsupported_events = \"ignore\"\n",
        );
        let err = parse(&text, "task.toml").expect_err("unknown value");
        assert_eq!(
            (err.line, err.key.as_deref()),
            (12, Some("sync.unsupported_events"))
        );
        assert!(
            err.message.contains("\"stop\"") && err.message.contains("\"skip\""),
            "{err}"
        );
    }

    #[test]
    fn the_read_protocol_and_chunk_size_parse_and_are_checked() {
        use mysql_source::snapshot::ReadProtocol;
        let text = GOOD.replace(
            "state_dir = \"s\"\n",
            "state_dir = \"s\"\nread_protocol = \"text\"\nchunk_mb = 4\n",
        );
        let cfg = parse(&text, "task.toml").expect("text");
        assert_eq!(cfg.sync.read_protocol, ReadProtocol::Text);
        assert_eq!(cfg.sync.chunk_mb, 4);
        let text = GOOD.replace(
            "state_dir = \"s\"\n",
            "state_dir = \"s\"\nread_protocol = \"binery\"\n",
        );
        let err = parse(&text, "task.toml").expect_err("typo");
        assert_eq!(
            (err.line, err.key.as_deref()),
            (12, Some("sync.read_protocol"))
        );
        assert!(err.message.contains("\"binary\""), "{err}");
        let text = GOOD.replace("state_dir = \"s\"\n", "state_dir = \"s\"\nchunk_mb = 0\n");
        let err = parse(&text, "task.toml").expect_err("zero");
        assert_eq!(err.message, "`sync.chunk_mb` must be at least 1");
    }

    #[test]
    fn the_ddl_policy_parses_inline_or_as_a_section_and_refuses_apply_but_for_add_column() {
        let text = GOOD.replace(
            "state_dir = \"s\"\n",
            "state_dir = \"s\"\nddl = { add_column = \"ignore\", drop_column = \"ignore\" }\n",
        );
        let cfg = parse(&text, "task.toml").expect("inline");
        use crate::config::{DdlAction, DdlKind};
        assert_eq!(cfg.sync.ddl.add_column, DdlAction::Ignore);
        assert_eq!(
            cfg.sync.ddl.action(DdlKind::DropColumn),
            (DdlAction::Ignore, DdlKind::DropColumn)
        );
        assert_eq!(
            cfg.sync.ddl.action(DdlKind::RenameTable),
            (DdlAction::Stop, DdlKind::Other)
        );
        assert_eq!(cfg.sync.ddl.create_table, DdlAction::Apply);
        let text = format!("{GOOD}[sync.ddl]\nother = \"ignore\"\ntruncate_table = \"apply\"\n");
        let err = parse(&text, "task.toml").expect_err("apply");
        assert_eq!(
            (err.line, err.key.as_deref()),
            (14, Some("sync.ddl.truncate_table"))
        );
        assert!(
            err.message.contains("only add_column and create_table"),
            "{err}"
        );
        let text = format!("{GOOD}[sync.ddl]\ndrop_colum = \"ignore\"\n");
        let err = parse(&text, "task.toml").expect_err("typo");
        assert!(err.message.contains("did you mean `drop_column`"), "{err}");
    }

    #[test]
    fn retry_throttle_and_heartbeat_values_are_named_with_their_line() {
        let text = format!("{GOOD}[retry]\nconnection_minutes = 15\nother_minutes = 20\n");
        let err = parse(&text, "task.toml").expect_err("inverted windows");
        assert_eq!(
            (err.line, err.key.as_deref()),
            (14, Some("retry.other_minutes"))
        );
        assert!(
            err.message
                .contains("must be shorter than `retry.connection_minutes` (15 min)"),
            "{err}"
        );
        let text = format!("{GOOD}[retry]\nconnection_minutes = 5000\n");
        let err = parse(&text, "task.toml").expect_err("too long");
        assert_eq!(err.key.as_deref(), Some("retry.connection_minutes"));
        assert!(err.message.contains("between 10 and 1440"), "{err}");
        let text = format!("{GOOD}[retry]\nconnection_seconds = 30\nother_seconds = 5\n");
        let cfg = parse(&text, "task.toml").expect("test windows");
        assert_eq!(
            cfg.retry.window(crate::retry::RetryKind::Destination),
            std::time::Duration::from_secs(5)
        );
        let text = format!("{GOOD}[throttle]\nfull_qps = 10\nfull_rows_per_second = -1\n");
        let err = parse(&text, "task.toml").expect_err("negative");
        assert_eq!(
            (err.line, err.key.as_deref()),
            (14, Some("throttle.full_rows_per_second"))
        );
        let text = format!("{GOOD}[heartbeat]\nenabled = true\ntable = \"heartbeat\"\n");
        let err = parse(&text, "task.toml").expect_err("no db");
        assert_eq!(
            (err.line, err.key.as_deref()),
            (14, Some("heartbeat.table"))
        );
        let text = format!("{GOOD}[throttle]\nfull_qbs = 10\n");
        let err = parse(&text, "task.toml").expect_err("typo");
        assert!(err.message.contains("did you mean `full_qps`"), "{err}");
    }

    #[test]
    fn broken_toml_names_its_line() {
        let text = GOOD.replace("server_id = 3", "server_id = = 3");
        let err = parse(&text, "task.toml").expect_err("syntax");
        assert_eq!(err.line, 3);
        assert!(err.message.starts_with("not valid TOML"), "{err}");
    }
}
