"""The loader: where it reads from, its errors, its cache and the catalog's lookups."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from lethe.exceptions import PolicyError
from lethe.policy import FamilyId, load_catalog, load_family
from lethe.policy.catalog import REPO_ROOT, Catalog, display_path
from lethe.policy.loader import DEFAULT_POLICY_DIR, ENV_VAR, default_policy_dir
from lethe.policy.models import PolicyFamily

# ============================================================================ where from


def test_default_dir_is_include_policies_of_the_repository(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert default_policy_dir() == DEFAULT_POLICY_DIR
    assert DEFAULT_POLICY_DIR == REPO_ROOT / "include" / "policies"
    assert (REPO_ROOT / "plugins" / "lethe" / "policy" / "loader.py").is_file()


def test_env_var_names_the_dir(monkeypatch, workspace):
    monkeypatch.setenv(ENV_VAR, str(workspace.directory))
    assert default_policy_dir() == workspace.directory
    assert load_catalog().source(workspace.families()[0]).parent == workspace.directory


def test_a_single_file_can_be_loaded(workspace):
    family = workspace.families()[0]
    catalog = load_catalog(workspace.directory / f"{family}.yaml")
    assert [f.family.value for f in catalog.families] == [family]
    assert isinstance(load_family(workspace.directory / f"{family}.yaml"), PolicyFamily)


def test_messages_name_repository_files_relative_to_the_root():
    assert display_path(DEFAULT_POLICY_DIR / "website.yaml") == "include/policies/website.yaml"
    assert display_path("/elsewhere/website.yaml") == "/elsewhere/website.yaml"


def test_importing_the_package_reads_nothing(tmp_path):
    env = {
        **os.environ,
        ENV_VAR: str(tmp_path / "missing"),
        "PYTHONPATH": str(REPO_ROOT / "plugins"),
    }
    code = "import lethe.policy, lethe.policy.table, lethe.policy.statement; print('ok')"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# ============================================================================ errors


def test_missing_dir(tmp_path):
    with pytest.raises(PolicyError, match="policy directory not found") as caught:
        load_catalog(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(caught.value)


def test_empty_dir(tmp_path):
    with pytest.raises(PolicyError, match=r"no policy files \(\*\.yaml\) found"):
        load_catalog(tmp_path)


def test_yml_files_are_not_silently_ignored(workspace):
    family = workspace.families()[0]
    (workspace.directory / f"{family}.yaml").rename(workspace.directory / f"{family}.yml")
    with pytest.raises(PolicyError, match=rf"rename {family}\.yml to \.yaml"):
        workspace.load()


def test_missing_file():
    with pytest.raises(PolicyError, match=r"nowhere\.yaml: file not found"):
        load_family(DEFAULT_POLICY_DIR / "nowhere.yaml")


def test_yaml_syntax_error_names_file_line_and_column(workspace):
    family = workspace.families()[0]
    path = workspace.directory / f"{family}.yaml"
    path.write_text("family: website\ncategories:\n  - id: [unclosed\n", encoding="utf-8")
    message = workspace.error()
    assert f"{family}.yaml: YAML syntax error at line " in message, message
    assert ", column " in message


def test_tabs_are_a_yaml_syntax_error(workspace):
    family = workspace.families()[0]
    path = workspace.directory / f"{family}.yaml"
    path.write_text("family: website\n\tversion: 1\n", encoding="utf-8")
    assert f"{family}.yaml: YAML syntax error" in workspace.error()


def test_duplicate_yaml_key(workspace):
    family = workspace.families()[0]
    path = workspace.directory / f"{family}.yaml"
    text = path.read_text(encoding="utf-8")
    # Whatever version the file is at, a second version line follows the first.
    path.write_text(
        re.sub(r"(?m)^(version: \d+\n)", r"\1version: 99\n", text, count=1), encoding="utf-8"
    )
    message = workspace.error()
    assert f"{family}.yaml: YAML syntax error at line " in message, message
    assert "found duplicate key 'version'" in message


def test_the_policy_files_are_parsed_by_libyaml_when_pyyaml_has_it():
    # Every task process loads the catalog when it parses its DAG file: the C parser is
    # several times faster than the pure-Python one (same safe constructor).
    import yaml

    from lethe.policy.loader import _UniqueKeyLoader

    if not yaml.__with_libyaml__:
        pytest.skip("PyYAML was built without libyaml")
    assert issubclass(_UniqueKeyLoader, yaml.CSafeLoader)
    assert issubclass(_UniqueKeyLoader, yaml.constructor.SafeConstructor)


def test_empty_file(workspace):
    family = workspace.families()[0]
    (workspace.directory / f"{family}.yaml").write_text("# nothing\n", encoding="utf-8")
    assert f"{family}.yaml: the file is empty" in workspace.error()


def test_top_level_must_be_a_mapping(workspace):
    family = workspace.families()[0]
    (workspace.directory / f"{family}.yaml").write_text("- a\n- b\n", encoding="utf-8")
    assert f"{family}.yaml: expected a mapping at the top, got list" in workspace.error()


def test_not_utf8(workspace):
    family = workspace.families()[0]
    (workspace.directory / f"{family}.yaml").write_bytes(b"family: \xff\xfe\n")
    assert f"{family}.yaml: cannot read the file" in workspace.error()


# ============================================================================ cache


def test_an_unchanged_catalog_is_served_from_the_cache(workspace):
    assert workspace.load() is workspace.load()


def test_a_changed_file_is_read_again(workspace):
    first = workspace.load()
    family = workspace.families()[0]
    workspace.edit(family, lambda data: data.update(version=data["version"] + 1))
    path = workspace.directory / f"{family}.yaml"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = workspace.load()
    assert second is not first
    assert second.family(family).version == first.family(family).version + 1
    assert second.fingerprint != first.fingerprint


def test_a_new_file_is_noticed(workspace):
    family = workspace.families()[0]
    path = workspace.directory / f"{family}.yaml"
    text = path.read_text(encoding="utf-8")
    path.unlink()
    first = workspace.load()
    path.write_text(text, encoding="utf-8")
    assert len(workspace.load().families) == len(first.families) + 1


def test_a_broken_file_is_not_cached(workspace):
    family = workspace.families()[0]
    path = workspace.directory / f"{family}.yaml"
    good = path.read_text(encoding="utf-8")
    path.write_text("family: [\n", encoding="utf-8")
    with pytest.raises(PolicyError):
        workspace.load()
    path.write_text(good, encoding="utf-8")
    assert workspace.load().family(family)


# ============================================================================ the catalog


def test_families_are_ordered_by_id(catalog):
    ids = [family.family.value for family in catalog.families]
    assert ids == sorted(ids)
    assert set(ids) == {family.value for family in FamilyId}


def test_categories_are_ordered_by_statement_row(catalog):
    rows = [category.statement_row for category in catalog.categories()]
    stated = [row for row in rows if row is not None]
    assert stated == sorted(stated)
    assert rows == [*stated, *[None] * (len(rows) - len(stated))]  # derived data last


def test_only_subject_exports_are_outside_the_statement(catalog):
    derived = [c for c in catalog.categories() if c.statement_row is None]
    assert [catalog.family_of(c.id).family.value for c in derived] == ["subject_exports"]


def test_loading_twice_gives_the_same_catalog(workspace):
    first = workspace.load()
    from lethe.policy import clear_cache

    clear_cache()
    second = workspace.load()
    assert first is not second
    assert first.families == second.families
    assert first.fingerprint == second.fingerprint


def test_lookups(catalog):
    for category in catalog.categories():
        assert catalog.category(category.id) is category
        if category.statement_row is not None:
            assert catalog.by_statement_row(category.statement_row) is category
        family = catalog.family_of(category.id)
        assert category in family.categories
        assert catalog.family(family.family) is family
        assert catalog.family(family.family.value) is family
        assert catalog.source(family.family).name == f"{family.family.value}.yaml"


def test_unknown_lookups_raise_policy_error(catalog):
    with pytest.raises(PolicyError, match="unknown category 'nope'"):
        catalog.category("nope")
    with pytest.raises(PolicyError, match="unknown family 'nope'"):
        catalog.family("nope")
    with pytest.raises(PolicyError, match="no category covers statement row 99"):
        catalog.by_statement_row(99)


def test_stores_iterates_every_store(catalog):
    triples = list(catalog.stores())
    assert len(triples) == sum(len(c.stores) for c in catalog.categories())
    for family, category, store in triples:
        assert category in family.categories
        assert store in category.stores


def test_models_are_frozen(catalog):
    category = catalog.categories()[0]
    with pytest.raises(ValueError, match="frozen"):
        category.title = "changed"


def test_models_are_hashable(catalog):
    stores = {store for _, _, store in catalog.stores()}
    assert len(stores) == sum(len(c.stores) for c in catalog.categories())
    assert len(set(catalog.categories())) == len(catalog.categories())
    assert len(set(catalog.families)) == len(catalog.families)


def test_catalog_refuses_duplicates_without_files(catalog):
    family = catalog.families[0]
    with pytest.raises(PolicyError, match=rf"<family {family.family.value}>: family: .* twice"):
        Catalog([family, family])


def test_json_schema_can_be_generated():
    schema = PolicyFamily.model_json_schema()
    assert schema["title"] == "PolicyFamily"
    assert "Category" in schema["$defs"]
