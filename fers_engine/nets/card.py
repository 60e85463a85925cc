"""The typed model card: every value a model file's card may set, validated before any network
is built.

A model file is data from anywhere, so its card is checked like user input: types (an integer
is a JSON integer, not ``"abc"``, ``24.0`` or ``true``), ranges and relations (``0 <= q_lo <
q_hi <= 1``, ``half_range > 0``, ``cap`` within bounds, odd pooling kernels, a supported
``format_version``), and every size against the weights actually in the file: ``arch.bands``,
widths and hidden sizes must give exactly the tensor names and shapes the file holds, the
weights must be finite, and the receptive field (``halo``) is recomputed from the architecture
and compared with the card's. So no card can hang the tool, make it allocate more than its
weights imply, or change results silently; each problem is one ``ModelError`` line naming the
file and the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Mapping, NoReturn, Optional, Tuple

import numpy as np

from ..errors import ModelError
from .normalise import DEFAULT as NORM_DEFAULT

FORMAT = "fers-enhancer"
FORMAT_VERSION = 1  # the newest model format this code reads (and the one it writes)
PARTS = ("spectral", "spatial")
MAX_DILATION = 64  # limits of the format: they bound the halo, hence the rows read per block
MAX_POOL = 129
MAX_HALO = 256
MIN_CAP, MAX_CAP = 1024, 2**24  # normalisation sample: enough for a 0.1 % quantile, <= 64 MB
BN_EPS = 1e-5  # torch.nn.BatchNorm2d's default, used by every BatchNorm of the networks


@dataclass(frozen=True)
class SpectralArch:
    """The deployed spectral FEN: ConvH 1x1 -> frozen 3x3 trunk -> projection P (1x1, ReLU, 1x1)."""

    width: int
    hidden: int
    dilations: Tuple[int, ...]
    out_act: str = "none"
    skip: bool = False
    pools: Tuple[int, ...] = ()
    #: the 3x3 kernels were trained D4-tied (nets/blocks.py); the file holds them expanded, so the
    #: deployed network is plain convolutions either way and ``kwargs`` leaves the flag out
    symmetric: bool = False

    @property
    def halo(self) -> int:
        return sum(self.dilations) + max([k // 2 for k in self.pools] or [0])

    @property
    def embed_channels(self) -> int:
        """What P sees: the trunk output, the ConvH output with ``skip``, one box mean per pool."""
        return self.width * (1 + int(self.skip) + len(self.pools))

    def kwargs(self) -> Dict[str, Any]:
        return {
            "width": self.width,
            "hidden": self.hidden,
            "dilations": list(self.dilations),
            "out_act": self.out_act,
            "skip": self.skip,
            "pools": list(self.pools),
        }


@dataclass(frozen=True)
class SpatialArch:
    """The deployed spatial branch: Conv2RGB -> frozen 3x3 trunk -> pooling head."""

    width: int
    rgb_hidden: int
    dilations: Tuple[int, ...]
    pools: Tuple[int, ...]
    hidden: int
    symmetric: bool = False  # as SpectralArch.symmetric

    @property
    def halo(self) -> int:
        return sum(self.dilations) + max(k // 2 for k in self.pools)

    def kwargs(self) -> Dict[str, Any]:
        return {
            "width": self.width,
            "rgb_hidden": self.rgb_hidden,
            "dilations": list(self.dilations),
            "pools": list(self.pools),
            "hidden": self.hidden,
        }


@dataclass(frozen=True)
class Arch:
    bands: int
    spectral: SpectralArch
    spatial: Optional[SpatialArch]

    @property
    def parts(self) -> Tuple[str, ...]:
        return ("spectral", "spatial") if self.spatial is not None else ("spectral",)

    @property
    def halo(self) -> int:
        return max(self.spectral.halo, self.spatial.halo if self.spatial is not None else 0)

    def as_dict(self) -> Dict[str, Any]:
        """The card's ``arch`` section, as ``build_networks`` takes it."""
        out: Dict[str, Any] = {"bands": self.bands, "spectral": self.spectral.kwargs()}
        if self.spatial is not None:
            out["spatial"] = self.spatial.kwargs()
        return out


@dataclass(frozen=True)
class Normalisation:
    method: str
    q_lo: float
    q_hi: float
    half_range: float
    cap: int

    def kwargs(self) -> Dict[str, Any]:
        return {"q_lo": self.q_lo, "q_hi": self.q_hi, "half_range": self.half_range, "cap": self.cap}


@dataclass(frozen=True)
class ModelCard:
    """A validated card; ``raw`` keeps the card as read (training record, notes) for display."""

    format: str
    format_version: int
    name: Optional[str]
    arch: Arch
    wavelengths: Optional[Tuple[float, ...]]
    normalisation: Normalisation
    raw: Mapping[str, Any]

    @property
    def halo(self) -> int:
        return self.arch.halo

    @property
    def parts(self) -> Tuple[str, ...]:
        return self.arch.parts

    @classmethod
    def validate(cls, card: Any, tensors: Mapping[str, np.ndarray], source: str = "model") -> ModelCard:
        """The typed card of a model file whose weights are ``tensors``; ``ModelError`` naming
        ``source`` and the field on the first problem."""
        check = _Checker(source)
        if not isinstance(card, dict):
            check.fail("the model card is not a JSON object")
        fmt = check.text(card, "format")
        if fmt != FORMAT:
            check.fail(f"is not a {FORMAT} model (format {fmt!r})")
        version = check.integer(card, "format_version", low=1)
        if version > FORMAT_VERSION:
            check.fail(f"needs a newer FERS (model format {version}; this one reads up to {FORMAT_VERSION})")
        name = card.get("name")
        if name is not None and not isinstance(name, str):
            check.fail("card field 'name' must be text")
        arch = _arch(check, check.section(card, "arch"))
        wavelengths = _wavelengths(check, card.get("wavelengths"), arch.bands)
        normalisation = _normalisation(check, card.get("normalisation"))
        if "halo" in card and check.integer(card, "halo", low=0) != arch.halo:
            check.fail(
                f"card field 'halo' is {card['halo']} but the architecture's receptive field is {arch.halo}"
            )
        if "parts" in card and (not isinstance(card["parts"], list) or tuple(card["parts"]) != arch.parts):
            check.fail(f"card field 'parts' is {card['parts']!r} but the architecture has {list(arch.parts)}")
        _check_weights(check, arch, tensors)
        return cls(fmt, version, name, arch, wavelengths, normalisation, dict(card))


def parse_arch(arch: Any, source: str = "model") -> Arch:
    """The typed architecture of a card's ``arch`` section (types, ranges, halo limit); the
    weights are checked against it by ``ModelCard.validate``."""
    check = _Checker(source)
    if not isinstance(arch, dict):
        check.fail("card field 'arch' is missing or not an object")
    return _arch(check, arch)


def expected_shapes(arch: Arch) -> Dict[str, Tuple[int, ...]]:
    """Name -> shape of every tensor the deployed networks of ``arch`` hold (BatchNorm's
    ``num_batches_tracked`` counters aside: they are optional and unused)."""
    out: Dict[str, Tuple[int, ...]] = {}
    s, c = arch.spectral, arch.bands
    out["spectral.convh.weight"] = (s.width, c, 1, 1)
    out.update(_trunk_shapes("spectral.trunk.module.layers", s.width, s.width, s.dilations))
    out.update(
        {
            "spectral.proj.conv1.weight": (s.hidden, s.embed_channels, 1, 1),
            "spectral.proj.conv1.bias": (s.hidden,),
            "spectral.proj.conv2.weight": (c, s.hidden, 1, 1),
            "spectral.proj.conv2.bias": (c,),
        }
    )
    if arch.spatial is not None:
        p = arch.spatial
        out.update(
            {
                "spatial.rgb.conv1.weight": (p.rgb_hidden, c, 1, 1),
                "spatial.rgb.conv1.bias": (p.rgb_hidden,),
                "spatial.rgb.conv2.weight": (3, p.rgb_hidden, 1, 1),
                "spatial.rgb.conv2.bias": (3,),
            }
        )
        out.update(_trunk_shapes("spatial.trunk.module.layers", 3, p.width, p.dilations))
        out.update(
            {
                "spatial.head.conv1.weight": (p.hidden, p.width * len(p.pools), 1, 1),
                "spatial.head.conv2.weight": (c, p.hidden, 1, 1),
            }
        )
    return out


# -- sections ---------------------------------------------------------------------------------
def _trunk_shapes(prefix: str, cin: int, width: int, dilations) -> Dict[str, Tuple[int, ...]]:
    out: Dict[str, Tuple[int, ...]] = {}
    for i, _ in enumerate(dilations):
        out[f"{prefix}.{i}.0.weight"] = (width, cin if i == 0 else width, 3, 3)
        for k in ("weight", "bias", "running_mean", "running_var"):
            out[f"{prefix}.{i}.1.{k}"] = (width,)
    return out


def _arch(check: _Checker, arch: dict) -> Arch:
    check.keys(arch, "arch", required=("bands", "spectral"), optional=("spatial",))
    bands = check.integer(arch, "bands", low=2, where="arch")
    sp = check.section(arch, "spectral", where="arch")
    check.keys(
        sp,
        "arch.spectral",
        required=("width", "hidden", "dilations"),
        optional=("out_act", "skip", "pools", "symmetric"),
    )
    out_act = sp.get("out_act", "none")
    if out_act not in ("none", "relu"):
        check.fail(f"card field 'arch.spectral.out_act' must be 'none' or 'relu', not {out_act!r}")
    skip = sp.get("skip", False)
    if not isinstance(skip, bool):
        check.fail("card field 'arch.spectral.skip' must be true or false")
    spectral_tied = _flag(check, sp, "symmetric", "arch.spectral")
    spectral = SpectralArch(
        width=check.integer(sp, "width", low=1, where="arch.spectral"),
        hidden=check.integer(sp, "hidden", low=1, where="arch.spectral"),
        dilations=check.dilations(sp, "arch.spectral"),
        out_act=out_act,
        skip=skip,
        pools=check.pools(sp, "arch.spectral", allow_empty=True) if "pools" in sp else (),
        symmetric=spectral_tied,
    )
    spatial = None
    if arch.get("spatial"):
        sa = check.section(arch, "spatial", where="arch")
        check.keys(
            sa,
            "arch.spatial",
            required=("width", "rgb_hidden", "dilations", "pools", "hidden"),
            optional=("symmetric",),
        )
        spatial = SpatialArch(
            width=check.integer(sa, "width", low=1, where="arch.spatial"),
            rgb_hidden=check.integer(sa, "rgb_hidden", low=1, where="arch.spatial"),
            dilations=check.dilations(sa, "arch.spatial"),
            pools=check.pools(sa, "arch.spatial", allow_empty=False),
            hidden=check.integer(sa, "hidden", low=1, where="arch.spatial"),
            symmetric=_flag(check, sa, "symmetric", "arch.spatial"),
        )
    result = Arch(bands, spectral, spatial)
    if result.halo > MAX_HALO:
        check.fail(
            f"the architecture's receptive field ({result.halo} px) exceeds the format's limit of {MAX_HALO}"
        )
    return result


def _flag(check: _Checker, section: dict, key: str, where: str) -> bool:
    value = section.get(key, False)
    if not isinstance(value, bool):
        check.fail(f"card field '{where}.{key}' must be true or false")
    return value


def _wavelengths(check: _Checker, values, bands: int) -> Optional[Tuple[float, ...]]:
    if values is None:
        return None
    if (
        not isinstance(values, list)
        or len(values) != bands
        or not all(_is_number(v) and math.isfinite(v) and v > 0 for v in values)
    ):
        check.fail(f"card field 'wavelengths' must be null or {bands} positive numbers (one per band)")
    return tuple(float(v) for v in values)


def _normalisation(check: _Checker, section) -> Normalisation:
    values: Dict[str, Any] = dict(NORM_DEFAULT)
    if section is not None:
        if not isinstance(section, dict):
            check.fail("card field 'normalisation' must be an object")
        check.keys(section, "normalisation", optional=tuple(NORM_DEFAULT))
        values.update(section)
    if values["method"] != NORM_DEFAULT["method"]:
        check.fail(
            f"card field 'normalisation.method' must be {NORM_DEFAULT['method']!r}, not {values['method']!r}"
        )
    q_lo = check.fraction(values, "q_lo")
    q_hi = check.fraction(values, "q_hi")
    if not q_lo < q_hi:
        check.fail(f"card fields 'normalisation.q_lo' ({q_lo}) and 'q_hi' ({q_hi}) need q_lo < q_hi")
    half = values["half_range"]
    if not (_is_number(half) and math.isfinite(half) and half > 0):
        check.fail(f"card field 'normalisation.half_range' must be a positive number, not {half!r}")
    cap = check.integer(values, "cap", low=MIN_CAP, high=MAX_CAP, where="normalisation")
    return Normalisation(values["method"], q_lo, q_hi, float(half), cap)


def _check_weights(check: _Checker, arch: Arch, tensors: Mapping[str, np.ndarray]) -> None:
    expected = expected_shapes(arch)
    counters = {k.rsplit(".", 1)[0] + ".num_batches_tracked" for k in expected if k.endswith(".running_var")}
    for name, shape in expected.items():
        if name not in tensors:
            check.fail(f"weights do not fit the architecture in its card (missing {name})")
        got = tuple(np.shape(tensors[name]))
        if got != shape:
            check.fail(
                f"weights do not fit the architecture in its card ({name} is {got}, the card implies {shape})"
            )
        arr = tensors[name]
        if arr.dtype.kind != "f":
            check.fail(f"weight {name} has data type {arr.dtype}, not floating point")
        if not np.isfinite(arr).all():
            check.fail(f"weight {name} holds NaN or infinite values")
        if name.endswith("running_var") and (arr < 0).any():
            check.fail(f"weight {name} holds negative variances")
    extra = sorted(set(tensors) - set(expected) - counters)
    if extra:
        check.fail(f"weights do not fit the architecture in its card (unexpected {extra[:3]})")


class _Checker:
    """Typed look-ups that fail with one ModelError line naming the file and the field."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, message: str) -> NoReturn:
        raise ModelError(f"{self.source}: {message}")

    def section(self, parent: dict, key: str, where: str = "") -> dict:
        value = parent.get(key)
        if not isinstance(value, dict):
            self.fail(f"card field '{_field(where, key)}' is missing or not an object")
        return value

    def keys(self, section: dict, where: str, required=(), optional=()) -> None:
        missing = [k for k in required if k not in section]
        if missing:
            self.fail(f"card section '{where}' lacks {', '.join(missing)}")
        unknown = sorted(set(section) - set(required) - set(optional))
        if unknown:
            self.fail(f"card section '{where}' has unknown field(s) {', '.join(unknown)}")

    def text(self, section: dict, key: str) -> str:
        value = section.get(key)
        if not isinstance(value, str):
            self.fail(f"card field '{key}' must be text, not {value!r}")
        return value

    def integer(self, section: dict, key: str, low: int, high: Optional[int] = None, where: str = "") -> int:
        value = section.get(key)
        if type(value) is not int or value < low or (high is not None and value > high):
            bound = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
            self.fail(f"card field '{_field(where, key)}' must be {bound}, not {value!r}")
        return value

    def fraction(self, section: dict, key: str) -> float:
        value: Any = section.get(key)
        if not (_is_number(value) and 0.0 <= value <= 1.0):
            self.fail(f"card field 'normalisation.{key}' must be a number from 0 to 1, not {value!r}")
        return float(value)

    def dilations(self, section: dict, where: str) -> Tuple[int, ...]:
        values = section.get("dilations")
        if (
            not isinstance(values, list)
            or not values
            or not all(type(d) is int and 1 <= d <= MAX_DILATION for d in values)
        ):
            self.fail(
                f"card field '{where}.dilations' must be a non-empty list of integers from 1 to "
                f"{MAX_DILATION}, not {values!r}"
            )
        return tuple(values)

    def pools(self, section: dict, where: str, allow_empty: bool) -> Tuple[int, ...]:
        values = section.get("pools")
        if (
            not isinstance(values, list)
            or (not values and not allow_empty)
            or not all(type(k) is int and 1 <= k <= MAX_POOL and k % 2 == 1 for k in values)
        ):
            self.fail(
                f"card field '{where}.pools' must be a list of odd integers from 1 to {MAX_POOL}, "
                f"not {values!r}"
            )
        return tuple(values)


def _field(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _is_number(value) -> bool:
    return type(value) in (int, float)
