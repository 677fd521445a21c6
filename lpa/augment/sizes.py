"""The crop side of each augmentation recipe and which recipes resize, without importing torch
(the workflow sizes its jobs and ``verify`` checks images from them)."""

# recipe (PaCo's --aug name) -> the side of its square crop unless the dataset sets image_size
DEFAULT_SIDES = {"digits": 8, "cifar100": 32, "randclsstack_sim": 224, "randcls_sim": 224}
# recipes that resize and crop any image (RandomResizedCrop; evaluation: Resize, CenterCrop);
# the others take images of their crop side as they are
RESIZING_RECIPES = ("randclsstack_sim", "randcls_sim")
