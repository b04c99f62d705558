"""Widgets of the console: Line API lists, the timeline, the status bar."""
