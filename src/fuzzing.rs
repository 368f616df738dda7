//! Hooks for the fuzz targets in `fuzz/`. Not part of the API.
