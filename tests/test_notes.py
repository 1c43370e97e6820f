"""scripts/notes.py: where reproduction scripts put their figures."""

import pathlib

from scripts.notes import ROOT, figure_path


def test_figure_goes_to_docs_only_when_writing_notes(tmp_path):
    assert figure_path(None, "table_grid", tmp_path, write_notes=True) == ROOT / "docs" / "figures" / "table_grid.png"
    # A pilot run without --write_notes draws beside its runs and leaves the published figure alone.
    assert figure_path(None, "table_grid", tmp_path, write_notes=False) == tmp_path / "table_grid.png"
    assert figure_path(None, "infogan", "runs/x", write_notes=False) == pathlib.Path("runs/x/infogan.png")


def test_an_explicit_figure_path_wins(tmp_path):
    for write_notes in (True, False):
        assert figure_path(str(tmp_path / "f.png"), "table_grid", "runs/x", write_notes) == tmp_path / "f.png"
