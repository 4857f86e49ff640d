"""Reading medical images, the MedMNIST registry and the prepared-dataset format."""

from medgan.data.dataset import DatasetInfo, PreparedDataset, load_dataset

__all__ = ["DatasetInfo", "PreparedDataset", "load_dataset"]
