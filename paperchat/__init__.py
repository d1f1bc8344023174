"""paperchat: ask questions about research papers; the command line lives in :mod:`paperchat.cli`.

Installed, the package holds ``paperchat.rag``, ``paperchat.ui``, ``paperchat.eval`` and
``paperchat.bench`` (setuptools ``package-dir`` maps the repository's top-level folders
``rag/``, ``ui/``, ``eval/``, ``bench/`` there) and the seed listings in ``paperchat/seeds``.
Run from a checkout (``PYTHONPATH=<checkout>``), this folder holds only the command line,
so the checkout itself is added to the package's path: ``paperchat.rag`` is then ``<checkout>/rag``.
"""

from pathlib import Path as _Path

_checkout = _Path(__file__).resolve().parent.parent
if not (_Path(__file__).resolve().parent / "rag").is_dir() and (_checkout / "rag" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821 (a package's __path__)
