"""MLflow tags renamed to `hpo.` names: runs an older hpo wrote, under the old names only, still work.

A real study is run and promoted (to the leaderboard too), then every tag under a new name is deleted
with a raw MlflowClient, from its runs and its data-version experiment: what is left is what an older
hpo wrote. Today's commands must read those runs; new runs carry both spellings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient

from hpo.schema import LEGACY_PREFIXES, LEGACY_TAGS
from tests.conftest import commit_all, invoke, shared_workspace, small_space, write_space_as

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Legacy:
    ws: Path
    promoted: str  # the promoted run's id
    fresh: dict[str, dict[str, str]]  # role -> the tags of a run as today's hpo wrote it (before the stripping)


def _renamed(key: str) -> bool:
    return key in LEGACY_TAGS or any(key.startswith(prefix) for prefix in LEGACY_PREFIXES)


def _all_runs(c: MlflowClient) -> list:  # type: ignore[type-arg]
    return c.search_runs([e.experiment_id for e in c.search_experiments()], max_results=1000)


def _by_role(c: MlflowClient, role: str) -> list:  # type: ignore[type-arg]
    return [r for r in _all_runs(c) if r.data.tags.get("hpo.role") == role]


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Legacy]:
    with shared_workspace(tmp_path_factory, "legacy") as ws:
        space = write_space_as(ws, small_space(n_trials=3))
        commit_all(ws, tag="v1.0.0")
        code, _, err = invoke("run", str(space), "--quiet")
        assert code == 0, err
        code, out, err = invoke("promote", "best", "--leaderboard", "--json")
        assert code == 0, err
        promoted = json.loads(out)["run_id"]
        c = MlflowClient()
        data = c.get_experiment_by_name(f"{ws.name}-Data-v0.1.0")
        fresh = {role: _by_role(c, role)[0].data.tags for role in ("trial", "study", "promoted", "leaderboard")}
        fresh["experiment"] = dict(data.tags)
        # As an older hpo wrote them: no tag under a new name, on any run or on the data-version experiment.
        for r in _all_runs(c):
            for key in [k for k in r.data.tags if _renamed(k)]:
                c.delete_tag(r.info.run_id, key)
        for key in [k for k in data.tags if _renamed(k)]:
            c.delete_experiment_tag(data.experiment_id, key)
        yield Legacy(ws, promoted, fresh)


def test_new_runs_carry_the_new_and_the_old_names(legacy: Legacy) -> None:
    trial, study, promoted = legacy.fresh["trial"], legacy.fresh["study"], legacy.fresh["promoted"]
    for tags in (trial, study, promoted):
        for new, old in [
            ("hpo.data_version", "data_version"),
            ("hpo.src_version", "src_version"),
            ("hpo.git_commit", "git_commit"),
            ("hpo.git_dirty", "git_dirty"),
            ("hpo.version", "hpo_version"),
            ("hpo.package.python", "version.python"),
            *((f"hpo.digests.{s}", f"digest.{s}") for s in SPLITS),
        ]:
            assert tags[new] == tags[old], (new, tags)
    assert trial["hpo.seed"] == trial["seed"] and trial["hpo.budget_slot"] == trial["budget_slot"]
    assert trial["hpo.duration_seconds"] == trial["duration_seconds"]
    assert promoted["hpo.seed"] == promoted["seed"]
    assert study["hpo.n_finished_trials"] == study["n_finished_trials"] == "3"
    assert study["hpo.best_trial"] == study["best_trial"]
    board = legacy.fresh["leaderboard"]
    assert board["hpo.data_version"] == board["data_version"] and board["hpo.digests.test"] == board["digest.test"]
    experiment = legacy.fresh["experiment"]
    assert all(experiment[f"hpo.digests.{s}"] == experiment[f"digest.{s}"] for s in SPLITS)


def test_data_lists_an_old_promoted_run_with_its_source_version(legacy: Legacy) -> None:
    code, out, err = invoke("data", "v0.1.0", "--json")
    assert code == 0, err
    runs = json.loads(out)["promoted_runs"]
    assert [(r["run_id"], r["src_version"]) for r in runs] == [(legacy.promoted, "v1.0.0")]


def test_reproduce_reads_an_old_promoted_runs_recipe(legacy: Legacy) -> None:
    code, out, err = invoke("reproduce", legacy.promoted, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert (result["run_id"], result["ok"], result["src_version"]) == (legacy.promoted, True, "v1.0.0")


def test_an_old_data_version_experiment_still_refuses_other_data(legacy: Legacy, monkeypatch: pytest.MonkeyPatch) -> None:
    # A storage with an empty ledger: only the digests on the data-version experiment know v0.1.0.
    monkeypatch.setenv("HPO_STORAGE", f"sqlite:///{legacy.ws / 'other.db'}")
    data = small_space()["data"] | {"split": {"validation": 0.2, "test": 0.2, "seed": 1}}
    other = write_space_as(legacy.ws, small_space(study="other", data=data), "other.yaml")
    code, _, err = invoke("validate", str(other))
    assert code == 2 and "data version v0.1.0 is recorded with other data (in MLflow experiment" in err, err


def test_promote_to_the_leaderboard_finds_its_old_row(legacy: Legacy) -> None:
    code, out, err = invoke("promote", "best", "--again", "--leaderboard", "--json")
    assert code == 0, err
    c = MlflowClient()
    assert len(_by_role(c, "leaderboard")) == 1  # the old row, not a second one
    assert len(_by_role(c, "promoted")) == 2


def test_sync_leaves_old_trial_runs_as_they_are(legacy: Legacy) -> None:
    code, out, err = invoke("sync", "--study", "small", "--json")
    assert code == 0, err
    assert (json.loads(out)["created"], json.loads(out)["unchanged"]) == (0, 3)
    assert all("hpo.seed" not in r.data.tags and "seed" in r.data.tags for r in _by_role(MlflowClient(), "trial"))


def test_delete_finds_old_trial_runs(legacy: Legacy) -> None:
    code, out, err = invoke("delete", "small", "--dry-run", "--json")
    assert code == 0, err
    plan = json.loads(out)["plan"]
    assert plan["runs"] == 4 and plan["promoted_kept"] == 2  # three trials and the parent; the promoted runs stay


def test_no_new_or_old_tag_name_is_another_tags_name() -> None:
    import hpo.schema as schema
    from hpo.tracking._tags import normalized, searchable, written

    names = [v for k, v in vars(schema).items() if k.startswith("TAG_") and not k.endswith("_PREFIX")]
    assert len(names) == len(set(names))
    olds = set(LEGACY_TAGS.values()) | set(LEGACY_PREFIXES.values())
    assert not olds & set(names) and not any(n.startswith(tuple(LEGACY_PREFIXES.values())) for n in names)
    assert not any(n.startswith(tuple(LEGACY_PREFIXES)) for n in names)  # e.g. hpo.digest, hpo.digest_basis
    tags = {"hpo.seed": "7", "hpo.digests.test": "abc", "hpo.package.numpy": "2.0", "hpo.study": "s"}
    both = written(tags)
    assert both == tags | {"seed": "7", "digest.test": "abc", "version.numpy": "2.0"}
    old_only = {k: v for k, v in both.items() if k not in tags}
    assert normalized(old_only) == {k: v for k, v in both.items() if k != "hpo.study"}
    # Both present and different: the old one is the later write (an older hpo writes only it).
    assert normalized({"hpo.seed": "7", "seed": "8"})["hpo.seed"] == "8"
    assert (searchable("hpo.digests.test"), searchable("hpo.study")) == ("digest.test", "hpo.study")
