"""Vision: box ops, detectors (YOLO v1, FCOS, CenterNet) with FPN / trident necks, COCO mAP."""

from deepatlas.vision import centernet, fcos, yolo_v1  # noqa: F401  (registration)

"""Vision: detection (boxes, detectors, heads, mAP) and the receptive-field calculator."""

from deepatlas.vision import receptive_field  # noqa: F401  (registers `deepatlas rf`)
