"""The core: :class:`~dynaprune.core.sampler.DynamicPruningSampler` and the parts it conducts.

* :mod:`~dynaprune.core.sampler` — the drop-in sampler.
* :mod:`~dynaprune.core.schedule` — warm-up, pruned and annealing epochs, and their sizes.
* :mod:`~dynaprune.core.plan` — one epoch's subset, order, shard and loss matching.
* :mod:`~dynaprune.core.statistics` — per-sample loss statistics on the device.
* :mod:`~dynaprune.core.forgetting` — forgetting events (correctness), for ``onion`` and users.
* :mod:`~dynaprune.core.nonfinite` — what the sampler does about NaN or infinite losses.
* :mod:`~dynaprune.core.distributed` — sharding and the exact merge of the ranks' statistics.

Import the public classes from :mod:`dynaprune`; this package re-exports nothing, so that the
policies, which read the statistics, and the sampler, which runs the policies, import each
other's modules without a cycle between packages' ``__init__`` files.
"""
