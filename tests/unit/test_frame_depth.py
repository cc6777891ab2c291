"""How deeply a frame may nest: OCPP never needs more than MAX_DEPTH levels, and a
deeper frame is refused before it is decoded, so that nothing walking a payload
can run out of stack."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugpay.ocpp.framing import MAX_DEPTH, Call, FrameError, parse_frame


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def wrapped(levels: int, inner: Any = 1) -> Any:
    for n in range(levels):
        inner = {"k": inner} if (levels - n) % 3 == 1 else [inner]  # the outermost: an object
    return inner


def test_the_limit_is_the_frame_and_its_payload_together() -> None:
    payload = wrapped(MAX_DEPTH - 1)  # inside the frame's own array
    call = parse_frame(json.dumps([2, "a", "DataTransfer", payload]))
    assert isinstance(call, Call) and depth(call.payload) == MAX_DEPTH - 1
    with pytest.raises(FrameError) as caught:
        parse_frame(json.dumps([2, "a", "DataTransfer", wrapped(MAX_DEPTH)]))
    assert (caught.value.kind, caught.value.unique_id, caught.value.reply) == ("format", "a", True)


@pytest.mark.parametrize(
    ("text", "unique_id", "reply"),
    [
        ("[" * 1024 + "]" * 1024, "-1", True),
        ("[" * 100_000, "-1", True),  # never closed: the decoder would nest all the same
        ("{" * 1024, "-1", True),
        ('[2, "m-1", "Heartbeat", ' + '{"a":' * 400 + "1" + "}" * 400 + "]", "m-1", True),
        (' [ 2 ,"m-2","X",' + "[" * 70 + "]" * 70 + "]", "m-2", True),
        (f'[2, "{"x" * 200}", "X", {"[" * 70}', "-1", True),  # too long to echo
        ('[2, "a\\"b", "X", ' + "[" * 70, "-1", True),  # not plainly readable
        ('[3, "m-3", ' + "[" * 70 + "]" * 70 + "]", "m-3", False),  # an answer: never answered
        ('[4, "m-4", "X", "", ' + "[" * 70 + "]" * 70 + "]", "m-4", False),
        ("[" * 40 + "{" * 40 + "}" * 40 + "]" * 40, "-1", True),
        ("[" * 70 + "}" * 70, "-1", True),  # mismatched: still counted
    ],
)
def test_frames_nested_too_deep_are_format_violations(
    text: str, unique_id: str, reply: bool
) -> None:
    for frame in (text, text.encode()):
        with pytest.raises(FrameError) as caught:
            parse_frame(frame)
        assert caught.value.kind == "format"
        assert "nested deeper" in caught.value.description
        assert (caught.value.unique_id, caught.value.reply) == (unique_id, reply)


@pytest.mark.parametrize(
    "strings",
    [
        {"log": "[" * 500},
        {"log": "]" * 500, "more": "{" * 500},
        {"quoted": '"[[[' * 100},
        {"escaped": "\\" * 101 + "[" * 100},
        {"é": "ünïcödé [" * 100},
        {"ctl": "\n\t\u2028[" * 100},
    ],
)
def test_brackets_inside_strings_do_not_count(strings: dict[str, str]) -> None:
    payload = {"vendorId": "v", "data": strings, "x": wrapped(20)}
    text = json.dumps([2, "a", "DataTransfer", payload], ensure_ascii=False)
    for frame in (text, text.encode()):
        call = parse_frame(frame)
        assert isinstance(call, Call) and call.payload == payload


def test_brackets_inside_strings_cannot_hide_nesting() -> None:
    payload = {"hide": "]" * 200 + "}" * 200, "deep": wrapped(MAX_DEPTH)}
    with pytest.raises(FrameError):
        parse_frame(json.dumps([2, "a", "DataTransfer", payload]))


def test_a_wide_frame_with_many_brackets_is_read() -> None:
    keys = [{"key": f"K{n}", "readonly": False, "value": "[x]"} for n in range(500)]
    frame = parse_frame(json.dumps([3, "a", {"configurationKey": keys}]))
    assert frame.payload == {"configurationKey": keys}  # type: ignore[union-attr]


_text = st.text(alphabet=st.sampled_from('[]{}"\\:, ab\n\u00e9'), max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=12,
)


@given(_json, st.integers(min_value=0, max_value=MAX_DEPTH + 4))
def test_a_frame_is_refused_exactly_when_it_nests_too_deep(value: Any, levels: int) -> None:
    payload = {"data": wrapped(levels, value)}
    text = json.dumps([2, "a", "DataTransfer", payload])
    too_deep = 2 + depth(payload["data"]) > MAX_DEPTH
    if too_deep:
        with pytest.raises(FrameError, match="nested deeper"):
            parse_frame(text)
    else:
        call = parse_frame(text)
        assert isinstance(call, Call) and call.payload == payload
