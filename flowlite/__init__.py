"""flowlite: self-hosted workflow automation in one Python program."""

__version__ = "0.1.0"
__all__ = ["__version__"]
