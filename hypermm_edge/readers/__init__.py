"""Format readers: one module per format, each returning raw arrays (no preprocessing).

Optional formats (DICOM) are skipped with a logged reason when their package is missing.
"""
