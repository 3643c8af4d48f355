"""bankwx: operations toolkit for a bank's WeChat Official Account service platform."""

__version__ = "0.1.0"
