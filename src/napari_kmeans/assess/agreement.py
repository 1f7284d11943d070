"""How far two clusterings of the same rows agree: the adjusted Rand index."""

from __future__ import annotations

import numpy as np


def adjusted_rand_index(labels_a: np.ndarray, labels_b: np.ndarray) -> float:
    """Compute the adjusted Rand index (Hubert & Arabie 1985) of two labelings of the same items.

    1.0 for identical partitions (whatever the label names), about 0 for chance agreement.

    Parameters
    ----------
    labels_a, labels_b : array_like
        Two labelings of the same items, any shape (flattened), any label values.

    Returns
    -------
    float
        The adjusted Rand index, at most 1.0.

    Raises
    ------
    ValueError
        When the labelings have different numbers of items.

    Examples
    --------
    >>> adjusted_rand_index(np.array([0, 0, 1, 1]), np.array([5, 5, 2, 2]))
    1.0
    """
    a = np.unique(np.asarray(labels_a).ravel(), return_inverse=True)[1].reshape(-1)
    b = np.unique(np.asarray(labels_b).ravel(), return_inverse=True)[1].reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"labelings have {a.size} and {b.size} items: they must match")
    n_a = a.max() + 1 if a.size else 1
    n_b = b.max() + 1 if b.size else 1
    table = np.bincount(a * n_b + b, minlength=n_a * n_b).reshape(n_a, n_b)
    return adjusted_rand_index_of_table(table)


def adjusted_rand_index_of_table(contingency: np.ndarray) -> float:
    """Compute the adjusted Rand index from a contingency table of two labelings.

    ``contingency[i, j]`` counts the items labelled ``i`` by one labeling and ``j`` by the
    other; a table lets a caller count large labelings block by block.

    Parameters
    ----------
    contingency : array_like
        ``(n_a, n_b)`` counts of items per pair of labels.

    Returns
    -------
    float
        The adjusted Rand index, at most 1.0.

    Examples
    --------
    >>> adjusted_rand_index_of_table(np.array([[2, 0], [0, 2]]))
    1.0
    """
    table = np.asarray(contingency, dtype=np.float64)

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    n = float(table.sum())
    index = pairs(table)
    pairs_a = pairs(table.sum(axis=1))
    pairs_b = pairs(table.sum(axis=0))
    total = n * (n - 1) / 2
    expected = pairs_a * pairs_b / total if total else 0.0
    maximum = (pairs_a + pairs_b) / 2
    if maximum == expected:  # both partitions trivial (one cluster, or all singletons)
        return 1.0
    return float((index - expected) / (maximum - expected))
