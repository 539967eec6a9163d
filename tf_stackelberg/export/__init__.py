"""Export of trained models for serving."""
from tf_stackelberg.export.saved_model import SIGNATURES, ExportError, export_gan
