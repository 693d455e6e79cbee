"""The resume index: which record ids --out holds and the hash of their text, 16 to 32 bytes
a record."""

from __future__ import annotations

from array import array


def id_key(rid: str) -> int:
    """A record id's 64-bit key in the resume index (never 0, which marks a free slot).

    Python's string hash (SipHash): the index lives in one process only, so the per-process
    seed does not matter, and it is 40 times cheaper than a hashlib digest. Two ids sharing a
    key can only get a record embedded again, never skipped: the text's hash must match too.
    """
    return hash(rid) & 0xFFFF_FFFF_FFFF_FFFF or 1


class ResumeIndex:
    """id key -> the first 64 bits of the text's SHA-256, in two flat arrays.

    An open-addressing table at most half full: 16 to 32 bytes a record, so a million records
    take 32 MB where a dict of strings would take hundreds.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._mask = capacity - 1
        self._keys = array("Q", bytes(8 * capacity))
        self._values = array("Q", bytes(8 * capacity))
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def put(self, key: int, value: int) -> None:
        keys, mask = self._keys, self._mask
        slot = key & mask
        while (found := keys[slot]) != key and found:
            slot = (slot + 1) & mask
        if not found:
            keys[slot] = key
            self._count += 1
        self._values[slot] = value
        if self._count * 2 > mask:
            self._grow()

    def get(self, key: int) -> int | None:
        keys, mask = self._keys, self._mask
        slot = key & mask
        while found := keys[slot]:
            if found == key:
                return self._values[slot]
            slot = (slot + 1) & mask
        return None

    def _grow(self) -> None:
        old_keys, old_values = self._keys, self._values
        capacity = 2 * (self._mask + 1)
        self._mask = mask = capacity - 1
        self._keys = keys = array("Q", bytes(8 * capacity))
        self._values = values = array("Q", bytes(8 * capacity))
        for key, value in zip(old_keys, old_values, strict=True):
            if key:
                slot = key & mask
                while keys[slot]:
                    slot = (slot + 1) & mask
                keys[slot] = key
                values[slot] = value
