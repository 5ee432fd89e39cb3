"""Point clouds: PointNet classification and part segmentation, OFF/PLY files, surface sampling."""
