//! A small tokenizer for Rust source, just enough to find paths: identifiers,
//! `::` and punctuation, with line numbers. Comments (doc comments included),
//! string, byte-string, C-string and raw-string literals, character literals,
//! lifetimes and numbers produce no tokens, so a `crate::x` inside any of them
//! is never mistaken for a path.

use std::fmt;

/// One token of interest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    /// An identifier or keyword; a raw identifier keeps its `r#` so that
    /// `r#use` is not the keyword `use`.
    Ident(String),
    /// `::`
    PathSep,
    /// Any other single punctuation character (`{`, `;`, `#`, `*`, …).
    Punct(char),
}

/// A token and the 1-based line it starts on.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) line: usize,
}

/// Why a file could not be tokenized: a literal or comment that never ends.
#[derive(Debug)]
pub(crate) struct Unterminated {
    pub(crate) what: &'static str,
    pub(crate) line: usize,
}

impl fmt::Display for Unterminated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unterminated {} starting on line {}",
            self.what, self.line
        )
    }
}

/// Tokenizes `src`.
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, Unterminated> {
    let s: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < s.len() {
        let c = s[i];
        let start_line = line;
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '/' if s.get(i + 1) == Some(&'/') => {
                while i < s.len() && s[i] != '\n' {
                    i += 1;
                }
            }
            '/' if s.get(i + 1) == Some(&'*') => {
                // Block comments nest in Rust.
                let mut depth = 0usize;
                loop {
                    match (s.get(i), s.get(i + 1)) {
                        (Some('/'), Some('*')) => {
                            depth += 1;
                            i += 2;
                        }
                        (Some('*'), Some('/')) => {
                            depth -= 1;
                            i += 2;
                            if depth == 0 {
                                break;
                            }
                        }
                        (Some(ch), _) => {
                            if *ch == '\n' {
                                line += 1;
                            }
                            i += 1;
                        }
                        (None, _) => {
                            return Err(Unterminated {
                                what: "block comment",
                                line: start_line,
                            });
                        }
                    }
                }
            }
            '"' => i = skip_string(&s, i + 1, &mut line, start_line)?,
            '\'' => i = skip_char_or_lifetime(&s, i, &mut line, start_line)?,
            ':' if s.get(i + 1) == Some(&':') => {
                out.push(Token {
                    tok: Tok::PathSep,
                    line,
                });
                i += 2;
            }
            c if c.is_ascii_digit() => {
                // Numbers (with suffixes, `_`, hex digits); a `.` ends them,
                // which is harmless here.
                while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_') {
                    i += 1;
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                if let Some(next) = literal_prefix(&s, i, &mut line, start_line)? {
                    i = next;
                    continue;
                }
                let raw = s[i] == 'r' && s.get(i + 1) == Some(&'#');
                let begin = i;
                if raw {
                    i += 2;
                }
                while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_') {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Ident(s[begin..i].iter().collect()),
                    line,
                });
            }
            c => {
                out.push(Token {
                    tok: Tok::Punct(c),
                    line,
                });
                i += 1;
            }
        }
    }
    Ok(out)
}

/// If an identifier-looking start is really a literal prefix (`r"`, `r#"`,
/// `b"`, `br#"`, `c"`, `cr"`, `b'`), skips the literal and returns the index
/// after it.
fn literal_prefix(
    s: &[char],
    i: usize,
    line: &mut usize,
    start_line: usize,
) -> Result<Option<usize>, Unterminated> {
    let at = |k: usize| s.get(i + k).copied();
    let (raw_at, plain_at) = match (at(0), at(1)) {
        (Some('r'), _) => (Some(i + 1), None),
        (Some('b' | 'c'), Some('r')) => (Some(i + 2), None),
        (Some('b' | 'c'), Some('"')) => (None, Some(i + 2)),
        (Some('b'), Some('\'')) => {
            return skip_char_or_lifetime(s, i + 1, line, start_line).map(Some);
        }
        _ => (None, None),
    };
    if let Some(j) = plain_at {
        return skip_string(s, j, line, start_line).map(Some);
    }
    let Some(mut j) = raw_at else {
        return Ok(None);
    };
    let mut hashes = 0;
    while s.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    if s.get(j) != Some(&'"') {
        // `r#ident`, or an identifier such as `br` or `cr`.
        return Ok(None);
    }
    j += 1;
    loop {
        match s.get(j) {
            None => {
                return Err(Unterminated {
                    what: "raw string",
                    line: start_line,
                });
            }
            Some('"') if (1..=hashes).all(|k| s.get(j + k) == Some(&'#')) => {
                return Ok(Some(j + 1 + hashes));
            }
            Some(ch) => {
                if *ch == '\n' {
                    *line += 1;
                }
                j += 1;
            }
        }
    }
}

/// Skips a (non-raw) string body starting after its opening quote.
fn skip_string(
    s: &[char],
    mut j: usize,
    line: &mut usize,
    start_line: usize,
) -> Result<usize, Unterminated> {
    loop {
        match s.get(j) {
            None => {
                return Err(Unterminated {
                    what: "string",
                    line: start_line,
                });
            }
            Some('\\') => {
                if s.get(j + 1) == Some(&'\n') {
                    *line += 1;
                }
                j += 2;
            }
            Some('"') => return Ok(j + 1),
            Some(ch) => {
                if *ch == '\n' {
                    *line += 1;
                }
                j += 1;
            }
        }
    }
}

/// Skips a character literal (`'x'`, `'\n'`, `'\u{..}'`) or a lifetime
/// (`'a`, `'static`) starting at the quote at `i`.
fn skip_char_or_lifetime(
    s: &[char],
    i: usize,
    line: &mut usize,
    start_line: usize,
) -> Result<usize, Unterminated> {
    match (s.get(i + 1), s.get(i + 2)) {
        (Some('\\'), _) => {
            let mut j = i + 3;
            while j < s.len() && s[j] != '\'' {
                if s[j] == '\n' {
                    *line += 1;
                }
                j += 1;
            }
            if j >= s.len() {
                return Err(Unterminated {
                    what: "character literal",
                    line: start_line,
                });
            }
            Ok(j + 1)
        }
        (Some(ch), Some('\'')) => {
            if *ch == '\n' {
                *line += 1;
            }
            Ok(i + 3)
        }
        _ => {
            // A lifetime or label: the quote and the identifier.
            let mut j = i + 1;
            while j < s.len() && (s[j].is_alphanumeric() || s[j] == '_') {
                j += 1;
            }
            Ok(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(src: &str) -> Vec<String> {
        tokenize(src)
            .expect("tokenizes")
            .into_iter()
            .filter_map(|t| match t.tok {
                Tok::Ident(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn literals_and_comments_hide_their_contents() {
        let src = r####"
            // crate::h1 in a line comment
            /* crate::h2 /* nested crate::h3 */ still comment crate::h4 */
            /// doc crate::h5
            let s = "crate::h6 \" crate::h7";
            let r = r#"crate::h8 " crate::h9"#;
            let rr = r##"a "# crate::h10"##;
            let b = b"crate::h11";
            let br = br#"crate::h12"#;
            let c = c"crate::h13";
            let ch = '"'; let q = '\''; let u = '\u{1F600}'; let bc = b'"';
            fn f<'a>(x: &'a str) -> &'a str { 'outer: loop { break 'outer x; } }
            let n = 0x1F_u8 + 1e3 as u8;
            r#use
        "####;
        let ids = idents(src);
        assert!(!ids.contains(&"crate".to_owned()), "{ids:?}");
        assert!(!ids.iter().any(|i| i.starts_with('h')), "{ids:?}");
        assert!(ids.contains(&"r#use".to_owned()), "{ids:?}");
        assert!(!ids.contains(&"outer".to_owned()), "{ids:?}");
    }

    #[test]
    fn lines_count_through_multiline_literals() {
        let toks = tokenize("let a = \"x\ny\";\n/* \n */ r#\"\n\"#; crate::z").expect("tokenizes");
        let z = toks
            .iter()
            .find(|t| t.tok == Tok::Ident("z".into()))
            .expect("z");
        assert_eq!(z.line, 5);
    }

    #[test]
    fn unterminated_literals_are_errors() {
        for src in ["\"abc", "r#\"abc\"", "/* /* */", "'\\"] {
            assert!(tokenize(src).is_err(), "{src}");
        }
    }
}
