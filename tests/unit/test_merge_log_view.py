"""The merge task's LogView link is a convenience: an instance without one, or a link that cannot be
kept, never fails the merge."""

from __future__ import annotations

from airflow_provider_polar_mc.operators.merge import MergeOperator


class Instance:
    id = "20261206000000000abc"

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def get_logview_address(self) -> str:
        if self.error is not None:
            raise self.error
        return "https://logview.example/logview/?i=20261206000000000abc&token=t"


class TaskInstance:
    def __init__(self) -> None:
        self.pushed: list[tuple[str, str]] = []

    def xcom_push(self, key: str, value: str) -> None:
        if value.startswith("https://logview.example/broken"):
            raise ConnectionError("the API server is gone")
        self.pushed.append((key, value))


def test_the_link_is_kept_for_the_task():
    ti = TaskInstance()
    MergeOperator(task_id="merge", spec={"name": "m"})._show_log_view({"task_instance": ti}, Instance())
    assert ti.pushed == [("maxcompute_log_view", "https://logview.example/logview/?i=20261206000000000abc&token=t")]


def test_an_instance_without_a_log_view_does_not_fail_the_merge():
    ti = TaskInstance()
    operator = MergeOperator(task_id="merge", spec={"name": "m"})
    operator._show_log_view({"task_instance": ti}, Instance(PermissionError("ODPS-0420095: Access Denied")))
    assert ti.pushed == []


def test_a_link_that_cannot_be_kept_does_not_fail_the_merge():
    class Broken(Instance):
        def get_logview_address(self) -> str:
            return "https://logview.example/broken"

    MergeOperator(task_id="merge", spec={"name": "m"})._show_log_view({"task_instance": TaskInstance()}, Broken())
