"""Vision: box ops, detectors (YOLO v1, FCOS, CenterNet) with FPN / trident necks, COCO mAP, and the
receptive-field calculator."""

from deepatlas.vision import centernet, fcos, predict, receptive_field, yolo_v1  # noqa: F401  (registration; rf, predict)
