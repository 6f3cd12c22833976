import os
import uuid

from klambda import ids


def test_request_ids_are_random_uuid4s() -> None:
    made = [ids.request_id() for _ in range(5000)]  # several buffers' worth
    assert len(set(made)) == len(made)
    for rid in made[:300]:
        parsed = uuid.UUID(rid)
        assert str(parsed) == rid
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_random_bytes_across_the_buffer_boundary() -> None:
    seen = b"".join(ids.random_bytes(7) for _ in range(2 * ids.CHUNK // 7 + 3))
    assert len(seen) == 7 * (2 * ids.CHUNK // 7 + 3)
    assert len(ids.random_hex(12)) == 24
    # not a repeating pattern: 16-byte windows differ
    windows = {seen[i : i + 16] for i in range(0, len(seen) - 16, 16)}
    assert len(windows) == len(range(0, len(seen) - 16, 16))


def test_a_forked_child_does_not_repeat_its_parent() -> None:
    ids.random_bytes(1)  # a buffer with bytes left in it
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, ids.random_bytes(32))
        os._exit(0)
    os.close(write)
    child = os.read(read, 32)
    os.waitpid(pid, 0)
    os.close(read)
    assert child != ids.random_bytes(32)
