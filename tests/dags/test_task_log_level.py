"""The DAG tests run the tasks at INFO, the level a deployment logs at.

A lower level once hid a task that crashed in an INFO log call (a format that did not fit
its argument): the call was dropped before it was formatted.
"""

from __future__ import annotations


def test_task_info_lines_are_formatted_and_written(dagbag, stack, capfd):
    run = dagbag.get_dag("lethe_control_schema").test()
    assert run.state == "success"
    out, err = capfd.readouterr()
    lines = [line for line in (out + err).splitlines() if "Control schema at version" in line]
    assert lines, "the operator's INFO line was not logged"
    assert "[info" in lines[0]
    assert "%d" not in lines[0]  # formatted with its arguments
