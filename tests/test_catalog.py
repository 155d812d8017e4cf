"""How the model pickers name a run: what tells runs apart first, as the sidebar's box shows only the start."""

from mnist_core.catalog import run_label
from mnist_core.runs import Run


def test_a_run_is_named_by_its_name_then_its_accuracy_then_when_it_started():
    assert run_label(Run("20261202-060416-linked"), 0.8925) == "linked · 89.25% · Dec 02, 06:04"


def test_a_run_without_an_accuracy_yet_is_named_by_its_name_and_start():
    assert run_label(Run("20261202-060416-linked"), None) == "linked · Dec 02, 06:04"
    assert run_label(Run("20261202-060416-linked"), True) == "linked · Dec 02, 06:04"  # a bool is no accuracy


def test_an_id_without_a_time_stamp_is_shown_whole():
    assert run_label(Run("imported-run"), 0.99) == "imported-run · 99.00%"
    assert run_label(Run("20261399-250000-bad-date"), None) == "20261399-250000-bad-date"
