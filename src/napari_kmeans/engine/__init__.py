"""Our k-means: weighted greedy k-means++ seeding and Lloyd iterations on feature rows.

``kmeans`` (module ``kmeans``) is the generic entry point on ``(n, d)`` rows; ``init`` turns
its ``init`` option into starting centres; ``segment`` feeds it the distinct pixel values of
an image with their counts as weights (see ``histogram``), or every pixel when values cannot
repeat; ``optimal1d`` solves one feature exactly. ``blocks`` runs every pass on the engine's
threads; ``compiled`` loads the numba kernels on first use.
"""

from .blocks import get_num_threads, set_num_threads
from .compiled import warm_up
from .init import AUTO_STARTS
from .kmeans import KMeansResult, check_iteration_options, kmeans, make_rng
from .seeding import TooFewDistinctRows

__all__ = [
    "AUTO_STARTS",
    "KMeansResult",
    "TooFewDistinctRows",
    "check_iteration_options",
    "get_num_threads",
    "kmeans",
    "make_rng",
    "set_num_threads",
    "warm_up",
]
