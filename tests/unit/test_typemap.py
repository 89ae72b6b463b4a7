"""The MySQL/MariaDB -> MaxCompute type table, row by row."""

from __future__ import annotations

import pyarrow as pa
import pytest

from airflow_provider_polar_mc.core.typemap import (
    TYPE_MAPPING_ROWS,
    MappingOptions,
    SourceColumnType,
    arrow_type_for,
    map_type,
)
from airflow_provider_polar_mc.exceptions import ConfigError, UnsupportedType


def column(data_type: str, column_type: str | None = None, **catalog) -> SourceColumnType:
    return SourceColumnType(data_type=data_type, column_type=column_type or data_type, **catalog)


@pytest.mark.parametrize(
    ("data_type", "column_type", "catalog", "mc_type", "arrow"),
    [
        ("tinyint", "tinyint(4)", {}, "TINYINT", pa.int8()),
        ("tinyint", "tinyint(1)", {}, "TINYINT", pa.int8()),  # BOOL: stays an integer
        ("tinyint", "tinyint(3) unsigned", {}, "SMALLINT", pa.int16()),
        ("tinyint", "tinyint(3) unsigned zerofill", {}, "SMALLINT", pa.int16()),
        ("smallint", "smallint(6)", {}, "SMALLINT", pa.int16()),
        ("smallint", "smallint unsigned", {}, "INT", pa.int32()),
        ("mediumint", "mediumint(9)", {}, "INT", pa.int32()),
        ("mediumint", "mediumint(8) unsigned", {}, "INT", pa.int32()),
        ("int", "int(11)", {}, "INT", pa.int32()),
        ("int", "int unsigned", {}, "BIGINT", pa.int64()),
        ("bigint", "bigint(20)", {}, "BIGINT", pa.int64()),
        ("bigint", "bigint(20) unsigned", {}, "DECIMAL(20,0)", pa.decimal128(20, 0)),
        ("decimal", "decimal(10,2)", {"numeric_precision": 10, "numeric_scale": 2}, "DECIMAL(10,2)",
         pa.decimal128(10, 2)),
        ("decimal", "decimal(38,18)", {}, "DECIMAL(38,18)", pa.decimal128(38, 18)),
        ("decimal", "decimal(65,30)", {"numeric_precision": 65, "numeric_scale": 30}, "STRING", pa.string()),
        ("decimal", "decimal(39,0)", {}, "STRING", pa.string()),
        ("decimal", "decimal(30,20)", {}, "STRING", pa.string()),  # scale beyond MaxCompute's 18
        ("decimal", "decimal", {}, "DECIMAL(10,0)", pa.decimal128(10, 0)),
        ("decimal", "decimal(12,4) unsigned", {}, "DECIMAL(12,4)", pa.decimal128(12, 4)),
        ("float", "float", {}, "FLOAT", pa.float32()),
        ("double", "double", {}, "DOUBLE", pa.float64()),
        ("real", "real", {}, "DOUBLE", pa.float64()),
        ("bit", "bit(1)", {"numeric_precision": 1}, "BOOLEAN", pa.bool_()),
        ("bit", "bit(8)", {"numeric_precision": 8}, "BIGINT", pa.int64()),
        ("bit", "bit(8)", {}, "BIGINT", pa.int64()),  # width read from COLUMN_TYPE
        ("bit", "bit(64)", {}, "DECIMAL(20,0)", pa.decimal128(20, 0)),
        ("char", "char(10)", {"character_set_name": "utf8mb4"}, "STRING", pa.string()),
        ("varchar", "varchar(255)", {"character_set_name": "utf8mb3"}, "STRING", pa.string()),
        ("tinytext", "tinytext", {}, "STRING", pa.string()),
        ("text", "text", {}, "STRING", pa.string()),
        ("mediumtext", "mediumtext", {}, "STRING", pa.string()),
        ("longtext", "longtext", {}, "STRING", pa.string()),
        ("varchar", "varchar(16)", {"character_set_name": "binary"}, "BINARY", pa.binary()),
        ("binary", "binary(16)", {}, "BINARY", pa.binary()),
        ("varbinary", "varbinary(255)", {}, "BINARY", pa.binary()),
        ("tinyblob", "tinyblob", {}, "BINARY", pa.binary()),
        ("blob", "blob", {}, "BINARY", pa.binary()),
        ("mediumblob", "mediumblob", {}, "BINARY", pa.binary()),
        ("longblob", "longblob", {}, "BINARY", pa.binary()),
        ("date", "date", {}, "DATE", pa.date32()),
        ("timestamp", "timestamp", {"datetime_precision": 0}, "TIMESTAMP", pa.timestamp("ns")),
        ("timestamp", "timestamp(6)", {"datetime_precision": 6}, "TIMESTAMP", pa.timestamp("ns")),
        ("time", "time(3)", {"datetime_precision": 3}, "STRING", pa.string()),
        ("year", "year(4)", {}, "INT", pa.int32()),
        ("enum", "enum('a','b')", {}, "STRING", pa.string()),
        ("set", "set('x','y','z')", {}, "STRING", pa.string()),
        ("json", "json", {}, "STRING", pa.string()),
        ("geometry", "geometry", {}, "BINARY", pa.binary()),
        ("point", "point", {}, "BINARY", pa.binary()),
        ("linestring", "linestring", {}, "BINARY", pa.binary()),
        ("polygon", "polygon", {}, "BINARY", pa.binary()),
        ("multipoint", "multipoint", {}, "BINARY", pa.binary()),
        ("multilinestring", "multilinestring", {}, "BINARY", pa.binary()),
        ("multipolygon", "multipolygon", {}, "BINARY", pa.binary()),
        ("geometrycollection", "geometrycollection", {}, "BINARY", pa.binary()),
        ("geomcollection", "geomcollection", {}, "BINARY", pa.binary()),
    ],
)
def test_type_row(data_type: str, column_type: str, catalog: dict, mc_type: str, arrow: pa.DataType):
    mapped = map_type(column(data_type, column_type, **catalog))
    assert mapped.mc_type == mc_type
    assert mapped.arrow_type == arrow
    assert mapped.comment == column_type  # the source type survives in the column comment
    assert mapped.precision_loss is None


@pytest.mark.parametrize("fsp", range(7))
def test_datetime_defaults_to_timestamp_ntz_for_every_fsp(fsp: int):
    column_type = f"datetime({fsp})" if fsp else "datetime"
    mapped = map_type(column("datetime", column_type, datetime_precision=fsp))
    # microseconds: pyodps's wire type timestamp('ns') ends in 2262, MySQL's DATETIME in 9999
    assert (mapped.mc_type, mapped.arrow_type, mapped.precision_loss) == ("TIMESTAMP_NTZ", pa.timestamp("us"), None)


@pytest.mark.parametrize("fsp", range(7))
def test_datetime_type_datetime_warns_only_beyond_milliseconds(fsp: int):
    column_type = f"datetime({fsp})" if fsp else "datetime"
    mapped = map_type(column("datetime", column_type, datetime_precision=fsp), MappingOptions(datetime_type="datetime"))
    assert (mapped.mc_type, mapped.arrow_type) == ("DATETIME", pa.timestamp("ms"))
    if fsp > 3:
        assert mapped.precision_loss and "milliseconds" in mapped.precision_loss
    else:
        assert mapped.precision_loss is None


def test_datetime_fsp_read_from_column_type_when_catalog_omits_it():
    mapped = map_type(column("datetime", "datetime(6)"), MappingOptions(datetime_type="datetime"))
    assert mapped.precision_loss is not None


def test_timestamp_is_unaffected_by_datetime_type():
    mapped = map_type(column("timestamp", "timestamp(6)"), MappingOptions(datetime_type="datetime"))
    assert mapped.mc_type == "TIMESTAMP"


def test_json_as_maxcompute_json():
    mapped = map_type(column("json"), MappingOptions(json_type="json"))
    assert (mapped.mc_type, mapped.arrow_type) == ("JSON", pa.string())


def test_information_schema_row_in_any_key_case():
    row = {"DATA_TYPE": "bigint", "COLUMN_TYPE": "bigint(20) unsigned", "NUMERIC_PRECISION": 20,
           "NUMERIC_SCALE": 0, "DATETIME_PRECISION": None, "CHARACTER_SET_NAME": None}
    assert map_type(row).mc_type == "DECIMAL(20,0)"
    assert map_type({k.lower(): v for k, v in row.items()}).mc_type == "DECIMAL(20,0)"


def test_data_type_is_case_insensitive():
    assert map_type(column("VARCHAR", "VARCHAR(10)")).mc_type == "STRING"


@pytest.mark.parametrize("data_type", ["uuid", "inet6", "vector", "made_up"])
def test_unknown_type_raises_unsupported_type(data_type: str):
    with pytest.raises(UnsupportedType) as raised:
        map_type(column(data_type, f"{data_type}(1)"))
    message = str(raised.value)
    assert repr(f"{data_type}(1)") in message and "exclude the table" in message
    assert isinstance(raised.value, ConfigError)


def test_table_rows_are_rendered_for_the_docs():
    assert ("BIGINT UNSIGNED (incl. SERIAL)", "DECIMAL(20,0)", "exact; values reach 18446744073709551615") in (
        TYPE_MAPPING_ROWS
    )
    assert all(len(row) == 3 and row[0] and row[1] for row in TYPE_MAPPING_ROWS)
    mapped_types = {row[1] for row in TYPE_MAPPING_ROWS}
    for mc_type in mapped_types - {"DECIMAL(p,s)"}:
        arrow_type_for(mc_type)  # every MaxCompute type in the table has an Arrow type


def test_arrow_type_for_unknown_maxcompute_type():
    with pytest.raises(ValueError, match="no Arrow type"):
        arrow_type_for("ARRAY<INT>")


def test_arrow_types_match_pyodps_tunnel_mapping_but_timestamp_ntz_keeps_its_range():
    odps_types = pytest.importorskip("odps.types")
    tunnel_types = pytest.importorskip("odps.tunnel.io.types")
    for mc_type in ["TINYINT", "SMALLINT", "INT", "BIGINT", "BOOLEAN", "FLOAT", "DOUBLE", "STRING", "BINARY",
                    "DATE", "DATETIME", "TIMESTAMP", "DECIMAL(10,2)", "DECIMAL(38,18)"]:
        expected = tunnel_types.odps_type_to_arrow_type(odps_types.validate_data_type(mc_type.lower()))
        assert arrow_type_for(mc_type) == expected, mc_type
    wire = tunnel_types.odps_type_to_arrow_type(odps_types.validate_data_type("timestamp_ntz"))
    assert (wire, arrow_type_for("TIMESTAMP_NTZ")) == (pa.timestamp("ns"), pa.timestamp("us"))


def test_scale_zero_decimals_keep_scale_zero():
    """pyodps 0.13 turns DECIMAL(p,0) into decimal128(p,18); the mapping keeps the correct type (the
    canary for pyodps's bug, and the patch the uploader applies, live in tests/unit/test_values.py)."""
    assert arrow_type_for("DECIMAL(20,0)") == pa.decimal128(20, 0)


def test_docs_render_the_same_table():
    """docs/spec.md shows TYPE_MAPPING_ROWS verbatim, so the reference cannot drift from the code."""
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "spec.md").read_text()
    section = docs.split("<!-- type-mapping:start")[1].split("<!-- type-mapping:end -->")[0]
    rendered = [line for line in section.splitlines() if line.startswith("| ")][2:]  # past header + rule
    assert rendered == [f"| {mysql} | {mc} | {note} |" for mysql, mc, note in TYPE_MAPPING_ROWS]
