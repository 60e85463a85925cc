"""Neural feature enhancers: networks (torch), losses, training, model files and inference.

Importing this package does not import torch, and neither does inference on the CPU: model files
are read by ``safetensors_file`` (pure numpy), validated by ``card`` and run by ``numpy_forward``.
Torch is imported only for training and for the torch backend (GPUs); a missing torch there is a
``DependencyError`` that says how to install it.

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
* ``safetensors_file`` the safetensors format read and written in pure numpy, every offset checked
* ``card``       the typed model card, validated against the weights before any network is built
* ``numpy_forward`` the deployed networks' forward pass in numpy (the CPU path, no torch)
* ``bundled``    where bundled models live and how names resolve
* ``enhancer``   ``load_enhancer`` / ``Enhancer``: the inference API of the pipeline (numpy or torch)

Every deployed network is fully convolutional with stride 1 and a finite receptive field
(``halo``), so tiled inference with a ``halo`` overlap equals whole-scene inference.
"""
