"""C18: the digest a batch computes for many numbers is the one each erasure stored."""

from __future__ import annotations

import pytest

from storage.suppression import suppression_digest, suppression_digester


@pytest.mark.parametrize("key", [b"k", b"a-key-of-thirty-two-bytes-length", b"long" * 40])
def test_c18_a_batch_digests_a_number_as_its_erasure_did(key):
    digest = suppression_digester(key)
    for identifier in ("971501234567", "US.1234567890", "16505551234", "٩٧١"):
        assert digest(identifier) == suppression_digest(key, identifier)
    assert digest("971501234567") != suppression_digester(key + b"!")("971501234567")
