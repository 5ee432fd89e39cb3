"""Vision: detection (boxes, detectors, heads, mAP) and the receptive-field calculator."""

from deepatlas.vision import receptive_field  # noqa: F401  (registers `deepatlas rf`)
