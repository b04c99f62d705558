"""Screens of the console: runs → run (tabs) → row diff; help."""
