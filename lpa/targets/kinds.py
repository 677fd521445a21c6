"""The names of the readings of s(x) and of the similarities LPA's targets come from, and their patterns.

Dependency-free, the one home of these names: the attributes stage, the similarities, the
class attributes file and the workflow's wildcards and config checks all read them here.
"""

from __future__ import annotations

# How s(x) reads an image's local features (lpa.attributes); each is a column of class_attributes.parquet.
READINGS = ("histogram", "maxcos", "softmax", "presence", "cam", "foreground")

# The targets: the similarities of lpa.targets.similarity.class_similarity, multilabel and image_cosine.
SIMILARITY_PATTERN = (
    r"cosine|cosine_pow[0-9]+|centred_cosine|idf_cosine|top[0-9]+|dominant|jaccard|multilabel|image_cosine|label|none"
)

# Where LPA's SupCon term acts (lpa.training.objectives.LPAObjective): the projection head's
# embedding, the pooled feature GAP(Z) the classifier reads, or the classifier's logits.
SITES = ("projection", "pooled", "logits")

# A fine-tuning run's similarity, as its path names it: another reading than the histogram
# prefixes the similarity (presence-jaccard); label and none read no attributes.
RUN_SIMILARITY_PATTERN = (
    rf"(({'|'.join(r for r in READINGS if r != 'histogram')})-)?"
    rf"({SIMILARITY_PATTERN.removesuffix('|label|none')})|label|none"
)


def reading_and_similarity(tag: str) -> tuple[str, str]:
    """The reading of s(x) and the similarity of a run's similarity tag (``presence-jaccard``)."""
    reading, _, similarity = tag.rpartition("-")
    return reading or "histogram", similarity
