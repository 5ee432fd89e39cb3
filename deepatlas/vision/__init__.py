"""Vision: box ops, detectors (YOLO v1, FCOS, CenterNet) with FPN / trident necks, COCO mAP."""

from deepatlas.vision import centernet, fcos, yolo_v1  # noqa: F401  (registration)
