"""tools/plant_defects.py's table still fits the source: each defect's text occurs
exactly once in its file, so a full run plants every entry instead of stopping at
the first that an edit left behind (four such entries went unnoticed once)."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def defects():
    spec = importlib.util.spec_from_file_location("plant_defects", ROOT / "tools" / "plant_defects.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["plant_defects"] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module.DEFECTS


DEFECTS = defects()


def test_defect_names_are_unique():
    names = [d.name for d in DEFECTS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("defect", DEFECTS, ids=lambda d: d.name)
def test_each_defect_plants_exactly_one_change(defect):
    text = (ROOT / defect.file).read_text()
    count = text.count(defect.old)
    assert count == 1, f"{defect.name}: its text occurs {count} times in {defect.file}"
    assert defect.new != defect.old
