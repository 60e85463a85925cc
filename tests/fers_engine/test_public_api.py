"""The package's public API (``fers_engine/__init__.py``) and the choices it exports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import fers_engine
from fers_engine.choices import (
    DETECTORS,
    THRESHOLD_METHODS,
    Choice,
    Detector,
    Device,
    EnhancerMode,
    ThresholdMethod,
    TrainingRecipe,
)
from fers_engine.errors import InputError

HEAVY = ("numpy", "scipy", "osgeo", "torch", "numba")


def _modules_after(code: str) -> set:
    """The heavy modules a fresh interpreter holds after running ``code``."""
    probe = code + f"\nimport sys; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_importing_the_package_or_its_choices_loads_nothing_heavy():
    assert _modules_after("import fers_engine") == set()
    assert _modules_after("import fers_engine.choices") == set()
    # the plugin reads the choices and the errors from the package itself at load time
    assert _modules_after("import fers_engine as fe; fe.Detector, fe.FersError, fe.__version__") == set()


def test_detect_and_train_do_not_import_torch_or_numba_until_they_run():
    loaded = _modules_after(
        "import fers_engine as fe; fe.detect, fe.DetectOptions, fe.train, fe.load_enhancer"
    )
    assert not loaded & {"torch", "numba"}


def test_every_public_name_resolves_and_nothing_else_does():
    for name in fers_engine.__all__:
        assert getattr(fers_engine, name) is not None, name
    assert set(fers_engine.__all__) <= set(dir(fers_engine))
    from fers_engine.pipeline import detect

    assert fers_engine.detect is detect
    with pytest.raises(AttributeError, match="no attribute 'hadamard'"):
        fers_engine.hadamard  # noqa: B018 (internal names are not part of the package's API)


def test_choices_are_strings_that_compare_print_and_serialise_as_their_values():
    assert Detector.LRX == "lrx" and "lrx" == Detector.LRX
    assert str(Detector.LRX) == "lrx" and f"{Detector.LRX}" == "lrx" and f"{Detector.CRD:>4}" == " crd"
    assert json.dumps({"d": Detector.RX}) == '{"d": "rx"}'
    assert Detector.LRX in DETECTORS and DETECTORS == ("rx", "lrx", "crd", "crd+rx")
    assert TrainingRecipe.SEPARATION_SPECTRAL == "separation-spectral"
    assert THRESHOLD_METHODS == ThresholdMethod.values()


def test_parse_accepts_members_and_strings_and_names_every_choice_when_it_refuses():
    assert Device.parse("cuda", "device") is Device.CUDA
    assert EnhancerMode.parse(EnhancerMode.FULL, "enhancer") is EnhancerMode.FULL
    with pytest.raises(InputError, match=r"^unknown detector 'rxx': choose one of rx, lrx, crd, crd\+rx$"):
        Detector.parse("rxx", "detector")
    with pytest.raises(InputError, match="unknown device None"):
        Device.parse(None, "device")


def test_every_choice_in_the_engine_is_a_str_enum():
    import fers_engine.choices as choices

    enums = [
        v for v in vars(choices).values() if isinstance(v, type) and issubclass(v, Choice) and v is not Choice
    ]
    assert len(enums) == 10
    for enum in enums:
        assert issubclass(enum, str) and enum.values() and all(isinstance(v, str) for v in enum.values())


def test_the_cli_offers_exactly_the_enum_values():
    from fers_engine.cli import build_parser

    parser = build_parser()
    detect = next(
        a
        for a in parser._subparsers._group_actions[0].choices["detect"]._actions  # noqa: SLF001
        if a.dest == "detector"
    )
    assert tuple(detect.choices) == Detector.values()


def test_detect_options_refuse_an_unknown_choice_with_the_one_wording():
    with pytest.raises(InputError, match="unknown band mode 'last': choose one of resample, first"):
        fers_engine.DetectOptions(band_mode="last").validate()
    fers_engine.DetectOptions(detector=Detector.CRD, enhancer=EnhancerMode.NONE).validate()
