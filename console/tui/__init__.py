"""The incident console (Textual). Only this package imports Textual.

``data``, ``filters`` and ``describe`` are headless (no Textual): journal access for workers,
filter parsing, and event wording. Screens and widgets are the face over them.
"""
