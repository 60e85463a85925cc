"""Neural feature enhancers (torch): networks, losses, training and tiled inference.

Importing this package does not import torch; the submodules that need it do, and
``enhancer.load_enhancer`` turns a missing torch into a ``DependencyError``.

Layout
------
* ``blocks``     stride-1 conv stacks, ``Frozen`` (weights and BatchNorm truly frozen), box means
* ``spectral``   deployed spectral FEN (ConvH + frozen trunk layer 1 + projection P), the stage-0
                 masked auto-encoder that pre-trains the trunk, the stage-1 reverse-distillation
                 graph (teacher, OCBE/MFFM bottleneck, student decoder, shared P)
* ``spatial``    deployed spatial branch (Conv2RGB, frozen stride-1 trunk, local multi-scale pooling
                 head), its stage-0 auto-encoder and the training-only Feature Restoration Net
* ``losses``     stage-1 (per-pixel cosine, MSE, correlation alignment replacing SFAM) and stage-2
                 (cross-covariance, cosine, variance, MSE + SSIM) losses
* ``masks``      the HAD100 random-mask recipe, vectorised
* ``data``       scenes -> model band grid -> normalised cubes, patch sampling, validation cells
* ``normalise``  scene-wide robust normalisation (the same transform for every tile)
* ``trainer``    ``train(...)``: stages 0/1/2, validation-loss selection, checkpoints, resume
* ``model_file`` safetensors + JSON model card (never pickle)
* ``enhancer``   ``load_enhancer`` / ``Enhancer``: the inference API of the pipeline

Every deployed network is fully convolutional with stride 1 and a finite receptive field
(``halo``), so tiled inference with a ``halo`` overlap equals whole-scene inference.
"""
