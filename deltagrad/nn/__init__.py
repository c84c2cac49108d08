"""The runtime: train networks with the generated ops, and no hand-written backward.

- ``graph``: ``Tensor`` and ``OpNode``, ``apply`` and ``backward`` (the autodiff walker);
- ``functions``: one function per generated op (``add``, ``linear``, ``relu``, ...); it also
  gives ``Tensor`` its operators ``+ - * / @`` and unary ``-``;
- ``modules``: ``Linear`` and ``MLP``;  ``optim``: ``SGD`` (with momentum), ``Adam`` and ``RMSProp``;
- ``data``: MNIST (verified IDX files) and a synthetic stand-in;  ``backend``: NumPy, CuPy or
  array-api-strict by device name;
- ``config``: ``TrainConfig``, presets, and the checks every setting passes before any data is read;
- ``train``: the training loop (interrupts keep the last epoch; runs resume) and ``evaluate``;
- ``runs``: a run folder's files;  ``plots``: its figures;  ``grid``: experiment grids and their
  summaries;  ``signals``: Ctrl-C and SIGTERM as an exception, held while an epoch is saved.

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
