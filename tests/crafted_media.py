"""Hostile files built without ever holding their decoded size in memory."""

import io
import struct
import zlib
from functools import cache


@cache
def deflated_dicom(frames=300, rows=1000, columns=1000, samples=1, bits=8, value=0):
    """A Deflated Explicit VR Little Endian DICOM whose pixel data (frames x rows x columns x samples) inflates to
    hundreds of megabytes from a few hundred kilobytes: the header is honest, only the size is hostile."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    header = Dataset()
    header.SOPClassUID = SecondaryCaptureImageStorage
    header.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    header.Modality = "OT"
    header.SamplesPerPixel = samples
    header.PhotometricInterpretation = "MONOCHROME2" if samples == 1 else "RGB"
    if samples > 1:
        header.PlanarConfiguration = 0
    header.NumberOfFrames = frames
    header.Rows, header.Columns = rows, columns
    header.BitsAllocated, header.BitsStored, header.HighBit = bits, bits, bits - 1
    header.PixelRepresentation = 0

    start = DicomBytesIO()
    start.is_little_endian, start.is_implicit_VR = True, False
    start.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(start, meta, enforce_standard=True)
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, header)
    length = frames * rows * columns * samples * (bits // 8)
    length += length % 2  # DICOM values have even lengths
    pixel_header = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW" if bits > 8 else b"OB", 0, length)

    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    output = io.BytesIO()
    output.write(start.getvalue())
    output.write(deflater.compress(body.getvalue() + pixel_header))
    block = bytes([value]) * (1 << 20)
    remaining = length
    while remaining:
        chunk = block[:min(remaining, len(block))]
        output.write(deflater.compress(chunk))
        remaining -= len(chunk)
    output.write(deflater.flush())
    return output.getvalue()
