"""Point clouds: PointNet classification and part segmentation, OFF/PLY files, surface sampling."""

from deepatlas.pointcloud import pointnet  # noqa: F401  (registration)
