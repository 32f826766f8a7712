//! Whether a rows event carries whole rows.
//!
//! The task writes every column of every change to `t_log`, so it needs the
//! full before and after images that `binlog_row_image = FULL` logs. A
//! session may set its own `binlog_row_image` (with SUPER or BINLOG ADMIN):
//! under `MINIMAL` an UPDATE logs only the key in its before image and the
//! changed columns in its after image, an INSERT only the columns it was
//! given; under `NOBLOB` unchanged BLOB/TEXT columns are left out. Each rows
//! event says which columns its images hold in its column-present bitmaps
//! ([`RowsEvent::columns_1`], [`RowsEvent::columns_2`]); [`gap`] reads them.

use binlog_parser::{ColumnType, RowsEvent, RowsKind, TableMap};

/// A rows event whose images lack columns.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ImageGap {
    /// The first image that lacks columns: `"before"` or `"after"`.
    pub image: &'static str,
    /// The columns that image lacks, by index in the table (0-based).
    pub missing: Vec<usize>,
    /// The session setting that leaves such columns out: `MINIMAL`, or
    /// `NOBLOB` when only BLOB/TEXT/JSON/GEOMETRY columns are missing.
    pub setting: &'static str,
}

/// The columns `rows`' images lack, if any (`map` is its table map).
pub fn gap(rows: &RowsEvent<'_>, map: &TableMap) -> Option<ImageGap> {
    let kinds: Vec<ColumnType> = map.columns.iter().map(|c| c.kind).collect();
    from_bitmaps(
        rows.kind,
        rows.width,
        rows.columns_1,
        rows.columns_2,
        &kinds,
    )
}

/// [`gap`] from the event's parts: `kinds` are the columns' types.
fn from_bitmaps(
    kind: RowsKind,
    width: usize,
    columns_1: &[u8],
    columns_2: &[u8],
    kinds: &[ColumnType],
) -> Option<ImageGap> {
    let missing = |bitmap: &[u8]| -> Vec<usize> {
        (0..width)
            .filter(|&i| bitmap.get(i / 8).is_none_or(|b| b & (1 << (i % 8)) == 0))
            .collect()
    };
    let (first, second) = match kind {
        RowsKind::Write => (("after", missing(columns_1)), None),
        RowsKind::Delete => (("before", missing(columns_1)), None),
        RowsKind::Update | RowsKind::PartialUpdate => (
            ("before", missing(columns_1)),
            Some(("after", missing(columns_2))),
        ),
    };
    let all: Vec<usize> = first
        .1
        .iter()
        .chain(second.iter().flat_map(|(_, m)| m))
        .copied()
        .collect();
    if all.is_empty() {
        return None;
    }
    let blob = |i: &usize| {
        kinds.get(*i).is_some_and(|k| {
            matches!(
                k,
                ColumnType::Blob
                    | ColumnType::TinyBlob
                    | ColumnType::MediumBlob
                    | ColumnType::LongBlob
                    | ColumnType::BlobCompressed
                    | ColumnType::Json
                    | ColumnType::Geometry
            )
        })
    };
    let setting = if all.iter().all(blob) {
        "NOBLOB"
    } else {
        "MINIMAL"
    };
    let (image, missing) = match (first, second) {
        ((image, m), _) if !m.is_empty() => (image, m),
        (_, Some((image, m))) => (image, m),
        ((image, m), None) => (image, m),
    };
    Some(ImageGap {
        image,
        missing,
        setting,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTS: [ColumnType; 9] = [ColumnType::Long; 9];

    #[test]
    fn full_images_have_no_gap() {
        let g = |kind, c1: &[u8], c2: &[u8]| from_bitmaps(kind, 9, c1, c2, &INTS);
        assert_eq!(g(RowsKind::Write, &[0xff, 0x01], &[]), None);
        assert_eq!(g(RowsKind::Update, &[0xff, 0x01], &[0xff, 0x01]), None);
        // Bits past the width do not count.
        assert_eq!(from_bitmaps(RowsKind::Delete, 3, &[0x07], &[], &INTS), None);
    }

    #[test]
    fn minimal_and_noblob_images_are_told_apart() {
        let kinds = [ColumnType::Long, ColumnType::VarChar, ColumnType::Blob];
        let g = |kind, c1: &[u8], c2: &[u8]| from_bitmaps(kind, 3, c1, c2, &kinds);
        // MINIMAL UPDATE: the key before, the changed column after.
        assert_eq!(
            g(RowsKind::Update, &[0b001], &[0b010]),
            Some(ImageGap {
                image: "before",
                missing: vec![1, 2],
                setting: "MINIMAL",
            })
        );
        // An after image missing only a blob: NOBLOB.
        assert_eq!(
            g(RowsKind::Update, &[0b111], &[0b011]),
            Some(ImageGap {
                image: "after",
                missing: vec![2],
                setting: "NOBLOB",
            })
        );
        // A MINIMAL INSERT that left a column to its default.
        assert_eq!(
            g(RowsKind::Write, &[0b101], &[]),
            Some(ImageGap {
                image: "after",
                missing: vec![1],
                setting: "MINIMAL",
            })
        );
        // A bitmap shorter than the width lacks the rest.
        assert_eq!(
            g(RowsKind::Delete, &[], &[]).map(|g| g.missing),
            Some(vec![0, 1, 2])
        );
    }
}
