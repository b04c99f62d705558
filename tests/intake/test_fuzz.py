"""Whatever a low-code platform sends to POST /changesets, the answer is JSON and never a 500."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.intake.conftest import ServerFactory

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)
_keys = st.sampled_from(
    [
        "changeset",
        "version",
        "steps",
        "target",
        "options",
        "operations",
        "table",
        "key",
        "op",
        "set",
        "row",
        "name",
        "automation",
    ]
)
# Documents shaped like change sets reach deeper than arbitrary JSON.
_docs = st.fixed_dictionaries(
    {"changeset": _scalars, "version": _scalars},
    optional={
        "steps": st.lists(st.dictionaries(_keys, _json, max_size=5), max_size=3),
        "options": st.dictionaries(_keys, _scalars, max_size=3),
        "target": _scalars,
    },
)
_params = st.dictionaries(
    st.sampled_from(["table", "key", "op", "name", "version"]), st.text(max_size=8), max_size=5
)
_types = st.sampled_from(["application/json", "text/csv", "application/yaml", "text/plain"])


def test_post_changesets_never_500(serve: ServerFactory) -> None:
    s = serve(rate=1000.0, burst=10_000)
    with s.client() as c:

        @settings(
            max_examples=100,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        @given(body=_json | _docs, params=_params, ctype=_types, raw=st.booleans())
        def post(body: Any, params: dict[str, str], ctype: str, raw: bool) -> None:
            content = json.dumps(body).encode() if not raw else str(body).encode()
            r = c.post(
                "/changesets", content=content, params=params, headers={"Content-Type": ctype}
            )
            assert r.status_code < 500, r.text
            assert r.status_code in (202, 409, 413, 415, 422), r.text
            assert "error" in r.json() or "run_id" in r.json()

        post()
