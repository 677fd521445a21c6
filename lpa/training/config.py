"""The training run's configuration, :class:`TrainConfig`, and the model it describes.

A module of its own, below :mod:`lpa.train` and :mod:`lpa.models.checkpoints`: the training loop reads
it, and the checkpoint module's ``import_paco`` command builds the model a config describes
without importing the training loop. ``lpa.train`` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lpa.models.networks import ModelConfig
from lpa.targets.kinds import SITES


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; validated on construction, written resolved beside its outputs."""

    objective: str = "paco"  # ce | paco | lpa
    seed: int = 0
    # model
    arch: str = "resnet_cifar"
    depth: int = 32
    widths: tuple[int, ...] = (16, 32, 64)
    strides: tuple[int, ...] = (1, 2, 2)
    norm: str = "batch"  # batch | group (resnet_cifar)
    shortcut: str = "A"  # A (PaCo's) | B (resnet_cifar)
    proj_dims: tuple[int, ...] = (64, 32)  # ignored by ce
    queue_size: int = 1024
    key_momentum: float = 0.999
    augment: str = "cifar100"  # recipe, named after PaCo's --aug (lpa.augment.recipes.RECIPES)
    normalize: str | None = None  # mean/std (lpa.augment.batch.NORMALIZE); None: the recipe's dataset
    image_size: int | None = None  # crop size of the augment recipe (None: its default)
    # optimisation
    epochs: int = 400
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 10
    schedule: str = "step"  # step (paco_cifar.py) | cosine (paco_lt.py), per epoch
    milestones: tuple[int, ...] = (320, 360)
    lr_decay: float = 0.1
    # PaCo
    paco_alpha: float = 0.01
    paco_beta: float = 1.0
    paco_gamma: float = 1.0
    paco_temperature: float = 0.05
    # LPA
    lpa_alpha: float = 0.1
    supcon_temperature: float = 0.1
    similarity: str = "cosine"  # lpa.targets.similarity: cosine, ..., multilabel
    reading: str = "histogram"  # which s(x) a(y) averages: lpa.targets.kinds.READINGS
    site: str = "projection"  # where the SupCon term acts: lpa.targets.kinds.SITES
    # execution
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_workers: int = 0
    amp: bool = False  # bfloat16 autocast on CUDA (a speed setting; PaCo trained in fp32)
    augment_on: str = "device"  # device (batched, where the recipe has a device path) | workers (PIL)
    compile: bool = False  # torch.compile the training step (and on CUDA the device augmentation)

    def __post_init__(self) -> None:
        if self.objective not in ("ce", "paco", "lpa"):
            raise ValueError(f"objective must be ce, paco or lpa, got {self.objective!r}")
        if self.augment_on not in ("device", "workers"):
            raise ValueError(f"augment_on must be device or workers, got {self.augment_on!r}")
        if self.schedule not in ("step", "cosine"):
            raise ValueError(f"schedule must be step or cosine, got {self.schedule!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.site not in SITES:
            raise ValueError(f"site must be one of {', '.join(SITES)}, got {self.site!r}")
        if self.objective != "ce" and not self.proj_dims:
            raise ValueError(f"objective {self.objective} needs proj_dims (the projection head)")

    def model_config(self, in_channels: int) -> ModelConfig:
        contrastive = self.objective != "ce"
        return ModelConfig(
            arch=self.arch,
            depth=self.depth,
            widths=self.widths,
            strides=self.strides,
            in_channels=in_channels,
            norm=self.norm,
            shortcut=self.shortcut,
            proj_dims=self.proj_dims if contrastive else (),
            queue_size=self.queue_size if contrastive else 0,
            key_momentum=self.key_momentum,
        )
