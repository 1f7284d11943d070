"""The block thread pool survives fork (multiprocessing's default start method on Linux)."""

import multiprocessing
import sys

import numpy as np
import pytest

import napari_kmeans as nk
from napari_kmeans.engine.blocks import BLOCK_ROWS, map_blocks


def _segment_in_child(queue):
    img = np.random.default_rng(1).integers(0, 255, (300, 300), dtype=np.uint8)
    queue.put(int(nk.segment(img.astype(np.float32), n_clusters=3, seed=0).counts.sum()))


@pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")
def test_segment_works_in_a_forked_child_after_using_the_pool():
    img = np.random.default_rng(0).random((400, 400)).astype(np.float32)  # > BLOCK_ROWS rows
    assert img.size > BLOCK_ROWS
    nk.segment(img, n_clusters=3, seed=0)  # starts the pool's threads in the parent
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_segment_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail("segment hung in a forked child")
    assert child.exitcode == 0
    assert queue.get(timeout=60) == 300 * 300


def test_blocks_keep_their_order():
    parts = map_blocks(lambda s: np.arange(s.start, s.stop), 10 * BLOCK_ROWS + 3)
    np.testing.assert_array_equal(np.concatenate(parts), np.arange(10 * BLOCK_ROWS + 3))
