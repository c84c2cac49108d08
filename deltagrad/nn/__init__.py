"""The runtime: train networks with the generated ops, and no hand-written backward.

- ``graph``: ``Tensor`` and ``OpNode``, ``apply`` and ``backward`` (the autodiff walker);
- ``functions``: one function per generated op (``add``, ``linear``, ``relu``, ...); it also
  gives ``Tensor`` its operators ``+ - * / @`` and unary ``-``;
- ``modules``: ``Linear`` and ``MLP``;  ``optim``: ``SGD`` (with momentum) and ``Adam``;
- ``data``: MNIST (verified IDX files) and a synthetic stand-in;  ``backend``: NumPy, CuPy or
  array-api-strict by device name;
- ``train``: the training loop, run folders, comparisons and ``parse_hidden``.

Importing ``deltagrad.nn`` (or any of its modules) loads only ``graph``, ``functions`` and the
generated ops; matplotlib and tqdm are imported by the functions that plot or show progress.

>>> import numpy as np
>>> from deltagrad.nn.graph import Tensor
>>> (Tensor(np.ones((1, 2))) * 3.0).value
array([[3., 3.]])
"""

# functions sits above graph: importing it attaches Tensor's operators, so that they are there
# whichever module of the package is imported first.
from deltagrad.nn import functions as _functions  # noqa: F401
