"""The fast engine: speed for the lecture's model, from its own copies or wrappers of the model's weights.

* :mod:`.engine`: the trunk cache, exact and flexible modes, :class:`CachedTop` (a classifier that reads
  its frozen trunk from a cache);
* :mod:`.blocks`: the engine's versions of the frozen transformer blocks, and the last block at one position;
* :mod:`.kernels`: the one fused CPU kernel (private PyTorch API, checked, with the public path as fallback);
* :mod:`.precision`: bfloat16 where the hardware has it;
* :mod:`.inference`: :func:`classify_texts`, many messages at once.

Nothing here changes or patches the lecture's classes in :mod:`helpers.gpt`.
"""
