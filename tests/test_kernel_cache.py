"""odfail's kernel cache: a changed kernel file drops the cached kernels, a first compile says so."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import odfail

PACKAGE = Path(odfail.__file__).resolve().parent


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(PACKAGE, tmp_path / "odfail", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "odfail"


def _python(tmp_path: Path, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("NUMBA_CACHE_DIR", None)
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          check=True)


def test_a_changed_kernel_file_drops_every_cached_kernel_and_an_unchanged_one_keeps_them(tmp_path):
    """numba checks a cached kernel against its own file only; match/_kernels.py inlines helpers of _ids.py, so a
    change there must drop match's cached kernels too (here: a stand-in cache file)."""
    package = _copy(tmp_path)
    _python(tmp_path, "import odfail._numba")
    fake = package / "match" / "__pycache__" / "_kernels.match_groups-1.py311.nbi"
    fake.parent.mkdir(exist_ok=True)
    fake.write_bytes(b"stand-in")
    _python(tmp_path, "import odfail._numba")
    assert fake.exists()  # nothing changed: kept
    ids = package / "_ids.py"
    ids.write_text(ids.read_text() + "\n# a changed helper file\n")
    _python(tmp_path, "import odfail._numba")
    assert not fake.exists()


def test_a_first_compile_says_so_once_and_a_cached_run_says_nothing(tmp_path):
    _copy(tmp_path)
    code = ("import numpy as np\nfrom odfail import _ids\n"
            "order, off = _ids.counting_order(np.array([2, 0, 2, 1], dtype=np.int64), 3)\n"
            "print(order.tolist(), off.tolist())\n")
    first = _python(tmp_path, code)
    assert first.stdout.strip() == "[1, 3, 0, 2] [0, 1, 2, 4]"
    assert first.stderr.count("odfail: compiling its kernels for this machine, once") == 1
    assert str(tmp_path / "odfail" / "__pycache__") in first.stderr
    second = _python(tmp_path, code)
    assert second.stdout == first.stdout and "compiling" not in second.stderr


def test_kernels_are_compiled_for_a_generic_cpu_unless_the_user_chose_one(tmp_path):
    _copy(tmp_path)
    out = _python(tmp_path, "import odfail._numba\nfrom numba.core import config\nprint(config.CPU_NAME, "
                            "repr(config.CPU_FEATURES))")
    assert out.stdout.strip() == "generic ''"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "NUMBA_CPU_NAME": "host"}
    out = subprocess.run([sys.executable, "-c", "import odfail._numba\nfrom numba.core import config\n"
                          "print(config.CPU_NAME)"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "host"
