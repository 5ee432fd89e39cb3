"""Vision: box ops, detectors (YOLO v1, FCOS, CenterNet) with FPN / trident necks, COCO mAP, and the
receptive-field calculator."""
