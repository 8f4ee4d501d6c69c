"""ggml-alloc's dynamic allocator (ggml_dyn_tallocr, ggml-alloc.c), which places the tensors of a
compute graph in one buffer: the buffer's size is its high-water mark. compute_graph runs the
CPU graph through it, scheduler.py each device's part of a split graph.

Hand-written, not imported: ggml has no Python binding of it, and its placements (best fit,
the last block kept for growth, merges in list order) are what decide the buffer's size;
tests/test_compute_trace.py and tests/test_rpc_traces.py hold them to ggml-alloc's own trace."""

from __future__ import annotations


class DynamicAllocator:
    """ggml_dyn_tallocr with one chunk: best fit among the free blocks but the last, else the
    last (unbounded) block; freed ranges merge with their neighbours; ``max_size`` is the peak."""

    def __init__(self, alignment: int) -> None:
        self.alignment = alignment
        # [offset, size], by offset as ggml inserts them (merges and allocations move a
        # block's offset but never its place in the list)
        self.blocks: list[list[int]] = [[0, 1 << 62]]
        self.max_size = 0

    def aligned(self, size: int) -> int:
        return (size + self.alignment - 1) // self.alignment * self.alignment

    def alloc(self, size: int) -> int:
        size = self.aligned(size)
        best, best_size = -1, None
        for index, (_, block_size) in enumerate(self.blocks[:-1]):
            if block_size >= size and (best_size is None or block_size <= best_size):
                best, best_size = index, block_size
        if best < 0:
            best = len(self.blocks) - 1
        block = self.blocks[best]
        offset = block[0]
        block[0] += size
        block[1] -= size
        if block[1] == 0:
            del self.blocks[best]
        self.max_size = max(self.max_size, offset + size)
        return offset

    def free(self, offset: int, size: int) -> None:
        """ggml_dyn_tallocr_free_bytes: merged into the first block (in list order) that ends
        or starts here, else a new block inserted before the first block at or past it. The
        list is not re-sorted: a zero-byte block (a zero-byte tensor freed inside a free
        range) stays where it was inserted while the block before it is allocated from, and
        then keeps that block from merging with the one after it, as in ggml."""
        size = self.aligned(size)
        for index, block in enumerate(self.blocks):
            if block[0] + block[1] == offset:
                block[1] += size
                self._merge_next(index)
                return
            if offset + size == block[0]:
                block[0] = offset
                block[1] += size
                return
        position = 0
        while position < len(self.blocks) and self.blocks[position][0] < offset:
            position += 1
        self.blocks.insert(position, [offset, size])

    def _merge_next(self, index: int) -> None:
        if index + 1 < len(self.blocks):
            block, following = self.blocks[index], self.blocks[index + 1]
            if block[0] + block[1] == following[0]:
                block[1] += following[1]
                del self.blocks[index + 1]
