"""Compression of Keras 3 models: pruning, clustering, int8 quantization.

tensorflow-model-optimization (tfmot) 0.8 wraps tf_keras layers only, so it
rejects every Keras 3 model. kerasweights compresses Keras 3 models natively
instead: a callback (`WeightTransforms`) sets each kernel to its masked,
shared or int8-rounded value around every training step and keeps the
float weights aside, which works for any layer (ours, Keras', a third
party's) without rebuilding it. tfmot's pruning schedules are used as they
are; they compute with TensorFlow ops only. docs/compression.md says why
this design was chosen over converting to tf_keras.

`compress` runs the whole job and measures the model before and after;
`write_compressed` writes the result (SavedModel verified in a fresh
process, TFLite file verified likewise, ``.keras`` file, report).
"""

from kerasweights.compression.output import COMPRESS_ENTRIES
from kerasweights.compression.output import verify_tflite
from kerasweights.compression.output import write_compressed
from kerasweights.compression.pipeline import QUANTIZE_MODES
from kerasweights.compression.pipeline import CompressionResult
from kerasweights.compression.pipeline import FineTuningDivergedError
from kerasweights.compression.pipeline import compress
from kerasweights.compression.pipeline import model_sizes
from kerasweights.compression.pruning import SparsityNotReachedError
from kerasweights.compression.pruning import check_sparsity_target
from kerasweights.compression.pruning import fit_schedule
from kerasweights.compression.pruning import measure_sparsity
from kerasweights.compression.targets import WeightTarget
from kerasweights.compression.targets import check_supported
from kerasweights.compression.targets import compressible_weights
from kerasweights.compression.tflite import TFLiteModel
from kerasweights.compression.tflite import convert_to_tflite
from kerasweights.compression.transforms import WeightTransforms
from kerasweights.compression.transforms import fake_quantize_int8

__all__ = [
    "COMPRESS_ENTRIES",
    "CompressionResult",
    "FineTuningDivergedError",
    "QUANTIZE_MODES",
    "SparsityNotReachedError",
    "TFLiteModel",
    "WeightTarget",
    "WeightTransforms",
    "check_sparsity_target",
    "check_supported",
    "compress",
    "compressible_weights",
    "convert_to_tflite",
    "fake_quantize_int8",
    "fit_schedule",
    "measure_sparsity",
    "model_sizes",
    "verify_tflite",
    "write_compressed",
]
