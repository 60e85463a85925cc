"""Checks on a training request, made once before any training work starts.

Training reads every input whole and runs for minutes to hours, so whatever can be refused must
be refused before the first epoch, with one line: an epoch count below 1 (it would write an
untrained model), an exclusion mask of another size than its scene (numpy's "operands could not
be broadcast" after loading everything), an input whose every pixel is excluded or invalid in
the bands training reads (the loss becomes NaN and a model is written anyway; bands that hold no
valid value anywhere are dropped by training, as by detection, so they do not count), complex or
one-band inputs, and outputs that
would replace an input or cannot be written (``io.guard``: the model, its card and the
checkpoints; a read-only folder used to fail after a whole epoch).

``trainer.train`` calls ``check_train_request`` once, after its configuration is resolved, so the
CLI, the QGIS algorithm and Python callers all get the same checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Mapping, Optional, Sequence

import numpy as np

from ..errors import InputError
from ..io import find_ground_truth, open_scene, read_ground_truth, select_bands
from ..io.checks import PROBE_BYTES, band_labels, check_scene, find_empty_bands
from ..io.guard import Output, guard_outputs
from ..progress import SILENT, Reporter


def check_train_request(
    inputs: Sequence[str],
    exclude: Optional[Sequence[Optional[str]]],
    epochs: Mapping[str, int],
    out_path,
    checkpoints: Sequence[Path] = (),
    reporter: Reporter = SILENT,
) -> None:
    """Refuse a training request that cannot give a sound model; see the module docstring.

    ``epochs``: the epoch count of every stage that will run. ``checkpoints``: the files the
    trainer writes beside the model while it runs.
    """
    if not inputs:
        raise InputError("no training input given")
    for stage, count in epochs.items():
        if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 1:
            raise InputError(f"epochs must be a whole number of at least 1, got {count!r} for stage {stage}")
    if exclude is not None and len(exclude) != len(inputs):
        raise InputError(f"{len(exclude)} exclusion masks given for {len(inputs)} inputs")
    masks = list(exclude) if exclude is not None else [None] * len(inputs)
    out_path = Path(out_path)
    read_files: List[object] = [*inputs, *(m for m in masks if m)]
    read_files += [gt for gt in (find_ground_truth(p) for p in inputs) if gt is not None]
    guard_outputs(
        [
            Output.file("model", out_path, out_path.with_suffix(".json")),
            *(Output.file("training checkpoint", c) for c in checkpoints),
        ],
        inputs=read_files,
        reporter=reporter,
    )
    for path, mask_path in zip(inputs, masks):
        _check_input(str(path), mask_path)


def _check_input(path: str, mask_path: Optional[str]) -> None:
    """One training input: readable, real, multi-band; its mask of its size; a pixel left to learn from."""
    with open_scene(path) as scene:
        info = scene.info
        check_scene(info)
        name = Path(path).name
        excluded: Optional[np.ndarray] = None
        if mask_path:
            excluded = read_ground_truth(str(mask_path))
            if excluded.shape != (info.height, info.width):
                raise InputError(
                    f"exclusion mask {Path(mask_path).name} is {excluded.shape[1]} x "
                    f"{excluded.shape[0]} px but the training input {name} is "
                    f"{info.width} x {info.height} px"
                )
            if excluded.all():
                raise InputError(
                    f"exclusion mask {Path(mask_path).name} excludes every pixel of {name}: "
                    "nothing is left to train on"
                )
        # the bands training reads (nets.data.read_scene): ENVI bad bands left out, and bands with
        # no valid value anywhere dropped (an EnMAP tile's water-vapour bands), as detect drops them
        bands = np.asarray(select_bands(info, drop_bad_bands=True), dtype=np.int64)
        if _has_usable_pixel(scene, excluded, bands):
            return
        empty = find_empty_bands(scene, bands)
        kept = bands[~np.isin(bands, empty)]
        why = f"; these bands hold no valid value: {band_labels(info, empty)}" if empty.size else ""
        if kept.size < 2:
            raise InputError(
                f"the training input {name} has {kept.size} band(s) with a valid value{why}; "
                "training needs at least 2"
            )
        if empty.size and _has_usable_pixel(scene, excluded, kept):
            return
        if excluded is None or not excluded.any():
            raise InputError(f"every pixel of the training input {name} is nodata or NaN{why}")
        raise InputError(
            f"every valid pixel of the training input {name} is excluded by "
            f"{Path(str(mask_path)).name}: nothing is left to train on"
        )


def _has_usable_pixel(scene, excluded: Optional[np.ndarray], bands: np.ndarray) -> bool:
    """Whether some pixel is valid in ``bands`` and not excluded; reads row chunks until it finds one."""
    info = scene.info
    rows = max(1, PROBE_BYTES // max(1, info.width * len(bands) * 16))
    for r0 in range(0, info.height, rows):
        r1 = min(info.height, r0 + rows)
        _, valid = scene.read(r0, r1, bands)
        if excluded is not None:
            valid &= ~excluded[r0:r1]
        if valid.any():
            return True
    return False
