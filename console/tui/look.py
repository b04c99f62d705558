"""Statuses and flags as styled text: a symbol and a word, never colour alone."""

from __future__ import annotations

from rich.text import Text

from console.status import STYLE, SYMBOL

_EXTRA_SYMBOL = {"would_apply": "◌", "intent": "…", "in_doubt": "?", "dry_run": "◌"}
_EXTRA_STYLE = {"failed": "bold red", "would_apply": "cyan", "in_doubt": "bold yellow"}


def symbol(status: str) -> str:
    return SYMBOL.get(status) or _EXTRA_SYMBOL.get(status, "?")


def style(status: str) -> str:
    return STYLE.get(status) or _EXTRA_STYLE.get(status, "")


def status(status: str, *, word: bool = True) -> Text:
    label = f"{symbol(status)} {status.replace('_', ' ')}" if word else symbol(status)
    return Text(label, style=style(status))


def short_target(url: str) -> str:
    """``sqlite:///srv/crm/crm.db`` → ``crm.db``; ``postgresql+psycopg://u@h/db`` → ``pg h/db``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    if scheme.startswith("sqlite"):
        return rest.rsplit("/", 1)[-1] or url
    engine = scheme.split("+", 1)[0]
    engine = {"postgresql": "pg", "mysql": "mysql", "mariadb": "mariadb"}.get(engine, engine)
    return f"{engine} {rest.rpartition('@')[2]}"


def flags(drift: bool, drill: bool, dry_run: bool = False, *, words: bool) -> Text:
    out = Text()
    for on, sym, word, st in (
        (drift, "≠", "drift", "bold yellow"),
        (drill, "◇", "drill", "cyan"),
        (dry_run, "◌", "dry-run", "dim"),
    ):
        if on:
            if out:
                out.append(" ")
            out.append(f"{sym} {word}" if words else sym, style=st)
    return out


def count(n: int, sym: str, style_: str) -> Text:
    """``✗ 12`` in red, or a dim ``·`` for zero (so problems stand out in a column)."""
    if not n:
        return Text("·", style="dim")
    return Text(f"{sym} {n:,}", style=style_)


# Reconciliation classes: a symbol each, loud when a human must look (report.OK_CLASSES not).
_FINDING = {
    "null_key": ("∅", "bold red"),
    "duplicate_key": ("⧉", "bold red"),
    "wrong_value": ("✗", "bold red"),
    "collateral": ("✱", "bold red"),
    "missing_row": ("−", "bold red"),
    "unexpected_row": ("+", "bold yellow"),
    "not_restored": ("↯", "bold yellow"),
    "not_applied": ("○", "bold yellow"),
    "aggregate_mismatch": ("Σ", "bold yellow"),
    "later_overwrite": ("»", "yellow"),
    "tolerated": ("≈", "cyan"),
    "restored": ("⟲", "green"),
    "applied": ("✓", "green"),
}


def finding(cls: str, *, word: bool = True) -> Text:
    sym, st = _FINDING.get(cls, ("?", "bold"))
    return Text(f"{sym} {cls.replace('_', ' ')}" if word else sym, style=st)
