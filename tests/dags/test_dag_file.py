"""The DAG file as a user deploys it: where specs are found, what a broken spec does, how many runs a
deployment queues. Real DagBags, a real DAG.test() of the error DAG, Airflow's own serialization."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pendulum
import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "polar_mc_migrations.py"
EXAMPLE = REPO / "dags" / "migrations" / "example_shop.yaml"


def _dagbag(folder: Path):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(folder))


def _deploy(tmp_path: Path, specs: dict[str, str] | None = None, *, with_folder: bool = True) -> Path:
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    if with_folder:
        (dags / "migrations").mkdir()
        for name, text in (specs or {}).items():
            (dags / "migrations" / name).write_text(text, encoding="utf-8")
    return dags


def _spec(name: str, **extra: str) -> str:
    lines = [f"name: {name}", "source: {databases: [shop]}", "objects: [{database: shop, tables: all}]"]
    lines += [f"{key}: {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def factory_log():
    """What the DAG factory logs (Airflow's logging setup keeps it away from caplog's root handler)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("airflow_provider_polar_mc.dag_factory")
    logger.addHandler(handler)
    yield lambda: "\n".join(record.getMessage() for record in records)
    logger.removeHandler(handler)


def test_dag_file_alone_warns_and_names_the_setting(tmp_path, airflow_db, factory_log):
    dags = _deploy(tmp_path, with_folder=False)
    bag = _dagbag(dags)
    assert bag.import_errors == {} and bag.dag_ids == []
    text = factory_log()
    assert str(dags / "migrations") in text and "AIRFLOW__POLAR_MC__SPEC_DIR" in text


def test_empty_spec_folder_warns(tmp_path, airflow_db, factory_log):
    dags = _deploy(tmp_path, {})
    bag = _dagbag(dags)
    assert bag.dag_ids == [] and "no migration spec" in factory_log()


def test_spec_folder_from_airflow_config(tmp_path, airflow_db, monkeypatch):
    elsewhere = tmp_path / "specs"
    elsewhere.mkdir()
    shutil.copy(EXAMPLE, elsewhere / EXAMPLE.name)
    dags = _deploy(tmp_path, with_folder=False)
    monkeypatch.setenv("AIRFLOW__POLAR_MC__SPEC_DIR", str(elsewhere))
    bag = _dagbag(dags)
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"polar_mc__example_shop__setup", "polar_mc__example_shop__incremental", "polar_mc__example_shop__resync"}


def test_spec_dir_option_is_declared_in_the_provider_config():
    from airflow_provider_polar_mc.get_provider_info import get_provider_info

    option = get_provider_info()["config"]["polar_mc"]["options"]["spec_dir"]
    assert option["type"] == "string" and option["default"] == ""


def test_broken_spec_never_hides_valid_ones_and_shows_its_errors(tmp_path, airflow_db):
    dags = _deploy(tmp_path, {
        "good.yaml": _spec("good"),
        "bad.yaml": _spec("bad", colour="blue", migration_types="[schema, fulll]"),
        "not yaml.yaml": "name: [unclosed\n",
        "same_name.yaml": _spec("good"),
    })
    bag = _dagbag(dags)
    assert bag.import_errors == {}
    assert {"polar_mc__good__setup", "polar_mc__good__incremental"} <= set(bag.dag_ids)
    bad = bag.get_dag("polar_mc__spec_error__bad")
    assert bad is not None and "spec-error" in bad.tags
    assert "colour" in bad.doc_md and "fulll" in bad.doc_md  # every problem, with its path, in the UI
    assert "bad.yaml" in bad.description
    assert "not valid YAML" in bag.get_dag("polar_mc__spec_error__not_yaml").doc_md
    assert "already used by" in bag.get_dag("polar_mc__spec_error__same_name").doc_md


def test_error_dag_task_fails_with_the_spec_errors(tmp_path):
    from airflow.exceptions import AirflowFailException

    from airflow_provider_polar_mc.dag_factory import migration_dags

    dags = _deploy(tmp_path, {"bad.yaml": _spec("bad", colour="blue")})
    task = migration_dags(dags / DAG_FILE.name)["polar_mc__spec_error__bad"].get_task("spec_error")
    with pytest.raises(AirflowFailException, match="colour"):  # a failure, not retried
        task.execute(context={})


def _scheduled_runs(dag, now: pendulum.DateTime) -> list:
    """The runs the scheduler would create up to ``now``, asking the serialized DAG as the scheduler does."""
    from airflow.serialization.serialized_objects import DagSerialization

    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    restriction = serialized._time_restriction
    infos, last = [], None
    while len(infos) < 10_000:
        info = serialized.timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        if info is None or info.run_after > now:
            break
        infos.append(info)
        last = info.data_interval
    return infos


def test_example_spec_deployed_today_queues_one_run_then_skips_none(airflow_db):
    bag = _dagbag(REPO / "dags")
    dag = bag.get_dag("polar_mc__example_shop__incremental")
    now = pendulum.now("UTC")
    runs = _scheduled_runs(dag, now)
    assert 1 <= len(runs) <= 2, [r.data_interval for r in runs]
    assert runs[0].data_interval.end <= now and now - runs[0].data_interval.end < pendulum.duration(hours=1)
    # After an outage every missed interval runs, in order: none is skipped.
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.timetables.base import DataInterval

    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    last = DataInterval(now.subtract(hours=6).start_of("hour"), now.subtract(hours=5).start_of("hour"))
    following = serialized.timetable.next_dagrun_info(
        last_automated_data_interval=last, restriction=serialized._time_restriction
    )
    assert following.data_interval.start == last.end


def test_backfill_covers_every_interval_asked_for(airflow_db):
    from airflow.serialization.serialized_objects import DagSerialization

    dag = _dagbag(REPO / "dags").get_dag("polar_mc__example_shop__incremental")
    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    infos = list(serialized.iter_dagrun_infos_between(pendulum.datetime(2026, 11, 1, tz="UTC"),
                                                      pendulum.datetime(2026, 11, 1, 3, tz="UTC")))
    assert [i.data_interval.start.hour for i in infos] == [0, 1, 2, 3]


@pytest.mark.parametrize("start_date", ["2026-11-30T00:00:00+00:00"])
def test_explicit_start_date_catches_up_from_it(tmp_path, airflow_db, start_date):
    dags = _deploy(tmp_path, {"s.yaml": _spec("s", incremental=f"{{start_date: '{start_date}'}}")})
    dag = _dagbag(dags).get_dag("polar_mc__s__incremental")
    assert dag.catchup
    runs = _scheduled_runs(dag, pendulum.datetime(2026, 12, 3, 5, 30, tz="UTC"))  # daily partitions
    assert [r.data_interval.start.day for r in runs] == [30, 1, 2]
