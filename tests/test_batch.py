"""js7certctl.batch: every string leaf encrypted, everything else kept, for YAML and JSON.

A reversible stand-in for the encryption (the text in Base64, in the shape of a JS7 value) lets
the tests read each value back; tests/test_cli_crypto.py covers the real encryption.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from js7certctl.batch import BatchError, detect_format, encrypt_document

FIELDS = " AAAAAAAAAAAAAAAAAAAAAA== AAAAAAAAAAAAAAAAAAAAAA=="


def fake_encrypt(text: str) -> str:
    return "enc:" + base64.b64encode(text.encode("utf-8")).decode("ascii") + FIELDS


def fake_decrypt(value: str) -> str:
    assert value.startswith("enc:")
    assert value.endswith(FIELDS)
    return base64.b64decode(value[4 : -len(FIELDS)]).decode("utf-8")


def decrypted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: decrypted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decrypted(v) for v in value]
    if isinstance(value, str):
        return fake_decrypt(value)
    return value


def _load_yaml(text: str) -> Any:
    return YAML(typ="safe").load(text)


def _strings(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_strings(v) for v in value.values())
    if isinstance(value, list):
        return sum(_strings(v) for v in value)
    return 1 if isinstance(value, str) else 0


# ------------------------------------------------------------------------------- properties

_texts = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\ufeff")
    | st.sampled_from(list("\n\t #:'\"-[]{}&*!|>%@`,?")),
    max_size=40,
).filter(lambda s: not s.startswith("enc:"))
_keys = st.text(
    st.characters(whitelist_categories=("L", "N")) | st.sampled_from("-_ .:"),
    min_size=1,
    max_size=12,
)
_scalars = (
    _texts
    | st.integers(-(10**12), 10**12)
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=False, allow_infinity=False)
)
_trees = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=25,
)
_documents = st.dictionaries(_keys, _trees, min_size=1, max_size=6)


def _dump_yaml(data: Any, flow: bool | None, indent: int) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = flow
    yaml.indent(mapping=indent, sequence=indent + 2, offset=indent)
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_documents, flow=st.sampled_from([False, True, None]), indent=st.sampled_from([2, 4]))
def test_yaml_documents_read_back_as_the_same_data_with_every_string_encrypted(
    data: dict[str, Any], flow: bool | None, indent: int
) -> None:
    text = _dump_yaml(data, flow, indent)
    try:
        assume(_load_yaml(text) == data)  # only what ruamel itself round-trips
    except YAMLError:
        assume(False)
    result = encrypt_document(text.encode(), "yaml", fake_encrypt)
    assert decrypted(_load_yaml(result.text)) == data
    assert len(result.encrypted) == _strings(data)
    assert not result.already


@settings(max_examples=60, deadline=None)
@given(data=_documents, indent=st.sampled_from([None, 1, 2, 4, "\t"]))
def test_json_documents_read_back_as_the_same_data_with_every_string_encrypted(
    data: dict[str, Any], indent: int | str | None
) -> None:
    text = json.dumps(data, indent=indent, ensure_ascii=False)
    result = encrypt_document(text.encode(), "json", fake_encrypt)
    back = json.loads(result.text)
    assert decrypted(back) == data
    assert len(result.encrypted) == _strings(data)
    if indent is not None and any(isinstance(v, dict | list) and v for v in data.values()):
        assert result.text.split("\n")[1].startswith(indent if isinstance(indent, str) else " ")


# ------------------------------------------------------------------------ exact rewriting

SOURCE = """\
# Job Resource arguments for the payments job
%YAML 1.2
---
db:    # the database
    user: "payments"     # quoted, stays quoted
    password: 'it''s a: #secret'
    port: 5432
    tls: true
hosts:
  - alpha
  - {name: beta, token: tok}
base: &base
  login: shared
copy:
  <<: *base
  extra: ~
same: *base
note: |
  two
  lines

folded: >-
  one
  line
tagged: !!str 123
already: enc:AAAA BBBB CCCC
"""

EXPECTED = """\
# Job Resource arguments for the payments job
%YAML 1.2
---
db:    # the database
    user: "{payments}"     # quoted, stays quoted
    password: '{it's a: #secret}'
    port: 5432
    tls: true
hosts:
  - {alpha}
  - {name: "{beta}", token: "{tok}"}
base: &base
  login: {shared}
copy:
  <<: *base
  extra: ~
same: *base
note: {two\\nlines\\n}

folded: {one line}
tagged: !!str {123}
already: enc:AAAA BBBB CCCC
"""


def test_only_the_string_values_change_byte_for_byte() -> None:
    result = encrypt_document(SOURCE.encode(), "yaml", fake_encrypt)
    values = [
        "payments", "it's a: #secret", "alpha", "beta", "tok", "shared", "two\nlines\n",
        "one line", "123",
    ]  # fmt: skip
    expected = EXPECTED
    for value in values:
        shown = "{" + value.replace("\n", "\\n") + "}"
        expected = expected.replace(shown, fake_encrypt(value), 1)
    assert result.text == expected
    assert result.encrypted == [
        "db.user", "db.password", "hosts[0]", "hosts[1].name", "hosts[1].token", "base.login",
        "note", "folded", "tagged",
    ]  # fmt: skip
    assert result.already == ["already"]
    assert result.kept == ["db.port", "db.tls"]
    loaded = _load_yaml(result.text)
    assert loaded["copy"]["login"] == loaded["base"]["login"]  # the merge still merges
    assert loaded["same"] == loaded["base"]


def test_windows_line_endings_and_a_byte_order_mark_are_fine() -> None:
    text = "\ufeffa: one\r\nb:\r\n  - two\r\n"
    result = encrypt_document(text.encode("utf-8"), "yaml", fake_encrypt)
    assert result.text == f"a: {fake_encrypt('one')}\r\nb:\r\n  - {fake_encrypt('two')}\r\n"


def test_non_ascii_values_are_reported_by_path() -> None:
    text = 'plain: abc\numlaut: "Grüße"\nlist: [x, 世界]\n'
    result = encrypt_document(text.encode(), "yaml", fake_encrypt)
    assert result.non_ascii == ["umlaut", "list[1]"]
    json_text = json.dumps({"a b": {"c": "€"}})
    assert encrypt_document(json_text.encode(), "json", fake_encrypt).non_ascii == ['["a b"].c']


def test_an_anchored_value_used_as_a_key_is_refused() -> None:
    text = "a: &k secret-name\nb:\n  *k : value\n"
    with pytest.raises(BatchError, match="used as a key"):
        encrypt_document(text.encode(), "yaml", fake_encrypt)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "must hold a YAML mapping"),
        ("# only a comment\n", "must hold a YAML mapping"),
        ("just-a-secret-string\n", "must hold a YAML mapping"),
        ("a: 1\n---\nb: the-secret\n", "2 YAML documents"),
        ("a: [the-secret\n", "not valid YAML at line 2"),
        ("a: the-secret\na: the-secret-2\n", "appears twice"),
        ("a:\tthe-secret\n\tb: 1\n", "not valid YAML"),
        ("a: " + "[" * 100_000 + "]" * 100_000, "nested more than 500 levels"),
    ],
    ids=["empty", "comment-only", "scalar", "two-documents", "syntax", "duplicate", "tab", "deep"],
)
def test_bad_yaml_is_one_error_that_never_quotes_the_input(text: str, expected: str) -> None:
    with pytest.raises(BatchError, match=expected) as info:
        encrypt_document(text.encode(), "yaml", fake_encrypt)
    assert "the-secret" not in str(info.value)


def test_bad_bytes_and_bad_json() -> None:
    with pytest.raises(BatchError, match="not UTF-8"):
        encrypt_document(b"a: caf\xe9-the-secret\n", "yaml", fake_encrypt)
    with pytest.raises(BatchError, match="JSON object"):
        encrypt_document(b'["the-secret"]', "json", fake_encrypt)
    with pytest.raises(BatchError, match="nested too deeply") as info:
        encrypt_document(b"[" * 100_000 + b"]" * 100_000, "json", fake_encrypt)
    assert "the-secret" not in str(info.value)


def test_numbers_keep_their_json_form() -> None:
    text = '{\n  "port": 5432,\n  "ratio": 0.5,\n  "on": false,\n  "none": null\n}\n'
    result = encrypt_document(text.encode(), "json", fake_encrypt)
    assert result.text == text
    assert result.kept == ["port", "ratio", "on"]
    assert not result.encrypted


def test_detect_format() -> None:
    assert detect_format(Path("values.JSON"), b"a: 1") == "json"
    assert detect_format(Path("values.yml"), b"{}") == "yaml"
    assert detect_format(Path("values.txt"), b'  {"a": 1}') == "json"
    assert detect_format(Path("values"), b"a: 1") == "yaml"
