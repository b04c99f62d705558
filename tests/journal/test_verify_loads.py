"""``verify``'s payload decoder: exactly ``json.loads``, value or error, on any text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.canonical import canonical_json
from console.journal.verify_pass import loads_compact as _loads

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _outcome(decode: Any, text: Any) -> tuple[str, Any]:
    try:
        return "value", decode(text)
    except Exception as exc:  # the same kind of error, with the same message
        return type(exc).__name__, str(exc)


@given(
    value=JSON,
    form=st.sampled_from(["canonical", "spaced", "padded", "trailing", "bom", "cut"]),
)
def test_the_same_as_json_loads(value: Any, form: str) -> None:
    text = canonical_json(value)
    text = {
        "canonical": text,
        "spaced": json.dumps(value, indent=1),
        "padded": f" \n{text}\t",
        "trailing": text + "x",
        "bom": "\ufeff" + text,
        "cut": text[: len(text) // 2],
    }[form]
    assert _outcome(_loads, text) == _outcome(json.loads, text)


@given(text=st.text(max_size=40))
def test_any_text(text: str) -> None:
    assert _outcome(_loads, text) == _outcome(json.loads, text)


def test_not_text() -> None:
    assert _loads(b'{"a":1}') == {"a": 1}  # type: ignore[arg-type]
    assert _outcome(_loads, None) == _outcome(json.loads, None)


@pytest.mark.parametrize(
    "text",
    ["1e400", "-0", "NaN", "-Infinity", '"\\ud800"', "[1,]", " {}", "{}\n", '{"a":1}{}', ""],
)
def test_edge_texts(text: str) -> None:
    assert _outcome(_loads, text) == _outcome(json.loads, text)
