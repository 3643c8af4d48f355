"""bankwx: operations toolkit for a bank's WeChat Official Account service platform."""

from bankwx_cli import _bytecode as _bytecode  # first: bankwx keeps its .pyc files

__version__ = "0.1.0"
