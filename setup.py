"""Builds the compiled scoring core: mypyc over the hot modules of models/ (models/_native.py).

Optional by design: without a C compiler or mypy, with ``CHURNWATCH_PURE=1``, or if mypyc
fails, the package installs as pure Python and gives the same results, only slower. mypyc runs
in ``build_ext`` alone (not in the metadata steps pip also runs). Everything else about the
package is in pyproject.toml.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
GROUP = "models._native_core"  # mypyc's shared library, inside the package: models/_native_core__mypyc.*.so


def _native():  # models/_native.py by path: importing the package would run its import hook
    spec = importlib.util.spec_from_file_location("_churnwatch_native", HERE / "models" / "_native.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _say(text: str) -> None:
    print(f"churnwatch: {text}", file=sys.stderr)


class MypycBuildExt(build_ext):
    """Replaces the placeholder extension by mypyc's; any failure leaves the pure Python."""

    def finalize_options(self) -> None:
        # pip's metadata steps (egg_info, dist_info) finalize this command too: mypyc only for a build.
        building = not {"egg_info", "dist_info"}.issuperset(self.distribution.commands)
        if self.distribution.ext_modules and building:  # the placeholder: CHURNWATCH_PURE is not set
            try:
                from mypyc.build import mypycify

                native = _native()
                paths = [f"models/{m}.py" for m in native.COMPILED_MODULES]
                # The sources' record is taken now, as mypyc reads them: a file edited during the
                # minutes of the C build must make the record disagree (why_pure() then says the
                # core is stale), not vouch for a core compiled from its older text (reasons12).
                self._sources_record = json.dumps(native.source_digests(HERE / "models"), indent=1)
                # Only the compiled modules must type-check; the rest of models/ is imported silently.
                self.distribution.ext_modules = mypycify(
                    ["--ignore-missing-imports", "--follow-imports=silent", *paths], opt_level="3", group_name=GROUP)
            except (Exception, SystemExit) as exc:  # ImportError, mypyc's exit on a type error
                _say(f"mypyc failed ({exc!r}); the pure Python runs")
                self.distribution.ext_modules = []
        super().finalize_options()

    def run(self) -> None:
        if not self.extensions:
            return
        if os.name == "posix":  # GCC and Clang: never fuse a multiply and an add (compiled == pure, bit for bit)
            for ext in self.extensions:
                ext.extra_compile_args = [*(ext.extra_compile_args or []), "-ffp-contract=off"]
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - no compiler, a compile error
            _say(f"compiled scoring core not built ({exc!r}); the pure Python runs")
            self.extensions = []
            return
        native = _native()
        record = getattr(self, "_sources_record", None) or json.dumps(native.source_digests(HERE / "models"), indent=1)
        # Beside the extension modules only: in the tree when they were built there (in place, or
        # an editable install), else in the build directory (a wheel: build_py copied the package
        # before this step ran). A record in the tree for modules built elsewhere would vouch for
        # the tree's older .so files.
        in_tree = self.inplace or bool(getattr(self, "editable_mode", False))
        targets = {HERE / "models"} if in_tree else {Path(self.build_lib) / "models"}
        for target in targets:
            if target.is_dir():
                (target / native.SOURCES_FILE).write_text(record)
        _say("compiled scoring core built (mypyc)")


def _ext_modules() -> list[Extension]:
    if os.environ.get("CHURNWATCH_PURE") == "1":
        return []
    return [Extension(f"{GROUP}__placeholder", sources=[])]  # replaced in MypycBuildExt.run


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": MypycBuildExt})
