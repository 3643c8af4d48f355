"""bankwx's own modules keep their bytecode (.pyc) even under PYTHONDONTWRITEBYTECODE.

Cron jobs and deployment scripts start bankwx many times: compiling its modules from source at
every start costs more than most commands themselves. A package installed by pip has its .pyc
files (pip writes them at install time); an editable checkout run with PYTHONDONTWRITEBYTECODE=1
has none, and would compile every module on every run. Only this package's modules are
concerned (``bankwx_cli.*``, written to its own ``__pycache__``); everything else follows the
variable. The package's ``__init__`` imports this module before any other.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec, PathFinder, SourceFileLoader
from types import CodeType, ModuleType

PREFIX = __name__.rpartition(".")[0] + "."


class _Loader(SourceFileLoader):
    def get_code(self, fullname: str) -> CodeType | None:
        saved = sys.dont_write_bytecode
        sys.dont_write_bytecode = False
        try:
            return super().get_code(fullname)
        finally:
            sys.dont_write_bytecode = saved


class _Finder:
    @staticmethod
    def find_spec(
        name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not name.startswith(PREFIX):
            return None
        spec = PathFinder.find_spec(name, path, target)
        if spec is not None and type(spec.loader) is SourceFileLoader:
            spec.loader = _Loader(spec.loader.name, spec.loader.path)
        return spec


def install() -> None:
    if sys.dont_write_bytecode and _Finder not in sys.meta_path:
        sys.meta_path.insert(0, _Finder)


install()
