"""``python -m lethe.control migrate`` refuses to run while the policy catalog is invalid."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from lethe.control.__main__ import main
from lethe.policy import clear_cache

POLICY_DIR = Path(__file__).resolve().parents[2] / "include" / "policies"


def test_migrate_refuses_an_invalid_catalog_and_prints_its_errors(tmp_path, monkeypatch, capsys):
    policies = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, policies)
    data = yaml.safe_load((policies / "support_tickets.yaml").read_text())
    data["categories"][0]["legal_basis"] = "contrct"
    (policies / "support_tickets.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("LETHE_POLICY_DIR", str(policies))
    # A connection that cannot work: the refusal must come before any connection is made.
    monkeypatch.setenv("AIRFLOW_CONN_LETHE_NO_SUCH_DB", "postgres://nobody@127.0.0.1:1/none")
    clear_cache()

    code = main(["migrate", "--conn-id", "lethe_no_such_db"])

    err = capsys.readouterr().err
    assert code == 1
    assert "support_tickets.yaml: category 'support_tickets': legal_basis: " in err
    assert "refusing to migrate: the policy catalog" in err
    clear_cache()
