"""Export: SavedModels that serve without kerasweights, and their checks.

`export_saved_model` writes a model as a SavedModel whose serving signature
keeps every input's name and dtype and names each output after its layer,
then loads it in a fresh process that imports TensorFlow only and compares
outputs with the in-memory model (`verify_saved_model`). Every export
records SHA-256 checksums of its weights, which `verify_export` rechecks;
`export_tflite` writes a TFLite model that runs on the stock interpreter.
Output folders are claimed with a manifest so a user's files are never
deleted (`claim_output_folder`).
"""

from kerasweights.export.integrity import IntegrityReport
from kerasweights.export.integrity import verify_export
from kerasweights.export.model_file import load_keras_model
from kerasweights.export.output_folder import MANIFEST_NAME
from kerasweights.export.output_folder import check_output_folder
from kerasweights.export.output_folder import claim_output_folder
from kerasweights.export.output_folder import read_manifest
from kerasweights.export.output_folder import record_output_files
from kerasweights.export.saved_model import export_model_file
from kerasweights.export.saved_model import export_saved_model
from kerasweights.export.saved_model import model_signature
from kerasweights.export.tflite import convert_tflite
from kerasweights.export.tflite import export_tflite
from kerasweights.export.verification import VerificationReport
from kerasweights.export.verification import read_signature
from kerasweights.export.verification import validate_check_data
from kerasweights.export.verification import verify_saved_model

__all__ = [
    "IntegrityReport",
    "MANIFEST_NAME",
    "VerificationReport",
    "check_output_folder",
    "claim_output_folder",
    "convert_tflite",
    "export_model_file",
    "export_saved_model",
    "export_tflite",
    "load_keras_model",
    "model_signature",
    "read_manifest",
    "read_signature",
    "record_output_files",
    "validate_check_data",
    "verify_export",
    "verify_saved_model",
]
