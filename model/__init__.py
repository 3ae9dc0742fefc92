"""The classifier: `Predictor` owns tokenizer, weights, labels and calibration."""

from .predictor import META_FILE, URGENCY_NAMES, ModelFolderError, Predictor, read_metadata

__all__ = ["META_FILE", "URGENCY_NAMES", "ModelFolderError", "Predictor", "read_metadata"]
