"""The receiver under fuzzing (see fuzz_receiver.py): never a 5xx, nothing written on refusal."""

from __future__ import annotations

from .fuzz_receiver import Fuzzer, property_test

EXAMPLES = 400


def test_arbitrary_input_never_breaks_the_receiver_or_leaves_a_trace(redis_url: str) -> None:
    fuzzer = Fuzzer(redis_url)
    try:
        property_test(fuzzer, EXAMPLES)
    finally:
        fuzzer.close()
    # The fuzzing reached both sides: refusals and acknowledgements.
    assert any(status >= 400 for status in fuzzer.statuses)
    assert any(200 <= status < 300 for status in fuzzer.statuses)
