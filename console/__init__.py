"""backout: a journaled safety net for batch updates pushed by low-code automations."""

__version__ = "0.1.0"
