"""Cluster ids for formatting local Kafka storage."""

from __future__ import annotations

import base64
import uuid

from infra.kafka.service import cluster_id_option, new_cluster_id


def test_an_id_that_would_start_with_a_dash_is_drawn_again():
    draws = iter([b"\xf8" + bytes(15), bytes(16)])
    cluster_id = new_cluster_id(lambda n: next(draws))
    assert not cluster_id.startswith("-")
    assert cluster_id == base64.urlsafe_b64encode(
        uuid.UUID(bytes=bytes(16), version=4).bytes).decode().rstrip("=")


def test_ids_are_version_4_uuids_in_url_safe_base64_without_padding():
    cluster_id = new_cluster_id()
    raw = base64.urlsafe_b64decode(cluster_id + "==")
    assert len(cluster_id) == 22 and uuid.UUID(bytes=raw).version == 4


def test_the_option_carries_the_id_in_one_word_even_when_it_looks_like_a_flag():
    assert cluster_id_option("-x3Ab") == "--cluster-id=-x3Ab"
