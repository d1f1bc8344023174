"""An installed (not editable) paperchat: one import name, with its seeds inside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, SEEDS


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The project installed with ``pip install --no-deps --no-build-isolation --target`` (no network)."""
    target = tmp_path_factory.mktemp("installed") / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(ROOT)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path_factory.getbasetemp(),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return target


def test_the_install_claims_only_the_paperchat_name(installed):
    top = sorted(p.name for p in installed.iterdir())
    dist_info = [name for name in top if name.endswith(".dist-info")]
    assert len(dist_info) == 1 and dist_info[0].startswith("paperchat-")
    assert set(top) - {"bin"} == {"paperchat", dist_info[0]}, top  # bin/: the console script, not an import name
    record = (installed / dist_info[0] / "RECORD").read_text().splitlines()
    roots = {line.split(",")[0].split("/")[0] for line in record}
    assert roots <= {"paperchat", dist_info[0], "..", "bin"}, roots
    for folder in ("rag", "ui", "eval", "bench"):
        assert (installed / "paperchat" / folder / "__init__.py").is_file(), folder
    assert not (installed / "paperchat" / "tests").exists()


def test_the_seeds_and_question_sets_are_inside_it(installed):
    shipped = sorted(p.name for p in (installed / "paperchat" / "seeds").glob("*.txt"))
    assert shipped and shipped == sorted(p.name for p in SEEDS.glob("*.txt"))
    for name in ("questions.jsonl", "heldout.jsonl"):
        assert (installed / "paperchat" / "eval" / name).read_bytes() == (ROOT / "eval" / name).read_bytes()


def test_the_installed_copy_finds_its_seeds_outside_the_checkout(installed, tmp_path):
    """Run from elsewhere, the installed code (not the checkout) reads the default seeds it ships."""
    code = (
        "import json, sys, paperchat, paperchat.cli\n"
        "from paperchat.rag.corpus import load_papers\n"
        "from paperchat.rag.settings import Settings\n"
        "seeds = Settings().seeds_dir\n"
        "print(json.dumps({'package': paperchat.__file__, 'seeds': str(seeds), 'papers': len(load_papers([seeds])),\n"
        "                  'bare': sorted(m for m in sys.modules if m.split('.')[0] in ('rag', 'ui', 'eval', 'bench'))}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(installed), "PAPERCHAT_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(seen["package"]).resolve() == (installed / "paperchat" / "__init__.py").resolve()
    assert Path(seen["seeds"]).resolve() == (installed / "paperchat" / "seeds").resolve()
    assert seen["papers"] == 46 and seen["bare"] == []
    helped = subprocess.run([sys.executable, "-m", "paperchat.cli", "--help"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "usage: paperchat" in helped.stdout
