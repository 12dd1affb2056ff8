"""Bad queries get a message with the position; unknown names are named; nothing unsafe runs."""

from __future__ import annotations

from typing import Any

import pytest

from kaudit.errors import ConfigError, QueryError
from kaudit.query.run import compile_query, run_query

from .conftest import event


def err(text: str) -> QueryError:
    with pytest.raises(QueryError) as info:
        compile_query(text)
    return info.value


def caret_column(e: QueryError) -> int:
    lines = e.message.split("\n")
    return lines[2].index("^") - 2 + 1


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("* | select foo from log", 'unknown column "foo"', 12),
        ('* | select "nosuch.field"', 'unknown column "nosuch.field"', 12),
        ("* | select frobnicate(verb)", "unknown function frobnicate", 12),
        ("* | select verb from events", "unknown table events", 22),
        ("* | select * from read_csv('/etc/passwd')", "read_csv is refused", 19),
        ("* | select * from read_parquet('x')", "read_parquet is refused", 19),
        ("* | select * from glob('*')", "glob is refused", 19),
        ("* | select verb limit 3 offset 2", "OFFSET is not supported", 32),
        ("* | select regexp_extract(verb, '?(.*)', 1)", "invalid regex '?(.*)'", 33),
        ("* | select regexp_like(verb, '(?=x)')", "look-around", 30),
        ('* | select verb where "user.username" > 3', '"user.username" is a text column', 23),
        ("* | select verb where \"responseStatus.code\" = 'x'", "long (numeric) column", 23),
        ("* | select verb frm log", "SQL syntax error", None),
        ("* | pragma database_list", "PRAGMA is refused", 5),
        ("* | attach 'x.db' as x", "ATTACH is refused", 5),
        ("* | copy events to '/tmp/x.csv'", "COPY is refused", 5),
        ("* | insert into events select * from events", "INSERT is refused", 5),
        ("* | set threads = 1", "SET is refused", 5),
        ("* | drop table events", "DROP is refused", 5),
        ("* | where verb = 'get'", "SPL pipelines are not supported", 5),
        ("* | select 1; drop table events", "exactly one SELECT", None),
        ("* | select json_array_get(sourceIPs, verb)", "literal integer index", 12),
        ("* | select ip_to_country(verb, 'fr')", "can only be 'en'", 12),
        ("* | select time_series(__time__, '1m', '%H', '0')", "needs GROUP BY", 12),
        ("* | select time_series(__time__, '7m', '%H', '0') as t group by t", "window", 34),
        ("* | select time_series(__time__, '1m', '%H', 'avg') as t group by t", "padding", 46),
        ("* | select 1 + time_series(__time__, '1m', '%H', '0')", "must be a select item", 16),
        ("* | select verb where verb = ?", "parameters", None),
        ("verb > 3", "'verb' is a text field", 1),
        ("nosuch:1", "unknown field 'nosuch'", 1),
        ("verb:get and (x", "missing ')'", 14),
    ],
)
def test_messages_name_the_problem_and_point_at_it(
    text: str, message: str, column: int | None
) -> None:
    e = err(text)
    assert message in e.message
    if column is not None:
        assert e.location is not None and e.location.column == column
        assert caret_column(e) == column
        assert e.message.split("\n")[1] == "  " + text


def test_cte_names_are_tables_and_dml_inside_is_refused() -> None:
    compile_query("* | with x as (select verb from log) select * from x")
    assert "DELETE is refused" in err("* | with x as (select 1) delete from x").message


def test_bad_time_zone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown time zone"):
        compile_query("*", tz="Mars/Olympus")


def test_runtime_errors_become_query_errors(store_factory: Any) -> None:
    store = store_factory([event(1)])
    with pytest.raises(QueryError, match="failed while running"):
        run_query(store, "* | select cast(verb as bigint)")


def test_the_store_is_untouched_by_refused_queries(store_factory: Any) -> None:
    store = store_factory([event(1), event(2)])
    for text in (
        "* | drop table events",
        "* | delete from events",
        "* | select 1; delete from log",
    ):
        with pytest.raises(QueryError):
            run_query(store, text)
    assert run_query(store, "* | select count(1)").rows == [(2,)]
