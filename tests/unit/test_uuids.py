"""Random ids: version 4 UUIDs, none repeated, none shared with a forked process."""

from __future__ import annotations

import os
import uuid

from ledger.uuids import _made, random_uuid


def test_an_id_is_a_version_4_uuid_written_as_uuid4_writes_it() -> None:
    text = random_uuid()
    parsed = uuid.UUID(text)
    assert parsed.version == 4
    assert parsed.variant == uuid.RFC_4122
    assert str(parsed) == text


def test_ids_are_what_uuid_makes_of_the_same_entropy() -> None:
    entropy = os.urandom(16 * 64)
    expected = [str(uuid.UUID(bytes=entropy[i : i + 16], version=4)) for i in range(0, len(entropy), 16)]
    assert _made(entropy) == expected


def test_ids_do_not_repeat_across_many_reads_of_entropy() -> None:
    ids = [random_uuid() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)


def test_a_forked_process_hands_out_none_of_its_parents_ids() -> None:
    random_uuid()  # the parent holds ids made ahead
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids, and leave without running the test session's exit
        os.write(write, "\n".join(random_uuid() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split("\n"))
    os.waitpid(pid, 0)
    parent = {random_uuid() for _ in range(100)}
    assert len(child) == 100
    assert not child & parent
