"""Builders that write small files in each sensor product's exact layout (group paths, variable
names, attributes, dtypes, fill values), on the real band grids of ``sensor-band-tables/``.

Each module writes one product; ``common`` holds the shared pieces (band tables, a synthetic
reflectance cube with an implanted anomaly). Files are written with osgeo.gdal (NetCDF, GeoTIFF,
ENVI) or h5py (HDF5-EOS, which GDAL cannot create), never with the readers under test.
"""
