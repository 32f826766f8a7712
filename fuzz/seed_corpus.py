#!/usr/bin/env python3
"""Seeds fuzz/corpus/ from the decoder's test binlogs.

binlog_events: the files themselves.
binlog_rows:   every rows event of the files in fuzz_targets/row_files.rs, as
               [file index, event-type index, body after the table id].
"""
import os, re, shutil, struct, sys

here = os.path.dirname(os.path.abspath(__file__))
testdata = os.path.join(here, "..", "crates", "binlog-parser", "testdata", "binlogs")
row_files = re.findall(r'binlogs/([^"]+)"', open(os.path.join(here, "fuzz_targets", "row_files.rs")).read())
# Same order as binlog_parser::fuzzing::ROW_EVENT_TYPES.
types = [30, 31, 32, 39, 23, 24, 25, 166]

ev_dir = os.path.join(here, "corpus", "binlog_events")
rows_dir = os.path.join(here, "corpus", "binlog_rows")
os.makedirs(ev_dir, exist_ok=True)
os.makedirs(rows_dir, exist_ok=True)
for name in os.listdir(testdata):
    if not name.endswith(".md"):
        shutil.copy(os.path.join(testdata, name), os.path.join(ev_dir, name))

n = 0
for idx, name in enumerate(row_files):
    data = open(os.path.join(testdata, name), "rb").read()
    pos = 4
    while pos + 19 <= len(data):
        etype = data[pos + 4]
        size = struct.unpack_from("<I", data, pos + 9)[0]
        if size < 19 or pos + size > len(data):
            break
        if etype in types:
            body = data[pos + 19 : pos + size - 4]  # all these files carry CRC32
            seed = bytes([idx, types.index(etype)]) + body[6:]
            open(os.path.join(rows_dir, f"{name}-{pos}"), "wb").write(seed)
            n += 1
        pos += size
print(f"seeded {len(os.listdir(ev_dir))} event inputs, {n} rows inputs", file=sys.stderr)
