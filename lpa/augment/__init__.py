"""Augmentation: PaCo's recipes, image by image in PIL workers or batched on the training device.

One module per layer, each importing only the layers below it (as torchvision's
``transforms/v2`` keeps its kernels apart from the random transforms that call them):

- :mod:`~lpa.augment.batch`: how a pixel operation runs on a batch (per-image masks, device
  constants) and the normalisation;
- :mod:`~lpa.augment.geometry`, :mod:`~lpa.augment.colour`: pixel operations on batches that
  equal PIL's and torchvision's to the integer level; :mod:`~lpa.augment.pil`: PaCo's PIL-path
  transforms that torchvision lacks;
- :mod:`~lpa.augment.steps`: the random steps, each drawing its parameters and running on either
  path (``pil()`` for the workers, ``draw`` + call on the device);
- :mod:`~lpa.augment.autoaugment`, :mod:`~lpa.augment.randaugment`: the two policies (PaCo's
  CIFAR10Policy, timm's RandAugment) as steps;
- :mod:`~lpa.augment.recipes`: the recipes by PaCo's ``--aug`` names, each view written once,
  the worker path's transforms and the device path's :class:`~lpa.augment.recipes.BatchRecipe`.
"""
