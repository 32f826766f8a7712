//! Decoding rows events allocates nothing: neither the event, nor its rows,
//! nor any value. Proven with a counting global allocator.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use binlog_parser::{BinlogFile, EventData, Value};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const FILES: &[&str] = &[
    "binlog-invisible-columns.000001",
    "json.binlog.000001",
    "json-opaque.binlog",
    "mariadb-bin.000001",
    "minimal_row_metadata.000001",
    "mysql-enum-string-set.000001",
    "mysql_type_bit.000001",
    "time_issue.000001",
    "vector.binlog",
    "binlog_transaction_with_GTID_TAG.000001",
    "ver_5_1_23.001",
    "ver_trunk_row_v2.001",
    "update-partial-row.binlog",
];

#[test]
fn rows_events_decode_without_allocating() {
    // Only this test runs in this binary, so the counter sees only us.
    let mut checked_values = 0usize;
    let mut checked_events = 0usize;
    let start = ALLOCATIONS.load(Ordering::SeqCst);
    for name in FILES {
        let path = format!("{}/testdata/binlogs/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(path).unwrap();
        let mut file = BinlogFile::new(&bytes).unwrap();
        loop {
            let before = ALLOCATIONS.load(Ordering::SeqCst);
            let Some(ev) = file.next_event() else { break };
            let ev = ev.unwrap();
            let EventData::Rows(rows) = &ev.data else {
                continue;
            };
            let mut values = 0usize;
            for change in file.context().rows(rows).unwrap() {
                let change = change.unwrap();
                for img in [change.before, change.after].into_iter().flatten() {
                    for v in img.values() {
                        let (_, v) = v.unwrap();
                        // Touch the value so nothing is optimised away.
                        std::hint::black_box(&v);
                        if let Value::Decimal(d) = v {
                            std::hint::black_box(d.to_i128());
                        }
                        values += 1;
                    }
                }
            }
            let after = ALLOCATIONS.load(Ordering::SeqCst);
            assert_eq!(
                after - before,
                0,
                "{name}: event at {} allocated",
                ev.offset()
            );
            checked_values += values;
            checked_events += 1;
        }
    }
    // The counter works: table maps and file reads did allocate.
    assert!(ALLOCATIONS.load(Ordering::SeqCst) > start);
    assert!(checked_events > 20, "{checked_events}");
    assert!(checked_values > 100, "{checked_values}");
}
