"""The same stages chunk by chunk on dask arrays, and Zarr stores."""
