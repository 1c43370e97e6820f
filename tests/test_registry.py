"""Tests for jaxgan.registry (names, one-line errors, registries) and jaxgan.parallel.process_values."""

import pytest

from jaxgan.parallel import process_values
from jaxgan.registry import Registry, check_count, closest, did_you_mean, first_line, one_line, unknown_name


def test_one_line_joins_whitespace_and_cuts_at_the_limit():
    assert one_line("a\n  b\tc\n\n") == "a b c"
    assert one_line(ValueError("x\ny")) == "x y"
    assert one_line("abcdefghij", limit=10) == "abcdefghij"
    cut = one_line("abcdefghijk", limit=10)
    assert cut == "abcdefg..." and len(cut) == 10
    assert one_line("abc " * 100, limit=0) == ("abc " * 100).strip()  # 0: no limit


def test_first_line_quotes_the_first_non_empty_line_or_the_type():
    assert first_line(RuntimeError("\n  not found:  x\ntraceback ...\n")) == "not found: x"
    assert first_line(OSError("")) == "OSError"
    assert len(first_line(ValueError("y" * 1000), limit=50)) == 50


def test_closest_and_did_you_mean():
    assert closest("r3", ["r1", "wgan_gp"]) == "r1"
    assert closest("HINGE", ["minimax", "hinge"]) == "hinge"
    assert closest("zzzzzz", ["hinge"]) is None and closest(3, ["hinge"]) is None
    assert did_you_mean("hnge", ["hinge"]) == " (did you mean 'hinge'?)"
    assert did_you_mean("hnge", ["hinge"], prefix="--config.") == " (did you mean --config.hinge?)"
    assert did_you_mean("qqqq", ["hinge"]) == ""
    assert unknown_name("loss", "hnge", ["hinge", "minimax"]) == (
        "unknown loss 'hnge'; allowed: hinge, minimax (did you mean 'hinge'?)")


@pytest.mark.parametrize("value", [2.0, True, -1, "3", None])
def test_check_count_refuses_what_is_not_an_integer_at_or_above_the_minimum(value):
    with pytest.raises(ValueError, match=rf"^k must be an integer >= 0, got {value!r}$".replace("(", r"\(")):
        check_count("k", value, 0)


def test_check_count_accepts_integers_at_or_above_the_minimum():
    import numpy as np

    for value in (0, 5, np.int32(3)):
        check_count("k", value, 0)


def test_registry_defaults_names_and_unread_settings():
    registry = Registry("model")
    registry.register("a", {"width": 8, "depth": 2}, build=lambda: "A")
    registry.register("b", {"width": 8, "heads": 4}, build=lambda: "B")
    assert registry.names == ("a", "b") and "a" in registry and "c" not in registry
    assert registry.section_defaults() == {"width": 8, "depth": 2, "heads": 4}
    assert registry["b"].build() == "B"
    # heads belongs to b only: set under a, it would be silently ignored.
    assert registry.unread_settings("a", {"width": 16, "depth": 2, "heads": 5}) == ["heads"]
    assert registry.unread_settings("a", {"width": 16, "depth": 3, "heads": 4}) == []
    # several chosen entries (the evaluations listed) read the union of their settings
    assert registry.unread_settings(("a", "b"), {"width": 16, "depth": 3, "heads": 5}) == []
    assert registry.unread_settings(("b",), {"width": 8, "depth": 3, "heads": 5}) == ["depth"]
    assert registry.owners("width") == ["a", "b"] and registry.owners("heads") == ["b"] and registry.owners("x") == []
    with pytest.raises(ValueError, match=r"^unknown model 'aa'; allowed: a, b \(did you mean 'a'\?\)$"):
        registry["aa"]
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("a", {}, build=lambda: None)
    with pytest.raises(ValueError, match=r"default width=16 differs from the default of 'a', 8"):
        registry.register("c", {"width": 16}, build=lambda: None)


def test_process_values_of_a_single_process_job_is_the_value():
    assert process_values(7) == [7]
    assert process_values(True) == [1]


def test_settings_the_command_line_cannot_override_are_refused_at_registration():
    registry = Registry("model")
    with pytest.raises(ValueError, match=r"^model 'a': default act=None is a NoneType; a setting must be a bool, int, "
                                         r"float, str or tuple \(for 'unset' use '' or 0\)"):
        registry.register("a", {"act": None}, build=lambda: None)
    with pytest.raises(ValueError, match=r"default widths=\[8, 8\] is a list"):
        registry.register("a", {"widths": [8, 8]}, build=lambda: None)
    registry.register("a", {"act": "", "widths": (8, 8), "on": True, "rate": 0.5}, build=lambda: None)


def test_keys_of_the_section_itself_and_non_finite_floats_are_refused_at_registration():
    from jaxgan.data import DATASETS

    registry = Registry("model")
    with pytest.raises(ValueError, match=r"^model 'a': default name='wide' would replace the section's own 'name'; "
                                         r"give the setting another name$"):
        registry.register("a", {"name": "wide"}, build=lambda: None)
    with pytest.raises(ValueError, match=r"^model 'a': default clip=inf is not a finite number$"):
        registry.register("a", {"clip": float("inf")}, build=lambda: None)
    with pytest.raises(ValueError, match=r"^data set 'mine': default loader='stream' would replace the section's "
                                         r"own 'loader'"):
        DATASETS.register("mine", {"loader": "stream"}, build=lambda settings: None)
    assert "a" not in registry and "mine" not in DATASETS


def test_an_evaluations_settings_join_config_eval_and_are_read_only_when_it_is_chosen():
    from jaxgan.config import ConfigError, default_config, validate
    from jaxgan.metrics.evaluations import EVALUATIONS

    EVALUATIONS.register("mine", {"threshold": 0.5}, build=lambda config, data: None)
    try:
        config = default_config()
        assert config.eval.threshold == 0.5 and config.eval.inception_weights == ""
        config.eval.threshold = 0.7
        with pytest.raises(ConfigError, match=r"^--config.eval.threshold=0.7: no evaluation in --config.evaluations "
                                              r"reads it \(it is mine's setting\)$"):
            validate(config)
        config.evaluations = ("mixture", "mine")
        validate(config)
        with pytest.raises(ValueError, match=r"^evaluation 'other': default threshold=0.1 differs from the default of 'mine', 0.5; give the setting another name$"):
            EVALUATIONS.register("other", {"threshold": 0.1}, build=lambda config, data: None)
    finally:
        EVALUATIONS._entries.pop("mine")
    assert "mine" not in EVALUATIONS and "threshold" not in default_config().eval
