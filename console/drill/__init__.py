"""Drills: failure scenarios in a sandbox, replay of recorded runs, scoring. Headless."""
