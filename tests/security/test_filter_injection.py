"""Filters that try to change or read the source, or to escape their string literal.

Each hostile filter is refused three times over: when the spec loads (the user's error, at its field
path), and by the lower layers a caller could reach without a spec (``TableSelection.filter_sql``, the
change-image filter). Each case then proves the source is unchanged: the row checksums of the tables,
the sequence's next value, the number of accounts. A filter that only *looks* hostile (a quote and
``#`` inside a string, on a server whose ``sql_mode`` would read it differently) is run and must
select exactly the rows its string names.
"""

from __future__ import annotations

import uuid

import pytest

from airflow_provider_polar_mc.core import filters
from airflow_provider_polar_mc.core.binlog.change_filter import matching_images
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.model import SourceColumn
from airflow_provider_polar_mc.core.precheck import check_filters
from airflow_provider_polar_mc.core.selection import TableSelection
from airflow_provider_polar_mc.exceptions import SpecError
from airflow_provider_polar_mc.spec import MigrationSpec

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def victim(mysql_server):
    db = f"victim_{uuid.uuid4().hex[:6]}"
    mysql_server.execute(
        f"CREATE DATABASE {db}",
        f"CREATE TABLE {db}.t (id INT PRIMARY KEY, name VARCHAR(40), status VARCHAR(40))",
        f"CREATE TABLE {db}.other (id INT PRIMARY KEY, secret VARCHAR(40))",
        f"CREATE SEQUENCE {db}.seq",
        f"INSERT INTO {db}.t VALUES (1, 'alice', 'paid'), (2, 'bob', '\\' OR 1=1 #'), (3, 'carol', 'new')",
        f"INSERT INTO {db}.other VALUES (1, 'hunter2'), (2, 'swordfish')",
        f"CREATE FUNCTION {db}.wipe() RETURNS INT DETERMINISTIC MODIFIES SQL DATA BEGIN DELETE FROM {db}.other; RETURN 1; END",
    )
    yield db
    mysql_server.execute(f"DROP DATABASE {db}")


def fingerprint(server, db: str) -> tuple:
    """What a hostile filter must not change: table checksums, the sequence, the accounts."""
    return (
        tuple(server.execute(f"CHECKSUM TABLE {db}.t, {db}.other")),
        tuple(server.execute(f"SELECT next_not_cached_value FROM {db}.seq")),
        tuple(server.execute("SELECT COUNT(*) FROM mysql.user")),
        tuple(server.execute(f"SELECT COUNT(*) FROM {db}.other")),
    )


HOSTILE = [
    ("nextval", "NEXTVAL({db}.seq) > 0"),
    ("next_value_for", "NEXT VALUE FOR {db}.seq > 0"),
    ("lastval", "LASTVAL({db}.seq) IS NULL"),
    ("setval", "SETVAL({db}.seq, 1000) > 0"),
    ("stored_function_qualified", "{db}.wipe() = 1"),
    ("stored_function", "wipe() = 1"),
    ("password_hash_subquery", "id = ASCII(SUBSTR((SELECT authentication_string FROM mysql.user LIMIT 1), 2, 1))"),
    ("exists_subquery", "EXISTS (SELECT 1 FROM mysql.user)"),
    ("in_subquery", "id IN (SELECT id FROM {db}.other)"),
    ("scalar_subquery", "id = (SELECT MAX(id) FROM {db}.other)"),
    ("sleep", "SLEEP(5) = 0"),
    ("benchmark", "BENCHMARK(100000000, MD5('x')) = 0"),
    ("load_file", "LOAD_FILE('/etc/passwd') IS NOT NULL"),
    ("load_file_in_convert", "CONVERT(LOAD_FILE('/etc/passwd') USING utf8mb4) <> ''"),
    ("get_lock", "GET_LOCK('polar', 10) = 1"),
    ("release_lock", "RELEASE_LOCK('polar') IS NULL"),
    ("system_variable", "@@version LIKE '%'"),
    ("user_variable", "@x = 1"),
    ("assignment", "(@x := 1) = 1"),
    ("stacked_statement", "id = 1; DROP TABLE {db}.t"),
    ("trailing_semicolon", "id = 1;"),
    ("line_comment", "id = 1 -- AND status = 'paid'"),
    ("hash_comment", "id = 1 # AND status = 'paid'"),
    ("block_comment", "id = 1 /* AND 0 */"),
    ("executable_comment", "/*!50000 SLEEP(1) = 0 AND */ id = 1"),
    ("union", "id = 1 UNION SELECT secret FROM {db}.other"),
    ("paren_escape", "id = 1) OR (1 = 1"),
    ("into_outfile", "id = 1 INTO OUTFILE '/tmp/polar_mc_out'"),
    ("now", "NOW() > '2000-01-01'"),
    ("rand", "RAND() < 0.5"),
    ("uuid", "UUID() IS NOT NULL"),
    ("current_user", "CURRENT_USER() LIKE 'root%'"),
    ("database", "DATABASE() = 'x'"),
    ("connection_id", "CONNECTION_ID() > 0"),
    ("other_table_column", "{db}.other.secret = 'hunter2'"),
    ("mysql_user_column", "mysql.user.User = 'root'"),
    ("placeholder", "id = ?"),
    ("udf_sys_exec", "sys_exec('touch /tmp/polar_mc_pwned') = 0"),
    ("extractvalue_error_channel", "EXTRACTVALUE(1, CONCAT(0x7e, (SELECT secret FROM {db}.other LIMIT 1))) = 1"),
    ("updatexml", "UPDATEXML(1, CONCAT(0x7e, USER()), 1) = 1"),
    ("json_arrow_on_subquery", "JSON_EXTRACT((SELECT secret FROM {db}.other LIMIT 1), '$') IS NULL"),
    ("nul_byte", "id = 1\x00 OR 1 = 1"),
    ("unterminated_string", "status = 'paid"),
    ("constant_true", "1"),
    ("huge", "id = 1 AND " + " AND ".join(["id > 0"] * 3000)),
    ("deep_nesting", "(" * 300 + "id = 1" + ")" * 300),
]


@pytest.mark.security_case("filter_injection")
@pytest.mark.parametrize("template", [c[1] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_filter_is_refused_everywhere_and_changes_nothing(mysql_server, victim, template: str):
    hostile = template.replace("{db}", victim)
    before = fingerprint(mysql_server, victim)
    document = {"name": "m", "source": {"databases": [victim]},
                "objects": [{"database": victim, "tables": [{"name": "t", "filter": hostile}]}]}
    with pytest.raises(SpecError) as raised:
        MigrationSpec.from_dict(document)
    assert [p.path for p in raised.value.problems] == ["objects[0].tables[0].filter"], raised.value
    selection = TableSelection(victim, "t", "t", "t_base", "t_log", "t", filter=hostile)
    with pytest.raises(filters.FilterError):
        _ = selection.filter_sql
    endpoint = MySqlEndpoint(host=mysql_server.host, port=mysql_server.port, user=mysql_server.user,
                             password=mysql_server.password)
    with endpoint.session() as conn:
        column = SourceColumn(name="id", ordinal=1, data_type="int", column_type="int", nullable=False)
        with pytest.raises(filters.FilterError):
            matching_images(conn, hostile, [column], [{"id": 1}])
    assert fingerprint(mysql_server, victim) == before, "DAMAGE: the source changed"


@pytest.mark.security_case("filter_injection", accepted=True)
def test_a_quote_and_hash_stay_inside_their_string_whatever_the_servers_sql_mode(mysql_server, victim):
    """``status = '\\' OR 1=1 #'`` is one string literal in MySQL's default mode; on a server with
    NO_BACKSLASH_ESCAPES the same text would run ``OR 1=1``. The provider renders the string itself
    (hex) and sets its sessions' sql_mode, so it selects exactly the row whose status is that text."""
    hostile = "status = '\\' OR 1=1 #'"
    spec = MigrationSpec.from_dict({"name": "m", "source": {"databases": [victim]},
                                    "objects": [{"database": victim, "tables": [{"name": "t", "filter": hostile}]}]})
    selection = TableSelection(victim, "t", "t", "t_base", "t_log", "t", filter=spec.objects[0].tables[0].filter)
    (mode,) = mysql_server.execute("SELECT @@GLOBAL.sql_mode")[0]
    mysql_server.execute("SET GLOBAL sql_mode = 'NO_BACKSLASH_ESCAPES,ANSI_QUOTES,PIPES_AS_CONCAT'")
    try:
        endpoint = MySqlEndpoint(host=mysql_server.host, port=mysql_server.port, user=mysql_server.user,
                                 password=mysql_server.password)
        with endpoint.session() as conn:
            result = check_filters(conn, [selection])
            columns = [SourceColumn(name=n, ordinal=i, data_type="varchar", column_type="varchar(40)", nullable=True,
                                    character_set="utf8mb4") for i, n in enumerate(("id", "name", "status"))]
            images = [{"id": 1, "name": "alice", "status": "paid"}, {"id": 2, "name": "bob", "status": "' OR 1=1 #"}]
            matched = matching_images(conn, hostile, columns, images)
    finally:
        mysql_server.execute(f"SET GLOBAL sql_mode = '{mode}'")
    assert result.status == "passed" and f"{victim}.t 1 of 3" in result.message, result
    assert matched == {1}, "SILENT: the filter matched more than its string names"


@pytest.mark.security_case("filter_injection", accepted=True)
def test_reading_sessions_cannot_write_even_as_root(mysql_server, victim):
    """Least privilege at run time: whatever the account may do, the provider's reading sessions are
    read-only (pymysql) and so are connectorx's (the full load)."""
    import connectorx

    from airflow_provider_polar_mc.core.endpoint import READ_SESSION_STATEMENTS
    from airflow_provider_polar_mc.core.source.snapshot import connectorx_uri

    before = fingerprint(mysql_server, victim)
    endpoint = MySqlEndpoint(host=mysql_server.host, port=mysql_server.port, user=mysql_server.user,
                             password=mysql_server.password)
    import pymysql

    for connect in (endpoint.connect, endpoint.connect_once):
        conn = connect()
        try:
            with conn.cursor() as cur:
                for statement in (f"DELETE FROM {victim}.other", f"SELECT NEXTVAL({victim}.seq)",
                                  f"SELECT {victim}.wipe()"):
                    with pytest.raises(pymysql.err.MySQLError) as raised:
                        cur.execute(statement)
                    assert raised.value.args[0] == 1792, raised.value  # READ ONLY transaction
        finally:
            conn.close()
    with pytest.raises(Exception, match="READ ONLY"):
        connectorx.read_sql(connectorx_uri(endpoint), f"SELECT {victim}.wipe() AS w", return_type="arrow",
                            pre_execution_query=list(READ_SESSION_STATEMENTS))
    assert fingerprint(mysql_server, victim) == before, "DAMAGE: a reading session changed the source"
