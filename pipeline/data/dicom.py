"""A DICOM CT series (a folder of single-frame slices) as a NIfTI image in Hounsfield units.

Geometry comes from the headers alone, as dcm2niix derives it: the in-plane directions from
ImageOrientationPatient, the pixel size from PixelSpacing, the slice direction and spacing from the
ImagePositionPatient of the sorted slices. DICOM's patient space is LPS; NIfTI's is RAS, so the affine's first two
rows change sign. The array is (columns, rows, slices), i.e. i runs along a row like dcm2niix's before it flips
rows for display; the image is the same in world space either way (tests hold it against dcm2niix). Values are
Hounsfield units from each slice's RescaleSlope and RescaleIntercept.

A folder that does not hold exactly one complete series is refused in one line: two series mixed, slices of
different size or orientation, a missing or duplicated slice position, a non-CT modality, a multi-frame object.
"""

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from pipeline.core.errors import DataError

# Hidden files and DICOMDIR (a media index, no image) may sit beside a series; they are skipped.
SKIPPED = ("DICOMDIR",)
# Positions are compared in mm: scanners write 6 decimals, and a slice gap shows as a step of twice the spacing.
POSITION_TOLERANCE_MM = 0.01
SPACING_TOLERANCE = 0.1  # at most 10% variation in slice spacing before a slice is called missing


@dataclass(frozen=True)
class Series:
    """A read series: the image (RAS affine, HU, float32) and its slices' datasets in the image's slice order
    (what a DICOM SEG of a mask refers to)."""

    image: nib.Nifti1Image
    datasets: list


def is_series(path: Path) -> bool:
    """A folder is read as a DICOM series; a file as NIfTI."""
    return Path(path).is_dir()


def _files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".") and p.name not in SKIPPED)
    if not files:
        raise DataError(folder, "holds no DICOM files")
    return files


def _read(path: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(path)
    except InvalidDicomError:
        raise DataError(path, "is not a DICOM file (no DICM preamble); a series folder holds only its slices") from None
    except (OSError, ValueError, EOFError) as error:
        raise DataError(path, f"cannot be read as DICOM ({str(error).splitlines()[0]})") from None
    if "PixelData" not in dataset:
        raise DataError(path, "holds no image (no PixelData): not a slice of a CT series")
    if int(getattr(dataset, "NumberOfFrames", 1) or 1) > 1:
        raise DataError(path, "is a multi-frame (enhanced) object; convert it to NIfTI first (dcm2niix)")
    modality = getattr(dataset, "Modality", "")
    if modality != "CT":
        raise DataError(path, f"has the modality {modality or 'none'!r}; these models segment CT")
    for keyword in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing", "Rows", "Columns"):
        if keyword not in dataset:
            raise DataError(path, f"has no {keyword}: its geometry is unknown")
    return dataset


def _same(datasets: list, paths: list[Path], keyword: str, describe: str) -> None:
    first = getattr(datasets[0], keyword)
    for dataset, path in zip(datasets[1:], paths[1:], strict=True):
        value = getattr(dataset, keyword)
        equal = np.allclose(np.asarray(value, float), np.asarray(first, float), atol=1e-4) if describe != "series" \
            else value == first  # fmt: skip
        if not equal:
            raise DataError(path, f"has another {describe} ({value}) than {paths[0].name} ({first}): the folder "
                                  "mixes series; give one series' folder")  # fmt: skip


def read_series(folder: Path) -> Series:
    """The series in ``folder`` as a NIfTI image (RAS affine, HU) and its datasets in slice order."""
    folder = Path(folder)
    paths = _files(folder)
    datasets = [_read(path) for path in paths]
    _same(datasets, paths, "SeriesInstanceUID", "series")
    for keyword, describe in (("ImageOrientationPatient", "orientation"), ("PixelSpacing", "pixel spacing"),
                              ("Rows", "number of rows"), ("Columns", "number of columns")):  # fmt: skip
        _same(datasets, paths, keyword, describe)
    orientation = np.asarray(datasets[0].ImageOrientationPatient, dtype=float)
    along_row, along_column = orientation[:3], orientation[3:]  # LPS directions of increasing column and row index
    normal = np.cross(along_row, along_column)
    positions = np.array([np.asarray(d.ImagePositionPatient, dtype=float) for d in datasets])
    order = np.argsort(positions @ normal, kind="stable")
    datasets, paths, positions = [datasets[i] for i in order], [paths[i] for i in order], positions[order]
    distances = positions @ normal
    steps = np.diff(distances)
    if len(datasets) > 1:
        repeated = np.flatnonzero(steps < POSITION_TOLERANCE_MM)
        if repeated.size:
            i = repeated[0]
            raise DataError(paths[i + 1], f"lies at the same position as {paths[i].name} ({distances[i]:.2f} mm): "
                                          "two series or a duplicated slice; give one series' folder")  # fmt: skip
        spacing = float(np.median(steps))
        uneven = np.flatnonzero(np.abs(steps - spacing) > SPACING_TOLERANCE * spacing)
        if uneven.size:
            i = uneven[0]
            raise DataError(folder, f"the series is incomplete: {steps[i]:.2f} mm between slices at "
                                    f"{distances[i]:.2f} and {distances[i + 1]:.2f} mm where the others are "
                                    f"{spacing:.2f} mm apart (a missing slice?)")  # fmt: skip
    else:
        spacing = float(getattr(datasets[0], "SliceThickness", 1.0) or 1.0)
    row_spacing, column_spacing = (float(v) for v in datasets[0].PixelSpacing)  # between rows, between columns
    slices = []
    for dataset, path in zip(datasets, paths, strict=True):
        try:
            pixels = dataset.pixel_array
        except Exception as error:  # pydicom raises many kinds for undecodable pixel data
            raise DataError(path, f"its pixel data cannot be decoded ({str(error).splitlines()[0]})") from None
        slope, intercept = float(getattr(dataset, "RescaleSlope", 1)), float(getattr(dataset, "RescaleIntercept", 0))
        slices.append(pixels.astype(np.float32) * slope + intercept)
    volume = np.stack(slices, axis=-1).transpose(1, 0, 2)  # (rows, columns, slices) -> (i: column, j: row, k)
    lps = np.eye(4)
    lps[:3, 0] = along_row * column_spacing
    lps[:3, 1] = along_column * row_spacing
    lps[:3, 2] = normal * spacing
    lps[:3, 3] = positions[0]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # LPS -> RAS
    image = nib.Nifti1Image(np.ascontiguousarray(volume), affine)
    image.header.set_xyzt_units("mm")
    return Series(image, datasets)


def write_segmentation(mask: np.ndarray, series: Series, model: str, structure: str, path: Path) -> None:
    """The mask (in ``series.image``'s array order) as a binary DICOM SEG object referring to the series' slices
    (highdicom), written atomically. ``structure``: 'lung' or 'lesion', coded in SNOMED CT."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from pipeline.core.outputs import written_atomically

    category, kind = ((codes.SCT.Organ, codes.SCT.Lung) if structure == "lung"
                      else (codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Lesion))  # fmt: skip
    algorithm = hd.AlgorithmIdentificationSequence(name=model[:64], family=codes.DCM.ArtificialIntelligence,
                                                   version="1")  # fmt: skip
    segment = hd.seg.SegmentDescription(segment_number=1, segment_label=structure, segmented_property_category=category,
                                        segmented_property_type=kind, algorithm_type="AUTOMATIC",
                                        algorithm_identification=algorithm)  # fmt: skip
    frames = np.ascontiguousarray(np.asarray(mask, dtype=np.uint8).transpose(2, 1, 0))  # (slices, rows, columns)
    try:
        seg = hd.seg.Segmentation(source_images=series.datasets, pixel_array=frames, segmentation_type="BINARY",
                                  segment_descriptions=[segment], series_instance_uid=hd.UID(), series_number=900,
                                  sop_instance_uid=hd.UID(), instance_number=1, manufacturer="covid-ct-benchmark",
                                  manufacturer_model_name=model[:64], software_versions="pipeline.predict",
                                  device_serial_number="none", omit_empty_frames=False)  # fmt: skip
    except (AttributeError, ValueError, TypeError) as error:  # a series without the attributes a SEG copies
        raise DataError(path, f"cannot be made from this series ({str(error).splitlines()[0]}); the NIfTI mask "
                              "was written") from None  # fmt: skip
    try:
        with written_atomically(Path(path), ".dcm") as partial:
            seg.save_as(partial)
    except OSError as error:
        raise DataError(path, f"cannot be written ({error.strerror or error})") from None


def write_series(image: nib.Nifti1Image, folder: Path, series_uid: str | None = None, first: int = 1) -> list[Path]:
    """A NIfTI CT volume as a DICOM CT series, one file per slice (int16 with RescaleIntercept -1024, so values are
    rounded to whole HU): how the tests and the site's test volumes give a reader a series to try. The geometry
    is the image's affine, in DICOM's LPS; ``read_series`` gives the same image back."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = np.asarray(image.dataobj, dtype=np.float64)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ image.affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    along_row, along_column = lps[:3, 0] / spacing[0], lps[:3, 1] / spacing[1]
    series_uid, study_uid, frame_uid = series_uid or generate_uid(), generate_uid(), generate_uid()
    paths = []
    for k in range(data.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientName, ds.PatientID = "CT", "Phantom^Synthetic", "phantom"
        # the patient and study modules' type 2 attributes (present, may be empty), as a scanner writes them
        ds.PatientBirthDate, ds.PatientSex, ds.StudyDate, ds.StudyTime = "", "O", "20200101", "000000"
        ds.ReferringPhysicianName, ds.AccessionNumber, ds.StudyID = "", "", "1"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.SeriesNumber, ds.InstanceNumber = 1, first + k
        ds.ImageOrientationPatient = [float(f"{v:.6f}") for v in (*along_row, *along_column)]
        ds.ImagePositionPatient = [float(f"{v:.6f}") for v in lps[:3] @ np.array([0, 0, k, 1.0])]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]  # between rows, between columns
        ds.SliceThickness = float(spacing[2])
        ds.Rows, ds.Columns = data.shape[1], data.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        stored = np.clip(np.round(data[:, :, k].T) + 1024, -32768, 32767).astype(np.int16)
        ds.PixelData = stored.tobytes()
        path = folder / f"slice-{first + k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
