"""Config checks that name the key."""

import pytest

from lpa.planning.checks import check_config


def config(**finetune):
    ft = {"reading": ["histogram"], "similarity": ["cosine"], "batch_size": 128}
    return {
        "execution": {"gpus": 1},
        "paco": {"queue_size": 1024},
        "baseline": {"batch_size": 128},
        "finetune": {**ft, **finetune},
    }


def test_a_valid_config_passes():
    check_config(config(reading=["histogram", "presence"], similarity=["cosine_pow4", "top3", "jaccard", "label"]))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"reading": ["histogram", "hist"]}, r"finetune.reading\[1\]='hist' is not a reading"),
        ({"similarity": ["cosin"]}, r"finetune.similarity\[0\]='cosin' is not a similarity"),
        ({"similarity": ["none"]}, r"finetune.similarity\[0\]='none'"),  # alpha 0's own, not a choice
        ({"batch_size": 96}, r"paco.queue_size=1024 must be a multiple of finetune.batch_size=96"),
    ],
)
def test_a_wrong_setting_is_named(change, message):
    with pytest.raises(ValueError, match=message):
        check_config(config(**change))


def test_the_global_batch_must_split_over_the_gpus():
    cfg = config()
    cfg["execution"]["gpus"] = 3
    with pytest.raises(ValueError, match=r"baseline.batch_size=128 .* divisible by execution.gpus=3"):
        check_config(cfg)
