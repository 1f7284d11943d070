"""Progress of long stages, and how a caller stops them.

Every long stage (getting the compiled engine ready, seeding, Lloyd, the exact 1-D optimum,
labelling, the cross-check, ``suggest_k``) calls ``progress(stage, done, total)`` now and
then, with ``0 <= done <= total``. The caller stops the work by raising any exception in it;
the exception propagates unchanged, so a GUI raises its own "cancelled" exception and catches
it where it started the work.

Examples
--------
>>> seen = []
>>> report(lambda stage, done, total: seen.append((stage, done, total)), "lloyd", 7, 5)
>>> seen
[('lloyd', 5, 5)]
>>> report(None, "lloyd", 1, 5)  # no callback: nothing to do
"""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[str, int, int], object]

# Stage names, in the order a segmentation goes through them.
PREPARING = "preparing the engine (first use)"  # compiling or loading the kernels
READING = "reading"  # the dask path's passes over the chunks to fit (histogram, sample)
SEEDING = "seeding"
LLOYD = "lloyd"
OPTIMAL = "optimal 1-D"
LABELLING = "labelling"
CROSS_CHECK = "cross-check"
SUGGEST_K = "suggest k"


def report(progress: ProgressCallback | None, stage: str, done: int, total: int) -> None:
    """Call ``progress(stage, done, total)`` with ``done`` clipped to ``[0, total]``.

    Parameters
    ----------
    progress : callable or None
        The caller's callback; None does nothing.
    stage : str
        What is running (one of the stage names of this module).
    done, total : int
        Work done so far and in all, in any unit the stage counts in.

    Examples
    --------
    >>> report(lambda *args: print(args), LABELLING, 12, 10)
    ('labelling', 10, 10)
    >>> report(None, LABELLING, 1, 10)
    """
    if progress is not None:
        total = max(int(total), 0)
        progress(stage, min(max(int(done), 0), total), total)
