//! The one pair of quoting functions for the MaxCompute SQL the task
//! builds (`CREATE TABLE`, `ALTER TABLE`, the merge that `merge-sql`
//! prints): every identifier goes through [`ident`], every string literal
//! through [`literal`]. The source's SQL has its own pair,
//! [`mysql_source::schema::quote_ident`] and [`mysql_source::schema::quote_str`].
//!
//! ```
//! use sync_core::odps_sql::{ident, literal};
//! assert_eq!(ident("orders_base").unwrap(), "`orders_base`");
//! assert!(ident("x`; DROP TABLE y; --").is_err());
//! assert_eq!(literal("it's a \\ test"), "'it\\'s a \\\\ test'");
//! ```

use crate::error::{Error, Result};

/// A MaxCompute table or column name in backticks.
///
/// MaxCompute has no escape for a backtick inside a quoted name, so a name
/// holding one (or a control character, or nothing) is refused; the names
/// [`crate::naming::destination_name`] gives never are.
///
/// # Errors
/// [`Error::Mapping`] naming the refused name.
pub fn ident(name: &str) -> Result<String> {
    if name.is_empty() || name.chars().any(|c| c == '`' || c.is_control()) {
        return Err(Error::Mapping(format!(
            "{name:?} cannot be a MaxCompute table or column name (empty, or holding a backtick \
             or a control character)"
        )));
    }
    Ok(format!("`{name}`"))
}

/// A MaxCompute string literal: single quotes, with `\` escapes for the
/// quote, the backslash and the control characters MaxCompute knows.
pub fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_identifiers_are_refused_and_literals_cannot_end_early() {
        for bad in ["", "a`b", "`", "a\nb", "x\0"] {
            assert!(ident(bad).is_err(), "{bad:?}");
        }
        assert_eq!(ident("名前").expect("unicode"), "`名前`");
        let l = literal("'; DROP TABLE t; --\n\\");
        assert_eq!(l, "'\\'; DROP TABLE t; --\\n\\\\'");
        // Only the closing quote is unescaped.
        let inner = &l[1..l.len() - 1];
        let mut escaped = false;
        for c in inner.chars() {
            assert!(escaped || c != '\'', "{l}");
            escaped = !escaped && c == '\\';
        }
    }
}
