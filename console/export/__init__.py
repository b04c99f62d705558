"""Incident export: a JSON evidence bundle that verifies offline, and a Markdown report."""
