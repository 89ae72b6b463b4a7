"""binlog_row_value_options=PARTIAL_JSON (MySQL 8) is refused at precheck; MariaDB has no such variable."""

from __future__ import annotations

import pytest

from airflow_provider_polar_mc.core.model import ServerInfo
from airflow_provider_polar_mc.core.precheck import check_binlog, check_partial_json


def server(**variables) -> ServerInfo:
    return ServerInfo(
        version="8.0.36", is_mariadb=False, is_polardb=False, server_id=1, server_uuid="u", log_bin=True,
        binlog_format="ROW", binlog_row_image="FULL", binlog_row_metadata="FULL", retention_seconds=0,
        gtid_mode="ON", variables=variables,
    )  # fmt: skip


@pytest.mark.parametrize("value", ["PARTIAL_JSON", "partial_json"])
def test_partial_json_fails_naming_the_fix(value):
    result = check_partial_json(server(binlog_row_value_options=value))
    assert result.status == "failed"
    assert "binlog_row_value_options=''" in result.fix


@pytest.mark.parametrize("variables", [{"binlog_row_value_options": ""}, {}])
def test_whole_documents_or_no_such_variable_pass(variables):
    assert check_partial_json(server(**variables)).status == "passed"


def test_check_binlog_includes_it():
    names = {r.check_id: r.status for r in check_binlog(server(binlog_row_value_options="PARTIAL_JSON"))}
    assert names["binlog_row_value_options"] == "failed"
