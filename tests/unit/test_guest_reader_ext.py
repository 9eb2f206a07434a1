"""The ext4 extent walk on hostile trees: an index node that leads back to a block already in
the tree ends as a reading error at once (the qcow2 cache would make such a loop cost no reads,
so the total-read cap alone would not end it)."""

from __future__ import annotations

import struct

import pytest

from vmimage.imaging.guest_reader import ExtFs, ReadError

BLOCK = 4096


def index_node(depth: int, children: list[int]) -> bytes:
    head = struct.pack("<HHHHI", 0xF30A, len(children), 340, depth, 0)
    body = b"".join(struct.pack("<IIHH", i, child, 0, 0) for i, child in enumerate(children))
    return (head + body).ljust(BLOCK, b"\0")


def leaf(extents: list[tuple[int, int, int]]) -> bytes:
    head = struct.pack("<HHHHI", 0xF30A, len(extents), 340, 0, 0)
    body = b"".join(struct.pack("<IHHI", logical, length, 0, start) for logical, length, start in extents)
    return (head + body).ljust(BLOCK, b"\0")


def walker(blocks: dict[int, bytes]) -> ExtFs:
    fs = object.__new__(ExtFs)          # only the tree walk is under test: no filesystem needed
    fs._block = lambda number, count=1: blocks[number]       # type: ignore[method-assign]
    return fs


def test_a_tree_of_two_levels_is_read_in_order():
    blocks = {7: leaf([(0, 4, 100)]), 8: leaf([(4, 2, 200)])}
    out: list[tuple[int, int, int]] = []
    walker(blocks)._extents(index_node(1, [7, 8])[:60], 5, out)
    assert out == [(0, 100, 4), (4, 200, 2)]


@pytest.mark.parametrize("blocks", [
    {7: index_node(1, [7])},                        # a node that points at itself
    {7: index_node(2, [8]), 8: index_node(1, [7])},  # two nodes pointing at each other
    {7: index_node(1, [9, 9]), 9: leaf([])},        # one block reached twice from one node
])
def test_an_extent_tree_that_reaches_a_block_twice_is_refused(blocks):
    with pytest.raises(ReadError, match="loops"):
        walker(blocks)._extents(index_node(3, [7])[:60], 5, [])
