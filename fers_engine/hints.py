"""What to install, and how, for each optional part: the one place every message takes it from.

Detection (RX, local RX, the enhancers on the CPU) needs only what QGIS ships: its Python,
osgeo.gdal and numpy (scipy for .mat files). PyTorch is for training and GPUs, numba makes local
RX faster. The Python distribution is ``fers-hsi`` (``fers`` on PyPI is an unrelated package).
No hint ever suggests a bare ``pip install`` into a system Python: Debian and Ubuntu refuse it
(PEP 668) and QGIS's own Python must not have its numpy replaced.
"""

PYPI_NAME = "fers-hsi"
TORCH_PIN = "torch==2.13.0"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

GDAL = (
    "osgeo.gdal (GDAL's Python bindings) is missing: run FERS in QGIS's Python, or install them "
    "with the system's packages (Debian/Ubuntu: sudo apt install python3-gdal; conda: conda "
    "install -c conda-forge gdal)"
)

TORCH = (
    "PyTorch is needed only for training and for GPUs: in QGIS, use Plugins > FERS > Install "
    "PyTorch for FERS (or fers:install_pytorch); from a shell, inside a virtual environment: "
    f"python -m pip install {TORCH_PIN} --index-url {TORCH_CPU_INDEX} (the CPU build; pick the CUDA "
    "build for a GPU)"
)

NUMBA = (
    f"numba makes local RX several times faster: inside a virtual environment, python -m pip "
    f"install '{PYPI_NAME}[fast]'"
)
