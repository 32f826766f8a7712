"""pyodps, the official MaxCompute SDK, drives the emulator: DDL through SQL
instances, uploads with the record and the Arrow writer, reads with the
record and the Arrow reader, signatures, uncommitted blocks, COUNT(*)."""

import decimal
import json
import uuid
from collections import OrderedDict
from datetime import date, datetime

import pandas as pd
import pyarrow as pa
import pytest
from odps import errors
from odps.models import TableSchema
from odps.tunnel import TableTunnel

from conftest import Emulator

# Every MaxCompute 2.0 type, with a value that exercises it.
TYPED_VALUES = OrderedDict(
    [
        ("c_bigint", ("bigint", -(2**62) + 7)),
        ("c_int", ("int", 2**31 - 1)),
        ("c_smallint", ("smallint", -32768)),
        ("c_tinyint", ("tinyint", 127)),
        ("c_double", ("double", 3.141592653589793)),
        ("c_float", ("float", 1.5)),
        ("c_decimal", ("decimal(10,2)", decimal.Decimal("-12345678.90"))),
        ("c_decimal38", ("decimal(38,18)", decimal.Decimal("12345678901234567890.123456789012345678"))),
        ("c_decimal_wide", ("decimal(50,10)", decimal.Decimal("-98765.4321000000"))),
        ("c_string", ("string", "héllo, 世界")),
        ("c_varchar", ("varchar(10)", "abc")),
        ("c_char", ("char(5)", "abcde")),
        ("c_binary", ("binary", b"\x00\xffbin")),
        ("c_boolean", ("boolean", True)),
        ("c_date", ("date", date(2024, 2, 29))),
        ("c_datetime", ("datetime", datetime(2024, 1, 2, 3, 4, 5, 678000))),
        ("c_timestamp", ("timestamp", pd.Timestamp("2024-01-02 03:04:05.123456789"))),
        ("c_timestamp_ntz", ("timestamp_ntz", pd.Timestamp("1969-12-31 23:59:59.000000001"))),
        ("c_json", ("json", {"a": [1, 2], "b": "x"})),
        ("c_array", ("array<bigint>", [1, None, 3])),
        ("c_map", ("map<string,double>", OrderedDict([("k1", 1.25), ("k2", None)]))),
        ("c_struct", ("struct<x:bigint,y:string>", (7, "why"))),
        ("c_nested", ("array<struct<n:int,tags:array<string>>>", [(1, ["a", "b"]), None])),
    ]
)
# The SDK's Arrow mapping has no `json`; the Arrow tests use the others.
ARROW_COLUMNS = [name for name, (typ, _) in TYPED_VALUES.items() if typ != "json"]


def unique(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def make_schema(columns, partitions=()):
    names = list(columns)
    types = [TYPED_VALUES[c][0] for c in names]
    part_names = [p for p, _ in partitions]
    part_types = [t for _, t in partitions]
    return TableSchema.from_lists(names, types, part_names or None, part_types or None)


def normalize(value):
    """Brings reader values of either reader to comparable Python values."""
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if hasattr(value, "_asdict"):
        return [normalize(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.value  # nanoseconds
    if isinstance(value, datetime):
        return pd.Timestamp(value).value
    if isinstance(value, bytearray):
        return bytes(value)
    return value


def expected(name):
    typ, value = TYPED_VALUES[name]
    if typ == "json":
        return value
    if typ.startswith("struct"):
        return list(value)
    if typ.startswith("array<struct"):
        return [list(v) if v is not None else None for v in value]
    return normalize(value)


def record_value(record, name):
    value = record[name]
    typ = TYPED_VALUES[name][0]
    if typ == "json" and isinstance(value, str):
        value = json.loads(value)
    if typ == "binary" and isinstance(value, str):
        value = value.encode("latin-1")
    if isinstance(value, dict) and typ.startswith("struct"):
        value = list(value.values())
    if typ.startswith("array<struct") and value is not None:
        value = [list(v.values()) if isinstance(v, dict) else v for v in value]
    return normalize(value)


def arrow_batch(names, rows):
    """A pyarrow batch in the SDK's Arrow mapping."""
    from odps.tunnel.io.types import odps_type_to_arrow_type
    from odps import types as odps_types

    arrays = []
    for i, name in enumerate(names):
        typ = odps_types.validate_data_type(TYPED_VALUES[name][0])
        arrow_type = odps_type_to_arrow_type(typ)
        values = [r[i] for r in rows]
        if pa.types.is_struct(arrow_type):
            values = [dict(zip([f.name for f in arrow_type], v)) if v is not None else None for v in values]
        elif pa.types.is_list(arrow_type) and pa.types.is_struct(arrow_type.value_type):
            fields = [f.name for f in arrow_type.value_type]
            values = [[dict(zip(fields, e)) if e is not None else None for e in v] if v is not None else None for v in values]
        elif pa.types.is_map(arrow_type):
            values = [list(v.items()) if v is not None else None for v in values]
        arrays.append(pa.array(values, type=arrow_type))
    return pa.RecordBatch.from_arrays(arrays, names=names)


def arrow_value(table, name, row):
    value = table.column(name)[row].as_py()
    typ = TYPED_VALUES[name][0]
    if typ.startswith("map") and isinstance(value, list):
        value = OrderedDict(value)
    if typ.startswith("struct") and isinstance(value, dict):
        value = list(value.values())
    if typ.startswith("array<struct") and value is not None:
        value = [list(v.values()) if isinstance(v, dict) else v for v in value]
    if pa.types.is_timestamp(table.schema.field(name).type):
        value = table.column(name).cast(pa.int64())[row].as_py()
        unit = table.schema.field(name).type.unit
        value = value * {"ns": 1, "us": 1000, "ms": 1_000_000, "s": 1_000_000_000}[unit]
    return normalize(value)


def count_rows(odps, table, where=""):
    """COUNT(*) read both ways: the instance tunnel and the CSV task result."""
    inst = odps.execute_sql(f"SELECT COUNT(*) FROM {table} {where}")
    with inst.open_reader() as reader:
        via_tunnel = [r.values for r in reader]
    with inst.open_reader(tunnel=False) as reader:
        via_result = [r.values for r in reader]
    assert len(via_tunnel) == 1 and len(via_result) == 1
    assert via_tunnel[0][0] == int(via_result[0][0])
    return via_tunnel[0][0]


def test_every_type_round_trips_through_record_writer_and_reader(odps):
    name = unique("all_types")
    table = odps.create_table(name, make_schema(TYPED_VALUES))
    row = [v for _, v in TYPED_VALUES.values()]
    with table.open_writer() as writer:
        writer.write([row, [None] * len(row)])

    with table.open_reader() as reader:
        records = list(reader)
    assert len(records) == 2
    for col in TYPED_VALUES:
        assert record_value(records[0], col) == expected(col), col
        assert records[1][col] is None, col


def test_record_writer_data_reads_back_with_the_arrow_reader(odps):
    # The SDK's Arrow reader cannot map `json`, so this table leaves it out.
    name = unique("rec_to_arrow")
    table = odps.create_table(name, make_schema(ARROW_COLUMNS))
    row = [TYPED_VALUES[c][1] for c in ARROW_COLUMNS]
    with table.open_writer() as writer:
        writer.write([row, [None] * len(row)])

    with table.open_reader(arrow=True) as reader:
        data = reader.read_all()
    assert data.num_rows == 2
    for col in ARROW_COLUMNS:
        assert arrow_value(data, col, 0) == expected(col), col
        assert data.column(col)[1].as_py() is None, col


def test_every_type_round_trips_through_arrow_writer_into_a_partition(odps):
    name = unique("arrow_types")
    table = odps.create_table(name, make_schema(ARROW_COLUMNS, [("pt", "string"), ("region", "string")]))
    rows = [[TYPED_VALUES[c][1] for c in ARROW_COLUMNS], [None] * len(ARROW_COLUMNS)]
    spec = "pt=20240101,region=cn"
    with table.open_writer(partition=spec, create_partition=True, arrow=True) as writer:
        writer.write(arrow_batch(ARROW_COLUMNS, rows))

    with table.open_reader(partition=spec, arrow=True) as reader:
        data = reader.read_all()
    assert data.num_rows == 2
    for col in ARROW_COLUMNS:
        assert arrow_value(data, col, 0) == expected(col), col
        assert data.column(col)[1].as_py() is None, col

    with table.open_reader(partition=spec) as reader:
        records = list(reader)
    for col in ARROW_COLUMNS:
        assert record_value(records[0], col) == expected(col), col
    assert records[0]["pt"] == "20240101"
    assert count_rows(odps, name, "WHERE pt='20240101' AND region='cn'") == 2


def test_partitions_and_columns_are_added(odps):
    name = unique("evolve")
    odps.execute_sql(f"CREATE TABLE {name} (id BIGINT COMMENT 'the id') PARTITIONED BY (ds STRING)")
    table = odps.get_table(name)
    assert [c.name for c in table.table_schema.simple_columns] == ["id"]
    assert table.table_schema.simple_columns[0].comment == "the id"
    assert [p.name for p in table.table_schema.partitions] == ["ds"]

    table.create_partition("ds=a")
    table.create_partition("ds=a", if_not_exists=True)
    with pytest.raises(errors.ODPSError, match="already exists"):
        table.create_partition("ds=a")
    odps.execute_sql(f"ALTER TABLE {name} ADD IF NOT EXISTS PARTITION (ds='b') PARTITION (ds='c')")
    assert sorted(str(p.partition_spec) for p in table.partitions) == ["ds='a'", "ds='b'", "ds='c'"]
    assert table.exist_partition("ds=b")
    assert not table.exist_partition("ds=zzz")

    with table.open_writer(partition="ds=a") as writer:
        writer.write([[1], [2]])
    odps.execute_sql(f"ALTER TABLE {name} ADD COLUMNS (note STRING, score DOUBLE)")
    table.reload()
    assert [c.name for c in table.table_schema.simple_columns] == ["id", "note", "score"]
    with table.open_writer(partition="ds=b") as writer:
        writer.write([[3, "n", 0.5]])
    with table.open_reader(partition="ds=a") as reader:
        assert [r.values[:3] for r in reader] == [[1, None, None], [2, None, None]]
    with table.open_reader(partition="ds=b") as reader:
        assert [r.values[:3] for r in reader] == [[3, "n", 0.5]]
    assert count_rows(odps, name) == 3
    assert count_rows(odps, name, "WHERE ds='a'") == 2
    assert table.partitions["ds=a"].record_num == 2
    assert odps.get_table(name).record_num == 3

    odps.execute_sql(f"DROP TABLE {name}")
    assert not odps.exist_table(name)
    odps.execute_sql(f"DROP TABLE IF EXISTS {name}")
    with pytest.raises(errors.ODPSError):
        odps.execute_sql(f"DROP TABLE {name}")


def test_signatures_are_checked(emulator, odps):
    name = unique("signed")
    odps.execute_sql(f"CREATE TABLE {name} (id BIGINT)")
    assert odps.exist_table(name)
    wrong_key = emulator.client(access_key="not-the-secret")
    with pytest.raises(errors.SignatureNotMatch) as caught:
        wrong_key.get_table(name).reload()
    assert caught.value.code == "SignatureNotMatch"
    assert "ODPS-0410042" in str(caught.value)
    with pytest.raises(errors.ODPSError):
        wrong_key.execute_sql(f"DROP TABLE {name}")
    assert odps.exist_table(name)
    wrong_id = emulator.client(access_id="someone-else")
    with pytest.raises(errors.ODPSError, match="accessKeyId"):
        wrong_id.get_table(name).reload()
    # The Tunnel checks signatures too.
    with pytest.raises(errors.ODPSError) as caught:
        TableTunnel(wrong_key).create_upload_session(name)
    assert "SignatureNotMatch" in str(caught.value) or "signature" in str(caught.value).lower()


def test_uncommitted_blocks_stay_invisible(odps):
    name = unique("staged")
    table = odps.create_table(name, TableSchema.from_lists(["id", "s"], ["bigint", "string"]))
    tunnel = TableTunnel(odps)
    session = tunnel.create_upload_session(name)
    with session.open_record_writer(0) as writer:
        for i in range(5):
            writer.write(table.new_record([i, f"r{i}"]))
    with session.open_arrow_writer(1) as writer:
        writer.write(pa.record_batch([pa.array([10, 11]), pa.array(["a", "b"])], names=["id", "s"]))
    assert sorted(session.get_block_list()) == [0, 1]

    # Staged, not committed: nobody sees the rows.
    assert tunnel.create_download_session(name).count == 0
    assert count_rows(odps, name) == 0

    # A second, abandoned session never becomes visible either.
    abandoned = tunnel.create_upload_session(name)
    with abandoned.open_record_writer(0) as writer:
        writer.write(table.new_record([99, "never"]))

    session.commit([0, 1])
    assert tunnel.create_download_session(name).count == 7
    assert count_rows(odps, name) == 7
    with table.open_reader() as reader:
        assert sorted(r["id"] for r in reader) == [0, 1, 2, 3, 4, 10, 11]
    with pytest.raises(errors.ODPSError):
        session.commit([0, 1])


def test_reader_row_ranges_and_columns(odps):
    name = unique("ranges")
    table = odps.create_table(name, TableSchema.from_lists(["id", "s", "d"], ["bigint", "string", "double"]))
    for start in (0, 100, 250):
        with table.open_writer() as writer:
            writer.write([[i, f"v{i}", i / 2] for i in range(start, start + 50)])
    tunnel = TableTunnel(odps)
    session = tunnel.create_download_session(name)
    assert session.count == 150
    with session.open_record_reader(40, 30, columns=["s", "id"]) as reader:
        rows = [(r["s"], r["id"]) for r in reader]
    expected_ids = list(range(40, 50)) + list(range(100, 120))
    assert rows == [(f"v{i}", i) for i in expected_ids]
    with session.open_arrow_reader(140, 10, columns=["d"]) as reader:
        data = reader.read()
    assert data.column_names == ["d"]
    assert data.column("d").to_pylist() == [i / 2 for i in range(290, 300)]


def test_unsupported_sql_and_endpoints_fail_clearly(odps):
    name = unique("honest")
    odps.execute_sql(f"CREATE TABLE {name} (id BIGINT)")
    with pytest.raises(errors.ODPSError, match="Parse exception"):
        odps.execute_sql(f"SELECT * FROM {name}")
    with pytest.raises(errors.ODPSError, match="Parse exception"):
        odps.execute_sql(f"INSERT INTO {name} VALUES (1)")
    with pytest.raises(errors.ODPSError, match="not support"):
        odps.rest.get(odps.endpoint + f"/projects/{odps.project}/volumes")
    with pytest.raises(errors.NoSuchObject):
        odps.get_table("no_such_table_here").reload()


def test_projects_are_created_on_first_use(emulator):
    other = emulator.client(project="another_project")
    name = unique("p2")
    other.execute_sql(f"CREATE TABLE {name} (id BIGINT)")
    assert other.exist_table(name)
    assert not emulator.client().exist_table(name)


def test_injected_block_faults_are_retried_without_duplicates():
    emu = Emulator("--fail-block-rate", "0.3", "--fail-commit-rate", "0.5", "--fault-seed", "42")
    try:
        odps = emu.client()
        name = unique("faults")
        table = odps.create_table(name, TableSchema.from_lists(["id"], ["bigint"]))
        tunnel = TableTunnel(odps)
        session = tunnel.create_upload_session(name)
        blocks = []
        for block in range(4):
            for attempt in range(20):
                try:
                    with session.open_record_writer(block) as writer:
                        for i in range(10):
                            writer.write(table.new_record([block * 10 + i]))
                    blocks.append(block)
                    break
                except errors.ODPSError:
                    continue
        assert blocks == [0, 1, 2, 3]
        for attempt in range(20):
            try:
                session.commit(blocks)
                break
            except errors.ODPSError:
                continue
        with table.open_reader() as reader:
            assert sorted(r["id"] for r in reader) == list(range(40))
        log = emu.log_text()
        assert "injecting a fault op=Block" in log
        assert "injecting a fault op=Commit" in log
    finally:
        emu.stop()


def test_compressed_uploads_are_accepted(odps):
    name = unique("deflate")
    table = odps.create_table(name, TableSchema.from_lists(["id", "s"], ["bigint", "string"]))
    tunnel = TableTunnel(odps)
    session = tunnel.create_upload_session(name)
    with session.open_record_writer(0, compress=True) as writer:
        for i in range(200):
            writer.write(table.new_record([i, "x" * 100]))
    with session.open_arrow_writer(1, compress=True) as writer:
        writer.write(pa.record_batch([pa.array(range(200, 300)), pa.array(["y"] * 100)], names=["id", "s"]))
    session.commit([0, 1])
    download = tunnel.create_download_session(name)
    with download.open_record_reader(0, download.count, compress=True) as reader:
        ids = sorted(r["id"] for r in reader)
    assert ids == list(range(300))


def test_lz4_uploads_are_refused_with_a_clear_error(emulator, odps):
    import requests

    from odps.accounts import AliyunAccount

    name = unique("lz4")
    odps.create_table(name, TableSchema.from_lists(["id"], ["bigint"]))
    session = TableTunnel(odps).create_upload_session(name)
    # A raw signed request, so that no client-side LZ4 library is needed.
    url = f"{emulator.tunnel_endpoint}/projects/{odps.project}/tables/{name}"
    req = requests.Request(
        "PUT", url, data=b"\x04\x22\x4d\x18",
        params={"uploadid": session.id, "blockid": "0", "curr_project": odps.project},
        headers={"Content-Type": "application/octet-stream", "Content-Encoding": "x-lz4-frame",
                 "x-odps-tunnel-version": "6"},
    ).prepare()
    AliyunAccount(odps.account.access_id, odps.account.secret_access_key).sign_request(req, emulator.tunnel_endpoint)
    resp = requests.Session().send(req)
    assert resp.status_code == 400
    assert "x-lz4-frame" in resp.json()["Message"]
    assert session.id and sorted(session.get_block_list()) == []


def test_overwrite_and_drop_partition(odps):
    name = unique("overwrite")
    table = odps.create_table(name, TableSchema.from_lists(["id"], ["bigint"], ["pt"], ["string"]))
    with table.open_writer(partition="pt=x", create_partition=True) as writer:
        writer.write([[1], [2], [3]])
    with table.open_writer(partition="pt=x", overwrite=True) as writer:
        writer.write([[9]])
    with table.open_reader(partition="pt=x") as reader:
        assert [r["id"] for r in reader] == [9]
    with table.open_writer(partition="pt=y", create_partition=True) as writer:
        writer.write([[5], [6]])
    assert count_rows(odps, name) == 3
    table.delete_partition("pt=x")
    assert not table.exist_partition("pt=x")
    assert count_rows(odps, name) == 2
    with pytest.raises(errors.ODPSError):
        TableTunnel(odps).create_download_session(name, partition_spec="pt=x")


def test_upload_session_survives_a_restart():
    first = Emulator()
    try:
        odps = first.client()
        name = unique("restart")
        table = odps.create_table(name, TableSchema.from_lists(["id"], ["bigint"]))
        session = TableTunnel(odps).create_upload_session(name)
        with session.open_record_writer(0) as writer:
            writer.write(table.new_record([1]))
        upload_id = session.id
        first.stop(keep_data=True)

        second = Emulator(data_dir=first.data_dir)
        try:
            odps = second.client()
            resumed = TableTunnel(odps).create_upload_session(name, upload_id=upload_id)
            assert sorted(resumed.blocks) == [0]
            with resumed.open_record_writer(1) as writer:
                writer.write(odps.get_table(name).new_record([2]))
            resumed.commit([0, 1])
            with odps.get_table(name).open_reader() as reader:
                assert sorted(r["id"] for r in reader) == [1, 2]
        finally:
            second.stop()
    finally:
        import shutil

        shutil.rmtree(first.data_dir, ignore_errors=True)


# --- Primary-key Delta tables and upsert sessions ---------------------------


def delta_table(odps, partitioned=True, buckets="4"):
    name = unique("delta")
    schema = TableSchema.from_lists(
        ["id", "k", "v", "amount"],
        ["bigint", "string", "string", "decimal(10,2)"],
        ["pt"] if partitioned else None,
        ["string"] if partitioned else None,
    )
    table = odps.create_table(
        name,
        schema,
        transactional=True,
        primary_key=["id", "k"],
        table_properties={"write.bucket.num": buckets},
    )
    return table


def read_delta(table, partition=None):
    with table.open_reader(partition=partition) as reader:
        return sorted(tuple(r.values[:4]) for r in reader)


def test_delta_table_upserts_merge_across_sessions(odps):
    table = delta_table(odps)
    table = odps.get_table(table.name)  # metadata as the service reports it
    assert table.is_transactional
    assert list(table.primary_key) == ["id", "k"]
    table.create_partition("pt=x")
    dec = decimal.Decimal
    state = {}
    # Session 1: the table writer (an upsert session under the hood).
    with table.open_writer(partition="pt=x") as writer:
        rows = [[i, f"k{i % 2}", f"v{i}", dec(f"{i}.25")] for i in range(20)]
        writer.write(rows)
        for r in rows:
            state[(r[0], r[1])] = tuple(r)
    # Session 2: the tunnel's upsert stream, updates (one key three times),
    # deletes (key only), a delete then a re-insert, a key never written.
    tunnel = TableTunnel(odps)
    session = tunnel.create_upsert_session(table.name, partition_spec="pt=x")
    stream = session.open_upsert_stream(compress=True)
    for v in ["a", "b", "c"]:
        stream.upsert(session.new_record([3, "k1", v, dec("3.00")]))
    state[(3, "k1")] = (3, "k1", "c", dec("3.00"))
    for i in (4, 5, 100):
        stream.delete(session.new_record([i, f"k{i % 2}", None, None]))
        state.pop((i, f"k{i % 2}"), None)
    stream.upsert(session.new_record([5, "k1", None, None]))
    state[(5, "k1")] = (5, "k1", None, None)
    stream.close()
    session.commit()
    # Session 3: flushed, never committed; session 4: aborted.
    for finish in (lambda s: None, lambda s: s.abort()):
        s = tunnel.create_upsert_session(table.name, partition_spec="pt=x")
        st = s.open_upsert_stream()
        st.upsert(s.new_record([0, "k0", "lost", None]))
        st.delete(s.new_record([1, "k1", None, None]))
        st.close()
        finish(s)
    want = sorted(state.values())
    assert read_delta(table, "pt=x") == want
    assert count_rows(odps, table.name, "WHERE pt='x'") == len(want)
    # A classic download session reads the same merged rows.
    with table.open_reader(partition="pt=x", reopen=True) as reader:
        assert reader.count == len(want)


def test_delta_table_refusals(odps):
    plain = unique("plain")
    odps.execute_sql(f"CREATE TABLE {plain} (id BIGINT)")
    bad = unique("bad")
    # A key column that is not a column; a key without 'transactional'.
    with pytest.raises(errors.ODPSError, match="not a column"):
        odps.execute_sql(
            f"CREATE TABLE {bad} (id BIGINT, PRIMARY KEY (nope)) TBLPROPERTIES ('transactional'='true')"
        )
    with pytest.raises(errors.ODPSError, match="transactional"):
        odps.execute_sql(f"CREATE TABLE {bad} (id BIGINT, PRIMARY KEY (id))")
    with pytest.raises(errors.ODPSError, match="write.bucket.num"):
        odps.execute_sql(
            f"CREATE TABLE {bad} (id BIGINT, PRIMARY KEY (id)) "
            "TBLPROPERTIES ('transactional'='true', 'write.bucket.num'='0')"
        )
    tunnel = TableTunnel(odps)
    # An upsert session on a table without a primary key.
    with pytest.raises(errors.ODPSError, match="not a primary-key Delta table"):
        tunnel.create_upsert_session(plain)

    table = delta_table(odps, partitioned=False)
    # A row sent to the wrong bucket.
    session = tunnel.create_upsert_session(table.name)
    stream = session.open_upsert_stream()
    real = stream._hasher

    class OffByOne:
        def hash_record(self, record):
            return real.hash_record(record) + 1

    stream._hasher = OffByOne()
    stream.upsert(session.new_record([1, "k", "v", None]))
    with pytest.raises(errors.ODPSError, match="hashes to bucket"):
        stream.close()
    session.abort()

    # Commit twice; write after the commit.
    session = tunnel.create_upsert_session(table.name)
    stream = session.open_upsert_stream()
    stream.upsert(session.new_record([1, "k", "v", None]))
    stream.close()
    session.commit()
    with pytest.raises(errors.ODPSError, match="commits once"):
        session.commit()
    late = session.open_upsert_stream()
    late.upsert(session.new_record([2, "k", "late", None]))
    with pytest.raises(errors.ODPSError, match="takes no more data"):
        late.close()
    assert read_delta(table) == [(1, "k", "v", None)]
    # A NULL key; batch uploads (the Delta table is written by upserts only).
    session = tunnel.create_upsert_session(table.name)
    stream = session.open_upsert_stream()
    stream.upsert(session.new_record([None, "k", "v", None]))
    with pytest.raises(errors.ODPSError, match="is NULL"):
        stream.close()
    with pytest.raises(errors.ODPSError, match="upsert session"):
        tunnel.create_upload_session(table.name)
    # Non-Delta tables are still not read through SELECT *.
    with pytest.raises(errors.ODPSError):
        odps.execute_sql(f"SELECT * FROM {plain}")
