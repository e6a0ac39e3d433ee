"""Stored bodies: zstd with the shipped dictionary; every earlier format stays readable."""

from __future__ import annotations

import zlib

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from redo_hooks.store.compression import CURRENT, decompress, dictionaries
from redo_hooks.store.events import pack_body, unpack_body
from redo_hooks.testing import sample_body


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=20_000) | st.just(sample_body()))
def test_a_body_comes_back_byte_for_byte(body: bytes) -> None:
    assert unpack_body(pack_body(body)) == body


def test_the_spec_example_is_stored_in_under_a_third_of_its_bytes() -> None:
    body = sample_body()
    stored = pack_body(body)
    assert len(stored) < len(body) / 3
    assert len(stored) < len(zlib.compress(body, 1))  # what the previous release stored


def test_frames_name_the_shipped_dictionary_they_need() -> None:
    (known,) = dictionaries()  # one version shipped so far
    assert CURRENT == "bodies-v1.zdict"
    assert zstandard.get_frame_parameters(pack_body(b"{}")).dict_id == known


def test_a_body_in_0_1s_zlib_form_is_a_clear_error_not_a_wrong_body() -> None:
    """No released version stored zlib bodies: 0.3 reads what 0.2.0 wrote (zstd)."""
    with pytest.raises(ValueError, match="not a zstd frame"):
        unpack_body(zlib.compress(sample_body(), 1))


def test_a_frame_needing_a_dictionary_not_shipped_is_a_clear_error() -> None:
    other = zstandard.train_dictionary(4096, [sample_body(seq=n) for n in range(200)])
    stored = zstandard.ZstdCompressor(dict_data=other).compress(b'{"type": "created"}')
    with pytest.raises(ValueError, match=f"dictionary {other.dict_id()}, not shipped"):
        decompress(stored)
