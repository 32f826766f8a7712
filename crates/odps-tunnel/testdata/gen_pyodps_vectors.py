"""Regenerates the reference vectors in this folder with pyodps (the official
MaxCompute Python SDK) and pyarrow.

    python3 -m venv .venv && .venv/bin/pip install "pyodps==0.13.2" pyarrow pandas
    TZ=UTC .venv/bin/python crates/odps-tunnel/testdata/gen_pyodps_vectors.py

Outputs (all read by tests/pyodps_vectors.rs):
  signatures.json          requests signed by pyodps's AliyunAccount
  arrow_block.bin          a block body written by pyodps's BaseArrowWriter
  arrow_block.expected.arrows   the same batches as a plain Arrow IPC stream
  records.bin              a record stream written by pyodps's BaseRecordWriter
  records.expected.arrows  the same rows as a plain Arrow IPC stream
"""

import datetime
import decimal
import io
import json
import os
import sys

import pyarrow as pa
import requests

from odps import types as ot
from odps.accounts import AliyunAccount
from odps.models import Record
from odps.tunnel.io.writer import BaseArrowWriter, BaseRecordWriter

HERE = os.path.dirname(os.path.abspath(__file__))


def signatures():
    account = AliyunAccount("AK", "SK")
    cases = [
        (
            "PUT",
            "https://t.example.com",
            "/projects/p/tables/t?uploadid=U&blockid=0&partition=pt%3Dx&arrow=&curr_project=p",
            {
                "Date": "Wed, 01 Jan 2025 00:00:00 GMT",
                "Content-Type": "application/octet-stream",
                "x-odps-tunnel-version": "6",
                "x-odps-user-agent": "ua",
            },
        ),
        (
            "POST",
            "https://service.example.com/api",
            "/projects/my_proj/instances?curr_project=my_proj",
            {
                "Date": "Tue, 24 Nov 2026 08:00:00 GMT",
                "Content-Type": "application/xml",
                "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==",
                "x-odps-user-agent": "pyodps/0.13.2 CPython/3.11",
                "X-Odps-Zeta": "last",
                "User-Agent": "not signed",
            },
        ),
        (
            "GET",
            "https://service.example.com/api",
            "/projects/p/tables/t?partition=pt%3D%272024%27%2Cregion%3Deu&data&x-odps-q=v+w&rowrange=(0,10)&curr_project=p",
            {"Date": "Mon, 02 Feb 2026 10:11:12 GMT"},
        ),
        (
            "POST",
            "https://t.example.com",
            "/projects/p/tables/t?uploads=1&curr_project=p",
            {"Date": "Mon, 02 Feb 2026 10:11:12 GMT", "x-odps-tunnel-version": "6"},
        ),
    ]
    out = []
    for method, endpoint, rel, headers in cases:
        req = requests.Request(method, endpoint + rel, headers=dict(headers)).prepare()
        account.sign_request(req, endpoint)
        path, _, query = rel.partition("?")
        out.append(
            {
                "method": method,
                "path": path,
                "query": query,
                "headers": [[k, v] for k, v in headers.items()],
                "authorization": req.headers["Authorization"],
            }
        )
    with open(os.path.join(HERE, "signatures.json"), "w") as f:
        json.dump(out, f, indent=1)


ARROW_SCHEMA = ot.OdpsSchema(
    [
        ot.Column("id", "bigint"),
        ot.Column("i", "int"),
        ot.Column("sm", "smallint"),
        ot.Column("ti", "tinyint"),
        ot.Column("d", "double"),
        ot.Column("f", "float"),
        ot.Column("dec", "decimal(18,3)"),
        ot.Column("s", "string"),
        ot.Column("vc", "varchar(10)"),
        ot.Column("bin", "binary"),
        ot.Column("b", "boolean"),
        ot.Column("day", "date"),
        ot.Column("dt", "datetime"),
        ot.Column("ts", "timestamp"),
        ot.Column("arr", "array<bigint>"),
        ot.Column("m", "map<string,bigint>"),
        ot.Column("st", "struct<x:int,y:string>"),
    ]
)


def arrow_batch(n, seed):
    return pa.record_batch(
        [
            pa.array([i * 7 + seed for i in range(n)], pa.int64()),
            pa.array([None if i % 3 == 0 else i for i in range(n)], pa.int32()),
            pa.array([i - 50 for i in range(n)], pa.int16()),
            pa.array([i % 100 for i in range(n)], pa.int8()),
            pa.array([i / 3 for i in range(n)], pa.float64()),
            pa.array([i * 0.5 for i in range(n)], pa.float32()),
            pa.array([decimal.Decimal(i * 1001) / 1000 for i in range(n)], pa.decimal128(18, 3)),
            pa.array(["row-%d-\u00fc" % i for i in range(n)], pa.string()),
            pa.array(["v%d" % (i % 10) for i in range(n)], pa.string()),
            pa.array([bytes([i % 256]) * 3 for i in range(n)], pa.binary()),
            pa.array([i % 2 == 0 for i in range(n)], pa.bool_()),
            pa.array([19000 + i for i in range(n)], pa.date32()),
            pa.array([1700000000000 + i for i in range(n)], pa.timestamp("ms", tz="UTC")),
            pa.array([1700000000000000123 + i for i in range(n)], pa.timestamp("ns", tz="UTC")),
            pa.array([None if i % 5 == 0 else [i, None, -i] for i in range(n)], pa.list_(pa.int64())),
            pa.array(
                [None if i % 5 == 0 else [("k%d" % i, i)] for i in range(n)],
                pa.map_(pa.string(), pa.int64()),
            ),
            pa.array(
                [{"x": i, "y": "y" if i % 2 == 0 else None} for i in range(n)],
                pa.struct([("x", pa.int32()), ("y", pa.string())]),
            ),
        ],
        names=[c.name for c in ARROW_SCHEMA.columns],
    )


def arrow_block():
    batches = [arrow_batch(100, 0), arrow_batch(37, 1000)]
    out = io.BytesIO()
    writer = BaseArrowWriter(ARROW_SCHEMA, out=out, chunk_size=1000)
    for b in batches:
        writer.write(b)
    writer.close()
    with open(os.path.join(HERE, "arrow_block.bin"), "wb") as f:
        f.write(out.getvalue())
    # The expected values, with the time zone dropped (the wire has none).
    plain = []
    for b in batches:
        cols = []
        for col in b.columns:
            if pa.types.is_timestamp(col.type):
                col = col.cast(pa.timestamp(col.type.unit))
            cols.append(col)
        plain.append(pa.record_batch(cols, names=b.schema.names))
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, plain[0].schema) as w:
        for b in plain:
            w.write_batch(b)
    with open(os.path.join(HERE, "arrow_block.expected.arrows"), "wb") as f:
        f.write(sink.getvalue())


RECORD_SCHEMA = ot.OdpsSchema(
    [
        ot.Column("b", "boolean"),
        ot.Column("ti", "tinyint"),
        ot.Column("sm", "smallint"),
        ot.Column("i", "int"),
        ot.Column("big", "bigint"),
        ot.Column("f", "float"),
        ot.Column("d", "double"),
        ot.Column("dec", "decimal(20,4)"),
        ot.Column("s", "string"),
        ot.Column("vc", "varchar(10)"),
        ot.Column("ch", "char(4)"),
        ot.Column("j", "json"),
        ot.Column("bin", "binary"),
        ot.Column("day", "date"),
        ot.Column("dt", "datetime"),
        ot.Column("ts", "timestamp"),
        ot.Column("tsn", "timestamp_ntz"),
        ot.Column("arr", "array<bigint>"),
        ot.Column("m", "map<string,bigint>"),
        ot.Column("st", "struct<x:int,y:string>"),
    ],
    partitions=[ot.Partition("pt", "string")],
)


def records():
    import pandas as pd

    utc = datetime.timezone.utc
    rows = [
        [
            True, -128, -32768, -(2**31), -(2**63), 1.5, 1e300,
            decimal.Decimal("1234.5678"), "h\u00e9llo", "abcdefghij", "ab", {"a": [1, 2]},
            b"\x00\xff", datetime.date(1, 1, 1),
            datetime.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=utc),
            pd.Timestamp("2023-11-14 22:13:20.123456789", tz="UTC"),
            pd.Timestamp("1969-12-31 23:59:59.000000001"),
            [1, None, -3], {"a": None, "b": 2}, (1, "p"),
        ],
        [None] * 20,
        [
            False, 127, 32767, 2**31 - 1, 2**63 - 1, -0.25, -2.25,
            decimal.Decimal("-0.0001"), "", "\u00fc", "abcd", 3,
            b"", datetime.date(9999, 12, 31),
            datetime.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=utc),
            pd.Timestamp("1970-01-01 00:00:00", tz="UTC"),
            pd.Timestamp("2262-04-11 23:47:16"),
            [], {}, (None, None),
        ],
    ]
    out = io.BytesIO()
    writer = BaseRecordWriter(RECORD_SCHEMA, out)
    for values in rows:
        writer.write(Record(schema=RECORD_SCHEMA, values=values + ["p1"]))
    writer.close()
    with open(os.path.join(HERE, "records.bin"), "wb") as f:
        f.write(out.getvalue())

    def ts_ns(t):
        return None if t is None else t.value

    def dt_ms(t):
        return None if t is None else int(t.timestamp() * 1000)

    def days(d):
        return None if d is None else (d - datetime.date(1970, 1, 1)).days

    col = lambda i: [r[i] for r in rows]
    table = pa.record_batch(
        [
            pa.array(col(0), pa.bool_()),
            pa.array(col(1), pa.int8()),
            pa.array(col(2), pa.int16()),
            pa.array(col(3), pa.int32()),
            pa.array(col(4), pa.int64()),
            pa.array(col(5), pa.float32()),
            pa.array(col(6), pa.float64()),
            pa.array(col(7), pa.decimal128(20, 4)),
            pa.array(col(8), pa.string()),
            pa.array(col(9), pa.string()),
            pa.array(col(10), pa.string()),
            pa.array([None if v is None else json.dumps(v) for v in col(11)], pa.string()),
            pa.array(col(12), pa.binary()),
            pa.array([days(v) for v in col(13)], pa.date32()),
            pa.array([dt_ms(v) for v in col(14)], pa.timestamp("ms")),
            pa.array([ts_ns(v) for v in col(15)], pa.timestamp("ns")),
            pa.array([ts_ns(v) for v in col(16)], pa.timestamp("ns")),
            pa.array(col(17), pa.list_(pa.int64())),
            pa.array([None if v is None else list(v.items()) for v in col(18)], pa.map_(pa.string(), pa.int64())),
            pa.array(
                [None if v is None else {"x": v[0], "y": v[1]} for v in col(19)],
                pa.struct([("x", pa.int32()), ("y", pa.string())]),
            ),
        ],
        names=[c.name for c in RECORD_SCHEMA.simple_columns],
    )
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_batch(table)
    with open(os.path.join(HERE, "records.expected.arrows"), "wb") as f:
        f.write(sink.getvalue())


if __name__ == "__main__":
    if os.environ.get("TZ") != "UTC":
        sys.exit("run with TZ=UTC so naive datetimes mean UTC")
    signatures()
    arrow_block()
    records()
